"""GraphSession.fixed_run: one Session.run signature compiled into a C++ callable."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from compat.graph_session import GraphSession
from compat.runtime import tf


@pytest.fixture
def mixed_graph():
    """``out = sum_j weights[b, j] * table[ids[b, j]] * scale`` ([batch]), and ``count`` = batch size."""
    gs = GraphSession()
    with gs.bound():
        ids = tf.placeholder(tf.int32, [None, None], name="ids")
        weights = tf.placeholder(tf.float32, [None, None], name="weights")
        scale = tf.placeholder(tf.float32, [], name="scale")
        table = tf.constant(np.arange(10, dtype=np.float32) * 1.5 + 0.25)
        out = tf.reduce_sum(tf.gather(table, ids) * weights, axis=1) * scale
        count = tf.shape(ids)[0]
    gs.finalize()
    yield gs, (ids, weights, scale), (out, count)
    gs.close()


def expected(ids, weights, scale):
    table = np.arange(10, dtype=np.float32) * 1.5 + 0.25
    return (table[np.asarray(ids)] * np.asarray(weights, np.float32)).sum(axis=1) * np.float32(scale)


def test_fixed_run_is_compiled_and_matches_session_run(mixed_graph):
    gs, feeds, fetches = mixed_graph
    run = gs.fixed_run(fetches, feeds)
    assert run.compiled  # every supported release has Session::MakeCallable
    rng = np.random.default_rng(0)
    for batch, width in [(1, 1), (1, 7), (5, 3), (0, 2)]:
        ids = rng.integers(0, 10, (batch, width)).astype(np.int32)
        weights = rng.random((batch, width)).astype(np.float32)
        got_out, got_count = run(ids, weights, 2.0)
        want_out, want_count = gs.run(list(fetches), dict(zip(feeds, [ids, weights, 2.0])))
        assert got_out.dtype == np.float32 and got_out.shape == (batch,)
        np.testing.assert_array_equal(got_out, want_out)
        assert int(got_count) == int(want_count) == batch


def test_values_are_converted_to_the_feeds_dtypes_and_made_contiguous(mixed_graph):
    gs, feeds, fetches = mixed_graph
    run = gs.fixed_run(fetches[:1], feeds)
    ids64 = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)  # int64 would be refused by the callable itself
    weights = np.asfortranarray(np.array([[0.5, 1.0, 2.0], [1.0, 0.0, 3.0]]))  # float64, not C-ordered
    (out,) = run(ids64, weights, 1)
    np.testing.assert_allclose(out, expected(ids64, weights, 1.0), rtol=1e-6)
    transposed = np.array([[1, 4], [2, 5], [3, 6]], dtype=np.int32).T  # a view, not contiguous
    (again,) = run(transposed, [[0.5, 1.0, 2.0], [1.0, 0.0, 3.0]], 1.0)
    np.testing.assert_array_equal(again, out)


def test_wrong_shapes_and_counts_are_refused_before_anything_runs(mixed_graph):
    gs, feeds, fetches = mixed_graph
    run = gs.fixed_run(fetches, feeds)
    with pytest.raises(ValueError, match=r"shape \(3,\) for Tensor ids:0"):
        run([1, 2, 3], [[1.0, 1.0, 1.0]], 1.0)
    with pytest.raises(ValueError, match="scale:0"):
        run([[1]], [[1.0]], [1.0, 2.0])
    with pytest.raises(TypeError, match="expected 3 values"):
        run([[1]], [[1.0]])


def test_a_closed_session_raises_as_session_run_does(mixed_graph):
    gs, feeds, fetches = mixed_graph
    run = gs.fixed_run(fetches, feeds)
    gs.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        run([[1]], [[1.0]], 1.0)


def test_many_threads_each_get_their_own_result(mixed_graph):
    gs, feeds, fetches = mixed_graph
    run = gs.fixed_run(fetches[:1], feeds)

    def call(seed: int) -> bool:
        rng = np.random.default_rng(seed)
        for _ in range(50):
            batch, width = int(rng.integers(1, 6)), int(rng.integers(1, 9))
            ids = rng.integers(0, 10, (batch, width))
            weights = rng.random((batch, width)).astype(np.float32)
            scale = float(rng.integers(1, 4))
            (out,) = run(ids, weights, scale)
            if not np.allclose(out, expected(ids, weights, scale), rtol=1e-5):
                return False
        return True

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(call, range(16)))


def test_without_make_callable_it_falls_back_to_session_run(mixed_graph, monkeypatch):
    gs, feeds, fetches = mixed_graph
    compiled = gs.fixed_run(fetches[:1], feeds)
    monkeypatch.setattr(gs.session, "_make_callable_from_options", None)  # as on a release without it
    fallback = gs.fixed_run(fetches[:1], feeds)
    assert not fallback.compiled
    ids, weights = [[0, 9], [3, 3]], [[1.0, 2.0], [0.5, 0.5]]
    np.testing.assert_array_equal(fallback(ids, weights, 3.0)[0], compiled(ids, weights, 3.0)[0])
    with pytest.raises(ValueError, match="ids:0"):
        fallback([0, 9], weights, 3.0)


def test_the_loaded_classifier_predicts_through_a_compiled_run(tiny_predictor):
    classifier = tiny_predictor._classifier
    assert classifier._predict.compiled
    features = tiny_predictor.features(["hello there", "what time do you open", "zzz"])
    graph_session = classifier.graph_session
    by_session_run = graph_session.run(
        classifier._probabilities, {classifier._ids: features.ids, classifier._values: features.weights}
    )
    np.testing.assert_array_equal(classifier.predict_proba(features.ids, features.weights), by_session_run)


def test_an_integer_the_feed_cannot_hold_is_refused_as_session_run_refuses_it():
    # numpy 1 would wrap 2**31 to -2**31 and numpy 2 raise OverflowError; Session.run says TypeError
    gs = GraphSession()
    with gs.bound():
        n = tf.placeholder(tf.int32, [], name="n")
        out = tf.identity(n)
    gs.finalize()
    run = gs.fixed_run([out], [n])
    try:
        assert int(run(2**31 - 1)[0]) == 2**31 - 1 and int(run(np.int64(-(2**31)))[0]) == -(2**31)
        for value in (2**31, -(2**31) - 1, 2**32 + 5, np.int64(2**40)):
            with pytest.raises(TypeError, match="not compatible with Tensor type"):
                run(value)
            with pytest.raises(TypeError):
                gs.run(out, {n: int(value)})
    finally:
        gs.close()


def test_making_a_run_on_a_closed_session_raises_runtime_error(mixed_graph):
    gs, feeds, fetches = mixed_graph
    gs.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        gs.fixed_run(fetches, feeds)


def test_a_close_between_the_check_and_making_the_run_raises_runtime_error(mixed_graph, monkeypatch):
    """A responder makes its runs on its first call of each mode: a close landing in that moment
    (from another thread) raised TensorFlow's CancelledError, not the documented RuntimeError."""
    gs, feeds, fetches = mixed_graph
    check_open = gs.check_open

    def closed_right_after_the_check():
        check_open()
        gs.close()

    monkeypatch.setattr(gs, "check_open", closed_right_after_the_check)
    with pytest.raises(RuntimeError, match="closed Session"):
        gs.fixed_run(fetches, feeds)


