"""Request batching: MicroBatcher on a fake model (batches form, stay within size and key, fail
alone, close), then the shipped classifier and responder batched under many threads, every
answer compared with the unbatched call."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from legacy_assistant.errors import ConfigError, RequestError
from legacy_assistant.serving.batching import (
    AloneKey,
    BatchedClassifier,
    BatchedResponder,
    BatcherClosed,
    BatchResultError,
    MicroBatcher,
)
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER, ROOT, SHIPPED_INTENTS, FakeClock

# Generous bounds on waiting for threads; a correct batcher never comes near them.
JOIN_S = 30.0


class FakeModel:
    """``run_batch`` that records its batches and can be held: while ``gate`` is clear, a call
    blocks (the model is busy), so the test decides what queues up behind it."""

    def __init__(self, fn: Callable[[int], object] = lambda item: item * 10) -> None:
        self.fn = fn
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set when a call starts
        self._lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[object]:
        with self._lock:
            self.batches.append(list(items))
        self.entered.set()
        assert self.gate.wait(JOIN_S), "the test never released the model"
        return [self.fn(item) for item in items]


class Caller:
    """A thread that submits one item and keeps its result or exception."""

    def __init__(self, batcher: MicroBatcher, item: object, key: object = None) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(batcher, item, key), daemon=True)
        self.thread.start()

    def _run(self, batcher: MicroBatcher, item: object, key: object) -> None:
        try:
            self.result = batcher.submit(item, key)
        except BaseException as exc:
            self.error = exc

    def join(self) -> Caller:
        self.thread.join(JOIN_S)
        assert not self.thread.is_alive(), "a caller never got its result"
        return self


def wait_for(condition: Callable[[], bool]) -> None:
    """Wait (test side only) until the batcher reaches a state; fails rather than hangs."""
    deadline = time.monotonic() + JOIN_S
    while not condition():
        assert time.monotonic() < deadline, "the batcher never reached the expected state"
        time.sleep(0.001)


def busy_batcher(model: FakeModel, **settings) -> tuple[MicroBatcher, Caller]:
    """A batcher whose model is busy with a first, lone request (held at the gate)."""
    batcher = MicroBatcher(model, **settings)
    model.gate.clear()
    first = Caller(batcher, -1)
    assert model.entered.wait(JOIN_S)
    return batcher, first


def queue_behind(batcher: MicroBatcher, items: list[int], keys: list[object] | None = None) -> list[Caller]:
    """Callers for ``items`` (one thread each), returned once all of them wait in the queue."""
    callers = []
    for index, item in enumerate(items):
        callers.append(Caller(batcher, item, None if keys is None else keys[index]))
        wait_for(lambda n=index + 1: batcher.pending == n)  # queued in this order
    return callers


def primed(model: FakeModel, size: int, **settings) -> MicroBatcher:
    """A batcher whose latest batches all held ``size`` requests (queued behind the model, kept
    busy by a request of an :class:`AloneKey`, which is not counted), so that the next batches
    expect that many; the model is free again."""
    from legacy_assistant.serving.batching import RECENT_BATCHES

    batcher = MicroBatcher(model, **settings)
    for _ in range(RECENT_BATCHES):
        model.gate.clear()
        model.entered.clear()
        first = Caller(batcher, -1, AloneKey("busy"))
        assert model.entered.wait(JOIN_S)
        callers = queue_behind(batcher, list(range(100, 100 + size)))
        model.gate.set()
        first.join()
        for caller in callers:
            caller.join()
        assert model.batches[-1] == list(range(100, 100 + size))
    assert batcher.expected_size == min(size, batcher.max_batch_size)
    return batcher


# -- MicroBatcher on a fake model ----------------------------------------------------------------


def test_requests_queued_behind_a_busy_model_run_as_one_batch():
    model = FakeModel()
    sizes: list[int] = []
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0, on_batch=sizes.append)
    callers = queue_behind(batcher, [1, 2, 3, 4, 5])
    model.gate.set()
    assert first.join().result == -10
    assert [caller.join().result for caller in callers] == [10, 20, 30, 40, 50]
    assert model.batches == [[-1], [1, 2, 3, 4, 5]]
    assert sizes == [1, 5]


def test_a_batch_waits_for_as_many_as_the_latest_batches_held_within_max_wait():
    model = FakeModel()
    batcher = primed(model, 4, max_batch_size=32, max_wait_s=3600)
    before = len(model.batches)
    callers = queue_behind(batcher, [1, 2])
    # The model is free, yet the two wait: four met here lately (an hour at most).
    assert batcher.pending == 2 and len(model.batches) == before
    callers += [Caller(batcher, 3), Caller(batcher, 4)]  # the fourth makes it as large: it runs at once
    assert [caller.join().result for caller in callers] == [10, 20, 30, 40]
    assert len(model.batches) == before + 1 and sorted(model.batches[-1]) == [1, 2, 3, 4]


def test_a_batch_that_waited_out_max_wait_runs_with_what_came(monkeypatch):
    from types import SimpleNamespace

    from legacy_assistant.serving import batching

    model = FakeModel()
    batcher = primed(model, 4, max_batch_size=32, max_wait_s=0.05)
    # The batcher's clock stands still until both have queued: on a busy machine the second
    # thread could start after the first one's 50 ms were out, which then ran alone.
    clock = FakeClock()
    monkeypatch.setattr(batching, "time", SimpleNamespace(monotonic=clock))
    before = len(model.batches)
    callers = queue_behind(batcher, [1, 2])
    assert len(model.batches) == before  # it waits for the two others...
    clock.advance(0.05)  # ...until max_wait is out, and they never came
    assert [caller.join().result for caller in callers] == [10, 20]
    assert model.batches[-1] == [1, 2]


def test_the_expected_size_follows_the_load_down_after_recent_batches():
    from legacy_assistant.serving.batching import RECENT_BATCHES

    model = FakeModel()
    batcher = primed(model, 3, max_batch_size=8, max_wait_s=0.01)
    assert batcher.expected_size == 3
    for n in range(RECENT_BATCHES - 1):  # lone requests, each waiting out the 10 ms for two more
        assert Caller(batcher, n).join().result == n * 10
        assert batcher.expected_size == 3  # one of the latest batches still held 3
    lone = RECENT_BATCHES - 1
    Caller(batcher, lone).join()  # now all of the latest batches were lone ones
    assert batcher.expected_size == 1
    assert Caller(batcher, lone + 1).join().result == (lone + 1) * 10
    assert model.batches[-(lone + 2):] == [[n] for n in range(lone + 2)]


def test_batches_of_an_alone_key_leave_the_expected_size_alone():
    """An AloneKey batch cannot grow, so it says nothing about the load: lone ones do not lower it."""
    from legacy_assistant.serving.batching import RECENT_BATCHES

    model = FakeModel()
    batcher = primed(model, 4, max_batch_size=8, max_wait_s=3600)
    for n in range(RECENT_BATCHES + 1):  # more lone batches than the latest ones kept
        assert Caller(batcher, n, AloneKey(n)).join().result == n * 10
    assert model.batches[-(RECENT_BATCHES + 1):] == [[n] for n in range(RECENT_BATCHES + 1)]
    assert batcher.expected_size == 4


def test_a_lone_request_runs_at_once_without_waiting_out_max_wait():
    model = FakeModel()
    batcher = MicroBatcher(model, max_batch_size=32, max_wait_s=3600)
    # With nothing else queued and the model idle, waiting could only add latency: were the
    # hour waited out, the joins below would fail.
    assert [Caller(batcher, n).join().result for n in (1, 2, 3)] == [10, 20, 30]
    assert model.batches == [[1], [2], [3]]


def test_batches_never_exceed_max_batch_size():
    model = FakeModel()
    batcher, first = busy_batcher(model, max_batch_size=4, max_wait_s=0)
    callers = queue_behind(batcher, list(range(10)))
    model.gate.set()
    assert [caller.join().result for caller in callers] == [n * 10 for n in range(10)]
    assert model.batches[1:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_items_of_different_keys_never_share_a_batch():
    model = FakeModel()
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    keys = ["a", "b", "a", ("c", 1), "b", "a", ("c", 1)]
    callers = queue_behind(batcher, list(range(len(keys))), keys)
    model.gate.set()
    assert [caller.join().result for caller in callers] == [n * 10 for n in range(len(keys))]
    # The oldest waiting request's key goes first.
    assert model.batches[1:] == [[0, 2, 5], [1, 4], [3, 6]]


def test_a_failing_batch_is_rerun_item_by_item_so_only_the_bad_item_fails():
    def fn(item: int) -> int:
        if item == 3:
            raise ValueError(f"cannot take item {item}")
        return item * 10

    model = FakeModel()
    sizes: list[int] = []
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0, on_batch=sizes.append)
    model.fn = lambda item: fn(item) if item >= 0 else -10
    callers = queue_behind(batcher, [1, 2, 3, 4])
    model.gate.set()
    for caller in callers:
        caller.join()
    assert [caller.result for caller in callers if caller.error is None] == [10, 20, 40]
    bad = callers[2].error
    assert isinstance(bad, ValueError) and str(bad) == "cannot take item 3"
    assert model.batches[1:] == [[1, 2, 3, 4], [1], [2], [3], [4]]
    assert sizes == [1, 4]  # the batch-size metric counts each request once, reruns not again


def test_a_lone_failing_request_gets_its_own_exception():
    batcher = MicroBatcher(lambda items: [1 / item for item in items], max_batch_size=4, max_wait_s=0)
    with pytest.raises(ZeroDivisionError):
        batcher.submit(0)
    assert batcher.submit(4) == 0.25


def test_a_lone_failing_request_is_not_run_again(caplog):
    """A batch of one that fails has no other item to spare: no rerun, no "one by one" warning."""
    calls: list[list[int]] = []

    def run_batch(items: list[int]) -> list[int]:
        calls.append(list(items))
        raise ValueError("the model failed")

    batcher = MicroBatcher(run_batch, max_batch_size=4, max_wait_s=0, name="lone")
    with caplog.at_level("WARNING", logger="legacy_assistant.serving.batching"):
        with pytest.raises(ValueError, match="^the model failed$"):
            batcher.submit(7)
    assert calls == [[7]]
    assert "one by one" not in caplog.text


def test_a_result_list_of_the_wrong_length_is_an_error():
    model = FakeModel()
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    callers = queue_behind(batcher, [1, 2, 3])
    # From now on the model drops the last result of every batch.
    batcher._run_batch = lambda items: [item * 10 for item in items][:-1]
    model.gate.set()
    first.join()
    for caller in callers:
        assert isinstance(caller.join().error, BatchResultError), caller.error
        assert "returned 0 results for 1 items" in str(caller.error)


def test_results_may_be_none():
    batcher: MicroBatcher[int, None] = MicroBatcher(lambda items: [None] * len(items), max_wait_s=0)
    assert batcher.submit(1) is None


def test_close_fails_waiting_requests_lets_the_running_batch_finish_and_refuses_later_ones():
    model = FakeModel()
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    callers = queue_behind(batcher, [1, 2, 3])
    closing = threading.Thread(target=batcher.close)  # waits for the running batch
    closing.start()
    for caller in callers:
        assert isinstance(caller.join().error, BatcherClosed)
    assert closing.is_alive(), "close() must wait for the batch that runs"
    model.gate.set()
    closing.join(JOIN_S)
    assert not closing.is_alive()
    assert first.join().result == -10
    with pytest.raises(BatcherClosed, match="closed"):
        batcher.submit(5)
    batcher.close()  # idempotent
    assert model.batches == [[-1]]


def test_a_batcher_is_a_context_manager_closed_at_the_blocks_end():
    model = FakeModel()
    with MicroBatcher(model, max_wait_s=0) as batcher:
        assert batcher.submit(1) == 10
    with pytest.raises(BatcherClosed, match="closed"):
        batcher.submit(2)
    with pytest.raises(ValueError, match="in the block"), MicroBatcher(model) as other:
        raise ValueError("in the block")
    with pytest.raises(BatcherClosed, match="closed"):
        other.submit(3)
    assert model.batches == [[1]]


def test_a_batch_its_model_closed_under_fails_at_once_without_running_its_items_again(caplog):
    """After close(wait=False) the model was closed under the running batch: its items were run
    again one by one, each only to meet the closed model too."""
    from legacy_assistant.common.closing import Closing
    from legacy_assistant.errors import ModelClosed

    closing = Closing("Fake model")

    def closed_or_times_ten(item: int) -> int:
        closing.check()
        return item * 10

    model = FakeModel(closed_or_times_ten)
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    callers = queue_behind(batcher, [1, 2, 3])
    held, model.gate = model.gate, threading.Event()  # the batch of the three waits at a new gate
    model.entered.clear()
    held.set()
    assert first.join().result == -10
    assert model.entered.wait(JOIN_S)
    assert model.batches == [[-1], [1, 2, 3]] and batcher.pending == 0
    batcher.close(wait=False)
    closing.closed = True  # the model closes under the running batch
    with caplog.at_level("WARNING", logger="legacy_assistant.serving.batching"):
        model.gate.set()
        errors = [caller.join().error for caller in callers]
    assert all(isinstance(error, ModelClosed) for error in errors), errors
    assert len({id(error) for error in errors}) == 3  # its own exception each
    assert model.batches == [[-1], [1, 2, 3]]  # not run again, item by item
    assert "one by one" not in caplog.text


def test_each_caller_of_a_batch_its_model_closed_under_gets_the_whole_error():
    """The callers after the first got copy.copy(error), which calls the error's class with its
    args: a ModelClosed subclass taking other arguments raised TypeError in the leader, and the
    others were told the batch was interrupted; the copies also lost the error's cause."""
    from legacy_assistant.errors import ModelClosed

    class SessionClosed(ModelClosed):
        def __init__(self, name: str, *, reason: str) -> None:
            self.name, self.reason = name, reason
            super().__init__(f"{name} is closed ({reason})")

    def closed(item: int) -> int:
        try:
            raise KeyError("no session")
        except KeyError as exc:
            error = SessionClosed("Fake model", reason="close() was called")
            error.add_note("load it again")
            raise error from exc

    model = FakeModel(closed)
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    callers = queue_behind(batcher, [1, 2, 3])
    model.gate.set()
    assert isinstance(first.join().error, SessionClosed)
    errors = [caller.join().error for caller in callers]
    assert model.batches == [[-1], [1, 2, 3]]
    assert all(type(error) is SessionClosed for error in errors), errors
    assert len({id(error) for error in errors}) == 3
    for error in errors:
        assert str(error) == "Fake model is closed (close() was called)"
        assert (error.name, error.reason) == ("Fake model", "close() was called")
        assert isinstance(error.__cause__, KeyError)
        assert error.__notes__ == ["load it again"]
    errors[1].add_note("one caller's own")
    assert errors[2].__notes__ == ["load it again"]


