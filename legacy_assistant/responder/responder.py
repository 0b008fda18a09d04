"""Load an exported responder once and answer dialogue contexts from any thread.

``Responder.load("exported/responder").respond(["Hi!", "Hello, how are you?"], "joy")`` tokenizes
the (at most ``max_context_turns`` latest) turns, decodes inside the graph in one
``Session.run`` and detokenizes the reply. Modes:

* ``greedy``: the most likely token at every step;
* ``beam``: beam search, the best length-normalised candidate;
* ``sample``: one reply drawn at ``temperature`` (seeded: the same seed, the same reply), drawn
  again (up to 10 draws in all, as cakechat's API did) while it says nothing;
* ``sample_rerank``: ``n_samples`` replies drawn, the one with the best length-normalised
  log-likelihood (``log p / tokens``, END counted) kept: cakechat's sampling-reranking without
  its reverse model, but ranked per token where cakechat ranks by the summed log-likelihood less
  ``log 10`` a repeated token (a sum prefers the shortest candidates; repeats are left to the
  repetition penalty while sampling).

Beam and ``sample_rerank`` pass over a candidate that says nothing (no word: END at once) for
the best of their 3 best that does, as cakechat's API dropped its empty candidates before choosing.

The model (:class:`compat.responder.saved_model.LoadedResponder`) owns a finalized graph and one
session; a :class:`Responder` keeps no state between calls, so one instance serves every thread.
A migrated model (``"runtime": "tf2"``, ``legacy-assistant migrate``) is loaded instead as a
:class:`compat.tf2.responder.Tf2Responder`, with the same calls, in a process on the TF2 runtime
(:func:`compat.selection.load_responder`).
"""

from __future__ import annotations

import numbers
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compat.responder.inputs import (
    MAX_BEAM_WIDTH,
    MAX_CONDITION_STRENGTH,
    MAX_DECODE_LENGTH,
    MAX_LENGTH_PENALTY,
    MAX_SAMPLES,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    REPETITION_PENALTY_RANGE,
    is_repetition_penalty,
)
from compat.selection import selected, source_note
from legacy_assistant.artifacts.directory import check_load_arguments, load_consistently, runtime_mismatch
from legacy_assistant.common.closing import Closing
from legacy_assistant.common.fields import is_finite_number, is_whole_number
from legacy_assistant.common.limits import tensorflow_thread_pools
from legacy_assistant.errors import ArtifactError, GuidanceUnavailable, RequestError
from legacy_assistant.responder.artifact import MANIFEST, ResponderInfo, recorded_condition_pairs, verify_responder
from legacy_assistant.responder.batching import Batch, EncodedPair, pad_batch
from legacy_assistant.responder.modes import (
    DEFAULT_CONDITION,
    MODES,
    check_seed,
    checked_condition_strength,
    checked_context,
    has_words,
    known_condition,
)
from legacy_assistant.responder.vocabulary import END, N_SPECIAL

if TYPE_CHECKING:
    from compat.interface import ResponderModel
    from compat.responder.spec import DecodeResult


def guidance_help(path: str | Path, runtime: str) -> str:
    """What to do about a responder at ``path`` whose SavedModel has no condition guidance."""
    if runtime == "tf2":
        return (
            "it was migrated before guidance existed: export its compat source again with "
            "'legacy-assistant reexport-responder SOURCE' and migrate that again"
        )
    return (
        "it was exported before guidance existed: export its weights again with "
        f"'legacy-assistant reexport-responder {shlex.quote(str(path))}'"
    )


# Samples drawn for one reply in ``sample`` mode while they say nothing (cakechat's
# SAMPLING_ATTEMPTS_NUM): a reply of only END would otherwise be the server's default response.
SAMPLING_ATTEMPTS = 10
# Candidates of beam and sample_rerank an empty best one may give way to (cakechat's
# NUM_BEST_CANDIDATES_TO_PICK_FROM): far down a beam, a candidate is a poor reply.
CANDIDATES_TO_PICK_FROM = 3

# Tokens a repetition penalty leaves alone (cakechat's list, as this tokenizer writes them).
UNPENALIZED_TOKENS = ("a", "an", "the", ".", ",", "?", "!", "'", '"', "``", "''", "*", "^", "`")


