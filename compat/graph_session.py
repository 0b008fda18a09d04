"""One model, one graph, one session.

Under ``tf.compat.v1`` the *default graph* is thread-local: a Flask request thread that builds
or looks up an op without entering the model's graph gets a fresh, empty graph of its own and
fails with ``Tensor ... is not an element of this graph``. :class:`GraphSession` keeps the graph
and its session together; :meth:`GraphSession.bound` enters both for the calling thread, and
:meth:`GraphSession.finalize` makes the graph read-only once loading is done, so an op built by
mistake later fails at once instead of slowly growing the graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from compat.runtime import tf


def session_config(intra_op_threads: int = 0, inter_op_threads: int = 0) -> tf.ConfigProto:
    """A ``ConfigProto`` with explicit thread pools (0 lets TensorFlow pick: one per core)."""
    return tf.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads,
        inter_op_parallelism_threads=inter_op_threads,
        allow_soft_placement=True,
    )


class GraphSession:
    """Owns a private ``tf.Graph`` and the ``tf.Session`` that runs it.

    A session may be ``run`` from many threads at once; building ops is what must happen
    inside :meth:`bound` (and before :meth:`finalize`).
    """

    def __init__(self, config: tf.ConfigProto | None = None) -> None:
        self.graph = tf.Graph()
        self.session = tf.Session(graph=self.graph, config=config)
        self._closed = False

    @contextlib.contextmanager
    def bound(self) -> Iterator[GraphSession]:
        """Make this graph and session the calling thread's defaults for the block."""
        with self.graph.as_default(), self.session.as_default():
            yield self

    def finalize(self) -> None:
        """Freeze the graph: any later attempt to add an op raises ``RuntimeError``."""
        self.graph.finalize()

    @property
    def finalized(self) -> bool:
        return self.graph.finalized

    def run(self, fetches: Any, feed_dict: dict | None = None) -> Any:
        """``Session.run``; thread-safe once the graph is complete."""
        return self.session.run(fetches, feed_dict=feed_dict)

    def tensor(self, name: str) -> tf.Tensor:
        """Look a tensor up by name in *this* graph (never the thread's default graph)."""
        return self.graph.get_tensor_by_name(name)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.session.close()

    def __enter__(self) -> GraphSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> Any:
        # Graphs and sessions hold locks and C handles; pickling one raises a TypeError deep
        # inside TensorFlow. Say what to do instead.
        raise TypeError(
            "a GraphSession cannot be pickled: export the model as a SavedModel "
            "(legacy_assistant.classifier.artifact.export_artifact) and load it in the other process"
        )
