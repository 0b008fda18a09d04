"""The Flask application factory.

:func:`create_app` loads the model (once per process: under gunicorn each worker calls it
after the fork), opens the conversation store and installs the blueprints and request hooks.
A serving setting (:mod:`legacy_assistant.serving.settings`) comes from the ``config``
argument, else from its ``LEGACY_ASSISTANT_*`` environment variable, else from its default;
the keys of :data:`APP_DEFAULTS` are set by code only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadHost, HTTPException, MethodNotAllowed
from werkzeug.routing import Map, MapAdapter, RequestRedirect
from werkzeug.routing.exceptions import WebsocketMismatch

from legacy_assistant.defaults import APP_NAME
from legacy_assistant.errors import ArtifactError
from legacy_assistant.serving import settings
from legacy_assistant.serving.assistant import Assistant
from legacy_assistant.serving.hotswap import AssistantSlot, describe_on_disk
from legacy_assistant.stores.base import open_store
from legacy_assistant.web.admin import blueprint as admin_blueprint
from legacy_assistant.web.api import blueprint as api_blueprint
from legacy_assistant.web.cakechat import blueprint as cakechat_blueprint
from legacy_assistant.web.classic import blueprint as classic_blueprint
from legacy_assistant.web.context import EXTENSION, current_request, slot_of
from legacy_assistant.web.conversations import blueprint as conversations_blueprint
from legacy_assistant.web.errors import register as install_error_handlers
from legacy_assistant.web.logged import logged_request
from legacy_assistant.web.metrics import batch_observer, model_changed, sample_memory
from legacy_assistant.web.observability import register as install_observability
from legacy_assistant.web.openapi import blueprint as openapi_blueprint
from legacy_assistant.web.pages import blueprint as pages_blueprint
from legacy_assistant.web.rasa import blueprint as rasa_blueprint
from legacy_assistant.web.security import parse_allowed_hosts, parse_origins, seal
from legacy_assistant.web.security import register as install_security

log = logging.getLogger(__name__)

# Config keys that no operator sets: code does (tests, the gunicorn worker), or they are fixed.
APP_DEFAULTS: dict[str, Any] = {
    "RESPONSE_SEED": None,  # fix to make response choice repeatable (tests)
    "MAX_SENDER_LENGTH": 128,
    "ON_RELOADED": None,  # called after this process swapped in a new model (gunicorn: tell the others)
    # () -> (ready, {"ready": n, "expected": m}): whether every process of the server serves
    # (gunicorn: every worker has built its app); None: this process is the whole server
    "READINESS": None,
    # Flask's debug mode, off whatever FLASK_DEBUG says (Flask reads it as the app is made): the
    # app answers the same under any environment, and serve --dev never runs Werkzeug's debugger
    # either (legacy_assistant.cli.serve)
    "DEBUG": False,
}

BLUEPRINTS = (
    api_blueprint,
    conversations_blueprint,
    cakechat_blueprint,
    classic_blueprint,
    rasa_blueprint,
    admin_blueprint,
    pages_blueprint,
    openapi_blueprint,
)


# The name a request whose Host header is no host name is routed under (RFC 2606 reserves it).
UNROUTABLE_HOST = "host.invalid"
OWN_STORE = "legacy_assistant.store"  # app.extensions key of the conversation store the app opened


class UnmergedSlashesMap(Map):
    """Werkzeug's URL map with ``merge_slashes`` off unless told otherwise: "/api//v1/chat" is a
    JSON 404 like any unknown path, not Werkzeug's HTML redirect to the path with its slashes
    merged. Given to the constructor, not set afterwards: before Werkzeug 3.0.2 the map's
    matcher keeps the value it was built with, and setting ``Map.merge_slashes`` later changes
    nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("merge_slashes", False)
        super().__init__(*args, **kwargs)


