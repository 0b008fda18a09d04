"""The three stores against one model of the contract, by random sequences of operations.

A small model (a dict per sender, a clock, a counter of forgets) says what each call must answer;
the stores run the same random sequence (saves in and out of a conversation block, bursts past
the turn limit of 50, loads, histories, lookups by message id, amends of stored, pushed-out and
unknown turns, forgets, generations, the idle time passing, closing and opening the store again)
and each answer is compared with the model's. SQLite and Redis run as two store objects on the
same data (two processes): they take the writes in turn, and both must give every answer. Turns
are drawn from small sets of values, so that turns equal in some fields but not in others are
stored side by side.

The memory and SQLite stores keep time on a fake clock. Redis counts the idle time down on its own
clock: the time passing is played on it by taking the same span off what each key of the test
has left (``PTTL``), which is what Redis's own clock would do. The clock moves in steps of 45 s,
so no conversation is ever idle within 15 s of the idle time or of the time a forget is
remembered, where the stores' clocks (a fake one, Redis's milliseconds) may part.

Redis needs a server (``REDIS_URL``): the Redis run skips without one, and fails under ``CI=true``.
"""
import threading
import time
import uuid
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test

from legacy_assistant.errors import RequestError
from legacy_assistant.stores.base import FORGOTTEN_SECONDS, ConversationState, MemoryStore, Turn
from legacy_assistant.stores.sqlite_store import SQLiteStore
from tests.helpers import FakeClock

TTL_SECONDS = 3620.0  # 20 s from 80 steps of 45 s, 25 s from 81
MAX_TURNS = 50  # the default: bursts of saves push turns out past it
STEP_SECONDS = 45.0  # 600 s (FORGOTTEN_SECONDS) lies 15 s from 13 steps and 30 s from 14
assert min(TTL_SECONDS % STEP_SECONDS, -TTL_SECONDS % STEP_SECONDS) >= 15
assert min(FORGOTTEN_SECONDS % STEP_SECONDS, -FORGOTTEN_SECONDS % STEP_SECONDS) >= 15

SENDERS = ["a", "b", "ünïcødé 🚀", "x" * 3000, "", " ", "nul\x00inside", "with:colons", "state:a",
           "'; DROP TABLE turns; --"]
BAD_TEXT = ["\ud800", "ok\udfff"]  # lone surrogates: every store refuses them alike

