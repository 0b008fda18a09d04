"""TensorFlow's runtime errors of the file system (``tf.errors.OpError``) in one line, for the
command line.

A full disk while a SavedModel or a checkpoint is written surfaces as TensorFlow's
``ResourceExhaustedError``, whose message holds the graph node's Python stack (with source lines
on TensorFlow 2.12) and an out-of-memory hint besides the one line that says what happened.
Importing nothing: a TensorFlow error can only come once TensorFlow is loaded, and the gunicorn
master, which never loads it, must not load it here either.
"""

from __future__ import annotations

import errno
import os
import sys

# What the system's errors read as at the end of a TensorFlow message ("...; No space left on device").
_SYSTEM_ERRORS = tuple(
    os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM)
)
# Exhausted resources (a disk, memory) and refused permissions say all there is in that line; any
# other TensorFlow error is a bug, and its traceback is what to report.
_SAID_IN_ONE_LINE = ("ResourceExhaustedError", "PermissionDeniedError")
_AFTER_THE_ERROR = ("[[", "Hint:", "Original stack trace")


def tensorflow_error_text(exc: BaseException) -> str | None:
    """``"TensorFlow ResourceExhaustedError: /m/variables/...; No space left on device"`` for a
    TensorFlow error of the disk, memory or permissions; ``None`` for any other exception."""
    errors = sys.modules.get("tensorflow.python.framework.errors_impl")
    if errors is None or not isinstance(exc, errors.OpError):
        return None
    said = _the_error_line(str(exc.message))
    if type(exc).__name__ not in _SAID_IN_ONE_LINE and not any(text in said for text in _SYSTEM_ERRORS):
        return None
    return f"TensorFlow {type(exc).__name__}: {said}"


def _the_error_line(message: str) -> str:
    """The line of an OpError's message that says what happened: after the node's stack (``Node:
    'save/SaveV2'``) when there is one, else the first line."""
    lines = [line.strip() for line in message.splitlines()]
    for index, line in enumerate(lines):
        if line.startswith("Node:"):
            after = [rest for rest in lines[index + 1 :] if rest and not rest.startswith(_AFTER_THE_ERROR)]
            if after:
                return after[0]
    first = next((line for line in lines if line and not line.startswith("Graph execution error")), "")
    return first if first and not first.startswith("Detected at node") else "no message"
