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

from datetime import datetime
from typing import Any

from flask import Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import NotFound, RequestedRangeNotSatisfiable
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
# environ key: the conditional headers and the Range of a static file's request, taken out of
# Werkzeug's reach and evaluated by _static_preconditions in the order of RFC 9110 (13.2.2)
PRECONDITIONS = "legacy_assistant.preconditions"
_CONDITIONAL = ("HTTP_IF_MATCH", "HTTP_IF_UNMODIFIED_SINCE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
_RANGED = ("HTTP_RANGE", "HTTP_IF_RANGE")


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
    # Werkzeug fails "If-Match: *" on a file that is there, serves a Range (or answers 416 to one
    # past the end) before an If-Match or If-None-Match is evaluated, answers 412 with the whole
    # file as its body, and takes a weak or older If-Range for a match: Werkzeug sends the whole
    # file, and these are evaluated here
    environ = request.environ
    environ[PRECONDITIONS] = {name: environ.pop(name) for name in _CONDITIONAL + _RANGED if name in environ}


@blueprint.after_request
def _static_preconditions(response: Response) -> Response:
    """A static file's answer in the order of RFC 9110 (13.2.2): 412 ``precondition_failed`` when
    the request's ``If-Match`` (else its ``If-Unmodified-Since``) does not hold for the file, then
    304 where its ``If-None-Match`` (else its ``If-Modified-Since``) says the client has it, and
    only then its ``Range`` (where an ``If-Range`` holds): a part, or 416."""
    if request.endpoint != "pages.static" or response.status_code != 200:
        return response
    given: dict[str, str] = request.environ.get(PRECONDITIONS, {})
    failed = _failed_precondition(response, given)
    if failed is not None:
        response.close()  # the file it would have sent
        asked = request.script_root + request.path
        return error_response(412, "precondition_failed", f"the file at {asked!r} does not meet the request's {failed}")
    if request.method in ("GET", "HEAD") and _not_modified(response, given):
        response.status_code = 304  # Werkzeug sends no body and no entity headers with it
        return response
    if "HTTP_RANGE" not in given or not _if_range_holds(response, given.get("HTTP_IF_RANGE")):
        return response
    try:
        response.make_conditional(
            {
                "REQUEST_METHOD": request.method,
                "HTTP_RANGE": _whole_suffix(given["HTTP_RANGE"], response.content_length),
            },
            accept_ranges=True,
            complete_length=response.content_length,
        )
        return response
    except RequestedRangeNotSatisfiable as exc:
        response.close()
        return current_app.make_response(current_app.handle_http_exception(exc))


def _whole_suffix(given: str, length: int | None) -> str:
    """The Range ``given`` (one byte range, as :func:`_static_request` left it), except that a
    suffix range longer than the file's ``length`` (``bytes=-N``, N over it) is the whole file
    (``bytes=0-``), as RFC 9110 (14.1.3) reads it: Werkzeug takes it for one that starts before
    the file and answers 416."""
    parsed = parse_range_header(given)
    if parsed is None or length is None or not parsed.ranges:
        return given
    start, stop = parsed.ranges[0]
    if stop is None and start < 0 and -start > length:
        return "bytes=0-"
    return given


def _failed_precondition(response: Response, given: dict[str, str]) -> str | None:
    """The header (``If-Match``, else ``If-Unmodified-Since``) that does not hold for the file
    ``response`` sends, or None."""
    wanted = parse_etags(given.get("HTTP_IF_MATCH"))
    if wanted:
        etag, weak = response.get_etag()
        if wanted.star_tag or (etag is not None and not weak and wanted.is_strong(etag)):
            return None
        return "If-Match"
    since, modified = _date(given.get("HTTP_IF_UNMODIFIED_SINCE")), response.last_modified
    if since is None or modified is None or modified <= since:
        return None
    return "If-Unmodified-Since"


def _not_modified(response: Response, given: dict[str, str]) -> bool:
    """Whether the request's ``If-None-Match`` (weak comparison; ``*`` for any file), else its
    ``If-Modified-Since``, says the client holds the file ``response`` sends."""
    held = parse_etags(given.get("HTTP_IF_NONE_MATCH"))
    if held:
        etag, _ = response.get_etag()
        return held.star_tag or (etag is not None and held.contains_weak(etag))
    since, modified = _date(given.get("HTTP_IF_MODIFIED_SINCE")), response.last_modified
    return since is not None and modified is not None and modified <= since


def _if_range_holds(response: Response, if_range: str | None) -> bool:
    """Whether a Range is served (RFC 9110, 13.1.5): no ``If-Range``, or one naming the file's
    entity tag (a strong one: a weak tag never holds) or its exact ``Last-Modified`` date."""
    if if_range is None:
        return True
    date = _date(if_range)
    if date is not None:
        return response.last_modified is not None and response.last_modified == date
    etag, weak = response.get_etag()
    stated = if_range.strip()
    return etag is not None and not weak and not stated.startswith("W/") and stated == f'"{etag}"'


def _date(value: str | None) -> datetime | None:
    """An HTTP date header's value as a datetime, or None when there is none or it is no valid
    date, which RFC 9110 (13.1.3, 13.1.4) has the server ignore. Werkzeug's ``parse_date`` gives
    None for most such values, but lets ``OverflowError`` out for a year or hour past what a C
    integer holds (``Mon, 01 Jan 99999999999 00:00:00 GMT``)."""
    try:
        return parse_date(value)
    except OverflowError:
        return None


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
