"""The OpenAPI 3.1 description of the service, served at ``GET /openapi.json``."""

from __future__ import annotations

from model_api.front.protocol import limits
from sentiment.config import ServiceConfig

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(description: str, retry_after: bool = False) -> dict:
    response: dict = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    if retry_after:
        response["headers"] = {
            "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
        }
    return response


def _client_errors() -> dict:
    errors = {
        "400": _error(
            "the body is not valid UTF-8 JSON, is nested too deeply, or breaks its schema: a field is missing or of "
            "the wrong type, or a batch holds more texts than maxItems"
        ),
        "413": _error("the body is larger than the service's limit in bytes"),
        "415": _error("the Content-Type is not application/json"),
        "503": _error("the model is restarting or overloaded; retry after Retry-After seconds", retry_after=True),
    }
    return errors


MODEL_VERSION = {"type": "string", "description": "name@version of the model that scored the text(s)"}
_VERSION_HEADERS = {
    "X-Model-Version": {"description": "the model that scored the text(s): name@version", "schema": MODEL_VERSION},
    "X-Model-Switching": {
        "description": "present (1) while this replica rolls out a model: a client with other replicas uses them",
        "schema": {"type": "string"},
    },
}


def _admin_path(token: bool) -> dict:
    """``POST /admin/model`` (model_api.front.admin): always behind the token when one is set."""
    swap = {
        "type": "object",
        "properties": {
            "status": {"const": "serving"},
            "model": {"type": "string"},
            "version": MODEL_VERSION,
            "previous": {"type": "string", "description": "the model it replaced: send it back to roll back"},
            "previous_version": MODEL_VERSION,
            "generation": {"type": "integer"},
            "seconds": {"type": "number"},
            "workers": {"type": "object", "description": "how many of the service's workers serve it"},
        },
    }
    body = {
        "type": "object",
        "required": ["model"],
        "properties": {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "a model directory (on the service's machine) or hub name",
            },
            "route_around": {
                "type": "boolean",
                "default": False,
                "description": "/health answers 503 switching until it is done (what a rolling roll-out sends)",
            },
        },
    }
    operation: dict = {
        "summary": "Serve another model without stopping: loaded and checked beside the served one, then "
        "switched between forward passes; the answer comes once every worker serves it",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {"description": "it serves", "content": {"application/json": {"schema": swap}}},
            "400": _error("the body is not a JSON object naming a model (a string) or breaks its schema"),
            "403": _error("no service token is set and the client is not on loopback"),
            "409": _error("another model is loading"),
            "413": _error("the body is larger than the service's limit in bytes"),
            "415": _error("the Content-Type is not application/json (or there is no body)"),
            "422": _error(
                "the model was refused (names nothing, not found, labels unreadable, did not load, failed the quick "
                "check); the served one serves on"
            ),
        },
    }
    if token:
        operation["security"] = [{"bearer": []}]
        operation["responses"]["401"] = _error("missing or wrong bearer token")
    return {"post": operation}


PREDICTION = {
    "type": "object",
    "required": ["sentiment", "p_positive", "confidence"],
    "properties": {
        "sentiment": {"type": "string", "enum": ["Negative", "Neutral", "Positive"]},
        "p_positive": {"type": "number", "minimum": 0, "maximum": 1},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "probabilities": {
            "type": "object",
            "description": "a three-class model's own class probabilities (absent for a two-class model); "
            "p_positive is P(positive) + P(neutral) / 2, mapped by the model's probability map",
            "required": ["negative", "neutral", "positive"],
            "properties": {
                k: {"type": "number", "minimum": 0, "maximum": 1} for k in ("negative", "neutral", "positive")
            },
        },
    },
}
SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "switching"]},
            "reason": {"type": "string"},
            "restarts": {"type": "integer"},
            "worker": {"type": "integer"},
            "version": {"type": "string"},
            "model_version": MODEL_VERSION,
        },
    },
}


def _json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _scored(schema: dict) -> dict:
    return {**_ok(schema), "headers": _VERSION_HEADERS}


def _scoring_paths(service: ServiceConfig) -> dict:
    """``POST /predict`` and ``POST /predict/batch``, with this configuration's limits."""
    text = {
        "type": "string",
        "description": f"cut to {service.max_text_chars} characters; lone surrogates become U+FFFD",
    }
    one = {**PREDICTION, "properties": {**PREDICTION["properties"], "model_version": MODEL_VERSION}}
    batch = {"type": "array", "items": text, "minItems": 1, "maxItems": service.max_batch}
    results = {"results": {"type": "array", "items": PREDICTION}, "model_version": MODEL_VERSION}
    return {
        "/predict": {
            "post": {
                "summary": "Score one text",
                "requestBody": _json_body({"type": "object", "required": ["text"], "properties": {"text": text}}),
                "responses": {"200": _scored(one), **_client_errors()},
            }
        },
        "/predict/batch": {
            "post": {
                "summary": f"Score up to {service.max_batch} texts, answered in order",
                "requestBody": _json_body({"type": "object", "required": ["texts"], "properties": {"texts": batch}}),
                "responses": {"200": _scored({"type": "object", "properties": results}), **_client_errors()},
            }
        },
    }


def _reading_paths() -> dict:
    """The GET routes: health, model, metrics and this document."""
    health = {"$ref": "#/components/schemas/Health"}
    return {
        "/health": {
            "get": {
                "summary": "ok (200); degraded while the model process restarts, or switching while a "
                "rolling roll-out loads another model here (503)",
                "responses": {
                    "200": _ok(health),
                    "503": _ok(health, "degraded: the model cannot answer now"),
                },
            }
        },
        "/model": {
            "get": {
                "summary": "The served model (model_version, previous; loading: the one being loaded beside it)",
                "responses": {"200": _ok({"type": "object"})},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {}}}},
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok({"type": "object"})}}},
    }


def openapi_document(service: ServiceConfig, token: bool = False) -> dict:
    """The document for this configuration (its limits; the bearer scheme when a token is set)."""
    open_paths = set(service.open_path_list)
    paths = {**_scoring_paths(service), **_reading_paths()}
    for path, operations in paths.items():
        for operation in operations.values():
            if token and path not in open_paths:
                operation["security"] = [{"bearer": []}]
                operation["responses"].update({"401": _error("missing or wrong bearer token")})
    paths["/admin/model"] = _admin_path(token)
    description = (
        f"Bodies of at most {service.max_body_bytes} bytes, at most {service.max_batch} texts per "
        f"request, each read up to {service.max_text_chars} characters (x-limits, and GET /model's "
        "limits). Beyond service.max_queued_texts texts held by a worker, a request gets 503 with "
        'Retry-After. Every error is a JSON object {"error": message}; a 500 means a fault of the '
        "service, never of the request."
    )
    document: dict = {
        "openapi": "3.1.0",
        "info": {
            "title": "tweet-sentiment model service",
            "version": "1",
            "description": description,
            "x-limits": limits(service),
        },
        "paths": paths,
        "components": {"schemas": dict(SCHEMAS)},
    }
    if token:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return document
