"""Every error is JSON ``{"error": {"code", "message"}}`` with its status; never a stack trace.

Views validate their input with :func:`json_object` and :func:`text_field`, which raise
:class:`ApiError` with a 4xx status and a message that names the field and the problem.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from legacy_assistant.errors import StoreError

log = logging.getLogger(__name__)

# Response headers of a werkzeug HTTPException worth keeping on the JSON error (405's Allow).
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


class ApiError(Exception):
    """Raised by views (and request hooks) for a request the API refuses."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON error body every route uses."""
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
    response = Response(body, status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_code_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def _http_message(exc: HTTPException) -> str:
    if exc.code == 413:
        return f"request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    if exc.code == 404:
        return f"no route {request.path!r}; see /openapi.json for the routes"
    if exc.code == 405:
        return f"method {request.method} is not allowed on {request.path!r}"
    return exc.description or exc.name or "error"


def register(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        kept = {name: value for name, value in exc.get_headers() if name in KEPT_HEADERS}
        return error_response(exc.code or 500, _http_code_name(exc), _http_message(exc), kept)

    @app.errorhandler(StoreError)
    def _store_error(exc: StoreError) -> Response:
        log.error("conversation store failed on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "store_unavailable", "the conversation store is unavailable; try again shortly",
                              {"Retry-After": "1"})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed to handle this request")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` that says why not."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # json gives up on very deep nesting with RecursionError, not ValueError
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
    if body is None:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, limit_key: str = "MAX_TEXT_LENGTH", default: str | None = None) -> str:
    """A required (unless ``default`` is given), non-blank string field no longer than the
    configured limit, made of valid Unicode."""
    if name not in body:
        if default is not None:
            return default
        raise ApiError(400, "missing_field", f"field {name!r} is required")
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"field {name!r} must be a string")
    if not value.strip():
        raise ApiError(400, "empty_field", f"field {name!r} must not be empty")
    limit = current_app.config[limit_key]
    if len(value) > limit:
        raise ApiError(400, "field_too_long", f"field {name!r} is longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise ApiError(400, "invalid_field", f"field {name!r} is not valid Unicode text") from None
    return value
