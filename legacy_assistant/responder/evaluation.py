"""How good is a responder on dialogues it was not trained on: the ``evaluate-responder`` report.

The report (a JSON-serialisable dict) has four measured parts:

* **perplexity**: ``exp(-sum log p / tokens)`` of the held-out replies under the model's
  ``score`` (teacher-forced, full softmax, END counted, PAD not: what training's validation
  perplexity measures), next to an add-k unigram and a Witten-Bell bigram
  (:mod:`legacy_assistant.responder.baselines`) fitted on the replies of the model's training
  corpora, on exactly the same tokens (the model's vocabulary and <unk> mapping, the same
  truncation, END counted, context turns not scored); ``tokens`` counts them and ``unk_share``
  is the share of them that are <unk> (END in the count); ``baselines_skipped`` says why the
  baselines are ``None`` where training corpora were given but all their dialogues are evaluated;
* **replies**: for a fixed sample of held-out contexts, each said with the human reply's
  condition: distinct-1 and distinct-2 (distinct n-grams over all n-grams of the set) and the
  mean length in tokens (END not counted, an empty reply counted as 0) of the human replies and
  of the replies each mode writes (greedy, beam, sample, sample_rerank);
* **conditions**: whether the condition steers the replies. An emotion classifier is trained
  with the project's intent trainer (the ``ngrams`` preset) on the corpus's labelled turns
  (text -> condition; no condition more often than the second most frequent one, so that a
  mostly neutral corpus does not teach it to say neutral only), a share of the dialogues held
  out to measure it (per-class recall and support on their natural shares: the rare emotions
  are rare); then the same contexts are answered under each
  requested condition, and the classifier labels the replies. An empty reply (the model said
  END at once) expresses no emotion, so it is left out of the shares (the classifier would
  give it whatever label it ranks first): ``empty_replies`` counts those left out per condition
  decoded (the requested ones, and the baseline below, requested or not), and every share is
  over the rest (``None``, n/a, when no reply is left). ``found``
  is the share of replies labelled with the condition asked for, ``when_neutral`` the share
  labelled with it when the ``baseline`` condition was asked for (neutral; for a model never
  trained under neutral, the condition it had most training replies under), ``vs_neutral`` the
  first over the second (2 means asking for the emotion doubles how often it is heard; ``None``
  when the second is 0 or ``None``), ``matrix`` every decoded -> labelled share. By default
  the conditions requested are those the model had training replies under (cakechat's five are
  in every model, trained or not);
* **latency**: ``Responder.respond`` at batch 1 (tokenizing, one ``Session.run``,
  detokenizing), p50 and p95 over ``latency_replies`` calls per mode.

Tokens for distinct-n are the vocabulary's (lower-cased Treebank tokens): human and model replies
are both cut to ``max_length - 1`` tokens, the longest reply that ends with END (a model reply
that reaches the decoding limit stops there without END, one token longer); a human reply keeps
its out-of-vocabulary words; a model reply never holds <unk>.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from legacy_assistant.artifacts.directory import sha256_file
from legacy_assistant.classifier.config import MAX_SEED
from legacy_assistant.errors import ConfigError, DataError, TrainingError
from legacy_assistant.responder.baselines import BigramModel, perplexity
from legacy_assistant.responder.batching import EncodedPair, batch_of, encode_pairs, pad_batch, sorted_batches
from legacy_assistant.responder.corpora import AUTO, Dialogue, corpus_files, read_corpus
from legacy_assistant.responder.pairs import TrainingPair, make_pairs, split_dialogues, without_overlap
from legacy_assistant.responder.responder import MODES
from legacy_assistant.responder.vocabulary import END, PAD, UNK, keep_tokens

if TYPE_CHECKING:
    from compat.classifier.schema import NetworkSpec
    from legacy_assistant.classifier.features import Featurizer
    from legacy_assistant.responder.responder import Responder

log = logging.getLogger(__name__)

HUMAN = "human"
CLASSIFIER_PRESET = "ngrams"
# How far from the evaluated corpora the manifest's training files are looked for (folders).
SEARCH_DEPTH = 3
SEARCH_MAX_ENTRIES = 20_000


@dataclass(frozen=True)
class EvaluationSettings:
    """What :func:`evaluate_responder` measures and on how much.

    Attributes:
        samples: held-out contexts answered for distinct-n and for each requested condition.
        max_dialogues: use at most this many of the corpus's dialogues (chosen by ``seed``);
            ``None``: all.
        seed: chooses the dialogues and contexts, and seeds the sampling modes.
        reply_modes: modes whose replies are measured (distinct-n, length).
        condition_modes: modes whose replies the condition classifier labels.
        conditions: the conditions requested (``None``: every condition of the model).
        latency_modes: modes timed at batch 1; ``latency_replies`` calls each (0: no timing).
        classifier_steps: optimizer steps of the condition classifier (the preset's
            ``min_steps``); ``classifier_held_out``: share of the dialogues held out to measure it.
        classifier_balance: train it on at most as many turns of any condition as the second
            most frequent condition has (a seeded sample): on corpora where most turns are
            neutral, a classifier trained on the natural shares almost never says anything
            else, and could not hear a condition's effect.
        classifier_max_turns: at most this many turns (a seeded sample, after the balancing)
            train it, and a quarter as many measure it: every turn of a large corpus took
            gigabytes (320,000 turns of 100,000 dialogues: past 8 GB).
        unigram_k: the unigram baseline's add-k.
        batch_size: contexts per ``Session.run`` for scoring and decoding.
    """

    samples: int = 200
    max_dialogues: int | None = None
    seed: int = 1
    reply_modes: tuple[str, ...] = MODES
    condition_modes: tuple[str, ...] = ("greedy", "sample")
    conditions: tuple[str, ...] | None = None
    latency_modes: tuple[str, ...] = MODES
    latency_replies: int = 50
    classifier_steps: int = 1500
    classifier_held_out: float = 0.2
    classifier_balance: bool = True
    classifier_max_turns: int = 50_000
    unigram_k: float = 1.0
    batch_size: int = 64

    def __post_init__(self) -> None:
        # the seed also trains the condition classifier, whose seeds stop at MAX_SEED
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
        if self.samples < 1:
            raise ConfigError(f"samples must be at least 1, got {self.samples}")
        if self.max_dialogues is not None and self.max_dialogues < 1:
            raise ConfigError(f"max_dialogues must be at least 1, got {self.max_dialogues}")
        if self.latency_replies < 0:
            raise ConfigError(f"latency_replies must be >= 0, got {self.latency_replies}")
        if self.classifier_steps < 1:
            raise ConfigError(f"classifier_steps must be at least 1, got {self.classifier_steps}")
        if self.classifier_max_turns < 4:
            raise ConfigError(f"classifier_max_turns must be at least 4, got {self.classifier_max_turns}")
        if not 0.0 < self.classifier_held_out < 1.0:
            raise ConfigError(f"classifier_held_out must be in (0, 1), got {self.classifier_held_out}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        for name in ("reply_modes", "condition_modes", "latency_modes"):
            unknown = [mode for mode in getattr(self, name) if mode not in MODES]
            if unknown:
                raise ConfigError(f"{name}: unknown mode(s) {', '.join(unknown)}; expected some of {', '.join(MODES)}")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}


# --- metrics ---------------------------------------------------------------------------------


def distinct_n(token_lists: Iterable[Sequence[str]], n: int) -> float | None:
    """Distinct n-grams over all n-grams of ``token_lists`` (corpus-level distinct-n, Li et al.
    2016): 1 when no n-gram repeats, near 0 when the replies say the same things over and over;
    ``None`` (n/a) when there is no n-gram at all (0 would read as the most repetitive replies).
    An n-gram never spans two replies."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for tokens in token_lists:
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        seen.update(grams)
        total += len(grams)
    return len(seen) / total if total else None


