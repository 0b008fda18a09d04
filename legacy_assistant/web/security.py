"""Who may call which route, bearer tokens, and a CORS allow-list.

Every blueprint declares the access class of its routes (:class:`GuardedBlueprint`), and the
request hook here enforces the declaration; an app with a route whose blueprint declares none
does not start (:func:`seal`). The classes:

* :attr:`Access.PUBLIC`: anyone (the chat page and its static files, health, version, metrics,
  the OpenAPI document);
* :attr:`Access.API`: when ``API_TOKEN`` (env ``LEGACY_ASSISTANT_API_TOKEN``) is set, the
  request needs ``Authorization: Bearer <token>``; without one the routes are open;
* :attr:`Access.ADMIN`: always needs ``ADMIN_TOKEN`` (env ``LEGACY_ASSISTANT_ADMIN_TOKEN``);
  with none set the routes are switched off (403).

``CORS_ORIGINS`` (env ``LEGACY_ASSISTANT_CORS_ORIGINS``, comma-separated): origins whose
pages may call the API from a browser (never the admin routes). Empty (the default) means same origin only: no CORS
header is ever sent. Preflight ``OPTIONS`` requests from a listed origin get 204; any other
``OPTIONS`` on a route gets 200 JSON ``{"methods": [...]}`` and ``Allow``, without CORS headers.

``ALLOWED_HOSTS`` (env ``LEGACY_ASSISTANT_ALLOWED_HOSTS``): the ``Host`` names the API and admin
routes answer to (:mod:`legacy_assistant.common.hosts`); others get 400 ``host_not_allowed``.
Empty or None: any name (``serve`` fills it in for a loopback address).

Tokens are compared in constant time (:func:`hmac.compare_digest`) on their UTF-8 bytes.
"""

from __future__ import annotations

import enum
import hmac
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, request

from legacy_assistant.common.hosts import host_allowed, parse_hosts, target_authority
from legacy_assistant.common.origins import normalize_origin
from legacy_assistant.common.origins import parse_origins as origin_set
from legacy_assistant.errors import ConfigError
from legacy_assistant.web.context import current_request
from legacy_assistant.web.errors import ApiError, check_under_prefix

ACCESS_EXTENSION = "legacy_assistant.access"  # app.extensions key: endpoint -> Access
REALM = "legacy-assistant"
CORS_HEADERS = "Authorization, Content-Type, X-Request-ID"
CORS_MAX_AGE = "600"

# What every answer tells a browser: no guessing a type other than the one sent, no Referer to
# other sites, and no framing (the page's "New conversation" deletes a conversation: a framed,
# disguised copy could be clicked). The page may load scripts, styles and data from this server
# only; it has no inline script or style. Other answers (JSON, text) may load nothing.
PAGE_POLICY = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"
BROWSER_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers that predate it
)


class Access(enum.Enum):
    """Who may call a blueprint's routes."""

    PUBLIC = "public"
    API = "api"  # the API token, when one is configured
    ADMIN = "admin"  # the admin token; off without one


class GuardedBlueprint(Blueprint):
    """A blueprint that declares who may call its routes: ``GuardedBlueprint(name, __name__,
    access=Access.API, url_prefix=...)``."""

    def __init__(self, name: str, import_name: str, *, access: Access, **kwargs: Any) -> None:
        if not isinstance(access, Access):
            raise TypeError(f"blueprint {name!r}: access must be an Access, got {access!r}")
        super().__init__(name, import_name, **kwargs)
        self.access = access


View = TypeVar("View", bound=Callable[..., Any])


def uncached(view: View) -> View:
    """Mark a public view whose answer is of this moment (health, readiness, the counters): no
    cache keeps it, as none keeps an API or admin answer. Goes under the route's decorator."""
    view.uncached = True  # type: ignore[attr-defined]
    return view


def access_of(app: Flask, endpoint: str) -> Access | None:
    """The access class declared for ``endpoint`` (by its blueprint), None when none is."""
    blueprint_name = endpoint.rpartition(".")[0]
    blueprint = app.blueprints.get(blueprint_name) if blueprint_name else None
    access = getattr(blueprint, "access", None)
    return access if isinstance(access, Access) else None


