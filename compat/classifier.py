"""The intent classifier network, its training graph, and its SavedModel.

The whole model is :func:`build_logits`: a stack of ReLU layers with dropout and a linear
output. The classic recipe is ``features -> 128 ReLU -> dropout 0.5 -> 64 ReLU -> dropout 0.5 ->
softmax``. Training and serving use two different graphs built from that one function:

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
from compat.layers import dense, dropout
from compat.runtime import tf

MODEL_SCOPE = "classifier"
SIGNATURE_NAME = "predict"
INPUT_KEY = "features"
OUTPUT_KEY = "probabilities"
LOGITS_KEY = "logits"
SERVING_TAGS = ("serve",)  # tf.saved_model.tag_constants.SERVING


class SavedModelError(Exception):
    """A SavedModel directory cannot be read or does not hold our signature."""


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of the network.

    Attributes:
        n_features: width of the input feature vector.
        n_classes: number of intents (softmax width).
        hidden_units: width of each ReLU layer, input side first.
        dropout: rate applied after every hidden layer while training (0 disables it).
    """

    n_features: int
    n_classes: int
    hidden_units: tuple[int, ...] = (128, 64)
    dropout: float = 0.5

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise ValueError(f"n_features must be at least 1, got {self.n_features}")
        if self.n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.n_classes}")
        if any(int(u) < 1 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive, got {self.hidden_units}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


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
    """

    name: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    label_smoothing: float = 0.0
    weight_decay: float = 0.0

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
    features: "tf.Tensor",
    spec: NetworkSpec,
    dropout_rate: "tf.Tensor | None",
    seed: int,
) -> "tf.Tensor":
    """The network: ``features [batch, n_features] -> logits [batch, n_classes]``.

    ``dropout_rate`` is a scalar tensor (training graph) or ``None`` (inference graph, no
    dropout ops at all). Variables live under ``classifier/hidden_<i>/`` and ``classifier/output/``.
    """
    hidden = features
    with tf.variable_scope(MODEL_SCOPE):
        for index, units in enumerate(spec.hidden_units):
            hidden = dense(hidden, int(units), f"hidden_{index}", tf.nn.relu, seed=seed + index)
            if dropout_rate is not None:
                hidden = dropout(hidden, dropout_rate, seed=seed + 1000 + index)
        return dense(hidden, spec.n_classes, "output", seed=seed + len(spec.hidden_units))


def _model_variables() -> list["tf.Variable"]:
    return tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope=MODEL_SCOPE + "/")


def _variable_name(variable: "tf.Variable") -> str:
    return variable.name.split(":")[0]


def _check_float_matrix(x: np.ndarray, width: int, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != width:
        raise ValueError(f"{what}: expected float32 [batch, {width}], got shape {x.shape}")
    return x


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

    Each call takes numpy batches: ``x`` float32 ``[batch, n_features]`` and ``y`` int
    ``[batch]`` class ids.
    """

    def __init__(self, spec: NetworkSpec, optimizer: OptimizerSpec, seed: int, threads: int = 1) -> None:
        self.spec = spec
        self.optimizer = optimizer
        # One intra-op thread keeps float reductions in a fixed order: a rerun with the same
        # seed gives bit-identical weights. The networks are small, so little speed is lost.
        self._gs = GraphSession(session_config(threads, threads))
        with self._gs.bound():
            tf.set_random_seed(seed)
            self._x = tf.placeholder(tf.float32, [None, spec.n_features], name="features")
            self._y = tf.placeholder(tf.int32, [None], name="labels")
            self._rate = tf.placeholder_with_default(0.0, [], name="dropout_rate")
            logits = build_logits(self._x, spec, self._rate, seed)
            self._probabilities = tf.nn.softmax(logits)
            targets = tf.one_hot(self._y, spec.n_classes, dtype=tf.float32)
            if optimizer.label_smoothing:
                targets = targets * (1.0 - optimizer.label_smoothing) + optimizer.label_smoothing / spec.n_classes
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=targets, logits=logits))
            self._data_loss = loss
            if optimizer.weight_decay:
                kernels = [v for v in _model_variables() if v.name.endswith("kernel:0")]
                loss = loss + optimizer.weight_decay * tf.add_n([tf.nn.l2_loss(k) for k in kernels])
            correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), self._y)
            self._correct = tf.reduce_sum(tf.cast(correct, tf.float32))
            self._loss_sum = self._data_loss * tf.cast(tf.shape(self._y)[0], tf.float32)
            if optimizer.name == "adam":
                opt = tf.train.AdamOptimizer(optimizer.learning_rate)
            else:
                opt = tf.train.MomentumOptimizer(
                    optimizer.learning_rate, optimizer.momentum, use_nesterov=optimizer.nesterov
                )
            self._train_op = opt.minimize(loss)
            self._weights = _WeightLoader(_model_variables())
            init = tf.global_variables_initializer()
        self._gs.finalize()
        self._gs.run(init)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """One optimizer step with dropout on. Returns the batch's (mean loss, accuracy)."""
        x = _check_float_matrix(x, self.spec.n_features, "train_batch")
        _, loss_sum, correct = self._gs.run(
            [self._train_op, self._loss_sum, self._correct],
            {self._x: x, self._y: y, self._rate: self.spec.dropout},
        )
        return float(loss_sum) / len(y), float(correct) / len(y)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 2048) -> tuple[float, float]:
        """Mean cross-entropy and accuracy without dropout, over all of ``x``."""
        x = _check_float_matrix(x, self.spec.n_features, "evaluate")
        loss_total = correct_total = 0.0
        for start in range(0, len(y), batch_size):
            loss_sum, correct = self._gs.run(
                [self._loss_sum, self._correct],
                {self._x: x[start : start + batch_size], self._y: y[start : start + batch_size]},
            )
            loss_total += float(loss_sum)
            correct_total += float(correct)
        return loss_total / max(len(y), 1), correct_total / max(len(y), 1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """float32 ``[batch, n_classes]`` softmax probabilities, dropout off."""
        x = _check_float_matrix(x, self.spec.n_features, "predict_proba")
        return self._gs.run(self._probabilities, {self._x: x})

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

    ``export_dir`` must not exist yet. The ``predict`` signature maps ``features`` (float32
    ``[batch, n_features]``) to ``probabilities`` and ``logits`` (float32 ``[batch, n_classes]``).
    """
    if os.path.exists(export_dir):
        raise FileExistsError(f"SavedModel directory already exists: {export_dir}")
    with GraphSession() as gs:
        with gs.bound():
            features = tf.placeholder(tf.float32, [None, spec.n_features], name=INPUT_KEY)
            logits = build_logits(features, spec, dropout_rate=None, seed=0)
            probabilities = tf.nn.softmax(logits, name=OUTPUT_KEY)
            loader = _WeightLoader(_model_variables())
            gs.run(tf.global_variables_initializer())
            loader.load(gs, weights)
            signature = tf.saved_model.signature_def_utils.predict_signature_def(
                inputs={INPUT_KEY: features},
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
        if signature is None or INPUT_KEY not in signature.inputs or OUTPUT_KEY not in signature.outputs:
            self._gs.close()
            raise SavedModelError(
                f"{export_dir} has no {SIGNATURE_NAME!r} signature with {INPUT_KEY!r} -> {OUTPUT_KEY!r}"
            )
        self._features = self._gs.tensor(signature.inputs[INPUT_KEY].name)
        self._probabilities = self._gs.tensor(signature.outputs[OUTPUT_KEY].name)
        self.n_features = int(self._features.shape[-1])
        self.n_classes = int(self._probabilities.shape[-1])
        # Loading is done: from here on a request thread that tries to build an op gets an
        # immediate RuntimeError instead of silently growing (or missing) the graph.
        self._gs.finalize()

    @property
    def graph_session(self) -> GraphSession:
        return self._gs

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """float32 ``[batch, n_features]`` -> float32 ``[batch, n_classes]`` probabilities."""
        x = _check_float_matrix(x, self.n_features, "predict_proba")
        return self._gs.run(self._probabilities, {self._features: x})

    def close(self) -> None:
        self._gs.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
