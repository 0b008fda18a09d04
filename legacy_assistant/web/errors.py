"""Every error is JSON ``{"error": {"code", "message"}}`` with its status; never a stack trace.

Views validate their input with :func:`json_object` and :func:`text_field`, which raise
:class:`ApiError` with a 4xx status and a message that names the field and the problem.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask, Request, Response, current_app, has_request_context, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge, default_exceptions
from werkzeug.routing.exceptions import WebsocketMismatch

from legacy_assistant.common.repeats import Repeats
from legacy_assistant.errors import MessageIdReused, ModelClosed, ReadingStopped, RequestError, StoreError
from legacy_assistant.serving.batching import BatcherClosed
from legacy_assistant.web.context import current_request
from legacy_assistant.web.logged import logged_request

log = logging.getLogger(__name__)

# Response headers of a werkzeug HTTPException worth keeping on the JSON error (405's Allow).
KEPT_HEADERS = ("Allow", "Content-Range", "Retry-After", "WWW-Authenticate")


# Clients of cakechat's API read an error's text from a top-level "message"; errors of routes
# under this prefix (unknown routes too) carry it beside this project's "error" object.
CAKECHAT_PREFIX = "/cakechat_api/"

# A store that fails fails every request that needs it: the first failure is an ERROR line,
# further ones with the same text one line per this many seconds with their count (each at
# DEBUG with its id).
STORE_FAILURE_LOG_INTERVAL_S = 60.0
STORE_FAILURES_EXTENSION = "legacy_assistant.store_failures"  # app.extensions key of the Repeats
_SENDER_DIGEST = re.compile(r"\b[0-9a-f]{12}\b(?= \(SHA-256 digest\))")  # as stores.base.sender_digest writes it
# The operation a store names in its failure ("Redis conversation store: history failed: ...",
# "SQLite conversation store PATH: save failed: ..."): a store that is down fails every kind of
# operation with the same cause, which is one outage, counted under one line. A path may hold
# ": " or ":" itself (C:\data\chat.db): the first "OPERATION failed: " after it ends it. Which
# command of a Redis transaction met the cause is the operation's too (a replica's "You can't
# write against a read only replica" is command 1 of a save's, command 4 of a deletion's).
_STORE_OPERATION = re.compile(
    r"^((?:Redis conversation store[^:]*|SQLite conversation store .*?): )[a-z ]+ failed: "
    r"(?:command \d+ of the transaction: )?",
    re.DOTALL,
)


def store_failure_key(message: str) -> str:
    """The text that tells one store failure from another, for counting repeats: ``message``
    without the conversation's digest (one kind of failure of many conversations is one) and
    without the operation that met it (a store that is down fails them all alike)."""
    return _STORE_OPERATION.sub(r"\1", _SENDER_DIGEST.sub("#", message))


class ApiError(Exception):
    """Raised by views (and request hooks) for a request the API refuses. ``client_message``
    replaces the top-level ``message`` that errors of cakechat's routes carry (its own texts)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        client_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.client_message = client_message


