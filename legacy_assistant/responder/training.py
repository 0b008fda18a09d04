"""Training the responder: epochs over length-bucketed batches, validation perplexity, early
stopping, a time budget, and checkpoints that let an interrupted run resume exactly.

The data side (:func:`prepare`) needs no TensorFlow: dialogues are split by dialogue into
training and held-out sides, cut into pairs, and encoded with a vocabulary built from the
training side's turns. :func:`train_responder` then drives
:class:`compat.responder.trainer.ResponderTrainer`.

Each epoch ends with the held-out pairs' perplexity, ``exp(sum NLL / tokens)`` under the full
softmax, END counted, PAD not. Training stops after ``config.epochs`` epochs, after
``config.patience`` epochs without a better validation perplexity, or when this run has used
``config.max_minutes``; the weights returned are the best validation epoch's (the last ones
when nothing is held out). When the time budget ends an epoch part way, the weights at that
point are validated too and returned if they are better (``summary["weights"]`` says which):
the batches of an unfinished epoch are not lost. That validation changes nothing a resumed run
sees.

Checkpoint directory (``checkpoint_dir``)::

    run.json            format, settings, vocabulary, conditions, spec, digest of the encoded data
    state-<step>.json   where training stood at <step>: epoch, batches done in it, the epoch's
                        running loss, history, best epoch, early-stopping count, time used
    responder-<step>.*  the trainer's checkpoint (weights, Adam's moments, global step)
    best-<epoch>.npz    the best validation epoch's weights (numpy, no pickle)
    .holder             which process trains in the folder now (or last did)

A checkpoint is written every ``config.checkpoint_every`` steps, at each epoch's end, when the
time budget runs out and on Ctrl-C (after the batch in flight). The state file is written
*before* the trainer's checkpoint, so the newest checkpoint always has its state: a run killed
at any instant (``kill -9``) resumes from the newest checkpoint with ``resume=True``, meets the
same batches in the same order (they depend only on the seed and the epoch), and ends with the
weights an uninterrupted run would have had.

One run at a time trains in a checkpoint directory
(:func:`~legacy_assistant.responder.checkpoint_lock.hold_checkpoint_dir`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import os
import signal
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from legacy_assistant.artifacts.directory import check_tensorflow_path, check_writable_place
from legacy_assistant.common.fields import is_finite_number, is_whole_number, shown
from legacy_assistant.common.files import naming, write_text_atomically
from legacy_assistant.common.input_files import NotRegularFileError, absent_file_problem, read_input_bytes
from legacy_assistant.errors import ArtifactError, ConfigError, TrainingError
from legacy_assistant.responder.batching import (
    EncodedPair,
    batch_of,
    batches_per_epoch,
    encode_pairs,
    epoch_order,
    sorted_batches,
)
from legacy_assistant.responder.checkpoint_lock import HOLDER_FILE, TEMPORARY_FILE, hold_checkpoint_dir
from legacy_assistant.responder.config import RESUMABLE_CHANGES, ResponderTrainingConfig
from legacy_assistant.responder.corpora import Dialogue
from legacy_assistant.responder.pairs import dialogue_key, first_copies, make_pairs, split_dialogues, without_overlap
from legacy_assistant.responder.vocabulary import SPECIAL_TOKENS, UNK, Vocabulary, condition_list, keep_tokens
from legacy_assistant.text.scripts import unspaced_runs

if TYPE_CHECKING:
    from compat.responder.spec import ResponderSpec
    from compat.responder.trainer import ResponderTrainer

log = logging.getLogger(__name__)

RUN_FORMAT = "legacy-assistant-responder-run/1"
RUN_FILE = "run.json"
STATE_PREFIX = "state-"
BEST_PREFIX = "best-"
EVAL_BATCH_SIZE = 128
OUTPUT_BIAS_SUFFIX = "/output/bias"


@dataclass
class PreparedData:
    """Encoded pairs of both sides and what encodes them.

    Attributes:
        vocabulary: built from the training dialogues' turns (or given).
        conditions: the condition list; a pair's ``condition`` indexes it.
        train, validation: encoded pairs (``validation`` empty when nothing is held out).
        counts: dialogues and pairs on each side, and training replies per condition
            (``condition_pairs``), for the summary.
    """

    vocabulary: Vocabulary
    conditions: tuple[str, ...]
    train: list[EncodedPair]
    validation: list[EncodedPair]
    counts: dict[str, Any]

    def digest(self) -> str:
        """sha256 of the encoded pairs of both sides: equal digests, equal training data."""
        digest = hashlib.sha256()
        for name, pairs in (("train", self.train), ("validation", self.validation)):
            digest.update(name.encode())
            for pair in pairs:
                digest.update(json.dumps([pair.context, pair.reply, pair.condition]).encode())
                digest.update(b"\n")
        return digest.hexdigest()


@dataclass(frozen=True)
class Progress:
    """Where training stands, for a progress bar: after every batch and at each epoch's end.

    Attributes:
        epoch: 1-based epoch in progress; epochs: the most epochs this run may take.
        batch: batches done in this epoch; batches: batches in an epoch.
        step: optimizer steps taken in all (resumed runs included).
        loss: this epoch's mean training loss so far, nats per reply token.
        epoch_end: the epoch's history row once it has been validated, else ``None``.
    """

    epoch: int
    epochs: int
    batch: int
    batches: int
    step: int
    loss: float
    epoch_end: dict[str, Any] | None = None


@dataclass
class TrainedResponder:
    """What :func:`train_responder` returns and :mod:`legacy_assistant.responder.artifact` exports.

    Attributes:
        weights: variable name -> float32 array (the best validation epoch's).
        spec: the network's shape.
        vocabulary, conditions: the encoding.
        config: the settings it was trained with.
        history: one row per epoch: ``epoch``, ``loss`` and ``perplexity`` (training, nats per
            token; the sampled loss when sampled softmax is on), ``val_loss`` and
            ``val_perplexity`` (full softmax) when pairs are held out, ``steps``, ``seconds``.
        summary: data counts, best epoch, why training stopped.
    """

    weights: dict[str, np.ndarray]
    spec: ResponderSpec
    vocabulary: Vocabulary
    conditions: tuple[str, ...]
    config: ResponderTrainingConfig
    history: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


# the split, the vocabulary and the token ids each read every turn's tokens: each distinct turn is
# tokenized once for all three (tokenizing is most of the preparation's time)
@keep_tokens()
def prepare(
    dialogues: Sequence[Dialogue],
    config: ResponderTrainingConfig,
    held_out: Sequence[Dialogue] | None = None,
    vocabulary: Vocabulary | None = None,
    conditions: Sequence[str] | None = None,
) -> PreparedData:
    """Split (unless ``held_out`` is given: then ``dialogues`` lose any copy of a held-out
    dialogue), cut into pairs, build the vocabulary from the training side, encode."""
    # minutes for a large corpus (every turn tokenised): say so, where a bar would have nothing to count
    log.info("preparing %d dialogue(s): split, pairs, vocabulary, token ids", len(dialogues))
    drop = config.drop_repeated_dialogues
    if held_out is None:
        train_dialogues, held_dialogues = split_dialogues(
            dialogues, config.held_out_fraction, config.seed, drop_repeats=drop
        )
    else:
        train_dialogues = without_overlap(dialogues, held_out, drop_repeats=drop)
        held_dialogues = first_copies(held_out, "held-out ") if drop else list(held_out)
    train_pairs = make_pairs(train_dialogues, config.max_context_turns)
    held_pairs = make_pairs(held_dialogues, config.max_context_turns)
    if not train_pairs:
        if held_out is not None and dialogues and not train_dialogues:
            # the overlap took them all: the corpora are fine, the choice of validation data is not
            raise TrainingError(
                f"no training pairs: all {len(dialogues)} training dialogue(s) also occur in the held-out "
                "dialogues (--validation); validate on other corpora than the ones trained on"
            )
        raise TrainingError("no training pairs: the corpus needs dialogues of at least two turns")
    if vocabulary is None:
        texts = (turn.text for dialogue in train_dialogues for turn in dialogue.turns)
        vocabulary = Vocabulary.from_texts(texts, config.vocab_size, config.min_count)
        if len(vocabulary) <= len(SPECIAL_TOKENS):
            raise TrainingError(
                f"no token occurs min_count={config.min_count} times in the training dialogues: the "
                "vocabulary would hold only the special tokens (a larger corpus, or a lower min_count)"
            )
    if conditions is None:
        conditions = condition_list(pair.condition for pair in train_pairs + held_pairs)
    limits = (config.max_context_turns, config.max_turn_tokens, config.max_reply_tokens)
    condition_pairs = dict.fromkeys(conditions, 0)
    for pair in train_pairs:
        if pair.condition in condition_pairs:
            condition_pairs[pair.condition] += 1
    counts = {
        "train_dialogues": len(train_dialogues),
        "held_out_dialogues": len(held_dialogues),
        "train_pairs": len(train_pairs),
        "held_out_pairs": len(held_pairs),
        "condition_pairs": condition_pairs,
    }
    untrained = [name for name, count in condition_pairs.items() if count == 0]
    if untrained:
        # cakechat's five are always in the list, so that a client asking for any is answered
        log.warning(
            "no training reply under %s: the model accepts %s, but what it says under %s is untrained",
            ", ".join(untrained),
            "it" if len(untrained) == 1 else "them",
            "it" if len(untrained) == 1 else "them",
        )
    # said once the data is known to be trainable (a refusal above would have followed it)
    if not held_pairs and (held_out is not None or config.held_out_fraction > 0.0):
        # asked for and not there: no validation perplexity, so no early stopping and no best epoch
        log.warning(
            "no pair could be held out for validation (%s): no validation perplexity, no early stopping; "
            "the last epoch's weights are kept",
            f"the {len(held_dialogues)} held-out dialogue(s) hold no pair of turns"
            if held_dialogues
            else _too_few_to_split(train_dialogues),
        )
    _warn_of_unspaced_script(train_dialogues, vocabulary)
    train = encode_pairs(train_pairs, vocabulary, conditions, *limits)
    _warn_of_unknown_replies(train, config.vocab_size, config.min_count)
    return PreparedData(
        vocabulary=vocabulary,
        conditions=tuple(conditions),
        train=train,
        validation=encode_pairs(held_pairs, vocabulary, conditions, *limits),
        counts=counts,
    )


def _too_few_to_split(dialogues: Sequence[Dialogue]) -> str:
    """Why ``dialogues`` gave no held-out share: too few of them, or (copies of a dialogue stay
    on one side of the split) too few distinct ones."""
    if len(dialogues) > 1 and len({dialogue_key(dialogue) for dialogue in dialogues}) == 1:
        return f"{len(dialogues)} dialogues, all copies of one, which stay on one side of a split"
    return f"{len(dialogues)} dialogue(s), too few to split"


def _warn_of_unspaced_script(dialogues: Sequence[Dialogue], vocabulary: Vocabulary) -> None:
    """Warn when training turns hold text written without spaces between words: the responder's
    tokenizer reads each run of it (most often a whole sentence) as one word, so the model
    learns whole phrases, and a message's run is ``<unk>`` unless it is written as a turn of the
    corpus writes it. ``train`` warns of the same for the intent classifier."""
    turns = [turn.text for dialogue in dialogues for turn in dialogue.turns]
    runs = unspaced_runs(turns, vocabulary.tokenize)
    if runs:
        log.warning(
            "%d of %d training turns hold text written without spaces between words (Chinese, Japanese, "
            "Thai, ...), which the responder's tokenizer reads as one word each run (%s): the model learns "
            "such runs as whole phrases, and a message's run is <unk> unless written as in the corpus",
            len(runs),
            len(turns),
            shown(runs[0]),
        )


# Above this share of <unk> among the training replies' words, a model mostly learns to say <unk>.
UNKNOWN_REPLY_WORDS_WARNED = 0.3


def _warn_of_unknown_replies(pairs: Sequence[EncodedPair], vocab_size: int, min_count: int) -> None:
    """Warn when the vocabulary leaves most reply words out: the model then learns to say
    ``<unk>``, a reply of only ``<unk>`` is no reply, and the perplexity looks good for it.
    Both settings that choose the words are named: either one can be what leaves them out."""
    words = unknown = 0
    for pair in pairs:
        words += len(pair.reply) - 1  # END is no word
        unknown += pair.reply.count(UNK)
    if words and unknown / words > UNKNOWN_REPLY_WORDS_WARNED:
        log.warning(
            "%.0f%% of the training replies' words are <unk> (vocab_size %d and min_count %d keep too few of the "
            "corpus's words): the model will mostly learn to say <unk>, and its perplexity will look better than "
            "its replies",
            100 * unknown / words,
            vocab_size,
            min_count,
        )


# --- the checkpoint directory ---------------------------------------------------------------


def _write_json_atomically(path: Path, data: Any) -> None:
    # a failed write leaves no temporary file: one would make the folder "not empty and no run"
    write_text_atomically(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _read_json(path: Path) -> Any:
    try:  # a pipe in the file's place is refused, not waited on for ever
        return json.loads(read_input_bytes(path).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = absent_file_problem(path) if isinstance(exc, NotRegularFileError) else exc
        raise TrainingError(f"{path}: cannot read the training state: {problem}") from None


def _state_path(directory: Path, step: int) -> Path:
    return directory / f"{STATE_PREFIX}{step}.json"


def _files_with_number(directory: Path, prefix: str, suffix: str) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for path in directory.glob(f"{prefix}*{suffix}"):
        number = path.name[len(prefix) : len(path.name) - len(suffix)]
        if number.isdigit():
            found[int(number)] = path
    return found


def _save_best(directory: Path, epoch: int, weights: dict[str, np.ndarray]) -> str:
    name = f"{BEST_PREFIX}{epoch}.npz"
    temporary = directory / f".{name}.tmp.npz"
    try:
        with naming(temporary):  # a full disk names the file it stopped, as every other write does
            np.savez(temporary, **weights)  # type: ignore[arg-type]  # numpy's stub types **kwds as its flags
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, directory / name)
    return name


def _load_best(directory: Path, name: str) -> dict[str, np.ndarray]:
    try:
        with np.load(directory / name, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:  # missing or damaged
        raise TrainingError(
            f"{directory / name}: cannot read the best epoch's weights: {exc}; start a new checkpoint directory"
        ) from None


def _prune(directory: Path, keep_best: str | None) -> None:
    """After a checkpoint is written: a state file is kept while its checkpoint is (the trainer
    keeps its last few), the best epoch's weights only of ``keep_best``, and no temporary file of
    a checkpoint write that a killed run left."""
    from compat.responder.trainer import CHECKPOINT_PREFIX

    checkpoints = _files_with_number(directory, CHECKPOINT_PREFIX + "-", ".index")
    for step, path in _files_with_number(directory, STATE_PREFIX, ".json").items():
        if step not in checkpoints:
            path.unlink(missing_ok=True)
    for path in _files_with_number(directory, BEST_PREFIX, ".npz").values():
        if path.name != keep_best:
            path.unlink(missing_ok=True)
    _remove_checkpoint_temporaries(directory)


# The temporary files of this module's own writes (run.json, a state file, the best epoch's
# weights), renamed into place once whole: one stays where a run was killed (``kill -9``, the
# out-of-memory killer) as it wrote the file.
_OWN_TEMPORARIES = (f".{RUN_FILE}.*.tmp", f".{STATE_PREFIX}*.json.*.tmp", f".{BEST_PREFIX}*.npz.tmp.npz")


def _left_by_a_killed_write(name: str) -> bool:
    """Whether ``name`` is the temporary file of one of this module's writes (see
    :data:`_OWN_TEMPORARIES`), which a run killed as it wrote left: no reason to call the folder
    another program's, and removed at the next checkpoint."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in _OWN_TEMPORARIES)


