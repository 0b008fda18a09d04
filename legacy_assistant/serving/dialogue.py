"""Choose the answer: context rules, confidence threshold, fallback.

:meth:`DialoguePolicy.decide` is a pure function of the conversation state and the ranking: it
returns the reply and the next state, and the caller stores both. Rules per intent:

* classic ``context``: if the previous answer named a follow-up tag, that tag handles this turn
  (confidence 1.0: the route is fixed, not guessed). With ``follow_ups="yield"`` (the default)
  a turn that the classifier places in another intent with at least ``escape_confidence``
  leaves the follow-up and is answered as that intent ("what's on the menu?" after "Can I book
  a table?"), unless the follow-up takes ``free_text`` (feedback is about the shop, so it
  reads like other intents); an ``interrupts`` intent above the threshold ("cancel that")
  leaves any follow-up. Intents that cannot take the turn (the one that opened the follow-up,
  one of a flow not open) are passed over: the first intent after them is the one weighed.
  ``follow_ups="classic"`` keeps the classic behaviour: whatever comes next, always;
* ``context_filter``: an intent is skipped unless the conversation's context equals its filter;
* a text with no known word, whose best allowed intent is below ``threshold``, or whose best
  allowed intent is the model's out-of-scope class (``oos_label``), gets the fallback answer
  with intent ``fallback``, and the state is kept (a user who mistypes mid-flow stays in the
  flow);
* ``context_set`` replaces the context (``""`` clears it).

Every reply says why it was chosen (:class:`Reply` ``reason``): ``intent`` (the classifier's
choice), ``follow_up`` (a classic follow-up), or, for the fallback, ``not_understood`` (no known
word), ``out_of_scope`` (the model's out-of-scope class came first), ``needs_context`` (the
classifier was confident, but in an intent that belongs to a flow not open now, such as "large"
with no order open) or ``low_confidence`` (the best allowed intent is below the threshold).
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.errors import ConfigError
from legacy_assistant.stores.base import ConversationState

# Put between the transcript a page (the chat page, the playground) still shows and the next turn,
# where the store no longer holds that conversation (idle past its expiry, dropped to make room
# for newer ones, or deleted): the assistant answers without it.
STARTED_OVER = (
    "(The assistant no longer remembers the conversation above: it was idle too long, or it was removed. "
    "This is a new one.)"
)

Ranking = Sequence[tuple[str, float]]

FOLLOW_UP_MODES = ("yield", "classic")
# What a turn that no intent answers gets: a reply the responder generates, or a canned one.
FALLBACK_MODES = ("generate", "canned")
# The shipped model (ngrams preset, label smoothing) tops out near 0.93; clear requests such as
# "what's on the menu today" score 0.80-0.93 and booking details ("7pm for four people") 0.08-0.43,
# with one at 0.73 ("tonight at 9": goodbye). The out-of-scope class never leaves a follow-up.
DEFAULT_ESCAPE_CONFIDENCE = 0.75
REASONS = ("intent", "follow_up", "not_understood", "out_of_scope", "needs_context", "low_confidence")


@dataclass(frozen=True)
class Reply:
    """One answer. ``confidence`` is the classifier's for ``intent`` (1.0 for a follow-up); for
    the fallback it is the confidence of the classifier's best guess, and ``reason`` says why
    that guess was not taken. ``generated``: the text of a fallback came from the responder
    instead of the canned answers (the intent is still ``fallback``). ``replayed``: the answer
    is a stored turn's, given again to a resent message (nothing was classified or stored).
    ``best``: for the fallback, the classifier's best guess, the intent ``confidence`` is of
    (None for an intent's reply, and for a replayed one: the ranking is not stored)."""

    text: str
    intent: str
    confidence: float
    reason: str = "intent"
    generated: bool = False
    replayed: bool = False
    best: str | None = None


@dataclass(frozen=True)
class IntentRule:
    tag: str
    responses: tuple[str, ...]
    context_set: str | None = None
    context_filter: str | None = None
    next_tag: str | None = None
    free_text: bool = False
    interrupts: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IntentRule:
        return cls(
            tag=data["tag"],
            responses=tuple(data["responses"]),
            context_set=data.get("context_set"),
            context_filter=data.get("context_filter"),
            next_tag=data.get("next_tag"),
            free_text=bool(data.get("free_text", False)),
            interrupts=bool(data.get("interrupts", False)),
        )


class DialoguePolicy:
    def __init__(
        self,
        rules: Iterable[IntentRule],
        fallback_responses: Sequence[str],
        threshold: float,
        rng: random.Random | None = None,
        oos_label: str | None = None,
        follow_ups: str = "yield",
        escape_confidence: float = DEFAULT_ESCAPE_CONFIDENCE,
    ) -> None:
        if not _is_fraction(threshold):
            raise ConfigError(f"threshold must be between 0 and 1, got {threshold!r}")
        if follow_ups not in FOLLOW_UP_MODES:
            raise ConfigError(f"follow_ups must be one of {', '.join(FOLLOW_UP_MODES)}, got {follow_ups!r}")
        if not _is_fraction(escape_confidence):
            raise ConfigError(f"escape_confidence must be between 0 and 1, got {escape_confidence!r}")
        self.follow_ups = follow_ups
        self.escape_confidence = escape_confidence
        if not fallback_responses:
            raise ConfigError("at least one fallback response is needed")
        self.rules = {rule.tag: rule for rule in rules}
        self.fallback_responses = tuple(fallback_responses)
        self.threshold = threshold
        self.oos_label = oos_label
        self._rng = rng or random.Random()

    @classmethod
    def from_manifest(
        cls,
        manifest: Mapping[str, Any],
        threshold: float | None = None,
        seed: int | None = None,
        follow_ups: str = "yield",
        escape_confidence: float = DEFAULT_ESCAPE_CONFIDENCE,
    ) -> DialoguePolicy:
        """Rules, fallback, threshold and out-of-scope class as exported; ``threshold``
        overrides the stored one. ``seed`` (a whole number, or None for a fresh one) seeds the
        choice among an intent's canned replies."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
            # random.Random hashed a string or a float into a seed, and refused numpy's integers
            raise ConfigError(f"seed must be a whole number (or None), got {seed!r}")
        return cls(
            (IntentRule.from_dict(rule) for rule in manifest["intents"]),
            manifest["fallback"]["responses"],
            manifest["threshold"] if threshold is None else threshold,
            random.Random(None if seed is None else int(seed)),
            oos_label=manifest.get("oos_label"),
            follow_ups=follow_ups,
            escape_confidence=escape_confidence,
        )

    def decide(
        self, state: ConversationState, ranking: Ranking, understood: bool = True
    ) -> tuple[Reply, ConversationState]:
        """Reply to one turn given the classifier's ranking; returns (reply, next state).

        ``understood=False`` (no word of the text is in the model's vocabulary) falls back
        whatever the ranking says: with an all-zero input the network only echoes its biases.
        """
        if state.next_tag is not None and state.next_tag in self.rules:
            escape = self._escape(state, ranking) if understood else None
            if escape is None:
                return self._answer(self.rules[state.next_tag], 1.0, state, "follow_up")
            return self._answer(escape[0], escape[1], state, "intent")
        reason = "not_understood"
        for tag, confidence in ranking if understood else ():
            if tag == self.oos_label:
                # a confident intent of a closed flow ranked above it explains the fallback better
                reason = "out_of_scope" if reason == "not_understood" else reason
                break
            rule = self.rules.get(tag)
            if rule is None or (rule.context_filter and rule.context_filter != state.context):
                if rule is not None and confidence >= self.threshold and reason == "not_understood":
                    reason = "needs_context"  # the best guess belongs to a flow that is not open
                continue
            if not confidence >= self.threshold:  # NaN (damaged weights) is below any threshold too
                reason = "low_confidence" if reason == "not_understood" else reason
                break
            return self._answer(rule, confidence, state, "intent")
        else:
            if understood and reason == "not_understood":
                reason = "low_confidence"
        top_confidence = float(ranking[0][1]) if ranking and ranking[0][1] >= 0 else 0.0  # not NaN
        best = str(ranking[0][0]) if ranking else None
        reply = Reply(self._rng.choice(self.fallback_responses), FALLBACK_TAG, top_confidence, reason, best=best)
        return reply, ConversationState(state.context, None, state.turns + 1)

    def _escape(self, state: ConversationState, ranking: Ranking) -> tuple[IntentRule, float] | None:
        """The intent a turn clearly asks for instead of the open follow-up, if any."""
        if self.follow_ups == "classic":
            return None
        chosen = self._first_eligible(state, ranking)
        if chosen is None:
            return None
        rule, confidence = chosen
        if not confidence >= self.threshold:
            return None
        if rule.interrupts:
            return rule, float(confidence)
        follow_up = self.rules[state.next_tag] if state.next_tag else None
        if (follow_up and follow_up.free_text) or confidence < self.escape_confidence:
            return None
        return rule, float(confidence)

    def _first_eligible(self, state: ConversationState, ranking: Ranking) -> tuple[IntentRule, float] | None:
        """The best-ranked intent that could take this turn from the open follow-up, or None
        where the follow-up itself or the out-of-scope class comes first.

        Intents that cannot be chosen now are passed over, as :meth:`decide` passes over those
        of a flow that is not open: one whose ``context_filter`` does not match, and the intent
        that opened this follow-up (it would only ask its question again: a confident model sent
        "tonight at 9 for two" back to book_table on every turn). So "cancel that table booking",
        ranked book_table first and cancel second, above the threshold, cancels the booking."""
        for tag, confidence in ranking:
            if tag in (state.next_tag, self.oos_label):
                return None
            rule = self.rules.get(tag)
            if rule is None:
                return None
            if (rule.context_filter and rule.context_filter != state.context) or rule.next_tag == state.next_tag:
                continue
            return rule, confidence
        return None

    def _answer(
        self, rule: IntentRule, confidence: float, state: ConversationState, reason: str
    ) -> tuple[Reply, ConversationState]:
        context = state.context
        if rule.context_set is not None:
            context = rule.context_set or None
        reply = Reply(self._rng.choice(rule.responses), rule.tag, float(confidence), reason)
        return reply, ConversationState(context, rule.next_tag, state.turns + 1)


def _is_fraction(value: object) -> bool:
    """Whether ``value`` is a number from 0 to 1 (not NaN; a string such as "0.5" is not one,
    where comparing it would raise a bare TypeError)."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and 0.0 <= float(value) <= 1.0
