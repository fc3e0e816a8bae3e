"""The BERT REST service, in three rooms: :mod:`model_api.front` (HTTP) calls
:mod:`model_api.runner` (model processes, batching, swaps), which runs :mod:`model_api.model`
(the predictor and its engines). Imports go that way only. The commands sit here:
``python -m model_api`` (serve), ``model_api.rollout``, ``model_api.healthcheck``,
``model_api.build_engine``."""