def test_close_releases_a_batch_that_waits_for_more():
    model = FakeModel()
    batcher = primed(model, 4, max_batch_size=8, max_wait_s=3600)
    before = len(model.batches)
    callers = queue_behind(batcher, [1, 2])  # gathering for up to an hour
    batcher.close()
    for caller in callers:
        assert isinstance(caller.join().error, BatcherClosed)
    assert len(model.batches) == before


def test_submit_from_inside_run_batch_is_refused_instead_of_waiting_forever():
    holder: dict[str, MicroBatcher] = {}

    def run_batch(items: list[int]) -> list[int]:
        return [holder["batcher"].submit(item + 1) for item in items]

    holder["batcher"] = MicroBatcher(run_batch, max_wait_s=0)
    with pytest.raises(RuntimeError, match="inside run_batch"):
        holder["batcher"].submit(1)


def test_an_interrupted_batch_releases_its_followers():
    class Interrupt(BaseException):
        pass

    model = FakeModel()
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    callers = queue_behind(batcher, [1, 2])

    def interrupt(items: list[int]) -> list[int]:
        raise Interrupt

    batcher._run_batch = interrupt
    model.gate.set()
    first.join()
    leader, follower = callers[0].join(), callers[1].join()
    assert isinstance(leader.error, Interrupt)
    assert isinstance(follower.error, BatcherClosed) and "interrupted" in str(follower.error)
    batcher._run_batch = model
    assert batcher.submit(3) == 30


