"""A sender's turns are stored in the order their messages came (``Turn.at``), not the order
they were saved: a turn whose reply is generated (outside the store's hold) and so saved after a
later turn of the same sender still comes first, in every store, and in the context of the next
generated reply."""

import json
import threading

import pytest

from legacy_assistant.serving.assistant import CONTEXT_TURNS, Assistant
from legacy_assistant.serving.dialogue import DialoguePolicy
from legacy_assistant.stores.base import ConversationState, Turn
from tests.test_store_contract import KINDS, store_factory

UNKNOWN = "qwertyuiop zxcvbnm"  # no word the intent model knows: a generated fallback
GREETING = "hello there"  # a canned answer, saved within the hold


@pytest.fixture(params=KINDS)
def make_store(request, tmp_path):
    yield from store_factory(request, tmp_path, request.param)


def turn_at(text, at):
    return Turn(text, f"reply to {text}", "greeting", 0.75, at=at)


def messages(store, sender="a"):
    return [t.message for t in store.history(sender)]


def test_a_turn_saved_late_with_an_earlier_time_comes_first(make_store):
    store = make_store()
    store.save("a", ConversationState(turns=1), turn_at("second", 2000.0))
    store.save("a", ConversationState(turns=2), turn_at("first", 1000.0))
    assert messages(store) == ["first", "second"]
    store.save("a", ConversationState(turns=3), turn_at("third", 3000.0))
    store.save("a", ConversationState(turns=4), turn_at("between", 2500.0))
    assert messages(store) == ["first", "second", "between", "third"]
    assert [t.at for t in store.history("a")] == [1000.0, 2000.0, 2500.0, 3000.0]
    assert store.load("a").turns == 4  # the state is the last one saved, whatever its turn's time


def test_turns_with_equal_times_keep_the_order_they_were_saved_in(make_store):
    store = make_store()
    for i, (text, at) in enumerate([("x", 10.0), ("y", 10.0), ("late", 5.0), ("z", 10.0), ("w", 5.0)]):
        store.save("a", ConversationState(turns=i + 1), turn_at(text, at))
    assert messages(store) == ["late", "w", "x", "y", "z"]


def test_the_turns_dropped_beyond_the_cap_are_the_oldest_by_time(make_store):
    store = make_store(max_turns=3)
    for i, at in enumerate([10.0, 20.0, 30.0]):
        store.save("a", ConversationState(turns=i + 1), turn_at(str(int(at)), at))
    store.save("a", ConversationState(turns=4), turn_at("15", 15.0))  # late, but newer than 10
    assert messages(store) == ["15", "20", "30"]
    store.save("a", ConversationState(turns=5), turn_at("5", 5.0))  # older than every kept turn
    assert messages(store) == ["15", "20", "30"]
    assert store.load("a").turns == 5  # its state is kept all the same
    store.save("a", ConversationState(turns=6), turn_at("40", 40.0))
    assert messages(store) == ["20", "30", "40"]


def test_other_senders_are_not_reordered(make_store):
    store = make_store()
    store.save("a", ConversationState(turns=1), turn_at("a2", 2.0))
    store.save("b", ConversationState(turns=1), turn_at("b1", 1.0))
    store.save("a", ConversationState(turns=2), turn_at("a1", 1.0))
    store.save("b", ConversationState(turns=2), turn_at("b3", 3.0))
    assert messages(store, "a") == ["a1", "a2"]
    assert messages(store, "b") == ["b1", "b3"]


def test_a_redis_list_written_out_of_order_is_read_in_order(request, tmp_path):
    """Lists saved before turns were kept in order of their time are put in order when read."""
    factory = store_factory(request, tmp_path, "redis")
    make = next(factory)
    try:
        store = make()
        store.save("a", ConversationState(turns=1), turn_at("second", 2.0))
        store._client.rpush(store._key("turns", "a"), json.dumps(turn_at("first", 1.0).to_dict()))
        assert messages(store) == ["first", "second"]
        store.save("a", ConversationState(turns=3), turn_at("third", 3.0))
        assert messages(store) == ["first", "second", "third"]
    finally:
        next(factory, None)


class SlowGenerator:
    """Stands in for the responder: each call says it started, then waits to be let go."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = []

    def __call__(self, context, emotion, mode, seed, condition_strength):
        self.calls.append(list(context))
        self.started.set()
        assert self.release.wait(30), "the test never let the generator go"
        return f"generated reply {len(self.calls)}"


def test_a_slow_generated_turn_keeps_its_place_before_a_later_turn(make_store, default_predictor):
    """A (generated, slow) is sent first, B (canned) while A's reply is being generated: B is
    saved first, yet the history is A, B, and so is the next generated reply's context."""
    store = make_store()
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    generator = SlowGenerator()
    assistant = Assistant(default_predictor, policy, store, None, generate=generator)
    replies = {}
    errors = []

    def send_a():
        try:
            replies["a"] = assistant.chat("s", UNKNOWN)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            generator.started.set()

    first = threading.Thread(target=send_a, daemon=True)
    first.start()
    assert generator.started.wait(30), "A never reached the generator"
    assert not errors, errors
    replies["b"] = assistant.chat("s", GREETING)  # saved while A's reply is being generated
    assert messages(store, "s") == [GREETING]
    generator.release.set()
    first.join(30)
    assert not first.is_alive() and not errors, errors

    assert replies["a"].generated and not replies["b"].generated
    turns = store.history("s")
    assert [t.message for t in turns] == [UNKNOWN, GREETING]
    assert [t.reply for t in turns] == [replies["a"].text, replies["b"].text]
    assert turns[0].at < turns[1].at
    assert store.load("s").turns == 2  # A was saved over B's state, one turn more

    # the next generated reply reads the last turns in the order they came (the responder gets
    # the last CONTEXT_TURNS texts: B's exchange ends them, just before the new message)
    third = assistant.chat("s", UNKNOWN + " again")
    assert third.generated
    in_order = [UNKNOWN, replies["a"].text, GREETING, replies["b"].text, UNKNOWN + " again"]
    assert generator.calls[-1] == in_order[-CONTEXT_TURNS:]
    assert [t.message for t in assistant.history("s")] == [UNKNOWN, GREETING, UNKNOWN + " again"]