def reply_figures(token_lists: Sequence[Sequence[str]]) -> dict[str, float | int | None]:
    """distinct-1, distinct-2 (``None`` without any n-gram), mean length in tokens (``None``
    without any reply) and the number of empty replies."""
    lengths = [len(tokens) for tokens in token_lists]
    return {
        "replies": len(token_lists),
        "distinct_1": distinct_n(token_lists, 1),
        "distinct_2": distinct_n(token_lists, 2),
        "mean_length": float(np.mean(lengths)) if lengths else None,
        "empty": sum(1 for n in lengths if n == 0),
    }


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of durations given in seconds, in milliseconds."""
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "mean_ms": float(values.mean()),
    }


# --- data ------------------------------------------------------------------------------------


@dataclass
class HeldOut:
    """The evaluated pairs: as text (``pairs``) and as ids (``encoded``), index for index."""

    dialogues: list[Dialogue]
    pairs: list[TrainingPair]
    encoded: list[EncodedPair]


def evaluated_dialogues(dialogues: Sequence[Dialogue], settings: EvaluationSettings) -> list[Dialogue]:
    """The dialogues evaluated: all of ``dialogues``, or a seeded choice of ``max_dialogues``
    of them, in the corpus's order."""
    chosen = list(dialogues)
    if settings.max_dialogues is not None and settings.max_dialogues < len(chosen):
        rows = np.random.default_rng(settings.seed).choice(len(chosen), settings.max_dialogues, replace=False)
        chosen = [chosen[i] for i in sorted(rows)]
    return chosen


