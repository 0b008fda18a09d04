"""Every error is JSON ``{"error": {"code", "message"}}`` with a 4xx status; never a stack trace."""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by views for a request the API refuses."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> Any:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _http_code_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        message = exc.description or exc.name
        if exc.code == 413:
            message = f"request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"
        return error_response(exc.code or 500, _http_code_name(exc), message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "the server failed to handle this request")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` that says why not."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON")
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, limit_key: str = "MAX_TEXT_LENGTH") -> str:
    """A required, non-blank string field no longer than the configured limit."""
    if name not in body:
        raise ApiError(400, "missing_field", f"field {name!r} is required")
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"field {name!r} must be a string")
    if not value.strip():
        raise ApiError(400, "empty_field", f"field {name!r} must not be empty")
    limit = current_app.config[limit_key]
    if len(value) > limit:
        raise ApiError(400, "field_too_long", f"field {name!r} is longer than {limit} characters")
    return value
