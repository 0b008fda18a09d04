"""The chat page, its static files and icon, and the health and readiness checks (all public).

* ``/``: the chat page, ``templates/index.html`` rendered with what this server accepts: the
  message input's ``data-max-chars`` is ``MAX_TEXT_LENGTH`` (the script keeps the input to it,
  counting code points as the server does), and the emotion selector lists the
  responder's conditions (no selector without a responder). The log's ``data-kept-turns`` is
  how many turns of a conversation the store keeps, and ``data-started-over`` the note the page
  puts where the store no longer holds the turns it shows (the playground's words).

* ``/health`` (liveness): this process answers and serves a model; it names the intent model
  and the responder (null without one) and the responder's emotions.
* ``/ready`` (readiness, for a load balancer): 200 once *every* worker of the server serves,
  503 ``not_ready`` while any is still starting (or being replaced), and once the server
  stops. The app learns that from the ``READINESS`` callable of its config, which the gunicorn
  worker sets (see :mod:`legacy_assistant.serving.server`); without one (``serve --dev``, an
  app built in code) this process is the whole server, and it is ready once it answers.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import NotFound
from werkzeug.http import parse_date, parse_etags, parse_range_header

from legacy_assistant.responder.modes import MAX_CONDITION_STRENGTH
from legacy_assistant.serving.dialogue import STARTED_OVER
from legacy_assistant.web.context import current_assistant, current_slot
from legacy_assistant.web.errors import error_response
from legacy_assistant.web.favicon import favicon_ico
from legacy_assistant.web.security import Access, GuardedBlueprint, uncached

# The static files (the page's script and style sheet) are this blueprint's, and public like it;
# the page itself is a template (templates/), never served raw.
blueprint = GuardedBlueprint(
    "pages",
    __name__,
    access=Access.PUBLIC,
    static_folder="static",
    static_url_path="/static",
    template_folder="templates",
)

ICON_MAX_AGE = 86400  # seconds a browser may keep the icon
# environ key: the If-Match and If-Unmodified-Since of a static file's request, taken out of
# Werkzeug's reach and evaluated by _static_preconditions
PRECONDITIONS = "legacy_assistant.preconditions"


@blueprint.before_request
def _static_request() -> None:
    if request.endpoint != "pages.static":
        return
    if str((request.view_args or {}).get("filename", "")).endswith("/"):
        # "chat.js/" is no file; served, its relative URLs would resolve one folder down
        raise NotFound()
    given = request.headers.get("Range")
    parsed = parse_range_header(given) if given is not None else None
    if given is not None and (parsed is None or parsed.units.lower() != "bytes" or len(parsed.ranges) != 1):
        # a range in a unit other than bytes, or not a range at all: RFC 9110 (14.2) has the
        # server ignore it and send the whole file, where Werkzeug would answer 416; so too
        # several ranges, which Werkzeug does not serve (it would answer 416 to ranges it could)
        request.environ.pop("HTTP_RANGE", None)
    # Werkzeug fails "If-Match: *" on a file that is there, serves a Range before an If-Match
    # that fails, and answers 412 with the whole file as its body: these two are evaluated here
    environ = request.environ
    environ[PRECONDITIONS] = (environ.pop("HTTP_IF_MATCH", None), environ.pop("HTTP_IF_UNMODIFIED_SINCE", None))


@blueprint.after_request
def _static_preconditions(response: Response) -> Response:
    """A static file's answer, or 412 ``precondition_failed`` when the request's ``If-Match`` (else
    its ``If-Unmodified-Since``) does not hold for the file: before a Range or a 304 (RFC 9110, 13.2.2)."""
    if request.endpoint != "pages.static" or response.status_code not in (200, 206, 304):
        return response
    if_match, if_unmodified_since = request.environ.get(PRECONDITIONS, (None, None))
    wanted = parse_etags(if_match)
    if wanted:
        etag, weak = response.get_etag()
        if wanted.star_tag or (etag is not None and not weak and wanted.is_strong(etag)):
            return response
        failed = "If-Match"
    else:
        since, modified = parse_date(if_unmodified_since), response.last_modified
        if since is None or modified is None or modified <= since:
            return response
        failed = "If-Unmodified-Since"
    response.close()  # the file it would have sent
    asked = request.script_root + request.path
    return error_response(412, "precondition_failed", f"the file at {asked!r} does not meet the request's {failed}")


@blueprint.get("/")
def index() -> Any:
    assistant = current_assistant()
    # the emotion only steers generated replies: no selector where the fallback is canned
    generates = assistant.generates_fallback
    emotions = assistant.emotions if generates else ()
    responder = assistant.responder
    return render_template(
        "index.html",
        max_text_length=int(current_app.config["MAX_TEXT_LENGTH"]),
        emotions=emotions,
        default_emotion=responder.default_condition if responder is not None else None,
        # the strength slider: only for a responder that has condition guidance
        guided=generates and responder is not None and responder.guided,
        condition_strength=f"{responder.options.condition_strength:g}" if responder is not None else "0",
        max_condition_strength=f"{MAX_CONDITION_STRENGTH:g}",
        # every store keeps a number of turns; 0 (not said) for one that does not say it
        kept_turns=int(getattr(assistant.store, "max_turns", 0)),
        started_over=STARTED_OVER,
    )


@blueprint.get("/favicon.ico")
def favicon() -> Response:
    response = Response(favicon_ico(), mimetype="image/x-icon")
    response.cache_control.public = True
    response.cache_control.max_age = ICON_MAX_AGE
    return response


# the health and readiness of this moment, both uncached: a cache between a probe and the
# server would report a worker that stopped, or a server still starting, as it was
@blueprint.get("/health")
@uncached
def health() -> Any:
    model = current_slot().model
    responder = model["responder"]
    return jsonify(
        {
            "status": "ok",
            "model": model["name"],
            "intents": model["intents"],
            "responder": responder["name"] if responder else None,
            "emotions": responder["emotions"] if responder else [],
        }
    )


@blueprint.get("/ready")
@uncached
def ready() -> Any:
    readiness = current_app.config["READINESS"]
    is_ready, workers = readiness() if readiness is not None else (True, {"ready": 1, "expected": 1})
    if not is_ready and workers.get("stopping"):
        return error_response(503, "not_ready", "the server is stopping", {"Retry-After": "1"})
    if not is_ready:
        return error_response(
            503,
            "not_ready",
            f"{workers['ready']} of {workers['expected']} workers serve; the others are starting, or failing to "
            "(a damaged model on disk, a store out of reach: the server's log says which)",
            {"Retry-After": "1"},
        )
    return jsonify({"status": "ready", "workers": workers})
