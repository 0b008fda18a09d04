"""Keras-free layers built from ``tf.get_variable``, ``tf.matmul`` and ``tf.nn.dropout``.

They behave the same on every TensorFlow release from 2.12 on, Keras 2 or Keras 3, and need no
``tf-keras``: ``tf.compat.v1.layers`` and Keras in graph mode do not.
"""

from __future__ import annotations

from collections.abc import Callable

from compat.runtime import tf

Activation = Callable[["tf.Tensor"], "tf.Tensor"] | None


def dense(
    inputs: tf.Tensor,
    units: int,
    name: str,
    activation: Activation = None,
    seed: int | None = None,
) -> tf.Tensor:
    """Fully connected layer ``activation(inputs @ kernel + bias)``.

    Args:
        inputs: float32 ``[batch, in_features]``; ``in_features`` must be known statically.
        units: output width.
        name: variable scope; the variables are ``<name>/kernel`` ``[in_features, units]`` and
            ``<name>/bias`` ``[units]``.
        activation: applied to the affine output, or ``None`` for logits.
        seed: op seed of the Glorot-uniform kernel initialiser.

    Returns:
        float32 ``[batch, units]``.
    """
    # in graph mode a dimension is a Dimension whose value may be None; an unknown rank has none
    in_features = tf.compat.dimension_value(inputs.shape[-1]) if inputs.shape.rank else None
    if in_features is None or int(in_features) <= 0:
        raise ValueError(f"dense layer {name!r}: input width must be known, got shape {inputs.shape}")
    with tf.variable_scope(name):
        kernel = tf.get_variable(
            "kernel",
            shape=[int(in_features), units],
            dtype=tf.float32,
            initializer=tf.glorot_uniform_initializer(seed=seed),
        )
        bias = tf.get_variable("bias", shape=[units], dtype=tf.float32, initializer=tf.zeros_initializer())
        outputs = tf.nn.bias_add(tf.matmul(inputs, kernel), bias)
    return activation(outputs) if activation is not None else outputs


def dropout(inputs: tf.Tensor, rate: tf.Tensor | float, seed: int | None = None) -> tf.Tensor:
    """Inverted dropout: zero each unit with probability ``rate``, scale the rest by ``1/(1-rate)``.

    ``rate`` may be a scalar tensor (a ``placeholder_with_default(0.0)`` turns dropout off at
    evaluation time without a second graph). Shape is unchanged.
    """
    return tf.nn.dropout(inputs, rate=rate, seed=seed)


def sparse_dense(
    ids: tf.Tensor,
    weights: tf.Tensor,
    n_features: int,
    units: int,
    name: str,
    activation: Activation = None,
    seed: int | None = None,
    batch_rows: bool = False,
) -> tf.Tensor:
    """A :func:`dense` layer whose input is given sparse, as the ids and weights of its non-zeros.

    Computes ``activation(x @ kernel + bias)`` for the dense ``x`` that has ``weights[b, j]``
    at column ``ids[b, j]``, without ever building ``x``: ``sum_j weights[b, j] * kernel[ids[b, j]]``.
    Padding slots carry weight 0 and add nothing.

    ``batch_rows`` computes the same product another way, for training: each distinct id of the
    batch is looked up once, and a ``[batch, distinct ids]`` matrix of the weights multiplies
    those kernel rows. Sentences of a batch share most of their features (character n-grams
    above all), so this moves several times less memory than one kernel row per slot, forward
    and backward; the result differs from the default only by float rounding.

    Args:
        ids: int32 ``[batch, width]`` column indices in ``[0, n_features)``.
        weights: float32 ``[batch, width]`` values at those columns.
        n_features: rows of the kernel (the dense input width).
        units: output width.
        name: variable scope; the variables are ``<name>/kernel`` ``[n_features, units]`` and
            ``<name>/bias`` ``[units]``, named as in :func:`dense`.

    Returns:
        float32 ``[batch, units]``.
    """
    with tf.variable_scope(name):
        kernel = tf.get_variable(
            "kernel",
            shape=[n_features, units],
            dtype=tf.float32,
            initializer=tf.glorot_uniform_initializer(seed=seed),
        )
        bias = tf.get_variable("bias", shape=[units], dtype=tf.float32, initializer=tf.zeros_initializer())
        outputs = tf.nn.bias_add(sparse_matmul(kernel, ids, weights, batch_rows), bias)
    return activation(outputs) if activation is not None else outputs


def sparse_matmul(kernel: tf.Tensor, ids: tf.Tensor, weights: tf.Tensor, batch_rows: bool = False) -> tf.Tensor:
    """``x @ kernel`` for the sparse ``x`` given as ``ids``/``weights`` ``[batch, width]``.

    ``kernel`` is ``[n_features, units]``; the result is float32 ``[batch, units]``. ``batch_rows``
    picks the batched form described in :func:`sparse_dense`.
    """
    if batch_rows:
        return _batch_rows_product(kernel, ids, weights)
    rows = tf.gather(kernel, ids)  # [batch, width, units]
    return tf.reduce_sum(rows * tf.expand_dims(weights, -1), axis=1)


def _batch_rows_product(kernel: tf.Variable, ids: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """``x @ kernel`` for sparse ``x`` given as ``ids``/``weights`` ``[batch, width]``: float32 ``[batch, units]``."""
    distinct, position = tf.unique(tf.reshape(ids, [-1]))  # [n_distinct], [batch * width]
    shape = tf.shape(ids)
    row = tf.reshape(tf.broadcast_to(tf.range(shape[0])[:, None], shape), [-1])
    # Repeated (row, id) pairs are padding slots (id 0, weight 0): scatter_nd adds them exactly.
    local = tf.scatter_nd(
        tf.stack([row, position], axis=1), tf.reshape(weights, [-1]), tf.stack([shape[0], tf.size(distinct)])
    )  # [batch, n_distinct]
    return tf.matmul(local, tf.gather(kernel, distinct))