@dataclass(frozen=True)
class DecodingOptions:
    """How replies are decoded.

    ``temperature`` and ``n_samples`` are cakechat's defaults. Two are not: cakechat searched
    with a beam of 10 (5 here, the width the benchmarks are read at) and divided repeated
    tokens' probabilities by 10 in every mode. The library decodes the model's own
    distribution unless asked otherwise; the server and ``chat`` use cakechat's penalty
    (:data:`legacy_assistant.serving.assistant.SERVING_REPETITION_PENALTY`).

    Attributes:
        temperature: softmax temperature of the sampling modes (below 1: safer replies), from
            0.000001 (as greedy) to 100 (nearly uniform).
        beam_width: candidates kept by beam search.
        n_samples: replies drawn by ``sample_rerank``.
        repetition_penalty: a token the reply already holds has its probability divided by
            this (1: off); articles and punctuation are exempt. Greedy and the sampling
            modes choose with it; beam search keeps its candidates by the penalised scores but
            ranks the finished ones by their plain ``log p / length ** length_penalty``. A
            normal, finite float32: from about 1.2e-38 to 3.4e38.
        length_penalty: beam candidates are ranked by ``log p / length ** length_penalty``;
            from 0 to 10 (:data:`MAX_LENGTH_PENALTY`).
        max_length: most reply tokens, END included, from 1 to 1,000
            (:data:`compat.responder.inputs.MAX_DECODE_LENGTH`; ``None``: the spec's
            ``max_reply_tokens``, at most 1,000).
        condition_strength: condition guidance, 0 (off) to 10: each token is chosen by
            ``log p(.|c) + s * (log p(.|c) - mean over conditions)``, which makes the requested
            condition heard more often, for ``K`` (the conditions) decoder rows a reply
            (:mod:`compat.responder.decoding`). Needs a responder exported (or migrated) since
            guidance exists.
    """

    temperature: float = 0.5
    beam_width: int = 5
    n_samples: int = 10
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    max_length: int | None = None
    condition_strength: float = 0.0

    def __post_init__(self) -> None:
        # numpy's numbers (a sweep over np.arange) as Python's: refused before as no whole number
        for name in ("beam_width", "n_samples", "max_length"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
                object.__setattr__(self, name, int(value))
        for name in ("temperature", "repetition_penalty", "length_penalty", "condition_strength"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, (bool, int, float)):
                object.__setattr__(self, name, float(value))
        for name in ("temperature", "repetition_penalty", "length_penalty", "condition_strength"):
            value = getattr(self, name)
            if not is_finite_number(value):
                raise RequestError(f"{name} must be a finite number, got {value!r}")
        for name, high in (
            ("beam_width", MAX_BEAM_WIDTH),
            ("n_samples", MAX_SAMPLES),
            ("max_length", MAX_DECODE_LENGTH),
        ):
            value = getattr(self, name)
            if value is None and name == "max_length":
                continue
            if not is_whole_number(value, 1, high):
                raise RequestError(f"{name} must be a whole number from 1 to {high}, got {value!r}")
        if not MIN_TEMPERATURE <= self.temperature <= MAX_TEMPERATURE:
            raise RequestError(
                f"temperature must be from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, got {self.temperature}"
            )
        if self.beam_width < 1 or self.n_samples < 1:
            raise RequestError(f"beam_width and n_samples must be at least 1, got {self.beam_width}, {self.n_samples}")
        if not is_repetition_penalty(self.repetition_penalty):  # the decode's own float32 check
            raise RequestError(f"{REPETITION_PENALTY_RANGE}, got {self.repetition_penalty!r}")
        if not 0 <= self.length_penalty <= MAX_LENGTH_PENALTY:
            raise RequestError(f"length_penalty must be from 0 to {MAX_LENGTH_PENALTY:g}, got {self.length_penalty}")
        if self.max_length is not None and self.max_length < 1:
            raise RequestError(f"max_length must be at least 1, got {self.max_length}")
        if not 0.0 <= self.condition_strength <= MAX_CONDITION_STRENGTH:
            raise RequestError(
                f"condition_strength must be in [0, {MAX_CONDITION_STRENGTH:g}], got {self.condition_strength}"
            )


class Responder:
    """``respond(["Do you like movies?"], condition="joy", mode="greedy") -> 'I do. I like the movies.'``."""

    def __init__(self, info: ResponderInfo, model: ResponderModel, options: DecodingOptions | None = None) -> None:
        if model.vocab_size != len(info.vocabulary) or model.n_conditions != len(info.conditions):
            raise ArtifactError(
                f"{info.path}: the SavedModel's shape ({model.vocab_size} tokens, {model.n_conditions} conditions) "
                f"does not match {MANIFEST} ({len(info.vocabulary)}, {len(info.conditions)})"
            )
        if model.spec != info.spec:  # the manifest's limits (reply length, turns) decide every request
            differing = sorted(
                f.name for f in fields(info.spec) if getattr(model.spec, f.name) != getattr(info.spec, f.name)
            )
            raise ArtifactError(
                f"{info.path}: {MANIFEST}'s spec differs from the SavedModel's in {', '.join(differing)}"
            )
        self.info = info
        self.vocabulary = info.vocabulary
        self.conditions = info.conditions
        self.spec = info.spec
        self.options = options or DecodingOptions()
        if self.options.condition_strength > 0 and not model.guided:
            raise ArtifactError(
                f"{info.path}: condition_strength {self.options.condition_strength:g} needs condition guidance, "
                f"which this responder's SavedModel lacks ({guidance_help(info.path, info.runtime)})"
            )
        self._model = model
        self._guided = model.guided  # kept: still answered once close() let go of the model
        self._closing = Closing(f"Responder {info.path}")
        self._condition_ids = {name: index for index, name in enumerate(self.conditions)}
        # read once: the default is asked for on every request that names no condition
        self._condition_pairs = recorded_condition_pairs(info.manifest, self.conditions)
        self._trained = self._trained_conditions()
        self._default = self._default_condition()
        self._unpenalized = np.array(
            sorted(self.vocabulary.token_id(t) for t in UNPENALIZED_TOKENS if t in self.vocabulary),
            dtype=np.int32,
        )
        # A spec may allow longer replies than a decode may ask for (training allows up to 100,000).
        self.max_length = self.options.max_length or min(self.spec.max_reply_tokens, MAX_DECODE_LENGTH)

    @classmethod
    def load(
        cls,
        path: str | Path,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        options: DecodingOptions | None = None,
        runtime: str | None = None,
    ) -> Responder:
        """Verify checksums, then load the SavedModel; raises :class:`ArtifactError` on any damage.

        ``intra_op_threads`` and ``inter_op_threads`` size TensorFlow's thread pools: 0 lets
        TensorFlow choose, narrowed to a container's CPU limit, which TensorFlow does not see
        (:func:`legacy_assistant.common.limits.tensorflow_threads`). ``runtime`` (``compat`` or
        ``tf2``) defaults to the process's choice (:func:`compat.selection.selected`); it must
        be the one the model was written for (``runtime`` in ``responder.json``; ``compat``
        when absent).
        """

        if options is not None and not isinstance(options, DecodingOptions):  # before anything loads
            raise RequestError(f"options must be DecodingOptions (or None), got {type(options).__name__}")

        check_load_arguments(path, runtime)
        intra, inter = tensorflow_thread_pools(intra_op_threads, inter_op_threads, runtime or selected())

        def load() -> Responder:
            from compat.interface import SavedModelError
            from compat.selection import load_responder

            info = verify_responder(path)
            source = source_note(runtime)
            chosen = runtime or selected()
            written_for = info.manifest.get("runtime", "compat")
            if written_for != chosen:
                raise runtime_mismatch(info.path, written_for, chosen, source)
            try:
                model = load_responder(str(info.saved_model_dir), chosen, intra, inter)
            except SavedModelError as exc:
                raise ArtifactError(str(exc)) from None
            try:
                return cls(info, model, options)
            except BaseException:
                model.close()
                raise

        return load_consistently(path, load, manifest_name=MANIFEST, discard=lambda loaded: loaded.close())

    @property
    def model(self) -> ResponderModel:
        """The loaded SavedModel itself, for callers that work on token ids (golden replies)."""
        return self._model

    @property
    def guided(self) -> bool:
        """Whether the SavedModel has condition guidance (a strength above 0 may be asked for)."""
        return self._guided

    @property
    def condition_pairs(self) -> dict[str, int] | None:
        """Training replies per condition, as the manifest records them (None for a model from
        before they were recorded)."""
        return None if self._condition_pairs is None else dict(self._condition_pairs)

    @property
    def trained_conditions(self) -> tuple[str, ...]:
        """The conditions the model had training replies under (all of them where not recorded):
        cakechat's five are in every model, trained or not."""
        return self._trained

    @property
    def default_condition(self) -> str:
        """Neutral where the model was trained under it; else the condition it had most
        training replies under (a corpus of its own conditions, none of them neutral)."""
        return self._default

    def _trained_conditions(self) -> tuple[str, ...]:
        pairs = self._condition_pairs
        if pairs is None:
            return self.conditions
        return tuple(name for name in self.conditions if pairs.get(name, 0) > 0) or self.conditions

    def _default_condition(self) -> str:
        if DEFAULT_CONDITION in self._trained:
            return DEFAULT_CONDITION
        pairs = self._condition_pairs or {}
        return max(self._trained, key=lambda name: pairs.get(name, 0))

    # -- requests ---------------------------------------------------------------------------

    def respond(
        self,
        context: Sequence[str] | np.ndarray,
        condition: str | None = None,
        mode: str = "greedy",
        seed: int | None = None,
        condition_strength: float | None = None,
    ) -> str:
        """The reply to ``context`` (turns, oldest first), said with ``condition`` (default:
        neutral). ``seed`` makes the sampling modes repeatable (``None``: a fresh draw); it is
        ignored by greedy and beam. A seeded reply is the same whatever the size of the
        process's TensorFlow intra-op thread pool, except with a responder exported before its
        spec recorded ``sample_draw``: its ``sample_rerank`` replies (and sampled batches of
        several contexts) depend on that size (``reexport-responder`` gives it the new draw).
        ``condition_strength`` (0 to 10) overrides the options' condition guidance for this call.
        The reply is ``""`` (or only punctuation) when no
        candidate says anything (in ``sample`` mode, none of 10 draws): the caller decides
        what to say instead."""
        return self.respond_batch([context], [condition], mode, seed, condition_strength)[0]

    def respond_batch(
        self,
        contexts: Sequence[Sequence[str] | np.ndarray] | np.ndarray,
        conditions: Sequence[str | None] | np.ndarray | None = None,
        mode: str = "greedy",
        seed: int | None = None,
        condition_strength: float | None = None,
    ) -> list[str]:
        """:meth:`respond` for several contexts in one ``Session.run``."""
        self._closing.check()
        _check_mode_and_seed(mode, seed)
        strength = self.checked_strength(condition_strength)
        # a numpy array of contexts: 2-D when they have as many turns, else 1-D of objects (each
        # a list or an array of turns), which is how numpy holds contexts of different lengths
        if isinstance(contexts, np.ndarray) and contexts.ndim in (1, 2):
            contexts = contexts.tolist()
        if isinstance(contexts, (str, bytes)) or not isinstance(contexts, Sequence):
            raise RequestError(
                f"contexts must be a list of contexts (each a list of turns), got {type(contexts).__name__}"
            )
        if isinstance(conditions, np.ndarray) and conditions.ndim == 1:  # one a context, as the contexts may come
            conditions = conditions.tolist()
        # bytes (a bytearray, a memoryview of them) are a sequence of ints, each read as one condition
        if conditions is not None and (
            isinstance(conditions, (str, bytes, bytearray, memoryview)) or not isinstance(conditions, Sequence)
        ):
            raise RequestError(
                f"conditions must be a list with one condition (or None) per context, got {type(conditions).__name__}"
            )
        conditions = list(conditions) if conditions is not None else [None] * len(contexts)
        if len(conditions) != len(contexts):
            raise RequestError(f"{len(contexts)} contexts but {len(conditions)} conditions")
        if not contexts:
            return []
        pairs = [self._encoded_request(contexts, conditions, row) for row in range(len(contexts))]
        drawn = _seed(seed)
        result = self.decode_batch(pad_batch(pairs, self.spec.max_context_turns), mode, drawn, strength)
        replies = [self._chosen(result, row, mode) for row in range(len(contexts))]
        if mode == "sample":
            # cakechat's API drew again (up to 10 samples) while a sample said nothing; the redraws
            # are seeded from the request's seed, so a seeded reply still repeats
            for attempt in range(1, SAMPLING_ATTEMPTS):
                silent = [row for row, reply in enumerate(replies) if not has_words(reply)]
                if not silent:
                    break
                again = pad_batch([pairs[row] for row in silent], self.spec.max_context_turns)
                redrawn = self.decode_batch(again, mode, _redraw_seed(drawn, attempt), strength)
                for position, row in enumerate(silent):
                    replies[row] = self._chosen(redrawn, position, mode)
        return replies

    def _encoded_request(self, contexts: Sequence[Any], conditions: Sequence[str | None], row: int) -> EncodedPair:
        """Row ``row`` of a batch, encoded; a bad context or condition of a batch of several is
        named by its index (of a hundred contexts, "the context is empty" alone does not say which)."""
        try:
            context = self._encode_context(contexts[row])
        except RequestError as exc:
            raise _at_row(exc, f"contexts[{row}]", len(contexts)) from None
        try:
            condition = self._condition_id(conditions[row])
        except RequestError as exc:
            raise _at_row(exc, f"conditions[{row}]", len(contexts)) from None
        return EncodedPair(context, (END,), condition)

    def _chosen(self, result: DecodeResult, row: int, mode: str) -> str:
        """The text of the best of ``row``'s :data:`CANDIDATES_TO_PICK_FROM` best candidates
        that says something (a word), else of its best; ``result.ids`` is ``[batch, candidates,
        max_length]``, ``log_probs`` and ``lengths`` ``[batch, candidates]``.

        Candidates rank as they come (beam's best first), or for ``sample_rerank`` by their
        ``log p / tokens``. An empty candidate is passed over, as cakechat's API filtered its
        empty candidates out of the best ones before choosing a reply.
        """
        order = list(range(result.ids.shape[1]))
        if mode == "sample_rerank":
            scores = result.log_probs[row] / np.maximum(result.lengths[row], 1)
            order = [int(i) for i in np.argsort(-scores, kind="stable")]
        best = order[:CANDIDATES_TO_PICK_FROM]
        texts = (self.vocabulary.decode(result.ids[row, candidate]) for candidate in best)
        first = next(texts)
        return first if has_words(first) else next((text for text in texts if has_words(text)), first)

    def decode_batch(
        self, batch: Batch, mode: str, seed: int = 0, condition_strength: float | None = None
    ) -> DecodeResult:
        """The network's candidates for an encoded ``batch`` in ``mode``, with this responder's
        decoding options: one for greedy and sample, ``beam_width`` best first for beam,
        ``n_samples`` for sample_rerank (``seed`` seeds the sampling modes;
        ``condition_strength``, when given, replaces the options' guidance)."""
        with self._closing.call():
            return self._decode_batch(batch, mode, seed, condition_strength)

    def _decode_batch(self, batch: Batch, mode: str, seed: int, condition_strength: float | None) -> DecodeResult:
        options = self.options
        strength = self.checked_strength(condition_strength)
        common: dict[str, Any] = {
            "max_length": self.max_length,
            "repetition_penalty": options.repetition_penalty,
            "unpenalized_ids": self._unpenalized,
        }
        if strength > 0:  # only then: a model without guidance still decodes
            common["condition_strength"] = strength
        if mode == "greedy":
            return self._model.decode(batch.context_ids, batch.condition_ids, mode="greedy", **common)
        if mode == "beam":
            width = min(options.beam_width, len(self.vocabulary) - N_SPECIAL)
            return self._model.decode(
                batch.context_ids,
                batch.condition_ids,
                mode="beam",
                beam_width=width,
                length_penalty=options.length_penalty,
                **common,
            )
        if mode in ("sample", "sample_rerank"):
            return self._model.decode(
                batch.context_ids,
                batch.condition_ids,
                mode="sample",
                n_samples=options.n_samples if mode == "sample_rerank" else 1,
                temperature=options.temperature,
                seed=seed,
                **common,
            )
        raise RequestError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")

    def check_request(
        self,
        context: Sequence[str] | np.ndarray,
        condition: str | None = None,
        mode: str = "greedy",
        seed: int | None = None,
        condition_strength: float | None = None,
    ) -> None:
        """Raise the :class:`RequestError` that :meth:`respond` would raise for these arguments,
        without decoding anything (for callers that queue a request before it runs), or the
        :class:`~legacy_assistant.errors.ModelClosed` it raises after :meth:`close`."""
        self._closing.check()
        _check_mode_and_seed(mode, seed)
        self.checked_strength(condition_strength)
        self._encode_context(context)
        self._condition_id(condition)

    def score(self, context: Sequence[str] | np.ndarray, reply: str, condition: str | None = None) -> float:
        """The length-normalised log-likelihood of ``reply`` after ``context``: the mean natural
        log-probability of its tokens and END (0 is certain; lower is less likely). The reply
        is cut to ``max_reply_tokens`` like a training reply. A decoded reply that reached the
        decoding limit stopped without END, so the decoder's own figure for it (which has no END
        and one token more) differs from this one."""
        self._closing.check()
        if not isinstance(reply, str):
            raise RequestError(f"reply must be a string, got {type(reply).__name__}")
        # its first tokens, read from no more of its start than they need
        head = self.vocabulary.edge_tokens(reply, self.spec.max_reply_tokens - 1, last=False)
        ids = self.vocabulary.ids(head) + [END]
        pair = EncodedPair(self._encode_context(context), tuple(ids), self._condition_id(condition))
        batch = pad_batch([pair], self.spec.max_context_turns)
        with self._closing.call():
            log_probs = self._model.score(batch.context_ids, batch.condition_ids, batch.reply_ids)
        return float(np.sum(log_probs[0]) / len(ids))

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: every call then raises :class:`~legacy_assistant.errors.ModelClosed`."""
        return self._closing.closed

    def close(self) -> None:
        """Close the model's session; calls made after this (or cut short by it in another thread)
        raise :class:`~legacy_assistant.errors.ModelClosed`. Closing again does nothing."""
        self._closing.closed = True  # first: a call this cuts short sees it
        # let go of the graph and session, so that they are freed while this object is still
        # referenced (a ``with`` block's name, a list of models)
        model, self._model = self._model, self._closing.released()
        model.close()

    def __reduce__(self) -> Any:
        # Without this the model's GraphSession refuses first, with advice about exporting a
        # classifier artifact: say what to do with a responder instead.
        # copy.copy and copy.deepcopy come here too, and would share or fail on the same session.
        raise TypeError(
            "a Responder cannot be pickled or copied (it holds a loaded TensorFlow model): "
            "give the other process the responder directory and load it there with Responder.load; "
            "in this process, share this one (its methods may be called from many threads at once)"
        )

    def __enter__(self) -> Responder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checks -----------------------------------------------------------------------------

    def checked_strength(self, condition_strength: float | None) -> float:
        """The guidance strength of a call: the options' when ``None``, else the one given;
        raises :class:`RequestError` for one out of range, or above 0 on a model without guidance."""
        if condition_strength is None:
            return self.options.condition_strength
        strength = checked_condition_strength(condition_strength)
        if strength > 0 and not self.guided:
            raise GuidanceUnavailable(
                f"condition_strength {strength:g} needs condition guidance, which this responder's "
                f"SavedModel lacks ({guidance_help(self.info.path, self.info.runtime)})"
            )
        return strength

    def _condition_id(self, condition: str | None) -> int:
        name = self.default_condition if condition is None else known_condition(condition, self.conditions)
        index = None if name is None else self._condition_ids.get(name)
        if index is None:
            raise RequestError(f"unknown condition {condition!r}; this model knows {', '.join(self.conditions)}")
        return index

    def _encode_context(self, context: Sequence[str] | np.ndarray) -> tuple[tuple[int, ...], ...]:
        context = checked_context(context)
        encoded = self.vocabulary.encode_asked_context(context, self.spec.max_context_turns, self.spec.max_turn_tokens)
        if not encoded:
            raise RequestError("the context is empty: give at least one turn with text")
        return tuple(tuple(turn) for turn in encoded)


def _check_mode_and_seed(mode: str, seed: int | None) -> None:
    if mode not in MODES:
        raise RequestError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    check_seed(seed)


def _at_row(error: RequestError, where: str, rows: int) -> RequestError:
    """``error`` as it is for a call of one row (``respond``), else its message led by ``where``."""
    if rows == 1:
        return error
    named = RequestError(f"{where}: {error}")
    named.public_message = error.public_message
    return named


def _seed(seed: int | None) -> int:
    return secrets.randbits(63) if seed is None else int(seed)


def _redraw_seed(seed: int, attempt: int) -> int:
    """The seed of redraw ``attempt`` of a sample drawn with ``seed``, within int64."""
    return (seed + attempt * 1_000_003 + 2**63) % 2**64 - 2**63
