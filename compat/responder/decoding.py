"""Decoding inside the graph: greedy, beam search, sampling, and scoring given replies.

Each mode is one ``tf.while_loop`` over reply steps, so a whole batch of replies costs one
``Session.run``. :func:`build_decoding` adds the placeholders and the four computations to the
graph holding a :class:`~compat.responder.network.ResponderNetwork` (the trainer's graph and
the exported one alike); :class:`DecodeRunner` validates numpy inputs, feeds them and returns
a :class:`~compat.responder.spec.DecodeResult`.

At every step the model's log-probabilities ``log p`` ``[n, V]`` are turned into search scores::

    score = log p - NEG * banned - log(repetition_penalty) * used * penalizable

``banned`` is PAD, UNK and START plus the fed ``banned_ids``; ``used`` marks the tokens the
reply already holds (so a repeated token's probability is divided by the penalty, as cakechat
does; ``unpenalized_ids`` are exempt, e.g. punctuation). Greedy takes the argmax, sampling
draws from ``softmax(score / temperature)`` with ``tf.random.stateless_categorical`` keyed by
``(seed, step)``, and beam search keeps the ``beam_width`` best prefixes. The ``log_probs``
returned are always sums of the plain model ``log p`` of the chosen tokens.

Beam search keeps a fixed beam of ``k`` entries per context. An entry that has produced END
is finished: it stays in the beam with its score and length frozen (its only extension is a
free PAD) and competes for the ``k`` places with the live entries, compared by length-normalised
score ``score / length ** length_penalty``. The search ends when every entry has finished or
at ``max_length``; the ``k`` entries are returned best first by ``log_prob / length **
length_penalty``. With ``k = 1`` this is exactly greedy decoding.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from compat.graph_session import GraphSession
from compat.responder.network import DecoderStart, ResponderNetwork
from compat.responder.spec import ALWAYS_BANNED, END, N_SPECIAL, PAD, START, DecodeResult
from compat.runtime import tf

# A score no real candidate reaches, finite so that sums and normalising never make NaN.
NEG = -1e9

CONTEXT = "context_ids"
CONDITION = "condition_ids"
REPLY = "reply_ids"
MAX_LENGTH = "max_length"
BANNED = "banned_ids"
UNPENALIZED = "unpenalized_ids"
REPETITION_PENALTY = "repetition_penalty"
BEAM_WIDTH = "beam_width"
LENGTH_PENALTY = "length_penalty"
TEMPERATURE = "temperature"
SEED = "seed"
N_SAMPLES = "n_samples"

IDS = "ids"
LOG_PROBS = "log_probs"
LENGTHS = "lengths"
TOKEN_LOG_PROBS = "token_log_probs"

_PENALTY_INPUTS = (CONTEXT, CONDITION, MAX_LENGTH, BANNED, UNPENALIZED, REPETITION_PENALTY)
SIGNATURE_INPUTS: dict[str, tuple[str, ...]] = {
    "greedy": _PENALTY_INPUTS,
    "beam": _PENALTY_INPUTS + (BEAM_WIDTH, LENGTH_PENALTY),
    "sample": _PENALTY_INPUTS + (TEMPERATURE, SEED, N_SAMPLES),
    "score": (CONTEXT, CONDITION, REPLY),
}
SIGNATURE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "greedy": (IDS, LOG_PROBS, LENGTHS),
    "beam": (IDS, LOG_PROBS, LENGTHS),
    "sample": (IDS, LOG_PROBS, LENGTHS),
    "score": (TOKEN_LOG_PROBS,),
}
MODES = ("greedy", "beam", "sample")


@dataclass(frozen=True)
class DecodeOps:
    """The decoding tensors of one graph.

    Attributes:
        inputs: placeholder by input name (the names above; all but the context, condition and
            reply have defaults).
        outputs: per signature (``greedy``, ``beam``, ``sample``, ``score``), tensor by output name.
        vocab_size: ``V``; ids lie in ``[0, V)``.
        n_conditions: condition ids lie in ``[0, n_conditions)``.
    """

    inputs: Mapping[str, "tf.Tensor"]
    outputs: Mapping[str, Mapping[str, "tf.Tensor"]]
    vocab_size: int
    n_conditions: int


def build_decoding(network: ResponderNetwork) -> DecodeOps:
    """Add placeholders, greedy / beam / sample decoding and scoring to ``network``'s graph.

    Call inside the graph (``GraphSession.bound()``), after the network's variables exist.
    Inputs: ``context_ids`` int32 ``[batch, turns, turn_len]``, ``condition_ids`` int32
    ``[batch]``, ``reply_ids`` int32 ``[batch, reply_len]`` (scoring), and scalars
    ``max_length`` (int32, default ``spec.max_reply_tokens``), ``beam_width`` (5),
    ``length_penalty`` (1.0), ``temperature`` (1.0), ``seed`` (int64, 0), ``n_samples`` (1),
    ``repetition_penalty`` (1.0), and id lists ``banned_ids`` / ``unpenalized_ids`` (int32
    ``[n]``, default empty). Outputs: ``ids`` int32 ``[batch, candidates, max_length]``,
    ``log_probs`` float32 and ``lengths`` int32 ``[batch, candidates]``; scoring gives
    ``token_log_probs`` float32 ``[batch, reply_len]``.
    """
    spec = network.spec
    vocab = spec.vocab_size
    with tf.name_scope("decoding"):
        empty = tf.zeros([0], tf.int32)
        inputs = {
            CONTEXT: tf.placeholder(tf.int32, [None, None, None], name=CONTEXT),
            CONDITION: tf.placeholder(tf.int32, [None], name=CONDITION),
            REPLY: tf.placeholder(tf.int32, [None, None], name=REPLY),
            MAX_LENGTH: tf.placeholder_with_default(spec.max_reply_tokens, [], name=MAX_LENGTH),
            BANNED: tf.placeholder_with_default(empty, [None], name=BANNED),
            UNPENALIZED: tf.placeholder_with_default(empty, [None], name=UNPENALIZED),
            REPETITION_PENALTY: tf.placeholder_with_default(1.0, [], name=REPETITION_PENALTY),
            BEAM_WIDTH: tf.placeholder_with_default(5, [], name=BEAM_WIDTH),
            LENGTH_PENALTY: tf.placeholder_with_default(1.0, [], name=LENGTH_PENALTY),
            TEMPERATURE: tf.placeholder_with_default(1.0, [], name=TEMPERATURE),
            SEED: tf.placeholder_with_default(tf.constant(0, tf.int64), [], name=SEED),
            N_SAMPLES: tf.placeholder_with_default(1, [], name=N_SAMPLES),
        }
        context = network.encode(inputs[CONTEXT], back_prop=False)
        start = network.decoder_start(context, inputs[CONDITION])
        max_length = tf.maximum(inputs[MAX_LENGTH], 1)
        ban_bias = _id_mask(tf.concat([tf.constant(ALWAYS_BANNED, tf.int32), inputs[BANNED]], 0), vocab) * NEG
        exempt = _id_mask(inputs[UNPENALIZED], vocab)
        repetition = tf.log(inputs[REPETITION_PENALTY]) * (1.0 - exempt)  # [V], subtracted where used
        penalties = _Penalties(ban_bias, repetition)
        outputs = {}
        with tf.name_scope("greedy"):
            outputs["greedy"] = _candidates(
                _sequential(network, start, max_length, penalties, _argmax), tf.shape(context)[0], 1, max_length
            )
        with tf.name_scope("sample"):
            n_samples = tf.maximum(inputs[N_SAMPLES], 1)
            temperature = inputs[TEMPERATURE]
            seed = inputs[SEED]

            def draw(scores: "tf.Tensor", step: "tf.Tensor") -> "tf.Tensor":
                key = tf.stack([seed, tf.cast(step, tf.int64)])
                return tf.cast(tf.random.stateless_categorical(scores / temperature, 1, seed=key)[:, 0], tf.int32)

            repeated = DecoderStart(
                static=tf.repeat(start.static, n_samples, axis=0), state=tf.repeat(start.state, n_samples, axis=0)
            )
            outputs["sample"] = _candidates(
                _sequential(network, repeated, max_length, penalties, draw),
                tf.shape(context)[0],
                n_samples,
                max_length,
            )
        with tf.name_scope("beam"):
            outputs["beam"] = _beam(
                network, start, max_length, penalties, tf.maximum(inputs[BEAM_WIDTH], 1), inputs[LENGTH_PENALTY]
            )
        with tf.name_scope("score"):
            states = network.teacher_forced(start, inputs[REPLY], back_prop=False)
            outputs["score"] = {TOKEN_LOG_PROBS: network.token_log_probs(states, inputs[REPLY])}
    return DecodeOps(inputs=inputs, outputs=outputs, vocab_size=vocab, n_conditions=spec.n_conditions)


@dataclass(frozen=True)
class _Penalties:
    ban_bias: "tf.Tensor"  # float32 [V]: NEG at banned ids, else 0
    repetition: "tf.Tensor"  # float32 [V]: log(penalty) at penalizable ids, else 0

    def scores(self, log_probs: "tf.Tensor", used: "tf.Tensor") -> "tf.Tensor":
        """Search scores ``[n, V]`` from the model's ``log_probs`` and the 0/1 ``used`` marks ``[n, V]``."""
        return log_probs + self.ban_bias - used * self.repetition


