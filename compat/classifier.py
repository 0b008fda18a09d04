"""The intent classifier network, its training graph, and its SavedModel.

The whole model is :func:`build_logits`: a stack of ReLU layers with dropout and a linear
output. The classic recipe is ``features -> 128 ReLU -> dropout 0.5 -> 64 ReLU -> dropout 0.5 ->
softmax``. Features arrive sparse: each row is the ids of its non-zero columns and their weights,
padded with weight 0 (``ids`` int32 ``[batch, width]``, ``weights`` float32 ``[batch, width]``),
so a vocabulary of 100,000 terms costs no more per sentence than one of 300. Training and serving use two different graphs built from that one function:

* :class:`ClassifierTrainer` owns a training graph (labels, loss, optimizer, dropout switch);
* :func:`export_saved_model` builds a lean inference graph (no dropout, no optimizer slots),
  loads trained weights into it and writes a TF1 SavedModel with one ``predict`` signature;
* :class:`LoadedClassifier` loads that SavedModel into its own finalized graph and session.

Weights cross between graphs as ``{variable name: numpy array}`` dicts, so nothing TensorFlow
ever leaves this package.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from compat.graph_session import GraphSession, session_config
from compat.interface import SavedModelError, check_sparse
from compat.layers import dense, dropout, sparse_dense, sparse_matmul
from compat.runtime import tf

MODEL_SCOPE = "classifier"
SHORTCUT_SCOPE = "shortcut"
SIGNATURE_NAME = "predict"
IDS_KEY = "ids"
WEIGHTS_KEY = "weights"
OUTPUT_KEY = "probabilities"
LOGITS_KEY = "logits"
SERVING_TAGS = ("serve",)  # tf.saved_model.tag_constants.SERVING


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of the network.

    Attributes:
        n_features: width of the input feature vector.
        n_classes: number of intents (softmax width).
        hidden_units: width of each ReLU layer, input side first.
        dropout: rate applied after every hidden layer while training (0 disables it).
        linear_shortcut: also map the input linearly straight to the logits, beside the hidden
            layers (``logits = output(hidden) + x @ shortcut``; a wide-and-deep network).
    """

    n_features: int
    n_classes: int
    hidden_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.5
    linear_shortcut: bool = False

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise ValueError(f"n_features must be at least 1, got {self.n_features}")
        if self.n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.n_classes}")
        if any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive, got {self.hidden_units}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.linear_shortcut and not self.hidden_units:
            raise ValueError("linear_shortcut needs at least one hidden layer (without one the network is linear)")


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
    """

    name: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    sparse_updates: bool = False

    def __post_init__(self) -> None:
        if self.name not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.name!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


def build_logits(
    ids: "tf.Tensor",
    weights: "tf.Tensor",
    spec: NetworkSpec,
    dropout_rate: "tf.Tensor | None",
    seed: int,
    batch_rows: bool = False,
) -> "tf.Tensor":
    """The network: sparse features ``(ids, weights)`` ``[batch, width]`` -> logits ``[batch, n_classes]``.

    ``dropout_rate`` is a scalar tensor (training graph) or ``None`` (inference graph, no
    dropout ops at all). ``batch_rows`` picks the first layer's training form (see
    :func:`compat.layers.sparse_dense`); the inference graph keeps the plain form. Variables
    live under ``classifier/hidden_<i>/`` and ``classifier/output/``; the first layer's kernel
    is ``[n_features, width_0]``. With ``spec.linear_shortcut``, ``classifier/shortcut/kernel``
    ``[n_features, n_classes]`` (no bias: the output layer has one) adds ``x @ kernel`` to the
    logits; dropout never touches that path.
    """
    widths = [int(u) for u in spec.hidden_units]
    with tf.variable_scope(MODEL_SCOPE):
        if not widths:
            return sparse_dense(
                ids, weights, spec.n_features, spec.n_classes, "output", seed=seed, batch_rows=batch_rows
            )
        hidden = sparse_dense(
            ids, weights, spec.n_features, widths[0], "hidden_0", tf.nn.relu, seed=seed, batch_rows=batch_rows
        )
        for index, units in enumerate(widths):
            if index:
                hidden = dense(hidden, units, f"hidden_{index}", tf.nn.relu, seed=seed + index)
            if dropout_rate is not None:
                hidden = dropout(hidden, dropout_rate, seed=seed + 1000 + index)
        logits = dense(hidden, spec.n_classes, "output", seed=seed + len(widths))
        if spec.linear_shortcut:
            logits = logits + _shortcut(ids, weights, spec, seed + 2000, batch_rows)
        return logits


def _shortcut(ids: "tf.Tensor", weights: "tf.Tensor", spec: NetworkSpec, seed: int, batch_rows: bool) -> "tf.Tensor":
    """The linear path ``x @ shortcut/kernel``: float32 ``[batch, n_classes]``."""
    with tf.variable_scope(SHORTCUT_SCOPE):
        kernel = tf.get_variable(
            "kernel",
            shape=[spec.n_features, spec.n_classes],
            dtype=tf.float32,
            initializer=tf.glorot_uniform_initializer(seed=seed),
        )
    return sparse_matmul(kernel, ids, weights, batch_rows)


def _model_variables() -> list["tf.Variable"]:
    return tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope=MODEL_SCOPE + "/")


def _variable_name(variable: "tf.Variable") -> str:
    return variable.name.split(":")[0]


_check_sparse = check_sparse


class _WeightLoader:
    """Assign ops fed from placeholders, built once so the graph can be finalized afterwards."""

    def __init__(self, variables: list["tf.Variable"]) -> None:
        self._variables = {_variable_name(v): v for v in variables}
        self._inputs = {}
        self._assigns = []
        for name, variable in self._variables.items():
            value = tf.placeholder(variable.dtype.base_dtype, variable.shape, name=f"load/{name}")
            self._inputs[name] = value
            self._assigns.append(tf.assign(variable, value))

    def load(self, session: GraphSession, weights: Mapping[str, np.ndarray]) -> None:
        missing = sorted(set(self._variables) - set(weights))
        unexpected = sorted(set(weights) - set(self._variables))
        if missing or unexpected:
            raise ValueError(f"weights do not match the network: missing {missing}, unexpected {unexpected}")
        feed = {}
        for name, variable in self._variables.items():
            value = np.asarray(weights[name])
            if tuple(value.shape) != tuple(variable.shape.as_list()):
                raise ValueError(
                    f"weight {name!r} has shape {value.shape}, the network expects {tuple(variable.shape.as_list())}"
                )
            feed[self._inputs[name]] = value
        session.run(self._assigns, feed)


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

            def loss_and_correct(scores: "tf.Tensor") -> tuple["tf.Tensor", "tf.Tensor"]:
                cross_entropy = tf.nn.softmax_cross_entropy_with_logits_v2(labels=targets, logits=scores)
                hits = tf.equal(tf.argmax(scores, axis=1, output_type=tf.int32), self._y)
                return tf.reduce_mean(cross_entropy), tf.reduce_sum(tf.cast(hits, tf.float32))

            loss, self._train_correct = loss_and_correct(train_logits)
            self._train_loss_sum = loss * batch_size
            eval_loss, self._correct = loss_and_correct(logits)
            self._loss_sum = eval_loss * batch_size
            if optimizer.weight_decay:
                kernels = [v for v in _model_variables() if v.name.endswith("kernel:0")]
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
            self._train_op = opt.apply_gradients(gradients)
            self._weights = _WeightLoader(_model_variables())
            init = tf.global_variables_initializer()
        self._gs.finalize()
        self._gs.run(init)

    def _feed(self, ids: np.ndarray, weights: np.ndarray, what: str) -> dict:
        ids, weights = _check_sparse(ids, weights, self.spec.n_features, what)
        return {self._ids: ids, self._values: weights}

    def train_batch(
        self, ids: np.ndarray, weights: np.ndarray, y: np.ndarray, learning_rate: float | None = None
    ) -> tuple[float, float]:
        """One optimizer step with dropout on. Returns the batch's (mean loss, accuracy).

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
        """Mean cross-entropy and accuracy without dropout, over all rows."""
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
        """Copies of the model's variables (optimizer slots excluded), by variable name."""
        with self._gs.bound():
            variables = _model_variables()
        values = self._gs.run(variables)
        return {_variable_name(v): np.array(value) for v, value in zip(variables, values)}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self._weights.load(self._gs, weights)

    def close(self) -> None:
        self._gs.close()

    def __enter__(self) -> "ClassifierTrainer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export_saved_model(weights: Mapping[str, np.ndarray], spec: NetworkSpec, export_dir: str) -> None:
    """Write a TF1 SavedModel of the inference graph holding ``weights``.

    ``export_dir`` must not exist yet. The ``predict`` signature maps ``ids`` (int32) and
    ``weights`` (float32), both ``[batch, width]``, to ``probabilities`` and ``logits`` (float32
    ``[batch, n_classes]``).
    """
    if os.path.exists(export_dir):
        raise FileExistsError(f"SavedModel directory already exists: {export_dir}")
    with GraphSession() as gs:
        with gs.bound():
            ids = tf.placeholder(tf.int32, [None, None], name=IDS_KEY)
            values = tf.placeholder(tf.float32, [None, None], name=WEIGHTS_KEY)
            logits = build_logits(ids, values, spec, dropout_rate=None, seed=0)
            probabilities = tf.nn.softmax(logits, name=OUTPUT_KEY)
            loader = _WeightLoader(_model_variables())
            gs.run(tf.global_variables_initializer())
            loader.load(gs, weights)
            signature = tf.saved_model.signature_def_utils.predict_signature_def(
                inputs={IDS_KEY: ids, WEIGHTS_KEY: values},
                outputs={OUTPUT_KEY: probabilities, LOGITS_KEY: logits},
            )
            builder = tf.saved_model.builder.SavedModelBuilder(export_dir)
            builder.add_meta_graph_and_variables(
                gs.session,
                list(SERVING_TAGS),
                signature_def_map={SIGNATURE_NAME: signature},
                strip_default_attrs=True,
            )
            builder.save()


