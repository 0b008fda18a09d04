"""The classifier as a TF1 SavedModel: :func:`export_saved_model` writes it, :class:`LoadedClassifier`
serves it.

The exported graph is the lean inference form of :func:`compat.classifier.network.build_logits`
(no dropout, no optimizer slots) with one signature, named and keyed as
:mod:`compat.classifier.schema` declares.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from compat.classifier.network import WeightLoader, build_logits, model_variables
from compat.classifier.schema import (
    DENSE_KEY,
    IDS_KEY,
    LOGITS_KEY,
    OUTPUT_KEY,
    OUTPUT_LAYER,
    SERVING_TAGS,
    SIGNATURE_NAME,
    WEIGHTS_KEY,
    NetworkSpec,
    kernel_name,
    layer_name,
)
from compat.graph_session import GraphSession, session_config
from compat.interface import SavedModelError, check_sparse, first_line, tensorflow_path
from compat.runtime import tf


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
            loader = WeightLoader(model_variables())
            gs.run(tf.global_variables_initializer())
            loader.load(gs, weights)
            signature = tf.saved_model.signature_def_utils.predict_signature_def(
                inputs={IDS_KEY: ids, WEIGHTS_KEY: values},
                outputs={OUTPUT_KEY: probabilities, LOGITS_KEY: logits},
            )
            builder = tf.saved_model.builder.SavedModelBuilder(tensorflow_path(export_dir))
            builder.add_meta_graph_and_variables(
                gs.session,
                list(SERVING_TAGS),
                signature_def_map={SIGNATURE_NAME: signature},
                strip_default_attrs=True,
            )
            builder.save()


class LoadedClassifier:
    """A SavedModel loaded into its own finalized graph; :meth:`predict_proba` is thread-safe.

    Predictions go through a :class:`compat.graph_session.FixedRun` of the signature's tensors,
    which skips ``Session.run``'s per-call Python work (the same results).
    """

    # The variables of the network (name -> shape, as NetworkSpec.variables() gives them), which
    # the manifest's network describes; None for the first releases' dense signature, whose
    # variables were named otherwise.
    variable_shapes: dict[str, tuple[int, ...]] | None = None

    def __init__(self, export_dir: str, intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
        path = tensorflow_path(export_dir)
        self._gs = GraphSession(session_config(intra_op_threads, inter_op_threads))
        try:
            with self._gs.bound():
                meta_graph = tf.saved_model.loader.load(self._gs.session, list(SERVING_TAGS), path)
        except (tf.errors.OpError, OSError, ValueError, RuntimeError) as exc:
            self._gs.close()
            raise SavedModelError(f"cannot load SavedModel from {export_dir}: {first_line(exc)}") from exc
        except Exception as exc:  # protobuf DecodeError and friends from a damaged saved_model.pb
            self._gs.close()
            raise SavedModelError(
                f"cannot load SavedModel from {export_dir}: {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        try:
            self._bind(export_dir, meta_graph)
        except SavedModelError:
            self._gs.close()
            raise
        except (KeyError, ValueError, TypeError, tf.errors.OpError) as exc:  # a signature naming no tensor, ...
            self._gs.close()
            raise SavedModelError(f"{export_dir}: not a usable classifier SavedModel: {first_line(exc)}") from exc
        # Loading is done: from here on a request thread that tries to build an op gets an
        # immediate RuntimeError instead of silently growing (or missing) the graph.
        self._gs.finalize()

    def _bind(self, export_dir: str, meta_graph: Any) -> None:
        """Check the restored graph and find the signature's tensors (the caller closes the
        session on any error)."""
        uninitialized = self._gs.uninitialized_variables()
        if uninitialized:
            names = ", ".join(uninitialized)
            raise SavedModelError(f"{export_dir}: variables left uninitialised after restore: {names}")
        signature = meta_graph.signature_def.get(SIGNATURE_NAME)
        if signature is not None and set(signature.inputs) == {DENSE_KEY} and OUTPUT_KEY in signature.outputs:
            self._bind_dense(export_dir, signature)
            return
        if signature is None or {IDS_KEY, WEIGHTS_KEY} - set(signature.inputs) or OUTPUT_KEY not in signature.outputs:
            raise SavedModelError(
                f"{export_dir} has no {SIGNATURE_NAME!r} signature with "
                f"({IDS_KEY!r}, {WEIGHTS_KEY!r}) -> {OUTPUT_KEY!r}"
            )
        self._ids = self._gs.tensor(signature.inputs[IDS_KEY].name)
        self._values = self._gs.tensor(signature.inputs[WEIGHTS_KEY].name)
        self._probabilities = self._gs.tensor(signature.outputs[OUTPUT_KEY].name)
        # a signature with its inputs swapped or retyped would still run: weights cast to ids
        for key, tensor, dtype in (
            (IDS_KEY, self._ids, tf.int32),
            (WEIGHTS_KEY, self._values, tf.float32),
            (OUTPUT_KEY, self._probabilities, tf.float32),
        ):
            if tensor.dtype != dtype or tensor.shape.rank != 2:
                raise SavedModelError(
                    f"{export_dir}: the {SIGNATURE_NAME!r} signature's {key!r} is {tensor.dtype.name} of shape "
                    f"{tensor.shape}, not {dtype.name} [batch, width]"
                )
        self.n_features = _input_width(self._gs, export_dir)
        self.n_classes = int(self._probabilities.shape[-1])
        with self._gs.bound():
            self.variable_shapes = {v.op.name: tuple(v.shape.as_list()) for v in tf.global_variables()}
        self._predict: Callable[..., list[np.ndarray]] = self._gs.fixed_run(
            [self._probabilities], [self._ids, self._values]
        )

    def _bind_dense(self, export_dir: str, signature: Any) -> None:
        """The first releases' signature: one dense float32 ``features`` ``[batch, n_features]``
        (a bag of words). Such a model is served by densifying the sparse rows here: the same
        numbers its own featurizer fed it."""
        features = self._gs.tensor(signature.inputs[DENSE_KEY].name)
        self._probabilities = self._gs.tensor(signature.outputs[OUTPUT_KEY].name)
        for key, tensor in ((DENSE_KEY, features), (OUTPUT_KEY, self._probabilities)):
            if tensor.dtype != tf.float32 or tensor.shape.rank != 2 or tensor.shape[-1] is None:
                raise SavedModelError(
                    f"{export_dir}: the {SIGNATURE_NAME!r} signature's {key!r} is {tensor.dtype.name} of shape "
                    f"{tensor.shape}, not float32 [batch, width]"
                )
        self.n_features = int(features.shape[-1])
        self.n_classes = int(self._probabilities.shape[-1])
        predict_dense = self._gs.fixed_run([self._probabilities], [features])

        def predict(ids: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
            dense = np.zeros((ids.shape[0], self.n_features), np.float32)
            np.add.at(dense, (np.arange(ids.shape[0])[:, None], ids), weights)  # padding adds 0 to id 0
            return predict_dense(dense)

        self._predict = predict

    @property
    def graph_session(self) -> GraphSession:
        return self._gs

    def predict_proba(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Sparse features ``[batch, width]`` -> float32 ``[batch, n_classes]`` probabilities."""
        ids, weights = check_sparse(ids, weights, self.n_features, "predict_proba")
        return self._predict(ids, weights)[0]

    def close(self) -> None:
        self._gs.close()


def _input_width(gs: GraphSession, export_dir: str) -> int:
    """Rows of the first layer's kernel: ``hidden_0``, or ``output`` when there is no hidden layer."""
    for layer in (layer_name(0), OUTPUT_LAYER):
        try:
            return int(gs.tensor(f"{kernel_name(layer)}:0").shape[0])
        except KeyError:
            continue
    raise SavedModelError(
        f"{export_dir}: holds no compat classifier's kernel (a TF2-native copy, whose manifest should say "
        "runtime 'tf2'? load it with that runtime)"
    )
