"""The OpenAPI 3.1 document of this service, served at ``GET /openapi.json``.

It is built from the app's settings (field length limits, body limit, whether tokens are
required), so what it says is what this server enforces. Schemas are JSON Schema 2020-12, as
OpenAPI 3.1 defines them; ``tests/test_openapi.py`` checks that every route is documented and
that real responses validate against their documented schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, jsonify

from legacy_assistant import __version__
from legacy_assistant.common.hosts import ANY_HOST
from legacy_assistant.common.tokens import SHORT_TOKEN
from legacy_assistant.responder.modes import MAX_CONDITION_STRENGTH
from legacy_assistant.responder.modes import MODES as GENERATION_MODES
from legacy_assistant.serving.dialogue import REASONS
from legacy_assistant.web.cakechat import SEED_RANGE
from legacy_assistant.web.errors import NOT_BLANK_PATTERN
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("openapi", __name__, access=Access.PUBLIC)

JSON = "application/json"


def _whole(pattern: str) -> str:
    """``pattern`` matching a whole text, read alike by ECMA-262 (JSON Schema's dialect) and by
    Python's re (the jsonschema library's): there ``$`` also matches before a last line break,
    and ``\\Z`` is no ECMA escape, so the end is "no character follows"."""
    return f"^{pattern}(?![\\s\\S])"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _host_refusal(config: Mapping[str, Any]) -> str:
    """What a 400 of an API or admin route adds when the server answers to listed host names only."""
    hosts = config.get("ALLOWED_HOSTS") or ()
    if not hosts or ANY_HOST in hosts:
        return ""
    return "; or a request sent to a host name the server does not answer to (host_not_allowed)"


SHUTTING_DOWN = "shutting_down: the worker is stopping or replacing its model (Retry-After)"


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _error_object() -> dict[str, Any]:
    """This project's ``error`` member of every error body: a code and a message."""
    return {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string", "minLength": 1}},
    }


def _text(limit: int, description: str) -> dict[str, Any]:
    # a text of only whitespace is refused as empty, as the server refuses it
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": limit,
        "pattern": NOT_BLANK_PATTERN,
        "description": description,
    }