def test_a_closed_responder_raises_runtime_error_in_every_mode():
    from compat.responder.saved_model import LoadedResponder
    from tests.helpers import ROOT

    responder = LoadedResponder(str(ROOT / "exported" / "responder" / "saved_model"), 1, 1)
    context, conditions = np.full((1, 1, 3), 5, np.int32), np.zeros(1, np.int32)
    responder.decode(context, conditions, mode="greedy", max_length=3)  # greedy's run is made, beam's is not
    responder.close()
    for mode in ("greedy", "beam"):
        with pytest.raises(RuntimeError, match="closed Session"):
            responder.decode(context, conditions, mode=mode, max_length=3)
    with pytest.raises(RuntimeError, match="closed Session"):
        responder.score(context, conditions, np.full((1, 2), 5, np.int32))


def test_sparse_ids_are_range_checked_before_they_become_int32(tiny_predictor):
    classifier = tiny_predictor._classifier
    weights = np.ones((1, 2), np.float32)
    with pytest.raises(ValueError, match="feature ids must lie in"):
        classifier.predict_proba(np.array([[1, 2**32 + 3]], np.int64), weights)  # int32 would make it 3
    with pytest.raises(ValueError, match="feature ids must be integers"):
        classifier.predict_proba(np.array([[1.0, 2.7]]), weights)
    empty = classifier.predict_proba(np.zeros((0, 2)), np.zeros((0, 2)))  # float zeros of no rows are fine
    assert empty.shape == (0, len(tiny_predictor.classes))


def test_sparse_weights_must_be_finite_real_numbers(tiny_predictor):
    classifier = tiny_predictor._classifier
    ids = np.array([[1, 2]], np.int32)
    for weights, message in (
        (np.array([[1 + 2j, 1]]), "must be real numbers, got complex"),  # would lose its imaginary part
        (np.array([["0.5", "1"]]), "must be real numbers"),  # would be parsed as numbers
        (np.array([[np.nan, 1.0]], np.float32), "must be finite"),  # every probability NaN
        (np.array([[np.inf, 1.0]]), "must be finite"),
    ):
        with pytest.raises(ValueError, match=message):
            classifier.predict_proba(ids, weights)
    assert classifier.predict_proba(ids, np.array([[1, 2]])).shape == (1, len(tiny_predictor.classes))  # ints: fine


