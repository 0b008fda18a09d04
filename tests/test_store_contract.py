"""One contract, three stores: memory, SQLite and Redis behave alike.

Redis tests need a server (``REDIS_URL``); they skip without one, and fail under ``CI=true``.
The memory and SQLite stores measure idle time on a clock the tests move by hand; Redis expires
keys on its own clock, so its idle-time tests check the expiry it is given and, once, that it
acts on it.
"""
import contextlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid

import pytest

from legacy_assistant.errors import ConfigError, RequestError, StoreError
from legacy_assistant.stores.base import ConversationState, MemoryStore, Turn, check_store_url, open_store
from legacy_assistant.stores import outages, sqlite_store
from legacy_assistant.stores.sqlite_store import SQLiteStore
from tests.helpers import FakeClock

KINDS = ["memory", "sqlite", "redis"]


def turn(text="hi", intent="greeting"):
    return Turn(text, f"reply to {text}", intent, 0.75)


def store_factory(request, tmp_path, kind):
    """``make(ttl_seconds=..., max_turns=...)``; stores made twice share their data (two
    'processes' on one SQLite file or one Redis database). ``make.clock`` is the fake clock of
    the memory and SQLite stores. Yields the factory, then closes what it made."""
    made = []
    prefix = f"test-{uuid.uuid4().hex}:"
    clock = FakeClock()
    if kind == "redis":
        url = request.getfixturevalue("redis_url")
    memory = {}

    def make(ttl_seconds=3600.0, max_turns=50):
        if kind == "memory":
            # one process only: "another store" is the same object
            store = memory.setdefault("store", MemoryStore(ttl_seconds=ttl_seconds, max_turns=max_turns, clock=clock))
        elif kind == "sqlite":
            store = SQLiteStore(tmp_path / "conversations.db", ttl_seconds=ttl_seconds, max_turns=max_turns,
                                clock=clock)
        else:
            store = open_store(url, ttl_seconds=ttl_seconds, max_turns=max_turns)
            store.prefix = prefix
        made.append(store)
        return store

    make.kind = kind
    make.clock = clock
    yield make
    if kind == "redis" and made:
        client = made[0]._client
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    for store in made:
        store.close()


@pytest.fixture(params=KINDS)
def make_store(request, tmp_path):
    yield from store_factory(request, tmp_path, request.param)


@pytest.fixture(params=["memory", "sqlite"])
def make_clocked_store(request, tmp_path):
    """The stores that keep time on a clock of their own (here a fake one)."""
    yield from store_factory(request, tmp_path, request.param)


def test_unknown_sender_starts_fresh(make_store):
    store = make_store()
    assert store.load("nobody") == ConversationState()
    assert store.history("nobody") == []


def test_a_closed_store_refuses_every_use(make_store):
    """The memory store went on keeping and answering turns after close(), where the SQLite and
    Redis stores refuse: a server that used a store it had closed passed its tests on memory."""
    store = make_store()
    store.save("bob", ConversationState(turns=1), turn())
    store.close()
    for call in (
        lambda: store.save("bob", ConversationState(turns=2), turn()),
        lambda: store.load("bob"),
        lambda: store.history("bob"),
        lambda: store.turn_with_id("bob", "m1"),
        lambda: store.amend("bob", turn(), turn("amended")),
        lambda: store.forget("bob"),
        lambda: store.generation("bob"),
    ):
        with pytest.raises(StoreError, match="the store is closed$"):
            call()
    with pytest.raises(StoreError, match="the store is closed$"), store.conversation("bob"):
        pass
    store.close()  # twice is harmless


def test_a_store_used_in_a_with_block_is_closed_as_it_ends(make_store):
    """Every store is a context manager, as the models are: ``with open_store(url) as store:``
    closes it at the end of the block, an error in it too."""
    with make_store() as store:
        store.save("bob", ConversationState(turns=1), turn())
        assert len(store.history("bob")) == 1
    with pytest.raises(StoreError, match="the store is closed$"):
        store.history("bob")
    with pytest.raises(ValueError, match="in the block"), make_store() as other:
        raise ValueError("in the block")
    with pytest.raises(StoreError, match="the store is closed$"):
        other.load("bob")


def test_save_then_load_and_history(make_store):
    store = make_store()
    store.save("a", ConversationState(context="coffee_size", next_tag=None, turns=1), turn("one"))
    store.save("a", ConversationState(context=None, next_tag="book_table_time", turns=2), turn("two"))
    assert store.load("a") == ConversationState(context=None, next_tag="book_table_time", turns=2)
    history = store.history("a")
    assert [t.message for t in history] == ["one", "two"]
    assert history[0] == turn("one").__class__(**{**turn("one").to_dict(), "at": history[0].at})
    assert history[0].at <= history[1].at
    assert store.load("b") == ConversationState()


def test_a_generated_reply_is_remembered_as_generated(make_store):
    """The chat page marks generated replies again when it restores a transcript."""
    store = make_store()
    generated = Turn("tell me a story", "once upon a time", "fallback", 0.1, generated=True)
    store.save("g", ConversationState(turns=1), turn("hi"))
    store.save("g", ConversationState(turns=2), generated)
    assert [t.generated for t in store.history("g")] == [False, True]
    assert store.history("g")[1] == Turn(**{**generated.to_dict(), "at": store.history("g")[1].at})


def _old_database(path, turns_columns, turn_row):
    """A SQLite file as an earlier version wrote it: ``turns_columns`` after the turns table's
    first seven, and one conversation 'o' holding the turn ``turn_row`` (its values from 'message')."""
    with sqlite3.connect(path) as old:
        old.executescript(
            "CREATE TABLE conversations (sender TEXT PRIMARY KEY, context TEXT, next_tag TEXT, "
            "turns INTEGER NOT NULL, updated REAL NOT NULL);"
            "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL, message TEXT NOT NULL, "
            f"reply TEXT NOT NULL, intent TEXT NOT NULL, confidence REAL NOT NULL, at REAL NOT NULL{turns_columns});"
        )
        old.execute("INSERT INTO conversations VALUES ('o', NULL, NULL, 1, ?)", (time.time(),))
        old.execute(f"INSERT INTO turns VALUES (NULL, 'o', {', '.join('?' * len(turn_row))})", turn_row)


def test_sqlite_file_from_before_the_generated_column_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    _old_database(path, "", ("hi", "hello", "greeting", 0.9, 1.0))
    first, second = SQLiteStore(path), SQLiteStore(path)  # the second finds the column there
    try:
        assert first.history("o") == [Turn("hi", "hello", "greeting", 0.9, 1.0, generated=False)]
        first.save("o", ConversationState(turns=2), Turn("story?", "once", "fallback", 0.1, 2.0, generated=True))
        assert [t.generated for t in second.history("o")] == [False, True]
    finally:
        first.close()
        second.close()


def test_a_turns_reason_and_message_id_are_kept(make_store):
    """A resent message is looked up by its id among the stored turns, and answered with the
    stored reason; an amended turn keeps both."""
    store = make_store()
    kept = Turn("tell me a story", "sorry?", "fallback", 0.1, reason="low_confidence", message_id="m.1_A-z")
    store.save("k", ConversationState(turns=1), turn("hi"))
    store.save("k", ConversationState(turns=2), kept)
    history = store.history("k")
    assert [(t.reason, t.message_id) for t in history] == [(None, None), ("low_confidence", "m.1_A-z")]
    assert store.amend("k", history[1], Turn(**{**history[1].to_dict(), "reply": "once", "generated": True}))
    assert store.history("k")[1] == Turn(**{**kept.to_dict(), "reply": "once", "generated": True,
                                            "at": history[1].at})


def test_sqlite_file_from_before_the_message_id_column_is_upgraded(tmp_path):
    path = tmp_path / "previous.db"
    _old_database(path, ", generated INTEGER NOT NULL DEFAULT 0", ("story?", "once", "fallback", 0.1, 1.0, 1))
    first, second = SQLiteStore(path), SQLiteStore(path)  # the second finds the columns there
    try:
        assert first.history("o") == [Turn("story?", "once", "fallback", 0.1, 1.0, generated=True)]
        first.save("o", ConversationState(turns=2), Turn("hi", "hello", "greeting", 0.9, 2.0, reason="intent",
                                                         message_id="m-2"))
        assert [(t.reason, t.message_id) for t in second.history("o")] == [(None, None), ("intent", "m-2")]
    finally:
        first.close()
        second.close()
    with sqlite3.connect(path) as upgraded:
        columns = [row[1] for row in upgraded.execute("PRAGMA table_info(turns)")]
    assert columns[-2:] == ["reason", "message_id"]


def test_unicode_and_odd_senders_round_trip(make_store):
    store = make_store()
    for sender in ["ünïcødé 🚀", "with:colons:and spaces", "x" * 128, "'; DROP TABLE turns; --"]:
        store.save(sender, ConversationState(context="é", turns=1), turn("日本語 \x00 nul"))
        assert store.load(sender).context == "é"
        assert store.history(sender)[0].message == "日本語 \x00 nul"


def test_turns_are_bounded_newest_kept(make_store):
    store = make_store(max_turns=3)
    for i in range(5):
        store.save("a", ConversationState(turns=i + 1), turn(str(i)))
    assert [t.message for t in store.history("a")] == ["2", "3", "4"]
    assert store.load("a").turns == 5


@pytest.fixture(params=["sqlite", "redis"])
def make_shared_store(request, tmp_path):
    """The stores whose conversations outlive the process that saved them."""
    yield from store_factory(request, tmp_path, request.param)


def test_a_lower_turn_limit_holds_for_conversations_stored_under_a_higher_one(make_shared_store):
    # a restart with fewer turns kept: the turns shown follow the new limit before the next save
    make = make_shared_store
    before = make(max_turns=5)
    for i in range(5):
        before.save("a", ConversationState(turns=i + 1), turn(str(i)))
    after = make(max_turns=2)
    assert [t.message for t in after.history("a")] == ["3", "4"]
    after.save("a", ConversationState(turns=6), turn("5"))
    assert [t.message for t in after.history("a")] == ["4", "5"]


def test_idle_conversations_expire(make_clocked_store):
    store, clock = make_clocked_store(ttl_seconds=60), make_clocked_store.clock
    store.save("a", ConversationState(context="x", turns=1), turn("old"))
    clock.advance(60)
    assert store.load("a").context == "x"  # idle exactly the idle time: still there
    assert [t.message for t in store.history("a")] == ["old"]
    clock.advance(0.5)  # reading is no activity: now idle longer than allowed
    assert store.load("a") == ConversationState()
    assert store.history("a") == []
    store.save("a", ConversationState(turns=1), turn("new"))  # starts afresh, old turns gone
    assert [t.message for t in store.history("a")] == ["new"]


def test_activity_keeps_a_conversation_alive(make_clocked_store):
    store, clock = make_clocked_store(ttl_seconds=60), make_clocked_store.clock
    for i in range(4):
        store.save("a", ConversationState(turns=i + 1), turn(str(i)))
        clock.advance(45)
    assert store.load("a").turns == 4  # 180 s in all, but never more than 60 s idle
    assert [t.message for t in store.history("a")] == ["0", "1", "2", "3"]


def test_a_clock_stepped_back_does_not_revive_an_expired_conversation(make_clocked_store):
    """SQLite only hid an expired conversation when read, its rows deleted at a later sweep: a
    clock stepped back before then brought it back, state and transcript, and the next save
    carried on from it. Once seen expired, it stays so (Redis drops the keys on its own clock)."""
    store, clock = make_clocked_store(ttl_seconds=3600), make_clocked_store.clock
    store.save("a", ConversationState(context="ordering", turns=1), turn("old"))
    clock.advance(3600.5)
    assert store.load("a") == ConversationState() and store.history("a") == []
    clock.advance(-60)  # back to 3540.5 s after the save
    assert store.load("a") == ConversationState()
    assert store.history("a") == [] and store.turn_with_id("a", "m") is None
    store.save("a", ConversationState(turns=1), turn("new"))
    assert store.load("a").turns == 1 and [t.message for t in store.history("a")] == ["new"]


def test_no_idle_time_keeps_conversations_forever(make_clocked_store):
    store, clock = make_clocked_store(ttl_seconds=0), make_clocked_store.clock
    store.save("a", ConversationState(context="x", turns=1), turn())
    clock.advance(10 * 365 * 86400)
    assert store.load("a").context == "x" and len(store.history("a")) == 1


def idle(make, seconds):
    """Let ``seconds`` pass for the stores of ``make``: on the fake clock of the memory and SQLite
    stores, on Redis's own clock by waiting."""
    if make.kind == "redis":
        time.sleep(seconds)
    else:
        make.clock.advance(seconds)


def test_reading_is_no_activity_in_every_store(make_store):
    """One rule in every store: a conversation expires once more than the idle time has passed
    since its last save; reading it in the meantime does not keep it alive."""
    store = make_store(ttl_seconds=1)
    store.save("a", ConversationState(context="c", turns=1), turn("old"))
    idle(make_store, 0.6)
    assert store.load("a").context == "c" and [t.message for t in store.history("a")] == ["old"]
    idle(make_store, 0.6)  # 1.2 s since the save, 0.6 s since the reads
    assert store.load("a") == ConversationState() and store.history("a") == []
    store.save("a", ConversationState(turns=1), turn("new"))
    assert [t.message for t in store.history("a")] == ["new"]


@pytest.mark.parametrize("later_ttl", [3600, 0])
def test_an_expired_conversation_stays_expired_under_a_longer_or_no_idle_time(make_shared_store, later_ttl):
    """SQLite measured a conversation by the idle time it runs with only: one that had expired
    under a shorter idle time (its rows not yet swept) came back, context and transcript, once
    the server ran with a longer one or none, where Redis had dropped it when it expired."""
    make = make_shared_store
    before = make(ttl_seconds=1)
    before.save("expired", ConversationState(context="c", turns=1), turn("old"))
    before.save("other", ConversationState(context="c", turns=1), turn("old"))
    idle(make, 1.5)
    later = make(ttl_seconds=later_ttl)
    assert later.load("expired") == ConversationState() and later.history("expired") == []
    assert later.forget("other") is False  # not a conversation there was
    later.save("expired", ConversationState(turns=1), turn("new"))
    assert [t.message for t in later.history("expired")] == ["new"]
    idle(make, 1.5)  # saved under the later idle time: that one holds now
    assert [t.message for t in make(ttl_seconds=later_ttl).history("expired")] == ["new"]


