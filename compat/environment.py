"""Process environment TensorFlow reads once, at import: set it before either runtime loads.

Shared by :mod:`compat.runtime` (TF1 graph mode) and :mod:`compat.tf2.runtime` (TF2 eager), so
both runtimes compute with the same kernels and start quietly. Importing this module does not
import TensorFlow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

# The variables that choose the kernels a model is trained with, and their values as TensorFlow
# read them (set by configure_tensorflow_environment, before the first runtime imports it). A
# value set later in the process changes the environment but not the kernels.
KERNEL_SETTINGS = ("TF_ENABLE_ONEDNN_OPTS",)
_AT_IMPORT: dict[str, str | None] = {}


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
    imported_before = sys.modules.get("tensorflow") is not None  # by the program, before either runtime
    as_read = {name: os.environ.get(name) for name in KERNEL_SETTINGS}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if not _AT_IMPORT:  # the first runtime's import is the one TensorFlow reads them at
        if imported_before:
            # TensorFlow read them at the program's own import, without the default set above:
            # unset, oneDNN's kernels are on where TensorFlow turns them on by itself (x86 Linux)
            _AT_IMPORT.update(as_read)
            if as_read["TF_ENABLE_ONEDNN_OPTS"] is None:
                _AT_IMPORT["TF_ENABLE_ONEDNN_OPTS"] = _onednn_as_tensorflow_runs()
        else:
            _AT_IMPORT.update({name: os.environ.get(name) for name in KERNEL_SETTINGS})


def _onednn_as_tensorflow_runs() -> str | None:
    """``"1"`` or ``"0"``: whether the TensorFlow already imported in this process computes with
    oneDNN's kernels, as it says; None where it does not say. Imports nothing."""
    port = sys.modules.get("tensorflow.python.util._pywrap_util_port")
    enabled = getattr(port, "IsMklEnabled", None)
    if enabled is None:
        return None
    try:
        return "1" if enabled() else "0"
    except Exception:  # noqa: BLE001 - a TensorFlow that cannot tell records no value
        return None


def kernel_settings() -> dict[str, str | None]:
    """:data:`KERNEL_SETTINGS` as TensorFlow read them at its import in this process (None:
    unset); as the environment has them now where no runtime has imported TensorFlow yet."""
    return {name: _AT_IMPORT[name] if name in _AT_IMPORT else os.environ.get(name) for name in KERNEL_SETTINGS}


# Standard-library modules that TensorFlow imports and Python deprecates at their import: 2.12
# imports `sre_constants` (deprecated since Python 3.11) in tensorflow.python.debug.cli. A process
# started with PYTHONWARNINGS=error (or -W error) died of its DeprecationWarning at the import (a
# worker that does not boot), and PYTHONWARNINGS=default printed it at every start.
_DEPRECATED_AT_IMPORT = ("sre_constants",)


@contextlib.contextmanager
def tensorflow_deprecations_ignored() -> Iterator[None]:
    """Run ``import tensorflow`` inside this block: the standard-library modules of
    :data:`_DEPRECATED_AT_IMPORT` that it imports are imported first with their deprecation
    warning ignored, so that TensorFlow's import of them finds them loaded and warns of nothing.
    The process's warning filters are left as they are: a filter in place while TensorFlow is
    imported would drop the filters that TensorFlow's own imports add (NumPy's, urllib3's)."""
    for name in _DEPRECATED_AT_IMPORT:
        if name not in sys.modules:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                with contextlib.suppress(ImportError):  # gone from a later Python
                    importlib.import_module(name)
    yield


# TensorFlow 2.16 and newer end `import tensorflow` with an eager import of Keras 3
# (`keras.src.optimizers`, for Keras' SavedModel registrations), which this project never uses:
# measured on TF 2.21 (README, "Keras/TF version clashes"), about 75 MiB and up to 1.7 s paid by
# every worker, command and test process (on 2.15, Keras 2: about 15 MiB). With TF_USE_LEGACY_KERAS set,
# TensorFlow asks for `tf_keras` there instead and skips it quietly when that is not installed.
_LEGACY_KERAS = "TF_USE_LEGACY_KERAS"


@contextlib.contextmanager
def keras_deferred() -> Iterator[None]:
    """Keep ``import tensorflow`` (run inside this block) from importing Keras.

    Keras still loads on first use, as it would have: ``tf.keras`` reads the variable when it is
    first touched (by then it is unset again), and the ``tensorflow.keras`` import path is put
    back on the way out. Does nothing when the variable is already set or ``tf_keras`` is
    installed (TensorFlow would import that instead), and changes nothing on 2.12, which
    imports Keras in any case (2.15 honours it).
    """
    if _LEGACY_KERAS in os.environ or importlib.util.find_spec("tf_keras") is not None:
        yield
        return
    os.environ[_LEGACY_KERAS] = "1"
    try:
        yield
    finally:
        del os.environ[_LEGACY_KERAS]
        tensorflow_module = sys.modules.get("tensorflow")
        if tensorflow_module is not None:
            _restore_keras_path(tensorflow_module)


def _restore_keras_path(tensorflow_module: ModuleType) -> None:
    # With the variable set, TensorFlow puts tf_keras's API folder (None: not installed) where
    # Keras' own goes at the front of tensorflow.__path__: drop it, and put back Keras' folder
    # where it exists (Keras 3 has none: its tensorflow.keras lives in keras/_tf_keras, which
    # TensorFlow adds either way).
    search_path = getattr(tensorflow_module, "__path__", None)
    if search_path is None or None not in search_path:
        return
    kept = [entry for entry in search_path if entry is not None]
    spec = importlib.util.find_spec("keras")
    if spec is not None and spec.origin:
        keras_api = os.path.join(os.path.dirname(spec.origin), "api", "_v2")
        if os.path.isdir(keras_api) and keras_api not in kept:
            kept.insert(0, keras_api)
    tensorflow_module.__path__ = kept
