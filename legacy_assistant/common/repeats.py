"""A failure that repeats, logged once per interval instead of once per occurrence.

A conversation store that is down fails every request that needs it: a line per request was
thousands of identical ERROR lines a second under load, which bury the rest of the log and fill
the disk. :class:`Repeats` says which occurrence to log: the first at once, then at most one per
interval, which tells how many were left out since the line before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Repeats:
    """When to log a failure that repeats: the first occurrence at once, later ones at most once
    per ``interval`` seconds (on ``clock``). Thread-safe."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._next: float | None = None  # clock time from which the next occurrence is logged
        self._left_out = 0

    def due(self) -> int | None:
        """None where this occurrence is left out of the log; else how many were left out
        since the last one logged (0 for the first)."""
        now = self._clock()
        with self._lock:
            if self._next is not None and now < self._next:
                self._left_out += 1
                return None
            left_out, self._left_out = self._left_out, 0
            self._next = now + self.interval
            return left_out
