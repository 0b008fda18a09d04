"""The classifier's training graph: :class:`ClassifierTrainer` and its :class:`OptimizerSpec`.

The trainer owns a graph and session of its own holding two forms of one network
(:func:`compat.classifier.network.build_logits`, shared variables): the training form (dropout,
labels, loss, optimizer) and the inference form exactly as exported, for evaluation and
predictions. It takes and returns numpy arrays only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from compat.classifier.network import WeightLoader, build_logits, model_variables, variable_name
from compat.classifier.schema import IDS_KEY, KERNEL, WEIGHTS_KEY, NetworkSpec
from compat.graph_session import GraphSession, session_config
from compat.interface import check_sparse
from compat.runtime import tf


@dataclass(frozen=True)
class OptimizerSpec:
    """How weights are updated.

    Attributes:
        name: ``"sgd"`` (momentum SGD, Nesterov by default) or ``"adam"``.
        learning_rate: step size.
        momentum: SGD momentum (ignored by Adam).
        nesterov: use Nesterov momentum with SGD.
        label_smoothing: mass moved from the true class to all classes, in [0, 1).
        weight_decay: L2 penalty on kernels (not biases), added to the loss.
        sparse_updates: update only the input-kernel rows a batch touches (fast on large
            vocabularies; momentum and Adam moments of other rows then wait). ``False`` turns
            the input gradient dense, which is exactly what a dense-input network would do.
        decay: Keras SGD's ``decay`` (SGD only): the learning rate of step ``t`` (0 for the
            first) is ``learning_rate / (1 + decay * t)``, and the update is Keras SGD's (see
            :func:`keras_sgd_update`). 0 keeps ``tf.train.MomentumOptimizer`` at a constant rate.
    """

    name: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    sparse_updates: bool = False
    decay: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.name!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.decay < 0:
            raise ValueError(f"decay must be >= 0, got {self.decay}")
        if self.decay and (self.name != "sgd" or self.sparse_updates):
            raise ValueError("decay is Keras SGD's learning-rate decay: it needs optimizer 'sgd' and dense updates")


def keras_sgd_update(
    gradients: list[tuple[tf.Tensor, tf.Variable]], learning_rate: tf.Tensor, spec: OptimizerSpec
) -> tf.Operation:
    """One step of Keras SGD (``tf.keras.optimizers.legacy.SGD``, the classic recipe's optimizer).

    With ``t`` the steps taken so far (an int64 variable ``keras_sgd/iterations``) and
    ``lr_t = learning_rate / (1 + decay * t)`` (float32 scalar), every variable ``w`` with dense
    gradient ``g`` and a zero-initialised slot ``v`` moves as ``v <- momentum * v - lr_t * g``, then
    ``w <- w + momentum * v - lr_t * g`` with Nesterov momentum or ``w <- w + v`` without.

    Keras keeps each step's rate inside ``v``; ``tf.train.MomentumOptimizer`` at rate ``lr_t``
    would apply the current rate to the whole of its unscaled slot, which is the same update only
    while the rate is constant. Fed ``lr_t * g`` at rate 1 instead, its slot is exactly ``-v``
    and its fused update is Keras's, with one extra multiplication per gradient.
    """
    with tf.variable_scope("keras_sgd"):
        iterations = tf.get_variable(
            "iterations", shape=[], dtype=tf.int64, initializer=tf.zeros_initializer(), trainable=False
        )
        rate = learning_rate / (1.0 + spec.decay * tf.cast(iterations, tf.float32))
        scaled = [(rate * gradient, variable) for gradient, variable in gradients if gradient is not None]
        optimizer = tf.train.MomentumOptimizer(1.0, spec.momentum, use_nesterov=spec.nesterov)
        # the step count moves after every variable has used it (apply_gradients orders that)
        return optimizer.apply_gradients(scaled, global_step=iterations)


class ClassifierTrainer:
    """A training graph in its own graph and session.

    Each call takes numpy batches: sparse features ``ids`` int32 and ``weights`` float32, both
    ``[batch, width]``, and ``y`` int ``[batch]`` class ids. ``batch_rows`` trains the first
    layer in its batched form (:func:`compat.layers.sparse_dense`): faster when a batch's
    sentences share many features, and the same network up to float rounding, which a long
    run of training can grow into other weights, so a recipe keeps the form it was made with.
    """

    def __init__(
        self, spec: NetworkSpec, optimizer: OptimizerSpec, seed: int, threads: int = 1, batch_rows: bool = False
    ) -> None:
        self.spec = spec
        self.optimizer = optimizer
        # One intra-op thread keeps float reductions in a fixed order: a rerun with the same
        # seed gives bit-identical weights. The networks are small, so little speed is lost.
        self._gs = GraphSession(session_config(threads, threads))
        with self._gs.bound():
            tf.set_random_seed(seed)
            self._ids = tf.placeholder(tf.int32, [None, None], name=IDS_KEY)
            self._values = tf.placeholder(tf.float32, [None, None], name=WEIGHTS_KEY)
            self._y = tf.placeholder(tf.int32, [None], name="labels")
            self._rate = tf.placeholder_with_default(0.0, [], name="dropout_rate")
            # Two forms of one network (shared variables): training, with dropout (and, with
            # batch_rows, the first layer in its batched form); and the inference form, exactly
            # as exported, for evaluation and predictions.
            train_logits = build_logits(self._ids, self._values, spec, self._rate, seed, batch_rows=batch_rows)
            with tf.variable_scope(tf.get_variable_scope(), reuse=True):
                logits = build_logits(self._ids, self._values, spec, None, seed)
            self._probabilities = tf.nn.softmax(logits)
            targets = tf.one_hot(self._y, spec.n_classes, dtype=tf.float32)
            if optimizer.label_smoothing:
                targets = targets * (1.0 - optimizer.label_smoothing) + optimizer.label_smoothing / spec.n_classes
            batch_size = tf.cast(tf.shape(self._y)[0], tf.float32)

            def loss_and_correct(scores: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                cross_entropy = tf.nn.softmax_cross_entropy_with_logits_v2(labels=targets, logits=scores)
                hits = tf.equal(tf.argmax(scores, axis=1, output_type=tf.int32), self._y)
                return tf.reduce_mean(cross_entropy), tf.reduce_sum(tf.cast(hits, tf.float32))

            loss, self._train_correct = loss_and_correct(train_logits)
            self._train_loss_sum = loss * batch_size
            eval_loss, self._correct = loss_and_correct(logits)
            self._loss_sum = eval_loss * batch_size
            if optimizer.weight_decay:
                kernels = [v for v in model_variables() if v.name.endswith(f"{KERNEL}:0")]
                loss = loss + optimizer.weight_decay * tf.add_n([tf.nn.l2_loss(k) for k in kernels])
            # fed per step by a learning-rate schedule; defaults to the spec's constant rate
            self._learning_rate = tf.placeholder_with_default(
                tf.constant(optimizer.learning_rate, tf.float32), [], name="learning_rate"
            )
            if optimizer.name == "adam":
                opt = tf.train.AdamOptimizer(self._learning_rate)
            else:
                opt = tf.train.MomentumOptimizer(
                    self._learning_rate, optimizer.momentum, use_nesterov=optimizer.nesterov
                )
            gradients = opt.compute_gradients(loss)
            if not optimizer.sparse_updates:
                gradients = [
                    (tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g, v) for g, v in gradients
                ]
            if optimizer.decay:
                self._train_op = keras_sgd_update(gradients, self._learning_rate, optimizer)
            else:
                self._train_op = opt.apply_gradients(gradients)
            self._weights = WeightLoader(model_variables())
            init = tf.global_variables_initializer()
        self._gs.finalize()
        self._gs.run(init)

    def _feed(self, ids: np.ndarray, weights: np.ndarray, what: str) -> dict:
        ids, weights = check_sparse(ids, weights, self.spec.n_features, what)
        return {self._ids: ids, self._values: weights}

    def train_batch(
        self, ids: np.ndarray, weights: np.ndarray, y: np.ndarray, learning_rate: float | None = None
    ) -> tuple[float, float]:
        """One optimizer step with dropout on. Returns the batch's (mean loss, accuracy).

        ``ids`` (int32) and ``weights`` (float32) are the sparse features, both ``[batch, width]``;
        ``y`` the integer class indices ``[batch]``. The loss is the cross-entropy in nats per row
        (label-smoothed targets, weight decay not included), the accuracy a fraction in [0, 1].
        ``learning_rate`` replaces the spec's rate for this step (a schedule); ``None`` keeps it.
        """
        feed = self._feed(ids, weights, "train_batch")
        feed.update({self._y: y, self._rate: self.spec.dropout})
        if learning_rate is not None:
            feed[self._learning_rate] = learning_rate
        _, loss_sum, correct = self._gs.run([self._train_op, self._train_loss_sum, self._train_correct], feed)
        return float(loss_sum) / len(y), float(correct) / len(y)

    def evaluate(
        self, ids: np.ndarray, weights: np.ndarray, y: np.ndarray, batch_size: int = 2048
    ) -> tuple[float, float]:
        """Mean training loss (the cross-entropy against the label-smoothed targets, so not the
        plain negative log-likelihood when ``label_smoothing`` > 0) and accuracy, without dropout,
        over all rows: the loss in nats per row, the accuracy a fraction in [0, 1]. The arguments
        are shaped as :meth:`train_batch`'s, ``[n, width]`` features and ``[n]`` labels."""
        loss_total = correct_total = 0.0
        for start in range(0, len(y), batch_size):
            rows = slice(start, start + batch_size)
            feed = self._feed(ids[rows], weights[rows], "evaluate")
            feed[self._y] = y[rows]
            loss_sum, correct = self._gs.run([self._loss_sum, self._correct], feed)
            loss_total += float(loss_sum)
            correct_total += float(correct)
        return loss_total / max(len(y), 1), correct_total / max(len(y), 1)

    def predict_proba(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float32 ``[batch, n_classes]`` softmax probabilities, dropout off."""
        return self._gs.run(self._probabilities, self._feed(ids, weights, "predict_proba"))

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of the model's variables (optimizer slots excluded), by variable name: float32
        arrays of the shapes :meth:`compat.classifier.schema.NetworkSpec.variables` gives
        (a kernel ``[fan_in, fan_out]``, a bias ``[fan_out]``)."""
        with self._gs.bound():
            variables = model_variables()
        values = self._gs.run(variables)
        return {variable_name(v): np.array(value) for v, value in zip(variables, values)}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Load the model's variables, by name, each of its shape in
        :meth:`compat.classifier.schema.NetworkSpec.variables` (the optimizer's slots are left as
        they are)."""
        self._weights.load(self._gs, weights)

    def close(self) -> None:
        self._gs.close()

    def __enter__(self) -> ClassifierTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
