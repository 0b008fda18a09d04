"""One log line when a conversation store that failed works again.

A store that fails is logged where its failure is answered (the server's ERROR line, then one
a minute while it lasts); without a line when it works again, the log of an outage that ended
reads like one still going on. :class:`Outage` follows a store's operations by kind (``load``,
``save``, ``lock``): a store fails when one of them fails, and works again once every kind that
failed has worked since. A store that only half works (a file that can be read but not
written: each ``load`` works, each ``save`` fails) so logs no recovery per request, and a store
that is back logs one line, not one per kind of operation.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


class Outage:
    """Follows whether ``store`` is failing, and logs once, at INFO, when it works again; the
    line names the store by its ``repr`` (which shows no password). Thread-safe; the common case
    (nothing failed) is one attribute read."""

    def __init__(self, store: object) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._failing: set[str] = set()  # the kinds of operation that failed and have not worked since
        self._failures = 0
        self._since = 0.0  # time.monotonic() of the first failure

    def failed(self, what: str) -> None:
        """An operation of kind ``what`` failed for the store's sake (not one conversation's data)."""
        with self._lock:
            if not self._failing:
                self._since = time.monotonic()
            self._failing.add(what)
            self._failures += 1

    def worked(self, what: str) -> None:
        """An operation of kind ``what`` worked."""
        if not self._failing:  # read without the lock: a store that works pays no more
            return
        with self._lock:
            if what not in self._failing:
                return
            self._failing.discard(what)
            if self._failing:
                return
            failures, self._failures = self._failures, 0
            lasted = time.monotonic() - self._since
        log.info(
            "conversation store %r works again, %.1f s after it first failed (%d failed operation(s) in this process)",
            self.store,
            lasted,
            failures,
        )
