"""The responder's training graph in its own graph and session.

:class:`ResponderTrainer` holds one :class:`~compat.responder.network.ResponderNetwork` with
two heads on the same teacher-forced decoder states: the training loss (full or sampled
softmax, with dropout when the spec asks for it) and the evaluation loss (full softmax, no
dropout). The decoding computations of :mod:`compat.responder.decoding` share its variables,
so a model can be tried while it trains, exactly as it will be exported.

Reproducibility: one intra-op and one inter-op thread keep float reductions in a fixed order;
initialisers have op-level seeds derived from ``seed``; dropout and sampled classes come from
stateless ops keyed by ``(seed, global step)``. Same seed and same batches give bit-identical
weights, and a run resumed from a checkpoint (which holds the global step and Adam's moments)
continues exactly as the uninterrupted run would.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from compat.graph_session import GraphSession, session_config
from compat.interface import first_line, tensorflow_path
from compat.responder.decoding import DecodeRunner, build_decoding, check_context, check_reply
from compat.responder.inputs import holding_a_token
from compat.responder.network import Dropout, ResponderNetwork, variable_shapes
from compat.responder.spec import PAD, DecodeResult, ResponderSpec
from compat.runtime import tf

log = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "responder"
KEEP_CHECKPOINTS = 3


class CheckpointError(Exception):
    """A checkpoint cannot be read into this trainer (damaged files, or another network's)."""


@dataclass(frozen=True)
class ResponderOptimizerSpec:
    """Adam with gradient clipping by global norm.

    Attributes:
        learning_rate: Adam's step size (at the first step, when it decays).
        clip_norm: the gradients' global L2 norm is scaled down to at most this.
        decay_steps: 0 keeps the step size; else it falls linearly with the global step from
            ``learning_rate`` to ``final_learning_rate`` over this many steps, and stays there.
        final_learning_rate: the step size after ``decay_steps`` steps.
        average_decay: 0 keeps no average; else an exponential moving average of the weights
            is updated after every step with decay ``min(average_decay, (1 + step) / (10 + step))``
            (``step``: the global step), so that early on it follows the weights closely.
    """

    learning_rate: float = 1e-3
    clip_norm: float = 5.0
    decay_steps: int = 0
    final_learning_rate: float = 0.0
    average_decay: float = 0.0

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"ResponderOptimizerSpec.learning_rate must be positive, got {self.learning_rate}")
        if not self.clip_norm > 0:
            raise ValueError(f"ResponderOptimizerSpec.clip_norm must be positive, got {self.clip_norm}")
        if self.decay_steps < 0:
            raise ValueError(f"ResponderOptimizerSpec.decay_steps must be >= 0, got {self.decay_steps}")
        if not 0 <= self.final_learning_rate <= self.learning_rate:
            raise ValueError(
                "ResponderOptimizerSpec.final_learning_rate must be in [0, learning_rate], "
                f"got {self.final_learning_rate}"
            )
        if not 0 <= self.average_decay < 1:
            raise ValueError(f"ResponderOptimizerSpec.average_decay must be in [0, 1), got {self.average_decay}")

    def rate(self, global_step: tf.Tensor) -> tf.Tensor:
        """float32 scalar: the step size for the step that ``global_step`` (int64) counts."""
        if not self.decay_steps:
            return tf.constant(self.learning_rate, tf.float32)
        # A function of the stored global step alone, so a resumed run takes the same steps.
        done = tf.minimum(tf.cast(global_step, tf.float64) / float(self.decay_steps), 1.0)
        rate = self.learning_rate + (self.final_learning_rate - self.learning_rate) * done
        return tf.cast(rate, tf.float32)


def _variable_name(variable: tf.Variable) -> str:
    return variable.name.split(":")[0]


