"""The intent classifier network in TF1 graph mode: :func:`build_logits`, and its weights by name.

The whole model is :func:`build_logits`: a stack of ReLU layers with dropout and a linear
output, shaped by a :class:`compat.classifier.schema.NetworkSpec`. The classic recipe is
``features -> 128 ReLU -> dropout 0.5 -> 64 ReLU -> dropout 0.5 -> softmax``. Features arrive
sparse: each row is the ids of its non-zero columns and their weights, padded with weight 0
(``ids`` int32 ``[batch, width]``, ``weights`` float32 ``[batch, width]``), so a vocabulary of
100,000 terms costs no more per sentence than one of 300. The training graph
(:mod:`compat.classifier.trainer`) and the inference graph (:mod:`compat.classifier.saved_model`)
are both built from this one function.

Weights cross between graphs as ``{variable name: numpy array}`` dicts, named as
:meth:`NetworkSpec.variables` declares, so nothing TensorFlow ever leaves this package.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compat.classifier.schema import KERNEL, MODEL_SCOPE, OUTPUT_LAYER, SHORTCUT_SCOPE, NetworkSpec, layer_name
from compat.graph_session import GraphSession
from compat.layers import dense, dropout, sparse_dense, sparse_matmul
from compat.runtime import tf


def build_logits(
    ids: tf.Tensor,
    weights: tf.Tensor,
    spec: NetworkSpec,
    dropout_rate: tf.Tensor | None,
    seed: int,
    batch_rows: bool = False,
) -> tf.Tensor:
    """The network: sparse features ``(ids, weights)`` ``[batch, width]`` -> logits ``[batch, n_classes]``.

    ``dropout_rate`` is a scalar tensor (training graph) or ``None`` (inference graph, no
    dropout ops at all). ``batch_rows`` picks the first layer's training form (see
    :func:`compat.layers.sparse_dense`); the inference graph keeps the plain form. The variables
    are exactly ``spec.variables()``: ``classifier/hidden_<i>/`` and ``classifier/output/``; the
    first layer's kernel is ``[n_features, width_0]``. With ``spec.linear_shortcut``,
    ``classifier/shortcut/kernel`` ``[n_features, n_classes]`` (no bias: the output layer has
    one) adds ``x @ kernel`` to the logits; dropout never touches that path.
    """
    widths = list(spec.hidden_units)
    with tf.variable_scope(MODEL_SCOPE):
        if not widths:
            return sparse_dense(
                ids, weights, spec.n_features, spec.n_classes, OUTPUT_LAYER, seed=seed, batch_rows=batch_rows
            )
        hidden = sparse_dense(
            ids, weights, spec.n_features, widths[0], layer_name(0), tf.nn.relu, seed=seed, batch_rows=batch_rows
        )
        for index, units in enumerate(widths):
            if index:
                hidden = dense(hidden, units, layer_name(index), tf.nn.relu, seed=seed + index)
            if dropout_rate is not None:
                hidden = dropout(hidden, dropout_rate, seed=seed + 1000 + index)
        logits = dense(hidden, spec.n_classes, OUTPUT_LAYER, seed=seed + len(widths))
        if spec.linear_shortcut:
            logits = logits + _shortcut(ids, weights, spec, seed + 2000, batch_rows)
        return logits


def _shortcut(ids: tf.Tensor, weights: tf.Tensor, spec: NetworkSpec, seed: int, batch_rows: bool) -> tf.Tensor:
    """The linear path ``x @ shortcut/kernel``: float32 ``[batch, n_classes]``."""
    with tf.variable_scope(SHORTCUT_SCOPE):
        kernel = tf.get_variable(
            KERNEL,
            shape=[spec.n_features, spec.n_classes],
            dtype=tf.float32,
            initializer=tf.glorot_uniform_initializer(seed=seed),
        )
    return sparse_matmul(kernel, ids, weights, batch_rows)


def model_variables() -> list[tf.Variable]:
    """The network's variables in the current default graph (optimizer slots excluded)."""
    return tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, scope=MODEL_SCOPE + "/")


def variable_name(variable: tf.Variable) -> str:
    """``classifier/hidden_0/kernel`` for the tensor ``classifier/hidden_0/kernel:0``."""
    return variable.name.split(":")[0]


class WeightLoader:
    """Assign ops fed from placeholders, built once so the graph can be finalized afterwards."""

    def __init__(self, variables: list[tf.Variable]) -> None:
        self._variables = {variable_name(v): v for v in variables}
        self._inputs = {}
        self._assigns = []
        for name, variable in self._variables.items():
            value = tf.placeholder(variable.dtype.base_dtype, variable.shape, name=f"load/{name}")
            self._inputs[name] = value
            self._assigns.append(tf.assign(variable, value))

    def load(self, session: GraphSession, weights: Mapping[str, np.ndarray]) -> None:
        """Assign ``weights`` (one array per variable, by name) in ``session``.

        Raises:
            ValueError: a variable is missing or unexpected, or an array has another shape.
        """
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
