"""The responder network: a hierarchical encoder-decoder (HRED) conditioned on an emotion.

::

    context_ids [batch, turns, turn_len]
      -> token embeddings -> bidirectional GRU per turn -> one vector per turn [batch, turns, 2E]
      -> context GRU over the turns (all-PAD turns skipped) -> context vector c [batch, C]
    condition_ids [batch] -> condition embedding e [batch, Cd]
    decoder GRU, state h_0 = c (or tanh(c @ W + b) when C != H), input at step t:
      concat(embedding(previous token), c, e)   (previous token of step 0: START)
    -> logits = h_t @ output/kernel + output/bias   [.., vocab]

Variables (all under ``responder/``; :func:`variable_shapes` lists them): ``embedding``
``[V, E]``, ``condition_embedding`` ``[n_conditions, Cd]``, the GRUs ``utterance_forward``,
``utterance_backward``, ``context`` and ``decoder`` (see :class:`compat.rnn.GRU`),
``decoder_init/{kernel,bias}`` (only when C != H), ``output/kernel`` ``[H, V]`` and
``output/bias`` ``[V]``. The output kernel is stored ``[H, V]`` because the plain product
``h @ kernel`` is several times faster on CPU for a few rows than ``h @ weights^T`` with a
``[V, H]`` matrix; the sampled softmax, which wants ``[V, H]``, transposes it while training.

A network built with ``tied_output=True`` (for training only) has no ``output/kernel``
variable but ``output/projection`` ``[H, E]``: its output kernel is ``projection @
embedding^T``, so each word's output vector is its input embedding seen through one shared
projection (input and output embeddings tied). Its exported form is the plain network above,
with that product stored as ``output/kernel`` (:meth:`ResponderNetwork.exported_variables`):
decoding, serving and the TF2 copy never know the difference.

The decoder's input kernel ``[E + C + Cd, 3H]`` is used in two row blocks: the context and
condition block is multiplied once per reply (:meth:`ResponderNetwork.decoder_start`), the
embedding block once per step. That is the same product as the concatenated input, and
:mod:`compat.responder.reference` checks it with the concatenation written out.

Training randomness (dropout, sampled classes) comes from stateless random ops keyed by the
seed and the global step, so a run resumed from a checkpoint draws what the uninterrupted run
would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from compat.responder.spec import PAD, START, ResponderSpec
from compat.rnn import GRU, bidirectional, steps_needed, unroll
from compat.runtime import tf

SCOPE = "responder"


def variable_shapes(spec: ResponderSpec, tied_output: bool = False) -> dict[str, tuple[int, ...]]:
    """Every model variable's name (as in :meth:`ResponderNetwork.variables`) and shape; with
    ``tied_output``, those of the network built with it (see the module docstring)."""

    def gru(name: str, inputs: int, units: int) -> dict[str, tuple[int, ...]]:
        return {
            f"{SCOPE}/{name}/kernel": (inputs, 3 * units),
            f"{SCOPE}/{name}/recurrent_kernel": (units, 3 * units),
            f"{SCOPE}/{name}/bias": (3 * units,),
            f"{SCOPE}/{name}/recurrent_bias": (3 * units,),
        }

    shapes = {
        f"{SCOPE}/embedding": (spec.vocab_size, spec.embedding_size),
        f"{SCOPE}/condition_embedding": (spec.n_conditions, spec.condition_size),
        **gru("utterance_forward", spec.embedding_size, spec.encoder_units),
        **gru("utterance_backward", spec.embedding_size, spec.encoder_units),
        **gru("context", 2 * spec.encoder_units, spec.context_units),
        **gru("decoder", decoder_input_size(spec), spec.decoder_units),
        f"{SCOPE}/output/kernel": (spec.decoder_units, spec.vocab_size),
        f"{SCOPE}/output/bias": (spec.vocab_size,),
    }
    if tied_output:
        del shapes[f"{SCOPE}/output/kernel"]
        shapes[f"{SCOPE}/output/projection"] = (spec.decoder_units, spec.embedding_size)
    if spec.context_units != spec.decoder_units:
        shapes[f"{SCOPE}/decoder_init/kernel"] = (spec.context_units, spec.decoder_units)
        shapes[f"{SCOPE}/decoder_init/bias"] = (spec.decoder_units,)
    return shapes


def decoder_input_size(spec: ResponderSpec) -> int:
    """Width of the decoder's input: token embedding, context vector, condition embedding."""
    return spec.embedding_size + spec.context_units + spec.condition_size


