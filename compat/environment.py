"""Process environment TensorFlow reads once, at import: set it before either runtime loads.

Shared by :mod:`compat.runtime` (TF1 graph mode) and :mod:`compat.tf2.runtime` (TF2 eager), so
both runtimes compute with the same kernels and start quietly. Importing this module does not
import TensorFlow.
"""

from __future__ import annotations

import os


def configure_tensorflow_environment() -> None:
    """Quiet TensorFlow's C++ start-up logs and prefer Eigen's kernels to oneDNN's.

    * ``TF_CPP_MIN_LOG_LEVEL=2``: the CPU-feature and oneDNN banners go to stderr before Python
      logging is configured.
    * ``TF_ENABLE_ONEDNN_OPTS=0``: oneDNN picks its kernels at run time by CPU model, so float
      sums may round differently from one machine to the next; Eigen's kernels are fixed when
      TensorFlow is built. Golden tests and bit-identical retraining want the latter (set it to
      1 beforehand to choose oneDNN anyway).

    Values already in the environment win. Must run before ``import tensorflow``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
