"""Decoding inside the graph: greedy, beam search, sampling, and scoring given replies.

Each mode is one ``tf.while_loop`` over reply steps, so a whole batch of replies costs one
``Session.run``. :func:`build_decoding` adds the placeholders and the four computations to the
graph holding a :class:`~compat.responder.network.ResponderNetwork` (the trainer's graph and
the exported one alike); :class:`DecodeRunner` validates numpy inputs, feeds them and returns
a :class:`~compat.responder.spec.DecodeResult`.

At every step the model's log-probabilities ``log p`` ``[n, V]`` are turned into search scores::

    score = log p + NEG * banned - log(repetition_penalty) * used * penalizable

``banned`` is PAD, UNK and START plus the fed ``banned_ids``; ``used`` marks the tokens the
reply already holds (so a repeated token's probability is divided by the penalty, as cakechat
does, before any temperature; a penalty below 1 favours repeats; ``unpenalized_ids`` are
exempt, e.g. punctuation). Greedy takes the argmax, sampling draws from
``softmax(score / temperature)`` keyed by ``(seed, step)`` as the spec's ``sample_draw`` says
(:mod:`compat.responder.sampling`), and beam search keeps the ``beam_width`` best prefixes. The ``log_probs`` returned
are always sums of the plain model ``log p`` of the chosen tokens (what ``score`` gives).

**Condition guidance** (the ``*_guided`` computations, ``condition_strength`` ``s`` > 0): every
row is decoded under all ``K`` conditions at once, fed the same tokens, and the search uses::

    log p(. | c) + s * (log p(. | c) - mean_k log p(. | k))

in place of ``log p(. | c)``: what the requested condition ``c`` makes likelier than the
conditions do on average is made likelier still (contrastive guidance, as classifier-free
guidance does for diffusion models). It costs ``K`` decoder rows per reply; the encoder runs
once. ``log_probs`` stay the plain model's ``log p(. | c)``. With ``s = 0`` a guided
computation would give the unguided one's replies, but ``s = 0`` runs the unguided one.

A seeded sample repeats exactly for the same call, whatever TensorFlow's thread pool (with the
``gumbel`` draw; a ``categorical`` one, of responders exported before it, can change with the
intra-op thread count); a context's draw also depends on its row in the batch (one key serves
the whole batch), so the same seed over another batch is another draw.

Beam search keeps a fixed beam of ``k`` entries per context. An entry that has produced END
is finished: it stays in the beam with its score and length frozen (its only extension is a
free PAD) and competes for the ``k`` places with the live entries, compared by length-normalised
score ``score / length ** length_penalty``. The search ends when every entry has finished or
at ``max_length``; the ``k`` entries are returned best first by ``log_prob / length **
length_penalty``. With ``k = 1`` this is exactly greedy decoding. The search needs ``k``
allowed tokens: with fewer, the spare entries would hold banned tokens scored by their plain
model ``log_probs`` (not near ``NEG``) in that final ranking, so one could rank first. So
:class:`DecodeRunner` refuses ``k`` above ``vocab_size - 4``, and ``banned_ids`` that leave
fewer than ``k`` tokens allowed (END counts; PAD, UNK and START never are allowed); greedy
decoding and sampling need one allowed token, or they would produce banned ones.

Costs per step: greedy and sampling do one ``[n, H] @ [H, V]`` product, a log-softmax and an
argmax or draw over the vocabulary; beam search adds one per-entry ``top_k``. Everything else
(the repetition penalty, the beam's bookkeeping, the replies so far) touches ``n * k`` or
``n * max_length`` numbers, not ``n * V``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from compat.graph_session import FixedRun, GraphSession
from compat.responder.inputs import (  # noqa: F401  (re-exported: the names of the signatures)
    BANNED,
    BEAM_WIDTH,
    CONDITION,
    CONDITION_STRENGTH,
    CONTEXT,
    GUIDED,
    GUIDED_SIGNATURE_INPUTS,
    GUIDED_SIGNATURE_OUTPUTS,
    IDS,
    LENGTH_PENALTY,
    LENGTHS,
    LOG_PROBS,
    MAX_LENGTH,
    MODES,
    N_SAMPLES,
    NEG,
    REPETITION_PENALTY,
    REPLY,
    SEED,
    SIGNATURE_INPUTS,
    SIGNATURE_OUTPUTS,
    TEMPERATURE,
    TOKEN_LOG_PROBS,
    UNPENALIZED,
    check_context,
    check_reply,
    decode_call,
    holding_a_token,
)
from compat.responder.network import DecoderStart, ResponderNetwork
from compat.responder.sampling import draw_tokens
from compat.responder.spec import ALWAYS_BANNED, END, PAD, START, DecodeResult
from compat.runtime import tf

GUIDANCE_MISSING = (
    "a responder exported with condition guidance; this SavedModel predates it "
    "(export its weights again: legacy-assistant reexport-responder DIR)"
)


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

    inputs: Mapping[str, tf.Tensor]
    outputs: Mapping[str, Mapping[str, tf.Tensor]]
    vocab_size: int
    n_conditions: int


def build_decoding(network: ResponderNetwork) -> DecodeOps:
    """Add placeholders, greedy / beam / sample decoding and scoring to ``network``'s graph.

    Call inside the graph (``GraphSession.bound()``), after the network's variables exist.
    Inputs: ``context_ids`` int32 ``[batch, turns, turn_len]``, ``condition_ids`` int32
    ``[batch]``, ``reply_ids`` int32 ``[batch, reply_len]`` (scoring), and scalars
    ``max_length`` (int32, default ``spec.max_reply_tokens``; :class:`DecodeRunner` feeds at
    most :data:`compat.responder.inputs.MAX_DECODE_LENGTH`: the loops' buffers are ``[n,
    max_length + 1]``, allocated up front and copied every step), ``beam_width`` (5),
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
            CONDITION_STRENGTH: tf.placeholder_with_default(0.0, [], name=CONDITION_STRENGTH),
        }
        context = network.encode(inputs[CONTEXT], back_prop=False)
        start = network.decoder_start(context, inputs[CONDITION])
        max_length = tf.maximum(inputs[MAX_LENGTH], 1)
        ban_bias = _id_mask(tf.concat([tf.constant(ALWAYS_BANNED, tf.int32), inputs[BANNED]], 0), vocab) * NEG
        exempt = _id_mask(inputs[UNPENALIZED], vocab)
        repetition = tf.log(inputs[REPETITION_PENALTY]) * (1.0 - exempt)  # [V], subtracted where used
        penalties = _Penalties(ban_bias, repetition, tf.not_equal(inputs[REPETITION_PENALTY], 1.0))
        n_samples = tf.maximum(inputs[N_SAMPLES], 1)
        width = tf.maximum(inputs[BEAM_WIDTH], 1)
        temperature = inputs[TEMPERATURE]
        seed = inputs[SEED]

        def draw(scores: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
            key = tf.stack([seed, tf.cast(step, tf.int64)])
            return draw_tokens(tf, spec.sample_draw, scores, temperature, key)

        guided = _GuidedStart.make(network, context, inputs[CONDITION], inputs[CONDITION_STRENGTH])
        batch = tf.shape(context)[0]
        outputs = {}
        for suffix, stepper in (("", _Stepper.plain), (GUIDED, guided.stepper)):
            with tf.name_scope("greedy" + suffix):
                outputs["greedy" + suffix] = _candidates(
                    _sequential(stepper(network, start, 1), max_length, penalties, _argmax), batch, 1, max_length
                )
            with tf.name_scope("sample" + suffix):
                outputs["sample" + suffix] = _candidates(
                    _sequential(stepper(network, start, n_samples), max_length, penalties, draw),
                    batch,
                    n_samples,
                    max_length,
                )
            with tf.name_scope("beam" + suffix):
                outputs["beam" + suffix] = _beam(
                    stepper(network, start, width), batch, max_length, penalties, width, inputs[LENGTH_PENALTY]
                )
        with tf.name_scope("score"):
            states = network.teacher_forced(start, inputs[REPLY], back_prop=False)
            outputs["score"] = {TOKEN_LOG_PROBS: network.token_log_probs(states, inputs[REPLY])}
    return DecodeOps(inputs=inputs, outputs=outputs, vocab_size=vocab, n_conditions=spec.n_conditions)


@dataclass(frozen=True)
class _Penalties:
    ban_bias: tf.Tensor  # float32 [V]: NEG at banned ids, else 0
    repetition: tf.Tensor  # float32 [V]: log(penalty) at penalizable ids, else 0
    penalising: tf.Tensor  # bool []: the repetition penalty is not 1

    def scores(self, log_probs: tf.Tensor, buffer: _Buffer, ids: tf.Tensor) -> tf.Tensor:
        """Search scores ``[n, V]`` from the model's ``log_probs`` and the replies so far (``ids``).

        Each token a row holds loses ``repetition[token]`` once however often it occurs: the
        update writes one value per (row, token) cell, the same value for repeats. START and
        PAD cells are touched too, harmlessly: both are banned. Touching ``n * (max_length +
        1)`` cells, rather than keeping a ``[n, V]`` mask of used tokens, keeps this step's
        work off the vocabulary's width. The update still copies the ``[n, V]`` scores, a
        sixth of a greedy step's time at 16 rows, so it runs only when the penalty is not 1
        (the default), where it would subtract zeros.
        """
        scores = log_probs + self.ban_bias

        def penalised() -> tf.Tensor:
            used = tf.stack([buffer.cell_rows, tf.reshape(ids, [-1])], axis=1)  # [cells, 2]: (row, token)
            lowered = tf.gather_nd(scores, used) - tf.gather(self.repetition, used[:, 1])
            return tf.tensor_scatter_nd_update(scores, used, lowered)

        return tf.cond(self.penalising, penalised, lambda: scores)


@dataclass(frozen=True)
class _Buffer:
    """Loop-invariant helpers for the replies being built, int32 ``[n, max_length + 1]``.

    Column 0 holds START and column ``t + 1`` the token of step ``t``; unwritten cells are
    PAD (== 0). The previous token, whether a reply has ended and its length are all read
    from this one loop variable rather than carried in loop variables of their own.
    """

    empty: tf.Tensor  # [n, max_length + 1]: START, then PAD
    cell_rows: tf.Tensor  # [n * (max_length + 1)]: the row of each cell, row-major
    step_cells: tf.Tensor  # [max_length, n, 2]: the (row, column) pairs step t writes

    @classmethod
    def make(cls, n: tf.Tensor, max_length: tf.Tensor) -> _Buffer:
        width = max_length + 1
        rows = tf.range(n)
        empty = tf.concat([tf.fill(tf.stack([n, 1]), START), tf.zeros(tf.stack([n, max_length]), tf.int32)], 1)
        cell_rows = tf.reshape(tf.tile(rows[:, None], tf.stack([1, width])), [-1])
        columns = tf.tile(tf.range(1, width)[:, None, None], tf.stack([1, n, 1]))  # [max_length, n, 1]
        step_cells = tf.concat([tf.tile(rows[None, :, None], tf.stack([max_length, 1, 1])), columns], axis=2)
        return cls(empty=empty, cell_rows=cell_rows, step_cells=step_cells)

    @staticmethod
    def previous(ids: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """int32 ``[n]``: the token before step ``step`` (START at step 0)."""
        return tf.gather(ids, step, axis=1)

    @staticmethod
    def finished(ids: tf.Tensor) -> tf.Tensor:
        """bool ``[n]``: the reply holds END."""
        return tf.reduce_any(tf.equal(ids, END), axis=1)

    def write(self, ids: tf.Tensor, step: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
        """``ids`` with step ``step``'s column set to ``tokens`` ``[n]``."""
        return tf.tensor_scatter_nd_update(ids, tf.gather(self.step_cells, step), tokens)

    @staticmethod
    def replies(ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(ids [n, max_length], lengths [n])`` without the START column.

        No reply holds PAD before its end (PAD is banned), so its length is its count of non-PAD.
        """
        replies = ids[:, 1:]
        return replies, tf.reduce_sum(tf.cast(tf.not_equal(replies, PAD), tf.int32), axis=1)


def _not_done(t: tf.Tensor, ids: tf.Tensor, max_length: tf.Tensor) -> tf.Tensor:
    return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(_Buffer.finished(ids))))


def _id_mask(ids: tf.Tensor, vocab: int) -> tf.Tensor:
    """float32 ``[vocab]``: 1 at each of the int32 ``ids`` (repeats allowed), else 0."""
    counts = tf.scatter_nd(ids[:, None], tf.ones_like(ids, tf.float32), [vocab])
    return tf.minimum(counts, 1.0)


def _argmax(scores: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    return tf.argmax(scores, axis=1, output_type=tf.int32)


@dataclass(frozen=True)
class _Stepper:
    """One decoder step for every row: ``step(previous [n], state) -> (state, log_probs [n, V],
    search_log_probs [n, V])``. Unguided, the state is ``[n, H]`` and both log-probs are the
    model's; guided, the state is ``[n, K, H]`` (the row under each condition) and the search
    log-probs are the guided ones (module docstring). Either way a beam reorders states by
    gathering rows (axis 0)."""

    network: ResponderNetwork
    static: tf.Tensor  # [n, 3H] unguided, [n * K, 3H] guided
    initial: tf.Tensor  # [n, H] unguided, [n, K, H] guided
    guidance: tuple[tf.Tensor, tf.Tensor, int] | None = None  # (strength, requested [n], K)

    @classmethod
    def plain(cls, network: ResponderNetwork, start: DecoderStart, repeat) -> _Stepper:
        """Rows ``b * repeat + j`` for ``start``'s contexts ``b``."""
        if isinstance(repeat, int) and repeat == 1:  # a tensor count always repeats
            return cls(network, start.static, start.state)
        return cls(network, tf.repeat(start.static, repeat, axis=0), tf.repeat(start.state, repeat, axis=0))

    def step(self, previous: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        network = self.network
        if self.guidance is None:
            state = network.decoder_step(previous, state, self.static)
            log_probs = tf.nn.log_softmax(network.logits(state))
            return state, log_probs, log_probs
        strength, requested, k = self.guidance
        shape = tf.shape(state)  # [n, K, H]
        flat = network.decoder_step(tf.repeat(previous, k), tf.reshape(state, [-1, shape[2]]), self.static)
        every = tf.reshape(tf.nn.log_softmax(network.logits(flat)), tf.stack([shape[0], k, network.spec.vocab_size]))
        log_probs = tf.gather(every, requested, axis=1, batch_dims=1)  # [n, V]: under the requested condition
        search = log_probs + strength * (log_probs - tf.reduce_mean(every, axis=1))
        return tf.reshape(flat, shape), log_probs, search


@dataclass(frozen=True)
class _GuidedStart:
    """Every context's decoder start under each of the ``K`` conditions (the encoder's output reused)."""

    static: tf.Tensor  # [batch, K, 3H]
    state: tf.Tensor  # [batch, K, H]
    requested: tf.Tensor  # int32 [batch]
    strength: tf.Tensor  # float32 []
    k: int

    @classmethod
    def make(cls, network: ResponderNetwork, context: tf.Tensor, requested: tf.Tensor, strength) -> _GuidedStart:
        k = network.spec.n_conditions
        batch = tf.shape(context)[0]
        every = network.decoder_start(
            tf.repeat(context, k, axis=0), tf.tile(tf.range(k, dtype=tf.int32), tf.stack([batch]))
        )  # rows b * K + c
        static = tf.reshape(every.static, tf.stack([batch, k, tf.shape(every.static)[1]]))
        state = tf.reshape(every.state, tf.stack([batch, k, tf.shape(every.state)[1]]))
        return cls(static, state, requested, tf.cast(strength, tf.float32), k)

    def stepper(self, network: ResponderNetwork, start: DecoderStart, repeat) -> _Stepper:
        """Rows ``b * repeat + j``, as :meth:`_Stepper.plain` (``start`` is not needed: the
        requested condition's start is one of the ``K``)."""
        static = tf.repeat(self.static, repeat, axis=0)
        return _Stepper(
            network,
            tf.reshape(static, tf.stack([-1, tf.shape(static)[2]])),
            tf.repeat(self.state, repeat, axis=0),
            (self.strength, tf.repeat(self.requested, repeat, axis=0), self.k),
        )


def _sequential(stepper: _Stepper, max_length, penalties: _Penalties, choose) -> tuple:
    """One token per row and step, ``choose(scores [n, V], step) -> int32 [n]``.

    Returns ``(ids [n, max_length], log_probs [n], lengths [n])``.
    """
    vocab = stepper.network.spec.vocab_size
    n = tf.shape(stepper.initial)[0]
    buffer = _Buffer.make(n, max_length)
    row_offsets = tf.range(n) * vocab  # into the flattened [n, V] log-probs
    no_token = tf.fill([n], PAD)
    no_log_prob = tf.zeros([n])

    def body(t, state, log_prob, ids):
        state, log_probs, search = stepper.step(_Buffer.previous(ids, t), state)
        alive = tf.logical_not(_Buffer.finished(ids))
        token = tf.where(alive, choose(penalties.scores(search, buffer, ids), t), no_token)
        picked = tf.gather(tf.reshape(log_probs, [-1]), row_offsets + token)
        return t + 1, state, log_prob + tf.where(alive, picked, no_log_prob), buffer.write(ids, t, token)

    _, _, log_prob, ids = tf.while_loop(
        lambda t, state, log_prob, ids: _not_done(t, ids, max_length),
        body,
        (tf.constant(0), stepper.initial, tf.zeros([n], tf.float32), buffer.empty),
        back_prop=False,
        name="decode_loop",
    )
    replies, lengths = _Buffer.replies(ids)
    return replies, log_prob, lengths


def _candidates(decoded: tuple, batch, per_context, max_length) -> dict[str, tf.Tensor]:
    """Rows ``b * per_context + j`` of ``_sequential``'s outputs as ``[batch, per_context, ...]``."""
    ids, log_prob, length = decoded
    return {
        IDS: tf.reshape(ids, tf.stack([batch, per_context, max_length]), name=IDS),
        LOG_PROBS: tf.reshape(log_prob, tf.stack([batch, per_context]), name=LOG_PROBS),
        LENGTHS: tf.reshape(length, tf.stack([batch, per_context]), name=LENGTHS),
    }


def _beam(stepper: _Stepper, batch, max_length, penalties: _Penalties, width, length_penalty) -> dict:
    """Beam search (see the module docstring): ``[batch, width, ...]`` candidates, best first.

    Each entry first keeps its own ``width`` best next tokens (all of an entry's extensions
    share one length, so its best by score are its best by normalised score), and the
    ``width`` survivors of a context are chosen among those ``width * width``: the vocabulary-
    wide work per step is the logits, their log-softmax and one ``top_k``.
    """
    vocab = stepper.network.spec.vocab_size
    n = batch * width  # row b * width + j: the stepper's rows
    buffer = _Buffer.make(n, max_length)
    offsets = tf.range(batch)[:, None] * width  # [batch, 1]: each context's first entry
    # Only the first copy of each context is live at the first step; the others would repeat it.
    only_first = tf.concat([[0.0], tf.fill(tf.stack([width - 1]), NEG)], axis=0)  # [width]
    no_log_prob = tf.zeros([n])

    def body(t, state, search, log_prob, ids):
        state, log_probs, guided = stepper.step(_Buffer.previous(ids, t), state)  # [n, V] each
        values, tokens = tf.nn.top_k(penalties.scores(guided, buffer, ids), width)  # [n, width]
        finished = _Buffer.finished(ids)
        # A finished entry has one extension, PAD (== 0), free; its length stays.
        totals = search[:, None] + tf.where(finished, tf.broadcast_to(only_first, tf.shape(values)), values)
        tokens = tf.where(finished, tf.zeros_like(tokens), tokens)
        done = tf.reduce_sum(tf.cast(tf.not_equal(ids, PAD), tf.int32), axis=1) - 1  # tokens so far
        lengths_then = tf.cast(tf.where(finished, done, done + 1), tf.float32)
        normalised = totals / tf.pow(lengths_then, length_penalty)[:, None]
        _, best = tf.nn.top_k(tf.reshape(normalised, tf.stack([batch, width * width])), width)
        chosen = tf.reshape(best + offsets * width, [-1])  # [n] indices into the [n * width] extensions
        parent = chosen // width
        token = tf.gather(tf.reshape(tokens, [-1]), chosen)
        picked = tf.gather(tf.reshape(log_probs, [-1]), parent * vocab + token)
        log_prob = tf.gather(log_prob, parent) + tf.where(tf.gather(finished, parent), no_log_prob, picked)
        ids = buffer.write(tf.gather(ids, parent), t, token)
        return t + 1, tf.gather(state, parent), tf.gather(tf.reshape(totals, [-1]), chosen), log_prob, ids

    _, _, _, log_prob, ids = tf.while_loop(
        lambda t, state, search, log_prob, ids: _not_done(t, ids, max_length),
        body,
        (
            tf.constant(0),
            stepper.initial,
            tf.tile(only_first, tf.stack([batch])),
            tf.zeros([n], tf.float32),
            buffer.empty,
        ),
        back_prop=False,
        name="beam_loop",
    )
    replies, length = _Buffer.replies(ids)
    final = log_prob / tf.pow(tf.cast(tf.maximum(length, 1), tf.float32), length_penalty)
    _, order = tf.nn.top_k(tf.reshape(final, tf.stack([batch, width])), width)
    rows = tf.reshape(order + offsets, [-1])
    return {
        IDS: tf.reshape(tf.gather(replies, rows), tf.stack([batch, width, max_length]), name=IDS),
        LOG_PROBS: tf.reshape(tf.gather(log_prob, rows), tf.stack([batch, width]), name=LOG_PROBS),
        LENGTHS: tf.reshape(tf.gather(length, rows), tf.stack([batch, width]), name=LENGTHS),
    }


# -- feeding the graph ---------------------------------------------------------------------


class DecodeRunner:
    """Feeds numpy inputs to a graph's :class:`DecodeOps`; one run of the graph per call, thread-safe.

    Each signature is run through a :class:`compat.graph_session.FixedRun`, made on its first use
    for that set of inputs and kept: the same results as ``Session.run`` without its per-call
    Python work.
    """

    def __init__(self, graph_session: GraphSession, ops: DecodeOps) -> None:
        self._gs = graph_session
        self._ops = ops
        self._runs: dict[tuple[str, tuple[str, ...]], FixedRun] = {}
        self._runs_lock = threading.Lock()

    def _run(self, signature: str, fetch_keys: tuple[str, ...], values: Mapping[str, Any]) -> list[np.ndarray]:
        """Run ``signature``'s outputs ``fetch_keys`` with ``values`` fed to its inputs (by name)."""
        key = (signature, tuple(values))
        run = self._runs.get(key)
        if run is None:
            with self._runs_lock:
                run = self._runs.get(key)
                if run is None:
                    outputs = self._ops.outputs[signature]
                    fetches = [outputs[name] for name in fetch_keys]
                    run = self._runs[key] = self._gs.fixed_run(fetches, [self._ops.inputs[name] for name in values])
        return run(*values.values())

    def decode(self, context_ids: np.ndarray, condition_ids: np.ndarray, **options: Any) -> DecodeResult:
        """Replies for ``context_ids`` int ``[batch, turns, turn_len]`` and ``condition_ids`` int ``[batch]``.

        ``options`` are :func:`compat.responder.inputs.decode_call`'s: ``mode`` ``"greedy"`` (1
        candidate), ``"beam"`` (``beam_width`` candidates, best first), or ``"sample"``
        (``n_samples`` candidates drawn at ``temperature`` with ``seed``: the same seed gives the
        same ids); ``banned_ids`` are never produced (PAD, UNK and START never are), and a
        ``banned_ids`` that leaves no token allowed (for beam search, fewer than ``beam_width``)
        is refused with ``ValueError``; ``repetition_penalty`` divides the probability of a token
        the reply already holds, except ``unpenalized_ids``; ``max_length`` is at most
        :data:`compat.responder.inputs.MAX_DECODE_LENGTH` and ``length_penalty`` at most
        :data:`compat.responder.inputs.MAX_LENGTH_PENALTY`. See :class:`DecodeResult`.
        """
        ops = self._ops
        self._gs.check_open()  # a closed session refuses also a call of no contexts, as the TF2 copy does
        call = decode_call(context_ids, condition_ids, ops.vocab_size, ops.n_conditions, **options)
        if call.mode not in ops.outputs:  # also for no contexts: the answer must not depend on the batch
            raise ValueError(f"decode: condition_strength above 0 needs {GUIDANCE_MISSING}")
        if call.batch == 0:
            return call.empty_result()
        values = dict(call.values)
        context, conditions, added = holding_a_token(np.asarray(values[CONTEXT]), np.asarray(values[CONDITION]))
        values[CONTEXT], values[CONDITION] = context, conditions
        ids, log_probs, lengths = self._run(call.mode, (IDS, LOG_PROBS, LENGTHS), values)
        if added:
            ids, log_probs, lengths = ids[:-1], log_probs[:-1], lengths[:-1]
        return DecodeResult(ids=ids, log_probs=log_probs, lengths=lengths)

    def score(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, reply_len]``: log p of each token of ``reply_ids`` (END then PAD-padded), 0 at PAD."""
        ops = self._ops
        self._gs.check_open()
        context, conditions = check_context(context_ids, condition_ids, ops.vocab_size, ops.n_conditions, "score")
        reply = check_reply(reply_ids, context.shape[0], ops.vocab_size, "score")
        if reply.size == 0:
            return np.zeros(reply.shape, np.float32)
        context, conditions, added = holding_a_token(context, conditions)
        if added:  # the extra row's reply: END
            reply = np.concatenate([reply, np.zeros((1, reply.shape[1]), np.int32)])
            reply[-1, 0] = END
        token_log_probs = self._run(
            "score", (TOKEN_LOG_PROBS,), {CONTEXT: context, CONDITION: conditions, REPLY: reply}
        )[0]
        return token_log_probs[:-1] if added else token_log_probs
