"""``POST /admin/model``: serve another model without stopping (the same answer on either path).

A route rather than a signal (SIGHUP re-reading ``service.model``): it answers when the new model
serves, or why it was refused; it reaches one replica at a time (what a rolling roll-out needs);
it carries the service's bearer token; and it says which model to load, so a roll back is the same
call with the previous directory (``GET /model`` names it as ``previous``).
"""

from __future__ import annotations

import contextlib
import logging

from model_api.front.errorlog import ErrorLog
from model_api.front.protocol import BadRequest
from model_api.runner.swap import ModelRefused, ModelSlot, SwapBusy

ADMIN_PATH = "/admin/model"
LOOPBACK = ("127.0.0.1", "::1")


def allowed_without_token(client_host: str | None) -> bool:
    """Without a service token the admin route answers only a client on this machine."""
    return client_host in LOOPBACK


def admin_swap(slot: ModelSlot, body: dict, workers: int, errors: ErrorLog) -> tuple[int, dict]:
    """(status, JSON answer) of a swap to ``body["model"]``: 200 once it serves (in every worker),
    422 when it is refused (the old one serves on), 409 while another model loads.
    ``body["route_around"]``: ``/health`` answers 503 "switching" meanwhile, and scoring answers
    carry ``X-Model-Switching``, so that a client with several replicas uses the others.

    Raises:
        BadRequest: the body does not name a model.
    """
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest('field "model" must be a model directory or hub name (a non-empty string)')
    route_around = body.get("route_around", False)
    if not isinstance(route_around, bool):
        raise BadRequest('field "route_around" must be true or false')
    if not model.strip():  # valid by the document (a non-empty string) but names no model
        return 422, {"error": f"model refused, {slot.serving.version} serves on: {model!r} names no model"}
    errors.report("model swap", f"loading {model} (route around: {route_around})", logging.WARNING)
    try:
        result = _swap(slot, model.strip(), route_around, workers)
    except ModelRefused as e:
        errors.report("model refused", str(e), logging.WARNING)
        return 422, {"error": f"model refused, {slot.serving.version} serves on: {e}"}
    except SwapBusy as e:
        return 409, {"error": str(e)}
    return 200, {"status": "serving", **result}


def _swap(slot: ModelSlot, model: str, route_around: bool, workers: int) -> dict:
    if slot.share is not None:
        with slot.share.route_around() if route_around else contextlib.nullcontext():
            return slot.share.swap(model, workers)
    slot.switching = route_around
    try:
        return slot.swap(model)
    finally:
        slot.switching = False
