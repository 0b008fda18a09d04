"""The classic route that older chatbot clients call, with its answer shape unchanged."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.web.context import leased, request_metrics
from legacy_assistant.web.errors import json_object, text_field
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("classic", __name__, access=Access.API)


@blueprint.post("/katana-ml/api/v1.0/assistant")
def assistant() -> Any:
    """``{"sentence"}`` -> ``[{"intent", "probability"}]``: intents above the threshold,
    most likely first, probability as a string (as classic clients parse it)."""
    sentence = text_field(json_object(), "sentence")
    with leased() as served:
        result = served.classic(sentence)
    request_metrics().prediction(result[0]["intent"] if result else FALLBACK_TAG)
    return jsonify(result)
