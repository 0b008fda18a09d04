"""The generative responder's TensorFlow side: an HRED encoder-decoder conditioned on an emotion.

* :mod:`~compat.responder.spec`: token ids, :class:`ResponderSpec`, :class:`DecodeResult` (no TensorFlow);
* :mod:`~compat.responder.inputs`: the SavedModels' signatures and the checks of their inputs,
  shared with the TF2 runtime (no TensorFlow);
* :mod:`~compat.responder.network`: the network (variables and the ops that use them);
* :mod:`~compat.responder.decoding`: greedy, beam and sampling decoding and scoring in the graph;
* :mod:`~compat.responder.trainer`: :class:`ResponderTrainer` (training graph, checkpoints);
* :mod:`~compat.responder.saved_model`: :func:`export_responder` and :class:`LoadedResponder`;
* :mod:`~compat.responder.reference`: the same network in numpy, for tests.

Submodules are imported explicitly, so that ``spec`` and ``inputs`` cost no TensorFlow import.
"""