@dataclass(frozen=True)
class Dropout:
    """Training-time dropout drawn by stateless ops.

    Attributes:
        rate: float32 scalar tensor, the fraction of units zeroed (0 keeps everything exactly).
        key: int64 ``[2]`` tensor; each dropout site adds its own ``salt`` to the first element.
    """

    rate: tf.Tensor
    key: tf.Tensor

    def apply(self, inputs: tf.Tensor, salt: int) -> tf.Tensor:
        """Inverted dropout of ``inputs`` (any shape); same shape."""
        seed = self.key + tf.constant([salt, 0], tf.int64)
        keep = tf.random.stateless_uniform(tf.shape(inputs), seed=seed) >= self.rate
        return tf.where(keep, inputs / (1.0 - self.rate), tf.zeros_like(inputs))


@dataclass(frozen=True)
class DecoderStart:
    """What a reply's decoding needs besides the previous token and state.

    Attributes:
        static: float32 ``[batch, 3H]``: the context-and-condition part of the decoder's input
            projection, bias included (the same at every step).
        state: float32 ``[batch, H]``: the decoder's initial state.
    """

    static: tf.Tensor
    state: tf.Tensor


class ResponderNetwork:
    """Creates the model variables (in the current graph, under ``responder/``); methods build ops.

    ``seed`` gives each variable initialiser its own op-level seed; ``tied_output`` ties the
    output kernel to the embedding (see the module docstring).
    """

    def __init__(self, spec: ResponderSpec, seed: int, tied_output: bool = False) -> None:
        self.spec = spec
        self.tied_output = tied_output
        uniform = tf.random_uniform_initializer
        with tf.variable_scope(SCOPE):
            self.embedding = tf.get_variable(
                "embedding", [spec.vocab_size, spec.embedding_size], tf.float32, uniform(-0.05, 0.05, seed=seed)
            )
            self.condition_embedding = tf.get_variable(
                "condition_embedding",
                [spec.n_conditions, spec.condition_size],
                tf.float32,
                uniform(-0.05, 0.05, seed=seed + 1),
            )
            self.utterance_forward = GRU(spec.embedding_size, spec.encoder_units, "utterance_forward", seed + 10)
            self.utterance_backward = GRU(spec.embedding_size, spec.encoder_units, "utterance_backward", seed + 20)
            self.context = GRU(2 * spec.encoder_units, spec.context_units, "context", seed + 30)
            self.decoder = GRU(decoder_input_size(spec), spec.decoder_units, "decoder", seed + 40)
            if spec.context_units != spec.decoder_units:
                with tf.variable_scope("decoder_init"):
                    self.init_kernel = tf.get_variable(
                        "kernel",
                        [spec.context_units, spec.decoder_units],
                        tf.float32,
                        tf.glorot_uniform_initializer(seed=seed + 50),
                    )
                    self.init_bias = tf.get_variable("bias", [spec.decoder_units], tf.float32, tf.zeros_initializer())
            else:
                self.init_kernel = self.init_bias = None
            with tf.variable_scope("output"):
                self.output_projection: tf.Variable | None = None
                if tied_output:
                    self.output_projection = tf.get_variable(
                        "projection",
                        [spec.decoder_units, spec.embedding_size],
                        tf.float32,
                        tf.glorot_uniform_initializer(seed=seed + 60),
                    )
                    # [H, V], computed where it is used; the sampled loss uses the factors instead
                    self.output_kernel = tf.matmul(self.output_projection, self.embedding, transpose_b=True)
                else:
                    self.output_kernel = tf.get_variable(
                        "kernel",
                        [spec.decoder_units, spec.vocab_size],
                        tf.float32,
                        tf.glorot_uniform_initializer(seed=seed + 60),
                    )
                self.output_bias = tf.get_variable("bias", [spec.vocab_size], tf.float32, tf.zeros_initializer())
        # The decoder's input kernel in its two row blocks (see the module docstring).
        kernel = self.decoder.kernel
        self._token_kernel = kernel[: spec.embedding_size]
        self._static_kernel = kernel[spec.embedding_size :]

    def variables(self) -> list[tf.Variable]:
        """The model's trainable variables (optimizer slots excluded), in creation order."""
        return tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope=SCOPE + "/")

    def exported_variables(self) -> dict[str, tf.Tensor]:
        """The exported network's variables by name (:func:`variable_shapes` without
        ``tied_output``) as tensors: the variables themselves, except that a tied network's
        ``output/kernel`` is the product its logits use."""
        exported = {v.name.split(":")[0]: tf.convert_to_tensor(v) for v in self.variables()}
        if self.output_projection is not None:
            del exported[f"{SCOPE}/output/projection"]
            exported[f"{SCOPE}/output/kernel"] = self.output_kernel
        return exported

    # -- encoder ---------------------------------------------------------------------------

    def encode(self, context_ids: tf.Tensor, dropout: Dropout | None = None, back_prop: bool = True) -> tf.Tensor:
        """Context vector: int32 ``[batch, turns, turn_len]`` (PAD-padded, latest turn last) -> float32 ``[batch, C]``.

        Every turn of every row goes through the bidirectional utterance GRU in one batch of
        ``batch * turns`` sequences; PAD positions leave its state unchanged, and a turn's
        vector is the concatenated final forward and backward states. The context GRU then
        runs over the turn vectors, skipping turns with no token (so missing history changes
        nothing). A row whose turns are all PAD gets the zero vector.
        """
        shape = tf.shape(context_ids)
        batch, turns, turn_len = shape[0], shape[1], shape[2]
        flat = tf.reshape(context_ids, tf.stack([batch * turns, turn_len]))
        token_mask = tf.not_equal(flat, PAD)
        turn_mask = tf.reshape(tf.reduce_any(token_mask, axis=1), tf.stack([batch, turns]))
        # Columns that are PAD in every turn change nothing: leave them out before any work.
        steps = steps_needed(token_mask)
        flat, token_mask = flat[:, :steps], token_mask[:, :steps]
        embedded = tf.gather(self.embedding, flat)  # [batch * turns, turn_len, E]
        if dropout is not None:
            embedded = dropout.apply(embedded, salt=1)
        forward, backward = bidirectional(
            self.utterance_forward,
            self.utterance_backward,
            self.utterance_forward.project(embedded),
            self.utterance_backward.project(embedded),
            mask=token_mask,
            back_prop=back_prop,
        )
        turn_vectors = tf.reshape(
            tf.concat([forward, backward], axis=1), tf.stack([batch, turns, 2 * self.spec.encoder_units])
        )
        _, context = unroll(self.context, self.context.project(turn_vectors), mask=turn_mask, back_prop=back_prop)
        return context

    # -- decoder ---------------------------------------------------------------------------

    def decoder_start(self, context: tf.Tensor, condition_ids: tf.Tensor) -> DecoderStart:
        """Context vector ``[batch, C]`` and int32 ``condition_ids`` ``[batch]`` -> :class:`DecoderStart`."""
        condition = tf.gather(self.condition_embedding, condition_ids)  # [batch, Cd]
        static = tf.nn.bias_add(
            tf.matmul(tf.concat([context, condition], axis=1), self._static_kernel), self.decoder.bias
        )
        if self.init_kernel is None:
            state = context
        else:
            state = tf.tanh(tf.nn.bias_add(tf.matmul(context, self.init_kernel), self.init_bias))
        return DecoderStart(static=static, state=state)

    def decoder_step(self, previous: tf.Tensor, state: tf.Tensor, static: tf.Tensor) -> tf.Tensor:
        """One decoder step: int32 ``previous`` ``[n]``, state ``[n, H]``, static ``[n, 3H]``.

        Returns the new state ``[n, H]``.
        """
        projected = tf.matmul(tf.gather(self.embedding, previous), self._token_kernel) + static
        return self.decoder.step(projected, state)

    def logits(self, states: tf.Tensor) -> tf.Tensor:
        """Vocabulary logits of decoder states: float32 ``[n, H]`` -> ``[n, V]``."""
        return tf.nn.bias_add(tf.matmul(states, self.output_kernel), self.output_bias)

    def teacher_forced(
        self,
        start: DecoderStart,
        reply_ids: tf.Tensor,
        dropout: Dropout | None = None,
        back_prop: bool = True,
    ) -> tf.Tensor:
        """Decoder states when each step is fed the true previous token.

        Args:
            start: from :meth:`decoder_start`, ``[batch, ...]``.
            reply_ids: int32 ``[batch, reply_len]``, the reply tokens, END, then PAD.

        Returns:
            float32 ``[batch, reply_len, H]``: the state from which token ``t`` is predicted.
            States after a reply's END are computed but meaningless (callers mask them).
        """
        batch = tf.shape(reply_ids)[0]
        previous = tf.concat([tf.fill(tf.stack([batch, 1]), START), reply_ids[:, :-1]], axis=1)
        embedded = tf.gather(self.embedding, previous)  # [batch, reply_len, E]
        if dropout is not None:
            embedded = dropout.apply(embedded, salt=2)
        projected = self.decoder.project(embedded, kernel=self._token_kernel) + start.static[:, None, :]
        states, _ = unroll(
            self.decoder, projected, initial_state=start.state, return_sequences=True, back_prop=back_prop
        )
        if dropout is not None:
            states = dropout.apply(states, salt=3)
        return states

    # -- losses ----------------------------------------------------------------------------

    def token_log_probs(self, states: tf.Tensor, reply_ids: tf.Tensor) -> tf.Tensor:
        """log p of each reply token under the full softmax: float32 ``[batch, reply_len]``, 0 at PAD."""
        mask = tf.not_equal(reply_ids, PAD)
        positions = tf.where(mask)  # [n, 2] of real tokens only: no logits for padding
        logits = self.logits(tf.gather_nd(states, positions))
        targets = tf.gather_nd(reply_ids, positions)
        log_probs = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
        return tf.scatter_nd(positions, log_probs, tf.shape(reply_ids, out_type=tf.int64))

    def sampled_loss_sum(self, states: tf.Tensor, reply_ids: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        """Summed sampled-softmax loss over the real tokens (``spec.sampled_softmax`` classes drawn per batch).

        The classes are drawn log-uniformly (frequent, i.e. low, ids more often, as TensorFlow's
        default sampler does) by a stateless op keyed by ``key`` (int64 ``[2]``), with
        replacement; accidental hits of the true class are removed.
        """
        mask = tf.not_equal(reply_ids, PAD)
        inputs = tf.boolean_mask(states, mask)  # [n, H]
        labels = tf.cast(tf.boolean_mask(reply_ids, mask), tf.int64)[:, None]  # [n, 1]
        sampled = _log_uniform_candidates(labels, self.spec.sampled_softmax, self.spec.vocab_size, key)
        if self.output_projection is None:
            weights = tf.transpose(self.output_kernel)  # [V, H]
        else:  # h @ (P @ E^T) = (h @ P) @ E^T: only the sampled rows of E are gathered
            weights, inputs = self.embedding, tf.matmul(inputs, self.output_projection)
        losses = tf.nn.sampled_softmax_loss(
            weights=weights,
            biases=self.output_bias,
            labels=labels,
            inputs=inputs,
            num_sampled=self.spec.sampled_softmax,
            num_classes=self.spec.vocab_size,
            sampled_values=sampled,
            remove_accidental_hits=True,
        )
        return tf.reduce_sum(losses)


def _log_uniform_candidates(
    labels: tf.Tensor, num_sampled: int, num_classes: int, key: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(sampled [num_sampled] int64, true_expected [n, 1], sampled_expected [num_sampled])``.

    ``P(c) = log((c + 2) / (c + 1)) / log(num_classes + 1)``, drawn with replacement by
    inverting its CDF on stateless uniform numbers; expected counts are ``num_sampled * P(c)``.
    """
    log_range = tf.constant(float(num_classes + 1), tf.float64)
    uniform = tf.random.stateless_uniform([num_sampled], seed=key + tf.constant([7, 0], tf.int64), dtype=tf.float64)
    sampled = tf.cast(tf.floor(tf.exp(uniform * tf.log(log_range))), tf.int64) - 1
    sampled = tf.clip_by_value(sampled, 0, num_classes - 1)

    def expected(ids: tf.Tensor) -> tf.Tensor:
        c = tf.cast(ids, tf.float64)
        p = (tf.log(c + 2.0) - tf.log(c + 1.0)) / tf.log(log_range)
        return tf.cast(num_sampled * p, tf.float32)

    return tf.stop_gradient(sampled), tf.stop_gradient(expected(labels)), tf.stop_gradient(expected(sampled))


__all__ = ["SCOPE", "Dropout", "DecoderStart", "ResponderNetwork", "variable_shapes", "decoder_input_size"]
