"""A cache of a function's results for short texts only."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ShortTextCache(Generic[T]):
    """``function(*args)``, its results cached for the latest ``max_entries`` calls whose last
    argument, a text, has at most ``max_chars`` characters; a longer text is worked out each time.

    A cache sized in entries alone holds as much memory as its texts are long: a client sending
    unique long "words" or turns filled such caches with hundreds of megabytes a worker.
    """

    def __init__(self, function: Callable[..., T], max_entries: int, max_chars: int) -> None:
        self._function = function
        self._cached = functools.lru_cache(maxsize=max_entries)(function)
        self._max_chars = max_chars
        self.cache_info = self._cached.cache_info

    def __call__(self, *args: Any) -> T:
        return self._cached(*args) if len(args[-1]) <= self._max_chars else self._function(*args)
