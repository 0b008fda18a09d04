"""The network's shape as stored in ``assistant.json`` (``network``), read without TensorFlow.

:func:`compat.classifier.build_logits` builds the network in TF1 graph mode; the TF2 port
(:mod:`compat.tf2.network`) and the numpy reference (:func:`forward_numpy`) rebuild it from the
stored spec. They mirror one architecture: a sparse first layer (gathered kernel rows times
feature weights, summed, plus bias, ReLU), further ReLU layers, a linear output layer, optionally
a linear shortcut from the features to the logits, and a softmax; dropout only while training. A spec naming anything else is refused by
:func:`parse_network` with a message that says what is not understood, so a model trained with
a network option added later is never silently served with the wrong architecture.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MODEL_SCOPE = "classifier"
SHORTCUT_KERNEL = f"{MODEL_SCOPE}/shortcut/kernel"
KNOWN_KEYS = ("n_features", "n_classes", "hidden_units", "dropout", "linear_shortcut")


class UnsupportedNetwork(ValueError):
    """A stored network spec names options, or holds weights, that the port does not mirror."""


@dataclass(frozen=True)
class NetworkLayout:
    """Widths of the inference network.

    Attributes:
        n_features: rows of the first kernel (vocabulary size).
        n_classes: softmax width.
        hidden_units: widths of the ReLU layers, input side first (may be empty).
        linear_shortcut: the input also maps linearly to the logits through
            ``classifier/shortcut/kernel`` ``[n_features, n_classes]`` (no bias).
    """

    n_features: int
    n_classes: int
    hidden_units: tuple[int, ...]
    linear_shortcut: bool = False

    @property
    def layer_names(self) -> list[str]:
        """``hidden_0`` ... ``hidden_<k-1>``, then ``output``, input side first."""
        return [f"hidden_{i}" for i in range(len(self.hidden_units))] + ["output"]

    def variables(self) -> dict[str, tuple[int, ...]]:
        """Variable name (as in the TF1 checkpoint) -> shape, input side first."""
        widths = [self.n_features, *self.hidden_units, self.n_classes]
        shapes: dict[str, tuple[int, ...]] = {}
        for name, (fan_in, fan_out) in zip(self.layer_names, zip(widths[:-1], widths[1:])):
            shapes[f"{MODEL_SCOPE}/{name}/kernel"] = (fan_in, fan_out)
            shapes[f"{MODEL_SCOPE}/{name}/bias"] = (fan_out,)
        if self.linear_shortcut:
            shapes[SHORTCUT_KERNEL] = (self.n_features, self.n_classes)
        return shapes


def parse_network(spec: Mapping[str, Any], where: str = "network") -> NetworkLayout:
    """Read ``assistant.json``'s ``network`` object.

    Raises:
        UnsupportedNetwork: an unknown key (an option this port does not mirror) or a bad value.
    """
    if not isinstance(spec, Mapping):
        raise UnsupportedNetwork(f"{where}: expected an object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(KNOWN_KEYS))
    if unknown:
        raise UnsupportedNetwork(
            f"{where}: network option(s) {', '.join(map(repr, unknown))} not understood: this port mirrors "
            f"compat.classifier.build_logits with {', '.join(KNOWN_KEYS)} only; extend compat/layout.py, "
            "compat/tf2/network.py and the numpy reference alongside build_logits first"
        )
    missing = [key for key in ("n_features", "n_classes", "hidden_units") if key not in spec]
    if missing:
        raise UnsupportedNetwork(f"{where}: missing {', '.join(missing)}")
    try:
        shortcut = spec.get("linear_shortcut", False)
        if not isinstance(shortcut, bool):
            raise ValueError(f"linear_shortcut must be true or false, got {shortcut!r}")
        layout = NetworkLayout(
            int(spec["n_features"]), int(spec["n_classes"]), tuple(int(u) for u in spec["hidden_units"]), shortcut
        )
        dropout = float(spec.get("dropout", 0.0))
    except (TypeError, ValueError) as exc:
        raise UnsupportedNetwork(f"{where}: bad value: {exc}") from None
    if layout.linear_shortcut and not layout.hidden_units:
        raise UnsupportedNetwork(f"{where}: linear_shortcut needs at least one hidden layer")
    if layout.n_features < 1 or layout.n_classes < 2 or any(u < 1 for u in layout.hidden_units):
        raise UnsupportedNetwork(f"{where}: widths must be positive and n_classes at least 2, got {dict(spec)}")
    if not 0.0 <= dropout < 1.0:
        raise UnsupportedNetwork(f"{where}: dropout must be in [0, 1), got {dropout}")
    return layout


def check_weights(layout: NetworkLayout, weights: Mapping[str, np.ndarray], where: str = "weights") -> None:
    """Require exactly the layout's variables, with its shapes.

    Raises:
        UnsupportedNetwork: a variable is missing, unexpected, or of another shape.
    """
    expected = layout.variables()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise UnsupportedNetwork(
            f"{where}: variables do not match the network spec: missing {missing}, unexpected {unexpected}"
        )
    for name, shape in expected.items():
        got = tuple(np.shape(weights[name]))
        if got != shape:
            raise UnsupportedNetwork(f"{where}: {name} has shape {got}, the network spec says {shape}")


def forward_numpy(
    layout: NetworkLayout, weights: Mapping[str, np.ndarray], ids: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The inference network in float32 numpy: a reference for the TensorFlow runtimes.

    Args:
        ids: int ``[batch, width]`` feature ids; ``values``: float ``[batch, width]`` their weights.

    Returns:
        ``(logits, probabilities)``, both float32 ``[batch, n_classes]``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    names = layout.layer_names
    first = np.asarray(weights[f"{MODEL_SCOPE}/{names[0]}/kernel"], dtype=np.float32)
    h = (first[ids] * values[..., None]).sum(axis=1) + np.asarray(weights[f"{MODEL_SCOPE}/{names[0]}/bias"], np.float32)
    for name in names[1:]:
        h = np.maximum(h, 0.0)
        h = h @ np.asarray(weights[f"{MODEL_SCOPE}/{name}/kernel"], np.float32) + np.asarray(
            weights[f"{MODEL_SCOPE}/{name}/bias"], np.float32
        )
    if layout.linear_shortcut:
        shortcut = np.asarray(weights[SHORTCUT_KERNEL], dtype=np.float32)
        h = h + (shortcut[ids] * values[..., None]).sum(axis=1)
    logits = h.astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return logits, (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