def seal(app: Flask) -> dict[str, Access]:
    """Record every route's access class on ``app`` for the request hook; call after the last
    blueprint is registered. Raises :class:`ConfigError` naming each route that has none."""
    table: dict[str, Access] = {}
    undeclared = []
    for rule in app.url_map.iter_rules():
        access = access_of(app, rule.endpoint)
        if access is None:
            undeclared.append(f"{rule.rule} (endpoint {rule.endpoint!r})")
        else:
            table[rule.endpoint] = access
    if undeclared:
        raise ConfigError(
            "routes without a declared access class (register them on a GuardedBlueprint): "
            + ", ".join(sorted(undeclared))
        )
    app.extensions[ACCESS_EXTENSION] = table
    return table


def parse_origins(value: str | Iterable[str] | None) -> frozenset[str]:
    """``"https://a.example, https://b.example"`` (or a list) -> the set of origins as browsers
    send them (see :mod:`legacy_assistant.common.origins`); ConfigError for an item that is not one."""
    try:
        return origin_set(value)
    except ValueError as exc:
        raise ConfigError(f"CORS_ORIGINS: {exc}") from None


def parse_allowed_hosts(value: str | Iterable[str] | None) -> frozenset[str]:
    """``"chat.example, .example.com"`` (or a list; None or empty: any host) -> the set of
    entries (see :mod:`legacy_assistant.common.hosts`); ConfigError for one that is no host."""
    try:
        return parse_hosts(value)
    except ValueError as exc:
        raise ConfigError(f"ALLOWED_HOSTS: {exc}") from None


