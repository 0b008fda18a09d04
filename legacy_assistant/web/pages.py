"""The chat page and the health check."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify

from legacy_assistant.web import current_slot

blueprint = Blueprint("pages", __name__)


@blueprint.get("/")
def index() -> Any:
    return current_app.send_static_file("index.html")


@blueprint.get("/health")
def health() -> Any:
    model = current_slot().model
    return jsonify({"status": "ok", "model": model["name"], "intents": model["intents"]})
