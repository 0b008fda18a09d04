"""Out-of-scope decisions: when the assistant should fall back instead of answering.

A message is *rejected* (answered by the fallback) when it holds no feature the model knows (its
vocabulary coverage is 0, and the network's output is its biases alone), when the classifier's top
confidence is below the threshold (or NaN, as damaged weights give), or when its top intent is
the out-of-scope class (a model trained with out-of-scope examples has one). :func:`rejected` is
that rule, the one :meth:`legacy_assistant.serving.dialogue.DialoguePolicy.decide` applies to a
turn with no open follow-up (its ``understood`` is ``known_features > 0``). :func:`rejected`,
:func:`threshold_curve` and :func:`choose_threshold` take that first part as ``understood``, bool
``[n]``; left out, every row counts as understood.

:func:`choose_threshold` picks the threshold on validation data that holds both in-scope and
out-of-scope sentences. It maximises

    ``(1 - oos_share) * in-scope accuracy + oos_share * out-of-scope recall``

where *in-scope accuracy* counts an in-scope sentence as right only when it is not rejected and
its top intent is its label, and *out-of-scope recall* is the share of out-of-scope sentences
rejected. ``oos_share`` is the share of out-of-scope messages the assistant expects to receive.
It is a stated prior instead of the validation split's own mix because validation sets seldom
hold out-of-scope sentences in the proportion users send them (CLINC150's has 100 among
3,100, so maximising its plain accuracy would all but ignore them).

Without out-of-scope sentences to tune on, :func:`in_scope_threshold` calibrates the threshold
from in-scope sentences alone: the highest grid threshold that sends at most a stated share of
them (``fallback_rate``) to the fallback, counting the sentences with no known feature and those
whose top intent is the out-of-scope class, which fall back whatever the threshold. Sentences
the model is least sure of are the ones it most often gets wrong, so that share costs less
accuracy than it rejects, and out-of-scope messages, which spread their probability over many
intents, fall below it far more often.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from legacy_assistant.errors import TrainingError


class NothingUnderstoodError(TrainingError):
    """No in-scope sentence to calibrate on holds a word the model knows: no threshold can be
    read off them (training with ``threshold_from`` auto keeps the fixed threshold instead)."""


GRID = np.round(np.arange(0.0, 1.0, 0.01), 2)  # candidate thresholds 0.00, 0.01, ..., 0.99


def rejected(
    probabilities: np.ndarray, threshold: float, oos_index: int | None, understood: np.ndarray | None = None
) -> np.ndarray:
    """bool ``[n]``: which rows of ``probabilities`` (float ``[n, n_classes]``) fall back;
    ``understood`` (bool ``[n]``, default all true) marks the rows with a known feature."""
    top, confidence = top_and_confidence(probabilities)
    out = ~(confidence >= threshold)  # NaN (damaged weights) falls back too, as in the dialogue
    if oos_index is not None:
        out |= top == oos_index
    return out | ~_understood(understood, len(out))


def top_and_confidence(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int ``[n]`` top class and float64 ``[n]`` top probability of each row of ``probabilities``.

    The confidence is compared in float64, as the dialogue compares a turn's: NumPy would compare
    float32 probabilities with the threshold rounded to float32, and a tie would go the other way.
    Only the row maxima are widened (exactly, so the result is the same): a float64 copy of the
    whole matrix was twice its size again, gigabytes for a large evaluation set of many intents."""
    probabilities = np.asarray(probabilities)
    return probabilities.argmax(axis=1), probabilities.max(axis=1).astype(np.float64)


def _understood(understood: np.ndarray | None, n: int) -> np.ndarray:
    """bool ``[n]``: ``understood``, or all true when it is ``None``."""
    if understood is None:
        return np.ones(n, dtype=bool)
    understood = np.asarray(understood, dtype=bool)
    if understood.shape != (n,):
        raise ValueError(f"understood has shape {understood.shape}, expected ({n},)")
    return understood


