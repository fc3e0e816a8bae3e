"""One worker of the service, put together: the configured model loaded once and warmed up, in
the slot that lets it be swapped, behind the routes (:class:`model_api.front.routes.Service`).

The one place that joins the HTTP side to the model side: :func:`model_api.front.asgi.create`
calls :func:`create_service` in every worker.
With several workers (:data:`model_api.runner.model_share.SHARE_ENV`), a worker starts on the model the
others serve and follows their swaps.
"""

from __future__ import annotations

from model_api.front.routes import Service
from model_api.runner.model_share import SharedModel, initial_model, share_dir
from model_api.runner.runtime import build_predictor
from model_api.runner.swap import ModelSlot
from sentiment.config import Config, load_config


def create_service(config: Config | None = None) -> Service:
    """One worker's service, its model loaded (in child processes, or in the worker behind a
    micro-batcher: :func:`model_api.runner.runtime.build_predictor`) and warmed up (for compiled engines:
    the compile, unless fast start serves meanwhile)."""
    folder = share_dir()
    config, generation, previous = initial_model(config or load_config(), folder)
    predictor = build_predictor(config)
    predictor.warm_up()
    slot = ModelSlot(config, predictor, build=build_predictor, generation=generation, previous=previous)
    service = Service(config, slot)
    if folder is not None:
        slot.share = SharedModel(folder, slot)
        slot.share.start()
    return service
