"""Which TensorFlow runtime this process uses: ``compat`` (TF1 graph mode) or ``tf2`` (eager).

The two cannot share a process. :mod:`compat.runtime` calls ``disable_v2_behavior()`` when it
is imported, which switches eager execution, resource variables and v2 control flow off for the
whole process, for good; TF2-native code (:mod:`compat.tf2`) needs them on. So a process picks
its runtime *before* TensorFlow is first used, and each runtime module claims the process when
it is imported: importing the other one afterwards raises :class:`RuntimeConflict` at once,
instead of failing later in some unrelated-looking TensorFlow call.

The choice is made by :func:`select` (the CLI's ``--runtime``), else by the
``LEGACY_ASSISTANT_RUNTIME`` environment variable, else it is ``compat``. Nothing here imports
TensorFlow; :func:`load_classifier` and :func:`load_responder` import the chosen runtime only when
called.
"""

from __future__ import annotations

import os
import threading

from compat.interface import Classifier, ResponderModel

RUNTIMES = ("compat", "tf2")  # also the values of a model manifest's "runtime" ("compat" when absent)
DEFAULT_RUNTIME = "compat"
ENV_VAR = "LEGACY_ASSISTANT_RUNTIME"
_RUNTIME_MODULES = {"compat": "compat.runtime", "tf2": "compat.tf2.runtime"}

_lock = threading.Lock()
_claimed: str | None = None
_selected: str | None = None


class RuntimeConflict(RuntimeError):
    """A second TensorFlow runtime was asked for in a process that already runs the other."""


class UnknownRuntime(ValueError):
    """A runtime name (an argument, or ``LEGACY_ASSISTANT_RUNTIME``) that is not one of :data:`RUNTIMES`."""


def _check_name(name: str) -> str:
    if name not in RUNTIMES:
        raise UnknownRuntime(f"unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")
    return name


def check_runtime_argument(name: str | None) -> None:
    """Raise :class:`UnknownRuntime` for a ``runtime`` argument that names none of :data:`RUNTIMES`
    (None: the process's choice), before a model is read: it was reported as a mismatch with
    the model's runtime ("cannot be loaded with runtime 'foo'")."""
    if name is not None:
        _check_name(name)


def claim(name: str) -> None:
    """Mark this process as running ``name``; called by each runtime module at import.

    Raises:
        RuntimeConflict: the process already runs the other runtime.
    """
    global _claimed
    _check_name(name)
    with _lock:
        if _claimed is not None and _claimed != name:
            raise RuntimeConflict(
                f"this process already runs TensorFlow runtime {_claimed!r} ({_RUNTIME_MODULES[_claimed]} is "
                f"imported); runtime {name!r} needs a process of its own. Choose one runtime per process "
                f"(--runtime or {ENV_VAR}) before any model is loaded, or run the other one in a subprocess."
            )
        if _claimed is None and _selected is not None and _selected != name:
            # else the process would quietly run the runtime it was told not to
            raise RuntimeConflict(
                f"runtime {_selected!r} was selected for this process; importing {_RUNTIME_MODULES[name]} "
                f"would run {name!r} instead. Run {name!r} in a process of its own."
            )
        _claimed = name


def active() -> str | None:
    """The runtime whose module this process has imported, or ``None`` before any."""
    return _claimed


def select(name: str) -> None:
    """Choose this process's runtime before any model is loaded.

    Raises:
        ValueError: ``name`` is not a runtime.
        RuntimeConflict: the other runtime is already imported.
    """
    global _selected
    _check_name(name)
    with _lock:
        if _claimed is not None and _claimed != name:
            raise RuntimeConflict(f"cannot select runtime {name!r}: this process already runs {_claimed!r}")
        _selected = name


def selected() -> str:
    """The runtime models are loaded with: the imported one, else the selected one, else the
    environment's, else ``compat``."""
    if _claimed is not None:
        return _claimed
    if _selected is not None:
        return _selected
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env and from_env not in RUNTIMES:
        raise UnknownRuntime(f"{ENV_VAR}={from_env!r}: unknown runtime, choose one of {', '.join(RUNTIMES)}")
    return from_env or DEFAULT_RUNTIME


def source_note(runtime: str | None = None) -> str:
    """Where the runtime that models are loaded with came from, for an error about it:
    ``", set by environment variable LEGACY_ASSISTANT_RUNTIME"`` when :func:`selected` read it from
    there (no ``--runtime``, no runtime imported yet), else empty. ``runtime``: a runtime asked
    for by name (a library call's argument), which the environment did not choose."""
    if runtime is not None or _claimed is not None or _selected is not None:
        return ""
    return f", set by environment variable {ENV_VAR}" if os.environ.get(ENV_VAR, "").strip() else ""


def load_classifier(
    saved_model_dir: str, runtime: str | None = None, intra_op_threads: int = 0, inter_op_threads: int = 0
) -> Classifier:
    """Load the SavedModel in ``saved_model_dir`` with ``runtime`` (default :func:`selected`).

    Raises:
        compat.interface.SavedModelError: the directory does not hold a model of that runtime.
        RuntimeConflict: the process already runs the other runtime.
    """
    runtime = _check_name(runtime or selected())
    if runtime == "tf2":
        from compat.tf2.saved_model import Tf2Classifier

        return Tf2Classifier(saved_model_dir, intra_op_threads, inter_op_threads)
    from compat.classifier.saved_model import LoadedClassifier

    return LoadedClassifier(saved_model_dir, intra_op_threads, inter_op_threads)


def load_responder(
    saved_model_dir: str, runtime: str | None = None, intra_op_threads: int = 0, inter_op_threads: int = 0
) -> ResponderModel:
    """Load the responder SavedModel in ``saved_model_dir`` with ``runtime`` (default :func:`selected`).

    Both kinds are a :class:`compat.interface.ResponderModel`:
    :class:`compat.responder.saved_model.LoadedResponder` on ``compat``,
    :class:`compat.tf2.responder.Tf2Responder` on ``tf2``.

    Raises:
        compat.interface.SavedModelError: the directory does not hold a responder of that runtime.
        RuntimeConflict: the process already runs the other runtime.
    """
    runtime = _check_name(runtime or selected())
    if runtime == "tf2":
        from compat.tf2.responder import Tf2Responder

        return Tf2Responder(saved_model_dir, intra_op_threads, inter_op_threads)
    from compat.responder.saved_model import LoadedResponder

    return LoadedResponder(saved_model_dir, intra_op_threads, inter_op_threads)
