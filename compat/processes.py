"""TensorFlow and ``fork()``: refuse, with a message, what would otherwise hang.

TensorFlow keeps process-wide state for its sessions and starts thread pools for them (TF1
graph mode) or for eager execution (TF2). ``fork()`` copies the bookkeeping into the child but
not the threads, so in a child forked after that a call that needs a pool waits forever for
threads that do not exist. Measured on 2.21:

* after the parent made a session with thread pools (the default settings), every run in the
  child hangs: with the parent's session, and with one the child makes itself;
* after the parent made only sessions that run every op in the calling thread on one thread
  (``inter_op_parallelism_threads`` -1, ``intra_op_parallelism_threads`` 1, the server's
  setting), such sessions work in the child, old and new, but a new one with pools hangs;
* a parent that only imported TensorFlow leaves the child free.

This is the classic hang of ``multiprocessing.Pool`` (fork is Linux's default start method
before Python 3.14), Celery's prefork pool and gunicorn's ``preload_app`` around a model loaded
at import time. The records below are deliberately process state, as TensorFlow's own is: the
ids of the processes that made the first session and started the pools. A fork copies them,
so a child knows they are not its own.
"""

from __future__ import annotations

import os

_sessions_in: int | None = None  # pid of the process that made the first session (or eager model)
_pools_in: int | None = None  # pid of the process whose sessions started TensorFlow's thread pools


class ForkedProcessError(RuntimeError):
    """TensorFlow was started in a parent process before this one was forked from it."""


def _inherited(pid: int | None) -> int | None:
    """``pid`` when it is another process's (this one is a fork of it), else ``None``."""
    return pid if pid is not None and pid != os.getpid() else None


def _refusal(started_in: int) -> ForkedProcessError:
    return ForkedProcessError(
        f"this process ({os.getpid()}) was forked from process {started_in} after TensorFlow had started "
        "there, and TensorFlow's thread pools do not survive fork(): this call would hang. Load and run "
        "models in processes that did not inherit a started TensorFlow: with multiprocessing, "
        "multiprocessing.get_context('spawn') (or 'forkserver'); otherwise fork before the parent loads "
        "any model, and load it in each child (a Pool initializer, Celery's worker_process_init, "
        "gunicorn without preload_app)"
    )


def check_not_forked() -> None:
    """Raise :class:`ForkedProcessError` before a run that would hang: in a process forked after
    its parent started TensorFlow's thread pools. Costs one ``getpid`` (about 0.2 µs)."""
    parent = _inherited(_pools_in)
    if parent is not None:
        raise _refusal(parent)


def starting_tensorflow(pools: bool = True) -> None:
    """Call before making a session (``pools=False``: one that starts no thread pool, see the
    module's notes) or loading an eager model: refuses where it would hang, and records this
    process as the one whose TensorFlow runs."""
    global _sessions_in, _pools_in
    check_not_forked()
    parent = _inherited(_sessions_in) if pools else None
    if parent is not None:
        raise _refusal(parent)
    if _sessions_in is None:
        _sessions_in = os.getpid()
    if pools and _pools_in is None:
        _pools_in = os.getpid()


__all__ = ["ForkedProcessError", "check_not_forked", "starting_tensorflow"]