def _allowed_origin(origin: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request's ``Origin`` header names one of the allowed origins (compared in the
    form browsers send, so ``HTTPS://Shop.Example:443`` from another client matches too)."""
    if not origin or not allowed or not origin.isascii():  # browsers send punycode, as in Host
        return False
    try:
        return normalize_origin(origin) in allowed
    except ValueError:  # "null" (a sandboxed page, a file), or anything else that is no origin
        return False


def _admin_route(app: Flask, endpoint: str | None) -> bool:
    """Whether ``endpoint`` is an admin route's: no page of another origin calls those, so they
    get no CORS headers (an admin's browser holding the token stays out of reach too). With no
    endpoint (a 404 or 405), whether the path is under an admin blueprint's prefix."""
    if endpoint is not None:
        return app.extensions[ACCESS_EXTENSION].get(endpoint) is Access.ADMIN
    path = request.path
    for blueprint in app.blueprints.values():
        prefix = (blueprint.url_prefix or "").rstrip("/")
        if getattr(blueprint, "access", None) is Access.ADMIN and prefix and (path + "/").startswith(prefix + "/"):
            return True
    return False


def _presented_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _same(presented: str, expected: str) -> bool:
    """Compare the bytes the client sent with the configured token's UTF-8 bytes. WSGI hands a
    header over decoded as Latin-1 (PEP 3333), so encoding it back that way recovers those bytes:
    a non-ASCII token sent as UTF-8 matches."""
    try:
        sent = presented.encode("latin-1")
    except UnicodeEncodeError:  # not from a WSGI header (a caller that passed text): its UTF-8
        sent = presented.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(sent, expected.encode("utf-8"))


def _require(expected: str, scope: str) -> None:
    presented = _presented_token()
    if presented is None:
        raise ApiError(
            401,
            "unauthorized",
            f"this {scope} route needs 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    if not _same(presented, expected):
        raise ApiError(
            401,
            "invalid_token",
            f"the bearer token is not valid for this {scope} route",
            {"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        )


def _path_methods(app: Flask) -> list[str]:
    # Every rule of the path, not only the one matched: GET and DELETE of a conversation are two.
    # The app's own adapter: it routes a Host header that is no host name (see create_url_adapter).
    adapter = app.create_url_adapter(request)
    assert adapter is not None  # (always one within a request)
    return sorted(adapter.allowed_methods())


def _preflight(origin: str, app: Flask) -> Response | None:
    """A CORS preflight's answer, naming the methods this path takes; None for an unknown path,
    whose 404 the error handlers answer."""
    if request.url_rule is None:
        return None
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body: Flask's default text/html would describe none
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = ", ".join(_path_methods(app))
    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
    response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
    response.headers["Vary"] = "Origin"
    return response


def _options(app: Flask) -> Response | None:
    """``OPTIONS`` on a route, outside a CORS preflight: the methods its path takes, as JSON and
    in ``Allow`` (Flask's own answer is an empty text/html body). None for an unknown route, whose
    404 or 405 the error handlers answer."""
    if request.url_rule is None:
        return None
    methods = _path_methods(app)
    response = Response(
        json.dumps({"methods": methods}, separators=(",", ":")), status=200, mimetype="application/json"
    )
    response.headers["Allow"] = ", ".join(methods)
    return response


# The response headers a page of a listed origin may read beyond CORS's safelisted ones: those
# the API's answers carry for the client to act on (a 503's Retry-After, a 401's
# WWW-Authenticate, every answer's X-Request-ID); the others are hidden from its script.
EXPOSED_HEADERS = "X-Request-ID, Retry-After, WWW-Authenticate"


def register(app: Flask) -> None:
    """Install the token check and CORS handling on ``app``."""

    # The hooks use ``app`` (the request's app) rather than the ``current_app`` proxy: they run
    # on every request, and each use of a proxy costs a lookup.
    @app.before_request
    def _guard() -> Any:
        config = app.config
        current = current_request()
        check_under_prefix(current.environ)  # first: such a path is no route of this server's
        if current.method == "OPTIONS":
            if current.routing_exception is not None:
                return None  # no such route: its JSON 404, not a preflight that promises one
            origin = current.headers.get("Origin")
            if (
                origin
                and _allowed_origin(origin, config["CORS_ORIGINS"])
                and current.headers.get("Access-Control-Request-Method")
                and not _admin_route(app, current.endpoint)
            ):
                return _preflight(origin, app)
            return _options(app)  # no CORS headers: a page of another origin learns nothing
        endpoint = current.endpoint
        if endpoint is None:
            return None  # no route matched: the 404 or 405 answer needs no token
        access = app.extensions[ACCESS_EXTENSION].get(endpoint)
        if access is None:  # a route added after the app was sealed: refuse rather than serve it open
            access = access_of(app, endpoint)
            if access is None:
                raise ApiError(403, "forbidden", "this route declares no access class")
        hosts = config["ALLOWED_HOSTS"]
        # an absolute-form target names the host, whatever the Host header says (gunicorn passes
        # both as sent; Werkzeug's server puts the target's in the header)
        target = target_authority(current.environ.get("RAW_URI") or current.environ.get("REQUEST_URI"))
        host = current.headers.get("Host") if target is None else target
        if hosts and access is not Access.PUBLIC and not host_allowed(host, hosts):
            # before the token: a page that reached this server under its own name (DNS
            # rebinding) has none, and should learn nothing about what the routes would say
            raise ApiError(
                400,
                "host_not_allowed",
                "this request names no host (no Host header, as HTTP/1.0 allows, or an empty one): the API answers "
                "only requests sent to a host name it is allowed; send one, or list the names in "
                "LEGACY_ASSISTANT_ALLOWED_HOSTS (--allowed-hosts)"
                if not host
                else "this server does not answer to the host name this request was sent to; "
                "list it in LEGACY_ASSISTANT_ALLOWED_HOSTS (--allowed-hosts)",
            )
        if access is Access.API:
            if config["API_TOKEN"]:
                _require(config["API_TOKEN"], "API")
        elif access is Access.ADMIN:
            if not config["ADMIN_TOKEN"]:
                raise ApiError(
                    403, "admin_disabled", "admin routes are off: set LEGACY_ASSISTANT_ADMIN_TOKEN to switch them on"
                )
            _require(config["ADMIN_TOKEN"], "admin")
        return None

    @app.after_request
    def _browser_headers(response: Response) -> Response:
        # Names already set, read once: werkzeug's `name in headers` raises and catches an
        # HTTP exception for every name that is missing, which cost more than the rest together.
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        for name, value in BROWSER_HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        if "content-security-policy" not in present:
            headers.add("Content-Security-Policy", PAGE_POLICY if response.mimetype == "text/html" else DATA_POLICY)
        endpoint = request.endpoint
        if endpoint is not None and "cache-control" not in present:
            # API and admin answers (a transcript, a reply) are one client's, and an uncached
            # view's is of this moment: no cache keeps them
            private = app.extensions[ACCESS_EXTENSION].get(endpoint) in (Access.API, Access.ADMIN)
            if private or getattr(app.view_functions.get(endpoint), "uncached", False):
                headers.add("Cache-Control", "no-store")
        return response

    @app.after_request
    def _cors(response: Response) -> Response:
        origins = app.config["CORS_ORIGINS"]
        if origins:
            # Every answer depends on the Origin once origins are listed: a shared cache must not
            # hand one without Access-Control-Allow-Origin to a listed origin.
            response.vary.add("Origin")
            origin = request.headers.get("Origin")
            if (
                _allowed_origin(origin, origins)
                and "Access-Control-Allow-Origin" not in response.headers
                and not _admin_route(app, request.endpoint)
            ):
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response
