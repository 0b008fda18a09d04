"""TensorFlow and ``fork()``: refuse, with a message, what would otherwise hang.

TensorFlow starts process-wide thread pools the first time a session is made (TF1 graph mode)
or a model is loaded eagerly (TF2). ``fork()`` copies their bookkeeping into the child but not
their threads, so in a child forked after that, the first ``Session.run`` or eager call waits
forever for threads that do not exist: a model loaded before the fork, and a model loaded fresh
in the child alike. This is the classic hang of ``multiprocessing.Pool`` (fork is Linux's default
start method before Python 3.14), Celery's prefork pool and gunicorn's ``preload_app`` around a
model loaded at import time.

The record below is deliberately process state, as TensorFlow's own pools are: the id of the
process that started them. A fork copies it, so the child knows it is not that process.
"""

from __future__ import annotations

import os

_started_in: int | None = None  # pid of the process whose TensorFlow thread pools are running


class ForkedProcessError(RuntimeError):
    """TensorFlow was started in a parent process before this one was forked from it."""


def check_not_forked() -> None:
    """Raise :class:`ForkedProcessError` in a process forked after TensorFlow started in its parent.

    Costs one ``getpid`` (about 0.2 µs): cheap enough for every model call.
    """
    if _started_in is not None and _started_in != os.getpid():
        raise ForkedProcessError(
            f"this process ({os.getpid()}) was forked from process {_started_in} after TensorFlow had started "
            "there, and TensorFlow's thread pools do not survive fork(): this call would hang. Load and run "
            "models in processes that did not inherit a started TensorFlow: with multiprocessing, "
            "multiprocessing.get_context('spawn') (or 'forkserver'); otherwise fork before the parent loads "
            "any model, and load it in each child (a Pool initializer, Celery's worker_process_init, "
            "gunicorn without preload_app)"
        )


def starting_tensorflow() -> None:
    """Call before making a session or loading an eager model: refuses a forked child, and
    records this process as the one whose TensorFlow runs."""
    global _started_in
    check_not_forked()
    if _started_in is None:
        _started_in = os.getpid()


__all__ = ["ForkedProcessError", "check_not_forked", "starting_tensorflow"]
