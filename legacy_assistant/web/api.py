"""``/api/v1``: Rasa-shaped parse and a chat turn."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.common.tokens import is_short_token
from legacy_assistant.responder.modes import MAX_CONDITION_STRENGTH, is_condition_strength, known_condition
from legacy_assistant.serving.dialogue import Reply
from legacy_assistant.web.context import leased, request_metrics
from legacy_assistant.web.errors import ApiError, json_object, text_field
from legacy_assistant.web.metrics import generated
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("api", __name__, access=Access.API, url_prefix="/api/v1")


@blueprint.post("/parse")
def parse() -> Any:
    """``{"text"}`` -> ``{"text", "intent": {"name", "confidence"}, "entities": [], "intent_ranking": [...]}``."""
    text = text_field(json_object(), "text")
    with leased() as assistant:
        result = assistant.parse(text)
    request_metrics().prediction(result["intent"]["name"])
    return jsonify(result)


@blueprint.post("/chat")
def chat() -> Any:
    """``{"sender", "message", "emotion"?, "condition_strength"?, "message_id"?}`` -> ``{"sender", "reply",
    "intent", "confidence", "reason", "generated", "replayed"}``; the turn is stored before the reply is
    sent. A ``message_id`` the conversation's stored turns hold already is answered with that turn's
    reply (``replayed``: true), and nothing is classified or stored."""
    body = json_object()
    sender = text_field(body, "sender", "MAX_SENDER_LENGTH")
    message = text_field(body, "message")
    strength = condition_strength_field(body)
    message_id = message_id_field(body)
    with leased() as assistant:
        emotion = emotion_field(body, assistant.accepted_emotions)
        reply = assistant.chat(sender, message, emotion, condition_strength=strength, message_id=message_id)
    if not reply.replayed:  # a replay was counted when it was first answered
        record_reply(reply, "chat")
    return jsonify(
        {
            "sender": sender,
            "reply": reply.text,
            "intent": reply.intent,
            "confidence": reply.confidence,
            "reason": reply.reason,
            "generated": reply.generated,
            "replayed": reply.replayed,
        }
    )


def message_id_field(body: dict[str, Any]) -> str | None:
    """The optional ``message_id`` of a chat turn (1 to 64 letters, digits, ``.``, ``_`` or ``-``, as
    an ``X-Request-ID``), or None."""
    message_id = body.get("message_id")
    if message_id is None:
        return None
    if not is_short_token(message_id):
        raise ApiError(400, "invalid_field", "field 'message_id' must be 1 to 64 letters, digits, '.', '_' or '-'")
    return str(message_id)


def condition_strength_field(body: dict[str, Any]) -> float | None:
    """The optional ``condition_strength`` of a chat turn (0 to 10: the guidance of a generated
    reply), or None: the server's."""
    strength = body.get("condition_strength")
    if strength is None:
        return None
    if not is_condition_strength(strength):
        raise ApiError(
            400, "invalid_field", f"field 'condition_strength' must be a number from 0 to {MAX_CONDITION_STRENGTH:g}"
        )
    return float(strength)


def emotion_field(body: dict[str, Any], known: tuple[str, ...]) -> str | None:
    """The optional ``emotion`` of a chat turn, one of ``known`` (the server's), or None."""
    emotion = body.get("emotion")
    if emotion is None:
        return None
    named = known_condition(emotion, known)  # " Joy" is joy, as in the training corpora
    if named is None:
        raise ApiError(400, "invalid_field", f"field 'emotion' must be one of {', '.join(known)}")
    return named


def record_reply(reply: Reply, route: str) -> None:
    """Count a chat turn's answer in the metrics."""
    request_metrics().prediction(reply.intent, fallback=reply.intent == FALLBACK_TAG)
    if reply.generated:
        generated(route)