def _id_mask(ids: "tf.Tensor", vocab: int) -> "tf.Tensor":
    """float32 ``[vocab]``: 1 at each of the int32 ``ids`` (repeats allowed), else 0."""
    counts = tf.scatter_nd(ids[:, None], tf.ones_like(ids, tf.float32), [vocab])
    return tf.minimum(counts, 1.0)


def _argmax(scores: "tf.Tensor", step: "tf.Tensor") -> "tf.Tensor":
    return tf.argmax(scores, axis=1, output_type=tf.int32)


def _pick(matrix: "tf.Tensor", rows: "tf.Tensor", columns: "tf.Tensor") -> "tf.Tensor":
    """``matrix[rows[i], columns[i]]`` for float ``[n, V]`` and int32 index vectors ``[m]``."""
    width = tf.shape(matrix)[1]
    return tf.gather(tf.reshape(matrix, [-1]), rows * width + columns)


def _sequential(network, start: DecoderStart, max_length, penalties: _Penalties, choose) -> tuple:
    """One token per row and step, ``choose(scores [n, V], step) -> int32 [n]``.

    Returns ``(ids [n, max_length], log_probs [n], lengths [n])``.
    """
    vocab = network.spec.vocab_size
    n = tf.shape(start.state)[0]
    rows = tf.range(n)

    def body(t, state, previous, finished, log_prob, length, used, tokens):
        state = network.decoder_step(previous, state, start.static)
        log_probs = tf.nn.log_softmax(network.logits(state))
        token = choose(penalties.scores(log_probs, used), t)
        alive = tf.logical_not(finished)
        token = tf.where(alive, token, tf.fill([n], PAD))
        log_prob += tf.where(alive, _pick(log_probs, rows, token), tf.zeros([n]))
        length += tf.cast(alive, tf.int32)
        used = tf.maximum(used, tf.one_hot(token, vocab))
        finished = tf.logical_or(finished, tf.equal(token, END))
        return t + 1, state, token, finished, log_prob, length, used, tokens.write(t, token)

    _, _, _, _, log_prob, length, _, tokens = tf.while_loop(
        lambda t, *rest: tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(rest[2]))),
        body,
        (
            tf.constant(0),
            start.state,
            tf.fill([n], START),
            tf.zeros([n], tf.bool),
            tf.zeros([n], tf.float32),
            tf.zeros([n], tf.int32),
            tf.zeros(tf.stack([n, vocab]), tf.float32),
            tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None]),
        ),
        back_prop=False,
        name="decode_loop",
    )
    ids = tf.transpose(tokens.stack())  # [n, steps]
    ids = tf.pad(ids, tf.stack([[0, 0], tf.stack([0, max_length - tf.shape(ids)[1]])]))
    return ids, log_prob, length