def _remove_checkpoint_temporaries(directory: Path) -> None:
    """The temporary files TensorFlow leaves when a checkpoint write fails part way (a full
    disk): its checkpoint index's ``checkpoint.tmp<hex>``, which it does not remove itself, and
    a weights file's ``.tempstate<n>``; and those of this module's own writes that a killed run
    left (:data:`_OWN_TEMPORARIES`). Nothing else in a checkpoint folder is named so; the
    folder is held (its lock), so none of them is a write in progress."""
    for pattern in ("checkpoint.tmp*", "*.tempstate*", *_OWN_TEMPORARIES):
        for path in directory.glob(pattern):
            try:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
            except OSError:  # not worth the error it would stand in for (the disk's, the run's)
                pass


def _count(value: Any) -> bool:
    return is_whole_number(value, low=0)


# What each field of a saved training state may hold (a damaged or edited file is refused).
_STATE_TYPES: dict[str, Callable[[Any], bool]] = {
    "epoch": _count,
    "position": _count,
    "step": _count,
    "loss_sum": is_finite_number,
    "loss_tokens": _count,
    "history": lambda v: isinstance(v, list) and all(isinstance(row, dict) for row in v),
    "best_loss": lambda v: v is None or is_finite_number(v),
    "best_epoch": lambda v: v is None or _count(v),
    "best_file": lambda v: v is None or (isinstance(v, str) and v == Path(v).name),  # a file of the directory
    "since_best": _count,
    "seconds": is_finite_number,
    "stopped": lambda v: v is None or isinstance(v, str),
}


