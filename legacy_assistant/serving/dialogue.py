"""Choose the answer: context rules, confidence threshold, fallback.

:meth:`DialoguePolicy.decide` is a pure function of the conversation state and the ranking: it
returns the reply and the next state, and the caller stores both. Rules per intent:

* classic ``context``: if the previous answer named a follow-up tag, that tag handles this turn
  whatever was typed (confidence 1.0: the route is fixed, not guessed);
* ``context_filter``: an intent is skipped unless the conversation's context equals its filter;
* a text with no known word, whose best allowed intent is below ``threshold``, or whose best
  allowed intent is the model's out-of-scope class (``oos_label``), gets the fallback answer
  with intent ``fallback``, and the state is kept (a user who mistypes mid-flow stays in the
  flow);
* ``context_set`` replaces the context (``""`` clears it).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.errors import ConfigError
from legacy_assistant.stores.base import ConversationState

Ranking = Sequence[tuple[str, float]]


@dataclass(frozen=True)
class Reply:
    text: str
    intent: str
    confidence: float


@dataclass(frozen=True)
class IntentRule:
    tag: str
    responses: tuple[str, ...]
    context_set: str | None = None
    context_filter: str | None = None
    next_tag: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntentRule:
        return cls(
            tag=data["tag"],
            responses=tuple(data["responses"]),
            context_set=data.get("context_set"),
            context_filter=data.get("context_filter"),
            next_tag=data.get("next_tag"),
        )


class DialoguePolicy:
    def __init__(
        self,
        rules: Iterable[IntentRule],
        fallback_responses: Sequence[str],
        threshold: float,
        rng: random.Random | None = None,
        oos_label: str | None = None,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
        if not fallback_responses:
            raise ValueError("at least one fallback response is needed")
        self.rules = {rule.tag: rule for rule in rules}
        self.fallback_responses = tuple(fallback_responses)
        self.threshold = threshold
        self.oos_label = oos_label
        self._rng = rng or random.Random()

    @classmethod
    def from_manifest(
        cls, manifest: Mapping[str, Any], threshold: float | None = None, seed: int | None = None
    ) -> DialoguePolicy:
        """Rules, fallback, threshold and out-of-scope class as exported; ``threshold``
        overrides the stored one."""
        return cls(
            (IntentRule.from_dict(rule) for rule in manifest["intents"]),
            manifest["fallback"]["responses"],
            manifest["threshold"] if threshold is None else threshold,
            random.Random(seed),
            oos_label=manifest.get("oos_label"),
        )

    def decide(
        self, state: ConversationState, ranking: Ranking, understood: bool = True
    ) -> tuple[Reply, ConversationState]:
        """Reply to one turn given the classifier's ranking; returns (reply, next state).

        ``understood=False`` (no word of the text is in the model's vocabulary) falls back
        whatever the ranking says: with an all-zero input the network only echoes its biases.
        """
        if state.next_tag is not None and state.next_tag in self.rules:
            return self._answer(self.rules[state.next_tag], 1.0, state)
        for tag, confidence in ranking if understood else ():
            if tag == self.oos_label:
                break
            rule = self.rules.get(tag)
            if rule is None or (rule.context_filter and rule.context_filter != state.context):
                continue
            if confidence < self.threshold:
                break
            return self._answer(rule, confidence, state)
        top_confidence = float(ranking[0][1]) if ranking else 0.0
        reply = Reply(self._rng.choice(self.fallback_responses), FALLBACK_TAG, top_confidence)
        return reply, ConversationState(state.context, None, state.turns + 1)

    def _answer(self, rule: IntentRule, confidence: float, state: ConversationState) -> tuple[Reply, ConversationState]:
        context = state.context
        if rule.context_set is not None:
            context = rule.context_set or None
        reply = Reply(self._rng.choice(rule.responses), rule.tag, float(confidence))
        return reply, ConversationState(context, rule.next_tag, state.turns + 1)