# few values each, so that stored turns often agree in some fields and differ in others
texts = st.sampled_from(["hi", "hi ", "Hi", "日本語", "", "\x00", "🚀" * 40]) | st.text(max_size=12)
optional_texts = st.none() | st.sampled_from(["m1", "m2", "", "ü"]) | st.text(max_size=6)
numbers = st.sampled_from([0.0, -0.0, 0.5, 1.0, 1e9, 1.5e-310]) | st.floats(allow_nan=False, allow_infinity=False)
turns = st.builds(
    Turn, message=texts, reply=st.sampled_from(["canned", "generated", "é"]), intent=st.sampled_from(["greet", "bye"]),
    confidence=numbers, at=numbers, generated=st.booleans(), reason=optional_texts, message_id=optional_texts,
)
states = st.builds(
    ConversationState, context=st.none() | texts, next_tag=st.none() | st.sampled_from(["book_table_time", "ü"]),
    turns=st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
senders = st.sampled_from(SENDERS)


class Model:
    """What the contract says each call answers."""

    def __init__(self, ttl_seconds: float, max_turns: int, clock: FakeClock) -> None:
        self.ttl_seconds, self.max_turns, self.clock = ttl_seconds, max_turns, clock
        self.conversations = {}  # sender -> [updated, state, turns]
        self.forgotten = {}  # sender -> (when, the number of that forget)
        self.forgets = 0
        self.pushed_out = {}  # sender -> turns the limit pushed out (for amends that must find none)

    def live(self, sender):
        found = self.conversations.get(sender)
        if found is not None and self.ttl_seconds and self.clock() - found[0] > self.ttl_seconds:
            del self.conversations[sender]
            return None
        return found

    def load(self, sender):
        found = self.live(sender)
        return found[1] if found else ConversationState()

    def history(self, sender):
        found = self.live(sender)
        return list(found[2]) if found else []

    def turn_with_id(self, sender, message_id):
        return next((t for t in reversed(self.history(sender)) if t.message_id == message_id), None)

    def save(self, sender, state, turn):
        kept = self.history(sender) + [turn]
        self.pushed_out.setdefault(sender, []).extend(kept[: -self.max_turns])
        self.conversations[sender] = [self.clock(), state, kept[-self.max_turns:]]

    def amend(self, sender, turn, amended):
        found = self.live(sender)
        if found is None:
            return False
        for index in range(len(found[2]) - 1, -1, -1):
            if found[2][index] == turn:
                found[2][index] = amended
                return True
        return False

    def forget(self, sender):
        live = self.live(sender) is not None
        self.conversations.pop(sender, None)
        self.forgets += 1
        self.forgotten[sender] = (self.clock(), self.forgets)
        return live

    def generation(self, sender):
        """The number of the forget whose token the store must give, or None."""
        found = self.forgotten.get(sender)
        return found[1] if found and self.clock() - found[0] <= FORGOTTEN_SECONDS else None


class Stores:
    """How to make, reopen and age the stores of one kind; ``clock`` is the model's clock."""

    def __init__(self, kind, tmp_path, redis_url=None):
        self.kind, self.tmp_path, self.redis_url = kind, tmp_path, redis_url

    def open(self, clock):
        """Fresh store objects, names -> stores: for SQLite and Redis two on the same data (two
        processes), which take the writes in turn and must both give every answer."""
        self.clock = clock
        if self.kind == "memory":
            return {"memory": MemoryStore(ttl_seconds=TTL_SECONDS, max_turns=MAX_TURNS, clock=clock)}
        if self.kind == "sqlite":
            self.path = self.tmp_path / f"{uuid.uuid4().hex}.db"
        else:
            import redis

            self.client = redis.Redis.from_url(self.redis_url)
            self.prefix = f"test-{uuid.uuid4().hex}:"
        return self._two()

    def _two(self):
        make = self._sqlite if self.kind == "sqlite" else self._redis
        return {self.kind: make(), f"{self.kind} (a second process)": make()}

    def _sqlite(self):
        # synchronous=normal: no fsync per turn, which only a power cut tells apart, and a run several times as fast
        return SQLiteStore(self.path, ttl_seconds=TTL_SECONDS, max_turns=MAX_TURNS, synchronous="normal",
                           clock=self.clock)

    def _redis(self):
        import redis

        from legacy_assistant.stores.redis_store import RedisStore

        return RedisStore(redis.Redis.from_url(self.redis_url), ttl_seconds=TTL_SECONDS, max_turns=MAX_TURNS,
                          prefix=self.prefix)

    def reopen(self, stores):
        """Close the store objects and open them again on the same data (a restarted process)."""
        if self.kind == "memory":
            return stores  # its data lives and dies with the object
        for store in stores.values():
            store.close()
        return self._two()

    def advance(self, seconds):
        """Redis: take ``seconds`` off what every key of this run has left, as its clock would."""
        if self.kind != "redis":
            return
        for key in self.client.scan_iter(match=self.prefix + "*"):
            left = self.client.pttl(key)
            if left > 0:
                if left - seconds * 1000 <= 0:
                    self.client.delete(key)
                else:
                    self.client.pexpire(key, int(left - seconds * 1000))

    def close(self, stores):
        for store in stores.values():
            store.close()
        if self.kind == "redis":
            keys = list(self.client.scan_iter(match=self.prefix + "*"))
            if keys:
                self.client.delete(*keys)
            self.client.close()


def machine(kinds):
    class StoresAgreeWithTheModel(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.clock = FakeClock()
            self.model = Model(TTL_SECONDS, MAX_TURNS, self.clock)
            self.stores = {}
            for kind in kinds:
                self.stores.update(kind.open(self.clock))
            # the number of a forget -> the token each kind of store gave for it
            self.tokens = {kind.kind: {} for kind in kinds}
            self.saved = self.writes = 0

        def each(self, action):
            """``action(store)`` of every store object, by name."""
            return {name: action(store) for name, store in self.stores.items()}

        def write(self, action):
            """``action(store)`` of one store object of each kind (the objects of a kind share
            their data, and take the writes in turn), by name."""
            self.writes += 1
            answers = {}
            for kind in kinds:
                names = [name for name in self.stores if name.split()[0] == kind.kind]
                name = names[self.writes % len(names)]
                answers[name] = action(self.stores[name])
            return answers

        def agree(self, what, expected, answers):
            for name, answer in answers.items():
                assert answer == expected, f"{name}: {what} gave {answer!r}, the model {expected!r}"

        @initialize(sender=senders, state=states, turn=turns)
        def first_turn(self, sender, state, turn):
            self.save(sender, state, turn, locked=False)

        @rule(sender=senders, state=states, turn=turns, locked=st.booleans())
        def save(self, sender, state, turn, locked):
            def saved(store):
                if locked:
                    with store.conversation(sender):
                        return store.save(sender, state, turn)
                return store.save(sender, state, turn)

            self.write(saved)
            self.model.save(sender, state, turn)
            self.everyone()  # a save also sweeps expired conversations away: no live one with them

        @precondition(lambda self: any(found[2] for found in self.model.conversations.values()))
        @rule(data=st.data(), message_id=optional_texts, reason=optional_texts)
        def save_alike(self, data, message_id, reason):
            """A stored turn again, but for its message id or reason (a message sent twice, with
            an id each time): what tells the two apart is those fields alone."""
            sender = data.draw(st.sampled_from(sorted(s for s, found in self.model.conversations.items() if found[2])))
            turn = replace(data.draw(st.sampled_from(self.model.conversations[sender][2][-3:])),
                           message_id=message_id, reason=reason)
            state = self.model.conversations[sender][1]
            self.write(lambda store: store.save(sender, state, turn))
            self.model.save(sender, state, turn)

        @rule(sender=senders, count=st.integers(1, MAX_TURNS + 5), message_id=optional_texts)
        def burst(self, sender, count, message_id):
            for _ in range(count):
                self.saved += 1
                turn = Turn(f"turn {self.saved}", "canned", "greet", 0.5, 1.0, message_id=message_id)
                state = ConversationState(turns=self.saved)
                self.write(lambda store, state=state, turn=turn: store.save(sender, state, turn))
                self.model.save(sender, state, turn)
            gone = self.model.pushed_out.get(sender)
            if gone:  # the turn pushed out last is not written again
                newest = gone[-1]
                answers = self.write(lambda store: store.amend(sender, newest, replace(newest, reply="late")))
                self.agree(f"amend({sender!r:.40}) of a turn pushed out", self.model.amend(sender, newest, newest),
                           answers)

        def everyone(self):
            for sender in SENDERS:
                self.load(sender)

        @rule(sender=senders)
        def load(self, sender):
            self.agree(f"load({sender!r:.40})", self.model.load(sender), self.each(lambda s: s.load(sender)))

        @rule(sender=senders)
        def history(self, sender):
            self.agree(f"history({sender!r:.40})", self.model.history(sender), self.each(lambda s: s.history(sender)))

        @rule(sender=senders, message_id=st.sampled_from(["m1", "m2", "", "ü"]) | st.text(max_size=4))
        def turn_with_id(self, sender, message_id):
            self.agree(f"turn_with_id({sender!r:.40}, {message_id!r})", self.model.turn_with_id(sender, message_id),
                       self.each(lambda s: s.turn_with_id(sender, message_id)))

        @rule(data=st.data(), changes=st.dictionaries(
            st.sampled_from(["reply", "generated", "message_id", "reason"]),
            st.sampled_from(["generated", "m2", "ü"]) | st.booleans(), max_size=3))
        def amend(self, data, changes):
            # mostly a conversation with turns, and one of its newest turns (maybe stored twice, or
            # stored beside one alike): the turn a reply written meanwhile replaces
            kept = sorted(s for s, found in self.model.conversations.items() if found[2])
            sender = data.draw(st.sampled_from(kept) if kept and data.draw(st.integers(0, 3)) else senders)
            stored = self.model.history(sender)
            gone = self.model.pushed_out.get(sender, [])[-3:]  # the last a limit pushed out
            if stored and data.draw(st.integers(0, 3)):
                turn = data.draw(st.sampled_from(stored[-4:]) | st.sampled_from(stored))
            elif gone and data.draw(st.booleans()):
                turn = data.draw(st.sampled_from(gone))
            else:
                turn = data.draw(turns)
            fields = {k: (bool(v) if k == "generated" else (str(v) if not isinstance(v, str) else v))
                      for k, v in changes.items()}
            amended = replace(turn, **fields)
            locked = data.draw(st.booleans())

            def amend(store):
                if locked:
                    with store.conversation(sender):
                        return store.amend(sender, turn, amended)
                return store.amend(sender, turn, amended)

            answers = self.write(amend)
            self.agree(f"amend({sender!r:.40})", self.model.amend(sender, turn, amended), answers)
            self.history(sender)  # the turn amended, and no other

        @rule(sender=senders, locked=st.booleans())
        def forget(self, sender, locked):
            def forget(store):
                if locked:
                    with store.conversation(sender):
                        return store.forget(sender)
                return store.forget(sender)

            self.agree(f"forget({sender!r:.40})", self.model.forget(sender), self.write(forget))
            self.generation(sender)

        @rule(sender=senders)
        def generation(self, sender):
            number = self.model.generation(sender)
            for name, token in self.each(lambda s: s.generation(sender)).items():
                if number is None:
                    assert token is None, f"{name}: generation({sender!r:.40}) gave {token!r}, no forget is remembered"
                    continue
                assert isinstance(token, str), f"{name}: generation({sender!r:.40}) gave {token!r} after a forget"
                known = self.tokens[name.split()[0]]  # each object of a kind gives the same
                if number in known:
                    assert token == known[number], f"{name}: the generation changed with no forget"
                else:
                    assert token not in known.values(), f"{name}: a forget gave a generation given before"
                    known[number] = token

        @rule(steps=st.sampled_from([1, 2, 13, 14, 66, 80, 81, 200]))
        def time_passes(self, steps):
            self.clock.advance(steps * STEP_SECONDS)
            for kind in kinds:
                kind.advance(steps * STEP_SECONDS)

        @precondition(lambda self: any(kind.kind != "memory" for kind in kinds))
        @rule()
        def reopen(self):
            for kind in kinds:
                mine = {name: self.stores.pop(name) for name in list(self.stores) if name.split()[0] == kind.kind}
                self.stores.update(kind.reopen(mine))
            self.everyone()  # what a store sweeps as it opens is what had expired, no more

        @rule(sender=senders, bad=st.sampled_from(BAD_TEXT), where=st.sampled_from(["sender", "message_id"]))
        def refused_alike(self, sender, bad, where):
            """A lone surrogate is refused by every store, for every call, with the same error."""
            calls = [lambda s, b=bad: s.turn_with_id(sender, b)]
            if where == "sender":
                calls = [lambda s, b=bad: s.load(b), lambda s, b=bad: s.history(b), lambda s, b=bad: s.forget(b),
                         lambda s, b=bad: s.generation(b), lambda s, b=bad: s.turn_with_id(b, "m1"),
                         lambda s, b=bad: s.save(b, ConversationState(), Turn("x", "y", "z", 0.5)),
                         lambda s, b=bad: s.amend(b, Turn("x", "y", "z", 0.5), Turn("x", "y", "z", 0.5))]
            for call in calls:
                for name, store in self.stores.items():
                    with pytest.raises(RequestError, match=where):
                        call(store)
                        pytest.fail(f"{name}: {where} {bad!r} was taken")

        def teardown(self):
            for kind in kinds:
                kind.close({name: store for name, store in self.stores.items() if name.split()[0] == kind.kind})

    return StoresAgreeWithTheModel


# About 3 s a run of 50 sequences. A failure prints its whole sequence (at most 40 steps) as it
# was run: shrinking it can take Hypothesis five minutes.
RUN = settings(
    max_examples=50, stateful_step_count=40, phases=[Phase.explicit, Phase.reuse, Phase.generate], deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kinds", [("memory", "sqlite"), ("memory", "redis")], ids="+".join)
def test_stores_give_the_answers_of_the_model(request, tmp_path, kinds):
    url = request.getfixturevalue("redis_url") if "redis" in kinds else None
    run_state_machine_as_test(machine([Stores(kind, tmp_path, url) for kind in kinds]), settings=RUN)


def shared_stores(request, tmp_path, kind):
    """Two store objects on the same conversations (two processes; the memory store: one object)."""
    if kind == "memory":
        store = MemoryStore(max_turns=MAX_TURNS)
        return [store, store], lambda: None
    if kind == "sqlite":
        path = tmp_path / "c.db"
        made = [SQLiteStore(path, max_turns=MAX_TURNS), SQLiteStore(path, max_turns=MAX_TURNS)]
        return made, lambda: [store.close() for store in made]
    import redis

    from legacy_assistant.stores.redis_store import RedisStore

    url, prefix = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex}:"
    made = [RedisStore(redis.Redis.from_url(url), max_turns=MAX_TURNS, prefix=prefix) for _ in range(2)]

    def close():
        keys = list(made[0]._client.scan_iter(match=prefix + "*"))
        if keys:
            made[0]._client.delete(*keys)
        for store in made:
            store.close()

    return made, close


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_turns_and_forgets_of_one_sender_from_many_threads_stay_whole(request, tmp_path, kind):
    """Threads of two store objects take turns of one sender as a server does (the generation read
    as the turn arrives and again in the hold, load -> save in the hold, then the reply amended in
    a hold of its own) while another forgets the conversation now and then. Whatever the order,
    the state counts the turns kept since the last forget, past the turn limit too, every kept
    turn is whole and amended, and a thread's turns are kept in the order it took them."""
    stores, close = shared_stores(request, tmp_path, kind)
    sender, threads, turns_each = "ünïcødé 🚀", 4, 16  # 64 turns: past the limit of 50
    errors = []

    def take_turns(k):
        store = stores[k % 2]
        try:
            for i in range(turns_each):
                message = f"{k}-{i}"
                arrived = store.generation(sender)
                with store.conversation(sender):
                    if store.generation(sender) != arrived:
                        continue  # forgotten since it arrived: the forget wins
                    state = store.load(sender)
                    time.sleep(0.001)  # deciding the reply: another thread would run meanwhile
                    turn = Turn(message, "canned", "greet", 0.5, message_id=message)
                    store.save(sender, ConversationState(turns=state.turns + 1), turn)
                with store.conversation(sender):
                    store.amend(sender, turn, replace(turn, reply=f"generated {message}", generated=True))
        except Exception as exc:  # noqa: BLE001 - reported below, with the thread's name
            errors.append((k, exc))

    def forget_now_and_then():
        store = stores[1]
        try:
            for _ in range(3):
                with store.conversation(sender):
                    store.forget(sender)
        except Exception as exc:  # noqa: BLE001
            errors.append(("forget", exc))

    try:
        workers = [threading.Thread(target=take_turns, args=(k,)) for k in range(threads)]
        workers.insert(2, threading.Thread(target=forget_now_and_then))
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert not errors
        kept = stores[0].history(sender)
        assert stores[1].history(sender) == kept
        assert stores[0].load(sender) == stores[1].load(sender)
        # every save counted on the state it loaded, and each forget took state and turns together
        assert len(kept) == min(stores[0].load(sender).turns, MAX_TURNS)
        messages = [turn.message for turn in kept]
        assert len(set(messages)) == len(messages)
        for k in range(threads):
            mine = [int(m.split("-")[1]) for m in messages if m.startswith(f"{k}-")]
            assert mine == sorted(mine)
        for turn in kept:  # its amend came after its save, and nothing took it away in between
            assert (turn.reply, turn.generated) == (f"generated {turn.message}", True)
            assert stores[1].turn_with_id(sender, turn.message) == turn
        # a forget starts a new generation for every store object
        before = stores[0].generation(sender)
        assert before is not None and before == stores[1].generation(sender)
        stores[0].forget(sender)
        assert stores[1].generation(sender) not in (None, before)
    finally:
        close()
