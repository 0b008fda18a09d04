"""Request batching: concurrent calls to one model gathered into one model call.

A gthread worker answers many requests at once in one process, and every one of them calls the
same model. ``Session.run`` from several threads at once cost about 2.3 times a lone call each
(measured on the shipped classifier; the compiled calls the models now use cost far less Python
work, but still contend), while one call on a batch of rows costs little more than a call on
one row. :class:`MicroBatcher` therefore queues the requests that meet at a model and
runs them as one batch, as TensorFlow Serving's batching does: a batch holds at most
``max_batch_size`` items and waits at most ``max_wait_s`` after its oldest item arrived.
Unlike TensorFlow Serving's, a batch does not wait for ``max_batch_size`` items, which a worker
with fewer request threads could never gather: it waits for as many as the largest of the
latest batches held (:data:`RECENT_BATCHES` of them).

How it runs (leader and followers, no thread of its own):

* one batch runs at a time per batcher. The thread that finds the batcher idle becomes the
  leader: it gathers a batch, runs ``run_batch`` in its own thread, hands every follower its
  result, and appoints the oldest waiting request as the next leader. Followers sleep on their
  own condition until their result is in or they are appointed; nothing polls.
* a batch holds items of one ``key`` only; the next batch is the key of the oldest waiting item.
* the leader waits for the batch's expected size, the largest of the latest batches: while
  requests come one at a time that is 1, and a lone request runs at once (waiting could only
  add latency). When ``n`` requests met here lately, a batch waits until ``n`` have queued or
  ``max_wait_s`` has passed since its oldest item arrived. Without that wait, requests that
  return together and come back together split into a lone request (the first back, which
  found the model idle) and a batch of the rest, again and again. A batch of ``n`` fills as
  fast as the worker's threads come back, so it rarely waits long; if fewer come (the load
  fell, or other routes hold the threads), the batches that form at ``max_wait_s`` are
  smaller, and after :data:`RECENT_BATCHES` of them the expected size has come down. Under a
  steady mix of routes it stays up, and batches often wait in vain (measured in docs/MEASURED.md;
  the upper median instead of the largest waited less in vain there, but gathered smaller
  batches under one route's load and lost most of batching's gain). Batches of an
  :class:`AloneKey`, which cannot grow, say nothing about the load and are not counted.
* a batch that raises, or returns a result list of the wrong length, is run again item by item,
  so each caller gets its own result or its own exception and one bad item fails no other. A
  batch that raises :class:`~legacy_assistant.errors.ModelClosed` (its model was closed, as
  after a ``close(wait=False)``) is not: every item would fail alike, and each caller gets that
  error at once.

:class:`BatchedClassifier` and :class:`BatchedResponder` put the two models behind a batcher;
with ``enabled=False`` they call the model directly (the off switch). All three are context
managers: ``with`` closes them (``close()``, which waits for the batch in flight) as the block
ends.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar, cast

from legacy_assistant.common.closing import ClosedAtExit
from legacy_assistant.errors import AssistantError, ConfigError, ModelClosed, RequestError

if TYPE_CHECKING:
    from legacy_assistant.classifier.predictor import Prediction, Predictor
    from legacy_assistant.responder.responder import Responder

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_MAX_WAIT_S = 0.003
# How many of the latest batches set the size a new batch waits for (their largest).
RECENT_BATCHES = 8
# Decoding modes whose reply does not depend on the seed: their requests batch whatever seed
# they name.
SEEDLESS_MODES = ("greedy", "beam")


class AloneKey:
    """A batching key no other request shares: its request runs in a batch of its own as soon as
    it leads, without waiting ``max_wait_s`` for batch-mates that cannot come."""

    __slots__ = ("label",)

    def __init__(self, label: Hashable = None) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"AloneKey({self.label!r})"


class BatcherClosed(AssistantError, RuntimeError):
    """The batcher was closed: a later ``submit``, or a request still waiting when it closed. A
    ``RuntimeError``, as a closed session's refusal is: an assistant closed meanwhile turns it into
    :class:`~legacy_assistant.errors.ModelClosed` (:class:`~legacy_assistant.common.closing.Closing`)."""


class BatchResultError(AssistantError):
    """``run_batch`` returned a number of results other than the number of items it was given."""


class _Slot(Generic[Item, Result]):
    """One request: its item, and once done its result or its exception."""

    __slots__ = ("item", "key", "arrived", "wakeup", "done", "result", "error")

    def __init__(self, item: Item, key: Hashable, arrived: float, wakeup: threading.Condition) -> None:
        self.item = item
        self.key = key
        self.arrived = arrived  # time.monotonic() seconds
        self.wakeup = wakeup  # on the batcher's lock: set done, or appointed leader
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None

    def outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        return cast(Result, self.result)


class MicroBatcher(ClosedAtExit, Generic[Item, Result]):
    """``submit(item, key)`` from any thread; concurrent submits run as one ``run_batch`` call.

    Args:
        run_batch: the model call, ``items -> results`` in the same order and of the same
            length; it may raise (see the module docstring for what callers then get).
        max_batch_size: most items in one call (at least 1).
        max_wait_s: longest a batch waits for its expected size (the largest of the latest
            batches), in seconds after its oldest item arrived (0: a batch is whatever waited
            while the previous one ran).
        name: names the batcher in log lines and errors.
        on_batch: called with each batch's number of items just before ``run_batch`` runs
            (a metrics hook; its exceptions are logged, never passed to a request). A failed
            batch's one-by-one reruns are not reported again, so the sizes add up to the items.
    """

    def __init__(
        self,
        run_batch: Callable[[list[Item]], Sequence[Result]],
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        name: str = "batcher",
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigError(f"{name}: max_batch_size must be an integer of at least 1, got {max_batch_size!r}")
        if isinstance(max_wait_s, bool) or not isinstance(max_wait_s, (int, float)) or not math.isfinite(max_wait_s):
            raise ConfigError(f"{name}: max_wait_s must be a finite number of seconds, got {max_wait_s!r}")
        if max_wait_s < 0:
            raise ConfigError(f"{name}: max_wait_s must be >= 0, got {max_wait_s!r}")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_wait_s = float(max_wait_s)
        self._run_batch = run_batch
        self._on_batch = on_batch
        self._lock = threading.Lock()
        # Waiting requests per key, oldest first; a key is removed when its queue empties.
        self._queues: dict[Hashable, deque[_Slot[Item, Result]]] = {}
        # The request whose thread gathers or runs the current batch; None when idle. Invariant:
        # requests wait in _queues only while there is a leader.
        self._leader: _Slot[Item, Result] | None = None
        self._running_thread: int | None = None  # the leader's thread while run_batch runs
        self._idle = threading.Condition(self._lock)  # notified when a batch has run
        self._closed = False
        # The sizes of the latest batches (not those of an AloneKey): a new batch waits (at
        # most max_wait_s) for as many as the largest of them held; 1 while requests come one
        # at a time, which then never wait.
        self._recent: deque[int] = deque([1], maxlen=RECENT_BATCHES)

    @property
    def pending(self) -> int:
        """Requests waiting for a batch (not counting the batch that runs)."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    @property
    def expected_size(self) -> int:
        """The size a batch waits for (up to ``max_wait_s``): the largest of the latest batches."""
        with self._lock:
            return self._expected()

    def submit(self, item: Item, key: Hashable = None) -> Result:
        """Run ``item`` in a batch with others of the same ``key`` and return its result (or
        raise its exception); blocks the calling thread until then. Raises
        :class:`BatcherClosed` after :meth:`close`."""
        with self._lock:
            if self._closed:
                raise BatcherClosed(f"{self.name}: the batcher is closed")
            if self._running_thread == threading.get_ident():
                raise RuntimeError(f"{self.name}: submit() called from inside run_batch would wait for itself")
            slot: _Slot[Item, Result] = _Slot(item, key, time.monotonic(), threading.Condition(self._lock))
            queue = self._queues.setdefault(key, deque())
            queue.append(slot)
            leader = self._leader
            if leader is None:
                self._leader = slot
            elif leader.key == key and self._running_thread is None and len(queue) >= self._expected():
                leader.wakeup.notify()  # the batch being gathered is as full as it is expected to get
            try:
                while not slot.done and self._leader is not slot:
                    slot.wakeup.wait()
                if slot.done:
                    return slot.outcome()
                batch = self._gather(slot)
            except BaseException:  # an interrupt in a wait: leave no request behind that no thread serves
                self._abandon(slot)
                raise
            if batch is None:  # closed while gathering
                return slot.outcome()
            self._running_thread = threading.get_ident()
        interrupted: BaseException | None = None
        try:
            outcomes = self._run([s.item for s in batch])
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: release the followers first
            interrupted = exc
            outcomes = [
                (None, BatcherClosed(f"{self.name}: the batch was interrupted ({type(exc).__name__})")) for _ in batch
            ]
        with self._lock:
            self._running_thread = None
            for follower, (result, error) in zip(batch, outcomes):
                follower.result, follower.error, follower.done = result, error, True
                if follower is not slot:
                    follower.wakeup.notify()
            self._leader = None
            self._appoint_next()
            self._idle.notify_all()
        if interrupted is not None:
            raise interrupted
        return slot.outcome()

    def close(self, wait: bool = True) -> None:
        """Refuse later submits and fail every waiting request with :class:`BatcherClosed`.
        The batch already running finishes and its callers get their results; with ``wait``
        this returns only after it has (so the model can be closed next). Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for queue in self._queues.values():
                    for slot in queue:  # an exception each: a raised one gathers its thread's frames
                        slot.error = BatcherClosed(f"{self.name}: the batcher was closed while the request waited")
                        slot.done = True
                        slot.wakeup.notify()
                self._queues.clear()
                if self._running_thread is None:
                    self._leader = None  # a gathering leader was just failed with the rest
            if wait and self._running_thread != threading.get_ident():
                while self._running_thread is not None:
                    self._idle.wait()

    # -- internals (the _lock is held unless said otherwise) ---------------------------------

    def _gather(self, leader: _Slot[Item, Result]) -> list[_Slot[Item, Result]] | None:
        """Wait until the leader's batch holds its expected size, or is old enough, or cannot
        grow (an :class:`AloneKey`); then take it out of the queue. None when the batcher was
        closed meanwhile."""
        queue = self._queues[leader.key]
        deadline = leader.arrived + self.max_wait_s
        while not leader.done and len(queue) < self._expected():
            if isinstance(leader.key, AloneKey):
                break  # no other request can join it
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            leader.wakeup.wait(min(remaining, threading.TIMEOUT_MAX))
        if leader.done:
            return None
        size = min(len(queue), self.max_batch_size)
        if not isinstance(leader.key, AloneKey):
            self._recent.append(size)
        batch = [queue.popleft() for _ in range(size)]
        if not queue:
            del self._queues[leader.key]
        assert batch[0] is leader, "the leader is always its key's oldest request"
        return batch

    def _expected(self) -> int:
        """The size a batch waits for: the largest of the latest batches, at most the maximum."""
        return min(max(self._recent), self.max_batch_size)

    def _abandon(self, slot: _Slot[Item, Result]) -> None:
        """Take a request whose thread stops waiting (an exception in a wait) out of the queue;
        if it led, the next oldest request leads."""
        queue = self._queues.get(slot.key)
        if queue is not None and slot in queue:
            queue.remove(slot)
            if not queue:
                del self._queues[slot.key]
        if self._leader is slot:
            self._leader = None
            self._appoint_next()
        elif self._leader is not None and self._running_thread is None:
            self._leader.wakeup.notify()  # a gathering leader may now be alone: let it look again

    def _appoint_next(self) -> None:
        if not self._queues:
            return
        oldest = min(self._queues.values(), key=lambda queue: queue[0].arrived)
        self._leader = oldest[0]
        self._leader.wakeup.notify()

    def _run(self, items: list[Item]) -> list[tuple[Result | None, BaseException | None]]:
        """Run one batch without the lock: ``(result, None)`` or ``(None, exception)`` per item."""
        try:
            return [(result, None) for result in self._call(items)]
        except ModelClosed as exc:  # its model closed under the batch: no rerun, each item would fail alike
            # an exception each (copies): a raised one gathers its thread's frames
            return [(None, exc if i == 0 else _copy_of(exc)) for i in range(len(items))]
        except Exception as exc:
            if len(items) == 1:
                return [(None, exc)]
            log.warning(
                "%s: a batch of %d failed (%s: %s); running its items one by one",
                self.name,
                len(items),
                type(exc).__name__,
                exc,
            )
        outcomes: list[tuple[Result | None, BaseException | None]] = []
        for item in items:
            try:  # not reported again: the batch's size counted these items once already
                outcomes.append((self._call([item], report=False)[0], None))
            except Exception as exc:
                outcomes.append((None, exc))
        return outcomes

    def _call(self, items: list[Item], report: bool = True) -> list[Result]:
        if report and self._on_batch is not None:
            try:
                self._on_batch(len(items))
            except Exception:
                log.exception("%s: on_batch hook failed", self.name)
        results = list(self._run_batch(items))
        if len(results) != len(items):
            raise BatchResultError(f"{self.name}: run_batch returned {len(results)} results for {len(items)} items")
        return results


def _copy_of(exc: BaseException) -> BaseException:
    """Another exception like ``exc``: its class, ``args``, attributes, notes (a list of its own),
    cause and context, not its traceback. Made without calling its class's ``__init__``, whose
    parameters need not be its ``args`` (``copy.copy`` calls ``cls(*args)``: a subclass taking
    other arguments failed there, or had its message built twice)."""
    cls = type(exc)
    clone = cls.__new__(cls, *exc.args)
    clone.args = exc.args
    clone.__dict__.update(exc.__dict__)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        clone.__notes__ = list(notes)
    clone.__cause__ = exc.__cause__
    clone.__context__ = exc.__context__
    clone.__suppress_context__ = exc.__suppress_context__
    return clone


class BatchedClassifier(ClosedAtExit):
    """``predict_one(text) -> Prediction`` through a :class:`MicroBatcher` over
    ``predictor.predict(texts)``: the same ranking as ``predictor.predict([text])[0]`` (up to
    float rounding, about 1e-7), one ``Session.run`` per batch.

    ``close()`` closes the batcher, not the predictor: whoever loaded the predictor closes it.
    """

    def __init__(
        self,
        predictor: Predictor,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
        name: str = "classifier",
    ) -> None:
        self.predictor = predictor
        self.batcher: MicroBatcher[str, Prediction] | None = (
            MicroBatcher(predictor.predict, max_batch_size, max_wait_s, name, on_batch) if enabled else None
        )

    @property
    def enabled(self) -> bool:
        return self.batcher is not None

    def predict_one(self, text: str) -> Prediction:
        """The full ranking of ``text`` and its known-feature count; raises :class:`RequestError`
        for a non-string (before it can join a batch)."""
        if not isinstance(text, str):
            raise RequestError(f"text must be a string, got {type(text).__name__}")
        if self.batcher is None:
            return self.predictor.predict([text])[0]
        return self.batcher.submit(text)

    def close(self, wait: bool = True) -> None:
        if self.batcher is not None:
            self.batcher.close(wait)


class _Request(NamedTuple):
    """A responder request, checked; one batch shares ``mode``, ``seed`` and ``condition_strength``."""

    context: Sequence[str]
    condition: str | None
    mode: str
    seed: int | None
    condition_strength: float | None


class BatchedResponder(ClosedAtExit):
    """``respond(context, condition, mode, seed) -> str`` through a :class:`MicroBatcher` over
    ``responder.respond_batch``: one decode per batch.

    A batch is one mode and one condition strength (``respond_batch`` decodes a batch with one
    of each):

    * ``greedy`` and ``beam`` batch whatever seed they name (they ignore it); a reply is
      token for token the one ``responder.respond`` gives;
    * ``sample`` and ``sample_rerank`` without a seed batch together under one fresh seed:
      each row of a batch draws independently, so every request still gets its own draw;
    * a seeded sample runs alone: a seeded draw depends on the row it decodes in
      (:mod:`compat.responder.decoding`), and the same seed must give the same reply as an
      unbatched call.

    Every argument is checked before the request joins a batch (:class:`RequestError`, the
    same as ``responder.respond`` raises), so a bad request fails alone. ``close()`` closes the
    batcher, not the responder.
    """

    def __init__(
        self,
        responder: Responder,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        enabled: bool = True,
        on_batch: Callable[[int], None] | None = None,
        name: str = "responder",
    ) -> None:
        self.responder = responder
        self.batcher: MicroBatcher[_Request, str] | None = (
            MicroBatcher(self._run, max_batch_size, max_wait_s, name, on_batch) if enabled else None
        )

    @property
    def enabled(self) -> bool:
        return self.batcher is not None

    def respond(
        self,
        context: Sequence[str],
        condition: str | None = None,
        mode: str = "greedy",
        seed: int | None = None,
        condition_strength: float | None = None,
    ) -> str:
        """``responder.respond(context, condition, mode, seed, condition_strength)``, batched with
        concurrent calls."""
        if self.batcher is None:
            return self.responder.respond(context, condition, mode, seed, condition_strength)
        self.responder.check_request(context, condition, mode, seed, condition_strength)  # fail before queueing
        key: Hashable
        if mode in SEEDLESS_MODES:
            key = (mode, condition_strength)
        elif seed is None:
            key = (mode, condition_strength, None)
        else:
            key = AloneKey((mode, seed))  # a key no other request has: runs alone, at once
        return self.batcher.submit(_Request(context, condition, mode, seed, condition_strength), key)

    def close(self, wait: bool = True) -> None:
        if self.batcher is not None:
            self.batcher.close(wait)

    def _run(self, requests: list[_Request]) -> list[str]:
        first = requests[0]  # a batch shares its key: one mode, and one seed where it matters
        return self.responder.respond_batch(
            [request.context for request in requests],
            [request.condition for request in requests],
            first.mode,
            None if first.mode in SEEDLESS_MODES else first.seed,
            first.condition_strength,
        )
