"""How the server's log lines look: ``text`` (the default) or ``json``, one object per line.

Log collectors (a container platform's, journald's, a log shipper's) read one JSON object per
line without a parser per format. In ``json`` every line the server writes takes that shape:
``serve``'s own lines, gunicorn's (``gunicorn.error``: workers booting, signals) and the app's,
the access log included::

    {"time": "2026-12-04T00:12:03.512Z", "level": "INFO", "logger": "legacy_assistant.access",
     "pid": 4711, "message": "POST /api/v1/chat 200 1.95ms id=bbd096c3-2"}

with ``"exception"`` (the traceback as one string) when the record carries one. Times are UTC.

TensorFlow's C++ code writes to the process's stderr itself, past Python's logging, and some
releases do so whatever ``TF_CPP_MIN_LOG_LEVEL`` says (2.18 writes ``WARNING: All log messages
before absl::InitializeLog() ...`` and ``I0000 ... MLIR V1 optimization pass is not enabled``
as a worker loads its model). :func:`native_lines_as_json` turns such lines into records of the
logger ``native`` while a worker imports TensorFlow and loads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator

from legacy_assistant.common.terminal import visible

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
CLI_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # a command's lines: one process
NATIVE_LOGGER = "native"  # lines that compiled code (TensorFlow's C++) wrote to stderr itself
# absl's and glog's line prefix: severity letter, then the date ("I0000 00:00:...", "W1204 ...")
_NATIVE_SEVERITY = re.compile(r"^([IWEF])\d{4} ")
_SEVERITY_LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL}
_DRAIN_SECONDS = 2.0  # at most this long to forward what is left in the pipe when the scope ends


class TextFormatter(logging.Formatter):
    """Text lines whose time is local time with milliseconds and its offset from UTC,
    ``2026-12-06 06:27:56,123 +0000``, as gunicorn's own lines carry it
    (``[2026-12-06 06:27:56 +0000]``): under a ``TZ`` set in a container a line without it
    could be any zone's time. ``serve``'s text lines and every command's use it. A control
    character (a request's header, a file's text quoted in a warning) is written as its escape
    (``\\x1b``), so that it cannot drive the terminal or forge a line's start."""

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        local = self.converter(record.created)
        offset = local.tm_gmtoff // 60  # minutes east of UTC, as the zone had it at that moment
        sign = "-" if offset < 0 else "+"
        hours, minutes = divmod(abs(offset), 60)
        stamp = time.strftime(datefmt or "%Y-%m-%d %H:%M:%S", local)
        return f"{stamp},{int(record.msecs):03d} {sign}{hours:02d}{minutes:02d}"

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in a message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII only (\u00e9 for é): on a stderr that is not UTF-8 (LANG=C with UTF-8 mode off) the
        # character came out as \xe9, which no JSON reader takes, and the collector lost the line
        return json.dumps(entry, ensure_ascii=True, default=str)


def formatter(kind: str) -> logging.Formatter:
    """The formatter of log format ``kind`` (one of :data:`FORMATS`)."""
    if kind not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {kind!r}")
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(kind: str, level: int) -> None:
    """The root logger writes to stderr in format ``kind`` at ``level``, replacing its handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(kind == "json")  # warnings.warn lines in the same shape


def text_lines_with_process_id() -> None:
    """The root logger's handlers that write a command's text lines (a :class:`TextFormatter`,
    :data:`CLI_TEXT_FORMAT`) write ``serve``'s (:data:`TEXT_FORMAT`, with the process id), as the
    workers' lines read; other handlers (a caller's own) are left as they are."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, TextFormatter) and handler.formatter._fmt == CLI_TEXT_FORMAT:
            handler.setFormatter(TextFormatter())


def native_record(line: str) -> logging.LogRecord:
    """A record of the logger ``native`` for one line that compiled code wrote to stderr: at the
    severity its absl/glog prefix gives, else WARNING (output nobody asked for)."""
    found = _NATIVE_SEVERITY.match(line)
    level = _SEVERITY_LEVELS[found.group(1)] if found else logging.WARNING
    return logging.LogRecord(NATIVE_LOGGER, level, "", 0, line, None, None)


@contextlib.contextmanager
def native_lines_as_json() -> Iterator[None]:
    """While inside, whatever is written to file descriptor 2 goes through a pipe: a line that is
    a JSON object (this process's own log records) passes as it is, any other line becomes one
    JSON record of :func:`native_record`. Lines are forwarded as they come, by a thread; on the
    way out stderr is the process's own again and what is left in the pipe is forwarded. With
    no stderr (closed), nothing is redirected."""
    try:
        os.fstat(2)
    except OSError:
        yield
        return
    if sys.stderr is not None:
        sys.stderr.flush()
    target = os.dup(2)  # the forwarder's own: closed by it, once the pipe has no writer left
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, target), name="native-stderr", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(target, 2)  # closes the pipe's write end: the forwarder reads to its end
        # A child process started inside may still hold the write end: the forwarder then goes
        # on forwarding its lines, to the stderr it owns, and this does not wait for it.
        forwarder.join(_DRAIN_SECONDS)


def _forward(read_end: int, target: int) -> None:
    formatter = JsonFormatter()
    try:
        with os.fdopen(read_end, "rb") as source:
            for raw in source:
                line = raw.rstrip(b"\r\n")
                if _is_json_object(line):
                    out = line + b"\n"
                elif not line.strip():
                    continue
                else:
                    out = (formatter.format(native_record(line.decode("utf-8", "replace"))) + "\n").encode("utf-8")
                while out:
                    out = out[os.write(target, out) :]
    except OSError:
        pass  # stderr is gone (a closed terminal): nothing to write to
    finally:
        os.close(target)


def _is_json_object(line: bytes) -> bool:
    """Whether ``line`` is one whole JSON object: this process's own log records are, while a
    native line may merely start with a brace (a shape, a proto's text)."""
    if not line.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past what json reads
        return False
