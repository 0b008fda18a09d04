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
from legacy_assistant.config import TrainingConfig
from legacy_assistant.errors import TrainingError
from legacy_assistant.features import Featurizer

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, Any]], None]


@dataclass
class TrainedModel:
    """What training produces; :func:`legacy_assistant.artifact.export_artifact` writes it."""

    featurizer: Featurizer
    classes: list[str]
    spec: NetworkSpec
    weights: dict[str, np.ndarray]
    config: TrainingConfig
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def network_spec(config: TrainingConfig, n_features: int, n_classes: int) -> NetworkSpec:
    return NetworkSpec(n_features, n_classes, tuple(config.hidden_units), config.dropout)


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


def train(
    texts: Sequence[str],
    tags: Sequence[str],
    config: TrainingConfig,
    on_epoch: EpochCallback | None = None,
    validation: tuple[Sequence[str], Sequence[str]] | None = None,
) -> TrainedModel:
    """Fit featurizer and network on ``texts`` labelled with ``tags``.

    Args:
        texts, tags: parallel training examples.
        config: every setting; ``config.seed`` makes the run repeatable bit for bit.
        on_epoch: called after each epoch with that epoch's history row.
        validation: explicit held-out ``(texts, tags)``; when absent, ``config.validation_split``
            of the training examples is held out instead (0 means no validation).
    """
    if len(texts) != len(tags):
        raise TrainingError(f"{len(texts)} texts but {len(tags)} labels")
    classes = sorted(set(tags))
    if len(classes) < 2:
        raise TrainingError(f"training needs at least 2 intents with patterns, found {len(classes)}")
    class_index = {tag: i for i, tag in enumerate(classes)}
    labels = np.asarray([class_index[t] for t in tags], dtype=np.int32)

    texts = list(texts)
    if validation is None and config.validation_split > 0:
        train_rows, val_rows = split_validation(labels, config.validation_split, config.seed)
        val_texts = [texts[i] for i in val_rows]
        val_labels = labels[val_rows]
        texts = [texts[i] for i in train_rows]
        labels = labels[train_rows]
    elif validation is not None:
        unknown = sorted(set(validation[1]) - set(class_index))
        if unknown:
            raise TrainingError(f"validation labels not seen in training: {', '.join(unknown[:10])}")
        val_texts = list(validation[0])
        val_labels = np.asarray([class_index[t] for t in validation[1]], dtype=np.int32)
    else:
        val_texts, val_labels = [], np.zeros(0, dtype=np.int32)

    started = time.perf_counter()
    featurizer = Featurizer.fit(texts, config.features)
    x_train = featurizer.encode(texts)
    x_val = featurizer.encode(val_texts) if val_texts else None
    spec = network_spec(config, featurizer.n_features, len(classes))
    log.info(
        "training on %d examples (%d held out), %d features, %d intents",
        len(texts), len(val_texts), featurizer.n_features, len(classes),
    )

    history: list[dict[str, Any]] = []
    rng = np.random.RandomState(config.seed)
    best_loss, best_weights, best_epoch, stale = np.inf, None, 0, 0
    with ClassifierTrainer(spec, optimizer_spec(config), config.seed) as trainer:
        for epoch in range(1, config.epochs + 1):
            epoch_started = time.perf_counter()
            order = rng.permutation(len(labels))
            loss_sum = correct_sum = 0.0
            for start in range(0, len(order), config.batch_size):
                rows = order[start : start + config.batch_size]
                batch = x_train.take(rows)
                loss, accuracy = trainer.train_batch(batch.ids, batch.weights, labels[rows])
                loss_sum += loss * len(rows)
                correct_sum += accuracy * len(rows)
            row: dict[str, Any] = {
                "epoch": epoch,
                "loss": loss_sum / len(labels),
                "accuracy": correct_sum / len(labels),
            }
            if x_val is not None:
                row["val_loss"], row["val_accuracy"] = trainer.evaluate(x_val.ids, x_val.weights, val_labels)
            row["seconds"] = time.perf_counter() - epoch_started
            history.append(row)
            if on_epoch is not None:
                on_epoch(row)
            if x_val is not None and config.early_stopping_patience:
                if row["val_loss"] < best_loss:
                    best_loss, best_weights, best_epoch, stale = row["val_loss"], trainer.get_weights(), epoch, 0
                else:
                    stale += 1
                    if stale >= config.early_stopping_patience:
                        log.info("early stop after epoch %d; best was epoch %d", epoch, best_epoch)
                        break
        if best_weights is not None:
            trainer.set_weights(best_weights)
        weights = trainer.get_weights()
        final_loss, final_accuracy = trainer.evaluate(x_train.ids, x_train.weights, labels)
        val_metrics = trainer.evaluate(x_val.ids, x_val.weights, val_labels) if x_val is not None else None

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
    return TrainedModel(featurizer, classes, spec, weights, config, history, summary)
