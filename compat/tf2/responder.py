"""The generative responder as a TF2 ``tf.Module``: the HRED network, its ``tf.while_loop``
decoding (greedy, beam, sample) and scoring, and the SavedModel that holds them.

It mirrors :mod:`compat.responder.network`, :mod:`compat.rnn` and
:mod:`compat.responder.decoding` op for op (same variables, same products in the same order,
the same loops), so a migrated responder gives the replies its TF1 source gives, token for
token. Only the spelling changes:

* variables are ``tf.Variable`` s owned by ``tf.Module`` s, built from the TF1 weights
  (:func:`compat.tf2.checkpoint.read_v1_weights`), not ``tf.get_variable`` in a graph;
* placeholders become the arguments of ``tf.function`` s with a fixed ``input_signature``
  (every input required: a signature has no defaults, :class:`Tf2Responder` fills them);
* ``tf.compat.v1.where``'s row selection by a ``[n]`` condition is written as the broadcasting
  ``tf.where(condition[:, None], ...)``; ``tf.log`` is ``tf.math.log``; the loops are
  ``tf.while_loop`` inside ``tf.function`` (functional ``While``) instead of v1 control flow.

This is the inference network only: no dropout, no sampled softmax (training stays on compat).

The SavedModel's signatures are those of the TF1 one (:data:`SIGNATURE_INPUTS`,
:data:`SIGNATURE_OUTPUTS`): ``greedy``, ``beam`` and ``sample`` return ``ids`` int32
``[batch, candidates, max_length]``, ``log_probs`` float32 and ``lengths`` int32
``[batch, candidates]``; ``score`` returns ``token_log_probs`` float32 ``[batch, reply_len]``;
``greedy_guided``, ``beam_guided`` and ``sample_guided`` take ``condition_strength`` too
(condition guidance, as :mod:`compat.responder.decoding`). A copy migrated before those existed
loads without them and decodes unguided. The spec is kept in the module as the string variable ``spec_json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from compat.interface import SavedModelError, first_line, tensorflow_path
from compat.processes import check_not_forked, starting_tensorflow
from compat.responder.inputs import (  # the TF1 SavedModel's signatures, and their input checks
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
)
from compat.responder.sampling import draw_tokens
from compat.responder.spec import ALWAYS_BANNED, END, PAD, START, DecodeResult, ResponderSpec
from compat.tf2.runtime import configure_threads, tf

SCOPE = "responder"  # variable names in the TF1 checkpoint: responder/<part>
GRU_PARTS = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")

_INPUT_SPECS = {
    CONTEXT: tf.TensorSpec([None, None, None], tf.int32, name=CONTEXT),
    CONDITION: tf.TensorSpec([None], tf.int32, name=CONDITION),
    REPLY: tf.TensorSpec([None, None], tf.int32, name=REPLY),
    MAX_LENGTH: tf.TensorSpec([], tf.int32, name=MAX_LENGTH),
    BANNED: tf.TensorSpec([None], tf.int32, name=BANNED),
    UNPENALIZED: tf.TensorSpec([None], tf.int32, name=UNPENALIZED),
    REPETITION_PENALTY: tf.TensorSpec([], tf.float32, name=REPETITION_PENALTY),
    BEAM_WIDTH: tf.TensorSpec([], tf.int32, name=BEAM_WIDTH),
    LENGTH_PENALTY: tf.TensorSpec([], tf.float32, name=LENGTH_PENALTY),
    TEMPERATURE: tf.TensorSpec([], tf.float32, name=TEMPERATURE),
    SEED: tf.TensorSpec([], tf.int64, name=SEED),
    N_SAMPLES: tf.TensorSpec([], tf.int32, name=N_SAMPLES),
    CONDITION_STRENGTH: tf.TensorSpec([], tf.float32, name=CONDITION_STRENGTH),
}
_INPUT_DTYPES = {name: spec.dtype for name, spec in _INPUT_SPECS.items()}
# Every signature's inputs and outputs, the guided ones (condition guidance) included.
ALL_INPUTS = {**SIGNATURE_INPUTS, **GUIDED_SIGNATURE_INPUTS}
ALL_OUTPUTS = {**SIGNATURE_OUTPUTS, **GUIDED_SIGNATURE_OUTPUTS}


def input_signature(name: str) -> tuple[tf.TensorSpec, ...]:
    """The ``tf.function`` input signature of signature ``name``, in :data:`ALL_INPUTS` order."""
    return tuple(_INPUT_SPECS[key] for key in ALL_INPUTS[name])


def variable_shapes(spec: ResponderSpec) -> dict[str, tuple[int, ...]]:
    """Every variable the TF1 network holds (:func:`compat.responder.network.variable_shapes`), by name."""

    def gru(name: str, inputs: int, units: int) -> dict[str, tuple[int, ...]]:
        shapes = {
            "kernel": (inputs, 3 * units),
            "recurrent_kernel": (units, 3 * units),
            "bias": (3 * units,),
            "recurrent_bias": (3 * units,),
        }
        return {f"{SCOPE}/{name}/{part}": shapes[part] for part in GRU_PARTS}

    decoder_inputs = spec.embedding_size + spec.context_units + spec.condition_size
    shapes = {
        f"{SCOPE}/embedding": (spec.vocab_size, spec.embedding_size),
        f"{SCOPE}/condition_embedding": (spec.n_conditions, spec.condition_size),
        **gru("utterance_forward", spec.embedding_size, spec.encoder_units),
        **gru("utterance_backward", spec.embedding_size, spec.encoder_units),
        **gru("context", 2 * spec.encoder_units, spec.context_units),
        **gru("decoder", decoder_inputs, spec.decoder_units),
        f"{SCOPE}/output/kernel": (spec.decoder_units, spec.vocab_size),
        f"{SCOPE}/output/bias": (spec.vocab_size,),
    }
    if spec.context_units != spec.decoder_units:
        shapes[f"{SCOPE}/decoder_init/kernel"] = (spec.context_units, spec.decoder_units)
        shapes[f"{SCOPE}/decoder_init/bias"] = (spec.decoder_units,)
    return shapes


def check_weights(spec: ResponderSpec, weights: Mapping[str, np.ndarray], where: str) -> None:
    """``ValueError`` naming every missing, unexpected or wrongly shaped variable of ``weights``."""
    expected = variable_shapes(spec)
    problems = [f"missing {name}" for name in sorted(set(expected) - set(weights))]
    problems += [f"unexpected {name}" for name in sorted(set(weights) - set(expected))]
    problems += [
        f"{name} has shape {tuple(np.shape(weights[name]))}, the spec needs {shape}"
        for name, shape in sorted(expected.items())
        if name in weights and tuple(np.shape(weights[name])) != shape
    ]
    if problems:
        raise ValueError(f"{where}: the variables do not match the responder spec: {'; '.join(problems)}")


# -- the network ------------------------------------------------------------------------------


def _variable(weights: Mapping[str, np.ndarray], name: str) -> tf.Variable:
    return tf.Variable(np.asarray(weights[name], dtype=np.float32), trainable=False, name=name.rsplit("/", 1)[-1])


class GRUCell(tf.Module):
    """The "reset after" GRU of :class:`compat.rnn.GRU`, its variables from ``responder/<name>/``."""

    def __init__(self, weights: Mapping[str, np.ndarray], name: str) -> None:
        super().__init__(name=name)
        with self.name_scope:
            self.kernel, self.recurrent_kernel, self.bias, self.recurrent_bias = (
                _variable(weights, f"{SCOPE}/{name}/{part}") for part in GRU_PARTS
            )
        self.units = int(self.recurrent_kernel.shape[0])

    def project(self, inputs: tf.Tensor, kernel: tf.Tensor | None = None) -> tf.Tensor:
        """Input part of the gates: float32 ``[..., input_size]`` -> ``[..., 3 * units]`` (bias only
        with the whole kernel), as :meth:`compat.rnn.GRU.project`."""
        weights = self.kernel if kernel is None else kernel
        flat = tf.reshape(inputs, [-1, int(weights.shape[0])])
        projected = tf.matmul(flat, weights)
        if kernel is None:
            projected = tf.nn.bias_add(projected, self.bias)
        return tf.reshape(projected, tf.concat([tf.shape(inputs)[:-1], [3 * self.units]], axis=0))

    def step(self, projected: tf.Tensor, state: tf.Tensor) -> tf.Tensor:
        """Input part ``[n, 3H]`` and state ``[n, H]`` -> new state ``[n, H]``."""
        recurrent = tf.nn.bias_add(tf.matmul(state, self.recurrent_kernel), self.recurrent_bias)
        return _gates(projected, recurrent, state, self.units)


def _gates(projected: tf.Tensor, recurrent: tf.Tensor, state: tf.Tensor, units: int) -> tf.Tensor:
    """:func:`compat.rnn.gates`: the cell's update from its two products, any leading axes."""
    x_gates, x_candidate = tf.split(projected, [2 * units, units], axis=-1)
    h_gates, h_candidate = tf.split(recurrent, [2 * units, units], axis=-1)
    update, reset = tf.split(tf.sigmoid(x_gates + h_gates), 2, axis=-1)
    candidate = tf.tanh(x_candidate + reset * h_candidate)
    return candidate + update * (state - candidate)


