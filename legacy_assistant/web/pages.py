"""The chat page, its static files and the health check (all public)."""
from __future__ import annotations

from typing import Any

from flask import jsonify

from legacy_assistant.web.context import current_slot
from legacy_assistant.web.security import Access, GuardedBlueprint

# The static files (the page's script and style sheet) are this blueprint's, and public like it.
blueprint = GuardedBlueprint("pages", __name__, access=Access.PUBLIC, static_folder="static",
                             static_url_path="/static")


@blueprint.get("/")
def index() -> Any:
    return blueprint.send_static_file("index.html")


@blueprint.get("/health")
def health() -> Any:
    model = current_slot().model
    return jsonify({"status": "ok", "model": model["name"], "intents": model["intents"]})