class Interrupted(BaseException):
    """What a signal handler raises in the waiting (main) thread, like KeyboardInterrupt."""


@pytest.mark.parametrize("waiting_as", ["follower", "gathering leader"])
def test_an_interrupt_while_waiting_leaves_no_request_behind(waiting_as):
    """The main thread waits in submit() and a signal interrupts the wait: its request leaves the
    queue (and, if it led, the next request leads), so the batcher does not freeze."""
    import os
    import signal

    model = FakeModel()
    if waiting_as == "follower":
        batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    else:
        # two met here lately: a batch gathers for a second at most once it leads
        batcher = primed(model, 2, max_batch_size=8, max_wait_s=1.0)
        before = len(model.batches)
        model.gate.clear()
        first = Caller(batcher, -1, AloneKey("busy"))
        wait_for(lambda: len(model.batches) == before + 1)
    other_key: list[Caller] = []

    def interrupt_when_waiting() -> None:
        wait_for(lambda: batcher.pending == 1)  # the main thread's request waits behind `first`
        if waiting_as == "gathering leader":
            # a request of another key keeps the main thread's batch gathering once it leads
            other_key.append(Caller(batcher, 5, "other"))
            wait_for(lambda: batcher.pending == 2)
            model.gate.set()
            wait_for(lambda: batcher._leader is not None and batcher._leader.item == 1)
            time.sleep(0.05)  # into the gathering wait
        os.kill(os.getpid(), signal.SIGUSR1)

    def interrupt(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, interrupt)
    trigger = threading.Thread(target=interrupt_when_waiting, daemon=True)
    trigger.start()
    try:
        with pytest.raises(Interrupted):
            batcher.submit(1)
    finally:
        trigger.join(JOIN_S)
        signal.signal(signal.SIGUSR1, previous)
    model.gate.set()
    first.join()
    if waiting_as == "gathering leader":  # the next request leads in its place, and is alone
        assert other_key[0].join().result == 50
    assert Caller(batcher, 2).join().result == 20  # not stuck behind the abandoned request
    assert batcher.pending == 0 and 1 not in [item for batch in model.batches for item in batch]


