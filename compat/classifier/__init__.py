"""The intent classifier network, one module per job.

* :mod:`compat.classifier.schema`: the network declared once (options, layers, variable names,
  signature keys, the manifest's ``network`` object). No TensorFlow.
* :mod:`compat.classifier.reference`: the inference network in numpy. No TensorFlow.
* :mod:`compat.classifier.network`: :func:`~compat.classifier.network.build_logits` in TF1 graph
  mode, and moving weights into a graph by name.
* :mod:`compat.classifier.trainer`: the training graph (:class:`~compat.classifier.trainer.ClassifierTrainer`).
* :mod:`compat.classifier.saved_model`: the TF1 SavedModel, written and loaded.

This file imports nothing, so the two TensorFlow-free modules can be read by processes that
must not start the TF1 runtime (verification, migration to TF2).
"""
