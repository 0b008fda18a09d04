"""Leaving a flow: follow-ups that yield to a clear request, cancelling, and why a reply fell back."""

from __future__ import annotations

import random

import pytest

from legacy_assistant.errors import ConfigError
from legacy_assistant.serving.dialogue import DialoguePolicy, IntentRule
from legacy_assistant.stores.base import ConversationState

RULES = [
    IntentRule("menu", ("Coffee and cake.",)),
    IntentRule("book", ("When?",), next_tag="book_when"),
    IntentRule("book_when", ("Booked.",)),
    IntentRule("order", ("What size?",), context_set="size"),
    IntentRule("size_large", ("Large it is.",), context_filter="size", context_set=""),
    IntentRule("cancel", ("Cancelled.",), context_set="", interrupts=True),
    IntentRule("feedback", ("Go ahead.",), next_tag="feedback_text"),
    IntentRule("feedback_text", ("Thanks for the feedback.",), free_text=True),
]
BOOKING = ConversationState(next_tag="book_when", turns=1)
FEEDBACK = ConversationState(next_tag="feedback_text", turns=1)


def _policy(**options) -> DialoguePolicy:
    return DialoguePolicy(RULES, ["Sorry?"], threshold=0.25, rng=random.Random(0), oos_label="oos", **options)


def test_a_clear_other_request_leaves_a_follow_up():
    reply, state = _policy().decide(BOOKING, [("menu", 0.92), ("book", 0.03)])
    assert (reply.intent, reply.confidence, reply.reason) == ("menu", 0.92, "intent")
    assert state.next_tag is None


@pytest.mark.parametrize(
    "ranking",
    [
        [("menu", 0.6), ("book", 0.3)],  # not confident enough to leave the flow
        [("book_when", 0.95), ("menu", 0.02)],  # the follow-up itself
        [("oos", 0.97), ("menu", 0.01)],  # out of scope is no request
        [("size_large", 0.97), ("menu", 0.01)],  # belongs to a flow that is not open
        # the intent that opened the follow-up would ask its question again, turn after turn
        [("book", 0.99), ("menu", 0.01)],
    ],
)
def test_the_follow_up_keeps_every_other_turn(ranking):
    reply, state = _policy().decide(BOOKING, ranking)
    assert (reply.intent, reply.confidence, reply.reason) == ("book_when", 1.0, "follow_up")
    assert state.next_tag is None


@pytest.mark.parametrize("ranking", [[("menu", 0.99)], [("cancel", 0.99)]])
def test_the_classic_mode_takes_whatever_comes_next(ranking):
    reply, _ = _policy(follow_ups="classic").decide(BOOKING, ranking)
    assert (reply.intent, reply.reason) == ("book_when", "follow_up")


def test_free_text_is_not_taken_over_by_a_confident_intent():
    reply, _ = _policy().decide(FEEDBACK, [("menu", 0.95)])
    assert (reply.intent, reply.reason) == ("feedback_text", "follow_up")


@pytest.mark.parametrize("state", [BOOKING, FEEDBACK])
def test_an_interrupting_intent_leaves_any_follow_up(state):
    reply, next_state = _policy().decide(state, [("cancel", 0.5), ("menu", 0.3)])
    assert (reply.intent, next_state.next_tag) == ("cancel", None)


def test_an_interrupting_intent_below_the_threshold_does_not():
    reply, _ = _policy().decide(FEEDBACK, [("cancel", 0.2), ("menu", 0.1)])
    assert reply.intent == "feedback_text"


@pytest.mark.parametrize(
    ("state", "ranking"),
    [
        # "cancel that table booking": the intent that opened the follow-up first, cancel second
        (BOOKING, [("book", 0.36), ("cancel", 0.33), ("menu", 0.02)]),
        (FEEDBACK, [("feedback", 0.5), ("cancel", 0.3)]),
        # an intent of a flow that is not open comes first
        (BOOKING, [("size_large", 0.5), ("cancel", 0.3)]),
    ],
)
def test_an_interrupting_intent_behind_one_that_cannot_take_the_turn_still_interrupts(state, ranking):
    reply, next_state = _policy().decide(state, ranking)
    assert (reply.intent, reply.reason, next_state.next_tag) == ("cancel", "intent", None)