class _Run:
    """One training run's mutable state, saved as ``state-<step>.json``."""

    def __init__(self) -> None:
        self.epoch = 0  # 0-based epoch in progress
        self.position = 0  # batches of it done
        self.step = 0
        self.loss_sum = 0.0  # this epoch's training loss, summed over tokens (nats)
        self.loss_tokens = 0
        self.history: list[dict[str, Any]] = []
        self.best_loss: float | None = None
        self.best_epoch: int | None = None
        self.best_file: str | None = None
        self.since_best = 0
        self.seconds = 0.0  # training time over every run so far
        self.stopped: str | None = None  # why training finished; None while it has not
        self._best_weights: dict[str, np.ndarray] | None = None  # without a checkpoint directory

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Run:
        run = cls()
        unknown = set(data) - set(run.to_dict())
        if unknown:
            raise TrainingError(f"training state has unknown field(s) {sorted(unknown)}")
        for name, value in data.items():
            if not _STATE_TYPES[name](value):
                raise TrainingError(f"training state field {name!r} holds {value!r}, not what a run records")
        vars(run).update(data)
        return run

    def stop_reason(self, config: ResponderTrainingConfig, validating: bool) -> str | None:
        """Why training should not go on under ``config`` (``None``: it should)."""
        if validating and config.patience and self.since_best >= config.patience:
            return "early stopping"
        if self.epoch >= config.epochs:
            return "epochs"
        return None


