"""Train the intent classifier: examples -> features -> batches -> weights and history.

All TensorFlow work happens in :class:`compat.classifier.ClassifierTrainer`; this module only
deals in numpy arrays, so it reads the same whatever TensorFlow runs underneath.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compat.classifier import ClassifierTrainer, NetworkSpec, OptimizerSpec
from legacy_assistant.classifier.config import TrainingConfig
from legacy_assistant.errors import TrainingError
from legacy_assistant.classifier.features import Featurizer, SparseRows
from legacy_assistant.classifier.thresholds import choose_threshold

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainedModel:
    """What training produces; :func:`legacy_assistant.classifier.artifact.export_artifact` writes it."""

    featurizer: Featurizer
    classes: list[str]
    spec: NetworkSpec
    weights: dict[str, np.ndarray]
    config: TrainingConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None  # the fallback threshold; None means config.threshold
    oos_label: str | None = None  # the out-of-scope class, when the model has one

    def __post_init__(self) -> None:
        if self.threshold is None:
            self.threshold = self.config.threshold


def network_spec(config: TrainingConfig, n_features: int, n_classes: int) -> NetworkSpec:
    return NetworkSpec(n_features, n_classes, tuple(config.hidden_units), config.dropout, config.linear_shortcut)


def optimizer_spec(config: TrainingConfig) -> OptimizerSpec:
    return OptimizerSpec(
        name=config.optimizer,
        learning_rate=config.learning_rate,
        momentum=config.momentum,
        nesterov=config.nesterov,
        label_smoothing=config.label_smoothing,
        weight_decay=config.weight_decay,
        sparse_updates=config.sparse_updates,
    )


def split_validation(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of row indices into (train, validation).

    Each class gives ``round(fraction * count)`` rows to validation but always keeps at least
    one for training, so no class disappears from training.
    """
    rng = np.random.RandomState(seed)
    train_rows: list[int] = []
    val_rows: list[int] = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        n_val = min(int(round(fraction * len(rows))), len(rows) - 1)
        val_rows.extend(rows[:n_val])
        train_rows.extend(rows[n_val:])
    return np.sort(np.asarray(train_rows, dtype=np.int64)), np.sort(np.asarray(val_rows, dtype=np.int64))