@pytest.mark.parametrize(
    "ranking",
    [
        [("menu", 0.5), ("cancel", 0.3)],  # a request the classifier prefers, not confident enough to leave
        [("oos", 0.5), ("cancel", 0.3)],  # out of scope is no request
        [("book_when", 0.5), ("cancel", 0.3)],  # the follow-up itself
        [("book", 0.7), ("cancel", 0.2)],  # below the threshold
    ],
)
def test_an_interrupting_intent_behind_one_that_can_take_the_turn_does_not(ranking):
    reply, _ = _policy().decide(BOOKING, ranking)
    assert (reply.intent, reply.reason) == ("book_when", "follow_up")


def test_the_escape_confidence_is_a_setting():
    assert _policy(escape_confidence=0.5).decide(BOOKING, [("menu", 0.6)])[0].intent == "menu"
    assert _policy(escape_confidence=0.95).decide(BOOKING, [("menu", 0.92)])[0].intent == "book_when"
    assert _policy().decide(BOOKING, [("menu", 0.74)])[0].intent == "book_when"
    # "at least" the escape confidence: a tie leaves the follow-up
    reply, state = _policy(escape_confidence=0.75).decide(BOOKING, [("menu", 0.75)])
    assert (reply.intent, reply.reason, state.next_tag) == ("menu", "intent", None)
    assert _policy(escape_confidence=0.75).decide(BOOKING, [("menu", 0.7499)])[0].reason == "follow_up"


@pytest.mark.parametrize(
    ("options", "message"), [({"follow_ups": "sometimes"}, "follow_ups"), ({"escape_confidence": 1.5}, "escape")]
)
def test_bad_follow_up_settings_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        _policy(**options)


def test_cancel_closes_an_open_flow():
    _, state = _policy().decide(ConversationState(), [("order", 0.9)])
    assert state.context == "size"
    reply, state = _policy().decide(state, [("cancel", 0.9)])
    assert reply.intent == "cancel" and state.context is None
    reply, _ = _policy().decide(state, [("size_large", 0.95), ("menu", 0.01)])
    assert reply.intent == "fallback"


@pytest.mark.parametrize(
    ("ranking", "understood", "reason", "confidence"),
    [
        ([("size_large", 0.93), ("menu", 0.02)], True, "needs_context", 0.93),
        ([("menu", 0.2), ("book", 0.1)], True, "low_confidence", 0.2),
        ([("oos", 0.8), ("menu", 0.1)], True, "out_of_scope", 0.8),
        # the confident guess is what explains the fallback, not the out-of-scope class after it
        ([("size_large", 0.7), ("oos", 0.2), ("menu", 0.1)], True, "needs_context", 0.7),
        ([("size_large", 0.1), ("oos", 0.05), ("menu", 0.01)], True, "out_of_scope", 0.1),
        ([("menu", 0.99)], False, "not_understood", 0.99),
        ([("size_large", 0.93), ("menu", 0.9)], True, "intent", 0.9),
    ],
)
def test_every_reply_says_why(ranking, understood, reason, confidence):
    reply, _ = _policy().decide(ConversationState(), ranking, understood)
    assert (reply.reason, reply.confidence) == (reason, confidence)


@pytest.fixture(scope="module")
def shipped():
    from legacy_assistant.serving.assistant import Assistant

    assistant = Assistant.load(seed=0)
    yield assistant
    assistant.close()


def _talk(assistant, sender: str, lines: list[str]):
    return [assistant.chat(sender, line) for line in lines]


