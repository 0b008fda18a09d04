"""Write and load the TF2-native SavedModel (``tf.saved_model.save`` / ``tf.saved_model.load``).

The SavedModel holds a :class:`compat.tf2.network.SparseMLP`; its ``predict`` signature takes
``ids`` int32 and ``weights`` float32, both ``[batch, width]``, and returns ``probabilities`` and
``logits``, float32 ``[batch, n_classes]``: the same contract as the TF1 SavedModel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from compat.classifier.schema import IDS_KEY, LOGITS_KEY, OUTPUT_KEY, SIGNATURE_NAME, WEIGHTS_KEY, NetworkSpec
from compat.interface import SavedModelError, check_sparse, first_line, tensorflow_path
from compat.processes import check_not_forked, starting_tensorflow
from compat.tf2.network import SparseMLP
from compat.tf2.runtime import configure_threads, tf


def export_tf2_saved_model(spec: NetworkSpec, weights: Mapping[str, np.ndarray], export_dir: str) -> None:
    """Write ``weights`` (checked against ``spec``) as a TF2 SavedModel; ``export_dir`` must not exist.

    Raises:
        compat.classifier.schema.UnsupportedNetwork: the weights do not match the spec.
    """
    if os.path.exists(export_dir):
        raise FileExistsError(f"SavedModel directory already exists: {export_dir}")
    module = SparseMLP(spec, weights)
    # the function, not a concrete function traced here: ``save`` traces it again in its own context
    tf.saved_model.save(module, tensorflow_path(export_dir), signatures={SIGNATURE_NAME: module.predict})


class Tf2Classifier:
    """A TF2 SavedModel loaded eagerly; :meth:`predict_proba` may be called from any thread."""

    def __init__(self, export_dir: str, intra_op_threads: int = 0, inter_op_threads: int = 0) -> None:
        starting_tensorflow()  # in a child forked after TensorFlow started, the first call would hang
        configure_threads(intra_op_threads, inter_op_threads)
        path = tensorflow_path(export_dir)
        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:  # OpError, OSError, protobuf DecodeError from a damaged file
            raise SavedModelError(
                f"cannot load SavedModel from {export_dir}: {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        signature = loaded.signatures.get(SIGNATURE_NAME)
        inputs = signature.structured_input_signature[1] if signature is not None else {}
        outputs = signature.structured_outputs if signature is not None else {}
        if {IDS_KEY, WEIGHTS_KEY} - set(inputs) or {OUTPUT_KEY, LOGITS_KEY} - set(outputs):
            raise SavedModelError(
                f"{export_dir} has no {SIGNATURE_NAME!r} signature with "
                f"({IDS_KEY!r}, {WEIGHTS_KEY!r}) -> {OUTPUT_KEY!r}"
            )
        kernels = getattr(loaded, "kernels", None)
        if not kernels or not callable(getattr(loaded, "predict", None)):
            raise SavedModelError(
                f"{export_dir} is not a TF2-native model of this project (a TF1 SavedModel? "
                "convert it with 'legacy-assistant migrate')"
            )
        self._loaded = loaded
        # The signature's concrete function, called with tensors: about half the per-call cost of
        # the restored tf.function called with numpy arrays (no argument canonicalisation).
        self._predict = signature
        self.n_features = int(kernels[0].shape[0])
        self.n_classes = int(kernels[-1].shape[-1])

    def predict_proba(self, ids: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Sparse features ``[batch, width]`` -> float32 ``[batch, n_classes]`` probabilities."""
        if self._predict is None:  # as a closed compat session says it
            raise RuntimeError("Attempted to use a closed TF2 model.")
        check_not_forked()
        ids, weights = check_sparse(ids, weights, self.n_features, "predict_proba")
        predict = self._predict
        if predict is None:  # closed (in another thread) since the check above: as a compat session's run refuses it
            raise RuntimeError("Attempted to use a closed TF2 model.")
        return predict(**{IDS_KEY: tf.constant(ids), WEIGHTS_KEY: tf.constant(weights)})[OUTPUT_KEY].numpy()

    def close(self) -> None:
        self._loaded = None
        self._predict = None