def _schemas(config: Mapping[str, Any]) -> dict[str, Any]:
    text_limit, sender_limit = int(config["MAX_TEXT_LENGTH"]), int(config["MAX_SENDER_LENGTH"])
    confidence = {"type": "number", "minimum": 0, "maximum": 1}
    intent_confidence = {
        "type": "object",
        "required": ["name", "confidence"],
        "properties": {"name": {"type": "string"}, "confidence": confidence},
    }
    model = {
        "type": "object",
        "required": ["name", "version", "created", "intents", "responder"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string", "description": "first 12 hex digits of the model manifest's sha256"},
            "created": {"type": ["string", "null"]},
            "intents": {"type": "integer", "minimum": 0},
            "responder": {
                "type": ["object", "null"],
                "description": "the generative responder served beside the intent model; null without one",
                "required": ["name", "version", "created", "emotions"],
                "properties": {
                    "name": {"type": "string"},
                    "version": {"type": "string", "description": "first 12 hex digits of its manifest's sha256"},
                    "created": {"type": ["string", "null"]},
                    "emotions": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    # Every optional field of a request may be null: the same as leaving it out.
    emotion = {
        "type": ["string", "null"],
        "description": "the responder's condition for a generated reply: one of the emotions /health lists "
        "(without a responder, cakechat's five are accepted and nothing is generated; null or left out: neutral, "
        "or for a responder never trained under neutral the condition it had most training replies under)",
    }
    strength_text = (
        "condition guidance of a generated reply: how strongly the emotion steers it "
        "(null or left out: the server's CONDITION_STRENGTH; above 0 needs a responder with guidance)"
    )
    strength = {
        "type": ["number", "null"],
        "minimum": 0,
        "maximum": MAX_CONDITION_STRENGTH,
        "description": strength_text,
    }
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "message": {
                    "type": "string",
                    "minLength": 1,
                    "description": "only on paths under /cakechat_api/: cakechat's own error text, for its clients",
                },
                "error": _error_object(),
            },
        },
        "ParseRequest": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": _text(text_limit, "the text to classify; not blank")},
        },
        "ParseResult": {
            "type": "object",
            "required": ["text", "intent", "entities", "intent_ranking"],
            "properties": {
                "text": {"type": "string"},
                "intent": intent_confidence,
                "entities": {"type": "array", "maxItems": 0, "description": "always empty: no entity extraction"},
                "intent_ranking": {"type": "array", "items": intent_confidence, "maxItems": 10},
            },
        },
        "ChatRequest": {
            "type": "object",
            "required": ["sender", "message"],
            "properties": {
                "sender": _text(sender_limit, "conversation id: turns with the same sender share context"),
                "message": _text(text_limit, "what the person typed; not blank"),
                "emotion": emotion,
                "condition_strength": strength,
                "message_id": {
                    "type": ["string", "null"],
                    "pattern": _whole(SHORT_TOKEN),
                    "description": "the client's id of this message, new per message and the same when it is "
                    "sent again: a resend of a message the conversation's stored turns hold is answered with "
                    "that turn's reply (replayed), and not classified or stored again; another message under "
                    "a stored id is 422 message_id_reused; null or left out: none",
                },
            },
        },
        "ChatReply": {
            "type": "object",
            "required": ["sender", "reply", "intent", "confidence", "reason", "generated", "replayed"],
            "properties": {
                "sender": {"type": "string"},
                "reply": {"type": "string"},
                "intent": {"type": "string", "description": "the intent answered, 'fallback' when none fit"},
                "confidence": confidence,
                "reason": {
                    "type": "string",
                    "enum": list(REASONS),
                    "description": "why this answer: the classifier's intent, a classic follow-up, or why it fell back",
                },
                "generated": {
                    "type": "boolean",
                    "description": "the responder generated this fallback reply (intent is still 'fallback')",
                },
                "replayed": {
                    "type": "boolean",
                    "description": "the message_id was stored already: this is that turn's reply, given again "
                    "(nothing was classified or stored)",
                },
            },
        },
        "Transcript": {
            "type": "object",
            "required": ["sender", "turns"],
            "properties": {
                "sender": {"type": "string"},
                "turns": {
                    "type": "array",
                    "description": "the stored turns, oldest first; empty for an unknown or expired sender",
                    "items": {
                        "type": "object",
                        "required": ["message", "reply", "intent", "confidence", "generated"],
                        "properties": {
                            "message": {"type": "string"},
                            "reply": {"type": "string"},
                            "intent": {"type": "string"},
                            "confidence": confidence,
                            "generated": {"type": "boolean", "description": "the responder wrote the reply"},
                        },
                    },
                },
            },
        },
        "Forgotten": {
            "type": "object",
            "required": ["sender", "forgotten"],
            "properties": {
                "sender": {"type": "string"},
                "forgotten": {
                    "type": "boolean",
                    "description": "there was a conversation to delete (false: unknown, expired or deleted before)",
                },
            },
        },
        "ClassicRequest": {
            "type": "object",
            "required": ["sentence"],
            "properties": {"sentence": _text(text_limit, "the text to classify")},
        },
        "ClassicResult": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["intent", "probability"],
                "properties": {
                    "intent": {"type": "string"},
                    "probability": {"type": "string", "description": "a float, as a string"},
                },
            },
        },
        "RasaMessage": {
            "type": "object",
            "required": ["message"],
            "properties": {
                "sender": {
                    "anyOf": [_text(sender_limit, "conversation id"), {"type": "number"}, {"type": "null"}],
                    # A number's text is held to the sender's limit, which no bound can say: to JSON Schema
                    # 1e200 and the same number written in 201 digits are one value, taken and refused here.
                    "description": "conversation id; null or left out: 'default'; "
                    "a number: its text as Python writes it, 12345 or 1e+20 (as Rasa), held like a text to "
                    f"{sender_limit} characters (field_too_long); a number beyond a float's range, such as 1e400, "
                    "is refused (invalid_field)",
                },
                "message": _text(text_limit, "what the person typed"),
                "emotion": emotion,
                "condition_strength": strength,
            },
        },
        "CakechatRequest": {
            "type": "object",
            "required": ["context"],
            "properties": {
                "context": {
                    "type": "array",
                    "minItems": 1,
                    "items": _text(text_limit, "one turn, oldest first"),
                    "description": "the dialogue so far; the last 3 turns that hold a word are used (a turn of "
                    "only invisible characters, such as a zero-width space, is skipped; a context of only such turns "
                    "is refused: 400 invalid_request)",
                },
                "emotion": {
                    "type": ["string", "null"],
                    "description": "one of the emotions /health lists; null or left out: neutral (for a responder "
                    "never trained under neutral, the condition it had most training replies under)",
                },
                "mode": {
                    "enum": [*GENERATION_MODES, None],
                    "description": "extension: how the reply is decoded (null or left out: the server's "
                    "GENERATION_MODE)",
                },
                "seed": {
                    "type": ["integer", "null"],
                    "minimum": SEED_RANGE[0],
                    "maximum": SEED_RANGE[1],
                    "description": "extension: the sampling modes' seed (an integer without a decimal point; "
                    "null or left out: a fresh draw)",
                },
                "condition_strength": {**strength, "description": "extension: " + strength_text},
            },
        },
        "CakechatResponse": {
            "type": "object",
            "required": ["response"],
            "properties": {"response": {"type": "string", "minLength": 1}},
        },
        "CakechatError": {
            "type": "object",
            "required": ["message", "error"],
            "properties": {
                "message": {"type": "string", "minLength": 1, "description": "cakechat's own error text"},
                "error": _error_object(),
            },
        },
        "RasaReply": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["recipient_id", "text"],
                "properties": {"recipient_id": {"type": "string"}, "text": {"type": "string"}},
            },
        },
        "Health": {
            "type": "object",
            "required": ["status", "model", "intents", "responder", "emotions"],
            "properties": {
                "status": {"const": "ok"},
                "model": {"type": "string"},
                "intents": {"type": "integer", "minimum": 0},
                "responder": {"type": ["string", "null"]},
                "emotions": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Ready": {
            "type": "object",
            "required": ["status", "workers"],
            "properties": {
                "status": {"const": "ready"},
                "workers": {
                    "type": "object",
                    "required": ["ready", "expected"],
                    "properties": {
                        "ready": {"type": "integer", "minimum": 0},
                        "expected": {"type": "integer", "minimum": 0},
                    },
                },
            },
        },
        "Model": model,
        "Version": {
            "type": "object",
            "required": ["service", "version", "python", "model", "pid"],
            "properties": {
                "service": {"const": "legacy-assistant"},
                "version": {"type": "string"},
                "python": {"type": "string"},
                "model": _ref("Model"),
                "pid": {"type": "integer", "description": "the process (gunicorn worker) that answered"},
            },
        },
        "ReloadResult": {
            "type": "object",
            "required": ["status", "model", "previous", "other_workers_notified"],
            "properties": {
                "status": {"enum": ["reloaded", "unchanged"]},
                "model": _ref("Model"),
                "previous": _ref("Model"),
                "other_workers_notified": {"type": "boolean"},
            },
        },
    }


