"""cakechat's API: ``POST /cakechat_api/v1/actions/get_response``.

Clients written for cakechat's server post ``{"context": [str, ...], "emotion": str}`` and get
``200 {"response": str}``; they keep working unchanged. As in cakechat:

* ``context`` is a non-empty list of non-empty strings; the last 3 are used;
* ``emotion`` is optional (default ``neutral``) and one of the responder's conditions;
* a bad request gets 400 with cakechat's own ``message`` text (beside it, this project's
  ``error`` object);
* a reply with nothing in it is cakechat's default response, ``🙊``.

Where cakechat answered 500 (an unknown route, a wrong method, a body that is not JSON or not
an object, one too large) this route answers the fitting 4xx, in JSON, with ``message`` too.
Extensions old clients never send: ``mode`` (greedy, beam, sample, sample_rerank; default the
server's ``GENERATION_MODE``), ``seed`` (an integer: the sampling modes give the same reply for
the same seed) and ``condition_strength`` (a number from 0 to 10, default the server's
``CONDITION_STRENGTH``: how strongly the emotion steers the reply; above 0 it needs a responder
with condition guidance). Same access (API token), CORS, limits and metrics as the other API routes.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify

from legacy_assistant.errors import RequestError
from legacy_assistant.responder.modes import (
    MAX_CONDITION_STRENGTH,
    MODES,
    is_condition_strength,
    known_condition,
)
from legacy_assistant.serving.assistant import has_words
from legacy_assistant.web.context import leased
from legacy_assistant.web.errors import ApiError, json_object
from legacy_assistant.web.metrics import generated
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("cakechat", __name__, access=Access.API, url_prefix="/cakechat_api/v1")

# cakechat's answer when it had no appropriate reply.
DEFAULT_RESPONSE = "\U0001f64a"
SEED_RANGE = (-(2**63), 2**63 - 1)


def _malformed(code: str, message: str, client_message: str) -> ApiError:
    return ApiError(400, code, message, client_message=client_message)


def _context(body: dict[str, Any]) -> list[str]:
    if "context" not in body:
        raise _malformed(
            "missing_field", "field 'context' is required", "Malformed request, no \"'context'\" param was found"
        )
    context = body["context"]
    if not context or not isinstance(context, list) or not all(isinstance(turn, str) for turn in context):
        raise _malformed(
            "invalid_field",
            "field 'context' must be a non-empty list of strings",
            "Malformed request: `context` should be non-empty list of unicode strings",
        )
    # cakechat refused "" only; a turn of spaces has nothing to encode either.
    if not all(turn.strip() for turn in context):
        raise _malformed(
            "empty_field",
            "field 'context' must not contain empty strings",
            "Malformed request: `context` should not contain empty strings",
        )
    limit = current_app.config["MAX_TEXT_LENGTH"]
    for turn in context:
        if len(turn) > limit:
            raise _malformed(
                "field_too_long",
                f"a turn of field 'context' is longer than {limit} characters",
                f"Malformed request: `context` turns should be at most {limit} characters long",
            )
        try:
            turn.encode("utf-8")
        except UnicodeEncodeError:
            raise _malformed(
                "invalid_field",
                "field 'context' holds text that is not valid Unicode",
                "Malformed request: `context` should be non-empty list of unicode strings",
            ) from None
    return context


def _one_of(body: dict[str, Any], field: str, known: tuple[str, ...]) -> str | None:
    """``body[field]`` when it is one of ``known``; None when absent or null; else cakechat's 400."""
    value = body.get(field)
    if value is not None and (not isinstance(value, str) or value not in known):
        raise _malformed(
            "invalid_field",
            f"field {field!r} must be one of {', '.join(known)}",
            f'Malformed request, {field} param "{value}" is not in {field} list {list(known)}',
        )
    return value


def _emotion(body: dict[str, Any], known: tuple[str, ...]) -> str | None:
    """The request's emotion (``" Joy"`` is joy, as in the training corpora), or None for the
    responder's default (neutral where it was trained)."""
    named = known_condition(body.get("emotion"), known)
    return named if named is not None else _one_of(body, "emotion", known)


def _seed(body: dict[str, Any]) -> int | None:
    seed = body.get("seed")
    in_range = isinstance(seed, int) and not isinstance(seed, bool) and SEED_RANGE[0] <= seed <= SEED_RANGE[1]
    if seed is not None and not in_range:
        raise _malformed(
            "invalid_field",
            "field 'seed' must be a 64-bit integer",
            "Malformed request: `seed` should be a 64-bit integer",
        )
    return seed


def _condition_strength(body: dict[str, Any]) -> float | None:
    strength = body.get("condition_strength")
    if strength is None:
        return None
    if not is_condition_strength(strength):
        raise _malformed(
            "invalid_field",
            f"field 'condition_strength' must be a number from 0 to {MAX_CONDITION_STRENGTH:g}",
            f"Malformed request: `condition_strength` should be a number from 0 to {MAX_CONDITION_STRENGTH:g}",
        )
    return float(strength)


@blueprint.post("/actions/get_response")
def get_response() -> Any:
    """``{"context": [str, ...], "emotion"?, "mode"?, "seed"?, "condition_strength"?}`` -> ``{"response": str}``."""
    body = json_object()
    context = _context(body)
    with leased() as assistant:
        if assistant.responder is None:
            raise ApiError(
                503,
                "no_responder",
                "this server runs without a responder; start it with one to generate replies",
            )
        emotion = _emotion(body, assistant.accepted_emotions)
        mode, seed, strength = _one_of(body, "mode", MODES), _seed(body), _condition_strength(body)
        try:
            response = assistant.respond(context, emotion, mode, seed, strength)
        except RequestError as exc:
            if exc.public_message is not None:  # a well-formed request this server cannot answer
                raise ApiError(400, "invalid_request", exc.public_message) from None
            raise _malformed("invalid_request", str(exc), f"Malformed request: {exc}") from None
    generated("cakechat")
    return jsonify({"response": response if has_words(response) else DEFAULT_RESPONSE})
