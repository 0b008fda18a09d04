"""Import ``tensorflow.compat.v1`` once, in graph mode, quietly.

``disable_v2_behavior()`` must run before any graph is built: it switches off eager execution,
resource variables and the v2 control flow for the whole process. Importing this module does it;
calling :func:`ensure_graph_mode` again is harmless. A process that imports this module cannot
use the TF2-native runtime (:mod:`compat.tf2`) as well: see :mod:`compat.selection`.
"""

from __future__ import annotations

import logging
import platform
import threading

from compat import selection
from compat.environment import configure_tensorflow_environment, keras_deferred

# Graph mode is process-wide and permanent: refuse to start in a process that already runs the
# TF2-native runtime (compat.tf2), and make that runtime refuse to start after this one.
selection.claim("compat")
# Read once by TensorFlow at import (quiet C++ logs, Eigen kernels rather than oneDNN's).
configure_tensorflow_environment()

import numpy as np  # noqa: E402

with keras_deferred():
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


# Releases whose optimizer updates round differently from the others: a same-seed retrain there
# is bit-identical within the release but is another model than on the rest (docs/MIGRATION.md,
# "Retraining is not portable to 2.16.2"). Inference agrees on every release.
_RETRAINING_DRIFTS = ("2.16.",)


def retraining_matches_other_releases() -> bool:
    """Whether a same-seed retrain on this TensorFlow gives the weights the other releases give."""
    return not tf.__version__.startswith(_RETRAINING_DRIFTS)


def versions() -> dict[str, str]:
    """Versions of what a trained model depends on, as stored in every artifact."""
    return {
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


_quiet_python_logging()
ensure_graph_mode()

__all__ = ["tf", "ensure_graph_mode", "retraining_matches_other_releases", "versions"]
