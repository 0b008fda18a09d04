"""How good is a model on labelled sentences it was not trained on: the ``evaluate`` report.

The report (a JSON-serialisable dict) has two parts:

* **classification**, over the in-scope sentences and the raw ranking's top intent (what
  ``/api/v1/parse`` reports): ``accuracy``, ``macro_f1`` (the unweighted mean F1 over the labels
  of the in-scope sentences: a label the model lacks counts, with F1 0; an intent only ever
  predicted does not), ``per_intent`` precision/recall/F1/support (an intent's precision counts
  the in-scope sentences given it: an out-of-scope sentence given an intent is measured by the
  out-of-scope figures below, not as that intent's false positive; ``None`` for an intent no
  sentence was given), the most frequent
  ``confused_pairs`` and all ``confusions`` (label, predicted, count; off the diagonal only);
* **at_threshold**, the assistant's behaviour with its fallback rule (no feature the model
  knows, top confidence below the threshold, or top intent the out-of-scope class:
  :mod:`legacy_assistant.classifier.thresholds`):
  in-scope accuracy and fallback rate and, when the data holds out-of-scope sentences, their
  recall and precision and the joint accuracy over all sentences (out-of-scope counted as one
  more class); plus ``threshold_curve``, the same figures for every threshold 0.00 ... 0.99
  (there ``in_scope_rejected`` is the in-scope fallback rate).
  ``not_understood`` counts the sentences with no feature the model knows: they fall back at
  every threshold, as in the dialogue, whatever the network's bias-only output ranks first.

A sentence whose label the model does not know counts as wrong and is listed under
``unknown_labels``. A figure with no sentence to measure (accuracy and macro-F1 of data that is
all out of scope, say) is ``None``, not 0.

The data's out-of-scope label (``oos_label``) names which sentences are out of scope; the model's
own out-of-scope class (``oos_class``, its manifest's ``oos_label``) is what counts as a fallback
when predicted, as in serving. The two are usually the same label, but need not be.
"""

from __future__ import annotations

import enum
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from legacy_assistant.classifier.thresholds import rejected, threshold_curve
from legacy_assistant.common.fields import threshold_text

if TYPE_CHECKING:  # the hint only: evaluating needs nothing of the predictor module at run time
    from legacy_assistant.classifier.predictor import Predictor

EVAL_BATCH = 256
# sentences read per step of evaluate_predictor: its progress is reported after each one
EVAL_CHUNK = 16 * EVAL_BATCH


class _Same(enum.Enum):
    """A default for ``oos_class`` that ``None`` cannot be: ``None`` says the model has no such class."""

    AS_DATA = "the class named like the data's out-of-scope label"


SAME_AS_DATA = _Same.AS_DATA