def test_a_conversation_saved_without_an_idle_time_is_measured_from_its_last_save(make_shared_store):
    """Redis could not tell how long a conversation kept without expiry had been idle, and gave
    it the whole idle time of a server that has one from the first read; SQLite measured it from
    its last save."""
    make = make_shared_store
    forever = make(ttl_seconds=0)
    forever.save("idle", ConversationState(context="c", turns=1), turn("old"))
    forever.save("recent", ConversationState(context="c", turns=1), turn("old"))
    idle(make, 1.5)
    forever.save("recent", ConversationState(context="c", turns=2), turn("new"))
    later = make(ttl_seconds=1)
    assert later.load("idle") == ConversationState() and later.history("idle") == []
    assert later.load("recent").turns == 2


@pytest.mark.parametrize("ttl_seconds", [None, -1, float("nan"), "60"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_store_refuses_an_idle_time_that_is_not_one(tmp_path, kind, ttl_seconds):
    """None: the memory and SQLite stores kept conversations forever, Redis failed every save."""
    from legacy_assistant.stores.redis_store import RedisStore

    make = {"memory": lambda: MemoryStore(ttl_seconds=ttl_seconds),
            "sqlite": lambda: SQLiteStore(tmp_path / "c.db", ttl_seconds=ttl_seconds),
            "redis": lambda: RedisStore(object(), ttl_seconds=ttl_seconds)}[kind]
    with pytest.raises(ConfigError, match="idle time must be >= 0 seconds"):
        make()


@pytest.mark.parametrize("ttl_seconds", [float("inf"), 1e300, pytest.param(10**400, id="10**400")])
@pytest.mark.parametrize("kind", KINDS)
def test_every_store_refuses_an_idle_time_past_what_redis_can_expire(tmp_path, kind, ttl_seconds):
    """Infinity failed every Redis save with an OverflowError (no StoreError), 1e300 with Redis's
    own refusal of the expiry, while the memory and SQLite stores took both; a whole number past
    float's range was an OverflowError in every store."""
    from legacy_assistant.stores.base import MAX_IDLE_SECONDS
    from legacy_assistant.stores.redis_store import RedisStore

    make = {"memory": lambda: MemoryStore(ttl_seconds=ttl_seconds),
            "sqlite": lambda: SQLiteStore(tmp_path / "c.db", ttl_seconds=ttl_seconds),
            "redis": lambda: RedisStore(object(), ttl_seconds=ttl_seconds)}[kind]
    with pytest.raises(ConfigError, match=f"idle time must be at most {MAX_IDLE_SECONDS} seconds"):
        make()
    assert open_store("memory", ttl_seconds=MAX_IDLE_SECONDS).ttl_seconds == MAX_IDLE_SECONDS


def _senders(store, table):
    with store._connection() as connection:
        return {row[0] for row in connection.execute(f"SELECT sender FROM {table}")}


def test_sqlite_deletes_expired_conversations_from_the_file(tmp_path):
    """Expired conversations are not only ignored: a sweep by the clock deletes their rows, at
    most a minute after they expired, whenever something is saved."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    for _ in range(2):
        store.save("old", ConversationState(turns=1), turn())
    clock.advance(50)
    store.save("new", ConversationState(turns=1), turn())  # 50 s after the sweep at opening: none
    clock.advance(15)  # "old" has been idle 65 s: expired; unread (a read deletes it), its rows still in the file
    assert _senders(store, "turns") == {"old", "new"}
    store.save("new", ConversationState(turns=2), turn())  # 65 s after the last sweep: sweeps
    assert _senders(store, "conversations") == {"new"} and _senders(store, "turns") == {"new"}
    store.close()


def test_sqlite_a_read_that_finds_a_conversation_expired_deletes_it(tmp_path):
    """An expired conversation was hidden by a read and deleted only by a later sweep; a clock set
    back before then revived it. Each read that finds it expired deletes its rows at once."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    for sender in ("a", "b", "c", "amended"):
        store.save(sender, ConversationState(turns=1), turn())
    store.save("live", ConversationState(turns=1), turn())
    clock.advance(30)
    store.save("live", ConversationState(turns=2), turn())
    clock.advance(31)  # a, b, c and amended idle 61 s; live 31 s
    assert store.load("a") == ConversationState()
    assert store.history("b") == []
    assert store.turn_with_id("c", "m") is None
    assert store.amend("amended", turn(), turn("changed")) is False
    assert _senders(store, "conversations") == {"live"} and _senders(store, "turns") == {"live"}
    store.close()


def test_sqlite_a_read_keeps_a_conversation_saved_after_it_found_the_old_one_expired(tmp_path, monkeypatch):
    """Another process's save between a read's look and its deletion starts a new conversation:
    the deletion takes only the expired row the read saw."""
    clock = FakeClock()
    reader = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    writer = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    reader.save("a", ConversationState(context="old", turns=1), turn("old"))
    clock.advance(61)
    drop = reader._drop_expired

    def save_first(sender, updated):
        writer.save(sender, ConversationState(context="new", turns=1), turn("new"))
        drop(sender, updated)

    monkeypatch.setattr(reader, "_drop_expired", save_first)
    assert reader.load("a") == ConversationState()
    assert writer.load("a").context == "new" and [t.message for t in writer.history("a")] == ["new"]
    reader.close()
    writer.close()


def test_sqlite_a_read_that_cannot_delete_an_expired_conversation_answers_and_leaves_it_to_the_sweep(
    tmp_path, monkeypatch, caplog
):
    """Another program holding SQLite's write lock: the read, after a short wait, still says there
    is no conversation, logs why the deletion waits, and the next save sweeps it."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)  # sweeps at 0 s
    clock.advance(30)
    store.save("old", ConversationState(context="c", turns=1), turn())
    clock.advance(30)
    store.save("new", ConversationState(turns=1), turn())  # sweeps at 60 s ("old" idle 30 s stays)
    clock.advance(31)  # "old" idle 61 s: expired; the next sweep is 29 s away
    # the read waits this long, not SQLite's busy time (30 s), for a lock it can do without
    monkeypatch.setattr(sqlite_store, "DROP_WAIT_SECONDS", 0.2)
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
            assert store.load("old") == ConversationState()
            assert store.history("old") == []
        assert caplog.text.count("an expired conversation is deleted at the next save") == 1
        assert "database is locked" in caplog.text
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _senders(store, "conversations") == {"old", "new"}
    # the failed deletion does not wait for the sweep a minute after the last one
    store.save("other", ConversationState(turns=1), turn())
    assert "old" not in _senders(store, "conversations") and "old" not in _senders(store, "turns")
    store.close()


def test_sqlite_a_read_waits_briefly_for_another_writer_to_delete_an_expired_conversation(
    tmp_path, monkeypatch, caplog
):
    """The deletion a read makes is not needed for its answer: it waits for the writer lock a short
    time (a worker holding it), not a save's whole wait, and then leaves it to the sweep."""
    clock = FakeClock()
    reader = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    holder = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    reader.save("old", ConversationState(context="c", turns=1), turn())
    clock.advance(61)
    reader._writer.wait_seconds = 5.0  # a save's wait
    monkeypatch.setattr(sqlite_store, "DROP_WAIT_SECONDS", 0.2)
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"), holder._writer:
        assert reader.load("old") == ConversationState()
    assert "has held the write lock" in caplog.text and "for 0.2 s" in caplog.text
    reader.close()
    holder.close()


def test_sqlite_sweeps_on_after_the_clock_is_set_back(tmp_path):
    """A clock set back (an hour ahead, then corrected) left the last sweep in the future: no save
    swept until the clock caught up with it, and expired conversations stayed in the file."""
    clock = FakeClock()
    clock.advance(3600)  # the store opens, and sweeps, an hour ahead
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    clock.advance(-3600)  # corrected
    store.save("old", ConversationState(turns=1), turn())
    clock.advance(65)  # "old" idle 65 s: expired
    store.save("new", ConversationState(turns=1), turn())
    assert _senders(store, "conversations") == {"new"} and _senders(store, "turns") == {"new"}
    store.close()


def test_sqlite_sweeps_what_expired_while_no_server_ran_when_it_opens(tmp_path):
    """A quiet server, or one restarted often, saves too rarely to sweep: opening the store sweeps."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    store.save("old", ConversationState(turns=1), turn())
    store.close()
    clock.advance(61)
    reopened = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    assert _senders(reopened, "conversations") == set() and _senders(reopened, "turns") == set()
    reopened.close()
    forever = SQLiteStore(tmp_path / "f.db", ttl_seconds=0, clock=clock)  # no idle time: nothing expires
    forever.save("kept", ConversationState(turns=1), turn())
    forever.close()
    clock.advance(10 * 365 * 86400)
    forever = SQLiteStore(tmp_path / "f.db", ttl_seconds=0, clock=clock)
    assert _senders(forever, "turns") == {"kept"}
    forever.close()


def test_sqlite_store_opens_while_another_process_holds_the_write_lock_and_sweeps_at_the_next_save(
    tmp_path, monkeypatch, caplog
):
    """The sweep at open needs SQLite's write lock: held by another process (a sqlite3 shell in a
    transaction) past the busy time, or on a full disk, opening the store failed, and so did every
    worker that started meanwhile, though the file could be read. It opens now, and the next save
    sweeps."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    store.save("old", ConversationState(turns=1), turn())
    store.close()
    clock.advance(61)
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", 0.2)  # the busy time of new connections
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
            reopened = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
        assert "expired conversations are deleted at the next save" in caplog.text
        assert "database is locked" in caplog.text
        assert reopened.load("old") == ConversationState() and reopened.history("old") == []
    finally:
        other.execute("ROLLBACK")
        other.close()
    clock.advance(1)  # well within the minute between sweeps: the failed one does not count
    reopened.save("new", ConversationState(turns=1), turn())
    assert _senders(reopened, "conversations") == {"new"} and _senders(reopened, "turns") == {"new"}
    reopened.close()


def test_sqlite_a_sweep_at_open_that_failed_counts_as_working_again_once_a_save_works(tmp_path, monkeypatch, caplog):
    """The sweep at open failed as a kind of operation of its own, never tried again (the next
    save sweeps): the store counted as failing for good, never said it worked again, and the
    line after a later outage counted the sweep's failure and timed it from the opening."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    store.save("old", ConversationState(turns=1), turn())
    store.close()
    clock.advance(61)
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", 0.2)
    other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        reopened = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    finally:
        other.execute("ROLLBACK")
        other.close()
    now, recovered = _outage_clock_and_lines(reopened, caplog)
    now[0] = time.monotonic() + 1  # the clock the failure at open was timed on, a second later
    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        reopened.save("new", ConversationState(turns=1), turn())  # sweeps, and works
        assert len(recovered()) == 1 and "(1 failed operation(s)" in recovered()[0], recovered()
        now[0] += 3600  # an hour later, one read fails and the next works
        def failing():
            raise sqlite3.OperationalError("disk I/O error")

        with monkeypatch.context() as broken:
            broken.setattr(reopened, "_connect", failing)
            broken.setattr(reopened, "_idle", [])
            with pytest.raises(StoreError):
                reopened.history("new")
        now[0] += outages.QUIET_SECONDS
        assert [t.message for t in reopened.history("new")] == ["hi"]
    assert len(recovered()) == 2, recovered()
    assert "works again, 60.0 s after it first failed (1 failed operation(s)" in recovered()[1], recovered()
    reopened.close()


def test_sqlite_logs_a_sweep_only_once_its_deletion_is_committed(tmp_path, monkeypatch, caplog):
    """A save whose commit failed (a full disk) after its sweep logged "deleted 1 expired
    conversation(s)", though the rollback kept every row: the log said the words were gone."""
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    store.save("old", ConversationState(turns=1), turn())
    clock.advance(61)
    committed = SQLiteStore.__dict__["_committed"]  # the staticmethod itself

    def full_disk(connection, action):
        action(connection)
        connection.execute("ROLLBACK")  # as SQLite's failed COMMIT leaves it
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(SQLiteStore, "_committed", staticmethod(full_disk))
    with caplog.at_level("INFO", logger="legacy_assistant.stores.sqlite_store"):
        with pytest.raises(StoreError, match="disk is full"):
            store.save("new", ConversationState(turns=1), turn())
        assert "expired conversation" not in caplog.text
        assert _senders(store, "conversations") == {"old"}
        monkeypatch.setattr(SQLiteStore, "_committed", committed)
        clock.advance(61)
        store.save("new", ConversationState(turns=1), turn())
    assert "deleted 1 expired conversation(s)" in caplog.text
    assert _senders(store, "conversations") == {"new"}
    store.close()


def test_the_memory_store_drops_expired_conversations_at_the_next_save():
    """An expired conversation was invisible, but its turns stayed in the process's memory until
    its sender came back or 10,000 other conversations pushed it out: on a quiet server, for
    good. A save now drops every conversation idle past the idle time, as SQLite's sweep does."""
    clock = FakeClock()
    store = MemoryStore(ttl_seconds=60, clock=clock)
    store.save("old", ConversationState(turns=1), turn("my card is 4111"))
    clock.advance(30)
    store.save("recent", ConversationState(turns=1), turn())
    clock.advance(31)  # "old" idle 61 s, "recent" 31 s
    store.save("new", ConversationState(turns=1), turn())
    assert "old" not in store._items and len(store) == 2
    assert [t.message for t in store.history("recent")] == ["hi"]
    forever = MemoryStore(ttl_seconds=0, clock=clock)  # no idle time: nothing expires
    forever.save("kept", ConversationState(turns=1), turn())
    clock.advance(10 * 365 * 86400)
    forever.save("other", ConversationState(turns=1), turn())
    assert len(forever) == 2


def _files_of(folder, name):
    """Every byte of the database ``name`` in ``folder`` and of the files SQLite keeps beside it."""
    return b"".join(path.read_bytes() for path in folder.iterdir() if path.name.startswith(name))


class _WithoutSecureDelete(sqlite3.Connection):
    """A connection as SQLite opens one where it was built without SQLITE_SECURE_DELETE (its
    default): deleted rows stay in the file's free space."""

    generation = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.execute("PRAGMA secure_delete=OFF")


@pytest.mark.parametrize("where", ["write-ahead log", "database file"])
@pytest.mark.parametrize("how", ["forget", "forget in a conversation block", "expiry", "expiry, the sender back"])
def test_sqlite_leaves_no_copy_of_a_deleted_conversation_in_its_files(tmp_path, monkeypatch, where, how):
    """A conversation deleted (DELETE, or its idle time run out) was gone from every route, but its
    words stayed on disk while the server ran: in the write-ahead log until SQLite's next
    checkpoint (1,000 pages of later turns, days on a quiet server), and in the database file's
    free space where SQLite was built without secure delete. Both are overwritten now."""
    from legacy_assistant.stores import sqlite_store

    monkeypatch.setattr(sqlite_store, "_Connection", _WithoutSecureDelete)
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    for number in range(3):
        store.save("sender-to-forget", ConversationState(turns=number + 1), turn(f"my card is 4111-{number}"))
    if where == "database file":  # checkpointed, as 1,000 pages of turns or a restart does
        store.close()
        store = SQLiteStore(tmp_path / "c.db", ttl_seconds=60, clock=clock)
    assert b"4111-" in _files_of(tmp_path, "c.db")
    if how == "expiry":
        clock.advance(61)
        store.save("kept", ConversationState(turns=1), turn("kept words"))  # sweeps the expired one
    elif how == "expiry, the sender back":
        clock.advance(61)  # no save between: the sweep finds the conversation live again
        store.save("sender-to-forget", ConversationState(turns=1), turn("a fresh start"))  # the old turns go
        assert [t.message for t in store.history("sender-to-forget")] == ["a fresh start"]
        assert b"4111-" not in _files_of(tmp_path, "c.db")
        store.close()
        return
    else:
        store.save("kept", ConversationState(turns=1), turn("kept words"))
        if how == "forget":
            assert store.forget("sender-to-forget") is True
        else:
            with store.conversation("sender-to-forget"):
                assert store.forget("sender-to-forget") is True
    files = _files_of(tmp_path, "c.db")
    assert b"4111-" not in files and b"sender-to-forget" not in files
    assert [t.message for t in store.history("kept")] == ["kept words"]
    store.close()


def test_sqlite_deletion_beside_a_long_reader_stalls_no_turn_for_long(tmp_path):
    """The checkpoint after a deletion waits for readers of the write-ahead log while SQLite holds
    the write lock: with a reader that keeps a snapshot (a backup, a replicator, the sqlite3
    shell), each DELETE held every other sender's turn, in every worker, for 2 s."""
    store = SQLiteStore(tmp_path / "c.db")
    for sender in ("gone", "other"):
        store.save(sender, ConversationState(turns=1), turn())
    reader = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM turns").fetchone()  # a snapshot older than what follows
    store.save("other", ConversationState(turns=2), turn("after the snapshot"))
    waited = {}

    def other_turn():
        started.wait()
        began = time.monotonic()
        with store.conversation("other"):
            store.save("other", ConversationState(turns=3), turn())
        waited["turn"] = time.monotonic() - began

    started = threading.Event()
    thread = threading.Thread(target=other_turn)
    thread.start()
    began = time.monotonic()
    with store.conversation("gone"):
        started.set()
        assert store.forget("gone") is True
    waited["forget"] = time.monotonic() - began
    thread.join()
    reader.close()
    assert waited["forget"] < 1.5 and waited["turn"] < 1.5, waited  # the stall was 2 s
    assert store.history("gone") == [] and len(store.history("other")) == 3
    store.close()


@pytest.fixture
def make_redis_store(request, tmp_path):
    yield from store_factory(request, tmp_path, "redis")


def test_redis_keys_carry_the_idle_time_and_every_save_renews_it(make_redis_store):
    store = make_redis_store(ttl_seconds=3600)
    client, keys = store._client, [store._key("state", "a"), store._key("turns", "a")]
    store.save("a", ConversationState(turns=1), turn("one"))
    time.sleep(0.2)  # let Redis count the expiry down a little
    left = [client.pttl(key) for key in keys]
    assert all(3_500_000 < ms <= 3_599_800 for ms in left), left
    store.save("a", ConversationState(turns=2), turn("two"))
    renewed = [client.pttl(key) for key in keys]
    assert all(new > old for new, old in zip(renewed, left)), (left, renewed)


def test_redis_a_lower_idle_time_holds_for_conversations_saved_under_a_higher_one(make_redis_store):
    """Lowering --conversation-ttl left Redis keys with their old expiry: conversations idle
    longer than the new idle time were still served (SQLite measures by the current setting)."""
    before = make_redis_store(ttl_seconds=3600)
    for sender in ("idle", "idle-saved", "idle-forgotten", "idle-amended", "recent"):
        before.save(sender, ConversationState(context="c", turns=1), turn("old"))
    stored = before.history("idle-amended")[0]
    time.sleep(1.5)
    before.save("recent", ConversationState(context="c", turns=2), turn("new"))
    after = make_redis_store(ttl_seconds=1)

    def keys(sender):
        return after._client.exists(after._key("state", sender), after._key("turns", sender))

    assert after.load("idle") == ConversationState() and after.history("idle") == []
    assert keys("idle") == 0  # deleted now, not in an hour
    after.save("idle-saved", ConversationState(turns=1), turn("afresh"))  # starts afresh: the old turn goes
    assert [t.message for t in after.history("idle-saved")] == ["afresh"]
    assert after.forget("idle-forgotten") is False and keys("idle-forgotten") == 0
    assert after.amend("idle-amended", stored, turn("amended")) is False
    assert after.load("recent").turns == 2  # idle for less than the new idle time
    left = [after._client.pttl(after._key(kind, "recent")) for kind in ("state", "turns")]
    assert all(0 < ms <= 1000 for ms in left), left  # its last save plus the new idle time
    time.sleep(1.2)
    assert after.load("recent") == ConversationState() and keys("recent") == 0


def test_redis_a_full_redis_still_serves_what_was_saved_under_another_idle_time(make_redis_store, monkeypatch):
    """A full Redis (noeviction) refuses writes, and reading a conversation saved under another
    idle time moves its expiry, a write: after a restart with a lower --conversation-ttl every
    transcript read answered 503 (OOM) where the documentation has them read. A read now answers
    as it would have, and leaves moving the expiry to a later read or save."""
    import redis

    before = make_redis_store(ttl_seconds=3600)
    before.save("a", ConversationState(context="c", turns=1), turn("old"))
    time.sleep(0.05)  # Redis's clock: "a" has been idle longer than 10 ms

    def full(self, *args, **kwargs):
        raise redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(redis.client.Pipeline, "execute", full)
    longer = make_redis_store(ttl_seconds=3000)
    assert longer.load("a") == ConversationState(context="c", turns=1)
    assert [t.message for t in longer.history("a")] == ["old"]
    assert longer._client.pttl(longer._key("state", "a")) > 3_000_000  # not moved: Redis refused
    shorter = make_redis_store(ttl_seconds=0.01)
    assert shorter.load("a") == ConversationState() and shorter.history("a") == []  # expired by the lower one


def test_redis_a_save_keeps_the_history_when_another_idle_time_moves_the_expiry_meanwhile(make_redis_store):
    """A save inside conversation() read the state, then what its key had left: where a server of
    this idle time moved the expiry of a state saved with another between the two reads (a
    history read does, without the hold), the old state's idle time was paired with the new
    expiry, the live conversation looked expired, and the save deleted its turns."""
    longer = make_redis_store(ttl_seconds=3600)
    shorter, other_shorter = make_redis_store(ttl_seconds=2), make_redis_store(ttl_seconds=2)
    longer.save("a", ConversationState(turns=1), turn("one"))
    expired = shorter._expired
    moved = []

    def moved_first(pipe, state_key, raw):
        if not moved:
            moved.append(other_shorter.history("a"))  # rewrites the state with the 2 s idle time
        return expired(pipe, state_key, raw)

    shorter._expired = moved_first
    with shorter.conversation("a"):
        shorter.save("a", ConversationState(turns=2), turn("two"))
    assert [t.message for t in moved[0]] == ["one"]
    assert [t.message for t in shorter.history("a")] == ["one", "two"]
    assert shorter.load("a").turns == 2


def test_redis_a_higher_or_no_idle_time_takes_over_at_the_next_save(make_redis_store):
    """A read by a server with a longer idle time (or none) moved the expiry of a conversation
    saved with a shorter one: it lived on or not by whether something read it before it expired
    (SQLite could not follow, and brought back those that had). Its next save moves it now."""
    before = make_redis_store(ttl_seconds=60)
    before.save("a", ConversationState(turns=1), turn())
    longer = make_redis_store(ttl_seconds=3600)
    assert [t.message for t in longer.history("a")] == ["hi"] and longer.load("a").turns == 1
    left = [longer._client.pttl(longer._key(kind, "a")) for kind in ("state", "turns")]
    assert all(50_000 < ms <= 60_000 for ms in left), left  # read: the expiry it was saved with
    forever = make_redis_store(ttl_seconds=0)
    assert forever.load("a").turns == 1 and forever.forget("b") is False
    assert 50_000 < forever._client.pttl(forever._key("state", "a")) <= 60_000
    longer.save("a", ConversationState(turns=2), turn("two"))
    left = [longer._client.pttl(longer._key(kind, "a")) for kind in ("state", "turns")]
    assert all(3_590_000 < ms <= 3_600_000 for ms in left), left
    forever.save("a", ConversationState(turns=3), turn("three"))
    assert [forever._client.pttl(forever._key(kind, "a")) for kind in ("state", "turns")] == [-1, -1]
    assert make_redis_store(ttl_seconds=60).load("a").turns == 3  # kept forever until now: 60 s from now
    assert 50_000 < before._client.pttl(before._key("state", "a")) <= 60_000


def test_redis_conversation_kept_forever_expires_by_the_time_since_its_last_save(make_redis_store):
    """A conversation saved with no idle time, read by a server with one: idle longer than that
    is expired for every call, forget's answer included (it read the time Redis answered from
    the wrong reply of its transaction, and said such a conversation was there)."""
    forever = make_redis_store(ttl_seconds=0)
    for sender in ("idle", "idle-forgotten", "recent"):
        forever.save(sender, ConversationState(context="c", turns=1), turn("old"))
    time.sleep(1.2)
    after = make_redis_store(ttl_seconds=1)

    def keys(sender):
        return after._client.exists(after._key("state", sender), after._key("turns", sender))

    assert after.load("idle") == ConversationState() and keys("idle") == 0
    assert after.forget("idle-forgotten") is False and keys("idle-forgotten") == 0
    longer = make_redis_store(ttl_seconds=60)
    assert longer.load("recent").turns == 1  # idle for less than 60 s: 60 s from its last save
    assert 0 < longer._client.pttl(longer._key("state", "recent")) < 59_000  # from its last save, not now
    assert longer.forget("recent") is True


def test_redis_conversation_saved_by_an_earlier_version_gets_the_lower_idle_time(make_redis_store):
    """A state without the idle time it was saved with (how long it has been idle is not known):
    no longer than either what its keys have left or the idle time."""
    store = make_redis_store(ttl_seconds=10)
    client = store._client
    client.set(store._key("state", "old"), '{"context": "c", "next_tag": null, "turns": 3}', px=3_600_000)
    client.rpush(store._key("turns", "old"), json.dumps(turn("old").to_dict()))
    client.pexpire(store._key("turns", "old"), 3_600_000)
    assert store.load("old") == ConversationState(context="c", turns=3)
    left = [client.pttl(store._key(kind, "old")) for kind in ("state", "turns")]
    assert all(9_000 < ms <= 10_000 for ms in left), left
    assert [t.message for t in store.history("old")] == ["old"]


def test_redis_idle_time_under_a_millisecond_still_expires(make_redis_store):
    store = make_redis_store(ttl_seconds=0.0004)
    store.save("tiny", ConversationState(turns=1), turn("one"))
    time.sleep(0.05)
    assert store._client.exists(store._key("state", "tiny")) == 0  # gone, not kept forever


def test_redis_load_reads_the_stored_state_once(make_redis_store, monkeypatch):
    """A load parsed the state's JSON twice: once for the idle time it was saved with, once for
    the state."""
    from legacy_assistant.stores import redis_store

    store = make_redis_store(ttl_seconds=3600)
    store.save("a", ConversationState(context="c", turns=1), turn())
    parsed = []

    def loads(raw, *args, **kwargs):
        parsed.append(raw)
        return json.loads(raw, *args, **kwargs)

    monkeypatch.setattr(redis_store, "json", type("Json", (), {"loads": staticmethod(loads), "dumps": json.dumps}))
    assert store.load("a") == ConversationState(context="c", turns=1)
    assert len(parsed) == 1
    other = make_redis_store(ttl_seconds=60)  # saved with another idle time: moved, and still read
    assert other.load("a") == ConversationState(context="c", turns=1)


def test_redis_save_after_the_lock_expired_is_refused_not_lost(make_redis_store, monkeypatch):
    """A holder that outlived its lock must not overwrite what the next holder saved."""
    from legacy_assistant.errors import StoreError
    from legacy_assistant.stores import redis_store

    # long enough for quick's whole turn on a busy machine (one took 141 ms of a 200 ms lock)
    monkeypatch.setattr(redis_store, "LOCK_TIMEOUT_SECONDS", 1.0)
    slow, quick = make_redis_store(), make_redis_store()
    with pytest.raises(StoreError, match="its lock expired"):
        with slow.conversation("shared"):
            state = slow.load("shared")
            time.sleep(1.3)  # the lock expires; another worker takes the conversation on
            with quick.conversation("shared"):
                quick.save("shared", ConversationState(turns=quick.load("shared").turns + 1), turn("quick"))
            slow.save("shared", ConversationState(turns=state.turns + 1), turn("slow"))
    assert quick.load("shared").turns == 1 and [t.message for t in quick.history("shared")] == ["quick"]
    with slow.conversation("shared"):  # a lock still held saves as before
        slow.save("shared", ConversationState(turns=2), turn("slow"))
    assert [t.message for t in quick.history("shared")] == ["quick", "slow"]


def test_redis_without_idle_time_sets_no_expiry(make_redis_store):
    store = make_redis_store(ttl_seconds=0)
    store.save("a", ConversationState(turns=1), turn())
    assert [store._client.pttl(store._key(kind, "a")) for kind in ("state", "turns")] == [-1, -1]  # -1: no expiry


def test_redis_idle_time_switched_off_keeps_the_history_as_well_as_the_state(make_redis_store):
    """A conversation saved under an idle time, then saved again by a server whose idle time is 0."""
    before, after = make_redis_store(ttl_seconds=3600), make_redis_store(ttl_seconds=0)
    before.save("a", ConversationState(turns=1), turn("one"))
    after.save("a", ConversationState(turns=2), turn("two"))
    assert [after._client.pttl(after._key(kind, "a")) for kind in ("state", "turns")] == [-1, -1]


def test_redis_unlocked_saves_that_start_a_conversation_at_once_keep_every_turn(make_redis_store):
    """Two save() calls outside conversation() both see a new conversation: the one that commits
    second must not delete the first one's turn as an expired history."""
    stores = [make_redis_store() for _ in range(4)]
    for trial in range(40):
        sender = f"fresh-{trial}"
        barrier = threading.Barrier(len(stores))

        def save(index, sender=sender, barrier=barrier):
            barrier.wait()
            stores[index].save(sender, ConversationState(turns=1), turn(f"t{index}"))

        threads = [threading.Thread(target=save, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(t.message for t in stores[0].history(sender)) == ["t0", "t1", "t2", "t3"], trial


def test_redis_turns_without_their_state_key_are_not_a_conversation(make_redis_store):
    """The state key says a conversation lives: without it, leftover turns are neither shown nor kept."""
    store = make_redis_store()
    store.save("a", ConversationState(turns=1), turn("one"))
    store.save("a", ConversationState(turns=2), turn("two"))
    store._client.delete(store._key("state", "a"))  # as when the state key expired before the turns list
    assert store._client.llen(store._key("turns", "a")) == 2  # the old turns are still there
    assert store.history("a") == []
    store.save("a", ConversationState(turns=1), turn("new"))  # starts afresh: the old turns go
    assert [t.message for t in store.history("a")] == ["new"]
    assert store._client.llen(store._key("turns", "a")) == 1


def test_redis_value_that_is_not_a_conversation_is_a_store_error(make_redis_store):
    from legacy_assistant.errors import StoreError

    store = make_redis_store()
    store._client.set(store._key("state", "x"), "not json")
    store._client.rpush(store._key("turns", "x"), '{"message": 1}')
    with pytest.raises(StoreError, match="not readable"):
        store.load("x")
    with pytest.raises(StoreError, match="not readable"):
        store.history("x")
    # numbers JSON can hold and Python's int() or float() cannot take: OverflowError
    store._client.set(store._key("state", "y"), '{"context": null, "next_tag": null, "turns": 1e400}')
    store._client.set(store._key("state", "z"), '{"context": null, "next_tag": null, "turns": 1}')
    store._client.rpush(store._key("turns", "z"), '{"message": "m", "reply": "r", "intent": "i", '
                        f'"confidence": 1{"0" * 400}, "at": 1}}')
    with pytest.raises(StoreError, match="not readable"):
        store.load("y")
    with pytest.raises(StoreError, match="not readable"):
        store.history("z")


def test_redis_turns_of_another_kind_refuse_the_whole_save(make_redis_store):
    """Another program's key where the turns go: the save is refused whole. EXEC ran the SET of
    the state and failed the RPUSH, so the state moved on without its turn, at each retry."""
    from legacy_assistant.errors import StoreError

    store = make_redis_store()
    store.save("a", ConversationState(context="x", turns=1), turn("first"))
    store._client.delete(store._key("turns", "a"))
    store._client.hset(store._key("turns", "a"), "field", "value")
    with pytest.raises(StoreError, match="not readable"):
        store.save("a", ConversationState(context="y", turns=2), turn("second"))
    assert store.load("a") == ConversationState(context="x", turns=1)


def redis_user_url(url, user, password):
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{password}@{rest.rpartition('@')[2]}"


@contextlib.contextmanager
def redis_user(redis_url, *rules):
    """``(url, admin)``: the URL of a new ACL user of the test Redis, with every right but what
    ``rules`` take away, and a client of the tests' own user; the user is deleted afterwards. The
    test is skipped where the tests' user cannot add users."""
    import redis

    admin = redis.Redis.from_url(redis_url)
    user = f"test-{uuid.uuid4().hex}"
    try:
        admin.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", *rules)
    except redis.ResponseError as exc:
        admin.close()
        pytest.skip(f"this Redis user cannot add users: {exc}")
    try:
        yield redis_user_url(redis_url, user, "pw"), admin
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


@pytest.mark.parametrize("missing", ["-@scripting", "-lset", "resetkeys ~other:*"])
def test_redis_user_lacking_what_a_turn_needs_is_refused_at_start(redis_url, missing):
    """An ACL user without EVALSHA started, saved each turn and could not free its lock, so the
    sender's next turn waited 10 s for it; one without the keys answered every turn 503."""
    with redis_user(redis_url, *missing.split()) as (url, _):
        with pytest.raises(ConfigError, match=r"refuses what a turn needs: .*no permissions"):
            open_store(url)


def test_a_trial_turn_refused_part_way_leaves_no_key_behind(redis_url):
    """A user without LSET saved the start's trial turn, then was refused its amendment: the
    trial conversation stayed in Redis for the conversation TTL, from every start tried."""
    from legacy_assistant.stores.redis_store import RedisStore

    prefix = f"test-{uuid.uuid4().hex}:"
    with redis_user(redis_url, "-lset") as (url, admin):
        try:
            with pytest.raises(ConfigError, match=r"refuses what a turn needs: .*no permissions.*'lset'"):
                RedisStore.from_url(url, prefix=prefix)
            assert admin.keys(prefix + "*") == []
        finally:
            for key in admin.keys(prefix + "*"):
                admin.delete(key)


def test_redis_error_inside_a_transaction_names_neither_sender_nor_words(redis_url):
    """redis-py quotes a failed transaction's command (key and value) in its error, which the
    store's error, and so the server's log, repeated: the sender id and the message's words."""
    import redis

    from legacy_assistant.errors import StoreError
    from legacy_assistant.stores.redis_store import RedisStore

    with redis_user(redis_url, "-rpush") as (url, admin):
        store = RedisStore(redis.Redis.from_url(url), prefix=f"test-{uuid.uuid4().hex}:")
        try:
            store._client.set(store._key("state", "alice@example.com"), '{"turns": 1}')
            with pytest.raises(StoreError) as caught:
                store.save("alice@example.com", ConversationState(turns=2), turn("my secret words"))
            assert "no permissions" in str(caught.value)
            assert "alice" not in str(caught.value) and "secret" not in str(caught.value)
        finally:
            admin.delete(store._key("state", "alice@example.com"))
            store.close()


def test_redis_lock_that_could_not_be_released_is_not_said_to_have_expired(make_redis_store, monkeypatch, caplog):
    """Redis stalled at the release (a socket timeout): the lock stays held until it expires, and
    the sender's next turn waits for it. The log said the lock was "no longer held"."""
    import redis

    def stalled(self):
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    store = make_redis_store()
    monkeypatch.setattr(redis.lock.Lock, "release", stalled)
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.redis_store"):
        with store.conversation("a"):
            store.save("a", ConversationState(turns=1), turn())
    assert "could not be released (Timeout reading from socket): the sender's next turn waits" in caplog.text
    assert "no longer held" not in caplog.text


def test_redis_read_only_replica_is_refused_at_start(redis_url, monkeypatch):
    """A replica's URL started and answered every turn 503 (READONLY)."""
    import redis

    def read_only(*args, **kwargs):
        raise redis.exceptions.ReadOnlyError("You can't write against a read only replica.")

    monkeypatch.setattr(redis.Redis, "set", read_only)
    with pytest.raises(ConfigError, match="refuses what a turn needs: You can't write against a read only replica"):
        open_store(redis_url)


def test_redis_forgets_idle_conversations_itself(make_redis_store):
    """The one real wait: Redis, not this code, expires the keys (a key read past its expiry
    is gone, however busy the machine)."""
    store = make_redis_store(ttl_seconds=0.2)
    store.save("a", ConversationState(context="x", turns=1), turn("old"))
    time.sleep(0.4)
    assert store.load("a") == ConversationState()
    assert store.history("a") == []
    store.save("a", ConversationState(turns=1), turn("new"))  # starts afresh, old turns gone
    assert [t.message for t in store.history("a")] == ["new"]


def test_amend_replaces_the_stored_turn_and_nothing_else(make_store):
    """A generated reply is stored as its turn's canned reply first, then amended in place."""
    first, second = make_store(), make_store()
    canned = turn("tell me a story")
    first.save("a", ConversationState(turns=1), turn("hi"))
    first.save("a", ConversationState(context="c", turns=2), canned)
    first.save("a", ConversationState(context="d", turns=3), turn("later"))  # a later turn of the sender
    amended = Turn(canned.message, "once upon a time", canned.intent, canned.confidence, canned.at, generated=True)
    with first.conversation("a"):
        assert first.amend("a", canned, amended) is True
    history = second.history("a")
    assert [(t.message, t.reply, t.generated) for t in history] == [
        ("hi", "reply to hi", False),
        ("tell me a story", "once upon a time", True),
        ("later", "reply to later", False),
    ]
    assert history[1] == amended
    assert second.load("a") == ConversationState(context="d", turns=3)
    assert second.amend("a", canned, amended) is False  # no longer stored as it was
    assert second.amend("a", turn("never said"), amended) is False
    assert [t.reply for t in first.history("a")] == ["reply to hi", "once upon a time", "reply to later"]


def test_amend_of_a_turn_stored_twice_changes_the_newest_copy(make_store):
    """Two identical turns (same time too): the one amended is the later, the one just replied to."""
    store = make_store()
    canned = Turn("tell me a story", "a canned reply", "fallback", 0.1, 1000.0)
    store.save("twice", ConversationState(turns=1), canned)
    store.save("twice", ConversationState(turns=2), canned)
    amended = Turn(canned.message, "once upon a time", canned.intent, canned.confidence, canned.at, generated=True)
    assert store.amend("twice", canned, amended) is True
    assert store.history("twice") == [canned, amended]


@pytest.mark.parametrize("field", ["message_id", "reason"])
def test_amend_tells_apart_turns_that_differ_only_in_their_message_id_or_reason(make_store, field):
    """A message sent twice at once, each copy with its id: the copies differ in that field alone.
    The reply written for the first copy is its own, and the second keeps its id (a resend of it
    is still answered from it)."""
    store = make_store()
    first = Turn("tell me a story", "a canned reply", "fallback", 0.1, 1000.0, **{field: "first"})
    second = Turn("tell me a story", "a canned reply", "fallback", 0.1, 1000.0, **{field: "second"})
    store.save("twice", ConversationState(turns=1), first)
    store.save("twice", ConversationState(turns=2), second)
    amended = Turn(first.message, "once upon a time", first.intent, first.confidence, first.at, generated=True,
                   **{field: "first"})
    assert store.amend("twice", first, amended) is True
    assert store.history("twice") == [amended, second]
    if field == "message_id":
        assert store.turn_with_id("twice", "second") == second


def test_amend_does_not_bring_back_a_forgotten_conversation(make_store):
    store = make_store()
    canned = turn("tell me a story")
    store.save("gone", ConversationState(turns=1), canned)
    assert store.forget("gone") is True
    amended = Turn(canned.message, "once upon a time", canned.intent, canned.confidence, canned.at, generated=True)
    with store.conversation("gone"):
        assert store.amend("gone", canned, amended) is False
    assert store.history("gone") == [] and store.load("gone") == ConversationState()
    assert store.forget("gone") is False


def test_amend_leaves_an_expired_conversation_expired(make_clocked_store):
    store, clock = make_clocked_store(ttl_seconds=60), make_clocked_store.clock
    canned = turn()
    store.save("a", ConversationState(turns=1), canned)
    clock.advance(61)
    assert store.amend("a", canned, Turn("hi", "amended", "greeting", 0.75, canned.at)) is False
    assert store.history("a") == []


def test_forget_deletes_one_conversation_for_every_store_object(make_store):
    first, second = make_store(), make_store()
    first.save("gone", ConversationState(context="c", turns=2), turn("one"))
    first.save("gone", ConversationState(context="c", turns=2), turn("two"))
    first.save("kept", ConversationState(turns=1), turn("other"))
    assert second.forget("gone") is True
    assert first.load("gone") == ConversationState() and first.history("gone") == []
    assert [t.message for t in first.history("kept")] == ["other"]
    assert first.forget("gone") is False and second.forget("never spoke") is False  # nothing there: no error
    first.save("gone", ConversationState(turns=1), turn("again"))  # the sender starts afresh
    assert [t.message for t in second.history("gone")] == ["again"]


def test_forget_inside_a_conversation_block_lands_and_releases_the_lock(make_store):
    store = make_store()
    store.save("a", ConversationState(turns=1), turn("one"))
    with store.conversation("a"):
        assert store.forget("a") is True
    assert store.history("a") == []
    done = []
    thread = threading.Thread(target=lambda: (store.save("a", ConversationState(turns=1), turn()), done.append(1)))
    thread.start()
    thread.join(5)
    assert done == [1] and len(store.history("a")) == 1


def test_an_expired_conversation_is_not_reported_forgotten(make_clocked_store):
    store, clock = make_clocked_store(ttl_seconds=60), make_clocked_store.clock
    store.save("a", ConversationState(turns=1), turn())
    clock.advance(61)
    assert store.forget("a") is False
    assert store.history("a") == []


def test_a_forget_starts_a_new_generation_that_every_store_object_sees(make_store):
    """What a turn compares before and after its classification: a DELETE in between changes it."""
    first, second = make_store(), make_store()
    assert first.generation("g") is None  # never forgotten
    first.save("g", ConversationState(turns=1), turn())
    assert first.generation("g") is None  # a save is no forget
    assert first.forget("g") is True
    forgotten = second.generation("g")
    assert forgotten is not None and first.generation("g") == forgotten
    assert second.forget("g") is False  # nothing there: a new generation all the same
    assert first.generation("g") not in (None, forgotten)
    assert first.generation("other") is None
    first.save("g", ConversationState(turns=1), turn("again"))  # a new conversation
    assert [t.message for t in second.history("g")] == ["again"]


def test_a_forget_is_remembered_for_ten_minutes(make_clocked_store):
    from legacy_assistant.stores.base import FORGOTTEN_SECONDS

    store, clock = make_clocked_store(ttl_seconds=0), make_clocked_store.clock
    store.forget("g")
    clock.advance(FORGOTTEN_SECONDS)
    assert store.generation("g") is not None
    clock.advance(1)
    assert store.generation("g") is None
    store.forget("h")  # the forgets older than that are deleted, not kept for good
    if make_clocked_store.kind == "sqlite":
        with store._connection() as connection:
            assert connection.execute("SELECT count(*) FROM forgotten").fetchone()[0] == 1
    else:
        assert len(store._forgotten) == 1


def test_sqlite_deletes_forgets_past_ten_minutes_by_an_index_not_a_scan(tmp_path):
    """Each forget deletes the forgets older than ten minutes while it holds the write lock: without
    an index on their time, a scan of every forget remembered (3.5 ms at 32,000). A file made
    before the index gains it when opened."""
    path = tmp_path / "c.db"
    with sqlite3.connect(path) as previous:
        previous.execute("CREATE TABLE forgotten (sender_sha256 TEXT PRIMARY KEY, token TEXT NOT NULL, "
                         "at REAL NOT NULL)")
    store = SQLiteStore(path)
    try:
        store.forget("g")
        with store._connection() as connection:
            plan = " ".join(row[-1] for row in connection.execute(
                "EXPLAIN QUERY PLAN DELETE FROM forgotten WHERE at < ?", (0.0,)))
    finally:
        store.close()
    assert "USING INDEX forgotten_at" in plan or "USING COVERING INDEX forgotten_at" in plan, plan


def test_redis_remembers_a_forget_by_a_digest_of_the_sender_for_ten_minutes(make_redis_store):
    import hashlib

    store = make_redis_store()
    store.save("secret-sender", ConversationState(turns=1), turn())
    store.forget("secret-sender")
    keys = [key.decode() for key in store._client.scan_iter(match=store.prefix + "*")]
    assert keys == [f"{store.prefix}forgotten:{hashlib.sha256(b'secret-sender').hexdigest()}"]
    assert 590_000 < store._client.pttl(keys[0]) <= 600_000


def test_two_store_objects_share_conversations(make_store):
    first, second = make_store(), make_store()
    first.save("shared", ConversationState(context="c", turns=1), turn("from first"))
    assert second.load("shared").context == "c"
    second.save("shared", ConversationState(context="d", turns=2), turn("from second"))
    assert [t.message for t in first.history("shared")] == ["from first", "from second"]


def test_conversation_lock_makes_load_decide_save_atomic(make_store):
    """Many threads over two store objects each add 1 to the turn count of one sender: with
    the lock, no increment is lost, and every turn is kept."""
    stores = [make_store(max_turns=1000), make_store(max_turns=1000)]
    per_thread, threads = 15, 6

    def worker(k):
        store = stores[k % 2]
        for i in range(per_thread):
            with store.conversation("shared"):
                state = store.load("shared")
                time.sleep(0.0005)  # widen the window a lost update needs
                store.save("shared", ConversationState(turns=state.turns + 1), turn(f"{k}-{i}"))

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert stores[0].load("shared").turns == per_thread * threads
    assert len(stores[1].history("shared")) == per_thread * threads


def test_two_saves_in_one_conversation_block_both_land(make_store):
    store = make_store()
    done = threading.Event()

    def two_saves():
        with store.conversation("twice"):
            store.save("twice", ConversationState(turns=1), turn("one"))
            store.save("twice", ConversationState(turns=2), turn("two"))
        done.set()

    worker = threading.Thread(target=two_saves, daemon=True)
    worker.start()
    assert done.wait(30), "the second save never returned"
    assert store.load("twice").turns == 2
    assert [t.message for t in store.history("twice")] == ["one", "two"]


def test_conversation_blocks_nest_in_one_thread(make_store):
    """A block inside another of the same thread: the memory store waited forever on its own lock
    (for the same sender, or another whose lock stripe is the same), Redis for 10 s and then
    failed; SQLite went on. Every store now goes on, and the outer block holds the sender until
    it ends."""
    store = make_store()
    order = []
    done = threading.Event()

    def other_turn():
        with store.conversation("outer"):
            order.append("other")

    def nested():
        with store.conversation("outer"):
            with store.conversation("outer"):
                store.save("outer", ConversationState(turns=1), turn("inner"))
            for i in range(1000):  # some share the memory store's lock stripe with "outer"
                with store.conversation(f"other-{i}"):
                    pass
            other = threading.Thread(target=other_turn)
            other.start()
            time.sleep(0.2)  # time for the other turn to get in if the inner block had let go
            order.append("outer")
            store.save("outer", ConversationState(turns=2), turn("outer"))
        other.join(30)
        done.set()

    threading.Thread(target=nested, daemon=True).start()
    assert done.wait(60), "a nested conversation block never returned"
    assert order == ["outer", "other"]
    assert [t.message for t in store.history("outer")] == ["inner", "outer"]


def test_conversation_without_save_releases_the_lock(make_store):
    store = make_store()
    with store.conversation("a"):
        store.load("a")
    done = []
    thread = threading.Thread(target=lambda: (store.save("a", ConversationState(turns=1), turn()), done.append(1)))
    thread.start()
    thread.join(5)
    assert done == [1]


def test_open_store_urls(tmp_path):
    assert isinstance(open_store("memory"), MemoryStore)
    default = open_store(None, default_dir=tmp_path / "instance")
    assert default.path == tmp_path / "instance" / "conversations.sqlite3" and default.path.exists()
    with default._connection() as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    default.close()
    relative = open_store(f"sqlite:{tmp_path}/rel.db?synchronous=normal")
    assert relative.path == tmp_path / "rel.db"
    with relative._connection() as connection:
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    relative.close()
    for bad in ["postgres://x", "sqlite://host/x", "sqlite:", "nonsense", f"sqlite:{tmp_path}/x.db?fast=1",
                f"sqlite:{tmp_path}/x.db?synchronous=off", "sqlite:///", f"sqlite:{tmp_path}/"]:
        with pytest.raises(ConfigError):
            open_store(bad)
    with pytest.raises(ConfigError):
        open_store("memory", ttl_seconds=-1)


@pytest.mark.parametrize("url", ["Redis://:sup3rsecret@127.0.0.1:6379/1", " redis://:sup3rsecret@h:6379/1",
                                 "redis+sentinel://:sup3rsecret@h:26379/m"])
def test_an_unknown_store_url_is_named_without_its_password(url):
    """A mistyped Redis URL is refused as an unknown store: the message, printed at start and
    logged, named it with its password."""
    for refuse in (open_store, check_store_url):
        with pytest.raises(ConfigError, match="unknown conversation store") as caught:
            refuse(url)
        assert "sup3rsecret" not in str(caught.value) and ":***@" in str(caught.value), str(caught.value)


@pytest.mark.parametrize("url", ["memory", "sqlite"])
def test_a_limit_of_zero_turns_per_conversation_is_refused(tmp_path, url):
    """A store that keeps no turns would lose every history: at least one turn is kept."""
    target = url if url == "memory" else f"sqlite:{tmp_path}/x.db"
    with pytest.raises(ConfigError, match=r"^turns kept per conversation must be >= 1, got 0$"):
        open_store(target, max_turns=0)
    assert not (tmp_path / "x.db").exists()


def test_a_pipe_named_as_the_sqlite_store_is_refused_as_one(tmp_path):
    """SQLite said only "disk I/O error" of a named pipe; serve names it before any worker starts."""
    from legacy_assistant.stores.base import check_store_url

    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ConfigError, match=r"pipe is a device or a pipe, not a database file$"):
        check_store_url(f"sqlite:///{tmp_path}/pipe")


def test_store_urls_that_could_only_fail_later_are_refused_up_front(tmp_path):
    """What each worker would otherwise fail on at start (or, for an in-memory SQLite database,
    on every request: each pooled connection opens its own empty database) is one ConfigError
    from check_store_url, which serve runs before gunicorn starts."""
    from legacy_assistant.stores.base import check_store_url

    cases = {
        "sqlite::memory:": "in-memory SQLite database is not supported",
        f"sqlite:{tmp_path}/x.db?synchronous=off": "synchronous must be one of full, normal, extra, got 'off'",
        f"sqlite:{tmp_path}/x.db?synchronous=normal&synchronous=full": "an option is given twice",
        "redis://127.0.0.1:6379/0?pasword=x": r"not a usable Redis URL: unknown option 'pasword' \(a misspelt one\?\)$",
        f"sqlite:{tmp_path}/no-such-folder/x.db": f"the folder {tmp_path}/no-such-folder does not exist: create it",
        "redis://:s3cret@127.0.0.1:abc/0": r"^redis://:\*\*\*@127.0.0.1:abc/0: not a Redis URL",
        "redis://[::1:1/0": "not a Redis URL: Invalid IPv6 URL",
        "redis://127.0.0.1:6379/?db=x": "not a usable Redis URL",
        "redis://127.0.0.1:6379/1?db=3": r"two database numbers, '1' in the path and '3' in \?db=",
        "redis://127.0.0.1:6379/0?socket_timeout=0": "socket_timeout must be a number of seconds above 0, got '0'",
        "redis://127.0.0.1:6379/0?socket_connect_timeout=-1": "socket_connect_timeout must be a number of seconds",
        "redis://127.0.0.1:6379/0?socket_timeout=0&socket_timeout=1": "an option is given twice: socket_timeout",
        "redis://127.0.0.1:6379/sessions": r"the path of a Redis URL is the database number .*database 0 \(give /0 to keep",
    }
    for url, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            check_store_url(url)
        if "no-such-folder" in url:  # a worker's open_store makes the folder; serve refuses first
            continue
        with pytest.raises(ConfigError, match=message):
            open_store(url)
    check_store_url("redis://127.0.0.1:6379/0?password=x")  # known options pass; nothing connects
    check_store_url("redis://127.0.0.1:6379?db=2&socket_timeout=1.5")  # one database number, a real timeout
    for url in (f"sqlite://{tmp_path}/x.db", f"sqlite:///{tmp_path}/x.db", f"sqlite:{tmp_path}/x.db"):
        check_store_url(url)
        store = open_store(url)  # three and four slashes alike: the path from the root, as it is written
        assert repr(store) == f"SQLiteStore({str(tmp_path / 'x.db')!r})", url
        store.close()
    check_store_url(f"sqlite:{tmp_path}/x.db?synchronous=NORMAL")


def test_a_sqlite_url_from_the_home_folder_names_a_file_there(tmp_path, monkeypatch):
    """``sqlite:~/c.db`` made a folder named "~" in the working directory and kept every
    conversation there, while the check before the workers start said that folder was missing."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    check_store_url("sqlite:~/c.db")
    store = open_store("sqlite:~/c.db?synchronous=normal")
    store.save("a", ConversationState(turns=1), turn())
    store.close()
    assert store.path == home / "c.db" and (home / "c.db").is_file()
    assert not (work / "~").exists()


def test_a_sqlite_url_from_the_home_folder_of_no_such_user_is_refused(tmp_path, monkeypatch):
    """``sqlite:~NAME/c.db`` where no user NAME exists made a folder named "~NAME" in the working
    directory and kept every conversation there; the check before the workers start said to
    create that folder."""
    monkeypatch.chdir(tmp_path)
    url = "sqlite:~no-such-user-here/c.db"
    for check in (check_store_url, open_store):
        with pytest.raises(ConfigError, match="there is no user 'no-such-user-here' on this machine"):
            check(url)
    assert list(tmp_path.iterdir()) == []


def test_a_sqlite_url_of_a_file_named_by_no_such_user_is_refused(tmp_path, monkeypatch):
    """``sqlite:~c.db`` (``sqlite:~/c.db`` mistyped) kept every conversation in a file named
    "~c.db" of the working directory; ``sqlite:./~c.db`` still names such a file."""
    monkeypatch.chdir(tmp_path)
    for check in (check_store_url, open_store):
        with pytest.raises(ConfigError, match=r"there is no user 'c\.db' on this machine.*sqlite:\./~c\.db"):
            check("sqlite:~c.db")
    assert list(tmp_path.iterdir()) == []
    check_store_url("sqlite:./~c.db")


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:s3cret@host/0", "redis://user:***@host/0"),
        ("redis://host:6379/0?password=s3cret&db=1", "redis://host:6379/0?password=***&db=1"),
        ("rediss://host/0?ssl_password=s3cret", "rediss://host/0?ssl_password=***"),
        ("unix:///run/redis.sock?password=s3cret", "unix:///run/redis.sock?password=***"),
        ("redis://u:s3cret@[::1:1/0", "redis://u:***@[::1:1/0"),  # not even a valid URL
        ("redis://host:6379/0", "redis://host:6379/0"),
        # a password written without its colon: redis-py sends it as a user name
        ("redis://s3cret@host:6379/0", "redis://***@host:6379/0"),
        ("rediss://s3cret@[::1]/0?db=1", "rediss://***@[::1]/0?db=1"),
        # a misspelt option is what the up-front check catches: its value may be the password
        ("redis://host:6379/0?pasword=s3cret&db=2&socket_timeout=3", "redis://host:6379/0?pasword=***&db=2&socket_timeout=3"),
        # a password with a character it should have percent-encoded: the parser cuts the address short
        ("redis://:s3/cret@host:6379/0", "redis://***"),
        ("redis://:s3?cret@host/0", "redis://***"),
        ("redis://:s3@cr#et@host:6379/0", "redis://***"),
        ("redis://:s3cr@et@host/0", "redis://:***@host/0"),
        # an "@" in the query cannot be told from one in a password: too much is hidden, never too little
        ("redis://host/0?password=s3@cret", "redis://***"),
    ],
)
def test_a_redis_password_never_shows_in_a_message(url, shown):
    from legacy_assistant.stores.redis_store import redacted

    assert redacted(url) == shown


def test_a_sqlite_store_url_naming_a_file_of_another_kind_is_refused_up_front(tmp_path):
    """Every worker would fail to open it ("file is not a database") and gunicorn give up; an
    empty file, which SQLite makes a database of, and a store's own file pass."""
    from legacy_assistant.stores.base import check_store_url

    intents = tmp_path / "intents.json"
    intents.write_text('{"intents": []}\n', encoding="utf-8")
    refused = re.escape(f"'sqlite:{intents}': {intents} is not a SQLite database: name a new file")
    with pytest.raises(ConfigError, match=f"^{refused}"):
        check_store_url(f"sqlite:{intents}")
    with pytest.raises(ConfigError, match="file is not a database"):
        open_store(f"sqlite:{intents}")
    assert intents.read_text(encoding="utf-8") == '{"intents": []}\n'
    (tmp_path / "empty.db").write_bytes(b"")
    check_store_url(f"sqlite:{tmp_path}/empty.db")
    open_store(f"sqlite:{tmp_path}/store.db").close()
    check_store_url(f"sqlite:{tmp_path}/store.db")


@pytest.mark.parametrize(
    "layout, named",
    [
        ("CREATE TABLE turns (id INTEGER PRIMARY KEY, title TEXT)", "table 'turns' has no column sender"),
        (
            "CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT)",
            "table 'conversations' has no column sender",
        ),
    ],
)
def test_another_programs_sqlite_database_is_refused_clearly_and_left_as_it_was(tmp_path, layout, named):
    """A SQLite file of another program with a table of a name the store uses was refused only
    as "no such column: sender", after the store had created its other tables in that file; the
    check before the workers start passed it."""
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute(layout)
        connection.commit()
    with pytest.raises(ConfigError, match=f"not a conversation store's database: its {named}"):
        check_store_url(f"sqlite:{path}")
    with pytest.raises(ConfigError, match=f"not a conversation store's database: its {named}"):
        open_store(f"sqlite:{path}")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert [row[0] for row in connection.execute("SELECT sql FROM sqlite_master")] == [layout]


def test_a_redis_password_in_the_query_is_hidden_when_redis_cannot_be_reached(free_port):
    with pytest.raises(ConfigError) as caught:
        open_store(f"redis://127.0.0.1:{free_port()}/0?password=s3cret")
    assert "s3cret" not in str(caught.value) and "password=***" in str(caught.value)


def test_a_damaged_sqlite_row_is_a_store_error_not_a_crash(tmp_path):
    """Values another program wrote (or a damaged file) are a StoreError, which the server
    answers 503, naming the file and the conversation by its digest."""
    import sqlite3

    from legacy_assistant.errors import StoreError
    from legacy_assistant.stores.base import sender_digest

    path = tmp_path / "damaged.db"
    store = open_store(f"sqlite:///{path}")
    store.save("a", ConversationState(turns=1), turn())
    store.save("b", ConversationState(turns=1), turn())
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE turns SET confidence = 'n/a' WHERE sender = 'a'")
        raw.execute("UPDATE conversations SET turns = 'x' WHERE sender = 'a'")
        raw.execute("UPDATE conversations SET updated = 'yesterday' WHERE sender = 'b'")
    for call in (lambda: store.history("a"), lambda: store.load("a"), lambda: store.load("b"),
                 lambda: store.history("b"), lambda: store.save("b", ConversationState(turns=2), turn())):
        with pytest.raises(StoreError, match="not readable") as caught:
            call()
        assert str(path) in str(caught.value)
        assert sender_digest("a") in str(caught.value) or sender_digest("b") in str(caught.value)
    store.close()


def test_unreachable_redis_is_a_clear_error(free_port):
    with pytest.raises(ConfigError, match="cannot reach the Redis conversation store"):
        open_store(f"redis://127.0.0.1:{free_port()}/0")


def test_rediss_to_a_redis_without_tls_says_so(redis_url):
    """It said only "Timeout connecting to server", after the connect timeout."""
    from urllib.parse import urlsplit

    plain = urlsplit(redis_url)
    url = f"rediss://{plain.hostname}:{plain.port or 6379}/0?socket_connect_timeout=0.5"
    with pytest.raises(ConfigError, match=r"Timeout connecting to server \(the server at [^ ]+ answers plain Redis, "
                                          r"without TLS: use redis://, or give the server a tls-port\)$"):
        open_store(url)


@pytest.fixture
def tls_only_server(tmp_path):
    """A TLS server that answers nothing but the handshake (as Redis with only a tls-port
    answers a plain client: it resets the connection); its port."""
    import shutil
    import socket
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            try:
                connection.settimeout(2)
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)
            except OSError:  # a plain client's bytes are no TLS: the connection goes
                connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(5)
    listener.close()


def test_redis_to_a_server_of_tls_only_says_so(tls_only_server):
    from legacy_assistant.stores.redis_store import tls_mismatch

    url = f"redis://127.0.0.1:{tls_only_server}/0"
    with pytest.raises(ConfigError, match=rf"\(the server at 127.0.0.1:{tls_only_server} answers TLS only: use "
                                          r"rediss://, with \?ssl_ca_certs=PATH where its certificate is from a "
                                          r"private authority\)$"):
        open_store(url)
    assert tls_mismatch(f"rediss://127.0.0.1:{tls_only_server}/0") is None  # the protocol is right


def test_no_tls_advice_where_nothing_tells(free_port, redis_url):
    from urllib.parse import urlsplit

    from legacy_assistant.stores.redis_store import tls_mismatch

    closed = free_port()
    for url in (f"redis://127.0.0.1:{closed}/0", f"rediss://127.0.0.1:{closed}/0", "unix:///nowhere/redis.sock"):
        assert tls_mismatch(url) is None, url
    plain = urlsplit(redis_url)
    assert tls_mismatch(f"redis://{plain.hostname}:{plain.port or 6379}/0") is None  # plain, and so is the URL
    with pytest.raises(ConfigError) as refused:
        open_store(f"redis://127.0.0.1:{closed}/0")
    assert "TLS" not in str(refused.value)


@pytest.mark.parametrize("url, threads, refused", [
    ("redis://h:6379/0", 4, False),
    ("redis://h:6379/0?max_connections=4", 4, False),
    ("redis://h:6379/0?max_connections=64", 4, False),
    ("redis://h:6379/0?max_connections=3", 4, True),
    ("rediss://:pw@h:6379/0?max_connections=1", 2, True),
    ("unix:///run/redis.sock?db=1&max_connections=2", 8, True),
])
def test_a_redis_pool_smaller_than_the_threads_is_refused_before_the_server_starts(url, threads, refused):
    """Each request thread uses one connection at a time, and the client refuses one past
    max_connections at once: under load such a worker answered 503s."""
    from legacy_assistant.serving.server import ServerOptions, refuse_small_redis_pool
    from legacy_assistant.serving.settings import resolve

    values = resolve({"STORE": url, "THREADS": threads}, environ={})
    if not refused:
        assert ServerOptions.from_settings(values).threads == threads
        return
    with pytest.raises(ConfigError) as error:
        ServerOptions.from_settings(values)
    message = str(error.value)
    assert f"is fewer than the {threads} request threads of each worker" in message
    assert f"give max_connections={threads} or more" in message and "pw" not in message
    with pytest.raises(SystemExit):  # a master given such options in code refuses them too
        refuse_small_redis_pool(ServerOptions(threads=threads, app_config={"STORE_URL": url}))


def test_sqlite_connections_do_not_pile_up_with_short_lived_threads(tmp_path):
    """The development server runs each request on a new thread: connections are pooled."""
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    for i in range(100):
        thread = threading.Thread(target=lambda i=i: store.save(f"s{i}", ConversationState(turns=1), turn()))
        thread.start()
        thread.join()
    assert len(store._idle) == 1
    assert store.load("s99").turns == 1
    store.close()


def _open_and_save(path: str, sender: str, start: float) -> str:
    """In a fresh process: wait for ``start``, open the store, save one turn; '' or the error."""
    time.sleep(max(0.0, start - time.time()))
    try:
        store = open_store(f"sqlite:///{path}")
        store.save(sender, ConversationState(turns=1), turn())
        store.close()
    except Exception as exc:  # reported to the parent, which asserts on it
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_sqlite_workers_opening_a_new_database_at_once_all_succeed(tmp_path):
    """gunicorn starts its workers together: each opens (and may create) the same database
    file at the same moment. Switching a new file to WAL mode can answer "database is locked"
    at once, without waiting; opening the store must wait and retry instead of failing."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        for attempt in range(8):
            path = str(tmp_path / f"fresh-{attempt}.db")
            start = time.time() + (1.5 if attempt == 0 else 0.3)  # past the pool's start-up: all open together
            errors = pool.starmap(_open_and_save, [(path, f"s{i}", start) for i in range(6)])
            assert errors == [""] * 6, errors
            store = open_store(f"sqlite:///{path}")
            assert [store.load(f"s{i}").turns for i in range(6)] == [1] * 6
            store.close()


def test_sqlite_writers_of_all_processes_queue_on_one_file_lock(tmp_path):
    """Processes wait for the write lock on an flock (woken at once when it is free), not in
    SQLite's busy handler (which sleeps in steps of up to 100 ms)."""
    import fcntl

    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    lock_path = tmp_path / "c.db-writer.lock"

    def lock_is_free() -> bool:
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file: as another process would
        except BlockingIOError:
            return False
        finally:
            os.close(fd)  # closing also drops a lock this probe took
        return True

    assert lock_is_free()
    with store.conversation("alice"):
        assert not lock_is_free()
        store.save("alice", ConversationState(turns=1), turn())
    assert lock_is_free()
    store.close()


def test_a_redis_password_never_reaches_a_message(free_port):
    from legacy_assistant.stores.redis_store import redacted

    with pytest.raises(ConfigError) as raised:
        open_store(f"redis://user:s3cret@127.0.0.1:{free_port()}/0")
    assert "s3cret" not in str(raised.value) and "user:***@127.0.0.1" in str(raised.value)
    assert redacted("redis://:pw@[::1]:6379/2") == "redis://:***@[::1]:6379/2"
    assert redacted("redis://localhost:6379/0") == "redis://localhost:6379/0"


@pytest.mark.parametrize("url", ["redis://:s3/cret@127.0.0.1:6379/0", "redis://:s3?cret@127.0.0.1/0",
                                 "redis://:s3@cr#et@127.0.0.1:6379/0", "redis://:s3cret@127.0.0.1:port/0",
                                 "redis://u:s3cret@127.0.0.1:6379/0#", "redis://:6379?s3cret@127.0.0.1/0",
                                 "redis://127.0.0.1/0?client_name=s3@cret"])
def test_a_redis_url_whose_password_cut_it_short_is_refused_without_showing_it(url):
    """urllib's own words quoted the piece it could not read ("... as 's3'"); a '#' made redis-py
    connect to a host named after the password's middle, and ':6379?...@host' to localhost."""
    from legacy_assistant.stores.base import check_store_url

    with pytest.raises(ConfigError, match="must be percent-encoded") as refused:
        check_store_url(url)
    assert "s3" not in str(refused.value) and "cret" not in str(refused.value)


@pytest.mark.parametrize("path", ["/sessions", "/1x", "/0/1", "/-1", "/٣"])
def test_a_redis_path_that_is_not_a_database_number_is_refused(free_port, path):
    # redis-py would ignore it and use database 0 (another app's keys, perhaps); refused before
    # any connection is tried, with the password kept out of the message
    with pytest.raises(ConfigError, match="the path of a Redis URL is the database number") as refused:
        open_store(f"redis://:secret@127.0.0.1:{free_port()}{path}")
    assert "secret" not in str(refused.value)


def test_a_redis_url_of_port_0_is_refused_before_the_client_takes_it_for_6379():
    """redis-py reads port 0 as no port and connected to 6379, while the log named port 0."""
    from legacy_assistant.stores.base import check_store_url

    with pytest.raises(ConfigError) as refused:
        check_store_url("redis://:pw@127.0.0.1:0/5")
    assert str(refused.value) == (
        "redis://:***@127.0.0.1:0/5: not a Redis URL: port 0 is no server's port (the client would connect to "
        "6379 instead): give the server's port, or leave the port out for 6379"
    )


def test_a_redis_url_whose_port_does_not_read_names_the_ports_a_server_has():
    """Port 0 is refused (above): the advice for a port that does not read named 0 as one."""
    from legacy_assistant.stores.base import check_store_url

    with pytest.raises(ConfigError) as refused:
        check_store_url("redis://:pw@127.0.0.1:70000/5")
    assert "is the port a number from 1 to 65535?" in str(refused.value)
    assert "pw" not in str(refused.value)


def test_a_redis_database_number_path_gets_as_far_as_connecting(free_port):
    for path in ["", "/", "/3", "/3/"]:
        with pytest.raises(ConfigError, match="cannot reach the Redis conversation store"):
            open_store(f"redis://127.0.0.1:{free_port()}{path}")


def test_the_memory_store_is_logged_by_what_it_is():
    """Its repr is the log's "conversation store: ..." line, as SQLiteStore('path') is."""
    from legacy_assistant.stores.base import MemoryStore

    assert repr(MemoryStore(max_conversations=7)) == "MemoryStore(this process only, at most 7 conversations)"


def test_a_new_sqlite_file_is_readable_by_its_owner_only(tmp_path):
    """It holds every conversation: no other user of the machine may read it (nor its WAL)."""
    store = SQLiteStore(tmp_path / "new" / "conversations.db")
    store.save("alice", ConversationState(), Turn(message="my address is 12 Elm Street", intent="x", confidence=1.0,
                                                  reply="ok"))
    for path in (tmp_path / "new").iterdir():
        if path.name.startswith("conversations.db"):
            assert path.stat().st_mode & 0o777 == 0o600, path.name
    store.close()
    existing = tmp_path / "shared.db"
    existing.touch(mode=0o640)
    existing.chmod(0o640)  # the owner's choice for a file that exists is kept
    SQLiteStore(existing).close()
    assert existing.stat().st_mode & 0o777 == 0o640
    # whoever may use that database may queue for its writes: the lock file follows its mode
    lock = tmp_path / "shared.db-writer.lock"
    assert lock.stat().st_mode & 0o777 == 0o640 & ~current_umask()


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o606, True), (0o640, False), (0o600, False)])
def test_a_sqlite_file_every_user_may_read_is_warned_of(tmp_path, caplog, mode, warned):
    existing = tmp_path / "old.db"
    existing.touch()
    existing.chmod(mode)
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
        SQLiteStore(existing).close()
    lines = [record.getMessage() for record in caplog.records if "every user of this machine" in record.getMessage()]
    assert len(lines) == int(warned)
    if warned:
        assert str(existing) in lines[0] and f"{mode:04o}" in lines[0] and "chmod 600" in lines[0]
    assert existing.stat().st_mode & 0o777 == mode  # a warning, not a change of the owner's choice


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("how", ["removed", "moved aside", "replaced by another database"])
def test_a_sqlite_file_removed_or_replaced_while_open_is_followed_by_every_process(tmp_path, caplog, how):
    """The pooled connections went on writing into a deleted file (every later turn lost, with
    200s), and a worker started later opened a new one, so workers disagreed. Every store object
    now opens the file at the path, as a process started later does."""
    path = tmp_path / "c.db"
    first, second = SQLiteStore(path), SQLiteStore(path)  # two workers' stores
    first.save("alice", ConversationState(turns=1), turn("before"))
    other = tmp_path / "other.db"
    if how == "replaced by another database":
        restored = SQLiteStore(other)
        restored.save("alice", ConversationState(turns=1), turn("restored"))
        restored.close()
    for suffix in ("", "-wal", "-shm"):
        target = tmp_path / f"c.db{suffix}"
        if how == "removed":
            target.unlink(missing_ok=True)
        elif how == "moved aside":
            if target.exists():
                target.rename(tmp_path / f"aside.db{suffix}")
        else:
            target.unlink(missing_ok=True)
            source = tmp_path / f"other.db{suffix}"
            if source.exists():
                source.rename(target)
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
        first.save("alice", ConversationState(turns=2), turn("after"))
    assert "the database file was removed or replaced while open" in caplog.text
    expected = ["restored", "after"] if how == "replaced by another database" else ["after"]
    assert [t.message for t in second.history("alice")] == expected  # the other worker sees it too
    assert [t.message for t in first.history("alice")] == expected
    later = SQLiteStore(path)  # as does a worker started later
    assert [t.message for t in later.history("alice")] == expected
    later.close()
    assert path.is_file() and oct(path.stat().st_mode & 0o777) == oct(0o600)
    first.close()
    second.close()


