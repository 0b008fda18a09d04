"""``/api/v1``: Rasa-shaped parse and a chat turn."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.web.context import leased, request_metrics
from legacy_assistant.web.errors import json_object, text_field
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("api", __name__, access=Access.API, url_prefix="/api/v1")


@blueprint.post("/parse")
def parse() -> Any:
    """``{"text"}`` -> ``{"text", "intent": {"name", "confidence"}, "intent_ranking": [...]}``."""
    text = text_field(json_object(), "text")
    with leased() as assistant:
        result = assistant.parse(text)
    request_metrics().prediction(result["intent"]["name"])
    return jsonify(result)


@blueprint.post("/chat")
def chat() -> Any:
    """``{"sender", "message"}`` -> ``{"sender", "reply", "intent", "confidence", "reason"}``; the turn is
    stored before the reply is sent."""
    body = json_object()
    sender = text_field(body, "sender", "MAX_SENDER_LENGTH")
    message = text_field(body, "message")
    with leased() as assistant:
        reply = assistant.chat(sender, message)
    request_metrics().prediction(reply.intent, fallback=reply.intent == FALLBACK_TAG)
    return jsonify(
        {
            "sender": sender,
            "reply": reply.text,
            "intent": reply.intent,
            "confidence": reply.confidence,
            "reason": reply.reason,
        }
    )