def evaluation_report(
    probabilities: np.ndarray,
    classes: Sequence[str],
    labels: Sequence[str],
    threshold: float,
    oos_label: str | None,
    top_confusions: int = 10,
    oos_class: str | None | _Same = SAME_AS_DATA,
    known_features: Sequence[int] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of ``probabilities`` (float ``[n, n_classes]``, columns follow ``classes``)
    against ``labels`` (``n`` strings; ``oos_label`` marks out-of-scope sentences).

    ``oos_class`` is the model's out-of-scope class, whose prediction is a fallback (``None``:
    the model has none); by default the class named ``oos_label``, if there is one.
    ``known_features`` (int ``[n]``, :attr:`Prediction.known_features`) is how many features of
    each sentence the model knows; a sentence with none falls back, as in the dialogue. Left
    out, every sentence counts as understood. Labels that name ``oos_class`` while ``oos_label``
    is another label raise :class:`ValueError`."""
    classes = list(classes)
    if probabilities.shape != (len(labels), len(classes)):
        raise ValueError(
            f"probabilities {probabilities.shape} do not match {len(labels)} labels x {len(classes)} classes"
        )
    index = {tag: i for i, tag in enumerate(classes)}
    if isinstance(oos_class, _Same):
        oos_class = oos_label
    # the model's class decides what falls back, whatever the data calls its out-of-scope sentences
    oos_index = index.get(oos_class) if oos_class is not None else None
    if oos_index is not None and oos_class != oos_label and oos_class in labels:
        # scored as an in-scope intent, right in accuracy yet wrong at the threshold (a fallback)
        raise ValueError(
            f"labels hold the model's out-of-scope class {oos_class!r}, but the data's out-of-scope label "
            f"is {oos_label!r}: give the out-of-scope sentences one label"
        )
    is_oos = np.asarray([label == oos_label for label in labels], dtype=bool)
    label_ids = np.asarray([index.get(label, -1) for label in labels], dtype=np.int64)
    top = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    if known_features is None:
        understood = np.ones(len(labels), dtype=bool)
    else:
        understood = np.asarray(known_features).reshape(-1) > 0
        if understood.shape != (len(labels),):
            raise ValueError(f"{understood.size} known-feature counts do not match {len(labels)} labels")

    in_scope = ~is_oos
    truth = [label for label, oos in zip(labels, is_oos) if not oos]
    guess = [classes[i] for i, oos in zip(top, is_oos) if not oos]
    per_intent = _per_intent(truth, guess)
    confusions = Counter((t, g) for t, g in zip(truth, guess) if t != g)
    pairs = [
        {"label": t, "predicted": g, "count": n}
        for (t, g), n in sorted(confusions.items(), key=lambda item: (-item[1], item[0]))
    ]

    report: dict[str, Any] = {
        "examples": len(labels),
        "in_scope_examples": int(in_scope.sum()),
        "oos_examples": int(is_oos.sum()),
        "oos_label": oos_label,
        "oos_class": classes[oos_index] if oos_index is not None else None,
        "threshold": float(threshold),
        # None, not 0, when there is no in-scope sentence to measure
        "accuracy": _share(sum(t == g for t, g in zip(truth, guess)), len(truth)) if truth else None,
        "macro_f1": float(np.mean([m["f1"] for m in per_intent.values()])) if per_intent else None,
        "per_intent": per_intent,
        "confused_pairs": pairs[:top_confusions],
        "confusions": pairs,
        "unknown_labels": sorted({label for label, i, oos in zip(labels, label_ids, is_oos) if i < 0 and not oos}),
        "not_understood": int((~understood).sum()),
    }
    point = threshold_curve(probabilities, label_ids, is_oos, oos_index, [threshold], understood=understood)[0]
    at_threshold: dict[str, Any] = {
        "in_scope_accuracy": point.in_scope_accuracy,
        "in_scope_fallback_rate": point.in_scope_rejected,
    }
    if is_oos.any():
        at_threshold.update(
            oos_recall=point.oos_recall,
            oos_precision=point.oos_precision,
            joint_accuracy=point.joint_accuracy,
        )
    report["at_threshold"] = at_threshold
    curve = threshold_curve(probabilities, label_ids, is_oos, oos_index, understood=understood)
    report["threshold_curve"] = [p.to_dict() for p in curve]
    report["fallbacks"] = int(rejected(probabilities, threshold, oos_index, understood).sum()) if len(labels) else 0
    return report


def _per_intent(truth: Sequence[str], guess: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Precision, recall, F1 and support of every label in ``truth``, sorted by name; the
    precision of an intent no sentence was given is ``None`` (nothing to measure), its F1 0."""
    support = Counter(truth)
    predicted = Counter(guess)
    correct = Counter(t for t, g in zip(truth, guess) if t == g)
    out: dict[str, dict[str, float | None]] = {}
    for tag in sorted(support):
        precision = float(correct[tag]) / predicted[tag] if predicted[tag] else None
        recall = _share(correct[tag], support[tag])
        # F1 = 2 TP / (2 TP + FP + FN): 0 with no sentence given the intent, whose support is > 0
        f1 = 2.0 * correct[tag] / (predicted[tag] + support[tag])
        out[tag] = {"precision": precision, "recall": recall, "f1": f1, "support": support[tag]}
    return out