def error_body(code: str, message: str, client_message: str | None = None) -> str:
    """``{"error": {"code", "message"}}``, compact: the body of every error; with
    ``client_message``, ``{"message": client_message, "error": {...}}``."""
    body: dict[str, Any] = {} if client_message is None else {"message": client_message}
    body["error"] = {"code": code, "message": message}
    return json.dumps(body, separators=(",", ":"))


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    client_message: str | None = None,
) -> Response:
    """The JSON error body every route uses (in a request under :data:`CAKECHAT_PREFIX`, with
    cakechat's top-level ``message``: ``client_message``, else ``message``)."""
    if client_message is None and has_request_context() and request.path.startswith(CAKECHAT_PREFIX):
        client_message = message
    response = Response(error_body(code, message, client_message), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_code_name(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def refusal_answer(status: int, reason: str, message: str, request_id: str) -> bytes:
    """The whole HTTP answer (status line, headers, body) to a request the HTTP server refuses
    before the app sees it (gunicorn under ``serve``, http.server under ``serve --dev``): the
    app's JSON error (``{"error": {"code", "message"}}``) with the request's ``X-Request-ID``,
    the headers every answer carries for browsers, and ``Connection: close``. ``reason`` is the
    status line's phrase where ``status`` is no standard one."""
    from http import HTTPStatus

    from legacy_assistant.web.security import BROWSER_HEADERS, DATA_POLICY

    body = error_body(status_code_name(status), message).encode("utf-8")
    with contextlib.suppress(ValueError):
        reason = HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Request-ID: {request_id}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in BROWSER_HEADERS)
        + f"Content-Security-Policy: {DATA_POLICY}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def status_code_name(status: int) -> str:
    """The error code of a bare HTTP status, as the app words it: werkzeug's name for the status
    (414: ``request_uri_too_long``), ``internal_error`` for 500 (used for errors the HTTP server
    answers before the app sees the request)."""
    if status == 500:
        return "internal_error"
    exception = default_exceptions.get(status)
    return _http_code_name(exception()) if exception is not None else "error"


def outside_prefix_message(script_name: str) -> str:
    """The 404 message of a path outside the prefix the server answers under (its SCRIPT_NAME)."""
    return f"this server answers only under its prefix, SCRIPT_NAME {script_name!r}"


def check_under_prefix(environ: Mapping[str, Any]) -> None:
    """Refuse, as a 404, a path that only begins with the prefix's text: gunicorn takes
    ``/bothealth`` to be under ``SCRIPT_NAME=/bot``, as ``PATH_INFO`` ``health``, which routing
    would then answer as ``/health``.

    Raises:
        ApiError: 404 ``not_found``.
    """
    script_name, path = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "")
    if script_name and path and not path.startswith("/"):
        raise ApiError(404, "not_found", outside_prefix_message(script_name))


def _http_message(exc: HTTPException) -> str:
    if exc.code == 413:
        return f"request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    # the path as the client asked for it: under a SCRIPT_NAME prefix, the prefix and the app's path
    asked, root = request.script_root + request.path, request.script_root
    if exc.code == 404:
        if request.url_rule is not None:  # the route exists: what it names does not (a static file)
            return f"nothing at {asked!r}"
        return f"no route {asked!r}; see {root}/openapi.json for the routes"
    if exc.code == 405:
        return f"method {request.method} is not allowed on {asked!r}"
    if isinstance(exc, WebsocketMismatch):  # Werkzeug's own words blame "the browser (or proxy)"
        return f"{asked!r} is no WebSocket route (this server has none): send the request without Upgrade: websocket"
    return exc.description or exc.name or "error"