def _candidates(decoded: tuple, batch, per_context, max_length) -> dict[str, "tf.Tensor"]:
    """Rows ``b * per_context + j`` of ``_sequential``'s outputs as ``[batch, per_context, ...]``."""
    ids, log_prob, length = decoded
    return {
        IDS: tf.reshape(ids, tf.stack([batch, per_context, max_length]), name=IDS),
        LOG_PROBS: tf.reshape(log_prob, tf.stack([batch, per_context]), name=LOG_PROBS),
        LENGTHS: tf.reshape(length, tf.stack([batch, per_context]), name=LENGTHS),
    }


def _beam(network, start: DecoderStart, max_length, penalties: _Penalties, width, length_penalty) -> dict:
    """Beam search (see the module docstring): ``[batch, width, ...]`` candidates, best first."""
    vocab = network.spec.vocab_size
    batch = tf.shape(start.state)[0]
    n = batch * width
    static = tf.repeat(start.static, width, axis=0)  # row b * width + j
    offsets = tf.range(batch)[:, None] * width  # [batch, 1]
    # Only the first copy of each context is live at the first step; the others would repeat it.
    first = tf.tile(tf.concat([[0.0], tf.fill(tf.stack([width - 1]), NEG)], axis=0), tf.stack([batch]))
    pad_only = (1.0 - tf.one_hot(PAD, vocab)) * NEG  # a finished entry's one extension: PAD, free

    def body(t, state, previous, finished, search, log_prob, length, used, ids):
        state = network.decoder_step(previous, state, static)
        log_probs = tf.nn.log_softmax(network.logits(state))  # [n, V]
        totals = tf.where(
            finished, search[:, None] + pad_only, search[:, None] + penalties.scores(log_probs, used)
        )
        lengths_then = tf.cast(tf.where(finished, length, tf.fill([n], t + 1)), tf.float32)
        normalised = totals / tf.pow(lengths_then, length_penalty)[:, None]
        _, best = tf.nn.top_k(tf.reshape(normalised, tf.stack([batch, width * vocab])), width)  # [batch, width]
        parent = tf.reshape(best // vocab + offsets, [-1])  # [n] rows of the entries extended
        token = tf.reshape(best % vocab, [-1])
        was_finished = tf.gather(finished, parent)
        alive = tf.logical_not(was_finished)
        token = tf.where(alive, token, tf.fill([n], PAD))
        search = _pick(totals, parent, token)
        log_prob = tf.gather(log_prob, parent) + tf.where(alive, _pick(log_probs, parent, token), tf.zeros([n]))
        length = tf.gather(length, parent) + tf.cast(alive, tf.int32)
        used = tf.maximum(tf.gather(used, parent), tf.one_hot(token, vocab))
        ids = tf.gather(ids, parent) + tf.one_hot(t, max_length, dtype=tf.int32)[None, :] * token[:, None]
        finished = tf.logical_or(was_finished, tf.equal(token, END))
        return t + 1, tf.gather(state, parent), token, finished, search, log_prob, length, used, ids

    _, _, _, _, _, log_prob, length, _, ids = tf.while_loop(
        lambda t, *rest: tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(rest[2]))),
        body,
        (
            tf.constant(0),
            tf.repeat(start.state, width, axis=0),
            tf.fill([n], START),
            tf.zeros([n], tf.bool),
            first,
            tf.zeros([n], tf.float32),
            tf.zeros([n], tf.int32),
            tf.zeros(tf.stack([n, vocab]), tf.float32),
            tf.zeros(tf.stack([n, max_length]), tf.int32),  # PAD == 0: unwritten steps stay PAD
        ),
        back_prop=False,
        name="beam_loop",
    )
    final = log_prob / tf.pow(tf.cast(tf.maximum(length, 1), tf.float32), length_penalty)
    _, order = tf.nn.top_k(tf.reshape(final, tf.stack([batch, width])), width)
    rows = tf.reshape(order + offsets, [-1])
    return {
        IDS: tf.reshape(tf.gather(ids, rows), tf.stack([batch, width, max_length]), name=IDS),
        LOG_PROBS: tf.reshape(tf.gather(log_prob, rows), tf.stack([batch, width]), name=LOG_PROBS),
        LENGTHS: tf.reshape(tf.gather(length, rows), tf.stack([batch, width]), name=LENGTHS),
    }


