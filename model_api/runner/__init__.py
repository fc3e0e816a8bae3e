"""The runner: the model processes, their supervision and restart, micro-batching, the typed
messages between a worker and its model processes, the swap slot and how workers follow a swap.
It runs :mod:`model_api.model` and knows nothing of HTTP."""