def held_out_data(responder: Responder, dialogues: Sequence[Dialogue], settings: EvaluationSettings) -> HeldOut:
    """The (at most ``max_dialogues``) dialogues' pairs (:func:`evaluated_dialogues`), encoded as
    the model's training pairs are; a condition the model does not know is a :class:`DataError`."""
    chosen = evaluated_dialogues(dialogues, settings)
    known = set(responder.conditions)
    for dialogue in chosen:  # one line naming the dialogue, not a list of problems of "training pairs"
        # the first turn is only ever context: its condition reaches no model, as in training
        unknown = sorted({turn.condition for turn in dialogue.turns[1:]} - known)
        if unknown:
            raise DataError(
                dialogue.source,
                [f"condition {unknown[0]!r} is not one of the model's: {', '.join(responder.conditions)}"],
            )
    spec = responder.spec
    pairs = make_pairs(chosen, spec.max_context_turns)
    encoded = encode_pairs(
        pairs,
        responder.vocabulary,
        responder.conditions,
        spec.max_context_turns,
        spec.max_turn_tokens,
        spec.max_reply_tokens,
    )
    return HeldOut(chosen, pairs, encoded)


def sampled_rows(data: HeldOut, settings: EvaluationSettings) -> list[int]:
    """The held-out pairs the replies and conditions are measured on: ``settings.samples`` of
    them (all, when fewer), a seeded choice, in order."""
    rng = np.random.default_rng(settings.seed)
    return sorted(rng.choice(len(data.encoded), min(settings.samples, len(data.encoded)), replace=False).tolist())


@keep_tokens()
def training_replies(
    responder: Responder, train_dialogues: Sequence[Dialogue], held_out: Sequence[Dialogue]
) -> list[list[int]]:
    """The replies of ``train_dialogues`` (less any dialogue also held out) as the model's
    training replies are encoded: ids, cut to ``max_reply_tokens``, END last. The overlap check
    and the encoding each read every turn: each distinct text is tokenized once (11.5 s against
    4.2 s on Topical-Chat's two validation files). A model trained with ``drop_repeated_dialogues``
    saw one copy of each repeated dialogue, and so do the baselines."""
    training = responder.info.manifest.get("training") or {}
    drop = bool(training.get("drop_repeated_dialogues", False)) if isinstance(training, dict) else False
    kept = without_overlap(train_dialogues, held_out, warn_copies=False, drop_repeats=drop)  # training said so
    spec = responder.spec
    return [
        responder.vocabulary.encode_reply(pair.response, spec.max_reply_tokens)
        for pair in make_pairs(kept, spec.max_context_turns)
    ]