def register(app: Flask) -> None:
    """Install the JSON error handlers on ``app``."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers, exc.client_message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        if exc.code == 500:  # Flask's stand-in for a failure outside a view (a request hook): logged already
            return error_response(500, "internal_error", "the server failed to handle this request")
        kept = {name: value for name, value in exc.get_headers() if name in KEPT_HEADERS}
        if "Allow" in kept:  # in the order OPTIONS gives, not a set's
            kept["Allow"] = ", ".join(sorted(method.strip() for method in kept["Allow"].split(",")))
        return error_response(exc.code or 500, _http_code_name(exc), _http_message(exc), kept)

    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        # a model call the request asked for cannot be answered as asked (unknown emotion, ...)
        return error_response(400, "invalid_request", exc.public_message or str(exc))

    @app.errorhandler(MessageIdReused)
    def _message_id_reused(exc: MessageIdReused) -> Response:
        # as idempotency keys are: a key sent again with another body is refused, not replayed
        return error_response(
            422,
            "message_id_reused",
            "field 'message_id' names another message of this conversation: a message sent again keeps "
            "its text; give a new message an id of its own",
        )

    @app.errorhandler(BatcherClosed)
    @app.errorhandler(ModelClosed)
    def _batcher_closed(exc: BatcherClosed | ModelClosed) -> Response:
        # only at shutdown: a reload closes a model (and its batchers) after its last request
        return error_response(503, "shutting_down", "the model is shutting down; try again", {"Retry-After": "1"})

    app.extensions.setdefault(STORE_FAILURES_EXTENSION, Repeats(STORE_FAILURE_LOG_INTERVAL_S))

    @app.errorhandler(StoreError)
    def _store_error(exc: StoreError) -> Response:
        failures: Repeats = current_app.extensions[STORE_FAILURES_EXTENSION]
        # by its text, the conversation's digest and the operation left out: one kind of failure
        # of many conversations is counted as one, and one conversation's fault is no outage
        left_out = failures.due(store_failure_key(str(exc)))
        if left_out is None:
            log.debug("conversation store failed on %s: %s", logged_request(current_request()), exc)
        else:
            log.error(
                "conversation store failed on %s: %s; the request answered 503 store_unavailable: fix what the "
                "store said (a store that is down or refuses the credentials of --store or LEGACY_ASSISTANT_STORE, "
                "a SQLite file that cannot be written); the same failure is logged at most once every %g s%s",
                logged_request(current_request()),
                str(exc).rstrip("."),  # Redis's own words end in a full stop
                failures.interval,
                f" ({left_out} more since the line before, each in the access log with status 503)" if left_out else "",
            )
        return error_response(
            503, "store_unavailable", "the conversation store is unavailable; try again shortly", {"Retry-After": "1"}
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s", logged_request(current_request()))
        return error_response(500, "internal_error", "the server failed to handle this request")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object, or an :class:`ApiError` that says why not."""
    current = current_request()
    if not current.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json")
    encoding = current.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):  # a gzip body would otherwise be "not UTF-8", a plain one read as is
        raise ApiError(
            415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported: send the body uncompressed"
        )
    # gunicorn takes "gzip, chunked" (and deflate, compress) and undoes only the chunking
    codings = [c.strip() for c in current.headers.get("Transfer-Encoding", "").lower().split(",") if c.strip()]
    compressed = [c for c in codings if c not in ("chunked", "identity")]
    if compressed:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Transfer-Encoding {', '.join(compressed)!r} is not supported: send the body uncompressed",
        )
    data = _body(current)
    # JSON on the wire is UTF-8 (RFC 8259), which may start with a byte order mark that a parser
    # may ignore; json.loads would also guess UTF-16 and UTF-32 from bytes, so decode here.
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    # UTF-16 or UTF-32 text of ASCII characters decodes as UTF-8, NULs between them; JSON
    # text in UTF-8 never holds a NUL in its first four bytes (RFC 4627, section 3)
    if b"\x00" in data[:4]:
        raise _not_utf8(current)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8(current) from None
    try:
        body = json.loads(text, parse_constant=_not_json, object_pairs_hook=_without_repeated_keys)
    except _NotJson as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None
    except RecursionError:  # json gives up on very deep nesting with RecursionError, not ValueError
        raise ApiError(400, "invalid_json", "the request body is nested too deeply") from None
    except json.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    except ValueError:  # valid JSON Python refuses: an integer of more digits than int() reads
        digits = sys.get_int_max_str_digits()
        raise ApiError(
            400,
            "invalid_json",
            f"the request body holds a number this server cannot read (more than {digits:,} digits)",
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_body", "the request body must be a JSON object")
    return body


def _not_utf8(current: Request) -> ApiError:
    """The 400 for a body that is not UTF-8, naming a charset the request declared instead."""
    charset = current.mimetype_params.get("charset", "").strip().lower()
    if charset.replace("-", "").replace("_", "") not in ("", "utf8"):
        # a client that declared another charset would otherwise not know it was not heeded
        return ApiError(
            400, "invalid_json", f"the request body is not UTF-8: JSON is read as UTF-8 only, not as {charset!r}"
        )
    return ApiError(400, "invalid_json", "the request body is not UTF-8")


class _NotJson(ValueError):
    """Text Python's parser takes that is not JSON, or is JSON that means two things."""


def _not_json(constant: str) -> Any:
    # Python reads NaN, Infinity and -Infinity, which JSON does not have (RFC 8259, section 6)
    raise _NotJson(f"the request body is not valid JSON ({constant} is not a JSON value)")


def _without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # the last of two values would silently win: {"sender": "a", "sender": "b"} is "b"
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _NotJson(f"the request body names {key!r} twice in one object")
        found[key] = value
    return found


def _refuse_streamed_body_over_limit(current: Request) -> None:
    """413 for a body sent without ``Content-Length`` (``Transfer-Encoding: chunked``) that is
    longer than ``MAX_CONTENT_LENGTH``.

    werkzeug refuses a declared length over the limit before reading, but a streamed body it
    only reads up to the limit and then stops, without saying whether more followed: the
    truncated body would then be "invalid JSON". So when exactly the limit was read, one more
    byte is asked of the server's own stream, past werkzeug's limit: any byte there means the
    body was longer.
    """
    if current.content_length is not None:
        return
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is not None and len(current.get_data(cache=True)) >= limit and current.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


MALFORMED_CHUNKED = "the request body is not valid HTTP (a malformed chunked body)"


def _body(current: Request) -> bytes:
    """The body's bytes of the request ``current``; a body the HTTP server cannot read as sent
    (gunicorn: a chunk size that is not hexadecimal, a chunk without its line end, a forbidden
    trailer) is a 400, not an unhandled error: gunicorn parses a chunked body only as the app
    reads it."""
    try:
        _refuse_streamed_body_over_limit(current)
        data = current.get_data(cache=True)
    except ClientDisconnected as exc:
        cause = exc.__context__
        if isinstance(cause, ReadingStopped):
            raise _stopping_error() from None
        # gunicorn: a chunked body stalled (the read timeout), or its client closed its side (NoMoreData)
        if isinstance(cause, (BlockingIOError, TimeoutError)) or type(cause).__name__ == "NoMoreData":
            raise ApiError(408, "request_timeout", "the request body stopped arriving before it was complete") from None
        if "chunked" in current.headers.get("Transfer-Encoding", "").lower():
            # the development server's word for a chunk header it cannot read
            raise ApiError(400, "bad_request", MALFORMED_CHUNKED) from None
        # fewer bytes than Content-Length: the client stopped sending (if it is still there to read this)
        raise ApiError(408, "request_timeout", "the request body stopped arriving before it was complete") from None
    except ReadingStopped:
        raise _stopping_error() from None
    except (BlockingIOError, TimeoutError):  # gunicorn: the read timeout of legacy_assistant.serving.server
        raise ApiError(408, "request_timeout", "the request body stopped arriving before it was complete") from None
    except HTTPException:
        raise  # the size limit's 413, ...
    except Exception as exc:  # the server's own parser error: gunicorn's ParseException, ...
        if _chunk_cut_at_its_end(exc):
            raise ApiError(408, "request_timeout", "the request body stopped arriving before it was complete") from None
        log.info("unreadable request body on %s: %s", logged_request(current), exc)
        raise ApiError(400, "bad_request", MALFORMED_CHUNKED) from None
    if current.content_length is not None and len(data) < current.content_length:
        # gunicorn hands over what came before the client closed its side, as if it were all
        raise ApiError(408, "request_timeout", "the request body stopped arriving before it was complete")
    return data


def _chunk_cut_at_its_end(exc: Exception) -> bool:
    """Whether ``exc`` is gunicorn's missing line end after a chunk where the body ended there
    (the client closed its side right after a chunk's data, or between its CR and LF): a body
    cut short, not a malformed one."""
    term = getattr(exc, "term", None)
    return type(exc).__name__ == "ChunkMissingTerminator" and isinstance(term, bytes) and b"\r\n".startswith(term)


def _stopping_error() -> ApiError:
    """503 for a request whose body was still arriving when the server began to stop
    (:class:`~legacy_assistant.errors.ReadingStopped`): nothing of it was done."""
    message = "the server is stopping and did not read this request; send it again"
    return ApiError(503, "shutting_down", message, {"Retry-After": "1"})


# The characters str.strip() removes, as a regular expression class that JSON Schema's dialect
# (ECMA-262) and Python's re read alike: the OpenAPI document's "not blank" rule is then exactly
# the server's. ECMA's own \s differs both ways (it takes U+FEFF, not U+001C-U+001F or U+0085).
STRIPPED_CHARACTERS = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK_PATTERN = f"[^{STRIPPED_CHARACTERS}]"  # found anywhere in a text that strip() leaves non-empty


def text_field(body: dict[str, Any], name: str, limit_key: str = "MAX_TEXT_LENGTH", default: str | None = None) -> str:
    """A required (unless ``default`` is given), non-blank string field no longer than the
    configured limit, made of valid Unicode."""
    if name not in body:
        if default is not None:
            return default
        raise ApiError(400, "missing_field", f"field {name!r} is required")
    value = body[name]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"field {name!r} must be a string")
    if not value.strip():
        raise ApiError(400, "empty_field", f"field {name!r} must not be empty")
    limit = current_app.config[limit_key]
    if len(value) > limit:
        raise ApiError(400, "field_too_long", f"field {name!r} is longer than {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
        raise ApiError(400, "invalid_field", f"field {name!r} is not valid Unicode text") from None
    return value