def test_a_connection_made_as_the_file_is_removed_makes_no_file_of_its_own(tmp_path, monkeypatch):
    """Removed between the check that follows the file and a new connection, the file was made
    again by that connection with the umask's permissions (0644), and every later conversation
    went into it; the turn fails (503) and the next one makes the file readable by its owner only."""
    from legacy_assistant.errors import StoreError

    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    store.save("alice", ConversationState(turns=1), turn("before"))
    with store._idle_lock:
        idle, store._idle = store._idle, []  # no pooled connection: the next call makes one
    for connection in idle:
        connection.close()
    connect = store._connect

    def removed_just_before(*args):
        for suffix in ("", "-wal", "-shm"):
            (tmp_path / f"c.db{suffix}").unlink(missing_ok=True)
        monkeypatch.setattr(store, "_connect", connect)  # once
        return connect(*args)

    monkeypatch.setattr(store, "_connect", removed_just_before)
    previous = os.umask(0o022)
    try:
        with pytest.raises(StoreError):
            store.save("bob", ConversationState(turns=1), turn("secret"))
        assert not path.exists()
        store.save("bob", ConversationState(turns=1), turn("secret"))
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert [t.message for t in store.history("bob")] == ["secret"]
    store.close()


def test_a_removed_writer_lock_file_is_opened_again_so_processes_still_queue_on_one(tmp_path):
    import fcntl

    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    lock_path = tmp_path / "c.db-writer.lock"
    lock_path.unlink()
    with store.conversation("alice"):
        assert lock_path.is_file()  # the lock another process would queue on is the one held
        fd = os.open(lock_path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        store.save("alice", ConversationState(turns=1), turn())
    store.close()


def test_a_writer_lock_held_too_long_is_a_store_error_not_an_endless_wait(tmp_path):
    """A writer that never let go (a hung process, another program's flock) held every chat of
    every worker for as long as it held the lock; a write now gives up after the busy time."""
    import fcntl

    from legacy_assistant.errors import StoreError

    store = SQLiteStore(tmp_path / "c.db")
    store._writer.wait_seconds = 0.3
    fd = os.open(tmp_path / "c.db-writer.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's hold
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"another writer has held the write lock .*c\.db-writer\.lock for 0\.3 s"):
            store.save("alice", ConversationState(turns=1), turn())
        assert 0.3 <= time.monotonic() - started < 5
        with pytest.raises(StoreError, match="another writer has held"):
            with store.conversation("alice"):
                pass
    finally:
        os.close(fd)  # let go: the next write goes through
    store.save("alice", ConversationState(turns=1), turn())
    assert [t.message for t in store.history("alice")] == ["hi"]
    store.close()


def test_a_removed_data_folder_is_made_again_and_the_writer_lock_with_it(tmp_path):
    """The lock file was re-opened before the folder was made again: the OSError was a 500, and
    the worker went on without a writer lock, no longer queuing with the other processes."""
    import fcntl
    import shutil

    folder = tmp_path / "data"
    store = SQLiteStore(folder / "c.db")
    store.save("alice", ConversationState(turns=1), turn("before"))
    shutil.rmtree(folder)
    for text in ("after", "again"):
        with store.conversation("alice"):
            fd = os.open(folder / "c.db-writer.lock", os.O_RDWR)
            try:
                with pytest.raises(BlockingIOError):  # held: another process would queue here
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
            store.save("alice", ConversationState(turns=1), turn(text))
    assert [t.message for t in store.history("alice")] == ["after", "again"]
    store.close()


def test_a_connection_opened_while_the_file_is_replaced_is_not_pooled_as_the_new_files(tmp_path, monkeypatch):
    """sqlite3.connect lets other threads run: one that followed a replaced file meanwhile made
    the connection to the old file look like one of the new opening, and it stayed in the pool."""
    import sqlite3

    from legacy_assistant.stores import sqlite_store

    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    real_connect = sqlite3.connect
    replaced = []

    def connect(*args, **kwargs):
        connection = real_connect(*args, **kwargs)  # open on the file at the path now
        if not replaced:
            replaced.append(True)
            for suffix in ("", "-wal", "-shm"):
                (tmp_path / f"c.db{suffix}").unlink(missing_ok=True)
            store._follow_the_file()  # what another thread does meanwhile
        return connection

    monkeypatch.setattr(sqlite_store.sqlite3, "connect", connect)
    while store._idle:  # the next operation opens a connection
        store._idle.pop().close()
    store.save("alice", ConversationState(turns=1), turn("first"))
    monkeypatch.undo()
    assert replaced and store._idle == []  # that connection was closed, not pooled
    later = SQLiteStore(path)
    store.save("alice", ConversationState(turns=2), turn("second"))
    assert [t.message for t in later.history("alice")][-1] == "second"
    store.close()
    later.close()


def test_a_sqlite_file_that_a_new_connection_cannot_open_is_a_store_error_in_every_call(tmp_path):
    """A damaged database file met by a new connection (none idle in the pool: another thread
    holds it, or the file was followed after a replacement) is a StoreError, which the server
    answers 503, in conversation() too, not a bare sqlite3 error (a 500)."""
    import sqlite3

    from legacy_assistant.errors import StoreError

    path = tmp_path / "damaged.db"
    store = SQLiteStore(path, ttl_seconds=0)  # no sweep at open: the pool starts empty
    path.write_bytes(b"not a database, " * 512)  # the same file (inode), other bytes
    for call in (lambda: store.load("a"), lambda: store.history("a"), lambda: store.forget("a")):
        with pytest.raises(StoreError, match="file is not a database"):
            call()
    with pytest.raises(StoreError, match=f"{path}.*file is not a database"):
        with store.conversation("a"):
            pass
    store.close()
    healthy = SQLiteStore(tmp_path / "healthy.db", ttl_seconds=0)
    with pytest.raises(sqlite3.OperationalError, match="the caller's own"):  # not the store's to rename
        with healthy.conversation("a"):
            raise sqlite3.OperationalError("the caller's own")
    healthy.close()


def test_a_turn_is_found_by_its_message_id_among_the_turns_kept(make_store):
    """What a message sent again is answered with: the newest kept turn saved with its id."""
    store = make_store(max_turns=3)
    for number, message_id in enumerate(["a", None, "b", "a"]):
        store.save("s", ConversationState(turns=number + 1), Turn(f"m{number}", f"r{number}", "i", 0.5,
                                                                   message_id=message_id))
    assert store.turn_with_id("s", "a").message == "m3"  # the newest of two
    assert store.turn_with_id("s", "b").reply == "r2"
    assert store.turn_with_id("s", "c") is None and store.turn_with_id("other", "a") is None
    store.save("s", ConversationState(turns=5), turn("m4"))
    store.save("s", ConversationState(turns=6), turn("m5"))
    assert store.turn_with_id("s", "b") is None  # pushed out of the kept turns: as history() has it
    assert [t.message_id for t in store.history("s")] == ["a", None, None]
    store.forget("s")
    assert store.turn_with_id("s", "a") is None


@pytest.mark.parametrize("message_id", ["\ud800", 5, None])
def test_a_message_id_no_store_can_keep_is_refused_by_every_store(make_store, message_id):
    store = make_store()
    store.save("s", ConversationState(turns=1), turn())
    with pytest.raises(RequestError, match="message_id"):
        store.turn_with_id("s", message_id)


def test_a_turn_count_is_kept_to_64_bits_by_every_store(make_store):
    """SQLite keeps no larger integer (the save failed with an OverflowError, a 500) while the
    other stores kept one: refused when the state is made, for every store alike."""
    store = make_store()
    for count in (2**63 - 1, -(2**63)):
        store.save("s", ConversationState(turns=count), turn())
        assert store.load("s").turns == count
    for count in (2**63, -(2**63) - 1):
        with pytest.raises(RequestError, match="64 bits"):
            ConversationState(turns=count)


def test_sqlite_sweep_finds_expired_conversations_by_index_in_old_and_new_files(tmp_path):
    """The sweep runs under the write lock once a minute: it finds what expired through the
    indexes (when last saved; the idle time saved with), not by reading every conversation (55 ms
    a sweep at 300,000 conversations), in a new file and in one written before saves recorded
    their idle time."""
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as connection:  # the tables as files written before had them
        connection.executescript(
            "CREATE TABLE conversations (sender TEXT PRIMARY KEY, context TEXT, next_tag TEXT,"
            " turns INTEGER NOT NULL, updated REAL NOT NULL);"
            "CREATE INDEX conversations_updated ON conversations (updated);"
        )
    connection.close()
    for path in (tmp_path / "new.db", old):
        SQLiteStore(path, ttl_seconds=60).close()
        with sqlite3.connect(path) as connection:
            plan = connection.execute(
                f"EXPLAIN QUERY PLAN SELECT sender FROM conversations WHERE {sqlite_store.EXPIRED_ROWS}", (0, 60, 0)
            ).fetchall()
        connection.close()
        steps = " | ".join(str(row[-1]) for row in plan)
        assert "conversations_updated" in steps and "conversations_ttl" in steps, (path.name, steps)
        assert not re.search(r"\bSCAN conversations\b(?! USING)", steps), (path.name, steps)


def test_sqlite_a_save_by_a_version_that_records_no_idle_time_is_measured_by_the_current_one(tmp_path):
    """Versions before the saved idle time, sharing the file (a rolling upgrade), update a
    conversation's last save and nothing else: the idle time an earlier save recorded is not that
    save's, and the current setting measures it, as for every row such a version wrote."""
    clock = FakeClock()
    path = tmp_path / "c.db"
    short = SQLiteStore(path, ttl_seconds=5, clock=clock)
    short.save("s", ConversationState(turns=1), turn())
    short.close()
    clock.advance(4)
    with sqlite3.connect(path) as connection:  # the earlier version's save: context, turns, updated
        connection.execute(
            "INSERT INTO conversations (sender, context, next_tag, turns, updated) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (sender) DO UPDATE SET context = excluded.context, next_tag = excluded.next_tag, "
            "turns = excluded.turns, updated = excluded.updated",
            ("s", None, None, 2, clock()),
        )
    connection.close()
    clock.advance(6)  # 6 s since that save, 10 s since the one that recorded 5 s
    hour = SQLiteStore(path, ttl_seconds=3600, clock=clock)
    assert hour.load("s").turns == 2
    hour.save("other", ConversationState(turns=1), turn())  # the first save sweeps: "s" is kept
    assert "s" in _senders(hour, "conversations")
    hour.close()


def test_a_sqlite_file_replaced_by_one_that_cannot_be_opened_is_warned_of_once(tmp_path, caplog):
    """Replaced by a file that is no database, the store logged "removed or replaced ... opening
    the file now" at every request (a line each, as many as requests) while each failed the same
    way; it says so once, each request still tries the file, and a mended one serves."""
    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    store.save("alice", ConversationState(turns=1), turn("before"))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is no SQLite database, and longer than its header\n" * 4)
    garbage.replace(path)
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
        for _ in range(3):
            with pytest.raises(StoreError, match="cannot be opened again"):
                store.load("alice")
        with pytest.raises(StoreError, match="cannot be opened again"):
            store.save("alice", ConversationState(turns=2), turn("during"))
    warned = [r for r in caplog.records if "removed or replaced while open" in r.getMessage()]
    assert len(warned) == 1
    caplog.clear()
    path.unlink()  # mended: a new, empty database at the path
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
        store.save("alice", ConversationState(turns=1), turn("after"))
    assert [t.message for t in store.history("alice")] == ["after"]
    assert "removed or replaced while open" in caplog.text  # another file again: said again
    store.close()


def test_a_sqlite_files_folder_replaced_by_a_file_while_open_is_a_store_error_warned_of_once(tmp_path, caplog):
    """The database file's folder removed and a file put in its place: each operation raised the
    bare NotADirectoryError of looking for the database file (a 500), not a StoreError (a 503).
    It is a StoreError now, warned of once, and the folder made again serves."""
    folder = tmp_path / "data"
    store = SQLiteStore(folder / "c.db")
    store.save("alice", ConversationState(turns=1), turn("before"))
    for name in os.listdir(folder):
        (folder / name).unlink()
    folder.rmdir()
    folder.write_text("a file where the folder was\n")
    with caplog.at_level("WARNING", logger="legacy_assistant.stores.sqlite_store"):
        for _ in range(3):
            with pytest.raises(StoreError, match="cannot be opened again"):
                store.load("alice")
        with pytest.raises(StoreError):
            store.save("alice", ConversationState(turns=2), turn("during"))
    warned = [r for r in caplog.records if "removed or replaced while open" in r.getMessage()]
    assert len(warned) == 1
    folder.unlink()
    store.save("alice", ConversationState(turns=1), turn("after"))
    assert [t.message for t in store.history("alice")] == ["after"]
    store.close()


_OPENED_AFTER_THE_REPLACEMENT = """
import sqlite3, sys
from legacy_assistant.stores.base import ConversationState, Turn
from legacy_assistant.stores.sqlite_store import SQLiteStore

path = sys.argv[1]
reader = sqlite3.connect(path)  # an operator's sqlite3 shell on the file put back, say
reader.execute("SELECT COUNT(*) FROM conversations").fetchone()
store = SQLiteStore(path)  # a worker started after the file was replaced
store.save("carol", ConversationState(turns=1), Turn("first", "reply", "greeting", 0.75))
print("saved", flush=True)
sys.stdin.readline()
store.save("carol", ConversationState(turns=2), Turn("second", "reply", "greeting", 0.75))
print(",".join(t.message for t in store.history("carol")), flush=True)
sys.stdin.readline()
store.close()
reader.close()
"""


def test_a_sqlite_file_replaced_while_open_keeps_what_another_process_saved_in_the_new_one(tmp_path):
    """A process that opened the file put in place before this store followed it (a worker
    started meanwhile) writes through the log at the path, which SQLite finds by the name. Had
    the store emptied that log into the old file, or removed it from the path, as it followed,
    that process's saved turn was gone, and its later turns were seen by it alone."""
    import subprocess
    import sys

    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    store.save("alice", ConversationState(turns=1), turn("backed up"))
    source, backup = sqlite3.connect(path), sqlite3.connect(tmp_path / "backup.db")
    source.backup(backup)
    source.close()
    backup.close()
    store.save("alice", ConversationState(turns=2), turn("after the backup"))
    (tmp_path / "backup.db").replace(path)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    other = subprocess.Popen(
        [sys.executable, "-c", _OPENED_AFTER_THE_REPLACEMENT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert other.stdout.readline() == "saved\n"
        assert [t.message for t in store.history("carol")] == ["first"]  # this store follows the file
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.stdout.readline() == "first,second\n"
        assert [t.message for t in store.history("carol")] == ["first", "second"]
        other.stdin.write("\n")
        other.stdin.flush()
        assert other.wait(timeout=30) == 0
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()
    store.close()
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert check.execute("SELECT message FROM turns WHERE sender = 'carol' ORDER BY id").fetchall() == [
        ("first",),
        ("second",),
    ]
    check.close()


def test_a_write_waits_for_the_writer_lock_and_sqlites_lock_together_at_most_the_busy_time(tmp_path):
    """A write that queued for the writer lock behind one waiting on SQLite's lock (another
    program holding it) then waited SQLite's whole busy time again: up to twice the 30 s a
    write is said to wait. The two waits now share one bound."""
    import fcntl

    from legacy_assistant.errors import StoreError

    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    store.save("alice", ConversationState(turns=1), turn())
    store._writer.wait_seconds = 2.0
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")  # another program holds SQLite's write lock
    fd = os.open(tmp_path / "c.db-writer.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # and a writer of another process is ahead in the queue
    let_go = threading.Timer(1.0, lambda: fcntl.flock(fd, fcntl.LOCK_UN))
    let_go.start()
    released = threading.Timer(6.0, lambda: other.execute("ROLLBACK"))  # a bound for the test
    released.start()
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="database is locked"):
            store.save("alice", ConversationState(turns=2), turn("waited"))
        assert time.monotonic() - started < 4.0  # the 2 s, not 1 s and then SQLite's 30 s
    finally:
        let_go.join()
        released.cancel()
        released.join()
        if other.in_transaction:
            other.execute("ROLLBACK")
        os.close(fd)
        other.close()
    store.save("alice", ConversationState(turns=2), turn("later"))  # the busy time is as before
    assert [t.message for t in store.history("alice")] == ["hi", "later"]
    store.close()


def _break(monkeypatch, store, kind):
    """Make every operation of ``store`` fail as its database failing would; ``monkeypatch.undo()``
    mends it."""
    if kind == "sqlite":
        def failing(self, *args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(sqlite_store._Connection, "execute", failing)
    else:
        import redis

        def refused(*args, **kwargs):
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        monkeypatch.setattr(store._client, "get", refused)
        monkeypatch.setattr(store._client, "pipeline", refused)
        monkeypatch.setattr(store._client, "lock", refused)


def _outage_clock_and_lines(store, caplog):
    """The store's outage clock made the test's (``now[0]`` seconds, moved by the test), and a
    call giving the log lines that say the store works again."""
    now = [0.0]
    store._outage._clock = lambda: now[0]

    def recovered():
        return [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]

    return now, recovered


def test_a_store_that_failed_says_once_that_it_works_again(make_shared_store, monkeypatch, caplog):
    """The failures are logged where they are answered; the log also says when they end, once
    (per recovery, not per operation), and not while the store still fails."""
    store = make_shared_store()
    store.save("alice", ConversationState(turns=1), turn())
    now, recovered = _outage_clock_and_lines(store, caplog)

    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        assert store.generation("alice") is None and recovered() == []  # never failed: nothing to say
        _break(monkeypatch, store, make_shared_store.kind)
        for _ in range(3):
            with pytest.raises(StoreError):
                store.generation("alice")
            with pytest.raises(StoreError):
                store.history("alice")
        assert recovered() == []
        monkeypatch.undo()
        assert store.generation("alice") is None
        assert recovered() == []  # history has failed too and not worked since
        assert [t.message for t in store.history("alice")] == ["hi"]
        assert len(recovered()) == 1 and recovered()[0].startswith(f"conversation store {store!r} works again, ")
        assert "(6 failed operation(s) in this process)" in recovered()[0], recovered()
        store.save("alice", ConversationState(turns=2), turn("again"))
        assert [t.message for t in store.history("alice")] == ["hi", "again"]
        assert len(recovered()) == 1, recovered()
        # a second outage is a second recovery
        now[0] += outages.QUIET_SECONDS
        _break(monkeypatch, store, make_shared_store.kind)
        with pytest.raises(StoreError):
            store.history("alice")
        monkeypatch.undo()
        store.history("alice")
        assert len(recovered()) == 2 and "(1 failed operation(s)" in recovered()[1], recovered()


def test_a_store_that_half_works_logs_no_recovery_per_request(tmp_path, caplog):
    """A store file that can be read but not written: each turn's reads work and its write fails;
    the store has not recovered, and no line says it has."""
    store = SQLiteStore(tmp_path / "c.db")
    store.save("alice", ConversationState(turns=1), turn())
    store._writer.wait_seconds = 0.05
    other = SQLiteStore(tmp_path / "c.db")  # another process's writer, holding the write lock
    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        with other.conversation("bob"):
            for _ in range(3):
                assert store.load("alice").turns == 1
                with pytest.raises(StoreError, match="write lock"):
                    with store.conversation("alice"):
                        pass
                with pytest.raises(StoreError, match="write lock"):
                    store.save("alice", ConversationState(turns=2), turn("two"))
        assert not any("works again" in r.getMessage() for r in caplog.records)
        store.save("alice", ConversationState(turns=2), turn("two"))
        assert not any("works again" in r.getMessage() for r in caplog.records)  # the lock of conversation() not yet
        with store.conversation("alice"):
            pass
    lines = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert len(lines) == 1 and "(6 failed operation(s)" in lines[0], lines
    other.close()
    store.close()


def test_a_kind_of_operation_that_failed_once_and_is_not_tried_again_does_not_keep_the_store_failing(
    make_shared_store, monkeypatch, caplog
):
    """A conversation deleted during an outage (its ``forget`` failed) and no other deletion
    since: every turn after the store came back worked, and the line that says so never came."""
    store = make_shared_store()
    store.save("alice", ConversationState(turns=1), turn())
    now, recovered = _outage_clock_and_lines(store, caplog)

    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        _break(monkeypatch, store, make_shared_store.kind)
        with pytest.raises(StoreError):
            store.forget("alice")
        with pytest.raises(StoreError):
            store.load("alice")
        monkeypatch.undo()
        now[0] = 1.0
        assert store.load("alice").turns == 1
        assert recovered() == []  # the deletion failed a moment ago: not known to work yet
        now[0] = 1.0 + outages.QUIET_SECONDS
        with store.conversation("alice"):
            store.load("alice")
            store.save("alice", ConversationState(turns=2), turn("again"))
        assert len(recovered()) == 1, recovered()
        assert "works again, 61.0 s after it first failed (2 failed operation(s)" in recovered()[0], recovered()


def test_a_store_that_fails_now_and_then_says_it_works_again_at_most_once_a_minute(
    make_shared_store, monkeypatch, caplog
):
    """One operation in many failing (a timeout now and then): the failures are logged once a
    minute; the lines that the store works again were one per failure."""
    store = make_shared_store()
    store.save("alice", ConversationState(turns=1), turn())
    now, recovered = _outage_clock_and_lines(store, caplog)

    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        for _ in range(10):
            _break(monkeypatch, store, make_shared_store.kind)
            with pytest.raises(StoreError):
                store.history("alice")
            monkeypatch.undo()
            now[0] += 1.0
            assert [t.message for t in store.history("alice")] == ["hi"]
        assert len(recovered()) == 1 and "(1 failed operation(s)" in recovered()[0], recovered()
        now[0] = 61.0  # a minute after the line (at 1.0): the next operation that works says what happened since
        store.load("alice")
        assert len(recovered()) == 2, recovered()
        assert "works again, 60.0 s after it first failed (9 failed operation(s)" in recovered()[1], recovered()
        store.load("alice")
        assert len(recovered()) == 2, recovered()


def test_an_operation_under_way_when_the_store_failed_is_no_sign_that_it_works_again(
    make_shared_store, monkeypatch, caplog
):
    """A slow read that began before the store went down and then worked says nothing of the
    store now; the first operation begun after the failure that works does."""
    store = make_shared_store()
    store.save("alice", ConversationState(turns=1), turn())
    now, recovered = _outage_clock_and_lines(store, caplog)

    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        with store._errors("load"):  # an operation under way
            now[0] = 1.0
            _break(monkeypatch, store, make_shared_store.kind)
            with pytest.raises(StoreError):
                store.load("alice")
            now[0] = 2.0
        assert recovered() == []
        monkeypatch.undo()
        assert store.load("alice").turns == 1
        assert len(recovered()) == 1 and "(1 failed operation(s)" in recovered()[0], recovered()


def test_a_store_that_half_works_logs_no_recovery_after_a_quiet_minute(tmp_path, caplog):
    """Reads work and writes fail (another writer holds the write lock): a read a minute after
    the last write failed says nothing, as the writes have not worked since."""
    store = SQLiteStore(tmp_path / "c.db")
    store.save("alice", ConversationState(turns=1), turn())
    now, recovered = _outage_clock_and_lines(store, caplog)
    store._writer.wait_seconds = 0.05
    other = SQLiteStore(tmp_path / "c.db")
    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        with other.conversation("bob"):
            with pytest.raises(StoreError, match="write lock"):
                store.save("alice", ConversationState(turns=2), turn("two"))
            now[0] = 2 * outages.QUIET_SECONDS
            assert store.load("alice").turns == 1
            assert [t.message for t in store.history("alice")] == ["hi"]
        assert not any("works again" in r.getMessage() for r in caplog.records)
        store.save("alice", ConversationState(turns=2), turn("two"))
    lines = recovered()
    assert len(lines) == 1 and "(1 failed operation(s)" in lines[0], lines
    other.close()
    store.close()


def test_one_conversations_unreadable_data_is_no_outage_of_the_store(make_shared_store, caplog):
    """A conversation that another program stored in a form this store cannot read (in Redis, a
    key of another type: WRONGTYPE) fails its own requests; the store does not fail, and no line
    says that it works again after the next request of another conversation."""
    store = make_shared_store()
    store.save("alice", ConversationState(turns=1), turn())
    store.save("bob", ConversationState(turns=1), turn())
    if make_shared_store.kind == "sqlite":
        with sqlite3.connect(store.path) as connection:
            connection.execute("UPDATE conversations SET context = x'41' WHERE sender = 'alice'")
            connection.execute("UPDATE turns SET message = x'41' WHERE sender = 'alice'")
    else:
        state, turns = store._key("state", "alice"), store._key("turns", "alice")
        store._client.delete(state)
        store._client.rpush(state, "another program's list")
        store._client.delete(turns)
        store._client.set(turns, "another program's text")
    with caplog.at_level("INFO", logger="legacy_assistant.stores"):
        for _ in range(2):
            with pytest.raises(StoreError, match="readable|WRONGTYPE"):
                store.load("alice")
            assert store.load("bob").turns == 1
            with pytest.raises(StoreError, match="readable|WRONGTYPE"):
                store.history("alice")
            assert [t.message for t in store.history("bob")] == ["hi"]
        if make_shared_store.kind == "redis":  # in a transaction, redis-py names the command first
            with pytest.raises(StoreError, match="command 1 of the transaction: WRONGTYPE"):
                store.forget("alice")
            assert store.forget("bob")
    assert not any("works again" in r.getMessage() for r in caplog.records), caplog.records
