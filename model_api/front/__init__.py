"""The HTTP front: the server adapters (ASGI under granian, the Flask app), the routes and what
they check (validation, auth, limits), the admin route, the OpenAPI document, metrics and the
error log. It asks :mod:`model_api.runner` for predictions and never imports the model itself."""
