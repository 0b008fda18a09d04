import random

import pytest

from legacy_assistant.serving.dialogue import DialoguePolicy, IntentRule
from legacy_assistant.stores.base import ConversationState


@pytest.fixture
def policy():
    rules = [
        IntentRule("greeting", ("Hello!",)),
        IntentRule("order_tea", ("Green or black?",), context_set="tea_kind"),
        IntentRule("tea_green", ("Green tea.",), context_filter="tea_kind", context_set=""),
        IntentRule("book", ("When?",), next_tag="book_when"),
        IntentRule("book_when", ("Booked.",)),
    ]
    return DialoguePolicy(rules, ["Sorry?"], threshold=0.25, rng=random.Random(0))


def test_top_intent_answers(policy):
    reply, state = policy.decide(ConversationState(), [("greeting", 0.9), ("book", 0.1)])
    assert (reply.text, reply.intent, reply.confidence) == ("Hello!", "greeting", 0.9)
    assert state == ConversationState(turns=1)


@pytest.mark.parametrize("threshold", [0.5, 0.0])
def test_a_confidence_equal_to_the_threshold_answers(threshold):
    """Only a confidence below the threshold falls back, as the threshold's calibration counts
    it (thresholds.rejected); at 0.0 nothing understood falls back."""
    policy = DialoguePolicy([IntentRule("greeting", ("Hello!",))], ["Sorry?"], threshold=threshold,
                            rng=random.Random(0))
    reply, _ = policy.decide(ConversationState(), [("greeting", threshold)])
    assert (reply.intent, reply.reason) == ("greeting", "intent")


def test_below_threshold_falls_back_and_keeps_context(policy):
    start = ConversationState(context="tea_kind", turns=3)
    reply, state = policy.decide(start, [("greeting", 0.2), ("book", 0.1)])
    assert (reply.text, reply.intent, reply.confidence) == ("Sorry?", "fallback", 0.2)
    assert state.context == "tea_kind" and state.turns == 4


def test_a_nan_confidence_is_never_an_answer(policy):
    """Damaged weights can rank with NaN, which compares false with any threshold."""
    reply, _ = policy.decide(ConversationState(), [("greeting", float("nan")), ("book", float("nan"))])
    assert (reply.intent, reply.reason, reply.confidence) == ("fallback", "low_confidence", 0.0)


def test_nothing_understood_falls_back_even_if_confident(policy):
    reply, _ = policy.decide(ConversationState(), [("greeting", 0.99)], understood=False)
    assert reply.intent == "fallback"


def test_context_filter_skips_intent_outside_its_context(policy):
    ranking = [("tea_green", 0.7), ("greeting", 0.3)]
    reply, _ = policy.decide(ConversationState(), ranking)
    assert reply.intent == "greeting"
    reply, state = policy.decide(ConversationState(context="tea_kind"), ranking)
    assert reply.intent == "tea_green"
    assert state.context is None  # context_set "" clears


def test_filtered_winner_below_threshold_falls_back(policy):
    reply, _ = policy.decide(ConversationState(), [("tea_green", 0.8), ("greeting", 0.2)])
    assert reply.intent == "fallback"


def test_context_set_starts_a_flow(policy):
    _, state = policy.decide(ConversationState(), [("order_tea", 0.95)])
    assert state.context == "tea_kind"


def test_classic_context_routes_next_turn_whatever_is_said(policy):
    _, state = policy.decide(ConversationState(), [("book", 0.9)])
    assert state.next_tag == "book_when"
    reply, state = policy.decide(state, [("greeting", 0.99)], understood=False)
    assert (reply.intent, reply.text, reply.confidence) == ("book_when", "Booked.", 1.0)
    assert state.next_tag is None


def test_bad_threshold_refused():
    with pytest.raises(ValueError):
        DialoguePolicy([], ["x"], threshold=1.5)


@pytest.fixture
def oos_policy():
    rules = [IntentRule("greeting", ("Hello!",)), IntentRule("tea_green", ("Green tea.",), context_filter="tea_kind")]
    return DialoguePolicy(rules, ["Sorry?"], threshold=0.25, rng=random.Random(0), oos_label="oos")


def test_out_of_scope_class_on_top_falls_back_however_confident(oos_policy):
    reply, state = oos_policy.decide(ConversationState(context="x", turns=1), [("oos", 0.95), ("greeting", 0.05)])
    assert (reply.intent, reply.text, reply.confidence) == ("fallback", "Sorry?", 0.95)
    assert state.context == "x" and state.turns == 2


def test_out_of_scope_class_below_the_winner_changes_nothing(oos_policy):
    reply, _ = oos_policy.decide(ConversationState(), [("greeting", 0.6), ("oos", 0.4)])
    assert reply.intent == "greeting"


def test_out_of_scope_class_first_among_allowed_intents_falls_back(oos_policy):
    ranking = [("tea_green", 0.5), ("oos", 0.3), ("greeting", 0.2)]
    assert oos_policy.decide(ConversationState(), ranking)[0].intent == "fallback"
    assert oos_policy.decide(ConversationState(context="tea_kind"), ranking)[0].intent == "tea_green"


def test_policy_reads_out_of_scope_label_from_manifest():
    manifest = {
        "intents": [{"tag": "greeting", "responses": ["Hi"]}],
        "fallback": {"responses": ["Sorry?"]},
        "threshold": 0.3,
        "oos_label": "oos",
    }
    policy = DialoguePolicy.from_manifest(manifest, seed=0)
    assert policy.oos_label == "oos" and policy.threshold == 0.3
    assert policy.decide(ConversationState(), [("oos", 0.9)])[0].intent == "fallback"
    older = DialoguePolicy.from_manifest({k: v for k, v in manifest.items() if k != "oos_label"}, seed=0)
    assert older.oos_label is None


def test_a_policy_without_fallback_responses_is_a_config_error():
    from legacy_assistant.errors import ConfigError

    with pytest.raises(ConfigError, match="at least one fallback response is needed"):
        DialoguePolicy([], [], threshold=0.5)
