"""The generative responder family: dialogue corpora, training pairs, the token vocabulary,
training with checkpoints, the exported artifact and the :class:`Responder` that serves it.

Nothing here imports TensorFlow at module level; the graph, its training step and its in-graph
decoding are :mod:`compat.responder`'s.
"""
