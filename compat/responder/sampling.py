"""The token draw of the ``sample`` computations, shared by the TF1 graph
(:mod:`compat.responder.decoding`) and the TF2 port (:mod:`compat.tf2.responder`), so both
draw the same tokens for the same seed.

``gumbel`` draws ``argmax(score / temperature + g)`` with ``g = -log(-log(u))`` and ``u``
uniform in ``(0, 1)`` from ``tf.random.stateless_uniform`` keyed by ``(seed, step)``: the
Gumbel-max trick, which draws token ``i`` with probability ``softmax(score / temperature)_i``.
The uniform numbers are the same whatever the size of TensorFlow's intra-op thread pool, and so
are the replies. ``g`` lies in about ``[-4.5, 16]``, so a banned token (``score`` near ``NEG``)
is never drawn.

``categorical`` is ``tf.random.stateless_categorical``, the draw of responders exported before
``sample_draw`` existed (their SavedModel holds it): its stream for a row depends on how the
rows are split over the thread pool, so a seeded reply can change with the thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from compat.responder.spec import CATEGORICAL_DRAW, GUMBEL_DRAW, SAMPLE_DRAWS

# The smallest normal float32: the uniform numbers' lower bound, so ``log(u)`` is finite.
TINY = float(np.finfo(np.float32).tiny)


def draw_tokens(tf: Any, how: str, scores: Any, temperature: Any, key: Any) -> Any:
    """One token id per row of ``scores`` (float32 ``[n, V]``), int32 ``[n]``, drawn from
    ``softmax(scores / temperature)`` with the int64 ``[2]`` ``key``; ``how`` is one of
    :data:`~compat.responder.spec.SAMPLE_DRAWS`. ``tf`` is the runtime's module (TF1 or TF2)."""
    if how == GUMBEL_DRAW:
        uniform = tf.random.stateless_uniform(tf.shape(scores), seed=key, minval=TINY, maxval=1.0, dtype=tf.float32)
        gumbel = -tf.math.log(-tf.math.log(uniform))
        return tf.argmax(scores / temperature + gumbel, axis=1, output_type=tf.int32)
    if how == CATEGORICAL_DRAW:
        return tf.cast(tf.random.stateless_categorical(scores / temperature, 1, seed=key)[:, 0], tf.int32)
    raise ValueError(f"sample_draw must be one of {SAMPLE_DRAWS}, got {how!r}")
