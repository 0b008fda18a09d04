"""TF2-native runtime: ``tf.Module`` + ``tf.function``, eager, no ``tensorflow.compat.v1``.

The migration target for models trained in compat mode. Nothing in this package imports
:mod:`compat.runtime` (which switches the process to TF1 graph mode for good), and importing
:mod:`compat.tf2.runtime` in a process that already did raises
:class:`compat.selection.RuntimeConflict`. A process picks one runtime before TensorFlow is
first used; see :mod:`compat.selection`.

* :mod:`compat.tf2.runtime`: imports ``tensorflow`` in eager mode, quietly, and claims the process.
* :mod:`compat.tf2.checkpoint`: reads the TF1 SavedModel's variables (``tf.train.load_checkpoint``).
* :mod:`compat.tf2.network`: the network as a ``tf.Module`` mirroring ``build_logits``.
* :mod:`compat.tf2.saved_model`: writes and loads the TF2 SavedModel (signature ``predict``).
"""