@dataclass(frozen=True)
class ThresholdPoint:
    """Outcomes at one threshold.

    Attributes:
        threshold: the candidate.
        in_scope_accuracy: in-scope rows answered with their own label (not rejected), share
            (``None`` without in-scope rows: there is nothing to measure, not a score of 0).
        in_scope_rejected: in-scope rows rejected, share (``None`` without in-scope rows).
        oos_recall: out-of-scope rows rejected, share (``None`` without out-of-scope rows).
        oos_precision: rejected rows that are out of scope, share (``None`` when nothing is
            rejected or there are no out-of-scope rows).
        joint_accuracy: all rows right, out-of-scope counted as one more class (``None``
            without rows).
    """

    threshold: float
    in_scope_accuracy: float | None
    in_scope_rejected: float | None
    oos_recall: float | None
    oos_precision: float | None
    joint_accuracy: float | None

    def to_dict(self) -> dict[str, float | None]:
        return dict(self.__dict__)


def threshold_curve(
    probabilities: np.ndarray,
    labels: np.ndarray,
    is_oos: np.ndarray,
    oos_index: int | None,
    thresholds: Sequence[float] = tuple(GRID),
    understood: np.ndarray | None = None,
) -> list[ThresholdPoint]:
    """Outcomes at each threshold.

    Args:
        probabilities: float ``[n, n_classes]`` classifier output.
        labels: int ``[n]`` class index of each in-scope row; ignored where ``is_oos`` (and may
            be -1 for a label the model does not know, which is never right).
        is_oos: bool ``[n]``, true for out-of-scope rows.
        oos_index: column of the out-of-scope class, or ``None``.
        understood: bool ``[n]``, false for rows with no feature the model knows, which fall
            back at every threshold (as in the dialogue); ``None``: all understood.
    """
    top, confidence = top_and_confidence(probabilities)
    is_oos = np.asarray(is_oos, dtype=bool)
    in_scope = ~is_oos
    right_label = (top == labels) & in_scope
    if oos_index is not None:
        right_label &= top != oos_index
    top_is_oos = (top == oos_index) if oos_index is not None else np.zeros(len(top), dtype=bool)
    # fall back whatever the threshold; a NaN confidence too, as in the dialogue
    always = top_is_oos | ~_understood(understood, len(top)) | np.isnan(confidence)
    n_in, n_oos, n = int(in_scope.sum()), int(is_oos.sum()), len(top)
    points = []
    for threshold in thresholds:
        reject = (confidence < threshold) | always
        in_right = int((right_label & ~reject).sum())
        oos_right = int((reject & is_oos).sum())
        n_rejected = int(reject.sum())
        points.append(
            ThresholdPoint(
                threshold=float(threshold),
                in_scope_accuracy=in_right / n_in if n_in else None,
                in_scope_rejected=int((reject & in_scope).sum()) / n_in if n_in else None,
                oos_recall=oos_right / n_oos if n_oos else None,
                oos_precision=oos_right / n_rejected if n_oos and n_rejected else None,
                joint_accuracy=(in_right + oos_right) / n if n else None,
            )
        )
    return points


def choose_threshold(
    probabilities: np.ndarray,
    labels: np.ndarray,
    is_oos: np.ndarray,
    oos_index: int | None,
    oos_share: float,
    understood: np.ndarray | None = None,
) -> ThresholdPoint:
    """The grid threshold that maximises the weighted score in the module docstring; among
    equal scores the lowest threshold. Needs at least one in-scope and one out-of-scope row.
    ``understood`` as in :func:`threshold_curve`."""
    is_oos = np.asarray(is_oos, dtype=bool)
    if not is_oos.any() or is_oos.all():
        raise ValueError("choosing a threshold needs both in-scope and out-of-scope examples")
    curve = threshold_curve(probabilities, labels, is_oos, oos_index, understood=understood)
    # every point has both figures: the rows hold in-scope and out-of-scope examples (checked above)
    scores = [(1.0 - oos_share) * (p.in_scope_accuracy or 0.0) + oos_share * (p.oos_recall or 0.0) for p in curve]
    return curve[int(np.argmax(scores))]


