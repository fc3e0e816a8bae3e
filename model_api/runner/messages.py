"""The messages between a worker and its model process, as types.

The worker (:mod:`model_api.runner.engine_process`) sends the :class:`~sentiment.config.Config` once,
then lists of :class:`Request` and :class:`Cancel`, everything it had queued in one message. The
model process (:mod:`model_api.runner.model_process`) answers the configuration with :class:`Ready` or
:class:`Failed`, then sends :class:`Replies` as predictions end, :class:`Batch` after each
micro-batch and :class:`EngineChanged` when it switches engine. Both sides dispatch on the type
(``match``). They are named tuples: as cheap to pickle as the plain tuples they replace.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Request(NamedTuple):
    """Score ``texts`` (none: a watchdog ping, answered at once); the answer carries ``number``."""

    number: Any  # the worker's request number; inside the model process, a slice's key
    texts: list[str]


class Cancel(NamedTuple):
    """The caller of request ``number`` is gone: drop it if no micro-batch has begun it."""

    number: int


class Reply(NamedTuple):
    """The answer to one request: ``ok`` and its predictions, or not and the error's text."""

    number: Any
    ok: bool
    payload: Any


class Replies(NamedTuple):
    """Answers, sent together as soon as their requests' last texts are scored."""

    items: list[Reply]


class Batch(NamedTuple):
    """A micro-batch ended: how many texts it scored, in how many seconds."""

    texts: int
    seconds: float


class EngineChanged(NamedTuple):
    """The model process serves with another engine now; ``info`` is its new description."""

    info: dict


class Ready(NamedTuple):
    """The model is loaded and warmed up; ``info`` is what ``GET /model`` reports."""

    info: dict


class Failed(NamedTuple):
    """The model could not be loaded: why."""

    message: str