def test_every_request_failed_by_close_gets_its_own_exception():
    model = FakeModel()
    batcher, first = busy_batcher(model, max_batch_size=8, max_wait_s=0)
    callers = queue_behind(batcher, [1, 2, 3])
    batcher.close(wait=False)
    errors = [caller.join().error for caller in callers]
    assert all(isinstance(error, BatcherClosed) for error in errors)
    assert len({id(error) for error in errors}) == 3  # one shared object would gather every thread's frames
    model.gate.set()
    first.join()


def test_an_alone_key_runs_as_soon_as_it_leads_without_waiting_for_batch_mates():
    model = FakeModel()
    batcher = primed(model, 4, max_batch_size=8, max_wait_s=3600)
    before = len(model.batches)
    model.gate.clear()
    first = Caller(batcher, -1, AloneKey("first"))
    wait_for(lambda: len(model.batches) == before + 1)  # running, held at the gate
    alone, other = queue_behind(batcher, [1, 2], keys=[AloneKey("seeded"), "greedy"])
    model.gate.set()
    assert first.join().result == -10
    # were the hour waited out for batch-mates that cannot come, the first join would fail;
    # the greedy request, alone of its key, waits for the three others that the latest batch had
    assert alone.join().result == 10
    assert batcher.pending == 1
    batcher.close()
    assert isinstance(other.join().error, BatcherClosed)
    assert model.batches[before:] == [[-1], [1]]


