"""Read the variables of a TF1 SavedModel without building its graph.

``tf.train.load_checkpoint`` reads the checkpoint that ``SavedModelBuilder`` wrote to
``saved_model/variables/variables`` as plain tensors: no session, no graph, no ``compat.v1``.
"""

from __future__ import annotations

import os

import numpy as np

from compat.interface import SavedModelError, first_line, tensorflow_path
from compat.tf2.runtime import tf

VARIABLES_PREFIX = os.path.join("variables", "variables")


def read_v1_weights(saved_model_dir: str) -> dict[str, np.ndarray]:
    """Every variable of the TF1 SavedModel in ``saved_model_dir``, by name (``classifier/...``),
    as a numpy array of the dtype and shape the checkpoint stores.

    Raises:
        SavedModelError: no readable checkpoint there.
    """
    try:
        prefix = os.path.join(tensorflow_path(saved_model_dir), VARIABLES_PREFIX)
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        return {name: np.asarray(reader.get_tensor(name)) for name in names}
    except (tf.errors.OpError, ValueError, OSError) as exc:
        raise SavedModelError(f"cannot read the variables of {saved_model_dir}: {first_line(exc)}") from exc
