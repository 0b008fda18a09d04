"""Read a classic Keras dense classifier from an HDF5 file with h5py: no Keras, no TensorFlow.

Keras 2's ``model.save('chatbot_model.h5')`` writes the architecture as JSON (root attribute
``model_config``) and the weights under ``model_weights/<layer>/``; ``model.save_weights(...)``
writes only the weights, with the layer groups at the root. Keras 3's legacy ``.h5`` saving
keeps that layout; its own formats (``.weights.h5``, ``.keras``) do not, and are refused with a
message saying how to save the model in the legacy layout. In every case the root of the
weights lists its layers in order (``layer_names``) and each layer group lists its datasets (``weight_names``, e.g.
``dense/kernel:0``, ``dense_1/bias:0``, ``sequential/dense/kernel`` or Keras 1's ``dense_1_W:0``),
so this reader follows
those lists instead of guessing paths.

Supported architecture: a chain of ``Dense`` layers (ReLU hidden layers, softmax output), with
``Dropout`` and ``InputLayer`` in between (no-ops at inference) and ``Activation`` layers folded
into the ``Dense`` before them. Anything else is refused by name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from legacy_assistant.classifier.classic.string_lists import looks_like_pickle
from legacy_assistant.classifier.config import MAX_WIDTH
from legacy_assistant.common.input_files import absent_file_problem
from legacy_assistant.errors import ArtifactError

log = logging.getLogger(__name__)

IGNORED_LAYERS = ("InputLayer", "Dropout")


@dataclass(frozen=True)
class DenseLayer:
    """One ``Dense`` layer: ``activation(x @ kernel + bias)``.

    Attributes:
        kernel: float32 ``[fan_in, units]``; bias: float32 ``[units]``.
        activation: ``relu``, ``softmax`` or ``linear``.
    """

    name: str
    kernel: np.ndarray
    bias: np.ndarray
    activation: str


@dataclass(frozen=True)
class KerasDenseModel:
    """The Dense chain read from the file, and how its architecture was learned."""

    layers: tuple[DenseLayer, ...]
    dropout: float
    architecture_source: str  # "model_config" or "assumed (weights-only file)"
    keras_version: str | None


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_keras_dense_model(path: str | Path) -> KerasDenseModel:
    """Read the Dense chain of a Keras ``.h5`` file (full model or weights only).

    Raises:
        ArtifactError: not an HDF5 file, an unsupported layer or activation, inconsistent shapes.
    """
    from legacy_assistant.common.optional import require

    h5py = require("h5py", "classic", "reading a Keras .h5 file")
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        # a model saved without the .h5 ending, in TensorFlow's format: read here by nothing
        raise ArtifactError(
            f"{path}: a TensorFlow SavedModel folder, not a Keras .h5 file; load it in the Keras that made it "
            "and save it with model.save('chatbot_model.h5')"
        )
    if not path.is_file():
        raise ArtifactError(f"{path}: {absent_file_problem(path)}")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        if _is_zip(path):
            raise ArtifactError(f"{path}: a Keras 3 .keras archive; {KERAS3_RESAVE}") from None
        if _is_pickle(path):
            raise ArtifactError(
                f"{path}: looks like a pickle, which is never loaded (it could run code): in the Keras that "
                "made the model, save it with model.save('chatbot_model.h5') and pass that file"
            ) from None
        raise ArtifactError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:  # any file h5py can open, whatever it holds: a damaged one is one error naming it
        with handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            if "layer_names" not in root.attrs:
                if "layers" in root and "vars" in _first_group(root["layers"]):
                    raise ArtifactError(f"{path}: Keras 3's own weights format (.weights.h5); {KERAS3_RESAVE}")
                raise ArtifactError(f"{path}: no Keras weights found (no 'layer_names' attribute)")
            keras_version = _text(handle.attrs["keras_version"]) if "keras_version" in handle.attrs else None
            weights = {_text(name): _layer_weights(root, _text(name), path) for name in root.attrs["layer_names"]}
            keras1_named = {name for name in weights if _keras1_named(root[name])}
            config = json.loads(_text(handle.attrs["model_config"])) if "model_config" in handle.attrs else None
        if config is not None:
            if not isinstance(config, dict):
                raise ArtifactError(f"{path}: model_config is not a Keras model description (a JSON object)")
            layers, dropout = _layers_from_config(config, weights, path)
            source = "model_config"
        else:
            layers, dropout = _assumed_layers(weights, keras1_named, path)
            source = "assumed (weights-only file)"
            log.warning("%s holds weights only: assuming ReLU hidden layers and a softmax output", path)
        for layer in layers:
            if np.ndim(layer.kernel) != 2 or np.ndim(layer.bias) != 1:
                raise ArtifactError(f"{path}: a Dense layer's kernel must be 2-D and its bias 1-D")
            if not (np.isfinite(layer.kernel).all() and np.isfinite(layer.bias).all()):
                raise ArtifactError(f"{path}: a Dense layer's weights hold NaN or infinity (a diverged training)")
        _check_chain(layers, path)
    # RecursionError: a model_config nested deeper than Python's JSON reader goes
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise ArtifactError(
            f"{path}: not a Keras Dense model this importer can read ({type(exc).__name__}: {exc})"
        ) from None
    return KerasDenseModel(tuple(layers), dropout, source, keras_version)


# Keras 3 writes its own formats by default (layers/<name>/vars/<i>, no layer list): this reader
# follows the layer list of the HDF5 layout that Keras 2 and Keras 3's legacy saving write.
KERAS3_RESAVE = (
    "this importer reads the HDF5 layout of Keras 2 and of Keras 3's legacy saving: load the model in "
    "Keras and save it again with model.save('chatbot_model.h5')"
)


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _is_pickle(path: Path) -> bool:
    with open(path, "rb") as handle:
        return looks_like_pickle(handle.read(4), path)


def _first_group(group: Any) -> Any:
    """The first member of an HDF5 group (an empty dict when it has none)."""
    for name in group:
        return group[name]
    return {}


# Keras 1 named a Dense layer's weights "<layer>_W" and "<layer>_b" (same shapes as Keras 2's
# kernel and bias); read as anything else, a Keras 1 model was refused as holding no Dense layer
_KERAS1_ROLES = {"W": "kernel", "b": "bias"}


def _weight_leaf(weight_name: str) -> str:
    return weight_name.rsplit("/", 1)[-1].split(":")[0]  # "dense/kernel:0" -> "kernel"


def _keras1_named(group: Any) -> bool:
    """Whether a layer group names its weights as Keras 1 did (``dense_1_W:0``)."""
    return any(_weight_leaf(_text(w)).rsplit("_", 1)[-1] in _KERAS1_ROLES for w in group.attrs.get("weight_names", []))


def _layer_weights(root: Any, name: str, path: Path) -> dict[str, np.ndarray]:
    group = root[name]
    found: dict[str, np.ndarray] = {}
    for weight_name in (_text(w) for w in group.attrs.get("weight_names", [])):
        leaf = _weight_leaf(weight_name)
        role = _KERAS1_ROLES.get(leaf.rsplit("_", 1)[-1], leaf)  # Keras 1: "dense_1_W:0" -> "kernel"
        if role not in ("kernel", "bias"):
            raise ArtifactError(
                f"{path}: layer {name!r} holds weight {weight_name!r}, neither a kernel nor a bias: "
                "only Dense layers are supported"
            )
        if role in found:
            # a nested model's group lists the weights of all its layers: the last kernel read
            # alone would have stood for the whole model
            raise ArtifactError(
                f"{path}: layer {name!r} holds more than one {role} ({weight_name!r} is another): a model "
                "nested in the model; only a flat chain of Dense layers is supported"
            )
        found[role] = _read_weight(group[weight_name], role, f"layer {name!r} weight {weight_name!r}", path)
    return found


def _read_weight(dataset: Any, role: str, what: str, path: Path) -> np.ndarray:
    """The dataset as float32, its shape checked first: a few kilobytes of HDF5 may declare a
    dataset of terabytes (unwritten or compressed), whose read failed with a MemoryError
    traceback or took all the machine's memory."""
    shape = tuple(dataset.shape)
    ndim = 2 if role == "kernel" else 1
    if len(shape) != ndim:
        raise ArtifactError(f"{path}: {what} has shape {shape}: a Dense layer's {role} is {ndim}-D")
    if shape[-1] > MAX_WIDTH:
        raise ArtifactError(
            f"{path}: {what} has shape {shape}: {shape[-1]:,} units, more than the {MAX_WIDTH:,} "
            "a layer of this network may have"
        )
    try:
        return np.asarray(dataset[()], dtype=np.float32)
    except MemoryError:
        raise ArtifactError(f"{path}: {what} has shape {shape}, too large to read into memory") from None