def test_a_huge_max_wait_waits_without_overflowing_the_timed_wait():
    model = FakeModel()
    batcher = primed(model, 2, max_batch_size=2, max_wait_s=1e10)
    before = len(model.batches)
    callers = queue_behind(batcher, [1, 9], keys=[None, "other"])  # the leader of key None gathers
    wait_for(lambda: batcher.pending == 2 and len(model.batches) == before)  # waiting, not failed
    callers.append(Caller(batcher, 2))  # fills the leader's batch
    callers.append(Caller(batcher, 8, "other"))  # and then the other key's
    assert [caller.join().result for caller in callers] == [10, 90, 20, 80]
    assert callers[0].error is None


def test_a_failing_on_batch_hook_fails_no_request():
    def hook(size: int) -> None:
        raise RuntimeError("metrics are down")

    batcher = MicroBatcher(lambda items: [item + 1 for item in items], on_batch=hook)
    assert batcher.submit(1) == 2


@pytest.mark.parametrize(
    "settings",
    [
        {"max_batch_size": 0},
        {"max_batch_size": 2.5},
        {"max_batch_size": True},
        {"max_wait_s": -0.001},
        {"max_wait_s": float("nan")},
        {"max_wait_s": "2"},
    ],
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(ConfigError, match="max_"):
        MicroBatcher(lambda items: items, **settings)


def test_many_threads_each_get_exactly_their_own_results():
    batches: list[list[tuple[int, int]]] = []
    lock = threading.Lock()

    def run_batch(items: list[tuple[int, int]]) -> list[str]:
        with lock:
            batches.append(items)
        time.sleep(0.0002)  # a model call lets the other threads run, as Session.run does
        return [f"{thread}:{n}" for thread, n in items]

    batcher = MicroBatcher(run_batch, max_batch_size=5, max_wait_s=0.001)
    start = threading.Barrier(16)
    wrong: list[tuple[str, str]] = []

    def work(thread: int) -> None:
        start.wait()
        for n in range(150):
            got = batcher.submit((thread, n), key=(thread + n) % 3)
            if got != f"{thread}:{n}":
                wrong.append((got, f"{thread}:{n}"))

    pool = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(JOIN_S * 4)
    assert not any(thread.is_alive() for thread in pool)
    assert wrong == []
    assert all(1 <= len(batch) <= 5 for batch in batches)
    assert all(len({(t + n) % 3 for t, n in batch}) == 1 for batch in batches)
    ran = sorted(item for batch in batches for item in batch)
    assert ran == sorted((t, n) for t in range(16) for n in range(150))
    assert batcher.pending == 0


# -- the shipped models --------------------------------------------------------------------------


def run_threads(work: Callable[[int], None], threads: int) -> None:
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(JOIN_S * 4)
    assert not any(thread.is_alive() for thread in pool)
    assert errors == []


class FirstBatchHeld:
    """``on_batch`` that keeps the first model call waiting until every thread has sent its
    first request, so that requests meet in the queue however the threads are scheduled."""

    def __init__(self, threads: int) -> None:
        self.sizes: list[int] = []
        self.started = threading.Semaphore(0)
        self.threads = threads

    def sent(self) -> None:
        self.started.release()

    def __call__(self, size: int) -> None:
        if not self.sizes:
            for _ in range(self.threads):
                assert self.started.acquire(timeout=JOIN_S)
        self.sizes.append(size)


@pytest.fixture(scope="module")
def predictor():
    from legacy_assistant.classifier.predictor import Predictor

    loaded = Predictor.load(DEFAULT_MODEL, 1, -1)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def responder():
    from legacy_assistant.responder.responder import Responder

    loaded = Responder.load(DEFAULT_RESPONDER, 1, -1)
    yield loaded
    loaded.close()


def sentences() -> list[str]:
    intents = json.loads(SHIPPED_INTENTS.read_text(encoding="utf-8"))["intents"]
    patterns = [pattern for intent in intents for pattern in intent.get("patterns", [])]
    # Some with nothing the model knows, some long, some empty, beside the shipped patterns.
    return patterns + ["", "zzzz qqqq", "what " * 60, "Hi! can I get a latte and also book a table for 4?"]


def test_batched_classifier_gives_every_thread_its_own_unbatched_prediction(predictor):
    texts = sentences()
    expected = {text: predictor.predict([text])[0] for text in texts}
    threads = 16
    held = FirstBatchHeld(threads)
    model = BatchedClassifier(predictor, max_batch_size=8, max_wait_s=0.05, on_batch=held)
    got: dict[tuple[int, int], object] = {}

    def work(thread: int) -> None:
        for step, index in enumerate(range(thread, thread + 3 * len(texts) // 2, 3)):
            if step == 0:
                held.sent()
            got[(thread, index)] = (texts[index % len(texts)], model.predict_one(texts[index % len(texts)]))

    run_threads(work, threads)
    model.close()
    assert len(got) == threads * len(range(0, 3 * len(texts) // 2, 3))
    for text, prediction in got.values():
        want = expected[text]
        assert [name for name, _ in prediction.ranking] == [name for name, _ in want.ranking], text
        assert max(abs(a - b) for (_, a), (_, b) in zip(prediction.ranking, want.ranking)) <= 1e-5, text
        assert prediction.known_features == want.known_features
    assert max(held.sizes) > 1 and max(held.sizes) <= 8
    assert sum(held.sizes) == len(got)


def test_classifier_batching_switched_off_calls_the_model_directly(predictor):
    sizes: list[int] = []
    model = BatchedClassifier(predictor, enabled=False, on_batch=sizes.append)
    assert not model.enabled and model.batcher is None
    assert model.predict_one("hello there") == predictor.predict(["hello there"])[0]
    assert sizes == []
    with pytest.raises(RequestError, match="text must be a string"):
        BatchedClassifier(predictor).predict_one(None)  # type: ignore[arg-type]


def responder_requests(conditions: tuple[str, ...]) -> list[tuple[list[str], str]]:
    shipped = json.loads((ROOT / "data" / "responder_contexts.json").read_text(encoding="utf-8"))
    # Twenty contexts: the shipped ones, their multi-turn ones cut to the last turn, and a few more.
    contexts = shipped + [context[-1:] for context in shipped if len(context) > 1]
    contexts += [
        ["What are you doing this weekend?"],
        ["I love pizza.", "Me too! What toppings do you like?"],
        ["Can you recommend a good book?"],
        ["It is raining again."],
        ["my cat knocked over my coffee"],
        ["Who won the game last night?"],
    ]
    assert len(contexts) == 20
    return [(context, condition) for context in contexts for condition in conditions]


@pytest.mark.parametrize(("mode", "n_conditions"), [("greedy", 5), ("beam", 2)])
def test_batched_responder_replies_token_for_token_as_unbatched(responder, mode, n_conditions):
    requests = responder_requests(responder.conditions[:n_conditions])
    expected = [responder.respond(context, condition, mode) for context, condition in requests]
    threads = 16
    held = FirstBatchHeld(threads)
    model = BatchedResponder(responder, max_batch_size=8, max_wait_s=0.05, on_batch=held)
    got: dict[int, str] = {}

    def work(thread: int) -> None:
        for step, index in enumerate(range(thread, len(requests), threads)):
            context, condition = requests[index]
            if step == 0:
                held.sent()
            # A seed does not split greedy or beam batches, nor change their replies.
            got[index] = model.respond(context, condition, mode, seed=index if index % 2 else None)

    run_threads(work, threads)
    model.close()
    assert [got[index] for index in range(len(requests))] == expected
    assert max(held.sizes) > 1 and max(held.sizes) <= 8
    assert sum(held.sizes) == len(requests)


def test_batched_responder_with_the_serving_repetition_penalty(responder):
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY)
    with Responder.load(DEFAULT_RESPONDER, 1, -1, options=options) as penalized:
        requests = responder_requests(("joy",))
        expected = [penalized.respond(context, condition) for context, condition in requests]
        held = FirstBatchHeld(len(requests))
        model = BatchedResponder(penalized, max_batch_size=32, max_wait_s=0.05, on_batch=held)
        got: dict[int, str] = {}

        def work(index: int) -> None:
            held.sent()
            got[index] = model.respond(*requests[index])

        run_threads(work, len(requests))
        model.close()
    assert [got[index] for index in range(len(requests))] == expected
    assert max(held.sizes) > 1


def test_seeded_samples_run_alone_and_repeat_the_unbatched_reply(responder):
    requests = responder_requests(("neutral",))[:12]
    expected = [responder.respond(context, condition, "sample", seed=7) for context, condition in requests]
    sizes: list[int] = []
    model = BatchedResponder(responder, max_batch_size=8, max_wait_s=0.05, on_batch=sizes.append)
    got: dict[int, str] = {}

    def work(index: int) -> None:
        got[index] = model.respond(*requests[index], mode="sample", seed=7)

    run_threads(work, len(requests))
    model.close()
    assert [got[index] for index in range(len(requests))] == expected
    assert sizes == [1] * len(requests)


def test_unseeded_samples_batch_together_and_each_row_draws_its_own_reply(responder):
    # One seed serves a whole unseeded batch; rows must still draw independently. The same
    # context eight times in one batch under fixed seeds: the rows' replies are not all one.
    context = ["Tell me about your day."]
    for seed in (1, 2, 3):
        replies = responder.respond_batch([context] * 8, None, "sample", seed)
        assert len(set(replies)) > 1, replies
    threads = 8
    held = FirstBatchHeld(threads)
    model = BatchedResponder(responder, max_batch_size=8, max_wait_s=0.05, on_batch=held)
    got: list[str] = []

    def work(index: int) -> None:
        held.sent()
        got.append(model.respond(context, "joy", "sample_rerank"))
        got.append(model.respond(context, "joy", "sample"))

    run_threads(work, threads)
    model.close()
    assert len(got) == 2 * threads and all(isinstance(reply, str) for reply in got)
    assert max(held.sizes) > 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"context": []}, "the context is empty"),
        ({"context": "just a string"}, "context must be a list"),
        ({"context": ["ok", 3]}, "every turn of the context must be a string"),
        ({"condition": "boredom"}, "unknown condition 'boredom'"),
        ({"mode": "nucleus"}, "unknown mode 'nucleus'"),
        ({"mode": "sample", "seed": "7"}, "seed must be a 64-bit integer"),
        ({"seed": 2**64}, "seed must be a 64-bit integer"),
    ],
)
def test_a_bad_responder_request_fails_before_it_joins_a_batch(responder, arguments, message):
    request = {"context": ["Hello!"], "condition": None, "mode": "greedy", "seed": None} | arguments
    with pytest.raises(RequestError, match=message):
        responder.respond(**request)  # the unbatched error ...
    sizes: list[int] = []
    model = BatchedResponder(responder, on_batch=sizes.append)
    with pytest.raises(RequestError, match=message):
        model.respond(**request)  # ... is the batched one
    assert sizes == [] and model.batcher is not None and model.batcher.pending == 0
    model.close()


