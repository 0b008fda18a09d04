"""``/api/v1``: Rasa-shaped parse and a chat turn."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from legacy_assistant.web import current_assistant
from legacy_assistant.web.errors import json_object, text_field

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


@blueprint.post("/parse")
def parse() -> Any:
    """``{"text"}`` -> ``{"text", "intent": {"name", "confidence"}, "intent_ranking": [...]}``."""
    text = text_field(json_object(), "text")
    return jsonify(current_assistant().parse(text))


@blueprint.post("/chat")
def chat() -> Any:
    """``{"sender", "message"}`` -> ``{"sender", "reply", "intent", "confidence"}``."""
    body = json_object()
    sender = text_field(body, "sender", "MAX_SENDER_LENGTH")
    message = text_field(body, "message")
    reply = current_assistant().chat(sender, message)
    return jsonify({"sender": sender, "reply": reply.text, "intent": reply.intent, "confidence": reply.confidence})
