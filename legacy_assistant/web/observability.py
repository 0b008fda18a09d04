"""Request ids, one access-log line per request, request metrics; ``/metrics`` and ``/version``.

Every response carries ``X-Request-ID``: the client's own (when it is a short token of
letters, digits, ``.``, ``_`` or ``-``) or a new random one. The access log is the logger
``legacy_assistant.access`` at INFO, one line per request::

    POST /api/v1/parse 200 0.84ms id=4f1c9a2b-1f3
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Request, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing.exceptions import WebsocketMismatch

from legacy_assistant import __version__
from legacy_assistant.common.request_context import current_request_id
from legacy_assistant.common.tokens import is_short_token
from legacy_assistant.web.context import METRICS_EXTENSION, current_request, current_slot
from legacy_assistant.web.logged import logged_method, logged_path
from legacy_assistant.web.metrics import RequestMetrics, exposition
from legacy_assistant.web.security import Access, GuardedBlueprint, uncached

access_log = logging.getLogger("legacy_assistant.access")

REQUEST_ID_HEADER = "X-Request-ID"


def valid_request_id(value: object) -> bool:
    """Whether a client's ``X-Request-ID`` is one the server keeps: a short token of letters,
    digits, ``.``, ``_`` or ``-`` (:func:`legacy_assistant.common.tokens.is_short_token`)."""
    return is_short_token(value)


UNMATCHED_ROUTE = "<unmatched>"
# The methods the metrics name; any other verb a client sends is counted as OTHER_METHOD.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER_METHOD = "other"

blueprint = GuardedBlueprint("observability", __name__, access=Access.PUBLIC)


class RequestIds:
    """``<8 random hex digits, new per process>-<counter>``: unique across processes and hosts
    (with overwhelming odds) without a system call per request."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count(1)

    def next(self) -> str:
        if self._pid != os.getpid():  # a forked child must not repeat its parent's ids
            self._pid, self._prefix, self._counter = os.getpid(), secrets.token_hex(4), itertools.count(1)
        return f"{self._prefix}-{next(self._counter):x}"


def refused_request_id(headers: Iterable[tuple[object, object]] | None, ids: RequestIds) -> str:
    """The id of a request the HTTP server refuses before the app sees it (gunicorn under
    ``serve``, http.server under ``serve --dev``): the client's ``X-Request-ID`` where the
    server read the headers (``(name, value)`` pairs; ``None`` where it did not) and it is a
    short token, as the app takes it, else the next of ``ids``."""
    for name, value in headers or ():
        if isinstance(name, str) and name.lower() == REQUEST_ID_HEADER.lower() and valid_request_id(value):
            return str(value)
    return ids.next()


def refused_access_line(
    config: Any, method: str | None, path: str | None, status: int, seconds: float, request_id: str
) -> None:
    """The access log's line for a request the HTTP server refused, as the app writes one for
    each request it answers (``METHOD PATH STATUS TIMEms id=ID``; ``-`` for a method or path the
    server did not read), unless the app's ``config`` turns the access log off."""
    if isinstance(config, Mapping) and not config.get("ACCESS_LOG", True):
        return
    access_log.info(
        "%s %s %d %.2fms id=%s",
        logged_method(method) if isinstance(method, str) else "-",
        logged_path(path) if path else "-",
        status,
        seconds * 1000,
        request_id,
    )


def register(app: Flask) -> None:
    """Install the hooks; call before any other ``before_request`` so timing covers them."""
    recorder = RequestMetrics()
    app.extensions[METRICS_EXTENSION] = recorder
    ids = RequestIds()

    # Each hook resolves the request, g and the app once: every use of Flask's context proxies
    # costs a lookup, and these two hooks run on every request.
    @app.before_request
    def _start() -> None:
        context = g._get_current_object()
        context.started = time.perf_counter()
        given = request.headers.get(REQUEST_ID_HEADER)
        context.request_id = given if given and is_short_token(given) else ids.next()
        current_request_id.set(context.request_id)  # for the lines code below the web layer writes

    @app.after_request
    def _finish(response: Response) -> Response:
        context, current = g._get_current_object(), current_request()
        started = context.get("started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        rid = context.get("request_id") or ids.next()
        response.headers[REQUEST_ID_HEADER] = rid
        rule = current.url_rule
        method = current.method
        status = response.status_code
        label = method if method in KNOWN_METHODS else OTHER_METHOD  # no label per made-up verb
        recorder.request(rule.rule if rule is not None else route_of_refused(app, current), label, status, seconds)
        if app.config["ACCESS_LOG"]:
            shown = method if label == method else logged_method(method)  # the dev server takes any verb
            access_log.info("%s %s %d %.2fms id=%s", shown, logged_path(current.path), status, seconds * 1000, rid)
        return response

    @app.teardown_request
    def _forget_request_id(exc: BaseException | None) -> None:
        # the thread answers another request next, or none: no line may name this one's id
        current_request_id.set(None)

    app.register_blueprint(blueprint)


def route_of_refused(app: Flask, current: Request) -> str:
    """The template of the route a request matched no rule of: its route's when only the method
    was wrong (a 405) or it was a WebSocket handshake (a 400), else :data:`UNMATCHED_ROUTE`."""
    refused = current.routing_exception
    if isinstance(refused, MethodNotAllowed) and refused.valid_methods:
        method = next(iter(refused.valid_methods))
    elif isinstance(refused, WebsocketMismatch):  # a WebSocket handshake on a route (the server has none)
        method = current.method
    else:
        return UNMATCHED_ROUTE
    try:
        # as a plain request: a handshake with a wrong method (a 405) matched no rule either way
        rule, _ = app.url_map.bind_to_environ(current.environ).match(method=method, websocket=False, return_rule=True)
    except HTTPException:
        return UNMATCHED_ROUTE
    return str(rule.rule)


# counters and the model in service change from one request to the next: both uncached
@blueprint.get("/metrics")
@uncached
def metrics_text() -> Response:
    """Prometheus text exposition of the whole server's metrics."""
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@blueprint.get("/version")
@uncached
def version() -> Any:
    """Versions of the service and of the model this worker serves."""
    slot = current_slot()
    return jsonify(
        {
            "service": "legacy-assistant",
            "version": __version__,
            "python": platform.python_version(),
            "model": slot.model,
            "pid": os.getpid(),
        }
    )
