"""The chat page, its static files and icon, and the health and readiness checks (all public).

* ``/health`` (liveness): this process answers and serves a model.
* ``/ready`` (readiness, for a load balancer): 200 once *every* worker of the server serves,
  503 ``not_ready`` while any is still starting (or being replaced). The app learns that from
  the ``READINESS`` callable of its config, which the gunicorn worker sets (see
  :mod:`legacy_assistant.serving.server`); without one (``serve --dev``, an app built in code)
  this process is the whole server, and it is ready once it answers.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify

from legacy_assistant.web.context import current_slot
from legacy_assistant.web.errors import error_response
from legacy_assistant.web.favicon import favicon_ico
from legacy_assistant.web.security import Access, GuardedBlueprint

# The static files (the page's script and style sheet) are this blueprint's, and public like it.
blueprint = GuardedBlueprint("pages", __name__, access=Access.PUBLIC, static_folder="static", static_url_path="/static")

ICON_MAX_AGE = 86400  # seconds a browser may keep the icon


@blueprint.get("/")
def index() -> Any:
    return blueprint.send_static_file("index.html")


@blueprint.get("/favicon.ico")
def favicon() -> Response:
    response = Response(favicon_ico(), mimetype="image/x-icon")
    response.cache_control.public = True
    response.cache_control.max_age = ICON_MAX_AGE
    return response


@blueprint.get("/health")
def health() -> Any:
    model = current_slot().model
    return jsonify({"status": "ok", "model": model["name"], "intents": model["intents"]})


@blueprint.get("/ready")
def ready() -> Any:
    readiness = current_app.config["READINESS"]
    is_ready, workers = readiness() if readiness is not None else (True, {"ready": 1, "expected": 1})
    if not is_ready:
        return error_response(
            503,
            "not_ready",
            f"{workers['ready']} of {workers['expected']} workers serve; the others are starting",
            {"Retry-After": "1"},
        )
    return jsonify({"status": "ready", "workers": workers})
