"""TensorFlow's runtime errors (``tf.errors.OpError``) in one line, for the command line.

A full disk while a SavedModel or a checkpoint is written surfaces as TensorFlow's
``ResourceExhaustedError``, whose message holds the graph node's Python stack and an
out-of-memory hint besides the one line that says what happened. Importing nothing: a
TensorFlow error can only come once TensorFlow is loaded, and the gunicorn master, which never
loads it, must not load it here either.
"""

from __future__ import annotations

import sys

# Lines of an OpError's message around the error itself: the node's Python stack and advice.
_AROUND = ("Graph execution error", "Detected at node", "File ", "Node:", "Hint:", "Original stack trace", "[[")


def tensorflow_error_text(exc: BaseException) -> str | None:
    """``"TensorFlow ResourceExhaustedError: /m/variables/...; No space left on device"`` for a
    TensorFlow runtime error; ``None`` for any other exception."""
    errors = sys.modules.get("tensorflow.python.framework.errors_impl")
    if errors is None or not isinstance(exc, errors.OpError):
        return None
    lines = (line.strip() for line in str(exc.message).splitlines())
    said = next((line for line in lines if line and not line.startswith(_AROUND)), "no message")
    return f"TensorFlow {type(exc).__name__}: {said}"
