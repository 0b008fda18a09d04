"""The intent network as a TF2 ``tf.Module``, mirroring :func:`compat.classifier.network.build_logits`.

Same architecture, same variables, same ops, so the same numbers: the first layer gathers kernel
rows by feature id and sums them weighted (``tf.gather`` + ``reduce_sum``), then ReLU; further
layers are ``matmul`` + ``bias_add`` + ReLU; the output layer is linear; softmax on top. There is
no dropout: this is the inference network (the TF1 training graph's dropout never reaches a
SavedModel either). Variable names, signature keys and the layers come from
:mod:`compat.classifier.schema`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from compat.classifier.schema import (
    IDS_KEY,
    LOGITS_KEY,
    MODEL_SCOPE,
    OUTPUT_KEY,
    SHORTCUT_KERNEL,
    WEIGHTS_KEY,
    NetworkSpec,
    bias_name,
    kernel_name,
)
from compat.tf2.runtime import tf

PREDICT_SIGNATURE = (
    tf.TensorSpec([None, None], tf.int32, name=IDS_KEY),
    tf.TensorSpec([None, None], tf.float32, name=WEIGHTS_KEY),
)


def sparse_mlp_logits(
    ids: tf.Tensor,
    weights: tf.Tensor,
    kernels: Sequence[tf.Variable],
    biases: Sequence[tf.Variable],
    shortcut: tf.Variable | None = None,
) -> tf.Tensor:
    """Logits float32 ``[batch, n_classes]`` of sparse features ``ids``/``weights`` ``[batch, width]``.

    ``kernels[0]`` is ``[n_features, units_0]``; the last kernel/bias pair is the output layer;
    ``shortcut``, when given, is ``[n_features, n_classes]`` and its product is added to the logits.
    """
    hidden = tf.nn.bias_add(_sparse_product(kernels[0], ids, weights), biases[0])
    for kernel, bias in zip(kernels[1:], biases[1:]):
        hidden = tf.nn.bias_add(tf.matmul(tf.nn.relu(hidden), kernel), bias)
    if shortcut is not None:
        hidden = hidden + _sparse_product(shortcut, ids, weights)
    return hidden


def _sparse_product(kernel: tf.Variable, ids: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    rows = tf.gather(kernel, ids)  # [batch, width, units]
    return tf.reduce_sum(rows * tf.expand_dims(weights, -1), axis=1)


class SparseMLP(tf.Module):
    """The network with its weights; :meth:`predict` is the ``predict`` signature.

    Attributes:
        kernels, biases: ``tf.Variable`` lists, input side first, output layer last.
        shortcut: the linear shortcut's kernel, or ``None`` when the network has none.
    """

    def __init__(self, spec: NetworkSpec, weights: Mapping[str, np.ndarray]) -> None:
        super().__init__(name=MODEL_SCOPE)
        spec.check_weights(weights)
        self.kernels = []
        self.biases = []
        with self.name_scope:
            for layer in spec.layer_names:
                kernel = np.asarray(weights[kernel_name(layer)], dtype=np.float32)
                bias = np.asarray(weights[bias_name(layer)], dtype=np.float32)
                self.kernels.append(tf.Variable(kernel, trainable=False, name=f"{layer}_kernel"))
                self.biases.append(tf.Variable(bias, trainable=False, name=f"{layer}_bias"))
            self.shortcut = None
            if spec.linear_shortcut:
                kernel = np.asarray(weights[SHORTCUT_KERNEL], dtype=np.float32)
                self.shortcut = tf.Variable(kernel, trainable=False, name="shortcut_kernel")

    @tf.function(input_signature=PREDICT_SIGNATURE, autograph=False)
    def predict(self, ids: tf.Tensor, weights: tf.Tensor) -> dict[str, tf.Tensor]:
        """``ids`` int32, ``weights`` float32 ``[batch, width]`` -> ``probabilities`` and ``logits``
        float32 ``[batch, n_classes]``."""
        logits = sparse_mlp_logits(ids, weights, self.kernels, self.biases, self.shortcut)
        return {OUTPUT_KEY: tf.nn.softmax(logits), LOGITS_KEY: logits}
