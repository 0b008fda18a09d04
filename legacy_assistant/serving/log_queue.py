"""Log records written by a thread of their own, so that request threads never wait on a write.

A worker logs a line per request (the access log). Written in the request thread, each line
takes the handler's lock and makes a ``write`` system call, which lets go of the GIL: with
several request threads, one waits for another's write and the GIL changes hands on every
line. :class:`LogQueue` moves the root logger's handlers behind a queue: a request thread only
formats its message and enqueues the record (no lock held across I/O, no system call); one
writer thread takes whatever has queued up and writes it, a stream handler's lines in one
``write``. Records keep their order, each handler keeps its level, filters and format.

:meth:`LogQueue.stop` (registered with :mod:`atexit` by :meth:`LogQueue.install`) writes what
is still queued and puts the handlers back. A process killed outright (``SIGKILL``) loses the
lines still queued, at most those of the last moments.
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import signal
import threading

_STOP = None  # queued by stop(): the writer writes what came before it, then ends
MAX_BATCH = 512  # records written together, at most


class LogQueue:
    """The root logger's handlers, fed from a queue by a writer thread. Use :meth:`install`."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.handlers = list(logger.handlers)
        self.queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self.front = logging.handlers.QueueHandler(self.queue)
        self._writer = threading.Thread(target=self._write_all, name="log-writer", daemon=True)
        self._stopped = False
        self._lock = threading.Lock()

    @classmethod
    def install(cls, logger: logging.Logger | None = None) -> LogQueue:
        """Put ``logger``'s (default: the root logger's) handlers behind a queue and start the
        writer; :meth:`stop` runs at exit."""
        log_queue = cls(logger or logging.getLogger())
        _start_deaf_to_signals(log_queue._writer)
        for handler in log_queue.handlers:
            log_queue.logger.removeHandler(handler)
        log_queue.logger.addHandler(log_queue.front)
        atexit.register(log_queue.stop)
        return log_queue

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, end the writer and give the logger its handlers back (a second
        call does nothing). Records logged meanwhile go straight to the handlers."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.logger.removeHandler(self.front)
        for handler in self.handlers:
            self.logger.addHandler(handler)
        self.queue.put(_STOP)
        self._writer.join(timeout)

    def _write_all(self) -> None:
        while True:
            batch = [self.queue.get()]
            while batch[-1] is not _STOP and len(batch) < MAX_BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            records = [record for record in batch if record is not _STOP]
            if records:
                for handler in self.handlers:
                    _emit(handler, records)
            if batch[-1] is _STOP:
                return


def _start_deaf_to_signals(thread: threading.Thread) -> None:
    """Start ``thread`` with every signal blocked in it, so that the kernel hands a signal sent
    to the process to another thread. A process-wide signal goes to any thread that does not
    block it: a gunicorn worker blocks SIGHUP while its app loads (its default action would end
    the worker), and a writer thread started before that, with SIGHUP open, took it and died
    with the process."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no per-thread masks
        thread.start()
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        thread.start()  # a new thread starts with its creator's mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _emit(handler: logging.Handler, records: list[logging.LogRecord]) -> None:
    """``records`` through ``handler``: a plain stream handler's lines in one write and one
    flush, any other handler record by record, as it would have had them."""
    if type(handler) is not logging.StreamHandler:
        for record in records:
            if record.levelno >= handler.level:
                handler.handle(record)
        return
    lines = []
    for record in records:
        if record.levelno >= handler.level and handler.filter(record):
            try:
                lines.append(handler.format(record) + handler.terminator)
            except Exception:
                handler.handleError(record)
    if not lines:
        return
    with handler.lock:  # type: ignore[union-attr]  # created by Handler.__init__
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:
            handler.handleError(records[-1])
