"""The inference network in float32 numpy: a reference for both TensorFlow runtimes.

It computes what :func:`compat.classifier.network.build_logits` builds without dropout, from the
weights by their :mod:`compat.classifier.schema` names. Migration checks a TF2 model against it,
and tests check the TF1 network against it. Nothing here imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from compat.classifier.schema import SHORTCUT_KERNEL, NetworkSpec, bias_name, kernel_name


def forward_numpy(
    spec: NetworkSpec, weights: Mapping[str, np.ndarray], ids: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and softmax probabilities of sparse features.

    Args:
        spec: the network's shape; ``weights`` holds its :meth:`NetworkSpec.variables`.
        ids: int ``[batch, width]`` feature ids; ``values``: float ``[batch, width]`` their weights.

    Returns:
        ``(logits, probabilities)``, both float32 ``[batch, n_classes]``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)

    def weight(name: str) -> np.ndarray:
        return np.asarray(weights[name], dtype=np.float32)

    names = spec.layer_names
    # the sparse first layer: kernel rows gathered by feature id, weighted and summed
    h = (weight(kernel_name(names[0]))[ids] * values[..., None]).sum(axis=1) + weight(bias_name(names[0]))
    for name in names[1:]:
        h = np.maximum(h, 0.0)
        h = h @ weight(kernel_name(name)) + weight(bias_name(name))
    if spec.linear_shortcut:
        h = h + (weight(SHORTCUT_KERNEL)[ids] * values[..., None]).sum(axis=1)
    logits = h.astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits, (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
