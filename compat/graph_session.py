"""One model, one graph, one session.

Under ``tf.compat.v1`` the *default graph* is thread-local: a Flask request thread that builds
an op without entering the model's graph gets a fresh, empty graph of its own, and running that
op with the model's session fails with ``Tensor ... is not an element of this graph`` (looking a
model tensor up by name in it raises ``KeyError``: ``The name 'y:0' refers to a Tensor which does
not exist``). :class:`GraphSession` keeps the graph
and its session together; :meth:`GraphSession.bound` enters both for the calling thread, and
:meth:`GraphSession.finalize` makes the graph read-only once loading is done, so an op built by
mistake later fails at once instead of slowly growing the graph.

:meth:`GraphSession.fixed_run` compiles one ``Session.run`` signature (these feeds, these
fetches) into a C++ callable for the serving path: ``Session.run`` redoes its feed and fetch
handling in Python on every call, which costs more than a small network's whole computation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from compat.processes import check_not_forked, starting_tensorflow
from compat.runtime import tf

try:  # the message behind Session::MakeCallable; tf.compat.v1 does not export it
    from tensorflow.core.protobuf.config_pb2 import CallableOptions
except ImportError:  # pragma: no cover - present on every supported release
    CallableOptions = None


def session_config(intra_op_threads: int = 0, inter_op_threads: int = 0) -> tf.ConfigProto:
    """A ``ConfigProto`` with explicit thread pools (0 lets TensorFlow pick: one per core)."""
    return tf.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads,
        inter_op_parallelism_threads=inter_op_threads,
        allow_soft_placement=True,
    )


def _pool_free(config: tf.ConfigProto | None) -> bool:
    """Whether a session of ``config`` starts no thread pool: ops in the caller's thread
    (``inter_op_parallelism_threads`` -1) and one thread within an op."""
    return (
        config is not None
        and config.inter_op_parallelism_threads == -1
        and config.intra_op_parallelism_threads == 1
        and not config.use_per_session_threads
        and not config.session_inter_op_thread_pool
    )


class GraphSession:
    """Owns a private ``tf.Graph`` and the ``tf.Session`` that runs it.

    A session may be ``run`` from many threads at once; building ops is what must happen
    inside :meth:`bound` (and before :meth:`finalize`).
    """

    def __init__(self, config: tf.ConfigProto | None = None) -> None:
        # In a child forked after TensorFlow started its thread pools, the first run would hang.
        # A session that runs every op in the calling thread, on one thread (the server's
        # setting), starts none: it may be made, and forked, as often as one likes.
        starting_tensorflow(pools=not _pool_free(config))
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

    def uninitialized_variables(self) -> list[str]:
        """Names of the graph's variables that hold no value yet, every variable op of the graph
        counted. ``tf.report_uninitialized_variables()`` looks at the global and local variable
        collections only: a SavedModel can hold a variable in neither, which then fails every
        run that reads it. Builds ops: call before :meth:`finalize`."""
        with self.bound():
            checks = {}
            for op in self.graph.get_operations():
                if op.type == "VarHandleOp":  # resource variable
                    checks[op.name] = tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0])
                elif op.type in ("VariableV2", "Variable"):  # reference variable
                    checks[op.name] = tf.raw_ops.IsVariableInitialized(ref=op.outputs[0])
            if not checks:
                return []
            values = self.run(list(checks.values()))
        return [name for name, ready in zip(checks, values) if not ready]

    def run(self, fetches: Any, feed_dict: dict | None = None) -> Any:
        """``Session.run``; thread-safe once the graph is complete. A run that :meth:`close` cuts
        short raises ``RuntimeError``, as a run after it does."""
        check_not_forked()
        with self.cut_short_by_close():
            return self.session.run(fetches, feed_dict=feed_dict)

    def fixed_run(self, fetches: Sequence[tf.Tensor], feeds: Sequence[tf.Tensor]) -> FixedRun:
        """A thread-safe ``run(fetches, dict(zip(feeds, values)))`` for repeated calls (:class:`FixedRun`)."""
        return FixedRun(self, fetches, feeds)

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self) -> None:
        """Raise ``RuntimeError`` (as ``Session.run`` does) once the session is closed, and
        :class:`compat.processes.ForkedProcessError` in a child forked after it was made."""
        if self._closed:
            raise RuntimeError("Attempted to use a closed Session.")
        check_not_forked()

    @contextlib.contextmanager
    def cut_short_by_close(self) -> Iterator[None]:
        """The block's ``CancelledError`` (how TensorFlow ends a run when its session closes)
        becomes ``RuntimeError("Attempted to use a closed Session.")`` once the session is
        closed: a call that :meth:`close` cut short fails as a call after it does."""
        try:
            yield
        except tf.errors.CancelledError:
            if self._closed:
                raise RuntimeError("Attempted to use a closed Session.") from None
            raise

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
            "a GraphSession cannot be pickled (it holds a TensorFlow graph and session): give the other "
            "process the model directory and load it there (Predictor.load or Responder.load)"
        )


class FixedRun:
    """One ``Session.run`` signature, compiled once: ``run(*values) -> [fetched arrays]``.

    ``Session.run`` builds a feed handler and a fetch handler in Python on every call and checks
    every fed value there; on TensorFlow 2.21 that costs about 250 µs a call, five times the
    classifier network's whole computation. TensorFlow's C++ API has the remedy, the one Keras's
    TF1 backend used for every ``predict``: ``Session::MakeCallable`` fixes the feeds and
    fetches once and runs them with one call that lets go of the GIL, like ``Session.run``. The
    Python session has exposed it as ``_make_callable_from_options`` since the 1.x releases;
    where it is missing this falls back to ``Session.run``, with the same results.

    A callable skips the placeholders' own checks, so each value is converted here to its feed's
    dtype and its shape checked against the feed's static shape (``ValueError`` on a mismatch, as
    ``Session.run`` raises). May be called from many threads at once.
    """

    def __init__(self, graph_session: GraphSession, fetches: Sequence[tf.Tensor], feeds: Sequence[tf.Tensor]) -> None:
        graph_session.check_open()  # making a callable on a closed session fails otherwise
        self._gs = graph_session
        self._fetches = list(fetches)
        self._feeds = list(feeds)
        for role, tensors in (("feed", self._feeds), ("fetch", self._fetches)):  # Session.run's order
            for tensor in tensors:
                if not isinstance(tensor, tf.Tensor):
                    raise TypeError(
                        f"{tensor!r}: a compiled call feeds and fetches tensors, not {type(tensor).__name__}"
                    )
                # the callable names tensors: another graph's "y:0" would be this graph's "y:0",
                # silently. Refused as Session.run refuses it: ValueError for a fetch, TypeError for a feed.
                if tensor.graph is not graph_session.graph:
                    error = ValueError if role == "fetch" else TypeError
                    raise error(f"{role} Tensor {tensor.name} is not an element of this graph.")
        self._dtypes = [feed.dtype.as_numpy_dtype for feed in self._feeds]
        # None for an unknown rank; otherwise one entry per dimension, None where any size goes
        self._shapes = [None if feed.shape.rank is None else feed.shape.as_list() for feed in self._feeds]
        make = getattr(graph_session.session, "_make_callable_from_options", None)
        self._callable: Any = None
        if make is not None and CallableOptions is not None:
            options = CallableOptions(feed=[t.name for t in self._feeds], fetch=[t.name for t in self._fetches])
            with graph_session.cut_short_by_close():  # closed since the check above (a first call meets a close)
                self._callable = make(options)

    @property
    def compiled(self) -> bool:
        """Whether calls go through a C++ callable (``False``: the ``Session.run`` fallback)."""
        return self._callable is not None

    def __call__(self, *values: Any) -> list[np.ndarray]:
        """The fetches' values for ``values`` (one per feed, in order), as ``Session.run`` returns them."""
        if len(values) != len(self._feeds):
            raise TypeError(f"expected {len(self._feeds)} values (one per feed), got {len(values)}")
        arrays = [self._array(value, i) for i, value in enumerate(values)]
        if self._callable is None:
            return self._gs.run(self._fetches, dict(zip(self._feeds, arrays)))
        self._gs.check_open()
        with self._gs.cut_short_by_close():  # closed while this call ran: what a call after close() raises
            results = self._callable(*arrays)
        # a fetched variable comes back as a view of its live buffer: copy, as Session.run gives
        return [np.array(result, copy=True) for result in results]

    def _array(self, value: Any, index: int) -> np.ndarray:
        dtype = self._dtypes[index]
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and np.issubdtype(dtype, np.integer):
            # numpy would wrap an out-of-range int (numpy 1) or raise OverflowError (numpy 2);
            # Session.run refuses it with this TypeError
            limits = np.iinfo(dtype)
            if not limits.min <= value <= limits.max:
                raise TypeError(
                    f"Type of feed value {value} with type {type(value)} is not compatible with Tensor type "
                    f"{self._feeds[index].dtype} ({self._feeds[index].name})"
                )
        array = np.asarray(value, dtype=dtype)
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        shape = self._shapes[index]
        if shape is not None and (
            array.ndim != len(shape) or any(want is not None and want != got for want, got in zip(shape, array.shape))
        ):
            raise ValueError(
                f"Cannot feed value of shape {array.shape} for Tensor {self._feeds[index].name}, "
                f"which has shape {tuple(shape)}"
            )
        return array