class _Interrupt:
    """While active in the main thread, Ctrl-C or SIGTERM sets a flag that the loop checks after
    each batch (so the checkpoint holds whole steps); a second one interrupts at once.
    ``signum`` is the first signal's number. A signal the process was started ignoring (``cmd &``
    from a script, ``nohup``) stays ignored: otherwise it would stop the training and not the
    export after it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signum = int(signal.SIGINT)
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                previous = signal.getsignal(signum)
                if previous is signal.SIG_IGN:
                    continue
                self._previous[signum] = previous
                signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        name = "interrupt" if signum == signal.SIGINT else signal.Signals(signum).name
        log.warning("%s: stopping after the current batch and saving a checkpoint (Ctrl-C again to abort)", name)

    def stopped(self, step: int) -> KeyboardInterrupt:
        """The exception that ends the run after the checkpoint; it carries the signal's number."""
        stop = KeyboardInterrupt(f"training interrupted at step {step}; resume to continue")
        stop.signum = self.signum  # type: ignore[attr-defined]
        return stop

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)


# --- training -------------------------------------------------------------------------------


def train_responder(
    dialogues: Sequence[Dialogue],
    config: ResponderTrainingConfig,
    *,
    held_out: Sequence[Dialogue] | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    threads: int = 1,
) -> TrainedResponder:
    """Train on ``dialogues`` (validating on ``held_out``, or on a split of ``dialogues``).

    With ``checkpoint_dir``, checkpoints go there (see the module docstring); ``resume=True``
    continues the run found there (settings other than :data:`RESUMABLE_CHANGES` and the
    encoded data must be the same: else :class:`TrainingError`); a directory that holds no
    run (missing or empty: a mistyped path) is refused rather than started from scratch. One
    whose run was killed before its first checkpoint starts it the way a fresh run does.
    Without ``resume`` a directory that already holds a run is refused. ``threads`` is
    the session's thread count (1 keeps float sums in a fixed order: reproducible weights).
    """
    directory = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if directory is None:
        return _train(dialogues, config, held_out, None, resume, progress, threads)
    if not directory.is_dir():  # refused before the lock makes it: a mistyped resume, a place not writable
        check_checkpoint_dir(directory, config, resume)
    with hold_checkpoint_dir(directory):  # checked (again) under the lock: another run may have started
        return _train(dialogues, config, held_out, directory, resume, progress, threads)