@dataclass(frozen=True)
class InScopeCalibration:
    """A threshold calibrated on in-scope sentences (:func:`in_scope_threshold`).

    Attributes:
        threshold: the chosen grid threshold.
        fallback_rate: the share of in-scope sentences allowed to fall back (the target).
        sentences: in-scope sentences calibrated on.
        fallback_share: the share of them that fall back at ``threshold`` (at most the target,
            unless the rows that fall back at any threshold alone exceed it).
        accuracy: the share whose top intent is their own (top-1, as if nothing fell back:
            not the accuracy at threshold 0, where the rows not understood or taken for out of
            scope still fall back), and
        accuracy_at_threshold: the share answered with their own intent at ``threshold``,
            fallbacks of every kind counted as wrong; both ``None`` without labels.
    """

    threshold: float
    fallback_rate: float
    sentences: int
    fallback_share: float
    accuracy: float | None = None
    accuracy_at_threshold: float | None = None


def in_scope_threshold(
    probabilities: np.ndarray,
    fallback_rate: float,
    labels: np.ndarray | None = None,
    understood: np.ndarray | None = None,
    oos_index: int | None = None,
) -> InScopeCalibration:
    """The highest grid threshold at which at most ``fallback_rate`` of the rows fall back.

    Args:
        probabilities: float ``[n, n_classes]`` classifier output for in-scope sentences only
            (``n`` >= 1). A row falls back when its top probability is below the threshold, or
            when it is not ``understood``.
        fallback_rate: target share in [0, 1); at most ``floor(fallback_rate * n)`` rows fall back.
        labels: optional int ``[n]`` class ids, only to report the accuracy with and without it.
        understood: bool ``[n]``, the rows with a feature the model knows (default all). The
            others fall back at every threshold, as in the dialogue, so they use up the share
            first; when they alone exceed it, the threshold sends no understood row back.
        oos_index: the model's out-of-scope class, or ``None``. A row whose top intent it is
            falls back at every threshold too (:func:`rejected`), and uses up the share likewise.

    Raises :class:`TrainingError` when no row is understood, or every understood row's top
    intent is the out-of-scope class: no threshold can be read off them.
    """
    top, confidence = top_and_confidence(probabilities)
    n = len(confidence)
    if n == 0:
        raise ValueError("calibrating a threshold needs at least one in-scope sentence")
    known = _understood(understood, n)
    if not known.any():
        # every threshold would qualify, and the highest (0.99) send nearly every message back
        raise NothingUnderstoodError(
            f"the threshold cannot be calibrated: none of the {n} in-scope sentences it is calibrated on "
            "holds a word the model knows; give validation sentences in the training data's words, or a "
            "fixed threshold (threshold_from 'fixed')"
        )
    taken_for_oos = top == oos_index if oos_index is not None else np.zeros(n, dtype=bool)
    nan = np.isnan(confidence)
    answerable = known & ~taken_for_oos & ~nan  # a NaN row falls back at any threshold
    if not (known & ~nan).any():  # (a NaN row's top is the first class: not taken for out of scope)
        raise NothingUnderstoodError(
            f"the threshold cannot be calibrated: the model's confidence is NaN (damaged weights) on every one "
            f"of the {n} in-scope sentences it is calibrated on (that hold a word it knows); give a fixed "
            "threshold (threshold_from 'fixed')"
        )
    if not answerable.any():
        raise NothingUnderstoodError(
            f"the threshold cannot be calibrated: the model takes every one of the {n} in-scope sentences it "
            "is calibrated on (that hold a word it knows) for out of scope; give a fixed threshold "
            "(threshold_from 'fixed')"
        )
    # the rows that fall back whatever the threshold go first; when they alone exceed the share,
    # the threshold adds none: the highest one below every answerable row's confidence
    allowed = max(int(np.floor(fallback_rate * n + 1e-9)) - int(np.count_nonzero(~answerable)), 0)
    # answerable rows below each threshold
    below = np.searchsorted(np.sort(confidence[answerable]), GRID, side="left")
    threshold = float(GRID[np.flatnonzero(below <= allowed)[-1]])  # GRID[0] = 0 rejects nothing
    falls_back = (confidence < threshold) | ~answerable
    accuracy = accuracy_at = None
    if labels is not None:
        right = top == np.asarray(labels)
        accuracy, accuracy_at = float(right.mean()), float((right & ~falls_back).mean())
    return InScopeCalibration(threshold, float(fallback_rate), n, float(falls_back.mean()), accuracy, accuracy_at)