def test_shipped_menu_question_during_a_booking_is_answered_as_the_menu(shipped):
    replies = _talk(shipped, "flow-menu", ["Can I book a table?", "what's on the menu?"])
    assert [r.intent for r in replies] == ["book_table", "menu"]


def test_shipped_booking_details_still_complete_the_booking(shipped):
    replies = _talk(shipped, "flow-book", ["Can I book a table?", "7pm for four people"])
    assert [(r.intent, r.reason) for r in replies] == [("book_table", "intent"), ("book_table_time", "follow_up")]


def test_shipped_cancel_leaves_the_coffee_order(shipped):
    replies = _talk(shipped, "flow-cancel", ["I'd like to order a coffee", "actually, cancel that", "large"])
    assert [r.intent for r in replies] == ["order_coffee", "cancel", "fallback"]
    assert replies[2].reason == "needs_context"


def test_shipped_large_with_no_order_open_says_why_it_fell_back(shipped):
    (reply,) = _talk(shipped, "flow-large", ["large"])
    assert (reply.intent, reply.reason) == ("fallback", "needs_context") and reply.confidence > 0.5


def test_shipped_cancel_naming_the_booking_cancels_it(shipped):
    """The model ranks "cancel that table booking" book_table (0.36) before cancel (0.33)."""
    replies = _talk(shipped, "flow-cancel-booking", ["Can I book a table?", "cancel that table booking"])
    assert [(r.intent, r.reason) for r in replies] == [("book_table", "intent"), ("cancel", "intent")]


def test_shipped_feedback_about_prices_is_taken_as_feedback(shipped):
    replies = _talk(shipped, "flow-feedback", ["I want to leave feedback", "prices are a bit high"])
    assert [r.intent for r in replies] == ["leave_feedback", "leave_feedback_text"]


def test_the_flags_reach_the_manifest_only_when_set():
    from legacy_assistant.classifier.intents import parse_intents

    intents = parse_intents(
        {
            "intents": [
                {"tag": "stop", "patterns": ["stop"], "responses": ["Stopped."], "interrupts": True},
                {"tag": "note", "patterns": [], "responses": ["Noted."], "free_text": True},
                {"tag": "hi", "patterns": ["hi"], "responses": ["Hello."]},
            ]
        }
    )
    rules = {rule["tag"]: rule for rule in (intent.rules() for intent in intents.intents)}
    assert rules["stop"]["interrupts"] is True and rules["note"]["free_text"] is True
    assert "interrupts" not in rules["hi"] and "free_text" not in rules["hi"]
    policy = DialoguePolicy([IntentRule.from_dict(rule) for rule in rules.values()], ["?"], 0.25)
    assert policy.rules["stop"].interrupts and policy.rules["note"].free_text


@pytest.mark.parametrize("field", ["free_text", "interrupts"])
def test_a_flag_that_is_not_a_boolean_is_refused_with_its_place(field):
    from legacy_assistant.classifier.intents import parse_intents
    from legacy_assistant.errors import IntentsError

    with pytest.raises(IntentsError, match=f"'stop'.*field '{field}': must be true or false"):
        parse_intents({"intents": [{"tag": "stop", "patterns": ["stop"], "responses": ["ok"], field: "yes"}]})


def test_a_sentence_in_a_script_the_model_never_saw_is_not_understood(default_predictor):
    """The shipped model knows English: Cyrillic, Chinese or Arabic share nothing with it but
    the padding of its character n-grams, and get the fallback as not understood."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    texts = ["Здравствуйте", "你好，谢谢", "مرحبا كيف حالك", "hello there"]
    assert [p.known_features > 0 for p in default_predictor.predict(texts)] == [False, False, False, True]
    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0),
                          MemoryStore())
    replies = [assistant.chat("s", text) for text in texts]
    assert [(r.intent, r.reason) for r in replies[:3]] == [("fallback", "not_understood")] * 3
    assert replies[3].intent == "greeting"