def _post(
    summary: str,
    request: str,
    response: str,
    config: Mapping[str, Any],
    tag: str,
    security: list[dict[str, list[str]]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": _json(_ref(response), "the answer"),
        "400": _error(
            "invalid JSON, a body that is not an object, or a missing, wrongly typed, blank, "
            f"too long (text over {config['MAX_TEXT_LENGTH']} characters) or invalid field" + _host_refusal(config)
        ),
        "408": _error("a body that stopped arriving before it was complete"),
        "413": _error(f"a body over {config['MAX_CONTENT_LENGTH']} bytes"),
        "415": _error("a body whose type is not JSON (application/json or application/*+json)"),
    }
    if security:
        responses["401"] = _error("missing or wrong bearer token (see WWW-Authenticate)")
    responses.update(extra or {})
    # every POST route but the reload calls a model, whose batcher a reload or shutdown closes
    unavailable = [responses["503"]["description"]] if "503" in responses else []
    responses["503"] = _error("; or ".join([*unavailable, SHUTTING_DOWN]))
    responses["default"] = _error("any other error (404, 405, 500), always this shape")
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref(request)}}},
        "responses": responses,
    }
    if security:
        operation["security"] = security
    return {"post": operation}


def _get(summary: str, response: dict[str, Any], tag: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": [tag],
            "responses": {"200": response, "default": _error("any error, always this shape")},
        }
    }


