"""A Rasa-compatible REST channel: ``POST /webhooks/rest/webhook``.

Clients written for Rasa's ``rest`` channel send ``{"sender", "message"}`` and get a list of
bot messages, ``[{"recipient_id", "text"}]``; here always exactly one. As in Rasa, a missing
``sender`` means the conversation ``"default"``. An optional ``emotion`` and
``condition_strength`` (this project's extensions) steer a generated fallback reply, as in
``/api/v1/chat``.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from legacy_assistant.web.api import condition_strength_field, emotion_field, record_reply
from legacy_assistant.web.context import leased
from legacy_assistant.web.errors import json_object, text_field
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("rasa", __name__, access=Access.API, url_prefix="/webhooks/rest")

DEFAULT_SENDER = "default"


@blueprint.post("/webhook")
def webhook() -> Any:
    body = json_object()
    sender = text_field(body, "sender", "MAX_SENDER_LENGTH", default=DEFAULT_SENDER)
    message = text_field(body, "message")
    emotion, strength = emotion_field(body), condition_strength_field(body)
    with leased() as assistant:
        reply = assistant.chat(sender, message, emotion, condition_strength=strength)
    record_reply(reply, "rasa")
    return jsonify([{"recipient_id": sender, "text": reply.text}])
