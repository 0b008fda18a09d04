"""The Flask application factory."""
from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask

from legacy_assistant.assistant import DEFAULT_MODEL_DIR, Assistant

log = logging.getLogger(__name__)

EXTENSION = "legacy_assistant"

DEFAULTS: dict[str, Any] = {
    "MODEL_DIR": os.environ.get("LEGACY_ASSISTANT_MODEL", str(DEFAULT_MODEL_DIR)),
    "THRESHOLD": None,  # None: the threshold stored in the model
    "RESPONSE_SEED": None,  # fix to make response choice repeatable (tests)
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "MAX_TEXT_LENGTH": 1000,
    "MAX_SENDER_LENGTH": 128,
    "JSON_SORT_KEYS": False,
}


def create_app(test_config: dict[str, Any] | None = None, assistant: Assistant | None = None) -> Flask:
    """Build the app; the model is loaded here, once per process.

    Args:
        test_config: overrides of :data:`DEFAULTS` (``MODEL_DIR``, ``THRESHOLD``, ...).
        assistant: an already loaded assistant to serve (tests share one across apps).
    """
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    app.config.from_mapping(DEFAULTS)
    if test_config:
        app.config.from_mapping(test_config)
    app.json.sort_keys = False

    if assistant is None:
        assistant = Assistant.load(
            app.config["MODEL_DIR"], threshold=app.config["THRESHOLD"], seed=app.config["RESPONSE_SEED"]
        )
        log.info("loaded model %s from %s", assistant.predictor.name, app.config["MODEL_DIR"])
    app.extensions[EXTENSION] = assistant

    from legacy_assistant.web import api, classic, errors, pages

    errors.register(app)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(classic.blueprint)
    app.register_blueprint(pages.blueprint)
    return app


def current_assistant() -> Assistant:
    from flask import current_app

    return current_app.extensions[EXTENSION]