def _keras_layers(config: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    body = config.get("config", config)
    layers = body.get("layers") if isinstance(body, dict) else body  # Keras 2.0/2.1 Sequential: a bare list
    if not isinstance(layers, list):
        raise ArtifactError(f"{path}: model_config holds no layer list")
    return layers


def _layers_from_config(
    config: dict[str, Any], weights: dict[str, dict[str, np.ndarray]], path: Path
) -> tuple[list[DenseLayer], float]:
    layers: list[DenseLayer] = []
    dropout = 0.0
    for entry in _keras_layers(config, path):
        kind = entry.get("class_name")
        settings = entry.get("config", {})
        name = settings.get("name", "?")
        if kind in IGNORED_LAYERS:
            if kind == "Dropout":
                # Keras 1 called the rate "p"
                rate = settings.get("rate", settings.get("p", 0.0))
                dropout = max(dropout, _dropout_rate(rate, name, path))
            continue
        if kind == "Activation" and layers and layers[-1].activation == "linear":
            last = layers[-1]
            layers[-1] = DenseLayer(
                last.name, last.kernel, last.bias, _activation(settings.get("activation"), name, path)
            )
            continue
        if kind == "Activation":
            after = (
                f"the Dense layer {layers[-1].name!r}, whose activation is {layers[-1].activation}"
                if layers
                else "no Dense layer"
            )
            raise ArtifactError(
                f"{path}: Activation layer {name!r} follows {after}: an Activation layer is supported only "
                "right after a Dense layer with a linear activation"
            )
        if kind != "Dense":
            raise ArtifactError(
                f"{path}: layer {name!r} is a {kind}: only Dense, Dropout, Activation and InputLayer are supported"
            )
        found = weights.get(name)
        if not found or "kernel" not in found:
            raise ArtifactError(f"{path}: Dense layer {name!r} has no kernel in the file")
        bias = found.get("bias")
        if bias is None:  # use_bias=False
            bias = np.zeros(found["kernel"].shape[1], dtype=np.float32)
        layers.append(
            DenseLayer(name, found["kernel"], bias, _activation(settings.get("activation", "linear"), name, path))
        )
    return layers, dropout


def _assumed_layers(
    weights: dict[str, dict[str, np.ndarray]], keras1_named: set[str], path: Path
) -> tuple[list[DenseLayer], float]:
    """Dense layers read from a weights-only file (no model_config names their classes)."""
    dense = [(name, found) for name, found in weights.items() if found]
    layers = []
    for index, (name, found) in enumerate(dense):
        if "kernel" not in found:
            raise ArtifactError(f"{path}: layer {name!r} has no kernel")
        if name in keras1_named and "bias" not in found:
            # Keras 1 named every layer's matrix "<layer>_W": an Embedding's looks like a Dense
            # kernel, and without a bias nothing tells them apart
            raise ArtifactError(
                f"{path}: layer {name!r} holds a Keras 1 weight matrix and no bias, and the file records no "
                "layer classes (weights only): it may be an Embedding or another layer, not a Dense one; "
                "save the whole model (model.save) so that its configuration is recorded"
            )
        bias = found.get("bias", np.zeros(found["kernel"].shape[1], dtype=np.float32))
        layers.append(DenseLayer(name, found["kernel"], bias, "softmax" if index == len(dense) - 1 else "relu"))
    return layers, 0.0


def _dropout_rate(value: Any, layer: str, path: Path) -> float:
    """A Dropout layer's rate, a number from 0 up to 1 (NaN, a string or an integer too large
    for a float is refused naming the layer, not passed on to fail elsewhere)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ArtifactError(
            f"{path}: Dropout layer {layer!r} has rate {value!r:.60}: expected a number from 0 up to (not including) 1"
        )
    return float(value)


# tf.nn.softmax is softmax_v2: Keras 2 wrote it "softmax", Keras 3 writes the function's name
_FUNCTION_ALIASES = {"softmax_v2": "softmax"}


def _activation(value: Any, layer: str, path: Path) -> str:
    """The activation's name: a string, or Keras 3's description of a function passed as one
    (``activation=tf.nn.softmax``: ``{"class_name": "function", "config": "softmax_v2", ...}``)."""
    name = value if isinstance(value, str) else repr(value)
    if isinstance(value, dict):
        config = value.get("config")
        name = config if isinstance(config, str) else repr(value)
        if isinstance(config, dict) and isinstance(config.get("name"), str):
            name = config["name"]
    name = _FUNCTION_ALIASES.get(name, name)
    if name not in ("relu", "softmax", "linear"):
        raise ArtifactError(
            f"{path}: layer {layer!r} uses activation {name!r}: only relu, softmax and linear are supported"
        )
    return name


def _check_chain(layers: list[DenseLayer], path: Path) -> None:
    if len(layers) < 2:
        raise ArtifactError(
            f"{path}: expected at least one hidden Dense layer and an output layer, found {len(layers)}"
        )
    for layer in layers[:-1]:
        if layer.activation != "relu":
            raise ArtifactError(
                f"{path}: hidden layer {layer.name!r} uses {layer.activation!r}; this network has ReLU hidden layers"
            )
    if layers[-1].activation != "softmax":
        raise ArtifactError(
            f"{path}: output layer {layers[-1].name!r} uses {layers[-1].activation!r}, expected softmax"
        )
    for before, after in zip(layers, layers[1:]):
        if before.kernel.shape[1] != after.kernel.shape[0]:
            raise ArtifactError(
                f"{path}: layer {after.name!r} takes {after.kernel.shape[0]} inputs "
                f"but {before.name!r} gives {before.kernel.shape[1]}"
            )
    for layer in layers:
        if layer.kernel.ndim != 2 or layer.bias.shape != (layer.kernel.shape[1],):
            raise ArtifactError(
                f"{path}: layer {layer.name!r} has kernel {layer.kernel.shape} and bias {layer.bias.shape}"
            )