def _rasa_webhook(
    config: Mapping[str, Any], security: list[dict[str, list[str]]], unavailable: dict[str, Any]
) -> dict[str, Any]:
    """The Rasa channel's webhook: the list of bot messages, or with Rasa's ``?stream=true`` the
    same messages one JSON object a line."""
    item = _post(
        "Rasa-compatible REST channel (with or without the trailing slash)",
        "RasaMessage",
        "RasaReply",
        config,
        "rasa",
        security,
        unavailable,
    )
    operation = item["post"]
    operation["parameters"] = [
        {
            "name": "stream",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "'true' (in any case): the messages as Rasa streams them, each one line of JSON "
            "(text/event-stream); anything else or none: the JSON list",
        }
    ]
    operation["responses"]["200"]["content"]["text/event-stream"] = {
        "schema": {"type": "string", "description": "one RasaReply item a line, each line JSON ending in a newline"}
    }
    return item


def _rasa_health(config: Mapping[str, Any], security: list[dict[str, list[str]]]) -> dict[str, Any]:
    item = _get(
        "The Rasa REST channel's health check (with or without the trailing slash)",
        _json(
            {"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]}, "the channel is up"
        ),
        "api",
    )
    responses = item["get"]["responses"]
    if _host_refusal(config):
        responses["400"] = _error("a request sent to a host name the server does not answer to (host_not_allowed)")
    if security:
        item["get"]["security"] = security
        responses["401"] = _error("missing or wrong bearer token (see WWW-Authenticate)")
    responses["default"] = responses.pop("default")  # last, as in every other operation
    return item


def _ready() -> dict[str, Any]:
    item = _get(
        "Readiness for a load balancer: 200 once every worker serves",
        _json(_ref("Ready"), "every worker serves"),
        "operations",
    )
    item["get"]["responses"]["503"] = _error(
        "not_ready: a worker is still starting or being replaced, or the server is stopping (Retry-After)"
    )
    return item


def _transcript(config: Mapping[str, Any], security: list[dict[str, list[str]]]) -> dict[str, Any]:
    def operation(summary: str, answer: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, Any] = {
            "200": answer,
            "400": _error(
                f"a blank sender, one over {config['MAX_SENDER_LENGTH']} characters, or a path that is not UTF-8 "
                "(invalid_field)" + _host_refusal(config)
            ),
        }
        if security:
            responses["401"] = _error("missing or wrong bearer token (see WWW-Authenticate)")
        responses["503"] = _error("the conversation store is unavailable (Retry-After says when to retry)")
        responses["default"] = _error("any other error (404, 405, 500), always this shape")
        described: dict[str, Any] = {
            "summary": summary,
            "tags": ["api"],
            "parameters": [
                {
                    "name": "sender",
                    "in": "path",
                    "required": True,
                    "description": "the conversation id given to /api/v1/chat, percent-encoded",
                    "schema": _text(int(config["MAX_SENDER_LENGTH"]), "conversation id"),
                }
            ],
            "responses": responses,
        }
        if security:
            described["security"] = security
        return described

    return {
        "get": operation("One conversation's stored turns, oldest first", _json(_ref("Transcript"), "the turns")),
        "delete": operation(
            "Forget one conversation: its turns and dialogue state, after any turn of it in progress",
            _json(_ref("Forgotten"), "deleted (deleting again is no error)"),
        ),
    }


def _cakechat(config: Mapping[str, Any], security: list[dict[str, list[str]]]) -> dict[str, Any]:
    operation = _post(
        "cakechat's API: a generated reply to a dialogue context, said with an emotion",
        "CakechatRequest",
        "CakechatResponse",
        config,
        "cakechat",
        security,
        {"503": _error("the server runs without a responder")},
    )["post"]
    responses = operation["responses"]
    for status, response in responses.items():
        if status not in ("200", "400", "default"):
            response["content"][JSON]["schema"] = _ref("CakechatError")
    # The HTTP server answers some requests before the app sees them (a bad header, a request
    # line or headers over its limits, an Expect or Transfer-Encoding it does not take): in the
    # Error shape, without cakechat's message. Every other error carries it.
    without = "; those the HTTP server refuses itself (400 bad_request, 414, 417, 431, 501) without cakechat's message"
    responses["400"] = _error(responses["400"]["description"] + " (with cakechat's message)" + without)
    responses["default"] = _error(responses["default"]["description"] + ", with cakechat's message" + without)
    return {"post": operation}


# The response headers a client reads, as the server sends them (components/headers).
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "on every response: the request's id, the client's own when it sent a short token "
        "of letters, digits, '.', '_' or '-', else a new one",
        "required": True,
        "schema": {"type": "string", "pattern": _whole(SHORT_TOKEN)},
    },
    "Retry-After": {
        "description": "seconds to wait before trying again (shutting_down, store_unavailable, not_ready)",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {"description": "the bearer challenge", "required": True, "schema": {"type": "string"}},
    "Allow": {"description": "on a 405: the methods the route takes", "schema": {"type": "string"}},
    "ETag": {"description": "the file's strong entity tag", "required": True, "schema": {"type": "string"}},
    "Last-Modified": {"description": "when the file last changed", "required": True, "schema": {"type": "string"}},
    "Content-Range": {
        "description": "the range sent (bytes FIRST-LAST/LENGTH), or on a 416 the file's length (bytes */LENGTH)",
        "required": True,
        "schema": {"type": "string", "pattern": r"^bytes (\d+-\d+|\*)/\d+$"},
    },
}