class LoadedClassifier:
    """A SavedModel loaded into its own finalized graph; :meth:`predict_proba` is thread-safe."""

    def __init__(self, export_dir: str, intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
        self._gs = GraphSession(session_config(intra_op_threads, inter_op_threads))
        try:
            with self._gs.bound():
                meta_graph = tf.saved_model.loader.load(self._gs.session, list(SERVING_TAGS), export_dir)
        except (tf.errors.OpError, OSError, ValueError, RuntimeError) as exc:
            self._gs.close()
            raise SavedModelError(f"cannot load SavedModel from {export_dir}: {_first_line(exc)}") from exc
        except Exception as exc:  # protobuf DecodeError and friends from a damaged saved_model.pb
            self._gs.close()
            raise SavedModelError(f"cannot load SavedModel from {export_dir}: {type(exc).__name__}: {_first_line(exc)}") from exc
        with self._gs.bound():
            uninitialized = self._gs.run(tf.report_uninitialized_variables())
        if len(uninitialized):
            self._gs.close()
            names = ", ".join(n.decode() for n in uninitialized)
            raise SavedModelError(f"{export_dir}: variables left uninitialised after restore: {names}")
        signature = meta_graph.signature_def.get(SIGNATURE_NAME)
        if signature is None or {IDS_KEY, WEIGHTS_KEY} - set(signature.inputs) or OUTPUT_KEY not in signature.outputs:
            self._gs.close()
            raise SavedModelError(
                f"{export_dir} has no {SIGNATURE_NAME!r} signature with ({IDS_KEY!r}, {WEIGHTS_KEY!r}) -> {OUTPUT_KEY!r}"
            )
        self._ids = self._gs.tensor(signature.inputs[IDS_KEY].name)
        self._values = self._gs.tensor(signature.inputs[WEIGHTS_KEY].name)
        self._probabilities = self._gs.tensor(signature.outputs[OUTPUT_KEY].name)
        self.n_features = _input_width(self._gs)
        self.n_classes = int(self._probabilities.shape[-1])
        # Loading is done: from here on a request thread that tries to build an op gets an
        # immediate RuntimeError instead of silently growing (or missing) the graph.
        self._gs.finalize()

    @property
    def graph_session(self) -> GraphSession:
        return self._gs

    def predict_proba(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Sparse features ``[batch, width]`` -> float32 ``[batch, n_classes]`` probabilities."""
        ids, weights = _check_sparse(ids, weights, self.n_features, "predict_proba")
        return self._gs.run(self._probabilities, {self._ids: ids, self._values: weights})

    def close(self) -> None:
        self._gs.close()


def _input_width(gs: GraphSession) -> int:
    """Rows of the first layer's kernel: ``hidden_0``, or ``output`` when there is no hidden layer."""
    for scope in ("hidden_0", "output"):
        try:
            return int(gs.tensor(f"{MODEL_SCOPE}/{scope}/kernel:0").shape[0])
        except KeyError:
            continue
    raise SavedModelError("the SavedModel holds no classifier kernel")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