class AssistantFlask(Flask):
    """Flask, minus a per-call check this app does not need: no view or hook here is async, so
    :meth:`ensure_sync` returns the function as it is instead of inspecting it on every call
    (five inspections per request). Its URL map does not merge slashes (:class:`UnmergedSlashesMap`),
    and its one redirect names its target by path (:meth:`raise_routing_exception`)."""

    url_map_class = UnmergedSlashesMap

    def ensure_sync(self, func: Any) -> Any:
        return func

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """Flask's, except for a Host header Werkzeug cannot encode as a host name ("a..b", a
        label over 63 characters): Werkzeug refuses it before routing with its generic 400,
        on every route. Routes match on the path alone here, so the request is routed under a
        placeholder name instead: ``/health`` answers it, and the host guard refuses it on the
        API routes as any host not allowed."""
        try:
            return super().create_url_adapter(request)
        except BadHost:
            if request is None:
                raise
            return self.url_map.bind_to_environ(request.environ, server_name=UNROUTABLE_HOST, subdomain="")

    def log_exception(self, exc_info: Any) -> None:
        """Flask's line for a failure outside a view (a request hook, an error handler), whose
        answer is the 500 of :func:`legacy_assistant.web.errors.register`: named as every other
        line names a request, with its id and a conversation's sender id as its digest, not
        Flask's ``Exception on PATH [METHOD]`` with the path as sent."""
        self.logger.error("unhandled error on %s", logged_request(current_request()), exc_info=exc_info)

    def _handshake_on_route(self, request: Request) -> bool:
        """Whether ``request`` is a WebSocket handshake whose method a route of its path takes.
        On a path of several routes (a conversation's GET and DELETE) Werkzeug lets another
        route's method mismatch win over the WebSocket mismatch, and answers such a handshake 405
        with an ``Allow`` that leaves out the very method it was sent with."""
        adapter = self.create_url_adapter(request)
        if adapter is None or not adapter.websocket:
            return False
        try:
            adapter.match(method=request.method, websocket=False)
        except HTTPException:
            return False
        return True

    def raise_routing_exception(self, request: Request) -> NoReturn:
        """Flask's, except that a redirect (``/bot`` to the page at ``/bot/`` under
        ``SCRIPT_NAME=/bot``) names its target by its path alone. Werkzeug's Location is built
        from the request's Host and the scheme the server saw: behind a proxy that ends TLS it
        sent the browser to ``http://``, behind one on another port to the wrong port, and it
        put whatever Host a client sent into a permanent redirect. And a WebSocket handshake on a
        path of several routes is refused as on a path of one (:meth:`_handshake_on_route`)."""
        redirect = request.routing_exception
        if isinstance(redirect, MethodNotAllowed) and self._handshake_on_route(request):
            # as on a path of one route: the handshake's method is the route's, only the Upgrade is not
            request.routing_exception = WebsocketMismatch()
        if isinstance(redirect, RequestRedirect):
            target = urlsplit(redirect.new_url)
            # one leading slash: "//name/..." would be read as another host's address
            redirect.new_url = urlunsplit(("", "", "/" + target.path.lstrip("/"), target.query, target.fragment))
        super().raise_routing_exception(request)


