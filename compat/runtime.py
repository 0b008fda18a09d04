"""Import ``tensorflow.compat.v1`` once, in graph mode, quietly.

``disable_v2_behavior()`` must run before any graph is built: it switches off eager execution,
resource variables and the v2 control flow for the whole process. Importing this module does it;
calling :func:`ensure_graph_mode` again is harmless.
"""
from __future__ import annotations

import logging
import os
import platform
import threading

# TF's C++ start-up banner (CPU feature notices, oneDNN notes) goes to stderr before Python
# logging is configured; this variable is read once, at import, so it must be set first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN picks its kernels at run time by CPU model, so float sums may round differently from
# one machine to the next; Eigen's kernels are fixed when TensorFlow is built. Golden tests and
# bit-identical retraining want the latter. This also silences the oneDNN start-up notice.
# Set TF_ENABLE_ONEDNN_OPTS=1 to choose oneDNN anyway.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402
import tensorflow.compat.v1 as tf  # noqa: E402

_switch_lock = threading.Lock()


def _quiet_python_logging() -> None:
    # Deprecation notices from compat.v1 are expected here: they are the API we pin on purpose.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    tf.logging.set_verbosity(tf.logging.ERROR)


def ensure_graph_mode() -> None:
    """Switch the process to TF1 graph mode; safe to call any number of times."""
    with _switch_lock:
        if tf.executing_eagerly() or tf.resource_variables_enabled():
            tf.disable_v2_behavior()


def versions() -> dict[str, str]:
    """Versions of what a trained model depends on, as stored in every artifact."""
    return {
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


_quiet_python_logging()
ensure_graph_mode()

__all__ = ["tf", "ensure_graph_mode", "versions"]