def find_training_corpora(manifest: dict[str, Any], near: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """The files the model was trained on, found by name and sha256 (the manifest records no
    paths) in the folders of the ``near`` corpora, the folders above them, and the folders
    below those (up to :data:`SEARCH_DEPTH` levels). Returns ``(found, missing names)``."""
    records = [r for r in (manifest.get("source") or {}).get("corpora") or [] if isinstance(r, dict)]
    wanted = {r.get("name") for r in records if isinstance(r.get("name"), str)}
    roots: list[Path] = []
    for path in map(Path, near):
        folder = path if path.is_dir() else path.parent
        for root in (folder.resolve(), folder.resolve().parent):
            if root not in roots:
                roots.append(root)
    candidates: dict[str, list[Path]] = {}
    for root in roots:
        seen = 0
        base_depth = len(root.parts)
        for where, subfolders, files in os.walk(root):
            depth = len(Path(where).parts) - base_depth
            subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")) if depth < SEARCH_DEPTH else []
            seen += len(files) + len(subfolders)
            for file_name in files:
                if file_name in wanted:
                    candidates.setdefault(file_name, []).append(Path(where) / file_name)
            if seen > SEARCH_MAX_ENTRIES:
                break
    found: list[Path] = []
    missing: list[str] = []
    digests: dict[Path, str] = {}
    for record in records:
        name, digest = str(record.get("name")), record.get("sha256")
        match = None
        for path in candidates.get(name, []):
            if path not in digests:
                # only a regular file: a named pipe with a corpus's name blocked the command for
                # good, and a link to /dev/zero read for ever
                try:
                    digests[path] = sha256_file(path) if path.is_file() else ""
                except OSError:  # unreadable: not the corpus the model was trained on, as far as can be told
                    digests[path] = ""
            if digests[path] == digest:
                match = path
                break
        if match is None:
            missing.append(name)
        elif match not in found:
            found.append(match)
    return found, missing


def corpus_role(manifest: dict[str, Any], paths: Sequence[str | Path]) -> dict[str, list[str]]:
    """Which evaluated files the manifest lists (by sha256) as training or validation data."""
    source = manifest.get("source") or {}
    roles: dict[str, list[str]] = {"training": [], "validation": []}
    for role, key in (("training", "corpora"), ("validation", "held_out")):
        digests = {r.get("sha256") for r in source.get(key) or [] if isinstance(r, dict)}
        for path in map(Path, paths):
            for file in corpus_files(path) if path.is_dir() else [path]:
                if file.is_file() and sha256_file(file) in digests:
                    roles[role].append(str(file))
    return roles


def read_training_corpora(paths: Sequence[str | Path], layout: str = AUTO) -> list[Dialogue]:
    """The dialogues of the training corpora, in ``layout`` (one of the corpus layouts, or
    ``auto`` to detect it per file); bad dialogues are skipped (logged): the baselines should
    see what training saw, and training may have skipped them too."""
    dialogues: list[Dialogue] = []
    for path in paths:
        dialogues.extend(read_corpus(path, layout, strict=False))
    return dialogues


# --- decoding ----------------------------------------------------------------------------------


def decode_replies(
    responder: Responder, pairs: Sequence[EncodedPair], mode: str, seed: int, batch_size: int
) -> list[list[int]]:
    """The reply ids (without END) ``mode`` writes for each pair's context and condition, with
    the responder's decoding options, as :meth:`Responder.respond_batch` decodes them; but the
    best candidate is kept even when it says nothing, where ``respond_batch`` passes over it (or
    draws again), so that the measurements count the model's empty replies."""
    if mode not in MODES:
        raise ConfigError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    replies: list[list[int]] = []
    for number, start in enumerate(range(0, len(pairs), batch_size)):
        batch = pad_batch(pairs[start : start + batch_size], responder.spec.max_context_turns)
        result = responder.decode_batch(batch, mode, seed * 1_000_003 + number)
        for row in range(len(batch)):
            best = 0  # greedy and sample give one candidate; beam's come best first
            if mode == "sample_rerank":
                best = int(np.argmax(result.log_probs[row] / np.maximum(result.lengths[row], 1)))
            reply: list[int] = []
            for token in result.ids[row, best].tolist():
                if token in (END, PAD):
                    break
                reply.append(token)
            replies.append(reply)
    return replies


# --- the four parts ----------------------------------------------------------------------------


def perplexity_section(
    responder: Responder, data: HeldOut, train_replies: Sequence[Sequence[int]] | None, settings: EvaluationSettings
) -> dict[str, Any]:
    """The model's held-out perplexity and, given training replies, the two baselines' on the
    same tokens."""
    total, tokens = 0.0, 0
    turns = responder.spec.max_context_turns
    for indices in sorted_batches(data.encoded, settings.batch_size):
        batch = batch_of(data.encoded, indices, turns)
        log_probs = responder.model.score(batch.context_ids, batch.condition_ids, batch.reply_ids)
        total += float(np.sum(log_probs, dtype=np.float64))
        tokens += batch.reply_tokens
    replies = [pair.reply for pair in data.encoded]
    unknown = sum(1 for reply in replies for token in reply if token == UNK)
    section: dict[str, Any] = {
        "tokens": tokens,
        "replies": len(replies),
        "unk_share": unknown / tokens if tokens else 0.0,
        "model": perplexity(total, tokens),
        "unigram": None,
        "bigram": None,
    }
    if train_replies:
        vocab = len(responder.vocabulary)
        bigram = BigramModel.fit(train_replies, vocab, k=settings.unigram_k)
        unigram_sum = sum(float(bigram.unigram.sequence_log_probs(r).sum()) for r in replies)
        bigram_sum = sum(float(bigram.sequence_log_probs(r).sum()) for r in replies)
        section.update(
            unigram=perplexity(unigram_sum, tokens),
            bigram=perplexity(bigram_sum, tokens),
            baselines={
                "fitted_on_replies": len(train_replies),
                "fitted_on_tokens": bigram.unigram.tokens,
                "unigram": f"add-k, k={settings.unigram_k:g}",
                "bigram": "Witten-Bell interpolation with the unigram",
            },
        )
        section["model_over_bigram"] = section["model"] / section["bigram"]
    elif train_replies is not None:  # training corpora were given, but every dialogue of them is evaluated here
        section["baselines_skipped"] = (
            "every dialogue of the training corpora is among the evaluated ones: no reply is left to fit them on"
        )
    return section


def replies_section(
    responder: Responder, data: HeldOut, rows: Sequence[int], settings: EvaluationSettings
) -> tuple[dict[str, Any], dict[str, list[list[int]]]]:
    """Figures of the human replies of ``rows`` and of each reply mode's replies to them;
    also returns the replies (ids) by mode."""
    vocabulary = responder.vocabulary
    cut = responder.max_length - 1
    human = [vocabulary.tokenize(data.pairs[i].response)[:cut] for i in rows]
    figures: dict[str, Any] = {HUMAN: reply_figures(human)}
    decoded: dict[str, list[list[int]]] = {}
    pairs = [data.encoded[i] for i in rows]
    for mode in settings.reply_modes:
        decoded[mode] = decode_replies(responder, pairs, mode, settings.seed, settings.batch_size)
        figures[mode] = reply_figures([vocabulary.decode_tokens(ids)[:cut] for ids in decoded[mode]])
    examples = []
    for k, i in enumerate(rows[:5]):
        example = {"context": list(data.pairs[i].context), "condition": data.pairs[i].condition}
        example[HUMAN] = data.pairs[i].response
        example.update({mode: vocabulary.decode(decoded[mode][k]) for mode in decoded})
        examples.append(example)
    return {"contexts": len(rows), "modes": figures, "examples": examples}, decoded


@dataclass
class ConditionClassifier:
    """An intent-trainer model that labels a text with a condition."""

    featurizer: Featurizer
    classes: list[str]
    spec: NetworkSpec
    weights: dict[str, np.ndarray]

    def probabilities(self, texts: Sequence[str], chunk: int = 512) -> np.ndarray:
        """float32 ``[len(texts), len(classes)]`` (the exported network's forward pass in numpy)."""
        from compat.classifier.reference import forward_numpy

        out = np.zeros((len(texts), len(self.classes)), dtype=np.float32)
        for start in range(0, len(texts), chunk):
            rows = self.featurizer.encode(list(texts[start : start + chunk]))
            out[start : start + chunk] = forward_numpy(self.spec, self.weights, rows.ids, rows.weights)[1]
        return out

    def label(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        return [self.classes[i] for i in self.probabilities(texts).argmax(axis=1)]


def capped_by_class(texts: Sequence[str], labels: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """``texts`` and ``labels`` with at most as many examples of any label as the second most
    frequent label has (a seeded sample of the larger ones); order kept."""
    counts = Counter(labels)
    if len(counts) < 2:
        return list(texts), list(labels)
    cap = sorted(counts.values())[-2]
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label, count in sorted(counts.items()):
        rows = [i for i, name in enumerate(labels) if name == label]
        keep.extend(rng.choice(rows, cap, replace=False).tolist() if count > cap else rows)
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


def _at_most(texts: list[str], labels: list[str], cap: int, seed: int) -> tuple[list[str], list[str]]:
    """``texts`` and ``labels``, or a seeded sample of ``cap`` of them (order kept)."""
    if len(texts) <= cap:
        return texts, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(texts), cap, replace=False))
    return [texts[i] for i in keep], [labels[i] for i in keep]


@contextlib.contextmanager
def _quiet_about_featureless_patterns() -> Iterator[None]:
    """Leave out the intent trainer's warnings about training patterns without a word it keeps,
    in this thread only (a training in another thread still says them)."""
    from legacy_assistant.classifier import training

    this_thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        return record.thread != this_thread or not getattr(record, training.FEATURELESS_FLAG, False)

    training.log.addFilter(keep)
    try:
        yield
    finally:
        training.log.removeFilter(keep)


def train_condition_classifier(
    dialogues: Sequence[Dialogue], settings: EvaluationSettings
) -> tuple[ConditionClassifier, dict[str, Any]]:
    """Train on the labelled turns of part of ``dialogues`` and measure on the rest (split by
    dialogue); returns the classifier and its figures."""
    from legacy_assistant.classifier.evaluation import evaluation_report
    from legacy_assistant.classifier.presets import preset
    from legacy_assistant.classifier.training import train

    train_side, held_side = split_dialogues(dialogues, settings.classifier_held_out, settings.seed, warn_copies=False)
    texts = [turn.text for d in train_side for turn in d.turns]
    labels = [turn.condition for d in train_side for turn in d.turns]
    natural = dict(sorted(Counter(labels).items()))
    if len(natural) < 2:  # said here in the corpus's words: the intent trainer speaks of intents and patterns
        corpus_wide = sorted({turn.condition for d in dialogues for turn in d.turns})
        if len(corpus_wide) < 2:
            raise TrainingError(
                f"every turn of the corpus is under one condition ({', '.join(map(repr, corpus_wide))}): "
                "there is nothing to tell apart"
            )
        others = [c for c in corpus_wide if c not in natural]
        raise TrainingError(
            f"the {len(train_side)} dialogue(s) it trains on are all under one condition "
            f"({', '.join(map(repr, natural))}); the corpus's other condition(s), {', '.join(map(repr, others))}, "
            f"are only in the {len(held_side)} held out to measure it"
        )
    if settings.classifier_balance:
        texts, labels = capped_by_class(texts, labels, settings.seed)
    texts, labels = _at_most(texts, labels, settings.classifier_max_turns, settings.seed)
    config = dataclasses.replace(
        preset(CLASSIFIER_PRESET),
        min_steps=settings.classifier_steps,
        validation_split=0.0,
        tune_threshold=False,  # no fallback threshold: the top label is all that is read
        seed=settings.seed,
    )
    with _quiet_about_featureless_patterns():  # "patterns of an intent": here turns of a corpus, emoji and all
        trained = train(texts, labels, config)
    classifier = ConditionClassifier(trained.featurizer, list(trained.classes), trained.spec, trained.weights)
    held_texts, held_labels = _at_most(
        [turn.text for d in held_side for turn in d.turns],
        [turn.condition for d in held_side for turn in d.turns],
        settings.classifier_max_turns // 4,
        settings.seed + 1,
    )
    if held_texts:
        report = evaluation_report(classifier.probabilities(held_texts), classifier.classes, held_labels, 0.0, None)
    else:  # too few dialogues to hold any out: nothing measured, rather than an accuracy of 0
        report = {"accuracy": None, "macro_f1": None, "per_intent": {}}
    figures = {
        "preset": CLASSIFIER_PRESET,
        "steps": settings.classifier_steps,
        "classes": classifier.classes,
        "balanced": settings.classifier_balance,
        "train_turns": len(texts),
        "train_support": dict(sorted(Counter(labels).items())),
        "labelled_support": natural,
        "held_out_dialogues": len(held_side),
        "held_out_turns": len(held_texts),
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "per_class": {
            name: {key: m[key] for key in ("recall", "precision", "support")}
            for name, m in report["per_intent"].items()
        },
    }
    return classifier, figures


def condition_section(
    responder: Responder,
    data: HeldOut,
    rows: Sequence[int],
    classifier: ConditionClassifier,
    classifier_figures: dict[str, Any],
    settings: EvaluationSettings,
) -> dict[str, Any]:
    """The classifier's labels of the replies to ``rows`` under each requested condition, and
    under the baseline (the model's default condition) for the ratios, requested or not."""
    requested = list(settings.conditions or responder.trained_conditions)
    baseline_name = responder.default_condition  # neutral, where the model was trained under it
    index = {name: i for i, name in enumerate(responder.conditions)}
    unknown = [c for c in requested if c not in index]
    if unknown:
        raise ConfigError(
            f"unknown condition(s) {', '.join(unknown)}; the model knows {', '.join(responder.conditions)}"
        )
    base = [data.encoded[i] for i in rows]
    # without the baseline's replies every ratio would be empty ("--conditions joy sadness")
    decoded = requested + [baseline_name] if baseline_name not in requested else requested
    modes: dict[str, Any] = {}
    for mode in settings.condition_modes:
        matrix: dict[str, dict[str, float | None]] = {}
        empty: dict[str, int] = {}
        for condition in decoded:
            pairs = [dataclasses.replace(p, condition=index[condition]) for p in base]
            replies = decode_replies(responder, pairs, mode, settings.seed, settings.batch_size)
            texts = [responder.vocabulary.decode(ids) for ids in replies]
            spoken = [text for text in texts if text.strip()]  # an empty reply says no emotion
            counts = Counter(classifier.label(spoken))
            matrix[condition] = {name: counts[name] / len(spoken) if spoken else None for name in classifier.classes}
            empty[condition] = len(texts) - len(spoken)
        found: dict[str, float | None] = {c: matrix[c][c] if c in classifier.classes else None for c in requested}
        when_neutral: dict[str, float | None] = {c: matrix.get(baseline_name, {}).get(c) for c in requested}
        vs_neutral: dict[str, float | None] = {}
        for c in requested:
            share, baseline = found[c], when_neutral[c]
            vs_neutral[c] = share / baseline if share is not None and baseline else None
        modes[mode] = {
            "found": found,
            "baseline": baseline_name,
            "when_neutral": when_neutral,
            "vs_neutral": vs_neutral,
            "matrix": matrix,
            "empty_replies": empty,
        }
    return {
        "classifier": classifier_figures,
        "contexts": len(rows),
        "requested": requested,
        "modes": modes,
    }


def latency_section(responder: Responder, data: HeldOut, rows: Sequence[int], settings: EvaluationSettings) -> dict:
    """``Responder.respond`` at batch 1: p50/p95 per mode over ``latency_replies`` calls (after
    two untimed calls per mode), cycling through the contexts of ``rows``."""
    contexts = [(list(data.pairs[i].context), data.pairs[i].condition) for i in rows]
    modes: dict[str, Any] = {}
    for mode in settings.latency_modes:
        for context, condition in contexts[:2]:
            responder.respond(context, condition, mode, seed=settings.seed)
        seconds = []
        for call in range(settings.latency_replies):
            context, condition = contexts[call % len(contexts)]
            started = time.perf_counter()
            responder.respond(context, condition, mode, seed=settings.seed + call)
            seconds.append(time.perf_counter() - started)
        modes[mode] = percentiles_ms(seconds)
    return {"batch": 1, "calls": settings.latency_replies, "max_length": responder.max_length, "modes": modes}


# --- the report --------------------------------------------------------------------------------


def evaluate_responder(
    responder: Responder,
    dialogues: Sequence[Dialogue],
    settings: EvaluationSettings,
    train_dialogues: Sequence[Dialogue] | None = None,
    stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The report (see the module docstring) of ``responder`` on the held-out ``dialogues``;
    ``train_dialogues`` (the model's training corpora) fit the perplexity baselines, which are
    ``None`` without them. ``stage`` is called with each part's name before it runs."""
    if settings.conditions is not None:
        unknown = [c for c in settings.conditions if c not in responder.conditions]
        if unknown:
            raise ConfigError(
                f"unknown condition(s) {', '.join(unknown)}; the model knows {', '.join(responder.conditions)}"
            )
    seconds: dict[str, float] = {}

    def begin(name: str) -> float:
        if stage is not None:
            stage(name)
        log.info("evaluating: %s", name)
        return time.perf_counter()

    data = held_out_data(responder, dialogues, settings)
    if not data.encoded:
        raise ConfigError("the corpus gives no pairs to evaluate: dialogues need at least two turns")
    rows = sampled_rows(data, settings)
    report: dict[str, Any] = {
        "model": responder.info.name,
        "settings": settings.to_dict(),
        "decoding": dataclasses.asdict(responder.options),
        "data": {
            "dialogues": len(data.dialogues),
            "corpus_dialogues": len(dialogues),
            "pairs": len(data.pairs),
            "contexts": len(rows),
            "conditions": dict(sorted(Counter(p.condition for p in data.pairs).items())),
        },
    }
    started = begin("perplexity")
    train_replies = training_replies(responder, train_dialogues, data.dialogues) if train_dialogues else None
    report["perplexity"] = perplexity_section(responder, data, train_replies, settings)
    seconds["perplexity"] = time.perf_counter() - started

    started = begin("replies")
    report["replies"], _ = replies_section(responder, data, rows, settings)
    seconds["replies"] = time.perf_counter() - started

    started = begin("conditions")
    try:
        classifier, figures = train_condition_classifier(dialogues, settings)
    except TrainingError as exc:  # fewer than two labelled conditions, e.g. ChatterBot's all-neutral turns
        report["conditions"] = {"skipped": f"no condition classifier: {exc}"}
    else:
        report["conditions"] = condition_section(responder, data, rows, classifier, figures, settings)
    seconds["conditions"] = time.perf_counter() - started

    if settings.latency_replies and settings.latency_modes:
        started = begin("latency")
        report["latency"] = latency_section(responder, data, rows, settings)
        seconds["latency"] = time.perf_counter() - started
    report["seconds"] = {k: round(v, 3) for k, v in seconds.items()}
    return report


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report as text for a terminal."""
    data = report["data"]
    lines = [f"{data['dialogues']} dialogues, {data['pairs']} pairs, {data['contexts']} contexts answered"]
    strength = report.get("decoding", {}).get("condition_strength")
    if strength:
        lines.append(f"decoding     condition guidance, strength {strength:g}")
    ppl = report["perplexity"]
    lines.append(
        f"perplexity   model {_number(ppl['model'], 2)}  unigram {_number(ppl['unigram'], 2)}  "
        f"bigram {_number(ppl['bigram'], 2)}  ({ppl['tokens']} tokens, END counted, <unk> {ppl['unk_share']:.1%})"
    )
    if ppl.get("model_over_bigram") is not None:
        lines.append(f"             model / bigram {ppl['model_over_bigram']:.3f}")
    elif ppl.get("baselines_skipped"):
        lines.append(f"             no baselines: {ppl['baselines_skipped']}")
    lines.append("replies      distinct-1  distinct-2  mean length  empty")
    for mode, f in report["replies"]["modes"].items():
        lines.append(
            f"  {mode:<13} {_number(f['distinct_1']):<11} {_number(f['distinct_2']):<11} "
            f"{_number(f['mean_length'], 1):>5}      {f['empty']}"
        )
    conditions = report["conditions"]
    if "skipped" in conditions:
        lines.append(f"conditions   {conditions['skipped']}")
    else:
        c = conditions["classifier"]
        if c["accuracy"] is None:
            lines.append(f"classifier   {c['preset']}: not measured (no dialogue could be held out for it)")
        else:
            lines.append(
                f"classifier   {c['preset']}: held-out accuracy {c['accuracy']:.3f} on {c['held_out_turns']} turns; "
                "recall (support): "
                + ", ".join(f"{name} {m['recall']:.2f} ({m['support']})" for name, m in c["per_class"].items())
            )
        for mode, figures in conditions["modes"].items():
            parts = [
                f"{name} {_number(figures['found'][name], 2)}/{_number(figures['when_neutral'][name], 2)}"
                for name in conditions["requested"]
            ]
            left_out = sum(figures.get("empty_replies", {}).values())
            note = f" ({left_out} empty replies left out)" if left_out else ""
            baseline = figures.get("baseline", "neutral")
            lines.append(
                f"conditions   {mode}: labelled c when c / when {baseline} is asked: " + ", ".join(parts) + note
            )
    latency = report.get("latency")
    if latency:
        lines.append(
            "latency      batch 1, ms p50/p95: "
            + ", ".join(f"{mode} {m['p50_ms']:.1f}/{m['p95_ms']:.1f}" for mode, m in latency["modes"].items())
        )
    return lines
