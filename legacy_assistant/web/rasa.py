"""A Rasa-compatible REST channel: ``POST /webhooks/rest/webhook``.

Clients written for Rasa's ``rest`` channel send ``{"sender", "message"}`` and get a list of
bot messages, ``[{"recipient_id", "text"}]``: one for the reply, or, as Rasa's channel sends a
text, one for each of its parts between blank lines (see :func:`bot_messages`). As in Rasa, a missing
or null ``sender`` means the conversation ``"default"``, and a number is the conversation of its
text as Python writes it (Rasa's ``UserMessage`` takes ``str(sender_id)``: ``12345``,
``1e+20``); a number too large for a float (``1e400``) is refused rather than read as
``"inf"``. An optional ``emotion`` and ``condition_strength`` (this project's extensions) steer
a generated fallback reply, as in ``/api/v1/chat``. ``GET /webhooks/rest/`` answers
``{"status": "ok"}``, the channel's health check in Rasa; both routes answer with or without a
trailing slash, as Rasa's server takes them. With Rasa's ``?stream=true`` the same messages
come as Rasa's channel streams them: one JSON object a line, as ``text/event-stream`` (see
:func:`streamed`); the reply is written whole before its first line is sent.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Response, jsonify, request

from legacy_assistant.web.api import condition_strength_field, emotion_field, record_reply
from legacy_assistant.web.context import leased
from legacy_assistant.web.errors import ApiError, json_object, text_field
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("rasa", __name__, access=Access.API, url_prefix="/webhooks/rest")

DEFAULT_SENDER = "default"


# Rasa's path ("/webhooks/rest/") and the one without the slash are two rules: one rule with
# strict_slashes=True would answer the second with Werkzeug's HTML redirect (before the token and
# host checks), and with strict_slashes=False a wrong method on it would be a 404, not a 405.
@blueprint.get("")
@blueprint.get("/")  # the first rule: url_for gives Rasa's own path
def health() -> Any:
    return jsonify({"status": "ok"})


# Rasa's server (Sanic, whose routes are not strict about a trailing slash) takes the webhook
# with one too; two rules here for the reason above.
@blueprint.post("/webhook")
@blueprint.post("/webhook/")
def webhook() -> Any:
    body = json_object()
    given = body.get("sender")
    if isinstance(given, (int, float)) and not isinstance(given, bool):
        if isinstance(given, float) and not math.isfinite(given):
            raise ApiError(400, "invalid_field", "field 'sender' is a number too large to name a conversation")
        given = str(given)  # a numeric user id, as Rasa reads it
    sender = text_field({"sender": given} if given is not None else {}, "sender", "MAX_SENDER_LENGTH", DEFAULT_SENDER)
    message = text_field(body, "message")
    strength = condition_strength_field(body)
    with leased() as assistant:
        emotion = emotion_field(body, assistant.accepted_emotions)
        reply = assistant.chat(sender, message, emotion, condition_strength=strength)
    record_reply(reply, "rasa")
    messages = bot_messages(sender, reply.text)
    if wants_stream(request.args.get("stream")):
        return streamed(messages)
    return jsonify(messages)


def wants_stream(value: str | None) -> bool:
    """Whether a ``stream`` query parameter asks for the streamed answer, as Rasa reads it
    (``true`` in any case; anything else, or none, is the list)."""
    return value is not None and value.lower() == "true"


def streamed(messages: list[dict[str, str]]) -> Response:
    """The answer Rasa's channel gives to ``?stream=true``: each bot message as one line of
    JSON, in order, as ``text/event-stream``; clients read it line by line and parse each."""
    # ASCII only (json's default): a reply's U+2028 or U+0085, where some line readers (Python's
    # str.splitlines) break a line, stays escaped, so each message is one line for every reader
    body = "".join(json.dumps(message, separators=(",", ":")) + "\n" for message in messages)
    return Response(body, content_type="text/event-stream")  # as Rasa names it, without a charset (ASCII)


def bot_messages(recipient_id: str, text: str) -> list[dict[str, str]]:
    """The bot messages of one reply, as Rasa's REST channel (its ``CollectingOutputChannel``)
    sends a text: stripped, then one message per part between blank lines (``"\\n\\n"``), so a
    response written as two paragraphs comes as two messages, as it did from Rasa."""
    return [{"recipient_id": recipient_id, "text": part} for part in text.strip().split("\n\n")]