def test_a_bad_request_among_good_ones_fails_alone(responder):
    requests = responder_requests(("neutral",))[:10]
    expected = [responder.respond(context, condition) for context, condition in requests]
    model = BatchedResponder(responder, max_batch_size=16, max_wait_s=0.05)
    got: dict[int, object] = {}

    def work(index: int) -> None:
        if index % 2:
            try:
                model.respond(["  "], "neutral")
            except RequestError as exc:
                got[-index] = exc
        got[index] = model.respond(*requests[index])

    run_threads(work, len(requests))
    model.close()
    assert [got[index] for index in range(len(requests))] == expected
    assert all(isinstance(got[-index], RequestError) for index in range(1, len(requests), 2))


def test_responder_batching_switched_off_calls_the_model_directly(responder):
    sizes: list[int] = []
    model = BatchedResponder(responder, enabled=False, on_batch=sizes.append)
    assert not model.enabled
    assert model.respond(["Hi, how are you today?"], "joy") == responder.respond(["Hi, how are you today?"], "joy")
    with pytest.raises(RequestError, match="unknown condition"):
        model.respond(["Hi"], "boredom")
    assert sizes == []


def test_closed_adapters_refuse_requests(predictor, responder):
    classifier, generator = BatchedClassifier(predictor), BatchedResponder(responder)
    classifier.close()
    generator.close()
    with pytest.raises(BatcherClosed):
        classifier.predict_one("hello")
    with pytest.raises(BatcherClosed):
        generator.respond(["hello"])


def test_the_adapters_are_context_managers_that_close_their_batchers(predictor, responder):
    with BatchedClassifier(predictor) as classifier, BatchedResponder(responder) as generator:
        assert classifier.predict_one("hello").ranking
        assert generator.respond(["hello"])
    with pytest.raises(BatcherClosed):
        classifier.predict_one("hello")
    with pytest.raises(BatcherClosed):
        generator.respond(["hello"])
    assert not predictor.closed and not responder.closed  # closing an adapter leaves its model open