class ResponderTrainer:
    """Trains a :class:`ResponderSpec` network on numpy batches.

    Batches: ``context_ids`` int ``[batch, turns, turn_len]``, ``condition_ids`` int
    ``[batch]``, ``reply_ids`` int ``[batch, reply_len]`` (reply tokens, END, PAD-padded).
    Losses count every reply token up to and including END, never PAD.
    """

    def __init__(
        self,
        spec: ResponderSpec,
        optimizer: ResponderOptimizerSpec,
        seed: int,
        threads: int = 1,
        decoding: bool = True,
        tied_output: bool = False,
    ) -> None:
        """``threads``: intra- and inter-op threads (1 keeps runs bit-identical); ``decoding``:
        also build :meth:`decode` and :meth:`score` (``False`` builds the graph faster);
        ``tied_output``: tie the output kernel to the embedding (see
        :mod:`compat.responder.network`; :meth:`exported_weights` gives the plain network's form)."""
        self.spec = spec
        self.optimizer = optimizer
        self.seed = int(seed)
        self._gs = GraphSession(session_config(threads, threads))
        with self._gs.bound():
            tf.set_random_seed(self.seed)
            self.network = ResponderNetwork(spec, self.seed, tied_output=tied_output)
            self._exported = self.network.exported_variables()
            self._global_step = tf.train.get_or_create_global_step()
            with tf.name_scope("train"):
                self._context = tf.placeholder(tf.int32, [None, None, None], name="context_ids")
                self._condition = tf.placeholder(tf.int32, [None], name="condition_ids")
                self._reply = tf.placeholder(tf.int32, [None, None], name="reply_ids")
                self._training = tf.placeholder_with_default(False, [], name="training")
                # Stateless randomness keyed by (seed, step): a resumed run draws the same numbers.
                key = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(self._global_step, tf.int64)])
                dropout = None
                if spec.dropout > 0:
                    rate = tf.where(self._training, tf.constant(spec.dropout, tf.float32), tf.constant(0.0))
                    dropout = Dropout(rate=rate, key=key)
                context = self.network.encode(self._context, dropout)
                start = self.network.decoder_start(context, self._condition)
                states = self.network.teacher_forced(start, self._reply, dropout)
                self._tokens = tf.reduce_sum(tf.cast(tf.not_equal(self._reply, PAD), tf.int32))
                self._eval_sum = -tf.reduce_sum(self.network.token_log_probs(states, self._reply))
                if spec.sampled_softmax:
                    train_sum = self.network.sampled_loss_sum(states, self._reply, key)
                else:
                    train_sum = self._eval_sum
                self._loss = train_sum / tf.cast(tf.maximum(self._tokens, 1), tf.float32)
                variables = self.network.variables()
                self._learning_rate = optimizer.rate(self._global_step)
                adam = tf.train.AdamOptimizer(self._learning_rate)
                gradients = tf.gradients(self._loss, variables)
                clipped, _ = tf.clip_by_global_norm(gradients, optimizer.clip_norm)
                self._train_op = adam.apply_gradients(zip(clipped, variables), global_step=self._global_step)
                self._averages: dict[str, tf.Variable] = {}
                if optimizer.average_decay:
                    average = tf.train.ExponentialMovingAverage(
                        optimizer.average_decay, num_updates=self._global_step, name="average"
                    )
                    with tf.control_dependencies([self._train_op]):  # averages the weights this step made
                        self._train_op = average.apply(variables)
                    self._averages = {_variable_name(v): average.average(v) for v in variables}
                    restart = [average.average(v).assign(v) for v in variables]
                    self._restart_average = tf.group(*restart, name="restart_average")
            self._decoding = DecodeRunner(self._gs, build_decoding(self.network)) if decoding else None
            self._variables = {_variable_name(v): v for v in variables}
            self._saver = tf.train.Saver(tf.global_variables(), max_to_keep=KEEP_CHECKPOINTS, save_relative_paths=True)
            init = tf.global_variables_initializer()
        self._gs.finalize()
        self._gs.run(init)
        expected = variable_shapes(spec, tied_output)
        actual = {name: tuple(v.shape.as_list()) for name, v in self._variables.items()}
        if actual != expected:  # a guard for whoever changes the network next
            raise AssertionError(f"network variables {actual} differ from variable_shapes() {expected}")

    # -- training --------------------------------------------------------------------------

    def _feed(self, context_ids, condition_ids, reply_ids, what: str) -> dict:
        context, conditions = check_context(
            context_ids, condition_ids, self.spec.vocab_size, self.spec.n_conditions, what
        )
        reply = check_reply(reply_ids, context.shape[0], self.spec.vocab_size, what)
        if context.shape[0] == 0 or reply.shape[1] == 0:
            # the shape given: check_context makes a context of no turns or columns one PAD cell
            given = np.shape(context_ids)
            raise ValueError(f"{what}: the batch is empty (context shape {given}, reply shape {reply.shape})")
        context, conditions, added = holding_a_token(context, conditions)
        if added:  # a row without reply tokens: nothing of it reaches the loss or the token count
            reply = np.concatenate([reply, np.zeros((1, reply.shape[1]), np.int32)])
        return {self._context: context, self._condition: conditions, self._reply: reply}

    def train_batch(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> float:
        """One Adam step (dropout on, if any). Returns the batch's training loss in nats per reply token."""
        feed = self._feed(context_ids, condition_ids, reply_ids, "train_batch")
        feed[self._training] = True
        _, loss = self._gs.run([self._train_op, self._loss], feed)
        return float(loss)

    def evaluate(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> tuple[float, int]:
        """``(summed negative log-likelihood in nats, tokens)`` under the full softmax, without dropout."""
        feed = self._feed(context_ids, condition_ids, reply_ids, "evaluate")
        total, tokens = self._gs.run([self._eval_sum, self._tokens], feed)
        return float(total), int(tokens)

    def learning_rate(self) -> float:
        """The step size the next training step takes."""
        return float(self._gs.run(self._learning_rate))

    @property
    def global_step(self) -> int:
        """Optimizer steps taken (restored with a checkpoint)."""
        return int(self._gs.run(self._global_step))

    # -- decoding with the current weights ---------------------------------------------------

    def decode(self, context_ids: np.ndarray, condition_ids: np.ndarray, **options) -> DecodeResult:
        """:meth:`compat.responder.decoding.DecodeRunner.decode` with the current weights."""
        return self._decoder().decode(context_ids, condition_ids, **options)

    def score(self, context_ids: np.ndarray, condition_ids: np.ndarray, reply_ids: np.ndarray) -> np.ndarray:
        """float32 ``[batch, reply_len]`` log p of each reply token (0 at PAD) with the current weights."""
        return self._decoder().score(context_ids, condition_ids, reply_ids)

    def _decoder(self) -> DecodeRunner:
        if self._decoding is None:
            raise RuntimeError("this trainer was built with decoding=False: it cannot decode or score")
        return self._decoding

    # -- weights and checkpoints ---------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of the model variables by name (see :func:`compat.responder.network.variable_shapes`)."""
        names = list(self._variables)
        values = self._gs.run([self._variables[n] for n in names])
        return {name: np.array(value) for name, value in zip(names, values)}

    @property
    def averaging(self) -> bool:
        """Whether a moving average of the weights is kept (``average_decay`` above 0)."""
        return bool(self._averages)

    def averaged_weights(self) -> dict[str, np.ndarray]:
        """The moving average of each model variable, by name (the weights themselves without
        averaging): float32 arrays of the variables' shapes (:func:`compat.responder.network.variable_shapes`,
        with ``tied_output`` as trained)."""
        if not self._averages:
            return self.get_weights()
        names = list(self._averages)
        values = self._gs.run([self._averages[n] for n in names])
        return {name: np.array(value) for name, value in zip(names, values)}

    @contextmanager
    def using_averaged_weights(self) -> Iterator[None]:
        """Within the block the model variables hold the averaged weights, so :meth:`evaluate`,
        :meth:`decode` and :meth:`score` use them; afterwards the trained weights are back,
        bit for bit, and training goes on from them. Without averaging nothing changes."""
        if not self._averages:
            yield
            return
        trained = self.get_weights()
        load_weights(self._gs, self._variables, self.averaged_weights())
        try:
            yield
        finally:
            load_weights(self._gs, self._variables, trained)

    def exported_weights(self) -> dict[str, np.ndarray]:
        """What a model trained here is exported with, in the plain network's form
        (:func:`compat.responder.network.variable_shapes` of the spec): the moving average when
        one is kept, and a tied output's kernel multiplied out."""
        names = list(self._exported)
        with self.using_averaged_weights():
            values = self._gs.run([self._exported[n] for n in names])
        return {name: np.array(value) for name, value in zip(names, values)}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load model variables, by name, each of its variable's shape
        (:func:`compat.responder.network.variable_shapes`, with ``tied_output`` as trained;
        optimizer state is left as it is; the weights' moving average, if kept, restarts from
        them); ``ValueError`` on a mismatch."""
        load_weights(self._gs, self._variables, weights)
        if self._averages:
            self._gs.run(self._restart_average)

    def save_checkpoint(self, directory: str, step: int) -> str:
        """Write weights, optimizer state and global step as ``<directory>/responder-<step>``; keeps the
        last 3, and no other checkpoint's files (those a killed run left).

        Returns the checkpoint's path prefix.
        """
        os.makedirs(directory, exist_ok=True)
        path = self._saver.save(
            self._gs.session,
            os.path.join(tensorflow_path(directory), CHECKPOINT_PREFIX),
            global_step=int(step),
            write_meta_graph=False,
        )
        log.info("saved responder checkpoint %s", path)
        self._remove_unlisted_checkpoints(directory)
        return path

    def _remove_unlisted_checkpoints(self, directory: str) -> None:
        """Remove the files of checkpoints the saver does not keep: a run killed as TensorFlow
        wrote a checkpoint (its weights without their index) or between recording one and
        deleting the oldest leaves them, and the saver only deletes the ones it knows of."""
        kept = {os.path.basename(path) for path in self._saver.last_checkpoints}
        pattern = re.compile(rf"({re.escape(CHECKPOINT_PREFIX)}-\d+)\.(index|data-\d+-of-\d+)")
        for name in os.listdir(directory):
            match = pattern.fullmatch(name)
            if match is None or match.group(1) in kept:
                continue
            try:
                os.unlink(os.path.join(directory, name))
            except OSError as exc:  # a file left over is not worth failing the run for
                log.warning("cannot remove the old checkpoint file %s: %s", name, exc)

    def restore_latest(self, directory: str) -> int | None:
        """Restore the newest checkpoint in ``directory``; returns its step, or ``None`` when there is none.

        Raises :class:`CheckpointError` when the checkpoint does not fit this trainer's network
        or its files are damaged.
        """
        state = tf.train.get_checkpoint_state(tensorflow_path(directory)) if os.path.isdir(directory) else None
        if state is None or not state.model_checkpoint_path:
            return None
        path = state.model_checkpoint_path  # made absolute by get_checkpoint_state
        if not tf.io.gfile.exists(path + ".index"):
            # latest_checkpoint would log an error of its own and answer "none", as if nothing was saved
            raise CheckpointError(
                f"{path}.index is missing: the 'checkpoint' file names a checkpoint whose files are gone"
            )
        try:
            self._saver.restore(self._gs.session, path)
        except (tf.errors.OpError, ValueError) as exc:
            # A missing variable or a shape mismatch means another spec; torn files fail here too.
            raise CheckpointError(f"cannot restore responder checkpoint {path}: {first_line(exc)}") from exc
        # The saver keeps the last few checkpoints of its own process only: told of the ones
        # already there, it deletes them in turn instead of leaving them behind at every resume.
        self._saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
        match = re.search(r"-(\d+)$", path)
        log.info("restored responder checkpoint %s", path)
        return int(match.group(1)) if match else None

    def close(self) -> None:
        self._gs.close()

    def __enter__(self) -> ResponderTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_weights(gs: GraphSession, variables: Mapping[str, tf.Variable], weights: Mapping[str, np.ndarray]) -> None:
    """Assign ``weights`` (by variable name) through the variables' own initialisers.

    Feeding an initialiser's input adds no op, so this works on a finalized graph.
    """
    missing = sorted(set(variables) - set(weights))
    unexpected = sorted(set(weights) - set(variables))
    if missing or unexpected:
        raise ValueError(f"weights do not match the responder network: missing {missing}, unexpected {unexpected}")
    feed = {}
    for name, variable in variables.items():
        value = np.asarray(weights[name], dtype=np.float32)
        expected = tuple(variable.shape.as_list())
        if value.shape != expected:
            raise ValueError(f"weight {name!r} has shape {value.shape}, the network expects {expected}")
        feed[variable.initializer.inputs[1]] = value
    gs.run([v.initializer for v in variables.values()], feed)