# -- numpy side ----------------------------------------------------------------------------


def check_context(
    context_ids: np.ndarray, condition_ids: np.ndarray, vocab_size: int, n_conditions: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """int32 ``context_ids`` ``[batch, turns, turn_len]`` and ``condition_ids`` ``[batch]``, in range; else ``ValueError``."""
    context = np.asarray(context_ids)
    conditions = np.asarray(condition_ids)
    if context.ndim != 3:
        raise ValueError(f"{what}: context_ids must be [batch, turns, turn_len], got shape {context.shape}")
    if conditions.shape != (context.shape[0],):
        raise ValueError(
            f"{what}: condition_ids must be [batch] = [{context.shape[0]}], got shape {conditions.shape}"
        )
    for name, values, limit in (("context_ids", context, vocab_size), ("condition_ids", conditions, n_conditions)):
        if values.size and not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{what}: {name} must be integers, got {values.dtype}")
        if values.size and (values.min() < 0 or values.max() >= limit):
            raise ValueError(f"{what}: {name} must lie in [0, {limit}), got values from {values.min()} to {values.max()}")
    return context.astype(np.int32), conditions.astype(np.int32)


def check_reply(reply_ids: np.ndarray, batch: int, vocab_size: int, what: str) -> np.ndarray:
    """int32 ``reply_ids`` ``[batch, reply_len]`` in range; else ``ValueError``."""
    reply = np.asarray(reply_ids)
    if reply.ndim != 2 or reply.shape[0] != batch:
        raise ValueError(f"{what}: reply_ids must be [batch, reply_len] with batch {batch}, got shape {reply.shape}")
    if reply.size and not np.issubdtype(reply.dtype, np.integer):
        raise ValueError(f"{what}: reply_ids must be integers, got {reply.dtype}")
    if reply.size and (reply.min() < 0 or reply.max() >= vocab_size):
        raise ValueError(f"{what}: reply_ids must lie in [0, {vocab_size}), got values from {reply.min()} to {reply.max()}")
    return reply.astype(np.int32)


def _check_ids(ids: np.ndarray | None, vocab_size: int, name: str) -> np.ndarray:
    if ids is None:
        return np.zeros([0], np.int32)
    values = np.asarray(ids)
    if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise ValueError(f"decode: {name} must be a 1-D integer array, got shape {values.shape} of {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= vocab_size):
        raise ValueError(f"decode: {name} must lie in [0, {vocab_size})")
    return values.astype(np.int32)


class DecodeRunner:
    """Feeds numpy inputs to a graph's :class:`DecodeOps`; one ``Session.run`` per call, thread-safe."""

    def __init__(self, graph_session: GraphSession, ops: DecodeOps) -> None:
        self._gs = graph_session
        self._ops = ops

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
    ) -> DecodeResult:
        """Replies for ``context_ids`` int ``[batch, turns, turn_len]`` and ``condition_ids`` int ``[batch]``.

        ``mode``: ``"greedy"`` (1 candidate), ``"beam"`` (``beam_width`` candidates, best
        first), or ``"sample"`` (``n_samples`` candidates drawn at ``temperature`` with
        ``seed``: the same seed gives the same ids). ``banned_ids`` are never produced (PAD,
        UNK and START never are); ``repetition_penalty`` divides the probability of a token
        the reply already holds, except ``unpenalized_ids``. See :class:`DecodeResult`.
        """
        ops = self._ops
        context, conditions = check_context(context_ids, condition_ids, ops.vocab_size, ops.n_conditions, "decode")
        if mode not in MODES:
            raise ValueError(f"decode: mode must be one of {', '.join(MODES)}, got {mode!r}")
        _require(isinstance(max_length, (int, np.integer)) and max_length >= 1, "max_length must be an integer >= 1", max_length)
        _require(repetition_penalty > 0, "repetition_penalty must be positive", repetition_penalty)
        values = {
            CONTEXT: context,
            CONDITION: conditions,
            MAX_LENGTH: int(max_length),
            BANNED: _check_ids(banned_ids, ops.vocab_size, "banned_ids"),
            UNPENALIZED: _check_ids(unpenalized_ids, ops.vocab_size, "unpenalized_ids"),
            REPETITION_PENALTY: float(repetition_penalty),
        }
        if mode == "beam":
            limit = ops.vocab_size - N_SPECIAL
            _require(
                isinstance(beam_width, (int, np.integer)) and 1 <= beam_width <= limit,
                f"beam_width must be an integer in [1, {limit}]",
                beam_width,
            )
            _require(length_penalty >= 0, "length_penalty must be >= 0", length_penalty)
            values.update({BEAM_WIDTH: int(beam_width), LENGTH_PENALTY: float(length_penalty)})
            candidates = int(beam_width)
        elif mode == "sample":
            _require(isinstance(n_samples, (int, np.integer)) and n_samples >= 1, "n_samples must be an integer >= 1", n_samples)
            _require(temperature > 0, "temperature must be positive", temperature)
            _require(isinstance(seed, (int, np.integer)) and -2**63 <= seed < 2**63, "seed must be a 64-bit integer", seed)
            values.update({TEMPERATURE: float(temperature), SEED: int(seed), N_SAMPLES: int(n_samples)})
            candidates = int(n_samples)
        else:
            candidates = 1
        if context.shape[0] == 0:
            return DecodeResult(
                ids=np.zeros((0, candidates, int(max_length)), np.int32),
                log_probs=np.zeros((0, candidates), np.float32),
                lengths=np.zeros((0, candidates), np.int32),
            )
        feed = {ops.inputs[name]: value for name, value in values.items()}
        outputs = ops.outputs[mode]
        ids, log_probs, lengths = self._gs.run([outputs[IDS], outputs[LOG_PROBS], outputs[LENGTHS]], feed)
        return DecodeResult(ids=ids, log_probs=log_probs, lengths=lengths)

    def score(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, reply_len]``: log p of each token of ``reply_ids`` (END then PAD-padded), 0 at PAD."""
        ops = self._ops
        context, conditions = check_context(context_ids, condition_ids, ops.vocab_size, ops.n_conditions, "score")
        reply = check_reply(reply_ids, context.shape[0], ops.vocab_size, "score")
        if reply.size == 0:
            return np.zeros(reply.shape, np.float32)
        feed = {ops.inputs[CONTEXT]: context, ops.inputs[CONDITION]: conditions, ops.inputs[REPLY]: reply}
        return self._gs.run(ops.outputs["score"][TOKEN_LOG_PROBS], feed)


def _require(condition: bool, message: str, value: object) -> None:
    if not condition:
        raise ValueError(f"decode: {message}, got {value!r}")
