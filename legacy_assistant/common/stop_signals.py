"""The signals that stop a command or a server, and keeping threads from taking them.

Python runs a signal's handler in the main thread, but the kernel hands a signal sent to the
process to any one of its threads that does not block it: numpy's BLAS pool, started when numpy
is imported, takes it as readily as the main thread. That matters where the main thread blocks
the stop signals so that they stay pending, as ``serve`` does just before it replaces itself
with the server (:func:`legacy_assistant.serving.server.exec_server`): a helper thread that
took a SIGTERM then had its handler's record wiped by the exec, the signal was lost, and the
server started and served on. A thread inherits the signal mask of the thread that starts it,
so threads started inside :func:`stop_signals_blocked_for_new_threads` never take one.

Windows has neither SIGQUIT nor signal masks: there the stop signals are the ones it has, and
nothing is blocked (nor is there an exec to lose a signal across: plain ``serve`` does not run there).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

# by name: Windows has no SIGQUIT
STOP_SIGNALS = frozenset(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGQUIT") if hasattr(signal, name))


@contextlib.contextmanager
def stop_signals_blocked_for_new_threads() -> Iterator[None]:
    """Block :data:`STOP_SIGNALS` in the main thread while the body runs (imports that start
    threads), then restore its mask: the threads started meanwhile keep them blocked for good,
    and a stop signal that came meanwhile is delivered to the main thread as the body ends.
    Outside the main thread, and where there are no signal masks (Windows), nothing changes."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
