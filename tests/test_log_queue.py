"""Log records written by a writer thread: nothing lost, order kept, lines batched, drained at exit."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import threading

import pytest

from legacy_assistant.serving.log_queue import LogQueue

FORMAT = "%(levelname)s %(name)s: %(message)s"


@pytest.fixture
def logger():
    logger = logging.getLogger(f"test_log_queue.{threading.get_ident()}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def stream_handler(level: int = logging.NOTSET) -> tuple[logging.StreamHandler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    return handler, stream


def test_every_thread_s_records_are_written_in_order(logger):
    handler, stream = stream_handler()
    logger.addHandler(handler)
    log_queue = LogQueue.install(logger)
    assert log_queue.front in logger.handlers and handler not in logger.handlers

    def work(n: int) -> None:
        for i in range(300):
            logger.info("thread %d line %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log_queue.stop()
    assert handler in logger.handlers and log_queue.front not in logger.handlers
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1200
    for n in range(4):
        assert [line for line in lines if f"thread {n} " in line] == [
            f"INFO {logger.name}: thread {n} line {i}" for i in range(300)
        ]


def test_levels_formats_and_tracebacks_are_the_handlers_own(logger):
    handler, stream = stream_handler(logging.WARNING)
    direct, expected = stream_handler(logging.WARNING)
    logger.addHandler(handler)
    log_queue = LogQueue.install(logger)
    logger.addHandler(direct)  # the same records, written in the logging thread as before

    logger.info("not at this level")
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("failed with %s", "a traceback")
    logger.warning("%d%% sure", 100)
    log_queue.stop()
    written = stream.getvalue()
    assert written == expected.getvalue()
    assert "not at this level" not in written
    assert "ZeroDivisionError: division by zero" in written and "100% sure" in written


class GatedStream(io.StringIO):
    """A stream whose first write waits for ``release``: records queue up meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes == 1:
            self.entered.set()
            self.release.wait(10)
        return super().write(text)


def test_records_that_queued_up_are_written_together(logger):
    stream = GatedStream()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    log_queue = LogQueue.install(logger)
    logger.info("first")
    assert stream.entered.wait(10)
    for i in range(50):
        logger.info("queued %d", i)  # returns at once although the writer is stuck
    stream.release.set()
    log_queue.stop()
    assert stream.getvalue().splitlines() == ["first"] + [f"queued {i}" for i in range(50)]
    assert stream.writes <= 3  # "first", then the 50 in one write (two if the writer woke early)


def test_other_handlers_get_each_record(logger):
    records: list[str] = []

    class Collecting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger.addHandler(Collecting(logging.INFO))
    log_queue = LogQueue.install(logger)
    logger.debug("below the level")
    logger.info("one %s", "arg")
    logger.error("two")
    log_queue.stop()
    log_queue.stop()  # a second stop does nothing
    assert records == ["one arg", "two"]


def test_lines_logged_just_before_the_process_exits_are_written():
    code = (
        "import logging, sys\n"
        "from legacy_assistant.serving.log_queue import LogQueue\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "LogQueue.install()\n"
        "for i in range(2000):\n"
        "    logging.getLogger('x').info('line %d', i)\n"
        "sys.exit(3)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 3
    assert run.stderr.splitlines() == [f"line {i}" for i in range(2000)]


def test_the_writer_thread_takes_no_signals():
    # A gunicorn worker blocks SIGHUP while its app loads; a writer thread open to it would take a
    # reload meant for the worker and end the process.
    code = (
        "import logging, signal, threading\n"
        "from legacy_assistant.serving.log_queue import LogQueue\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "log_queue = LogQueue.install()\n"
        "def blocked(tid):\n"
        "    line = next(l for l in open(f'/proc/self/task/{tid}/status') if l.startswith('SigBlk:'))\n"
        "    return int(line.split()[1], 16)\n"
        "bit = 1 << (signal.SIGHUP - 1)\n"
        "print(bool(blocked(log_queue._writer.native_id) & bit), bool(blocked(threading.get_native_id()) & bit))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "False"]  # the writer blocks it, the main thread does not
