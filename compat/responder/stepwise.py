"""Decoding the way cakechat did: a Python loop around ``Session.run``, one run per token.

This is the baseline the in-graph decoding of :mod:`compat.responder.decoding` is measured
against (``benchmarks/responder.py``), not a serving path. The graph holds the same network
(:class:`~compat.responder.network.ResponderNetwork`) and the same weights, cut into two
computations:

* ``encode``: ``context_ids`` int32 ``[batch, turns, turn_len]`` and ``condition_ids`` int32
  ``[batch]`` -> the decoder's start (:class:`~compat.responder.network.DecoderStart`:
  ``static`` float32 ``[batch, 3H]``, ``state`` float32 ``[batch, H]``), one run per reply batch;
* ``step``: the previous tokens int32 ``[batch]``, the state and ``static`` -> the next
  token's log-probabilities float32 ``[batch, V]`` and the new state, one run per token.

:meth:`StepwiseDecoder.greedy` loops over ``step`` in Python and picks each token in numpy, with
PAD, UNK and START banned as the in-graph greedy decode bans them (no repetition penalty): the
same ops on the same shapes, so it gives the in-graph greedy replies token for token.

With ``compiled=True`` each run goes through a :class:`compat.graph_session.FixedRun` (the C++
callable Keras's TF1 backend made of every function it ran, ``predict`` included) instead of
``Session.run``: the loop as cakechat's Keras would have run it, without ``Session.run``'s
per-call Python work.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from compat.graph_session import GraphSession, session_config
from compat.interface import SavedModelError, first_line, tensorflow_path
from compat.responder.decoding import NEG, check_context
from compat.responder.inputs import holding_a_token
from compat.responder.network import ResponderNetwork, variable_shapes
from compat.responder.spec import ALWAYS_BANNED, END, PAD, START, DecodeResult, ResponderSpec
from compat.responder.trainer import load_weights
from compat.runtime import tf

VARIABLES_PREFIX = os.path.join("variables", "variables")


def read_saved_model_weights(saved_model_dir: str, spec: ResponderSpec) -> dict[str, np.ndarray]:
    """The network's variables as the responder SavedModel in ``saved_model_dir`` stores them
    (its checkpoint, read without building its graph); :class:`SavedModelError` if unreadable."""
    try:
        prefix = os.path.join(tensorflow_path(saved_model_dir), VARIABLES_PREFIX)
        reader = tf.train.load_checkpoint(prefix)
        return {name: np.asarray(reader.get_tensor(name)) for name in variable_shapes(spec)}
    except (tf.errors.OpError, ValueError, OSError) as exc:
        raise SavedModelError(f"cannot read the responder variables of {saved_model_dir}: {first_line(exc)}") from exc


class StepwiseDecoder:
    """The network in its own finalized graph and session, run one decoder step at a time."""

    def __init__(
        self,
        spec: ResponderSpec,
        weights: Mapping[str, np.ndarray],
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        compiled: bool = False,
    ) -> None:
        self.spec = spec
        self._gs = GraphSession(session_config(intra_op_threads, inter_op_threads))
        try:
            with self._gs.bound():
                network = ResponderNetwork(spec, seed=0)
                self._context = tf.placeholder(tf.int32, [None, None, None], name="context_ids")
                self._condition = tf.placeholder(tf.int32, [None], name="condition_ids")
                start = network.decoder_start(network.encode(self._context, back_prop=False), self._condition)
                self._start = (start.static, start.state)
                self._previous = tf.placeholder(tf.int32, [None], name="previous")
                self._state = tf.placeholder(tf.float32, [None, spec.decoder_units], name="state")
                self._static = tf.placeholder(tf.float32, [None, 3 * spec.decoder_units], name="static")
                new_state = network.decoder_step(self._previous, self._state, self._static)
                self._step = (tf.nn.log_softmax(network.logits(new_state)), new_state)
                variables = {v.name.split(":")[0]: v for v in network.variables()}
            self._gs.finalize()
            load_weights(self._gs, variables, weights)
            self._runs = (
                (
                    self._gs.fixed_run(list(self._start), [self._context, self._condition]),
                    self._gs.fixed_run(list(self._step), [self._previous, self._state, self._static]),
                )
                if compiled
                else None
            )
        except BaseException:
            self._gs.close()
            raise
        # float32 [V]: what the in-graph decode adds to the log-probabilities of banned ids.
        self._ban = np.zeros(spec.vocab_size, np.float32)
        self._ban[list(ALWAYS_BANNED)] = NEG

    def encode(self, context_ids: np.ndarray, condition_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(static [batch, 3H], state [batch, H])`` for a batch of contexts: one ``Session.run``."""
        context, conditions = check_context(
            context_ids, condition_ids, self.spec.vocab_size, self.spec.n_conditions, "stepwise encode"
        )
        rows = context.shape[0]
        context, conditions, _ = holding_a_token(context, conditions)  # as the in-graph decode feeds it
        if self._runs is not None:
            static, state = self._runs[0](context, conditions)
        else:
            static, state = self._gs.run(self._start, {self._context: context, self._condition: conditions})
        return static[:rows], state[:rows]

    def step(self, previous: np.ndarray, state: np.ndarray, static: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(log_probs [batch, V], new_state [batch, H])`` after the tokens ``previous``
        int32 ``[batch]``: one ``Session.run`` (or one compiled call)."""
        if self._runs is not None:
            log_probs, new_state = self._runs[1](previous, state, static)
            return log_probs, new_state
        feed = {self._previous: previous, self._state: state, self._static: static}
        log_probs, new_state = self._gs.run(self._step, feed)
        return log_probs, new_state

    def greedy(self, context_ids: np.ndarray, condition_ids: np.ndarray, max_length: int) -> DecodeResult:
        """Greedy replies, ``1 + (steps until every reply has ended)`` runs; shapes as
        :meth:`compat.responder.saved_model.LoadedResponder.decode` gives them (one candidate)."""
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        static, state = self.encode(context_ids, condition_ids)
        batch = static.shape[0]
        rows = np.arange(batch)
        ids = np.full((batch, max_length), PAD, np.int32)
        total = np.zeros(batch, np.float32)
        finished = np.zeros(batch, bool)
        previous = np.full(batch, START, np.int32)
        for t in range(max_length):
            if finished.all():
                break
            log_probs, state = self.step(previous, state, static)
            token = np.argmax(log_probs + self._ban, axis=1).astype(np.int32)
            token[finished] = PAD
            total += np.where(finished, np.float32(0.0), log_probs[rows, token])
            ids[:, t] = token
            finished |= token == END
            previous = token
        lengths = np.count_nonzero(ids != PAD, axis=1).astype(np.int32)
        return DecodeResult(ids=ids[:, None, :], log_probs=total[:, None], lengths=lengths[:, None])

    def close(self) -> None:
        self._gs.close()

    def __enter__(self) -> StepwiseDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