def test_tensors_of_another_graph_are_refused_as_session_run_refuses_them(mixed_graph):
    """The callable names tensors: another graph's "y:0" would silently be this graph's "y:0"."""
    gs, feeds, fetches = mixed_graph
    with GraphSession() as other:
        with other.bound():
            x = tf.placeholder(tf.float32, [None], name="x")
            y = tf.identity(x * 2.0, name="y")
        # as Session.run: TypeError for a feed (a feed_dict key; checked first), ValueError for a fetch
        with pytest.raises(TypeError, match="feed Tensor x:0 is not an element of this graph"):
            gs.fixed_run([y], [x])
        with pytest.raises(TypeError, match="is not an element of this graph"):
            gs.session.run(y, {x: [1.0]})
        with pytest.raises(ValueError, match="fetch Tensor y:0 is not an element of this graph"):
            gs.fixed_run([y], [feeds[2]])
        with pytest.raises(ValueError, match="is not an element of this graph"):
            gs.session.run(y, {feeds[2]: 1.0})
        with pytest.raises(TypeError, match="is not an element of this graph"):
            other.fixed_run([y], [feeds[1]])
        with pytest.raises(TypeError, match="tensors, not Operation"):
            other.fixed_run([y.op], [x])


def test_a_fetched_variable_is_a_copy_not_a_view_of_its_live_value():
    with GraphSession() as gs:
        with gs.bound():
            variable = tf.Variable(np.zeros(3, np.float32))
            step = tf.assign_add(variable, np.ones(3, np.float32))
            gs.run(tf.global_variables_initializer())
        snapshot = gs.fixed_run([variable.value()], [])()[0]
        gs.run(step)
        gs.run(step)
        np.testing.assert_array_equal(snapshot, [0.0, 0.0, 0.0])  # Session.run's answer too


def test_a_call_cut_short_by_close_raises_runtime_error(mixed_graph, monkeypatch):
    gs, feeds, fetches = mixed_graph
    run = gs.fixed_run(fetches, feeds)

    def cancelled(*arrays):
        gs.close()  # closed while the call ran
        raise tf.errors.CancelledError(None, None, "Run call was cancelled")

    monkeypatch.setattr(run, "_callable", cancelled)
    with pytest.raises(RuntimeError, match="closed Session"):
        run(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.float32), 1.0)


@pytest.mark.parametrize("compiled", [True, False])
def test_a_run_a_close_cuts_short_raises_model_closed_whether_compiled_or_not(compiled, monkeypatch):
    """The Session.run fallback let TensorFlow's CancelledError out of a run that a close() in
    another thread cut short, where the compiled call raised the documented RuntimeError (which
    a model's call turns into ModelClosed)."""
    import threading

    from legacy_assistant.common.closing import Closing
    from legacy_assistant.errors import ModelClosed

    gs = GraphSession()
    started = threading.Event()

    def start(x):
        started.set()
        return x

    with gs.bound():
        x = tf.placeholder(tf.float32, [], name="x")
        queue = tf.FIFOQueue(1, [tf.float32], shapes=[[]])  # never filled: a dequeue waits until cancelled
        with tf.control_dependencies([tf.py_func(start, [x], tf.float32)]):
            out = queue.dequeue() + x
    gs.finalize()
    if not compiled:
        monkeypatch.setattr(gs.session, "_make_callable_from_options", None)  # as on a release without it
    run = gs.fixed_run([out], [x])
    assert run.compiled == compiled
    closing = Closing("Model")  # as a model closes: marked closed first, then its session

    def close():
        closing.closed = True
        gs.close()

    closer = threading.Thread(target=lambda: started.wait(60) and close())
    closer.start()
    try:
        with pytest.raises(ModelClosed, match="^Model: it is closed"):
            with closing.call():
                run(1.0)
    finally:
        closer.join(60)
        gs.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        run(1.0)


def test_graph_session_run_cut_short_by_close_raises_runtime_error(mixed_graph, monkeypatch):
    gs, feeds, fetches = mixed_graph
    feed = {feeds[0]: [[0]], feeds[1]: [[1.0]], feeds[2]: 1.0}

    def cancelled(*args, **kwargs):
        raise tf.errors.CancelledError(None, None, "Run call was cancelled")

    monkeypatch.setattr(gs.session, "run", cancelled)
    with pytest.raises(tf.errors.CancelledError):  # not closed: a cancelled run stays what it was
        gs.run(fetches[0], feed)
    gs.close()  # closed while the run ran
    with pytest.raises(RuntimeError, match="closed Session"):
        gs.run(fetches[0], feed)
