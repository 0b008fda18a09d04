"""How the server's log lines look: ``text`` (the default) or ``json``, one object per line.

Log collectors (a container platform's, journald's, a log shipper's) read one JSON object per
line without a parser per format. In ``json`` every line the server writes takes that shape:
``serve``'s own lines, gunicorn's (``gunicorn.error``: workers booting, signals) and the app's,
the access log included::

    {"time": "2026-12-04T00:12:03.512Z", "level": "INFO", "logger": "legacy_assistant.access",
     "pid": 4711, "message": "POST /api/v1/chat 200 1.95ms id=bbd096c3-2"}

with ``"exception"`` (the traceback as one string) when the record carries one. Times are UTC.
"""

from __future__ import annotations

import json
import logging
import sys
import time

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"


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
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    """The formatter of log format ``kind`` (one of :data:`FORMATS`)."""
    if kind not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {kind!r}")
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


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
