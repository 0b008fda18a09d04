"""One log line when a conversation store that failed works again.

A store that fails is logged where its failure is answered (the server's ERROR line, then one
a minute while it lasts); without a line when it works again, the log of an outage that ended
reads like one still going on. :class:`Outage` follows a store's operations by kind (``load``,
``save``, ``lock``): a store fails when one of them fails, and works again once every kind that
failed has worked since. A store that only half works (a file that can be read but not
written: each ``load`` works, each ``save`` fails) so logs no recovery per request, and a store
that is back logs one line, not one per kind of operation.

A kind that failed and is not tried again (``forget``, asked for by a user deleting a
conversation, once in the outage) would keep the line from ever coming while every other kind
works: a kind that has not failed for :data:`QUIET_SECONDS` counts as working again once an
operation of another kind that failed in the outage works. A store that half works (its reads
never failed) keeps the kind that fails failing, however long it is since a request tried it.

A store that fails now and then (a request in a hundred timing out) would log a line after each
failure, where the server logs the failures once a minute: a line that comes within
:data:`QUIET_SECONDS` of the one before waits for the first operation that works after that
time, and then counts every failure since the first of them.

An operation that began before the store's latest failure and worked (a slow read under way
when the store went down) tells nothing of whether the store works now: only one that began
after it counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# How long a kind of operation that failed, and has not been tried since, keeps the store
# counted as failing while the other kinds work: as long as the server logs a repeated
# failure at most once.
QUIET_SECONDS = 60.0


class Outage:
    """Follows whether ``store`` is failing, and logs once, at INFO, when it works again; the
    line names the store by its ``repr`` (which shows no password). Thread-safe; the common case
    (nothing failed) is one attribute read. ``clock``: seconds, for the times measured."""

    def __init__(self, store: object, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._lock = threading.Lock()
        # the kinds of operation that failed and have not worked since, each with its last failure's time
        self._failing: dict[str, float] = {}
        self._failed: set[str] = set()  # every kind that failed since the last line, working again or not
        self._failures = 0
        self._since = 0.0  # the clock's time of the first failure
        self._said = float("-inf")  # the clock's time of the last line
        self._unsaid = False  # a recovery is waiting for its line (see the module's docstring)
        self._latest = float("-inf")  # the clock's time of the latest failure

    def now(self) -> float:
        """The clock's time, in seconds: when an operation begins, for :meth:`worked`."""
        return self._clock()

    def failed(self, what: str) -> None:
        """An operation of kind ``what`` failed for the store's sake (not one conversation's data)."""
        with self._lock:
            now = self._clock()
            if not self._failing and not self._unsaid:
                self._since = now
            self._failing[what] = now
            self._latest = now
            self._failed.add(what)
            self._failures += 1

    def worked(self, what: str, began: float) -> None:
        """An operation of kind ``what`` that began at ``began`` (:meth:`now`) worked."""
        if not self._failing and not self._unsaid:  # read without the lock: a store that works pays no more
            return
        with self._lock:
            if (not self._failing and not self._unsaid) or began < self._latest:
                return
            now = self._clock()
            self._failing.pop(what, None)
            if what in self._failed:  # it failed, and works again: so may a kind not tried since
                for kind, last in list(self._failing.items()):
                    if now - last >= QUIET_SECONDS:
                        del self._failing[kind]
            if self._failing:
                return
            if now - self._said < QUIET_SECONDS:
                self._unsaid = True
                return
            self._said, self._unsaid = now, False
            self._failed.clear()
            failures, self._failures = self._failures, 0
            lasted = now - self._since
        log.info(
            "conversation store %r works again, %.1f s after it first failed (%d failed operation(s) in this process)",
            self.store,
            lasted,
            failures,
        )