def _train(
    dialogues: Sequence[Dialogue],
    config: ResponderTrainingConfig,
    held_out: Sequence[Dialogue] | None,
    directory: Path | None,
    resume: bool,
    progress: Callable[[Progress], None] | None,
    threads: int,
) -> TrainedResponder:
    from compat.responder.trainer import ResponderOptimizerSpec, ResponderTrainer

    stored = _stored_run(directory, config, resume)
    if stored is not None:
        assert directory is not None  # a stored run is only read from a checkpoint directory
        missing = [key for key in ("vocabulary", "conditions", "data_sha256") if key not in stored]
        if missing:
            raise TrainingError(f"{directory / RUN_FILE}: lacks {', '.join(missing)}; start a new checkpoint directory")
        conditions = stored["conditions"]
        if not isinstance(conditions, list) or not conditions or not all(isinstance(c, str) and c for c in conditions):
            raise TrainingError(
                f"{directory / RUN_FILE}: 'conditions' is not a list of names; start a new checkpoint directory"
            )
        try:
            stored_vocabulary = Vocabulary.from_dict(stored["vocabulary"])
        except (ConfigError, TypeError, ValueError, KeyError) as exc:
            raise TrainingError(
                f"{directory / RUN_FILE}: 'vocabulary' is not readable: {exc}; start a new checkpoint directory"
            ) from None
        # prepared as a fresh run would prepare it: a corpus change that touches only words the
        # stored vocabulary lacks gives the same encoded pairs, but another vocabulary
        data = prepare(dialogues, config, held_out)
        same_vocabulary = data.vocabulary.to_dict() == stored_vocabulary.to_dict()
        if not same_vocabulary or list(data.conditions) != conditions or data.digest() != stored["data_sha256"]:
            raise TrainingError(
                f"{directory / RUN_FILE}: the training data differ from the run being resumed "
                "(another corpus, split or vocabulary); resume with the same data or start a new checkpoint directory"
            )
    else:
        data = prepare(dialogues, config, held_out)
    spec = config.spec(len(data.vocabulary), len(data.conditions))
    if config.sampled_softmax and not spec.sampled_softmax:
        log.warning(
            "sampled softmax over %d classes asked for, but the vocabulary has %d ids: training with the full softmax",
            config.sampled_softmax,
            spec.vocab_size,
        )
    if directory is not None and stored is None:
        directory.mkdir(parents=True, exist_ok=True)
        _write_json_atomically(
            directory / RUN_FILE,
            {
                "format": RUN_FORMAT,
                "config": config.to_dict(),
                "vocabulary": data.vocabulary.to_dict(),
                "conditions": list(data.conditions),
                "spec": spec.to_dict(),
                "data_sha256": data.digest(),
            },
        )
    log.info(
        "responder: %d training pairs, %d held out, vocabulary %d, conditions %s",
        len(data.train),
        len(data.validation),
        len(data.vocabulary),
        list(data.conditions),
    )
    optimizer = ResponderOptimizerSpec(
        learning_rate=config.learning_rate,
        clip_norm=config.clip_norm,
        decay_steps=config.decay_epochs * batches_per_epoch(len(data.train), config.batch_size),
        final_learning_rate=config.final_learning_rate,
        average_decay=config.average_decay,
    )
    # no decoding ops: training never decodes, and they were about half of the graph's build time
    with ResponderTrainer(
        spec, optimizer, config.seed, threads=threads, decoding=False, tied_output=config.tied_output
    ) as trainer:
        run = _restore(trainer, directory) if stored is not None else None
        if run is not None and run.epoch > config.epochs:
            # its weights come from those epochs: the manifest would record a shorter run than it was
            raise TrainingError(
                f"the run being resumed has trained {run.epoch} epochs already: --epochs {config.epochs} is fewer; "
                f"give --epochs {run.epoch} or more (--epochs {run.epoch} exports without training further)"
            )
        if run is None:  # a fresh run, or one killed before its first checkpoint: start it the same way
            _start_from_reply_prior(trainer, data.train, len(data.vocabulary))
            run = _Run()
        # A resumed run goes on when its new settings allow more (more epochs, more patience).
        resumed = run.step > 0
        run.stopped = run.stop_reason(config, bool(data.validation))
        if run.stopped is None:
            if resumed:
                log.info("resuming at epoch %d, batch %d (step %d)", run.epoch + 1, run.position, run.step)
            _loop(trainer, run, data, config, directory, progress)
        elif resumed:
            log.info(
                "the resumed run has nothing left to train (stopped: %s, after %d epoch(s), step %d): exporting it",
                run.stopped,
                run.epoch,
                run.step,
            )
        budget_end = _validate_budget_end(trainer, run, data, config)
        chosen = "best epoch" if run.best_epoch is not None else "last step"
        if budget_end is not None and (run.best_loss is None or budget_end["val_loss"] < run.best_loss):
            chosen = "time budget end"
            weights = trainer.exported_weights()
        elif directory is not None and run.best_file:
            weights = _load_best(directory, run.best_file)
        else:
            weights = run._best_weights if run._best_weights is not None else trainer.exported_weights()
        rate_at_end = trainer.learning_rate()
    summary: dict[str, Any] = {
        **data.counts,
        "vocabulary_size": len(data.vocabulary),
        "conditions": list(data.conditions),
        "epochs_run": len(run.history),
        "steps": run.step,
        "best_epoch": run.best_epoch,
        "val_perplexity": _perplexity(run.best_loss) if run.best_loss is not None else None,
        "stopped": run.stopped or "time budget",
        "seconds": round(run.seconds, 3),
        "weights": chosen,
        "learning_rate_at_end": rate_at_end,
    }
    if budget_end is not None:
        summary["budget_end"] = budget_end
        if chosen == "time budget end":
            summary["val_perplexity"] = budget_end["val_perplexity"]
    return TrainedResponder(weights, spec, data.vocabulary, data.conditions, config, run.history, summary)


