"""The intent classifier network, declared once: its options, layers, variables and signature.

Everything that builds, stores or reads the network takes its shape from here:

* the TF1 graph (:func:`compat.classifier.network.build_logits`), its trainer and its SavedModel
  (:mod:`compat.classifier.trainer`, :mod:`compat.classifier.saved_model`);
* the manifest's ``network`` object (:meth:`NetworkSpec.to_dict`, :meth:`NetworkSpec.from_dict`),
  written by :mod:`legacy_assistant.classifier.artifact`;
* the TF2 port (:mod:`compat.tf2.network`, :mod:`compat.tf2.saved_model`) and the numpy
  reference (:mod:`compat.classifier.reference`), which rebuild the network from a stored spec;
* training, which fills the options from the training config fields of the same names
  (:data:`NETWORK_OPTIONS`).

The network: sparse features (``ids`` int32 and ``weights`` float32, both ``[batch, width]``) ->
``hidden_0`` (gathered kernel rows times feature weights, summed, plus bias, ReLU) -> further
ReLU layers ``hidden_<i>`` -> linear ``output`` -> softmax, dropout after every hidden layer
while training only, and optionally a linear ``shortcut`` from the features to the logits.

Adding a network option: a field of :class:`NetworkSpec` (with how the manifest stores it, in
its metadata), its check in ``__post_init__``, a training config field of the same name, and its
computation in the three builders (TF1 graph, TF2 module, numpy reference); the manifest, the
trainer and the exporter follow. A stored spec naming an option this code does not know is
refused by :meth:`NetworkSpec.from_dict`, so a model is never served with the wrong architecture.

Nothing here imports TensorFlow: verifying and migrating models read this module too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

# Variable names (as in the TF1 checkpoint): "<MODEL_SCOPE>/<layer>/<KERNEL|BIAS>".
MODEL_SCOPE = "classifier"
HIDDEN_PREFIX = "hidden_"  # hidden layer i is "hidden_<i>", input side first
OUTPUT_LAYER = "output"
SHORTCUT_SCOPE = "shortcut"  # holds a kernel only: the output layer's bias serves both paths
KERNEL = "kernel"
BIAS = "bias"
SHORTCUT_KERNEL = f"{MODEL_SCOPE}/{SHORTCUT_SCOPE}/{KERNEL}"

# The SavedModel's one signature (both runtimes): ids int32 and weights float32, both
# [batch, width], -> probabilities and logits, float32 [batch, n_classes].
SIGNATURE_NAME = "predict"
IDS_KEY = "ids"
WEIGHTS_KEY = "weights"
OUTPUT_KEY = "probabilities"
DENSE_KEY = "features"  # the first releases' input: a dense bag of words [batch, n_features]
LOGITS_KEY = "logits"
SERVING_TAGS = ("serve",)  # tf.saved_model.tag_constants.SERVING


class UnsupportedNetwork(ValueError):
    """A network spec with a bad value or an option this code does not build, or weights that
    do not fit a spec."""


def layer_name(index: int) -> str:
    """Name of hidden layer ``index`` (0 is the first, sparse, layer)."""
    return f"{HIDDEN_PREFIX}{index}"


def kernel_name(layer: str) -> str:
    """``classifier/<layer>/kernel``."""
    return f"{MODEL_SCOPE}/{layer}/{KERNEL}"


def bias_name(layer: str) -> str:
    """``classifier/<layer>/bias``."""
    return f"{MODEL_SCOPE}/{layer}/{BIAS}"


def _widths(value: Any) -> tuple[int, ...]:
    return tuple(int(u) for u in value)


def _as_stored(value: Any) -> Any:
    return value


# Each field's metadata says how the manifest's ``network`` object stores it: "read" turns the
# JSON value into the field's value, and "absent" (options only) is what a manifest written
# before the option existed means. A field without "absent" is required.


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of the network.

    Attributes:
        n_features: width of the input feature vector (rows of the first kernel).
        n_classes: number of intents (softmax width).
        hidden_units: width of each ReLU layer, input side first (may be empty: then the network
            is linear).
        dropout: rate applied after every hidden layer while training (0 disables it); never
            part of the inference network.
        linear_shortcut: also map the input linearly straight to the logits, beside the hidden
            layers (``logits = output(hidden) + x @ shortcut``; a wide-and-deep network).
    """

    n_features: int = field(metadata={"read": int})
    n_classes: int = field(metadata={"read": int})
    hidden_units: tuple[int, ...] = field(default=(128, 64), metadata={"read": _widths})
    # dropout never reaches the inference network: a spec that recorded none reads as 0
    dropout: float = field(default=0.5, metadata={"read": float, "absent": 0.0})
    linear_shortcut: bool = field(default=False, metadata={"read": _as_stored, "absent": False})

    def __post_init__(self) -> None:
        if self.n_features < 1:
            raise UnsupportedNetwork(f"n_features must be at least 1, got {self.n_features}")
        if self.n_classes < 2:
            raise UnsupportedNetwork(f"a classifier needs n_classes at least 2, got {self.n_classes}")
        if any(int(u) < 1 for u in self.hidden_units):
            raise UnsupportedNetwork(f"hidden_units must be positive, got {self.hidden_units}")
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in self.hidden_units))
        if not 0.0 <= self.dropout < 1.0:
            raise UnsupportedNetwork(f"dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.linear_shortcut, bool):
            raise UnsupportedNetwork(f"linear_shortcut must be true or false, got {self.linear_shortcut!r}")
        if self.linear_shortcut and not self.hidden_units:
            raise UnsupportedNetwork(
                "linear_shortcut needs at least one hidden layer (without one the network is linear)"
            )

    @property
    def layer_names(self) -> list[str]:
        """``hidden_0`` ... ``hidden_<k-1>``, then ``output``, input side first."""
        return [layer_name(i) for i in range(len(self.hidden_units))] + [OUTPUT_LAYER]

    def variables(self) -> dict[str, tuple[int, ...]]:
        """Variable name (as in the TF1 checkpoint) -> shape, input side first, shortcut last."""
        widths = [self.n_features, *self.hidden_units, self.n_classes]
        shapes: dict[str, tuple[int, ...]] = {}
        for name, fan_in, fan_out in zip(self.layer_names, widths[:-1], widths[1:]):
            shapes[kernel_name(name)] = (fan_in, fan_out)
            shapes[bias_name(name)] = (fan_out,)
        if self.linear_shortcut:
            shapes[SHORTCUT_KERNEL] = (self.n_features, self.n_classes)
        return shapes

    def check_weights(self, weights: Mapping[str, Any], where: str = "weights") -> None:
        """Require exactly :meth:`variables`, with their shapes.

        Raises:
            UnsupportedNetwork: a variable is missing, unexpected, or of another shape.
        """
        expected = self.variables()
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

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``network`` object: every field, ``hidden_units`` as a list."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["hidden_units"] = list(self.hidden_units)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "network") -> NetworkSpec:
        """Read a manifest's ``network`` object. Options missing from it (manifests written before
        the option existed) take the value that builds the network those manifests describe.

        Raises:
            UnsupportedNetwork: not an object, an unknown key (an option this code does not
                build), a missing size, or a bad value; the message starts with ``where``.
        """
        if not isinstance(data, Mapping):
            raise UnsupportedNetwork(f"{where}: expected an object, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UnsupportedNetwork(
                f"{where}: network option(s) {', '.join(map(repr, unknown))} not understood: this code builds "
                f"the network of compat/classifier/schema.py with {', '.join(known)} only (a model trained "
                "with a newer network option needs the version that built it)"
            )
        missing = [f.name for f in fields(cls) if f.name not in data and "absent" not in f.metadata]
        if missing:
            raise UnsupportedNetwork(f"{where}: missing {', '.join(missing)}")
        values = {}
        try:
            for f in fields(cls):
                values[f.name] = f.metadata["read"](data[f.name] if f.name in data else f.metadata["absent"])
        except (TypeError, ValueError) as exc:
            raise UnsupportedNetwork(f"{where}: bad value for {f.name}: {exc}") from None
        try:
            return cls(**values)
        except UnsupportedNetwork as exc:
            raise UnsupportedNetwork(f"{where}: {exc}") from None

    @classmethod
    def from_options(cls, n_features: int, n_classes: int, options: Any) -> NetworkSpec:
        """The spec with the sizes given and every option of :data:`NETWORK_OPTIONS` read from
        the attribute of that name of ``options`` (a training config)."""
        return cls(n_features, n_classes, **{name: getattr(options, name) for name in NETWORK_OPTIONS})


SIZES = ("n_features", "n_classes")
# The options beside the sizes; training reads each from the training config field of its name.
NETWORK_OPTIONS = tuple(f.name for f in fields(NetworkSpec) if f.name not in SIZES)
