"""Train the intent classifier: examples -> features -> batches -> weights and history.

All TensorFlow work happens in :class:`compat.classifier.trainer.ClassifierTrainer`; this module
only deals in numpy arrays, so it reads the same whatever TensorFlow runs underneath.

:func:`train` runs these steps in order: :func:`label_data`, :func:`threshold_plan` (how the
fallback threshold will be chosen), :func:`fit` (:func:`featurize`, :func:`run_epochs` with batches
from :func:`training_batches` and :class:`EarlyStopping`), the threshold (:func:`tune_threshold`,
:func:`calibrate_in_scope`, or :func:`holdout_calibration`, which first trains a network of its
own on part of the data), and :func:`training_summary`. The network's shape is the config's
network options (:meth:`compat.classifier.schema.NetworkSpec.from_options`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from compat.classifier.schema import NetworkSpec
from compat.classifier.trainer import ClassifierTrainer, OptimizerSpec
from legacy_assistant.classifier.config import TrainingConfig
from legacy_assistant.classifier.features import Featurizer, NoFeaturesError, SparseRows, length_sorted_batches
from legacy_assistant.classifier.intents import looks_of
from legacy_assistant.classifier.thresholds import (
    InScopeCalibration,
    NothingUnderstoodError,
    ThresholdPoint,
    choose_threshold,
    in_scope_threshold,
)
from legacy_assistant.common.fields import shown
from legacy_assistant.errors import TrainingError
from legacy_assistant.text.processing import TextConfig, TextProcessor
from legacy_assistant.text.scripts import CHINESE_OR_JAPANESE_RUN, unspaced_runs

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict[str, Any]], None]
StartCallback = Callable[[int], None]


UNLEARNABLE = (
    "no pattern holds a word the classifier keeps (only punctuation or emoji, or words too rare for min_count); "
    "give {them} patterns with words"
)
# Featureless patterns named one by one, up to this many; the rest are counted.
FEATURELESS_NAMED = 10


class UnlearnableIntentsError(TrainingError):
    """Intents whose every training example encodes to no feature at all: no message could ever
    reach them. ``tags`` names them in class order, for callers that can say where each is
    defined (the train command names the intents file and each intent's index)."""

    def __init__(self, tags: Sequence[str]) -> None:
        self.tags = list(tags)
        super().__init__(
            f"intent(s) {', '.join(map(repr, self.tags))}: field 'patterns': " + UNLEARNABLE.format(them="them")
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from its tags, not from the message (which __init__ does not take): a process
        # pool whose worker raised it broke instead of raising it
        return type(self), (self.tags,), self.__dict__


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


def optimizer_spec(config: TrainingConfig) -> OptimizerSpec:
    return OptimizerSpec(
        name=config.optimizer,
        learning_rate=config.learning_rate,
        momentum=config.momentum,
        nesterov=config.nesterov,
        label_smoothing=config.label_smoothing,
        weight_decay=config.weight_decay,
        sparse_updates=config.sparse_updates,
        decay=config.lr_decay if config.optimizer == "sgd" else 0.0,
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
    loss_total = correct_total = 0.0
    for chunk, batch in length_sorted_batches(rows, EVAL_BATCH):
        loss, accuracy = trainer.evaluate(batch.ids, batch.weights, labels[chunk])
        loss_total += loss * len(chunk)
        correct_total += accuracy * len(chunk)
    return loss_total / max(len(rows), 1), correct_total / max(len(rows), 1)


def predict(trainer: ClassifierTrainer, rows: SparseRows) -> np.ndarray:
    """float32 ``[n, n_classes]`` probabilities of ``rows`` (dropout off), in row order."""
    out = np.zeros((len(rows), trainer.spec.n_classes), dtype=np.float32)
    for chunk, batch in length_sorted_batches(rows, EVAL_BATCH):
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


@dataclass(frozen=True)
class SetAside:
    """A split that took training examples: ``what`` it is, for messages (``"the validation
    split (validation_split 0.5)"``), and the examples before it (``labels`` int32 ``[n]``)."""

    what: str
    texts: list[str]
    labels: np.ndarray


@dataclass
class LabelledData:
    """Training and validation examples as the network sees their labels.

    Attributes:
        texts: training sentences; ``labels`` int32 ``[n]`` their class ids.
        classes: class names, sorted; a class id indexes this list.
        oos_index: class id of the out-of-scope class, or ``None`` when the model has none.
        val_texts: validation sentences; ``val_labels`` int32 ``[m]`` their class ids, -1 for
            out-of-scope rows the model has no class for (they count for the threshold only).
        val_is_oos: bool ``[m]``, the out-of-scope validation rows.
        set_aside: when ``texts`` are what a split of the data left for training, the split and
            the data before it (to tell an intent the split left without a learnable example
            from one the data gives none).
        source: what the training data is (a file name), for warnings; empty when not known.
        warn_featureless: whether featurizing warns about patterns with no kept feature (not
            for the threshold hold-out's network: the final training warns about the data).
        places: where each of ``texts`` is in ``source`` (``intent #2 ('greeting') field
            'patterns'[3]``, ``line 4``), for warnings; empty when not known.
    """

    texts: list[str]
    labels: np.ndarray
    classes: list[str]
    oos_index: int | None
    val_texts: list[str]
    val_labels: np.ndarray
    val_is_oos: np.ndarray
    set_aside: SetAside | None = None
    source: str = ""
    warn_featureless: bool = True
    places: list[str] = field(default_factory=list)

    @property
    def scored(self) -> np.ndarray:
        """bool ``[m]``: validation rows that loss and accuracy are measured on."""
        return self.val_labels >= 0


# Validation sentences that are also training sentences measure memory, not new sentences.
# When more than this share of explicit validation sentences are training sentences, training is
# refused: early stopping and the threshold would be chosen on what the model memorised (a
# threshold of 0.00 and accuracy 1.000, typically). Fewer are only warned about with their count:
# real data repeats a few sentences across its splits, which skews the figures only a little.
MAX_VALIDATION_OVERLAP = 0.5
DEFAULT_NAMES = ("the training data", "the validation data")  # in messages, when the caller gives none


def validation_overlap(train_texts: Sequence[str], val_texts: Sequence[str], text: TextConfig) -> int:
    """How many of ``val_texts`` are one of ``train_texts`` once normalised as the featurizer
    normalises them (``text``: Unicode form, case, punctuation, stems): the network sees the same
    input for both."""
    processor = TextProcessor(text)
    seen = {tuple(processor.tokens(t)) for t in train_texts}
    return sum(tuple(processor.tokens(t)) in seen for t in val_texts)


def check_validation_overlap(
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    config: TrainingConfig,
    names: tuple[str, str],
    split: bool,
) -> None:
    """Refuse (:class:`TrainingError`) validation data most of whose sentences are training
    sentences (:data:`MAX_VALIDATION_OVERLAP`), warn about a few. A ``split`` off the training
    data only repeats sentences the training data repeats: warned about, never refused."""
    shared = validation_overlap(train_texts, val_texts, config.features.text)
    if not shared:
        return
    training_name, validation_name = names
    if split:
        log.warning(
            "%d of %d sentences held out by validation_split %s (--validation-split) are repeated in the rest of "
            "%s: validation figures, early stopping and the threshold see them as known sentences",
            shared,
            len(val_texts),
            config.validation_split,
            training_name,
        )
        return
    share = shared / len(val_texts)
    if share > MAX_VALIDATION_OVERLAP:
        raise TrainingError(
            f"{validation_name}: {shared} of {len(val_texts)} validation sentences ({share:.0%}) are also training "
            f"sentences of {training_name} (the same words once normalised): early stopping and the threshold "
            "would be tuned on sentences the model memorised; give validation sentences it does not train on"
        )
    log.warning(
        "%s: %d of %d validation sentences are also training sentences of %s: validation figures, early "
        "stopping and the threshold are somewhat optimistic",
        validation_name,
        shared,
        len(val_texts),
        training_name,
    )


def label_data(
    texts: Sequence[str],
    tags: Sequence[str],
    config: TrainingConfig,
    validation: tuple[Sequence[str], Sequence[str]] | None,
    oos_label: str | None,
    names: tuple[str, str] | None = None,
    places: Sequence[str] | None = None,
) -> LabelledData:
    """Class ids for the examples, and the validation rows (given, or split off by
    ``config.validation_split``); out-of-scope training examples are kept as a class of their
    own or left out (``config.oos_class``). Arguments as in :func:`train`; validation sentences
    that are training sentences are refused or warned about (:func:`check_validation_overlap`)."""
    if len(texts) != len(tags):
        raise TrainingError(f"{len(texts)} texts but {len(tags)} labels")
    located = list(places) if places is not None else []  # a list: an array has no truth value
    if located and len(located) != len(texts):
        raise TrainingError(f"{len(texts)} texts but {len(located)} places")
    texts, tags = list(texts), list(tags)
    if oos_label is not None and not config.oos_class and oos_label in tags:
        kept = [i for i, tag in enumerate(tags) if tag != oos_label]
        log.info("leaving out %d out-of-scope training examples (oos_class is off)", len(tags) - len(kept))
        texts, tags = [texts[i] for i in kept], [tags[i] for i in kept]
        located = [located[i] for i in kept] if located else []
    classes = sorted(set(tags))
    if len(classes) < 2:
        where = f"{names[0]}: " if names else ""
        found = f" ({', '.join(map(repr, classes))})" if classes else ""
        raise TrainingError(f"{where}training needs at least 2 intents with patterns, found {len(classes)}{found}")
    class_index = {tag: i for i, tag in enumerate(classes)}
    oos_index = class_index.get(oos_label) if oos_label is not None else None
    labels = np.asarray([class_index[t] for t in tags], dtype=np.int32)

    set_aside = None
    if validation is None and config.validation_split > 0:
        train_rows, val_rows = split_validation(labels, config.validation_split, config.seed)
        set_aside = SetAside(f"the validation split (validation_split {config.validation_split:g})", texts, labels)
        val_texts = [texts[i] for i in val_rows]
        val_labels = labels[val_rows]
        texts = [texts[i] for i in train_rows]
        labels = labels[train_rows]
        located = [located[i] for i in train_rows] if located else []
        if not val_texts:  # asked for, yet none: say so rather than train as if it were off
            log.warning(
                "validation_split %s (--validation-split) held out no examples: every intent keeps at least one "
                "for training and none has enough to give one; training runs without validation data",
                config.validation_split,
            )
        else:
            check_validation_overlap(texts, val_texts, config, names or DEFAULT_NAMES, split=True)
    elif validation is not None:
        if config.validation_split > 0:  # given validation data comes first (docs/CLASSIFIER.md: "Which data is used")
            log.warning(
                "validation_split %s (--validation-split) is not used: validation data is given%s and comes first",
                config.validation_split,
                f" ({names[1]})" if names else "",
            )
        val_texts, val_tags = list(validation[0]), list(validation[1])
        if len(val_texts) != len(val_tags):
            raise TrainingError(f"validation: {len(val_texts)} texts but {len(val_tags)} labels")
        unknown = sorted(set(val_tags) - set(class_index) - {oos_label})
        if unknown:
            where = f"{names[1]}: " if names else ""
            looks = {looks_of(tag): tag for tag in class_index}
            alike = [f"{tag!r} looks like {looks[looks_of(tag)]!r}" for tag in unknown[:10] if looks_of(tag) in looks]
            raise TrainingError(
                f"{where}validation labels not seen in training: {', '.join(unknown[:10])}"
                + (f" (training data: {names[0]})" if names else "")
                + (
                    f"; {', '.join(alike)}: labels may not differ only in case, Unicode form or invisible characters"
                    if alike
                    else ""
                )
            )
        if val_texts:
            check_validation_overlap(texts, val_texts, config, names or DEFAULT_NAMES, split=False)
        val_labels = np.asarray([class_index.get(t, -1) for t in val_tags], dtype=np.int32)
    else:
        val_texts, val_labels = [], np.zeros(0, dtype=np.int32)
    if oos_label is None:
        val_is_oos = np.zeros(len(val_labels), dtype=bool)
    else:
        val_is_oos = (val_labels == -1) if oos_index is None else (val_labels == oos_index)
    return LabelledData(
        texts,
        labels,
        classes,
        oos_index,
        val_texts,
        val_labels,
        val_is_oos,
        set_aside,
        names[0] if names else "",
        places=located,
    )


@dataclass
class Features:
    """The examples' features.

    Attributes:
        featurizer: fitted on the training texts.
        train: the training rows.
        val: every validation row, or ``None`` without validation data.
        scored: the validation rows with a class (:attr:`LabelledData.scored`), or ``None``
            when there are none; ``scored_labels`` int32 their class ids.
    """

    featurizer: Featurizer
    train: SparseRows
    val: SparseRows | None
    scored: SparseRows | None
    scored_labels: np.ndarray

    def val_understood(self) -> np.ndarray:
        """bool ``[n_val]``: which validation texts the model understands (a text that is not
        gets the fallback whatever the threshold)."""
        assert self.val is not None
        return self.featurizer.known_counts(self.val) > 0


def featurize(data: LabelledData, config: TrainingConfig) -> Features:
    """Fit the featurizer on the training texts and encode both sets."""
    try:
        featurizer, x_train = Featurizer.fit_encode(data.texts, config.features)
    except NoFeaturesError:  # every class is unlearnable: name them, as when only some are
        raise UnlearnableIntentsError(list(data.classes)) from None
    known = featurizer.known_counts(x_train)
    mute = [tag for index, tag in enumerate(data.classes) if not known[data.labels == index].any()]
    if mute:  # every input of such a class is the empty one: no message could ever reach it
        if data.set_aside is not None:
            _refuse_set_aside(data.set_aside, data.classes, mute, config, data.source)
        raise UnlearnableIntentsError(mute)
    if data.warn_featureless:
        _warn_featureless(data, np.flatnonzero(known == 0))
        _warn_unspaced_script(data, featurizer)
    x_val = featurizer.encode(data.val_texts) if data.val_texts else None
    scored = data.scored
    x_scored = x_val.take(np.flatnonzero(scored)) if x_val is not None and scored.any() else None
    return Features(featurizer, x_train, x_val, x_scored, data.val_labels[scored])


def _holdout_set_aside(data: LabelledData, config: TrainingConfig) -> SetAside:
    """What the threshold hold-out takes from: the training data, or, after a validation split,
    the data before that split (both took examples, so both are named)."""
    what = f"the threshold hold-out (threshold_holdout {config.threshold_holdout:g})"
    before = data.set_aside
    if before is None:
        return SetAside(what, data.texts, data.labels)
    return SetAside(f"{before.what} and {what}", before.texts, before.labels)


def _refuse_set_aside(
    set_aside: SetAside, classes: Sequence[str], mute: Sequence[str], config: TrainingConfig, source: str = ""
) -> None:
    """Raise for ``mute`` classes, which have no learnable training example after a split: as
    the data's fault (:class:`UnlearnableIntentsError`) for those with none before it either,
    else as the split's (the data is fine; a seed or a smaller split would do)."""
    try:
        featurizer, rows = Featurizer.fit_encode(set_aside.texts, config.features)
    except NoFeaturesError:
        raise UnlearnableIntentsError(list(mute)) from None
    known = featurizer.known_counts(rows)
    index = {tag: i for i, tag in enumerate(classes)}
    always = [tag for tag in mute if not known[set_aside.labels == index[tag]].any()]
    if always:
        raise UnlearnableIntentsError(always)
    raise TrainingError(
        (f"{source}: " if source else "")
        + f"{set_aside.what} took every example that holds a word the classifier keeps of intent(s) "
        f"{', '.join(map(repr, mute))}, leaving them only examples of punctuation, emoji or words too rare "
        "for min_count to train on; give them more examples with words, or set aside fewer"
    )


FEATURELESS_FLAG = "featureless_pattern"  # on those warnings' records, for callers that filter them


def _warn_featureless(data: LabelledData, rows: np.ndarray) -> None:
    """Log a warning for training patterns with no feature the classifier keeps: each teaches the
    model only that an empty message is its intent, which ``parse`` then ranks first for any
    message of emoji or punctuation (the dialogue answers those with the fallback). Each is named
    by file and place in it where known (``intents.json: intent #2 ('greeting') field
    'patterns'[3]: ...``)."""
    where = f"{data.source}: " if data.source else ""
    for row in rows[:FEATURELESS_NAMED]:
        log.warning(
            "%straining pattern %s of intent %s holds no word the classifier keeps (punctuation and emoji are "
            "dropped, rare words cut by min_count): it only teaches that an empty message is that intent",
            where + (f"{data.places[row]}: " if data.places else ""),
            shown(data.texts[row]),
            shown(data.classes[data.labels[row]]),
            extra={FEATURELESS_FLAG: True},
        )
    if len(rows) > FEATURELESS_NAMED:
        log.warning(
            "%s%d more training patterns hold no word the classifier keeps",
            where,
            len(rows) - FEATURELESS_NAMED,
            extra={FEATURELESS_FLAG: True},
        )


def _warn_unspaced_script(data: LabelledData, featurizer: Featurizer) -> None:
    """Warn when features of whole words only (no character n-grams) meet patterns in a script
    written without spaces: the tokenizer reads each run of it (most often the whole sentence)
    as one word, so only a message holding a pattern's whole phrase, spelt the same, is
    understood; the warning names the settings that read such text."""
    config = featurizer.config
    if config.char_ngrams is not None:
        return  # the character n-grams of the runs carry such text
    runs = unspaced_runs(data.texts, featurizer.processor.tokens)
    if not runs:
        return
    tokenizer = config.text.tokenizer
    if tokenizer != "unicode" and any(CHINESE_OR_JAPANESE_RUN.search(run) for run in runs):
        remedy = (
            "--tokenizer unicode (each Chinese or Japanese character a word) or the ngrams preset (character n-grams)"
        )
    else:
        remedy = "the ngrams preset (character n-grams)"
    log.warning(
        "%s%d of %d training patterns hold text written without spaces between words (Chinese, Japanese, "
        "Thai, ...) that tokenizer %r reads as one word each run (%s): a message is understood only where "
        "it holds such a run whole, as written in a pattern; train with %s",
        f"{data.source}: " if data.source else "",
        len(runs),
        len(data.texts),
        tokenizer,
        shown(runs[0]),
        remedy,
        extra={FEATURELESS_FLAG: True},
    )


def training_batches(
    rows: SparseRows,
    config: TrainingConfig,
    rng: np.random.RandomState,
    drop_rng: np.random.RandomState | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch's batches (:func:`epoch_batches`) as ``(row indices [b], ids, weights)``, ids
    and weights ``[b, width]``; with ``drop_rng``, each feature is dropped with probability
    ``config.feature_dropout`` and the rest scaled up to keep the expected sum."""
    for indices in epoch_batches(rows.lengths, config.batch_size, rng, config.bucket_by_length):
        batch = rows.take(indices)
        values = batch.weights
        if drop_rng is not None:
            keep = drop_rng.random_sample(values.shape) >= config.feature_dropout
            values = values * keep / np.float32(1.0 - config.feature_dropout)
        yield indices, batch.ids, values


class EarlyStopping:
    """Watches ``config.early_stopping_metric`` after each epoch, keeps the best epoch's weights,
    and says when ``config.early_stopping_patience`` epochs in a row did not improve on it."""

    def __init__(self, config: TrainingConfig) -> None:
        self.metric = config.early_stopping_metric
        self.patience = config.early_stopping_patience
        self._sign = 1.0 if self.metric == "val_loss" else -1.0  # lower is better for loss, higher for accuracy
        self._best_score = np.inf
        self._stale = 0
        self.best_epoch = 0
        self.best_weights: dict[str, np.ndarray] | None = None

    def should_stop(self, row: dict[str, Any], trainer: ClassifierTrainer) -> bool:
        """Record the epoch's history ``row``; ``True`` when training should end."""
        score = self._sign * row[self.metric]
        if score < self._best_score:
            self._best_score, self.best_epoch, self._stale = score, row["epoch"], 0
            self.best_weights = trainer.get_weights()
            return False
        self._stale += 1
        return self._stale >= self.patience


WITHIN_EPOCH_LOG_SECONDS = 30.0  # an epoch longer than this says where it stands this often
# A run whose kept epoch's training loss is more than this many times the loss it started at has
# not learned, its weights grew: a learning rate of 1e9 ended at a loss of 5e9 against a start of
# 3.6, and its network answered everything, out of scope too, at confidence 1.00 (its train
# accuracy read 1.000). A run that learns ends below its start, and one that learns nothing near it.
RUNAWAY_LOSS_FACTOR = 2.0


def run_epochs(
    trainer: ClassifierTrainer,
    features: Features,
    labels: np.ndarray,
    config: TrainingConfig,
    epochs: int,
    on_epoch: EpochCallback | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Train up to ``epochs`` epochs; returns the history rows and the best epoch (0 without
    early stopping). With early stopping, the trainer ends holding the best epoch's weights."""
    history: list[dict[str, Any]] = []
    rng = np.random.RandomState(config.seed)
    # a stream of its own, so the classic recipe's shuffles do not depend on this option
    drop_rng = np.random.RandomState(config.seed + 1) if config.feature_dropout else None
    schedule = learning_rate_schedule(config, -(-len(labels) // config.batch_size) * epochs)
    stopping = EarlyStopping(config) if features.scored is not None and config.early_stopping_patience else None
    step = 0
    start_loss: float | None = None  # the first batch's, taken before its step: the untrained network's
    batches = -(-len(labels) // config.batch_size)
    for epoch in range(1, epochs + 1):
        epoch_started = said_at = time.perf_counter()
        loss_sum = correct_sum = 0.0
        for batch, (rows, ids, values) in enumerate(training_batches(features.train, config, rng, drop_rng), 1):
            step += 1
            loss, accuracy = trainer.train_batch(ids, values, labels[rows], schedule(step))
            if not math.isfinite(loss):
                # every later step and prediction would be NaN too, and a NaN model falls back on
                # every message while evaluate's threshold comparisons take NaN for confident
                raise TrainingError(
                    f"training diverged at epoch {epoch}, batch {batch} (loss {loss}); lower learning_rate"
                )
            if start_loss is None:
                start_loss = loss
            loss_sum += loss * len(rows)
            correct_sum += accuracy * len(rows)
            if time.perf_counter() - said_at >= WITHIN_EPOCH_LOG_SECONDS:
                # a large model's epoch takes minutes, and the progress bar counts epochs
                said_at = time.perf_counter()
                log.info("epoch %d/%d: batch %d/%d", epoch, epochs, batch, batches)
        row: dict[str, Any] = {"epoch": epoch, "loss": loss_sum / len(labels), "accuracy": correct_sum / len(labels)}
        if features.scored is not None:
            row["val_loss"], row["val_accuracy"] = evaluate(trainer, features.scored, features.scored_labels)
        row["seconds"] = time.perf_counter() - epoch_started
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if stopping is not None and stopping.should_stop(row, trainer):
            log.info("early stop after epoch %d; best was epoch %d", epoch, stopping.best_epoch)
            break
    kept = stopping.best_epoch if stopping is not None and stopping.best_weights is not None else len(history)
    if kept:  # the epoch whose weights training ends with: the best one with early stopping, else the last
        _check_learned(history[kept - 1], start_loss, trainer.spec.n_classes)
    if stopping is None:
        return history, 0
    if stopping.best_weights is not None:
        trainer.set_weights(stopping.best_weights)
    return history, stopping.best_epoch


def _check_learned(kept: dict[str, Any], start_loss: float | None, n_classes: int) -> None:
    """:class:`TrainingError` when the kept epoch's training loss is more than
    :data:`RUNAWAY_LOSS_FACTOR` times the loss training started at: the first batch's, or that
    of a uniform guess (the log of the number of classes) where that is higher, so that a first
    batch that happens to start low cannot make a run that learns look like one that ran away."""
    if start_loss is None:
        return
    start = max(start_loss, math.log(max(n_classes, 2)))
    if kept["loss"] > RUNAWAY_LOSS_FACTOR * start:
        raise TrainingError(
            f"training diverged: the loss of epoch {kept['epoch']} ({kept['loss']:.4g}) is far above the "
            f"{start:.4g} it started at (the weights grew instead of learning); lower learning_rate"
        )


def tune_threshold(
    probabilities: np.ndarray, data: LabelledData, config: TrainingConfig, understood: np.ndarray | None = None
) -> ThresholdPoint:
    """The fallback threshold chosen on the validation rows (:func:`choose_threshold`), from the
    model's ``probabilities`` (float ``[m, n_classes]``) of every validation row; the rows must
    mix in-scope and out-of-scope sentences (:func:`threshold_plan` says when they do).
    ``understood`` (bool ``[m]``): rows with a feature the model knows; the others fall back at
    every threshold, as in the dialogue (by default all are understood)."""
    return choose_threshold(
        probabilities, data.val_labels, data.val_is_oos, data.oos_index, config.threshold_oos_share, understood
    )


@dataclass(frozen=True)
class ThresholdPlan:
    """How :func:`train` chooses the fallback threshold.

    Attributes:
        method: ``oos_validation`` (tuned on validation rows that mix in-scope and out-of-scope
            sentences), ``in_scope_validation`` (calibrated on the in-scope validation rows),
            ``in_scope_holdout`` (calibrated on a stratified hold-out of the training data, by a
            model trained on the rest) or ``fixed`` (``config.threshold``).
        reason: why, in words (stored in the manifest).
        holdout_sentences: in-scope sentences a hold-out would hold (0 when none is taken).
    """

    method: str
    reason: str
    holdout_sentences: int = 0


def holdout_rows(data: LabelledData, config: TrainingConfig) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of ``data``'s training examples as (kept for training, held out): a
    stratified ``config.threshold_holdout`` (:func:`split_validation`, seed ``config.seed``),
    which keeps at least one example of every class for training."""
    return split_validation(data.labels, config.threshold_holdout, config.seed)


def threshold_plan(data: LabelledData, config: TrainingConfig) -> ThresholdPlan:
    """Decide how the threshold is chosen, before any training (``config.threshold_from``).

    ``fixed`` (or ``tune_threshold`` off) keeps ``config.threshold``. ``auto`` takes the first
    that applies: validation rows with both in-scope and out-of-scope sentences tune it as
    before; else at least ``threshold_min_sentences`` in-scope validation rows calibrate it; else,
    when a hold-out of the training data would hold that many in-scope sentences, the hold-out
    does; else the fixed threshold stays (small data: a quantile of a few dozen sentences says
    little). ``oos_validation`` and ``in_scope`` ask for that method and raise
    :class:`TrainingError` when the data cannot give it; ``in_scope`` needs one sentence, not
    ``threshold_min_sentences``.
    """
    source = config.threshold_from
    if source == "fixed":
        return ThresholdPlan("fixed", "threshold_from is 'fixed'")
    if not config.tune_threshold:
        return ThresholdPlan("fixed", "tune_threshold is off")
    n_val_oos = int(data.val_is_oos.sum())
    n_val_in = len(data.val_is_oos) - n_val_oos
    if source in ("auto", "oos_validation") and n_val_oos and n_val_in:
        return ThresholdPlan(
            "oos_validation", f"validation data with {n_val_in} in-scope and {n_val_oos} out-of-scope sentences"
        )
    if source == "oos_validation":
        raise TrainingError(
            "threshold_from 'oos_validation' needs validation data with both in-scope and out-of-scope "
            f"sentences; it has {n_val_in} in scope and {n_val_oos} out of scope"
        )
    minimum = config.threshold_min_sentences if source == "auto" else 1
    if n_val_in >= minimum:
        unused = f" (its {n_val_oos} out-of-scope ones unused)" if n_val_oos else ", none out of scope"
        return ThresholdPlan("in_scope_validation", f"{n_val_in} in-scope validation sentences{unused}")
    _, held = holdout_rows(data, config)
    n_held = int((data.labels[held] != data.oos_index).sum()) if data.oos_index is not None else len(held)
    if n_held >= minimum:
        return ThresholdPlan(
            "in_scope_holdout",
            f"no out-of-scope validation data; {n_held} in-scope sentences in a "
            f"{config.threshold_holdout:.0%} hold-out of the training data",
            holdout_sentences=n_held,
        )
    if source == "in_scope":
        in_scope = data.labels if data.oos_index is None else data.labels[data.labels != data.oos_index]
        largest = int(np.bincount(in_scope).max()) if len(in_scope) else 0
        share = config.threshold_holdout
        raise TrainingError(
            "threshold_from 'in_scope' needs in-scope validation sentences or a hold-out of the training data "
            f"that holds one: a {share:.0%} hold-out takes round({share:g} x n) of an intent's n examples "
            f"(keeping one for training), none here, where the largest intent has {largest}; give validation "
            "data, or a larger threshold_holdout"
        )
    return ThresholdPlan(
        "fixed",
        f"too few in-scope sentences to calibrate on ({n_val_in} in validation, {n_held} in a "
        f"{config.threshold_holdout:.0%} hold-out; threshold_min_sentences is {config.threshold_min_sentences})",
    )


@dataclass
class Fitted:
    """One trained network and what was measured on it.

    Attributes:
        features: the fitted featurizer and encoded rows; ``spec`` the network's shape.
        weights: variable name -> array, the kept epoch's.
        history: one row per epoch; ``best_epoch`` 0 without early stopping.
        train_metrics: (loss, accuracy) on the training rows, dropout off.
        val_metrics: (loss, accuracy) on the scored validation rows, or ``None``.
        val_probabilities: float ``[m, n_classes]`` of every validation row, or ``None``.
        predicted: float ``[k, n_classes]`` of the ``also_predict`` texts, or ``None``.
    """

    features: Features
    spec: NetworkSpec
    weights: dict[str, np.ndarray]
    history: list[dict[str, Any]]
    best_epoch: int
    train_metrics: tuple[float, float]
    val_metrics: tuple[float, float] | None
    val_probabilities: np.ndarray | None
    predicted: np.ndarray | None


def fit(
    data: LabelledData,
    config: TrainingConfig,
    on_epoch: EpochCallback | None = None,
    on_start: StartCallback | None = None,
    also_predict: Sequence[str] | None = None,
) -> Fitted:
    """Featurize ``data``, train a network on its training rows and measure it."""
    features = featurize(data, config)
    spec = NetworkSpec.from_options(features.featurizer.n_features, len(data.classes), config)
    log.info(
        "training on %d examples (%d held out), %d features, %d intents",
        len(data.texts),
        len(data.val_texts),
        features.featurizer.n_features,
        len(data.classes),
    )
    epochs = planned_epochs(config, len(data.labels))
    if on_start is not None:
        on_start(epochs)
    with ClassifierTrainer(spec, optimizer_spec(config), config.seed, batch_rows=config.batch_rows) as trainer:
        history, best_epoch = run_epochs(trainer, features, data.labels, config, epochs, on_epoch)
        weights = trainer.get_weights()
        train_metrics = evaluate(trainer, features.train, data.labels)
        val_metrics = None
        if features.scored is not None:
            val_metrics = evaluate(trainer, features.scored, features.scored_labels)
        val_probabilities = predict(trainer, features.val) if features.val is not None else None
        predicted = None
        if also_predict is not None:
            predicted = predict(trainer, features.featurizer.encode(list(also_predict)))
    return Fitted(
        features, spec, weights, history, best_epoch, train_metrics, val_metrics, val_probabilities, predicted
    )


def calibrate_in_scope(
    probabilities: np.ndarray,
    labels: np.ndarray,
    oos_index: int | None,
    config: TrainingConfig,
    understood: np.ndarray,
) -> InScopeCalibration:
    """:func:`in_scope_threshold` over the in-scope rows of ``probabilities`` (float ``[m,
    n_classes]``, labels int ``[m]``; rows labelled ``oos_index`` or -1 are left out);
    ``understood`` (bool ``[m]``) marks the rows with a feature the model knows."""
    in_scope = labels >= 0
    if oos_index is not None:
        in_scope &= labels != oos_index
    return in_scope_threshold(
        probabilities[in_scope], config.threshold_fallback_rate, labels[in_scope], understood[in_scope], oos_index
    )


def _fixed_instead(plan: ThresholdPlan, exc: NothingUnderstoodError, config: TrainingConfig) -> ThresholdPlan:
    """The fixed threshold where ``auto`` found no sentence to calibrate on that the model
    understands (asked for by name, ``in_scope`` raises instead: it cannot be given)."""
    if config.threshold_from != "auto":
        raise exc
    log.warning("%s; the fixed threshold %.2f is kept", exc, config.threshold)
    return ThresholdPlan("fixed", f"{plan.method}: {exc}")


def holdout_calibration(
    data: LabelledData,
    config: TrainingConfig,
    on_epoch: EpochCallback | None = None,
    on_start: StartCallback | None = None,
) -> InScopeCalibration:
    """Train on the training examples less a hold-out (:func:`holdout_rows`) and calibrate the
    threshold on the held-out in-scope sentences. The network is trained as the final one will
    be (same recipe and seed, no early stopping, which has nothing to watch in the final run);
    trained on all the data, the final model is, if anything, surer of new sentences, so fewer
    of them than the target fall back."""
    kept, held = holdout_rows(data, config)
    part = LabelledData(
        texts=[data.texts[i] for i in kept],
        labels=data.labels[kept],
        classes=data.classes,
        oos_index=data.oos_index,
        val_texts=[],
        val_labels=np.zeros(0, dtype=np.int32),
        val_is_oos=np.zeros(0, dtype=bool),
        set_aside=_holdout_set_aside(data, config),
        source=data.source,
        warn_featureless=False,  # the final training warns about them, once
    )
    log.info("threshold: training on %d examples to calibrate on %d held out", len(kept), len(held))
    fitted = fit(
        part,
        config.with_overrides(early_stopping_patience=0),
        on_epoch,
        on_start,
        also_predict=[data.texts[i] for i in held],
    )
    assert fitted.predicted is not None
    # a held-out sentence with no feature the model knows falls back whatever the threshold
    featurizer = fitted.features.featurizer
    understood = featurizer.known_counts(featurizer.encode([data.texts[i] for i in held])) > 0
    return calibrate_in_scope(fitted.predicted, data.labels[held], data.oos_index, config, understood)


def threshold_record(
    plan: ThresholdPlan,
    threshold: float,
    calibration: InScopeCalibration | None,
    config: TrainingConfig,
) -> dict[str, Any]:
    """The manifest's ``summary.threshold_calibration``: how the threshold was chosen."""
    record: dict[str, Any] = {"method": plan.method, "threshold": threshold, "reason": plan.reason}
    if calibration is not None:
        record.update(
            fallback_rate=calibration.fallback_rate,
            sentences=calibration.sentences,
            fallback_share=calibration.fallback_share,
            accuracy=calibration.accuracy,
            accuracy_at_threshold=calibration.accuracy_at_threshold,
        )
        if plan.method == "in_scope_holdout":
            record.update(holdout=config.threshold_holdout, seed=config.seed)
    return record


def training_summary(
    data: LabelledData,
    fitted: Fitted,
    tuned: ThresholdPoint | None,
    threshold: dict[str, Any],
    config: TrainingConfig,
    seconds: float,
) -> dict[str, Any]:
    """The manifest's ``summary``: sizes, epochs, final figures and how the threshold was chosen
    (``threshold_calibration``, plus ``threshold_tuning`` when tuned on out-of-scope validation)."""
    summary: dict[str, Any] = {
        "examples": len(data.texts),
        "validation_examples": len(data.val_texts),
        "features": fitted.features.featurizer.n_features,
        "classes": len(data.classes),
        "epochs_run": len(fitted.history),
        "best_epoch": fitted.best_epoch or len(fitted.history),
        "train_loss": fitted.train_metrics[0],
        "train_accuracy": fitted.train_metrics[1],
        "seconds": seconds,
    }
    if fitted.val_metrics is not None:
        summary["val_loss"], summary["val_accuracy"] = fitted.val_metrics
    if tuned is not None:
        summary["threshold_tuning"] = {
            "oos_share": config.threshold_oos_share,
            "validation_in_scope": int((~data.val_is_oos).sum()),
            "validation_out_of_scope": int(data.val_is_oos.sum()),
            **tuned.to_dict(),
        }
    summary["threshold_calibration"] = threshold
    return summary


def train(
    texts: Sequence[str],
    tags: Sequence[str],
    config: TrainingConfig,
    on_epoch: EpochCallback | None = None,
    validation: tuple[Sequence[str], Sequence[str]] | None = None,
    on_start: StartCallback | None = None,
    oos_label: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    names: tuple[str, str] | None = None,
    places: Sequence[str] | None = None,
) -> TrainedModel:
    """Fit featurizer and network on ``texts`` labelled with ``tags``, and choose the fallback
    threshold (:func:`threshold_plan`).

    Args:
        texts, tags: parallel training examples.
        config: every setting; ``config.seed`` makes the run repeatable bit for bit.
        on_epoch: called after each epoch with that epoch's history row.
        validation: explicit held-out ``(texts, tags)``; when absent, ``config.validation_split``
            of the training examples is held out instead (0 means no validation).
        on_start: called before the first epoch of each network trained with the number of
            epochs planned (:func:`planned_epochs`; early stopping may end training sooner).
            Calibrating on a hold-out trains two networks: one on part of the data, then the
            final one on all of it, whose weights equal those of a run without calibration.
        oos_label: the label of out-of-scope examples, if the data has any. Training examples
            with it become a class of their own (``config.oos_class``) or are left out.
            Validation examples with it tune the fallback threshold.
        on_stage: called with ``"threshold hold-out"`` before training the hold-out network and
            with ``"training"`` before the final one, when there is a hold-out network.
        names: what the training and the validation data are (file names, splits), for messages;
            by default :data:`DEFAULT_NAMES`.
        places: where each training example is in its file (``intent #2 ('greeting') field
            'patterns'[3]``, ``line 4``: :attr:`~legacy_assistant.classifier.datasets.Examples.places`),
            parallel to ``texts``, for warnings; by default they are named by their text only.
    """
    data = label_data(texts, tags, config, validation, oos_label, names, places)
    if config.early_stopping_patience and not data.scored.any():  # asked for, but nothing to watch
        why = (
            "the validation sentences are all out of scope and the model has no out-of-scope class"
            if data.val_texts
            else "there is no validation data (--validation-data or --validation-split)"
        )
        log.warning(
            "early_stopping_patience %d (--patience) is not used: %s; training runs all its epochs",
            config.early_stopping_patience,
            why,
        )
    plan = threshold_plan(data, config)
    log.info("threshold: %s (%s)", plan.method, plan.reason)
    started = time.perf_counter()
    calibration = None
    if plan.method == "in_scope_holdout":
        if on_stage is not None:
            on_stage("threshold hold-out")
        try:
            calibration = holdout_calibration(data, config, on_epoch, on_start)
        except NothingUnderstoodError as exc:
            plan = _fixed_instead(plan, exc, config)
        if on_stage is not None:
            on_stage("training")
    fitted = fit(data, config, on_epoch, on_start)
    tuned = None
    threshold = config.threshold
    if plan.method == "oos_validation":
        assert fitted.val_probabilities is not None and fitted.features.val is not None
        # a validation sentence with no known feature gets the fallback whatever the threshold
        tuned = tune_threshold(fitted.val_probabilities, data, config, fitted.features.val_understood())
        threshold = tuned.threshold
        log.info(
            "threshold %.2f tuned on validation: in-scope accuracy %.4f, out-of-scope recall %.4f",
            tuned.threshold,
            tuned.in_scope_accuracy,
            tuned.oos_recall,
        )
    elif plan.method == "in_scope_validation":
        assert fitted.val_probabilities is not None and fitted.features.val is not None
        try:
            calibration = calibrate_in_scope(
                fitted.val_probabilities, data.val_labels, data.oos_index, config, fitted.features.val_understood()
            )
        except NothingUnderstoodError as exc:
            plan = _fixed_instead(plan, exc, config)
    if calibration is not None:
        threshold = calibration.threshold
        log.info(
            "threshold %.2f calibrated on %d in-scope sentences: %.4f of them fall back (target %.4f)",
            calibration.threshold,
            calibration.sentences,
            calibration.fallback_share,
            calibration.fallback_rate,
        )
    record = threshold_record(plan, threshold, calibration, config)
    summary = training_summary(data, fitted, tuned, record, config, time.perf_counter() - started)
    return TrainedModel(
        fitted.features.featurizer,
        data.classes,
        fitted.spec,
        fitted.weights,
        config,
        fitted.history,
        summary,
        threshold=threshold,
        oos_label=oos_label if data.oos_index is not None else None,
    )