def reply_log_prior(pairs: Sequence[EncodedPair], vocab_size: int) -> np.ndarray:
    """log of each id's add-one smoothed frequency among the reply tokens (END included):
    float32 ``[vocab_size]``, natural log."""
    counts = np.ones(vocab_size, dtype=np.float64)
    for pair in pairs:
        np.add.at(counts, np.asarray(pair.reply, dtype=np.int64), 1.0)
    return np.log(counts / counts.sum()).astype(np.float32)


def _start_from_reply_prior(trainer: ResponderTrainer, pairs: Sequence[EncodedPair], vocab_size: int) -> None:
    """Start the output bias at the replies' log unigram frequencies instead of zeros.

    From zeros, every id starts equally likely (perplexity = the vocabulary size), and with a
    sampled softmax a frequent id's bias only moves when that id is drawn: measured on a third
    of the shipped responder's data, validation perplexity was still 290 after 600 steps from
    zeros, 133 from the prior.
    """
    weights = trainer.get_weights()
    (name,) = [key for key in weights if key.endswith(OUTPUT_BIAS_SUFFIX)]
    weights[name] = reply_log_prior(pairs, vocab_size)
    trainer.set_weights(weights)


def _validate_budget_end(
    trainer: ResponderTrainer, run: _Run, data: PreparedData, config: ResponderTrainingConfig
) -> dict[str, Any] | None:
    """Validation of the weights where the time budget stopped an epoch part way (``None``
    when it did not, or nothing is held out). The run's state is left as it is."""
    if run.stopped is not None or not run.position or not data.validation:
        return None
    val_loss = _validate(trainer, data, config.max_context_turns)
    assert val_loss is not None
    log.info(
        "time budget end (epoch %d, %d batches in): val_perplexity %.4g",
        run.epoch + 1,
        run.position,
        _perplexity(val_loss),
    )
    return {
        "epoch": run.epoch + 1,
        "batches": run.position,
        "step": run.step,
        "val_loss": val_loss,
        "val_perplexity": _perplexity(val_loss),
    }