def planned_epochs(config: TrainingConfig, n_examples: int) -> int:
    """``config.epochs``, raised where needed so that training takes at least ``config.min_steps``
    optimizer steps on ``n_examples`` training examples (small data sets get more epochs)."""
    steps_per_epoch = max(1, -(-n_examples // config.batch_size))
    return max(config.epochs, -(-config.min_steps // steps_per_epoch))


def learning_rate_schedule(config: TrainingConfig, total_steps: int) -> Callable[[int], float | None]:
    """Step number (1-based) -> learning rate; ``None`` means the optimizer's constant rate.

    ``linear``: falls in a straight line from ``learning_rate`` at the first step to
    ``learning_rate / total_steps`` at the last step of training.
    """
    if config.lr_schedule == "constant":
        return lambda step: None
    return lambda step: config.learning_rate * max(total_steps - step + 1, 1) / total_steps


EVAL_BATCH = 256


def evaluate(trainer: ClassifierTrainer, rows: SparseRows, labels: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy over ``rows`` (labels int ``[n]``), dropout off.

    Rows go through in batches of similar length, so little time is spent on padding.
    """
    order = np.argsort(rows.lengths, kind="stable")
    loss_total = correct_total = 0.0
    for start in range(0, len(order), EVAL_BATCH):
        chunk = order[start : start + EVAL_BATCH]
        batch = rows.take(chunk)
        loss, accuracy = trainer.evaluate(batch.ids, batch.weights, labels[chunk])
        loss_total += loss * len(chunk)
        correct_total += accuracy * len(chunk)
    return loss_total / max(len(order), 1), correct_total / max(len(order), 1)


def predict(trainer: ClassifierTrainer, rows: SparseRows) -> np.ndarray:
    """float32 ``[n, n_classes]`` probabilities of ``rows`` (dropout off), in row order."""
    order = np.argsort(rows.lengths, kind="stable")
    out = np.zeros((len(order), trainer.spec.n_classes), dtype=np.float32)
    for start in range(0, len(order), EVAL_BATCH):
        chunk = order[start : start + EVAL_BATCH]
        batch = rows.take(chunk)
        out[chunk] = trainer.predict_proba(batch.ids, batch.weights)
    return out


BUCKET_SPAN = 32  # batches per length bucket


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.RandomState, bucket: bool) -> list[np.ndarray]:
    """One epoch's batches of row indices, every row exactly once, in random order.

    Without ``bucket`` the rows are shuffled and cut into consecutive batches (the classic
    recipe; it draws exactly one permutation from ``rng``). With ``bucket``, each span of
    ``BUCKET_SPAN`` batches of the shuffled rows is sorted by ``lengths`` (int ``[n]``, features
    per row) before it is cut, and the batch order is shuffled again: rows of similar length
    share a batch, so padding, which the network's first layer pays for, mostly disappears.
    """
    order = rng.permutation(len(lengths))
    if not bucket:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[np.ndarray] = []
    span = batch_size * BUCKET_SPAN
    for start in range(0, len(order), span):
        part = order[start : start + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def train(
    texts: Sequence[str],
    tags: Sequence[str],
    config: TrainingConfig,
    on_epoch: EpochCallback | None = None,
    validation: tuple[Sequence[str], Sequence[str]] | None = None,
    on_start: Callable[[int], None] | None = None,
    oos_label: str | None = None,
) -> TrainedModel:
    """Fit featurizer and network on ``texts`` labelled with ``tags``.

    Args:
        texts, tags: parallel training examples.
        config: every setting; ``config.seed`` makes the run repeatable bit for bit.
        on_epoch: called after each epoch with that epoch's history row.
        validation: explicit held-out ``(texts, tags)``; when absent, ``config.validation_split``
            of the training examples is held out instead (0 means no validation).
        on_start: called once before the first epoch with the number of epochs planned
            (:func:`planned_epochs`; early stopping may end training sooner).
        oos_label: the label of out-of-scope examples, if the data has any. Training examples
            with it become a class of their own (``config.oos_class``) or are left out.
            Validation examples with it tune the fallback threshold (``config.tune_threshold``).
    """
    if len(texts) != len(tags):
        raise TrainingError(f"{len(texts)} texts but {len(tags)} labels")
    texts, tags = list(texts), list(tags)
    if oos_label is not None and not config.oos_class and oos_label in tags:
        kept = [i for i, tag in enumerate(tags) if tag != oos_label]
        log.info("leaving out %d out-of-scope training examples (oos_class is off)", len(tags) - len(kept))
        texts, tags = [texts[i] for i in kept], [tags[i] for i in kept]
    classes = sorted(set(tags))
    if len(classes) < 2:
        raise TrainingError(f"training needs at least 2 intents with patterns, found {len(classes)}")
    class_index = {tag: i for i, tag in enumerate(classes)}
    oos_index = class_index.get(oos_label) if oos_label is not None else None
    labels = np.asarray([class_index[t] for t in tags], dtype=np.int32)

    # Validation rows: val_labels holds class ids; out-of-scope rows the model has no class for
    # get -1 and count for the threshold only (not for validation loss and accuracy).
    if validation is None and config.validation_split > 0:
        train_rows, val_rows = split_validation(labels, config.validation_split, config.seed)
        val_texts = [texts[i] for i in val_rows]
        val_labels = labels[val_rows]
        texts = [texts[i] for i in train_rows]
        labels = labels[train_rows]
    elif validation is not None:
        val_texts, val_tags = list(validation[0]), list(validation[1])
        if len(val_texts) != len(val_tags):
            raise TrainingError(f"validation: {len(val_texts)} texts but {len(val_tags)} labels")
        unknown = sorted(set(val_tags) - set(class_index) - {oos_label})
        if unknown:
            raise TrainingError(f"validation labels not seen in training: {', '.join(unknown[:10])}")
        val_labels = np.asarray([class_index.get(t, -1) for t in val_tags], dtype=np.int32)
    else:
        val_texts, val_labels = [], np.zeros(0, dtype=np.int32)
    val_is_oos = (val_labels == -1) if oos_index is None else (val_labels == oos_index)
    if oos_label is None:
        val_is_oos = np.zeros(len(val_labels), dtype=bool)
    scored = val_labels >= 0  # validation rows that loss and accuracy are measured on

    started = time.perf_counter()
    featurizer, x_train = Featurizer.fit_encode(texts, config.features)
    x_val = featurizer.encode(val_texts) if val_texts else None
    x_scored = x_val.take(np.flatnonzero(scored)) if x_val is not None and scored.any() else None
    y_scored = val_labels[scored]
    spec = network_spec(config, featurizer.n_features, len(classes))
    log.info(
        "training on %d examples (%d held out), %d features, %d intents",
        len(texts), len(val_texts), featurizer.n_features, len(classes),
    )

    history: list[dict[str, Any]] = []
    rng = np.random.RandomState(config.seed)
    # a stream of its own, so the classic recipe's shuffles do not depend on this option
    drop_rng = np.random.RandomState(config.seed + 1) if config.feature_dropout else None
    monitor = config.early_stopping_metric
    sign = 1.0 if monitor == "val_loss" else -1.0  # lower is better for loss, higher for accuracy
    best_score, best_weights, best_epoch, stale = np.inf, None, 0, 0
    step = 0
    epochs = planned_epochs(config, len(labels))
    if on_start is not None:
        on_start(epochs)
    schedule = learning_rate_schedule(config, -(-len(labels) // config.batch_size) * epochs)
    with ClassifierTrainer(spec, optimizer_spec(config), config.seed, batch_rows=config.batch_rows) as trainer:
        for epoch in range(1, epochs + 1):
            epoch_started = time.perf_counter()
            loss_sum = correct_sum = 0.0
            for rows in epoch_batches(x_train.lengths, config.batch_size, rng, config.bucket_by_length):
                step += 1
                batch = x_train.take(rows)
                values = batch.weights
                if drop_rng is not None:
                    keep = drop_rng.random_sample(values.shape) >= config.feature_dropout
                    values = values * keep / np.float32(1.0 - config.feature_dropout)
                loss, accuracy = trainer.train_batch(batch.ids, values, labels[rows], schedule(step))
                loss_sum += loss * len(rows)
                correct_sum += accuracy * len(rows)
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": loss_sum / len(labels),
                "accuracy": correct_sum / len(labels),
            }
            if x_scored is not None:
                row["val_loss"], row["val_accuracy"] = evaluate(trainer, x_scored, y_scored)
            row["seconds"] = time.perf_counter() - epoch_started
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if x_scored is not None and config.early_stopping_patience:
                score = sign * row[monitor]
                if score < best_score:
                    best_score, best_weights, best_epoch, stale = score, trainer.get_weights(), epoch, 0
                else:
                    stale += 1
                    if stale >= config.early_stopping_patience:
                        log.info("early stop after epoch %d; best was epoch %d", epoch, best_epoch)
                        break
        if best_weights is not None:
            trainer.set_weights(best_weights)
        weights = trainer.get_weights()
        final_loss, final_accuracy = evaluate(trainer, x_train, labels)
        val_metrics = evaluate(trainer, x_scored, y_scored) if x_scored is not None else None
        tuned = None
        if config.tune_threshold and x_val is not None and val_is_oos.any() and not val_is_oos.all():
            tuned = choose_threshold(
                predict(trainer, x_val), val_labels, val_is_oos, oos_index, config.threshold_oos_share
            )

    summary: dict[str, Any] = {
        "examples": len(texts),
        "validation_examples": len(val_texts),
        "features": featurizer.n_features,
        "classes": len(classes),
        "epochs_run": len(history),
        "best_epoch": best_epoch or len(history),
        "train_loss": final_loss,
        "train_accuracy": final_accuracy,
        "seconds": time.perf_counter() - started,
    }
    if val_metrics is not None:
        summary["val_loss"], summary["val_accuracy"] = val_metrics
    threshold = config.threshold
    if tuned is not None:
        threshold = tuned.threshold
        summary["threshold_tuning"] = {
            "oos_share": config.threshold_oos_share,
            "validation_in_scope": int((~val_is_oos).sum()),
            "validation_out_of_scope": int(val_is_oos.sum()),
            **tuned.to_dict(),
        }
        log.info(
            "threshold %.2f tuned on validation: in-scope accuracy %.4f, out-of-scope recall %.4f",
            tuned.threshold, tuned.in_scope_accuracy, tuned.oos_recall,
        )
    return TrainedModel(
        featurizer, classes, spec, weights, config, history, summary,
        threshold=threshold, oos_label=oos_label if oos_index is not None else None,
    )
