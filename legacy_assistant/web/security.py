"""Bearer tokens for the API and the admin routes, and a CORS allow-list.

* ``API_TOKEN`` (env ``LEGACY_ASSISTANT_API_TOKEN``): when set, the API routes (``/api/v1/*``,
  the classic route, the Rasa webhook) need ``Authorization: Bearer <token>``.
* ``ADMIN_TOKEN`` (env ``LEGACY_ASSISTANT_ADMIN_TOKEN``): the admin routes always need it; with
  none set they are switched off (403).
* ``CORS_ORIGINS`` (env ``LEGACY_ASSISTANT_CORS_ORIGINS``, comma-separated): origins whose
  pages may call the API from a browser. Empty (the default) means same origin only: no CORS
  header is ever sent. Preflight ``OPTIONS`` requests from a listed origin get 204.

Tokens are compared in constant time (:func:`hmac.compare_digest`) on their UTF-8 bytes.
Health, version, metrics, the OpenAPI document and the chat page stay public.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, current_app, request

from legacy_assistant.web.errors import ApiError

API_BLUEPRINTS = frozenset({"api", "classic", "rasa"})
ADMIN_BLUEPRINTS = frozenset({"admin"})
REALM = "legacy-assistant"
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_MAX_AGE = "600"


def parse_origins(value: str | Iterable[str] | None) -> frozenset[str]:
    """``"https://a.example, https://b.example"`` (or a list) -> a set of origins, no trailing slash."""
    if not value:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(item.strip().rstrip("/") for item in items if item and item.strip())


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _require(expected: str, scope: str) -> None:
    presented = _presented_token()
    if presented is None:
        raise ApiError(401, "unauthorized", f"this {scope} route needs 'Authorization: Bearer <token>'",
                       {"WWW-Authenticate": f'Bearer realm="{REALM}"'})
    if not _same(presented, expected):
        raise ApiError(401, "invalid_token", f"the bearer token is not valid for this {scope} route",
                       {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'})


def _preflight(origin: str) -> Response:
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    response.headers["Vary"] = "Origin"
    return response


def register(app: Flask) -> None:
    """Install the token check and CORS handling on ``app``."""

    @app.before_request
    def _guard() -> Any:
        config = current_app.config
        if request.method == "OPTIONS":
            origin = request.headers.get("Origin")
            if origin and origin in config["CORS_ORIGINS"] and request.headers.get("Access-Control-Request-Method"):
                return _preflight(origin)
            return None  # Flask's own OPTIONS answer (Allow header), no CORS headers
        blueprint = request.blueprint
        if blueprint in API_BLUEPRINTS:
            if config["API_TOKEN"]:
                _require(config["API_TOKEN"], "API")
        elif blueprint in ADMIN_BLUEPRINTS:
            if not config["ADMIN_TOKEN"]:
                raise ApiError(403, "admin_disabled",
                               "admin routes are off: set LEGACY_ASSISTANT_ADMIN_TOKEN to switch them on")
            _require(config["ADMIN_TOKEN"], "admin")
        return None

    @app.after_request
    def _cors(response: Response) -> Response:
        origins = current_app.config["CORS_ORIGINS"]
        if origins:
            origin = request.headers.get("Origin")
            if origin and origin in origins and "Access-Control-Allow-Origin" not in response.headers:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = "X-Request-ID"
                response.vary.add("Origin")
        return response
