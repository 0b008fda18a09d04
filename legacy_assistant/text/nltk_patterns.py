"""Keep NLTK's tokenizer regular expressions from handing the GIL to other threads.

Since 3.10, NLTK compiles every pattern with the third-party ``regex`` engine and runs each
match under a ReDoS timeout (``nltk.redos.TimedPattern``). By default ``regex`` releases the
GIL while it matches a ``str``, and takes it back afterwards. The Treebank tokenizer applies
23 such patterns to a sentence (and 10 standard ``re`` ones), each over in a few microseconds,
so in a server with several request threads every one of those releases becomes a GIL
hand-off to another thread:
with four threads tokenizing at once, ``benchmarks/tokenizer_threads.py`` measured a sentence
at 2.6 times the wall time it takes with the patterns below (from one thread those are 2-4%
slower). Passing ``concurrent=False`` keeps the GIL for the (short) match, which is what the
standard ``re`` module always does; the timeout stays in force and the tokens are the same.

:func:`hold_gil_while_matching` gives one tokenizer *instance* wrapped copies of the
pattern tables its class holds (``STARTING_QUOTES``, ``TOKTOK_REGEXES``, ...); the class and
every other instance are left as NLTK made them. Older NLTK releases, whose patterns are
standard ``re`` ones, are left alone: there is nothing to change.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

try:
    from nltk.redos import TimedPattern
except ImportError:  # NLTK before 3.10: ``re`` patterns, which never release the GIL
    TimedPattern = None
# NLTK's "no timeout given" marker, which resolves a pattern's timeout (absent in other releases)
_UNSET = getattr(sys.modules.get("nltk.redos"), "_UNSET", None)

T = TypeVar("T")

_MATCH_METHODS = ("search", "match", "fullmatch", "findall", "finditer", "split", "sub", "subn")


def _engine_call(wrapped: Any, name: str) -> Callable[..., Any] | None:
    """The ``regex`` pattern's own method with the wrapped pattern's timeout and
    ``concurrent=False`` bound; ``None`` when ``TimedPattern`` does not expose them.

    A tokenizer applies about 30 patterns to every sentence, each a few microseconds of
    matching, so a Python frame per call is a large share: ``TimedPattern``'s method resolves
    the timeout on every call. Bound here once, the call goes straight to the engine (a fifth
    less time per sentence, ``benchmarks/tokenizer_threads.py``). The timeout is resolved when
    the pattern is wrapped: a later change of ``nltk.redos.DEFAULT_TIMEOUT`` does not reach it.
    A timeout raises the engine's bare ``TimeoutError``, without NLTK's longer message.
    """
    engine = getattr(wrapped, "_rx", None)
    resolve = getattr(wrapped, "_resolve", None)
    if engine is None or resolve is None or _UNSET is None:
        return None
    return functools.partial(getattr(engine, name), timeout=resolve(_UNSET), concurrent=False)


def _through_wrapper(wrapped: Any, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(wrapped, name)(*args, concurrent=False, **kwargs)

    return call


class GilHoldingPattern:
    """A ``TimedPattern`` whose matching methods run with ``concurrent=False``.

    Everything else (``pattern``, ``flags``, the timeout) is the wrapped pattern's.
    """

    __slots__ = ("wrapped", *_MATCH_METHODS)

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped
        for name in _MATCH_METHODS:
            setattr(self, name, _engine_call(wrapped, name) or _through_wrapper(wrapped, name))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self.wrapped, name)

    def __repr__(self) -> str:
        return f"GilHoldingPattern({self.wrapped!r})"


def _wrapped(value: Any) -> Any:
    """``value`` with every ``TimedPattern`` in it (nested lists and tuples too) wrapped;
    ``value`` itself when there is none."""
    if TimedPattern is not None and isinstance(value, TimedPattern):
        return GilHoldingPattern(value)
    if isinstance(value, (list, tuple)):
        items = [_wrapped(item) for item in value]
        if any(new is not old for new, old in zip(items, value)):
            return type(value)(items)
    return value


def hold_gil_while_matching(tokenizer: T) -> T:
    """Give ``tokenizer`` (an NLTK tokenizer instance) GIL-holding copies of its class's
    upper-case pattern tables; returns the same instance."""
    for name in dir(type(tokenizer)):
        if not name.isupper():
            continue
        value = getattr(type(tokenizer), name)
        replacement = _wrapped(value)
        if replacement is not value:
            setattr(tokenizer, name, replacement)
    return tokenizer


def unwrapped_patterns(tokenizer: Any) -> list[str]:
    """Names of the tables of ``tokenizer`` that still hold a bare ``TimedPattern``
    (empty once :func:`hold_gil_while_matching` has run)."""
    return [
        name
        for name in dir(tokenizer)
        if name.isupper() and _wrapped(getattr(tokenizer, name)) is not getattr(tokenizer, name)
    ]
