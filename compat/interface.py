"""What the rest of the project sees of a loaded model, whichever TensorFlow runtime made it.

Nothing here imports TensorFlow: :mod:`legacy_assistant.classifier.predictor` types its classifier with
:class:`Classifier` and catches :class:`SavedModelError`, and the runtime that implements them
(:class:`compat.classifier.saved_model.LoadedClassifier` in TF1 graph mode, or
:class:`compat.tf2.saved_model.Tf2Classifier` in TF2 eager mode) is chosen per process by
:mod:`compat.selection`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from compat.responder.spec import DecodeResult, ResponderSpec


class SavedModelError(Exception):
    """A SavedModel directory cannot be read or does not hold our signature."""


def tensorflow_path(path: str | os.PathLike[str]) -> str:
    """``path`` as TensorFlow's file functions must be given it: the text whose UTF-8 is the path's
    bytes on disk. TensorFlow encodes a path as UTF-8, Python with the file system's encoding: under
    an ASCII locale (``LC_ALL=C`` with UTF-8 mode off) a name such as ``modèl`` is held with
    surrogates, which TensorFlow refused with a UnicodeEncodeError, and under a Latin-1 locale it
    would name another file. Raises :class:`SavedModelError` for a path whose bytes are not UTF-8,
    which TensorFlow cannot open at all."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SavedModelError(unusable_path_text(raw)) from None


def unusable_path_text(raw: bytes) -> str:
    """The message for a path (``raw``: its bytes) that is not UTF-8, its odd bytes as ``\\xe9``."""
    shown = raw.decode("utf-8", "backslashreplace")
    return f"{shown}: TensorFlow takes only paths that are UTF-8, and this one is not: rename it or choose another"


@runtime_checkable
class Classifier(Protocol):
    """A loaded intent network.

    Attributes:
        n_features: rows of the first layer's kernel: feature ids must lie in ``[0, n_features)``.
        n_classes: width of the softmax.
    """

    n_features: int
    n_classes: int

    def predict_proba(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """int32 ``ids`` and float32 ``weights``, both ``[batch, width]`` -> float32 ``[batch, n_classes]``."""
        ...

    def close(self) -> None:
        """Release sessions and memory; the object is unusable afterwards."""
        ...


class ResponderModel(Protocol):
    """A loaded responder network (:class:`compat.responder.saved_model.LoadedResponder` on the
    compat runtime, :class:`compat.tf2.responder.Tf2Responder` on tf2; see
    :func:`compat.selection.load_responder`).

    Attributes:
        spec: the network's shape.
        vocab_size, n_conditions: token ids lie in ``[0, vocab_size)``, condition ids in ``[0, n_conditions)``.
        guided: ``decode`` takes a ``condition_strength`` above 0 (condition guidance).
    """

    spec: ResponderSpec
    vocab_size: int
    n_conditions: int
    guided: bool

    def decode(
        self,
        context_ids: np.ndarray,
        condition_ids: np.ndarray,
        *,
        mode: str,
        max_length: int,
        beam_width: int = 5,
        temperature: float = 1.0,
        seed: int = 0,
        repetition_penalty: float = 1.0,
        banned_ids: np.ndarray | None = None,
        n_samples: int = 1,
        length_penalty: float = 1.0,
        unpenalized_ids: np.ndarray | None = None,
        condition_strength: float = 0.0,
    ) -> DecodeResult:
        """Replies for int ``context_ids`` ``[batch, turns, turn_len]`` and ``condition_ids`` ``[batch]``
        (options as :meth:`compat.responder.decoding.DecodeRunner.decode`)."""
        ...

    def score(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, reply_len]``: log p of each token of ``reply_ids`` (0 at PAD)."""
        ...

    def close(self) -> None:
        """Release sessions and memory; the object is unusable afterwards."""
        ...


def check_sparse(ids: np.ndarray, weights: np.ndarray, n_features: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` as int32 and ``weights`` as float32, both ``[batch, width]``, ids in ``[0, n_features)``,
    weights finite real numbers (a complex weight would lose its imaginary part, a string be parsed,
    a NaN make every probability NaN)."""
    ids = np.asarray(ids)
    given = np.asarray(weights)
    # the featurizer's own dtypes skip the type checks (np.issubdtype costs microseconds a call)
    exact = ids.dtype == np.int32 and given.dtype == np.float32
    if (
        not exact
        and given.size
        and not (np.issubdtype(given.dtype, np.floating) or np.issubdtype(given.dtype, np.integer))
    ):
        raise ValueError(f"{what}: feature weights must be real numbers, got {given.dtype}")
    weights = given.astype(np.float32, copy=False)
    if weights.size and not np.isfinite(weights).all():
        raise ValueError(f"{what}: feature weights must be finite")
    if ids.ndim != 2 or ids.shape != weights.shape:
        raise ValueError(f"{what}: ids and weights must be [batch, width] alike, got {ids.shape} and {weights.shape}")
    if not exact and ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what}: feature ids must be integers, got {ids.dtype}")
    # checked before the cast to int32, which would wrap an id of 2**32 + 3 to 3
    if ids.size and (ids.min() < 0 or ids.max() >= n_features):
        raise ValueError(f"{what}: feature ids must lie in [0, {n_features})")
    return ids.astype(np.int32, copy=False), weights


# Lines of a TensorFlow error that frame its cause rather than state it: a restore from
# truncated variables says "Graph execution error:", then where, then "Read less bytes than
# requested".
_FRAMING_LINES = ("Graph execution error:", "Detected at node", "Node:", "Original stack trace", "[[", 'File "')


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message that states something (TensorFlow errors run to many
    lines, some of them only framing), or its type name."""
    lines = [line.strip() for line in str(exc).splitlines()]
    # A graph built in this process adds where its node was defined (a Python stack, with source
    # lines on some releases) before "Node: ..."; the cause follows that line.
    node = next((i for i, line in enumerate(lines) if line.startswith("Node:")), None)
    if node is not None:
        lines = lines[node + 1 :] + lines[:node]
    stating = [line for line in lines if line and not line.startswith(_FRAMING_LINES)]
    if stating:
        return stating[0]
    return next((line for line in lines if line), type(exc).__name__)
