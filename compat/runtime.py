"""Import ``tensorflow.compat.v1`` once, in graph mode, quietly.

``disable_v2_behavior()`` must run before any graph is built: it switches off eager execution,
resource variables and the v2 control flow for the whole process. Importing this module does it;
calling :func:`ensure_graph_mode` again is harmless. A process that imports this module cannot
use the TF2-native runtime (:mod:`compat.tf2`) as well: see :mod:`compat.selection`.
"""

from __future__ import annotations

import logging
import platform
import sys
import threading

from compat import selection
from compat.environment import configure_tensorflow_environment, keras_deferred, tensorflow_deprecations_ignored


def _ran_eagerly() -> bool:
    """Whether TensorFlow already ran eagerly in this process (code of the program that imports
    this package: eager tensors, ``tf.function``, Keras): its eager context has started and eager
    execution is on. Reads TensorFlow's module only if it is imported; imports nothing."""
    context = sys.modules.get("tensorflow.python.eager.context")
    if context is None:
        return False
    started = getattr(getattr(context, "_context", None), "_initialized", False)
    return bool(started) and bool(context.executing_eagerly())


if selection.active() is None and _ran_eagerly():
    # disable_v2_behavior() below would switch eager execution off under that code, for good:
    # its next eager call would fail with an unrelated-looking error (a symbolic tensor has no
    # numpy()), far from here. Refuse before claiming the process, which can still run tf2.
    # A process on the tf2 runtime ran eagerly as that runtime: claim() below says so.
    raise selection.RuntimeConflict(
        "TensorFlow already ran eagerly in this process; the compat runtime (TF1 graph mode) would "
        "switch eager execution off for the whole process, for good (tf.compat.v1.disable_v2_behavior()), "
        "and that eager code would fail from then on. Load a TF2 copy of the model here "
        "(legacy-assistant migrate DIR --out DIR-tf2, then runtime='tf2'), or load this model in a "
        "process of its own."
    )

# Graph mode is process-wide and permanent: refuse to start in a process that already runs the
# TF2-native runtime (compat.tf2), and make that runtime refuse to start after this one.
selection.claim("compat")
# Read once by TensorFlow at import (quiet C++ logs, Eigen kernels rather than oneDNN's).
configure_tensorflow_environment()

import numpy as np  # noqa: E402

with keras_deferred(), tensorflow_deprecations_ignored():
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