def check_checkpoint_dir(directory: str | Path, config: ResponderTrainingConfig, resume: bool) -> None:
    """Raise what :func:`train_responder` would about ``directory`` (not a folder, a foreign or
    another run's folder, nothing to resume, changed settings, and for a new run a place that
    cannot be written), so that a command finds it before reading corpora, which may take
    minutes. A resumed run's folder may be read-only: resuming a finished run only exports it."""
    directory = Path(directory)
    if _stored_run(directory, config, resume) is None:  # a new run: its first checkpoint goes there
        try:  # the folder, or where it will be made
            check_writable_place(directory / RUN_FILE, f"{directory}: the checkpoints cannot be written there")
            check_tensorflow_path(directory)
        except ArtifactError as exc:
            raise TrainingError(str(exc)) from None


def _stored_run(directory: Path | None, config: ResponderTrainingConfig, resume: bool) -> dict[str, Any] | None:
    if directory is None:
        if resume:
            raise ConfigError("resume needs a checkpoint directory")
        return None
    if directory.exists() and not directory.is_dir():
        raise TrainingError(f"{directory}: not a directory; the checkpoint directory must be a folder")
    run_file = directory / RUN_FILE
    if not run_file.exists():
        if directory.exists() and any(
            path.name not in (HOLDER_FILE, TEMPORARY_FILE) and not _left_by_a_killed_write(path.name)
            for path in directory.iterdir()
        ):
            raise TrainingError(f"{directory}: not empty and holds no {RUN_FILE}: not a responder checkpoint directory")
        if resume:  # a mistyped --checkpoint-dir would otherwise throw the run away and start over
            found = f"it holds no {RUN_FILE}" if directory.exists() else "no such folder"
            raise TrainingError(
                f"nothing to resume in {directory}: {found} "
                "(to start a new run there, leave out --resume / resume=True)"
            )
        return None
    if not resume:
        raise TrainingError(
            f"{directory} already holds a training run: resume it (resume=True / --resume) or choose another directory"
        )
    stored = _read_json(run_file)
    if not isinstance(stored, dict) or stored.get("format") != RUN_FORMAT:
        raise TrainingError(f"{run_file}: not a responder training run (format {RUN_FORMAT!r} expected)")
    try:
        previous = ResponderTrainingConfig.from_dict(stored["config"], str(run_file))
    except (KeyError, ConfigError) as exc:
        raise TrainingError(f"{run_file}: unreadable settings: {exc}") from None
    changed = [name for name in previous.differences(config) if name not in RESUMABLE_CHANGES]
    if changed:
        details = ", ".join(f"{n} {getattr(previous, n)!r} -> {getattr(config, n)!r}" for n in changed)
        raise TrainingError(
            f"{run_file}: a resumed run must keep its settings; changed: {details} "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change)"
        )
    return stored


def _restore(trainer: ResponderTrainer, directory: Path | None) -> _Run | None:
    """The run saved in ``directory`` with the trainer restored to it; ``None`` when the run was
    set up but killed before its first checkpoint (nothing to restore)."""
    from compat.responder.trainer import CHECKPOINT_PREFIX, CheckpointError

    assert directory is not None
    try:
        step = trainer.restore_latest(str(directory))
    except CheckpointError as exc:
        raise TrainingError(f"{exc}; start a new checkpoint directory") from None
    if step is None:
        saved = _files_with_number(directory, STATE_PREFIX, ".json")
        weighed = _files_with_number(directory, CHECKPOINT_PREFIX + "-", ".index")
        if len(saved) > 1 or weighed:  # checkpoints were written: their index is lost or damaged
            raise TrainingError(
                f"{directory}: holds the training state of step(s) {sorted(saved)} but no readable checkpoint "
                "index ('checkpoint' file); start a new checkpoint directory"
            )
        if saved:
            # The first checkpoint's state without its weights: the run was killed, or the disk
            # filled, between writing the two. What it had done, a fresh start does again.
            [(first, orphan)] = saved.items()
            log.warning(
                "%s: the first checkpoint (step %d) was not completed; the run starts again from step 0",
                directory,
                first,
            )
            orphan.unlink()
        return None
    state_path = _state_path(directory, step)
    if not state_path.is_file():
        raise TrainingError(f"{directory}: checkpoint of step {step} has no {state_path.name}")
    state = _read_json(state_path)
    if not isinstance(state, dict):
        raise TrainingError(f"{state_path}: not a training state (a JSON object expected)")
    try:
        run = _Run.from_dict(state)
    except TrainingError as exc:
        raise TrainingError(f"{state_path}: {exc}; start a new checkpoint directory") from None
    if run.step != step:
        raise TrainingError(f"{state_path}: records step {run.step}, the checkpoint is step {step}")
    if run.best_file is not None:  # read now, not when the run ends: the export takes these weights
        _load_best(directory, run.best_file)
    return run