def _steps_needed(mask: tf.Tensor) -> tf.Tensor:
    """1 + the last True column of bool ``[batch, time]`` (0 if none), as :func:`compat.rnn.steps_needed`."""
    positions = tf.range(1, tf.shape(mask)[1] + 1)
    return tf.reduce_max(tf.where(mask, tf.broadcast_to(positions, tf.shape(mask)), tf.zeros_like(mask, tf.int32)))


def _unroll(
    cell: GRUCell,
    projected: tf.Tensor,
    mask: tf.Tensor | None = None,
    initial_state: tf.Tensor | None = None,
    return_sequences: bool = False,
) -> tuple[tf.Tensor | None, tf.Tensor]:
    """:func:`compat.rnn.unroll` (forward only): ``projected`` ``[batch, time, 3H]``, ``mask``
    bool ``[batch, time]`` -> ``(states [batch, time, H] or None, final [batch, H])``."""
    batch, time = tf.shape(projected)[0], tf.shape(projected)[1]
    state = tf.zeros(tf.stack([batch, cell.units]), tf.float32) if initial_state is None else initial_state
    steps = time if mask is None else _steps_needed(mask)
    inputs = tf.TensorArray(tf.float32, size=time, clear_after_read=False).unstack(tf.transpose(projected, [1, 0, 2]))
    masks = None if mask is None else tf.TensorArray(tf.bool, size=time).unstack(tf.transpose(mask))
    outputs = tf.TensorArray(tf.float32, size=time) if return_sequences else None

    def body(i, h, *out):
        new = cell.step(inputs.read(i), h)
        emitted = new
        if masks is not None:
            keep = masks.read(i)[:, None]
            new = tf.where(keep, new, h)
            emitted = tf.where(keep, new, tf.zeros_like(new))
        return (i + 1, new) + ((out[0].write(i, emitted),) if out else ())

    loop_vars = (tf.constant(0), state) + ((outputs,) if outputs is not None else ())
    results = tf.while_loop(lambda i, *_: i < steps, body, loop_vars, name="gru_unroll")
    if not return_sequences:
        return None, results[1]
    written = results[2].gather(tf.range(steps))  # [steps, batch, H]; later steps are zeros
    padded = tf.pad(written, tf.stack([tf.stack([0, time - steps]), [0, 0], [0, 0]]))
    return tf.transpose(padded, [1, 0, 2]), results[1]