# which of HEADERS (besides X-Request-ID) an answer of each status carries
_STATUS_HEADERS = {"401": ["WWW-Authenticate"], "503": ["Retry-After"], "default": ["Allow"]}
_STATIC_HEADERS = {
    "200": ["ETag", "Last-Modified"],
    "206": ["ETag", "Last-Modified", "Content-Range"],
    "304": ["ETag"],
    "416": ["Content-Range"],
}


def _declare_headers(paths: dict[str, Any]) -> None:
    """Declare on each answer of ``paths`` the response headers it carries (X-Request-ID on every one)."""
    for path, item in paths.items():
        static = path == "/static/{filename}"
        for operation in item.values():
            for status, response in operation["responses"].items():
                names = [*_STATUS_HEADERS.get(status, []), *(_STATIC_HEADERS.get(status, []) if static else [])]
                response["headers"] = {
                    name: {"$ref": f"#/components/headers/{name}"} for name in ["X-Request-ID", *names]
                }


def document(config: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAPI document for an app with ``config``."""
    api_security: list[dict[str, list[str]]] = [{"apiToken": []}] if config.get("API_TOKEN") else []
    admin_security: list[dict[str, list[str]]] = [{"adminToken": []}]
    unavailable = {"503": _error("the conversation store is unavailable (Retry-After says when to retry)")}
    reload_op = _post(
        "Reload the model from its directory and swap it in",
        "Empty",
        "ReloadResult",
        config,
        "admin",
        admin_security,
        {
            "403": _error("admin routes are off (no admin token configured)"),
            "422": _error("the new model was refused; the old one keeps serving"),
        },
    )
    # The route reads no body (whatever is sent is ignored), so none of the body's errors apply.
    del reload_op["post"]["requestBody"]
    for status in ("400", "408", "413", "415", "503"):  # nor does it call a model
        del reload_op["post"]["responses"][status]
    if _host_refusal(config):
        reload_op["post"]["responses"]["400"] = _error(_host_refusal(config).removeprefix("; or "))
    described: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "legacy-assistant",
            "version": __version__,
            "description": (
                "An intent-classifier chatbot with a generative, emotion-conditioned responder: cakechat's "
                "API, and the chat's reply where no intent fits. Every error is JSON "
                '{"error": {"code", "message"}}; every response carries X-Request-ID.'
            ),
        },
        # Relative to this document, so that clients find the routes where a proxy mounts the
        # server (the OpenAPI default, "/", is the host's root).
        "servers": [{"url": "."}],
        "paths": {
            "/api/v1/parse": _post(
                "Classify a text (Rasa-shaped parse, no dialogue rules)",
                "ParseRequest",
                "ParseResult",
                config,
                "api",
                api_security,
            ),
            "/api/v1/chat": _post(
                "One chat turn; stored before the reply is sent",
                "ChatRequest",
                "ChatReply",
                config,
                "api",
                api_security,
                {
                    "422": _error(
                        "message_id_reused: the message_id names a stored turn of another message (nothing is stored)"
                    ),
                    **unavailable,
                },
            ),
            "/api/v1/conversations/{sender}": _transcript(config, api_security),
            "/katana-ml/api/v1.0/assistant": _post(
                "The classic route: intents above the threshold (none for a message out of scope or of no known word)",
                "ClassicRequest",
                "ClassicResult",
                config,
                "classic",
                api_security,
            ),
            "/webhooks/rest/webhook": _rasa_webhook(config, api_security, unavailable),
            "/webhooks/rest/webhook/": _rasa_webhook(config, api_security, unavailable),
            "/webhooks/rest/": _rasa_health(config, api_security),
            "/webhooks/rest": _rasa_health(config, api_security),
            "/cakechat_api/v1/actions/get_response": _cakechat(config, api_security),
            "/admin/reload": reload_op,
            "/health": _get("Liveness and the model's name", _json(_ref("Health"), "healthy"), "operations"),
            "/ready": _ready(),
            "/version": _get(
                "Service and model versions of the answering worker", _json(_ref("Version"), "versions"), "operations"
            ),
            "/metrics": _get(
                "Prometheus metrics of the whole server",
                {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "operations",
            ),
            "/openapi.json": _get("This document", _json({"type": "object"}, "the OpenAPI document"), "operations"),
            "/": _get(
                "The chat page",
                {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}},
                "pages",
            ),
            "/favicon.ico": _get(
                "The chat page's icon",
                {"description": "ICO image", "content": {"image/x-icon": {"schema": {"type": "string"}}}},
                "pages",
            ),
            "/static/{filename}": {
                "get": {
                    "summary": "The chat page's script and style sheet",
                    "tags": ["pages"],
                    "parameters": [{"name": "filename", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": {"description": "the file"},
                        "206": {"description": "one byte range of the file (Range: bytes=...)"},
                        "304": {
                            "description": "not modified since If-Modified-Since, or matching If-None-Match: no body"
                        },
                        "412": _error(
                            "precondition_failed: the file does not match If-Match, or changed after "
                            "If-Unmodified-Since"
                        ),
                        "416": _error("a byte range that starts past the file's end"),
                        "default": _error("no such file"),
                    },
                }
            },
        },
        "components": {
            "schemas": {**_schemas(config), "Empty": {"type": "object"}},
            "headers": {name: dict(header) for name, header in HEADERS.items()},
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "LEGACY_ASSISTANT_API_TOKEN"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "LEGACY_ASSISTANT_ADMIN_TOKEN"},
            },
        },
    }
    _declare_headers(described["paths"])
    return described


@blueprint.get("/openapi.json")
def openapi_json() -> Any:
    return jsonify(document(current_app.config))