def _checkpoint(trainer: ResponderTrainer, run: _Run, directory: Path | None) -> None:
    if directory is None:
        return
    _write_json_atomically(_state_path(directory, run.step), run.to_dict())
    try:
        trainer.save_checkpoint(str(directory), run.step)
    except BaseException:
        # A temporary file would stay for good; this step's state and what TensorFlow completed
        # of its files stay, as a resumed run restores the checkpoint before and writes them again.
        _remove_checkpoint_temporaries(directory)
        raise
    _prune(directory, run.best_file)


def _perplexity(loss: float) -> float:
    return math.exp(min(loss, 700.0))  # exp overflows past ~709; a loss that high is a failed run anyway


def _validate(trainer: ResponderTrainer, data: PreparedData, max_turns: int) -> float | None:
    if not data.validation:
        return None
    total, tokens = 0.0, 0
    with trainer.using_averaged_weights():  # what would be exported is what is validated
        for indices in sorted_batches(data.validation, EVAL_BATCH_SIZE):
            batch = batch_of(data.validation, indices, max_turns)
            nll, count = trainer.evaluate(batch.context_ids, batch.condition_ids, batch.reply_ids)
            total += nll
            tokens += count
    return total / max(tokens, 1)


def _loop(
    trainer: ResponderTrainer,
    run: _Run,
    data: PreparedData,
    config: ResponderTrainingConfig,
    directory: Path | None,
    progress: Callable[[Progress], None] | None,
) -> None:
    started = time.monotonic()
    budget = config.max_minutes * 60.0
    turns = config.max_context_turns
    seconds_before = run.seconds
    with _Interrupt() as interrupt:
        while run.epoch < config.epochs:
            batches = epoch_order(data.train, config.batch_size, config.seed, run.epoch)
            while run.position < len(batches):
                batch = batch_of(data.train, batches[run.position], turns)
                loss = trainer.train_batch(batch.context_ids, batch.condition_ids, batch.reply_ids)
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"training diverged at step {run.step + 1} (loss {loss}); lower learning_rate or clip_norm"
                    )
                tokens = batch.reply_tokens
                run.loss_sum += loss * tokens
                run.loss_tokens += tokens
                run.position += 1
                run.step += 1
                run.seconds = seconds_before + time.monotonic() - started
                if progress is not None:
                    progress(
                        Progress(
                            run.epoch + 1,
                            config.epochs,
                            run.position,
                            len(batches),
                            run.step,
                            run.loss_sum / max(run.loss_tokens, 1),
                        )
                    )
                if interrupt.requested:
                    _checkpoint(trainer, run, directory)
                    raise interrupt.stopped(run.step)
                if budget and time.monotonic() - started >= budget:
                    _checkpoint(trainer, run, directory)
                    log.info("time budget of %.1f minutes used at step %d", config.max_minutes, run.step)
                    return
                if run.step % config.checkpoint_every == 0:
                    _checkpoint(trainer, run, directory)
            _end_epoch(trainer, run, data, config, directory, progress, len(batches))
            if run.stopped is not None:
                return


def _end_epoch(
    trainer: ResponderTrainer,
    run: _Run,
    data: PreparedData,
    config: ResponderTrainingConfig,
    directory: Path | None,
    progress: Callable[[Progress], None] | None,
    n_batches: int,
) -> None:
    loss = run.loss_sum / max(run.loss_tokens, 1)
    row: dict[str, Any] = {"epoch": run.epoch + 1, "loss": loss, "perplexity": _perplexity(loss)}
    val_loss = _validate(trainer, data, config.max_context_turns)
    if val_loss is not None:
        row.update({"val_loss": val_loss, "val_perplexity": _perplexity(val_loss)})
        if run.best_loss is None or val_loss < run.best_loss:
            run.best_loss, run.best_epoch, run.since_best = val_loss, run.epoch + 1, 0
            weights = trainer.exported_weights()
            if directory is not None:
                run.best_file = _save_best(directory, run.epoch + 1, weights)
            else:
                run._best_weights = weights
        else:
            run.since_best += 1
    row.update({"steps": run.step, "seconds": round(run.seconds, 3)})
    run.history.append(row)
    log.info("epoch %d: %s", run.epoch + 1, ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
    run.epoch += 1
    run.position = 0
    run.loss_sum, run.loss_tokens = 0.0, 0
    run.stopped = run.stop_reason(config, val_loss is not None)
    if run.stopped == "early stopping":
        log.info("early stopping: no better validation perplexity for %d epochs", config.patience)
    _checkpoint(trainer, run, directory)
    if progress is not None:
        progress(Progress(run.epoch, config.epochs, n_batches, n_batches, run.step, loss, epoch_end=row))