def _bidirectional(
    forward: GRUCell, backward: GRUCell, embedded: tf.Tensor, mask: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`compat.rnn.bidirectional`: both directions as one ``[2, batch, H]`` state, their
    recurrent products two plain matmuls per step. ``embedded`` ``[batch, time, E]``, ``mask``
    ``[batch, time]`` -> final forward and backward states ``[batch, H]``."""
    units = forward.units
    projected_forward, projected_backward = forward.project(embedded), backward.project(embedded)
    batch = tf.shape(projected_forward)[0]
    steps = _steps_needed(mask)
    forward_inputs = tf.transpose(projected_forward[:, :steps], [1, 0, 2])  # [steps, batch, 3H]
    backward_inputs = tf.reverse(tf.transpose(projected_backward[:, :steps], [1, 0, 2]), axis=[0])
    inputs = tf.TensorArray(tf.float32, size=steps).unstack(tf.stack([forward_inputs, backward_inputs], axis=1))
    forward_mask = tf.transpose(mask[:, :steps])  # [steps, batch]
    both = tf.stack([forward_mask, tf.reverse(forward_mask, axis=[0])], axis=1)  # [steps, 2, batch]
    masks = tf.TensorArray(tf.bool, size=steps).unstack(tf.expand_dims(both, -1))
    biases = tf.stack([forward.recurrent_bias, backward.recurrent_bias])[:, None, :]  # [2, 1, 3H]

    def body(i, h):
        recurrent = tf.stack([tf.matmul(h[0], forward.recurrent_kernel), tf.matmul(h[1], backward.recurrent_kernel)])
        new = _gates(inputs.read(i), recurrent + biases, h, units)
        return i + 1, tf.where(masks.read(i), new, h)

    _, final = tf.while_loop(
        lambda i, _: i < steps,
        body,
        (tf.constant(0), tf.zeros(tf.stack([2, batch, units]), tf.float32)),
        name="bidirectional_gru",
    )
    return final[0], final[1]


@dataclass(frozen=True)
class _Start:
    """:class:`compat.responder.network.DecoderStart`: ``static`` ``[n, 3H]`` (context and condition
    part of the decoder's input projection, bias included) and the first ``state`` ``[n, H]``."""

    static: tf.Tensor
    state: tf.Tensor


@dataclass(frozen=True)
class _Stepper:
    """:class:`compat.responder.decoding._Stepper`: one decoder step for every row, ``step(previous
    [n], state) -> (state, log_probs [n, V], search_log_probs [n, V])``; guided, the state is
    ``[n, K, H]`` and the search uses ``log p(.|c) + s * (log p(.|c) - mean_k log p(.|k))``."""

    cell: Any  # (previous [rows], state [rows, H], static [rows, 3H]) -> state [rows, H]
    logits: Any  # states [rows, H] -> [rows, V]
    static: tf.Tensor  # [n, 3H] unguided, [n * K, 3H] guided
    initial: tf.Tensor  # [n, H] unguided, [n, K, H] guided
    vocab: int
    guidance: tuple[tf.Tensor, tf.Tensor, int] | None = None  # (strength, requested [n], K)

    def step(self, previous: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        if self.guidance is None:
            state = self.cell(previous, state, self.static)
            log_probs = tf.nn.log_softmax(self.logits(state))
            return state, log_probs, log_probs
        strength, requested, k = self.guidance
        shape = tf.shape(state)  # [n, K, H]
        flat = self.cell(tf.repeat(previous, k), tf.reshape(state, [-1, shape[2]]), self.static)
        every = tf.reshape(tf.nn.log_softmax(self.logits(flat)), tf.stack([shape[0], k, self.vocab]))
        log_probs = tf.gather(every, requested, axis=1, batch_dims=1)
        search = log_probs + strength * (log_probs - tf.reduce_mean(every, axis=1))
        return tf.reshape(flat, shape), log_probs, search


@dataclass(frozen=True)
class _Penalties:
    ban_bias: tf.Tensor  # float32 [V]: NEG at banned ids, else 0
    repetition: tf.Tensor  # float32 [V]: log(penalty) at penalizable ids, else 0

    def scores(self, log_probs: tf.Tensor, buffer: _Buffer, ids: tf.Tensor) -> tf.Tensor:
        """Search scores ``[n, V]``: banned ids at ``NEG``, tokens a reply holds penalised once."""
        scores = log_probs + self.ban_bias
        used = tf.stack([buffer.cell_rows, tf.reshape(ids, [-1])], axis=1)  # [cells, 2]: (row, token)
        penalised = tf.gather_nd(scores, used) - tf.gather(self.repetition, used[:, 1])
        return tf.tensor_scatter_nd_update(scores, used, penalised)


@dataclass(frozen=True)
class _Buffer:
    """The replies being built, int32 ``[n, max_length + 1]``: START, then one column per step
    (PAD until written); as in :mod:`compat.responder.decoding`."""

    empty: tf.Tensor
    cell_rows: tf.Tensor
    step_cells: tf.Tensor

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
        return tf.gather(ids, step, axis=1)

    @staticmethod
    def finished(ids: tf.Tensor) -> tf.Tensor:
        return tf.reduce_any(tf.equal(ids, END), axis=1)

    def write(self, ids: tf.Tensor, step: tf.Tensor, tokens: tf.Tensor) -> tf.Tensor:
        return tf.tensor_scatter_nd_update(ids, tf.gather(self.step_cells, step), tokens)

    @staticmethod
    def replies(ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        replies = ids[:, 1:]
        return replies, tf.reduce_sum(tf.cast(tf.not_equal(replies, PAD), tf.int32), axis=1)


def _not_done(t: tf.Tensor, ids: tf.Tensor, max_length: tf.Tensor) -> tf.Tensor:
    return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(_Buffer.finished(ids))))


def _id_mask(ids: tf.Tensor, vocab: int) -> tf.Tensor:
    """float32 ``[vocab]``: 1 at each of ``ids``, else 0."""
    return tf.minimum(tf.scatter_nd(ids[:, None], tf.ones_like(ids, tf.float32), [vocab]), 1.0)


class ResponderModule(tf.Module):
    """The HRED responder with its weights; ``greedy``, ``beam``, ``sample`` and ``score`` are
    the SavedModel's signatures (inputs and outputs as the TF1 SavedModel's).

    Args:
        spec: the network's shape.
        weights: every variable by its TF1 name (:func:`variable_shapes`), numpy float32.
    """

    def __init__(self, spec: ResponderSpec, weights: Mapping[str, np.ndarray]) -> None:
        super().__init__(name=SCOPE)
        check_weights(spec, weights, "ResponderModule")
        self.spec = spec
        with self.name_scope:
            self.spec_json = tf.Variable(json.dumps(spec.to_dict(), sort_keys=True), trainable=False, name="spec_json")
            self.embedding = _variable(weights, f"{SCOPE}/embedding")
            self.condition_embedding = _variable(weights, f"{SCOPE}/condition_embedding")
            self.utterance_forward = GRUCell(weights, "utterance_forward")
            self.utterance_backward = GRUCell(weights, "utterance_backward")
            self.context = GRUCell(weights, "context")
            self.decoder = GRUCell(weights, "decoder")
            self.init_kernel = self.init_bias = None
            if spec.context_units != spec.decoder_units:
                self.init_kernel = _variable(weights, f"{SCOPE}/decoder_init/kernel")
                self.init_bias = _variable(weights, f"{SCOPE}/decoder_init/bias")
            self.output_kernel = _variable(weights, f"{SCOPE}/output/kernel")
            self.output_bias = _variable(weights, f"{SCOPE}/output/bias")

    # -- network ----------------------------------------------------------------------------

    def _encode(self, context_ids: tf.Tensor) -> tf.Tensor:
        """Context vector float32 ``[batch, C]`` of int32 ``[batch, turns, turn_len]``
        (:meth:`compat.responder.network.ResponderNetwork.encode`)."""
        shape = tf.shape(context_ids)
        batch, turns, turn_len = shape[0], shape[1], shape[2]
        flat = tf.reshape(context_ids, tf.stack([batch * turns, turn_len]))
        token_mask = tf.not_equal(flat, PAD)
        turn_mask = tf.reshape(tf.reduce_any(token_mask, axis=1), tf.stack([batch, turns]))
        steps = _steps_needed(token_mask)
        flat, token_mask = flat[:, :steps], token_mask[:, :steps]
        embedded = tf.gather(self.embedding, flat)  # [batch * turns, steps, E]
        forward, backward = _bidirectional(self.utterance_forward, self.utterance_backward, embedded, token_mask)
        turn_vectors = tf.reshape(
            tf.concat([forward, backward], axis=1), tf.stack([batch, turns, 2 * self.spec.encoder_units])
        )
        _, context = _unroll(self.context, self.context.project(turn_vectors), mask=turn_mask)
        return context

    def _kernels(self) -> tuple[tf.Tensor, tf.Tensor]:
        """The decoder's input kernel in its token and context-and-condition row blocks."""
        return self.decoder.kernel[: self.spec.embedding_size], self.decoder.kernel[self.spec.embedding_size :]

    def _start(self, context: tf.Tensor, condition_ids: tf.Tensor, static_kernel: tf.Tensor) -> _Start:
        condition = tf.gather(self.condition_embedding, condition_ids)  # [batch, Cd]
        static = tf.nn.bias_add(tf.matmul(tf.concat([context, condition], axis=1), static_kernel), self.decoder.bias)
        if self.init_kernel is None:
            return _Start(static=static, state=context)
        return _Start(
            static=static, state=tf.tanh(tf.nn.bias_add(tf.matmul(context, self.init_kernel), self.init_bias))
        )

    def _logits(self, states: tf.Tensor) -> tf.Tensor:
        return tf.nn.bias_add(tf.matmul(states, self.output_kernel), self.output_bias)

    def _prepare(
        self, context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty, strength=None
    ):
        """What every decoding mode starts from: ``stepper(repeat)`` (rows ``b * repeat + j``,
        guided when ``strength`` is given), the clamped length, the penalties and the batch size."""
        token_kernel, static_kernel = self._kernels()
        context = self._encode(context_ids)
        vocab = self.spec.vocab_size
        ban_bias = _id_mask(tf.concat([tf.constant(ALWAYS_BANNED, tf.int32), banned_ids], 0), vocab) * NEG
        repetition = tf.math.log(repetition_penalty) * (1.0 - _id_mask(unpenalized_ids, vocab))

        def cell(previous: tf.Tensor, state: tf.Tensor, static: tf.Tensor) -> tf.Tensor:
            projected = tf.matmul(tf.gather(self.embedding, previous), token_kernel) + static
            return self.decoder.step(projected, state)

        batch = tf.shape(context)[0]
        if strength is None:
            start = self._start(context, condition_ids, static_kernel)

            def stepper(repeat) -> _Stepper:
                if isinstance(repeat, int) and repeat == 1:
                    return _Stepper(cell, self._logits, start.static, start.state, vocab)
                return _Stepper(
                    cell,
                    self._logits,
                    tf.repeat(start.static, repeat, axis=0),
                    tf.repeat(start.state, repeat, axis=0),
                    vocab,
                )

        else:
            k = self.spec.n_conditions
            every = self._start(
                tf.repeat(context, k, axis=0), tf.tile(tf.range(k, dtype=tf.int32), tf.stack([batch])), static_kernel
            )  # rows b * K + c
            static = tf.reshape(every.static, tf.stack([batch, k, tf.shape(every.static)[1]]))
            state = tf.reshape(every.state, tf.stack([batch, k, tf.shape(every.state)[1]]))

            def stepper(repeat) -> _Stepper:
                repeated = tf.repeat(static, repeat, axis=0)
                return _Stepper(
                    cell,
                    self._logits,
                    tf.reshape(repeated, tf.stack([-1, tf.shape(repeated)[2]])),
                    tf.repeat(state, repeat, axis=0),
                    vocab,
                    (tf.cast(strength, tf.float32), tf.repeat(condition_ids, repeat, axis=0), k),
                )

        return stepper, tf.maximum(max_length, 1), _Penalties(ban_bias, repetition), batch

    # -- decoding ---------------------------------------------------------------------------

    def _sequential(self, stepper: _Stepper, max_length, penalties: _Penalties, choose) -> tuple:
        """One token per row and step, ``choose(scores [n, V], step) -> int32 [n]``; returns
        ``(ids [n, max_length], log_probs [n], lengths [n])``."""
        vocab = self.spec.vocab_size
        n = tf.shape(stepper.initial)[0]
        buffer = _Buffer.make(n, max_length)
        row_offsets = tf.range(n) * vocab
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
            name="decode_loop",
        )
        replies, lengths = _Buffer.replies(ids)
        return replies, log_prob, lengths

    @staticmethod
    def _candidates(decoded: tuple, batch, per_context, max_length) -> dict[str, tf.Tensor]:
        ids, log_prob, length = decoded
        return {
            IDS: tf.reshape(ids, tf.stack([batch, per_context, max_length])),
            LOG_PROBS: tf.reshape(log_prob, tf.stack([batch, per_context])),
            LENGTHS: tf.reshape(length, tf.stack([batch, per_context])),
        }

    def _greedy(self, prepared) -> dict[str, tf.Tensor]:
        stepper, max_length, penalties, batch = prepared
        argmax = lambda scores, t: tf.argmax(scores, axis=1, output_type=tf.int32)  # noqa: E731
        return self._candidates(self._sequential(stepper(1), max_length, penalties, argmax), batch, 1, max_length)

    def _sample(self, prepared, temperature, seed, n_samples) -> dict[str, tf.Tensor]:
        stepper, max_length, penalties, batch = prepared
        n_samples = tf.maximum(n_samples, 1)

        def draw(scores: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
            key = tf.stack([seed, tf.cast(t, tf.int64)])
            return draw_tokens(tf, self.spec.sample_draw, scores, temperature, key)

        return self._candidates(
            self._sequential(stepper(n_samples), max_length, penalties, draw), batch, n_samples, max_length
        )

    def _beam(self, prepared, beam_width, length_penalty) -> dict[str, tf.Tensor]:
        """Beam search as :func:`compat.responder.decoding._beam`: ``beam_width`` candidates per
        context, best first by ``log_prob / length ** length_penalty``."""
        make_stepper, max_length, penalties, batch = prepared
        width = tf.maximum(beam_width, 1)
        stepper = make_stepper(width)  # row b * width + j
        vocab = self.spec.vocab_size
        n = batch * width
        buffer = _Buffer.make(n, max_length)
        offsets = tf.range(batch)[:, None] * width  # [batch, 1]
        only_first = tf.concat([[0.0], tf.fill(tf.stack([width - 1]), NEG)], axis=0)  # [width]
        no_log_prob = tf.zeros([n])

        def body(t, state, search, log_prob, ids):
            state, log_probs, guided = stepper.step(_Buffer.previous(ids, t), state)  # [n, V] each
            values, tokens = tf.nn.top_k(penalties.scores(guided, buffer, ids), width)  # [n, width]
            finished = _Buffer.finished(ids)
            totals = search[:, None] + tf.where(
                finished[:, None], tf.broadcast_to(only_first, tf.shape(values)), values
            )
            tokens = tf.where(finished[:, None], tf.zeros_like(tokens), tokens)
            done = tf.reduce_sum(tf.cast(tf.not_equal(ids, PAD), tf.int32), axis=1) - 1
            lengths_then = tf.cast(tf.where(finished, done, done + 1), tf.float32)
            normalised = totals / tf.pow(lengths_then, length_penalty)[:, None]
            _, best = tf.nn.top_k(tf.reshape(normalised, tf.stack([batch, width * width])), width)
            chosen = tf.reshape(best + offsets * width, [-1])
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
            name="beam_loop",
        )
        replies, length = _Buffer.replies(ids)
        final = log_prob / tf.pow(tf.cast(tf.maximum(length, 1), tf.float32), length_penalty)
        _, order = tf.nn.top_k(tf.reshape(final, tf.stack([batch, width])), width)
        rows = tf.reshape(order + offsets, [-1])
        return {
            IDS: tf.reshape(tf.gather(replies, rows), tf.stack([batch, width, max_length])),
            LOG_PROBS: tf.reshape(tf.gather(log_prob, rows), tf.stack([batch, width])),
            LENGTHS: tf.reshape(tf.gather(length, rows), tf.stack([batch, width])),
        }

    @tf.function(input_signature=input_signature("greedy"), autograph=False)
    def greedy(self, context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty):
        """The most likely token at every step: ``[batch, 1, max_length]`` ids (see the module docstring)."""
        return self._greedy(
            self._prepare(context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty)
        )

    @tf.function(input_signature=input_signature("sample"), autograph=False)
    def sample(
        self,
        context_ids,
        condition_ids,
        max_length,
        banned_ids,
        unpenalized_ids,
        repetition_penalty,
        temperature,
        seed,
        n_samples,
    ):
        """``n_samples`` replies per context drawn from ``softmax(score / temperature)``, keyed by
        ``(seed, step)`` as the spec's ``sample_draw`` says (:mod:`compat.responder.sampling`):
        ``[batch, n_samples, max_length]``."""
        prepared = self._prepare(
            context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty
        )
        return self._sample(prepared, temperature, seed, n_samples)

    @tf.function(input_signature=input_signature("beam"), autograph=False)
    def beam(
        self,
        context_ids,
        condition_ids,
        max_length,
        banned_ids,
        unpenalized_ids,
        repetition_penalty,
        beam_width,
        length_penalty,
    ):
        """Beam search: ``beam_width`` candidates per context, best first."""
        prepared = self._prepare(
            context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty
        )
        return self._beam(prepared, beam_width, length_penalty)

    # Condition guidance: the same decodes, each row under every condition (module docstring of
    # compat.responder.decoding); ``condition_strength`` comes last.

    @tf.function(input_signature=input_signature("greedy" + GUIDED), autograph=False)
    def greedy_guided(
        self, context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty, strength
    ):
        return self._greedy(
            self._prepare(
                context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty, strength
            )
        )

    @tf.function(input_signature=input_signature("sample" + GUIDED), autograph=False)
    def sample_guided(
        self,
        context_ids,
        condition_ids,
        max_length,
        banned_ids,
        unpenalized_ids,
        repetition_penalty,
        temperature,
        seed,
        n_samples,
        strength,
    ):
        prepared = self._prepare(
            context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty, strength
        )
        return self._sample(prepared, temperature, seed, n_samples)

    @tf.function(input_signature=input_signature("beam" + GUIDED), autograph=False)
    def beam_guided(
        self,
        context_ids,
        condition_ids,
        max_length,
        banned_ids,
        unpenalized_ids,
        repetition_penalty,
        beam_width,
        length_penalty,
        strength,
    ):
        prepared = self._prepare(
            context_ids, condition_ids, max_length, banned_ids, unpenalized_ids, repetition_penalty, strength
        )
        return self._beam(prepared, beam_width, length_penalty)

    @tf.function(input_signature=input_signature("score"), autograph=False)
    def score(self, context_ids, condition_ids, reply_ids):
        """log p of each token of ``reply_ids`` fed the true previous token: ``token_log_probs``
        float32 ``[batch, reply_len]``, 0 at PAD (teacher forcing, as the TF1 ``score``)."""
        token_kernel, static_kernel = self._kernels()
        start = self._start(self._encode(context_ids), condition_ids, static_kernel)
        batch = tf.shape(reply_ids)[0]
        previous = tf.concat([tf.fill(tf.stack([batch, 1]), START), reply_ids[:, :-1]], axis=1)
        embedded = tf.gather(self.embedding, previous)  # [batch, reply_len, E]
        projected = self.decoder.project(embedded, kernel=token_kernel) + start.static[:, None, :]
        states, _ = _unroll(self.decoder, projected, initial_state=start.state, return_sequences=True)
        positions = tf.where(tf.not_equal(reply_ids, PAD))  # [n, 2] of real tokens only
        logits = self._logits(tf.gather_nd(states, positions))
        targets = tf.gather_nd(reply_ids, positions)
        log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return {TOKEN_LOG_PROBS: tf.scatter_nd(positions, log_probs, tf.shape(reply_ids, out_type=tf.int64))}


# -- the SavedModel -------------------------------------------------------------------------


def export_tf2_responder(spec: ResponderSpec, weights: Mapping[str, np.ndarray], export_dir: str) -> None:
    """Write ``weights`` (checked against ``spec``) as a TF2 SavedModel; ``export_dir`` must not exist.

    Raises:
        ValueError: the weights do not match the spec (named).
    """
    if os.path.exists(export_dir):
        raise FileExistsError(f"SavedModel directory already exists: {export_dir}")
    module = ResponderModule(spec, weights)
    # The functions themselves, not concrete functions traced here: ``save`` traces them again in
    # its own context anyway, so tracing them first would double the export's time.
    signatures = {name: getattr(module, name) for name in ALL_INPUTS}
    tf.saved_model.save(module, tensorflow_path(export_dir), signatures=signatures)


class Tf2Responder:
    """A TF2 responder SavedModel loaded eagerly: what :class:`compat.responder.saved_model.LoadedResponder`
    offers (``spec``, ``vocab_size``, ``n_conditions``, :meth:`decode`, :meth:`score`, :meth:`close`),
    with the same checks and errors. Each call is one signature call; any thread may call.
    """

    def __init__(self, export_dir: str, intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
        export_dir = os.fspath(export_dir)
        if not os.path.isdir(export_dir):
            raise SavedModelError(f"no SavedModel directory at {export_dir}")
        starting_tensorflow()  # in a child forked after TensorFlow started, the first call would hang
        configure_threads(intra_op_threads, inter_op_threads)
        path = tensorflow_path(export_dir)
        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:  # OpError, OSError, protobuf DecodeError from a damaged file
            raise SavedModelError(
                f"cannot load the responder SavedModel from {export_dir}: {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        signatures = {}
        for name in ALL_INPUTS:
            signature = loaded.signatures.get(name)
            if signature is None and name in GUIDED_SIGNATURE_INPUTS:
                continue  # migrated before condition guidance existed: it decodes unguided
            if signature is None:
                raise SavedModelError(
                    f"{export_dir} has no {name!r} signature: not a TF2 responder SavedModel (a TF1 one? "
                    "convert it with 'legacy-assistant migrate')"
                )
            lacking = sorted(set(ALL_INPUTS[name]) - set(signature.structured_input_signature[1])) + sorted(
                set(ALL_OUTPUTS[name]) - set(signature.structured_outputs)
            )
            if lacking:
                raise SavedModelError(f"{export_dir}: signature {name!r} lacks {', '.join(lacking)}")
            signatures[name] = signature
        spec_json = getattr(loaded, "spec_json", None)
        if spec_json is None:
            raise SavedModelError(f"{export_dir}: the module holds no spec_json: not a TF2 responder of this project")
        try:
            self.spec = ResponderSpec.from_dict(json.loads(spec_json.numpy().decode("utf-8")))
        except ValueError as exc:
            raise SavedModelError(f"{export_dir}: spec_json is not a valid spec: {exc}") from exc
        self.vocab_size = self.spec.vocab_size
        self.n_conditions = self.spec.n_conditions
        self._loaded = loaded
        self._signatures = signatures
        self.guided = set(GUIDED_SIGNATURE_INPUTS) <= set(signatures)

    def _call(self, name: str, values: Mapping[str, object]) -> dict[str, np.ndarray]:
        signature = self._signatures.get(name)  # a name the call checked: gone only with close()
        if signature is None:  # closed (in another thread) since the call began: as a compat session's run refuses it
            raise RuntimeError("Attempted to use a closed TF2 responder.")
        inputs = {key: tf.constant(values[key], _INPUT_DTYPES[key]) for key in ALL_INPUTS[name]}
        return {key: value.numpy() for key, value in signature(**inputs).items()}

    def decode(self, context_ids: np.ndarray, condition_ids: np.ndarray, **options: Any) -> DecodeResult:
        """Replies for ``context_ids`` int ``[batch, turns, turn_len]`` and ``condition_ids`` ``[batch]``;
        the options of :meth:`compat.responder.decoding.DecodeRunner.decode`. Bad inputs raise
        ``ValueError`` before anything runs."""
        self._check_open()
        signatures = self._signatures  # a close() meanwhile empties the attribute, not this
        call = decode_call(context_ids, condition_ids, self.vocab_size, self.n_conditions, **options)
        if call.mode not in signatures:
            raise ValueError(
                "decode: condition_strength above 0 needs a TF2 responder migrated with condition guidance; "
                "this one predates it (run 'legacy-assistant migrate' on its compat source again)"
            )
        if call.batch == 0:
            return call.empty_result()
        outputs = self._call(call.mode, call.values)
        return DecodeResult(ids=outputs[IDS], log_probs=outputs[LOG_PROBS], lengths=outputs[LENGTHS])

    def score(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, reply_len]``: log p of each token of ``reply_ids`` (0 at PAD)."""
        self._check_open()
        context, conditions = check_context(context_ids, condition_ids, self.vocab_size, self.n_conditions, "score")
        reply = check_reply(reply_ids, context.shape[0], self.vocab_size, "score")
        if reply.size == 0:
            return np.zeros(reply.shape, np.float32)
        return self._call("score", {CONTEXT: context, CONDITION: conditions, REPLY: reply})[TOKEN_LOG_PROBS]

    def _check_open(self) -> None:
        if self._loaded is None:  # as a closed compat session says it (its signatures are gone)
            raise RuntimeError("Attempted to use a closed TF2 responder.")
        check_not_forked()

    def close(self) -> None:
        self._loaded = None
        self._signatures = {}

    def __enter__(self) -> Tf2Responder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