def _share(part: int, whole: int) -> float:
    return float(part) / whole if whole else 0.0


def evaluate_predictor(
    predictor: Predictor,
    texts: Sequence[str],
    labels: Sequence[str],
    threshold: float | None = None,
    oos_label: str | None = None,
    top_confusions: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """:func:`evaluation_report` of a loaded :class:`~legacy_assistant.classifier.predictor.Predictor`;
    ``threshold`` and ``oos_label`` (the data's out-of-scope label) default to the model's own.
    The model's out-of-scope class always counts as a fallback, as it does in serving, even where
    ``oos_label`` names another label. A sentence with no feature the model knows falls back, as
    in the dialogue. ``progress`` is called with the number of sentences done so far after each
    step of :data:`EVAL_CHUNK` sentences (tens of thousands take minutes on a large model)."""
    manifest = predictor.manifest
    threshold = manifest["threshold"] if threshold is None else threshold
    model_oos = manifest.get("oos_label")
    oos_label = model_oos if oos_label is None else oos_label
    texts = list(texts)
    probabilities_parts: list[np.ndarray] = []
    known_parts: list[np.ndarray] = []
    for start in range(0, len(texts), EVAL_CHUNK):
        chunk = texts[start : start + EVAL_CHUNK]
        probabilities_parts.append(predictor.predict_proba(chunk, batch_size=EVAL_BATCH))
        # what Predictor.predict reports as known_features, and the dialogue reads as "understood"
        known_parts.append(predictor.known_features(chunk))
        if progress is not None:
            progress(start + len(chunk))
    if texts:
        probabilities, known = np.concatenate(probabilities_parts), np.concatenate(known_parts)
    else:
        probabilities = predictor.predict_proba(texts, batch_size=EVAL_BATCH)
        known = np.zeros(0, dtype=np.int32)
    report = evaluation_report(
        probabilities,
        predictor.classes,
        labels,
        threshold,
        oos_label,
        top_confusions,
        oos_class=model_oos,
        known_features=known,
    )
    report["model"] = predictor.name
    return report


def summary_lines(report: dict[str, Any], worst: int = 10) -> list[str]:
    """The report as text for a terminal."""
    out_of_scope = (
        f"{report['oos_examples']} out of scope, label {report['oos_label']!r}"
        if report["oos_examples"]
        else "none out of scope"
    )
    oos_class = report.get("oos_class")
    if oos_class is not None and oos_class != report["oos_label"]:
        out_of_scope += f"; the model's class {oos_class!r} falls back"
    lines = [
        f"examples     {report['examples']} ({report['in_scope_examples']} in scope, {out_of_scope})",
        f"accuracy     {_figure(report['accuracy'])}  (in scope, top intent, no threshold)",
        f"macro-F1     {_figure(report['macro_f1'])}",
    ]
    at = report["at_threshold"]
    lines.append(
        f"threshold    {threshold_text(report['threshold'])}: in-scope accuracy {_figure(at['in_scope_accuracy'])}, "
        f"in-scope fallback rate {_figure(at['in_scope_fallback_rate'])}"
    )
    if "oos_recall" in at:
        lines.append(
            f"out of scope recall {_figure(at['oos_recall'])}, precision {_figure(at['oos_precision'])}, "
            f"joint accuracy {_figure(at['joint_accuracy'])}"
        )
    if report.get("not_understood"):
        lines.append(
            f"{report['not_understood']} sentence(s) hold no feature the model knows: they always get the fallback"
        )
    unknown = report["unknown_labels"]
    if unknown:
        # the first 20 and how many more: cut without a word, the list read as all of them
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        lines.append(f"labels the model does not know (always wrong): {', '.join(unknown[:20])}{more}")
    ranked = sorted(report["per_intent"].items(), key=lambda item: (item[1]["f1"], item[0]))[:worst]
    if ranked:
        lines.append(f"lowest F1 ({len(ranked)} of {len(report['per_intent'])} intents):")
        lines.extend(
            f"  {_padded(tag, 32)} P {_short(m['precision'])}  R {m['recall']:.3f}  F1 {m['f1']:.3f}  n={m['support']}"
            for tag, m in ranked
        )
    if report["confused_pairs"]:
        lines.append("most confused (label -> predicted: count):")
        lines.extend(f"  {p['label']} -> {p['predicted']}: {p['count']}" for p in report["confused_pairs"])
    return lines


def _padded(text: str, width: int) -> str:
    """``text`` followed by spaces up to ``width`` terminal columns: ``str.ljust`` counts
    characters, and a tag in Chinese or Japanese, whose characters take two columns each, or one
    with a combining accent or a zero-width character, pushed its figures out of line."""
    return text + " " * max(0, width - _display_width(text))


def _display_width(text: str) -> int:
    """The terminal columns ``text`` takes: two for a wide or full-width character
    (:func:`unicodedata.east_asian_width` ``W`` or ``F``), none for a combining mark, a format
    character (U+200B, U+200D) or a Hangul vowel or final consonant that joins the syllable
    before it (a decomposed "안녕": its leading consonants take the syllables' two columns), one
    for any other."""
    return sum(
        0
        if unicodedata.combining(char)
        or unicodedata.category(char) in ("Mn", "Me", "Cf")
        or "\u1160" <= char <= "\u11ff"
        or "\ud7b0" <= char <= "\ud7ff"
        else 2
        if unicodedata.east_asian_width(char) in ("W", "F")
        else 1
        for char in text
    )


def _short(value: float | None) -> str:
    """A share to 3 places, or ``n/a`` (as wide) where there was nothing to measure."""
    return "  n/a" if value is None else f"{value:.3f}"


def _figure(value: float | None) -> str:
    """A share to 4 places, or ``n/a`` where there was nothing to measure."""
    return "n/a" if value is None else f"{value:.4f}"


def _trained_sha256(source: dict[str, Any]) -> str | None:
    """The sha256 of the file a model was trained on, from its manifest's ``source`` (older
    manifests keep it at the top of ``source``)."""
    data = source.get("data")
    return data.get("sha256") if isinstance(data, dict) else source.get("sha256")


def validation_file_overlap(manifest: dict[str, Any], data_sha256: str, data_format: str, split: str) -> str | None:
    """A warning when the evaluated sentences are the ones training validated on, else None:
    the val split of the CLINC150-layout file the model was trained on, or the file given as
    validation data (``source.validation``; of a CLINC150-layout file, its val split). Early
    stopping and the threshold's tuning watch them, so the figures may flatter the model."""
    source = manifest.get("source") or {}
    validation = source.get("validation")
    trained_sha256 = _trained_sha256(source)
    validated_sha256 = validation.get("sha256") if isinstance(validation, dict) else None
    # a CLINC150 file's val split validates unless validation data was given (which comes first)
    own_val_split = validation is None and trained_sha256 == data_sha256 and data_format == "clinc" and split == "val"
    given = validated_sha256 == data_sha256 and (data_format != "clinc" or split == "val")
    if not (own_val_split or given):
        return None
    return (
        "these are the sentences the model was validated on in training (early stopping and the fallback "
        "threshold's tuning, when on, watch them): the figures may flatter it; evaluate on sentences it never saw"
        + (" (the test split)" if data_format == "clinc" else "")
    )


def training_file_overlap(manifest: dict[str, Any], data_sha256: str, data_format: str, split: str) -> str | None:
    """A warning when the evaluated sentences are the model's own training data, else None.

    The manifest records the sha256 of the file the model was trained on (``source.data``); the
    same file is training data unless it is a CLINC150-layout file evaluated on a split other
    than ``train`` (its splits are disjoint).
    """
    if _trained_sha256(manifest.get("source") or {}) != data_sha256:
        return None
    if data_format == "clinc" and split != "train":
        return None
    return (
        "these are the sentences the model was trained on (the same file, by sha256): the figures "
        "measure memorisation, not how it does on new sentences"
    )
