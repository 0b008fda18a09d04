"""Import TensorFlow 2 in eager mode, quietly, and claim the process for the TF2 runtime.

Importing this module in a process that has imported :mod:`compat.runtime` (TF1 graph mode)
raises :class:`compat.selection.RuntimeConflict`; importing :mod:`compat.runtime` afterwards
raises it too. TensorFlow's thread pools are fixed when its eager context starts, so
:func:`configure_threads` must run before the first op.
"""

from __future__ import annotations

import logging
import platform

from compat import selection
from compat.environment import configure_tensorflow_environment, keras_deferred, tensorflow_deprecations_ignored

selection.claim("tf2")
configure_tensorflow_environment()

import numpy as np  # noqa: E402

with keras_deferred(), tensorflow_deprecations_ignored():
    import tensorflow as tf  # noqa: E402

log = logging.getLogger(__name__)

if not tf.executing_eagerly():
    raise selection.RuntimeConflict(
        "eager execution is off in this process (tf.compat.v1.disable_v2_behavior() or "
        "disable_eager_execution() was called): the TF2 runtime needs a process of its own"
    )
# Deprecation and SavedModel-writing notices (e.g. renamed captured-variable inputs) are noise here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.WARNING)


def configure_threads(intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
    """Size TensorFlow's thread pools (0 leaves TensorFlow's choice: one per core).

    Only possible before TensorFlow runs its first op; later calls that ask for other sizes log
    a warning and change nothing.
    """
    for setter, getter, value in (
        (
            tf.config.threading.set_intra_op_parallelism_threads,
            tf.config.threading.get_intra_op_parallelism_threads,
            intra_op_threads,
        ),
        (
            tf.config.threading.set_inter_op_parallelism_threads,
            tf.config.threading.get_inter_op_parallelism_threads,
            inter_op_threads,
        ),
    ):
        if not value or getter() == value:
            continue
        try:
            setter(value)
        except RuntimeError:
            log.warning("TensorFlow already started: thread pool size %d not applied", value)


def versions() -> dict[str, str]:
    """Versions of what a TF2 artifact depends on, as stored in its manifest."""
    return {"tensorflow": tf.__version__, "python": platform.python_version(), "numpy": np.__version__}


__all__ = ["tf", "configure_threads", "versions"]
