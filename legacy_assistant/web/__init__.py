"""The Flask application factory.

:func:`create_app` loads the model (once per process: under gunicorn each worker calls it
after the fork), opens the conversation store and installs the blueprints and request hooks.
Settings come from :data:`DEFAULTS`, then the environment (:func:`settings_from_environment`),
then the ``config`` argument.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from legacy_assistant.defaults import DEFAULT_MODEL_DIR
from legacy_assistant.serving.assistant import Assistant
from legacy_assistant.errors import ConfigError
from legacy_assistant.serving.hotswap import AssistantSlot
from legacy_assistant.stores.base import DEFAULT_MAX_TURNS, DEFAULT_TTL_SECONDS, open_store

log = logging.getLogger(__name__)

EXTENSION = "legacy_assistant"
ENV_PREFIX = "LEGACY_ASSISTANT_"

DEFAULTS: dict[str, Any] = {
    "MODEL_DIR": str(DEFAULT_MODEL_DIR),
    "THRESHOLD": None,  # None: the threshold stored in the model
    "RESPONSE_SEED": None,  # fix to make response choice repeatable (tests)
    "INTRA_OP_THREADS": 0,  # TensorFlow session thread pools (0: TensorFlow picks, one per core)
    "INTER_OP_THREADS": 0,
    "STORE_URL": None,  # None: SQLite file in the instance folder; "memory"; "sqlite:///..."; "redis://..."
    "CONVERSATION_TTL": DEFAULT_TTL_SECONDS,  # idle seconds before a conversation is forgotten (0: never)
    "MAX_TURNS": DEFAULT_MAX_TURNS,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "MAX_TEXT_LENGTH": 1000,
    "MAX_SENDER_LENGTH": 128,
    "API_TOKEN": None,
    "ADMIN_TOKEN": None,
    "CORS_ORIGINS": (),
    "ACCESS_LOG": True,
    "ON_RELOADED": None,  # called after this process swapped in a new model (gunicorn: tell the others)
}

# environment variable (without the prefix) -> (config key, parser)
ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "MODEL": ("MODEL_DIR", str),
    "THRESHOLD": ("THRESHOLD", float),
    "INTRA_OP_THREADS": ("INTRA_OP_THREADS", int),
    "INTER_OP_THREADS": ("INTER_OP_THREADS", int),
    "STORE": ("STORE_URL", str),
    "CONVERSATION_TTL": ("CONVERSATION_TTL", float),
    "MAX_TURNS": ("MAX_TURNS", int),
    "MAX_BODY_BYTES": ("MAX_CONTENT_LENGTH", int),
    "MAX_TEXT_LENGTH": ("MAX_TEXT_LENGTH", int),
    "API_TOKEN": ("API_TOKEN", str),
    "ADMIN_TOKEN": ("ADMIN_TOKEN", str),
    "CORS_ORIGINS": ("CORS_ORIGINS", str),
    "ACCESS_LOG": ("ACCESS_LOG", lambda v: v.strip().lower() not in ("0", "false", "no", "off")),
}


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Config from ``LEGACY_ASSISTANT_*`` variables; raises :class:`ConfigError` for a bad value."""
    settings: dict[str, Any] = {}
    for name, (key, parse) in ENVIRONMENT.items():
        raw = environ.get(ENV_PREFIX + name)
        if raw is None or raw == "":
            continue
        try:
            settings[key] = parse(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{name}={raw!r} is not a valid value") from None
    return settings


class AssistantFlask(Flask):
    """Flask, minus a per-call check this app does not need: no view or hook here is async, so
    :meth:`ensure_sync` returns the function as it is instead of inspecting it on every call
    (five inspections per request)."""

    def ensure_sync(self, func: Any) -> Any:
        return func


def create_app(test_config: dict[str, Any] | None = None, assistant: Assistant | None = None) -> Flask:
    """Build the app; the model is loaded here, once per process.

    Args:
        test_config: overrides of :data:`DEFAULTS` (``MODEL_DIR``, ``STORE_URL``, ...).
        assistant: an already loaded assistant to serve (tests share one across apps); such an
            app has no model directory to reload from.
    """
    from legacy_assistant.web import security

    app = AssistantFlask(__name__, static_folder="static", static_url_path="/static")
    app.config.from_mapping(DEFAULTS)
    app.config.from_mapping(settings_from_environment())
    if test_config:
        app.config.from_mapping(test_config)
    app.config["CORS_ORIGINS"] = security.parse_origins(app.config["CORS_ORIGINS"])
    app.json.sort_keys = False
    app.json.compact = True

    if assistant is None:
        slot = AssistantSlot(_load_assistant(app.config, _open_store(app)), lambda: _reload_assistant(app))
        log.info("serving model %s %s from %s (pid %d)", slot.model["name"], slot.model["version"],
                 app.config["MODEL_DIR"], os.getpid())
    else:
        slot = AssistantSlot(assistant)
    app.extensions[EXTENSION] = slot

    from legacy_assistant.web import admin, api, classic, errors, metrics, observability, openapi, pages, rasa

    observability.register(app)  # first: its timer must start before the other hooks run
    security.register(app)
    errors.register(app)
    for module in (api, classic, rasa, admin, pages, openapi):
        app.register_blueprint(module.blueprint)
    metrics.model_changed(slot.model)
    return app


def _open_store(app: Flask) -> Any:
    config = app.config
    store = open_store(
        config["STORE_URL"],
        default_dir=app.instance_path,
        ttl_seconds=float(config["CONVERSATION_TTL"]),
        max_turns=int(config["MAX_TURNS"]),
    )
    log.info("conversation store: %r", store)
    return store


def _load_assistant(config: Mapping[str, Any], store: Any) -> Assistant:
    return Assistant.load(
        config["MODEL_DIR"],
        threshold=config["THRESHOLD"],
        seed=config["RESPONSE_SEED"],
        store=store,
        intra_op_threads=int(config["INTRA_OP_THREADS"]),
        inter_op_threads=int(config["INTER_OP_THREADS"]),
    )


def _reload_assistant(app: Flask) -> Assistant:
    slot: AssistantSlot = app.extensions[EXTENSION]
    return _load_assistant(app.config, slot.current.store)


def current_slot() -> AssistantSlot:
    """The request's app's :class:`AssistantSlot`."""
    return current_app.extensions[EXTENSION]


def leased() -> contextlib.AbstractContextManager[Assistant]:
    """The assistant in service, kept open for the block even if a reload swaps it out."""
    return current_app.extensions[EXTENSION].lease()


def current_assistant() -> Assistant:
    """The assistant in service now (for quick reads; views answering a request use :func:`leased`)."""
    return current_app.extensions[EXTENSION].current
