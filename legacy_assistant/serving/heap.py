"""Keep a worker's loaded models out of Python's cyclic garbage collector.

A worker with both models loaded holds about 370,000 objects that the collector tracks, most of
them the Python side of the two TensorFlow graphs (every operation, tensor and their
attributes), and they live as long as the worker. A collection of the oldest generation walks
every one of them with the GIL held: 210 ms measured in such a process, during which all of the
worker's request threads stand still. Python runs one whenever enough objects have survived
into that generation since the last, so on a busy worker this is a latency spike that comes
back for as long as it serves.

:func:`freeze_loaded` moves everything alive after loading into the permanent generation,
which collections skip (``gc.freeze``); a full collection then takes well under a millisecond.
Objects made later (requests, conversations) are collected as before.

A reload makes the frozen models garbage: reference counting frees most of them, but a graph
holds reference cycles that only the collector breaks, and frozen they would never be. So
when the last reference to the retired assistant is gone (a ``weakref.finalize`` set by the
reload: a request that still held it may end after the swap), :func:`release_retired_soon`
has a thread, a moment later, unfreeze, collect once and freeze again: one long collection per
reload instead of a leak of a model's worth of memory per reload. Not at once: a finalizer runs
before the dying object lets go of what it holds. Nothing happens in a process that froze
nothing (tests). The gunicorn workers and the development server freeze once their app is built.

A reload that builds a model and then does not serve it (it failed to answer, or it is the one
in service after all) closes it and calls :func:`release_refused` once it holds nothing of it:
the same collection, at once, instead of leaving the model's graphs to whenever the collector
next looks at the oldest generation. (Were a collection's freeze to fall while that model was
loading, part of it would be frozen, and only this collection frees it.)

Freed is not returned: glibc's malloc keeps what the retired models held inside its arenas, and
a worker's resident memory rose by over 100 MiB over its first reloads under traffic (then
stayed flat). So after that collection :func:`trim_malloc` asks glibc to hand its free pages
back (``malloc_trim``; 57-73 ms a call in one measurement, without the GIL, though it takes each
arena's lock in turn, so a request thread that allocates meanwhile may wait): about 75 MiB a
worker after 12 reloads (docs/DEPLOYMENT.md, "Memory after reloads").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# Seconds between the retired assistant's end and the collection: time for its deallocation to
# finish (it holds its models until then).
RELEASE_DELAY_S = 0.1


# Whether freeze_loaded ran in this process (gc.freeze's state is the process's, so this is too).
# Not gc.get_freeze_count(): on Python 3.12 a collection moves immortal objects into the frozen
# generation, so the count is above 0 in a process that never froze anything.
_froze = False


def freeze_loaded() -> int:
    """Collect once, then freeze every surviving object; returns how many are frozen."""
    global _froze
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    _froze = True
    frozen = gc.get_freeze_count()
    log.debug("froze %d objects for the collector in %.0f ms", frozen, (time.perf_counter() - started) * 1000)
    return frozen


def release_retired(what: str = "the retired models") -> None:
    """After a swap: let the collector free the retired models, then freeze what is left.

    Does nothing unless :func:`freeze_loaded` ran in this process.
    """
    if not _froze:
        return
    started = time.perf_counter()
    gc.unfreeze()
    freed = gc.collect()
    gc.freeze()
    collected = time.perf_counter()
    trimmed = trim_malloc()
    log.info(
        "freed %d objects of %s in %.0f ms; %d frozen%s",
        freed,
        what,
        (collected - started) * 1000,
        gc.get_freeze_count(),
        f"; malloc gave memory back in {(time.perf_counter() - collected) * 1000:.0f} ms" if trimmed else "",
    )


def trim_malloc() -> bool:
    """Ask glibc's malloc to return its free memory to the system (``malloc_trim(0)``); whether
    it could be asked (False off glibc). ctypes releases the GIL for the call."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


_MALLOC_TRIM = _malloc_trim()


def release_refused() -> None:
    """:func:`release_retired` of a model a reload built and did not serve, now: the caller
    has closed it and holds no reference to it any more."""
    release_retired("a model the reload did not serve")


def release_retired_soon() -> None:
    """:func:`release_retired` on a daemon thread, :data:`RELEASE_DELAY_S` from now."""
    if _froze:
        timer = threading.Timer(RELEASE_DELAY_S, release_retired)
        timer.daemon = True
        timer.start()
