"""A failure that repeats, logged once per interval instead of once per occurrence.

A conversation store that is down fails every request that needs it: a line per request was
thousands of identical ERROR lines a second under load, which bury the rest of the log and fill
the disk. :class:`Repeats` says which occurrence to log: the first at once, then at most one per
interval, which tells how many were left out since the line before. Failures are told apart by
a key (the error's text): another failure, such as one conversation's unreadable data, is
neither hidden by an outage that is being counted nor hides the start of one.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_KEYS = 64  # failures followed at once; the one seen longest ago is let go first


class Repeats:
    """When to log a failure that repeats: the first occurrence of each key at once, later ones
    at most once per ``interval`` seconds (on ``clock``). Thread-safe."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [clock time from which its next occurrence is logged, occurrences left out since]
        self._followed: OrderedDict[Hashable, list[float]] = OrderedDict()

    def due(self, key: Hashable = None) -> int | None:
        """None where this occurrence of ``key`` is left out of the log; else how many were left
        out since the last one of it logged (0 for the first)."""
        now = self._clock()
        with self._lock:
            followed = self._followed.get(key)
            if followed is not None and now < followed[0]:
                followed[1] += 1
                self._followed.move_to_end(key)  # a failure still coming is the last let go
                return None
            left_out = int(followed[1]) if followed is not None else 0
            self._followed[key] = [now + self.interval, 0]
            self._followed.move_to_end(key)
            while len(self._followed) > MAX_KEYS:
                self._followed.popitem(last=False)
            return left_out