def create_app(test_config: dict[str, Any] | None = None, assistant: Assistant | None = None) -> Flask:
    """Build the app; the model is loaded here, once per process.

    Args:
        test_config: config keys (``MODEL_DIR``, ``STORE_URL``, ...) that take precedence over
            the environment and the defaults. A serving setting's key is checked as its
            variable is: text is read as the variable's text would be (``"30"``, ``"off"``),
            any other value must be one the setting takes (a number within its bounds, True or
            False for a switch, a list of host names or origins for ``ALLOWED_HOSTS`` and
            ``CORS_ORIGINS``).
        assistant: an already loaded assistant to serve (tests share one across apps); such an
            app has no model directory to reload from.
    Raises:
        ConfigError: a setting's value in ``test_config`` that cannot be used, naming its key;
            a ``LEGACY_ASSISTANT_*`` variable (one not overridden by ``test_config``)
            holds a value that cannot be used, or is no setting at all (a misspelt token's
            variable, as ``serve`` refuses it: an app a WSGI server builds itself is checked too).
    """
    settings.check_environment()
    given = settings.check_config(test_config or {})
    # the static files are the pages blueprint's, so that their access is declared like any route's
    app = AssistantFlask(APP_NAME, static_folder=None)
    app.config.from_mapping(APP_DEFAULTS)
    from_environment = [s for s in settings.in_scope(settings.APP) if s.config_key not in given]
    app.config.from_mapping(settings.app_config(settings.resolve(settings=from_environment)))
    app.config.from_mapping(given)
    app.config["CORS_ORIGINS"] = parse_origins(app.config["CORS_ORIGINS"])
    app.config["ALLOWED_HOSTS"] = parse_allowed_hosts(app.config.get("ALLOWED_HOSTS"))
    settings.check_tokens(app.config["API_TOKEN"], app.config["ADMIN_TOKEN"])
    json_provider = cast(DefaultJSONProvider, app.json)  # Flask's own provider, typed as its base class
    json_provider.sort_keys = False
    json_provider.compact = True

    if assistant is None:
        store = app.extensions[OWN_STORE] = _open_store(app)
        slot = AssistantSlot(
            _load_assistant(app.config, store),
            lambda: _reload_assistant(app),
            lambda: describe_on_disk(app.config["MODEL_DIR"], app.config["RESPONDER_DIR"]),
        )
        if app.config["WARM_UP"]:
            _warm_up(slot, app.config)
        responder = slot.model["responder"]
        log.info(
            "serving model %s %s from %s%s (pid %d)",
            slot.model["name"],
            slot.model["version"],
            app.config["MODEL_DIR"],
            f" and responder {responder['name']} {responder['version']} from {app.config['RESPONDER_DIR']}"
            if responder
            else ", no responder",
            os.getpid(),
        )
    else:
        slot = AssistantSlot(assistant)
    app.extensions[EXTENSION] = slot

    install_observability(app)  # first: its timer must start before the other hooks run
    install_security(app)
    install_error_handlers(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    seal(app)  # every route must have declared who may call it
    model_changed(slot.model)
    sample_memory()  # with its model loaded: a worker that has answered nothing yet listed 0 bytes
    return app


def close_store(app: Flask) -> None:
    """Close the conversation store ``app`` opened (not one it was given with an assistant), as
    its process ends; later calls do nothing. A SQLite store empties its write-ahead log into the
    database file as it closes: a server stopped without this left the latest turns in the log,
    missing from a copy of the database file alone."""
    store = app.extensions.pop(OWN_STORE, None)
    if store is not None:
        store.close()


def _open_store(app: Flask) -> Any:
    config = app.config
    store = open_store(
        config["STORE_URL"],
        default_dir=app.instance_path,
        ttl_seconds=float(config["CONVERSATION_TTL"]),
        max_turns=int(config["MAX_TURNS"]),
    )
    log.info("conversation store: %s", store_description(store, config["STORE_URL"]))
    return store


def store_description(store: Any, url: str | None) -> str:
    """How the log names the conversation store ``store`` opened from ``url``: a Redis store by
    its URL as :func:`~legacy_assistant.stores.redis_store.redacted` shows it (the password
    hidden), any other by its repr. A Redis store's own repr names only its address, database
    and prefix."""
    from legacy_assistant.stores.redis_store import RedisStore, redacted

    if isinstance(store, RedisStore):
        return f"RedisStore({redacted(url or '')})"
    return repr(store)


def _load_assistant(config: Mapping[str, Any], store: Any) -> Assistant:
    assistant = Assistant.load(
        config["MODEL_DIR"],
        threshold=config["THRESHOLD"],
        seed=config["RESPONSE_SEED"],
        follow_ups=config["FOLLOW_UPS"],
        escape_confidence=float(config["ESCAPE_CONFIDENCE"]),
        store=store,
        intra_op_threads=int(config["INTRA_OP_THREADS"]),
        inter_op_threads=int(config["INTER_OP_THREADS"]),
        responder_dir=config["RESPONDER_DIR"],
        fallback=config["FALLBACK"],
        generation_mode=config["GENERATION_MODE"],
        condition_strength=float(config["CONDITION_STRENGTH"]),
    )
    if config["BATCHING"]:
        assistant.enable_batching(
            int(config["BATCH_MAX_SIZE"]),
            float(config["BATCH_MAX_WAIT_MS"]) / 1000.0,
            batch_observer("classifier"),
            batch_observer("responder"),
        )
    return assistant


def _warm_up(slot: AssistantSlot, config: Mapping[str, Any]) -> None:
    """Ready the loaded models for their first requests (:meth:`Assistant.warm_up`; a reload
    does the same before its swap); a model that cannot answer stops the start here."""
    try:
        slot.current.warm_up()
    except Exception as exc:
        slot.close()
        where = f"{config['MODEL_DIR']}" + (f" and {config['RESPONDER_DIR']}" if config["RESPONDER_DIR"] else "")
        raise ArtifactError(f"{where}: the model loaded but failed to answer a first request: {exc}") from exc


def _reload_assistant(app: Flask) -> Assistant:
    return _load_assistant(app.config, slot_of(app).current.store)
