import threading

from legacy_assistant.stores.base import ConversationState, MemoryStore, Turn
from tests.helpers import FakeClock


def turn(text="hi"):
    return Turn(text, "hello", "greeting", 0.9)


def test_unknown_sender_starts_fresh():
    assert MemoryStore().load("nobody") == ConversationState()


def test_save_then_load_and_history():
    store = MemoryStore()
    store.save("a", ConversationState(context="tea_kind", turns=1), turn("one"))
    store.save("a", ConversationState(context=None, turns=2), turn("two"))
    assert store.load("a") == ConversationState(context=None, turns=2)
    assert [t.message for t in store.history("a")] == ["one", "two"]
    assert store.load("b") == ConversationState()


def test_idle_conversations_expire():
    clock = FakeClock()
    store = MemoryStore(ttl_seconds=60, clock=clock)
    store.save("a", ConversationState(context="x", turns=1), turn())
    clock.advance(59)
    assert store.load("a").context == "x"
    clock.advance(61)
    assert store.load("a") == ConversationState()
    assert store.history("a") == []
    assert len(store) == 0  # forgotten, not only hidden


def test_no_idle_time_keeps_conversations_forever():
    clock = FakeClock()
    store = MemoryStore(ttl_seconds=0, clock=clock)
    store.save("a", ConversationState(context="x", turns=1), turn())
    clock.advance(10 * 365 * 86400)
    assert store.load("a").context == "x"


def test_bounded_in_conversations_and_turns():
    store = MemoryStore(max_conversations=3, max_turns=2)
    for i in range(5):
        store.save(f"s{i}", ConversationState(turns=1), turn())
    assert len(store) == 3
    assert store.load("s0") == ConversationState()
    for i in range(4):
        store.save("s4", ConversationState(turns=i), turn(str(i)))
    assert [t.message for t in store.history("s4")] == ["2", "3"]


def test_the_conversation_saved_least_recently_is_the_one_dropped():
    """The bound evicts the least recently saved conversation (LRU), not the first one made."""
    store = MemoryStore(max_conversations=2)
    store.save("a", ConversationState(turns=1), turn("a1"))
    store.save("b", ConversationState(turns=1), turn("b1"))
    store.save("a", ConversationState(turns=2), turn("a2"))  # a is now the most recent
    store.save("c", ConversationState(turns=1), turn("c1"))
    assert [t.message for t in store.history("a")] == ["a1", "a2"]
    assert store.history("b") == [] and store.load("b") == ConversationState()
    assert len(store) == 2


def test_concurrent_saves_keep_every_turn():
    store = MemoryStore(max_turns=1000)

    def worker(k):
        for i in range(50):
            store.save("shared", ConversationState(turns=i), turn(f"{k}-{i}"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.history("shared")) == 400
