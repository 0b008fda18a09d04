"""The classic failures of Flask + TF1, reproduced in compat mode, and our path around each."""
import json
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from compat.graph_session import GraphSession
from compat.runtime import ensure_graph_mode, tf
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER
from tests.subprocesses import FORK_PROBE, json_out, run_python, run_snippet


def run_in_thread(fn):
    """Run ``fn`` in a fresh thread (as Flask does per request); return its result or exception."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the exception is the result under test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return box


@pytest.fixture
def small_graph():
    gs = GraphSession()
    with gs.bound():
        x = tf.placeholder(tf.float32, [None, 2], name="x")
        w = tf.get_variable("w", [2, 1], initializer=tf.ones_initializer())
        y = tf.matmul(x, w, name="y")
        gs.run(tf.global_variables_initializer())
    yield gs, x, y
    gs.close()


def test_graph_mode_is_on_and_switching_twice_is_harmless():
    ensure_graph_mode()
    ensure_graph_mode()
    assert not tf.executing_eagerly()
    assert not tf.resource_variables_enabled()


def test_op_built_in_a_worker_thread_lands_in_another_graph(small_graph):
    gs, x, y = small_graph

    def request_handler_without_binding():
        doubled = tf.constant(2.0) * 1.0  # lands in this thread's own default graph
        return gs.session.run(doubled)

    box = run_in_thread(request_handler_without_binding)
    assert "is not an element of this graph" in str(box["error"])

    def mixes_graphs():
        return tf.add(y, tf.constant(1.0))

    box = run_in_thread(mixes_graphs)
    assert isinstance(box["error"], ValueError)
    assert "must be from the same graph" in str(box["error"])


def test_binding_the_graph_in_the_worker_thread_fixes_it(small_graph):
    gs, x, y = small_graph

    def request_handler_bound():
        with gs.bound():
            shifted = tf.add(y, tf.constant(1.0))
            return gs.run(shifted, {x: [[1.0, 2.0]]})

    box = run_in_thread(request_handler_bound)
    assert "error" not in box, box.get("error")
    np.testing.assert_allclose(box["result"], [[4.0]])


def test_finalized_graph_refuses_new_ops_immediately(small_graph):
    gs, x, y = small_graph
    gs.finalize()

    def careless_handler():
        with gs.bound():
            return tf.add(y, 1.0)

    box = run_in_thread(careless_handler)
    assert isinstance(box["error"], RuntimeError)
    assert "finalized" in str(box["error"])
    # running what already exists still works from any thread
    box = run_in_thread(lambda: gs.run(y, {x: [[1.0, 1.0]]}))
    np.testing.assert_allclose(box["result"], [[2.0]])


def test_loaded_predictor_graph_is_finalized(tiny_predictor):
    assert tiny_predictor._classifier.graph_session.finalized


def test_predictor_from_32_threads_matches_sequential(default_predictor, golden):
    texts = [case["text"] for case in golden["cases"]]
    sequential = [default_predictor.rank_one(t) for t in texts]
    jobs = [texts[i % len(texts)] for i in range(32 * 8)]
    barrier = threading.Barrier(32)

    def call(i):
        if i < 32:
            barrier.wait()  # start the first 32 calls together
        return default_predictor.rank_one(jobs[i])

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(call, range(len(jobs))))
    assert len(results) == len(jobs)
    for i, result in enumerate(results):
        assert result == sequential[i % len(texts)]


def _pickling_messages() -> tuple[str, str]:
    """What pickling fails on, for a graph or session and for a tensor or variable, as the README
    quotes it: the graph's ``threading.RLock`` (``Graph._lock``) on 2.12, reached from all four;
    from 2.15 on the graph is a C++ object and a graph tensor a ``SymbolicTensor``, neither of
    which pickles. 2.13 and 2.14 are in no cell of the matrix: either message is taken there."""
    release = tuple(int(part) for part in tf.__version__.split(".")[:2])
    if release <= (2, 12):
        return r"_thread\.RLock", r"_thread\.RLock"
    if release >= (2, 15):
        return "Graph", "SymbolicTensor"
    return r"(_thread\.RLock|Graph)", r"(_thread\.RLock|SymbolicTensor)"


def test_pickling_a_session_or_graph_raises_type_error(small_graph):
    gs, x, y = small_graph
    graph_says, tensor_says = _pickling_messages()
    with pytest.raises(TypeError, match=f"^cannot pickle '{graph_says}' object$"):
        pickle.dumps(gs.session)
    with pytest.raises(TypeError, match=f"^cannot pickle '{graph_says}' object$"):
        pickle.dumps(gs.graph)
    with gs.bound():
        variable = tf.global_variables()[0]
    for tensor in (x, y, variable):
        with pytest.raises(TypeError, match=f"^cannot pickle '{tensor_says}' object$"):
            pickle.dumps(tensor)
    with pytest.raises(TypeError, match="load it there \\(Predictor.load or Responder.load\\)"):
        pickle.dumps(gs)


def _keras_major_behind_tf_compat_v1() -> int:
    """The Keras generation that ``tf.compat.v1.layers`` and ``rnn_cell`` come from: the
    ``keras`` package's, or Keras 2 where ``TF_USE_LEGACY_KERAS`` sends TensorFlow (2.15 on) to
    an installed ``tf_keras``, the release notes' way back to Keras 2."""
    import importlib.metadata
    import importlib.util
    import os

    release = tuple(int(part) for part in tf.__version__.split(".")[:2])
    legacy = os.environ.get("TF_USE_LEGACY_KERAS") in ("true", "True", "1")  # as TensorFlow reads it
    if release >= (2, 15) and legacy and importlib.util.find_spec("tf_keras") is not None:
        return 2
    return int(importlib.metadata.version("keras").split(".")[0])


def test_keras_3_takes_the_tf1_layers_and_cells_away():
    """The Keras/TF clash: with Keras 3 (TensorFlow 2.16 on) ``tf.compat.v1.layers`` and
    ``rnn_cell`` raise; with Keras 2 (or ``tf_keras`` and ``TF_USE_LEGACY_KERAS=1``) they
    still build. This project uses neither."""
    keras_major = _keras_major_behind_tf_compat_v1()
    with tf.Graph().as_default():
        inputs = tf.placeholder(tf.float32, [None, 3])
        if keras_major >= 3:
            with pytest.raises(AttributeError, match="not available with Keras 3"):
                tf.layers.dense(inputs, 4)
            with pytest.raises(AttributeError, match="not available with Keras 3"):
                tf.nn.rnn_cell.GRUCell(8)
            # naming the class is enough: the lazy loader raises before anything is built
            for name in ("GRUCell", "LSTMCell", "BasicLSTMCell", "BasicRNNCell", "MultiRNNCell", "DropoutWrapper"):
                with pytest.raises(AttributeError, match=f"`{name}` is not available with Keras 3"):
                    getattr(tf.nn.rnn_cell, name)
        else:
            assert tf.layers.dense(inputs, 4).shape.as_list() == [None, 4]
            assert tf.nn.rnn_cell.GRUCell(8).output_size == 8


def test_dynamic_rnn_runs_a_hand_written_cell_but_not_a_keras_3_one():
    """``dynamic_rnn`` is TensorFlow's, not Keras's: it runs a cell made of ``get_variable`` and
    ``matmul`` on every release (padded steps give zeros); Keras 3's ``GRUCell`` fails in it."""
    import importlib.metadata

    class Cell:
        state_size = output_size = 4

        def zero_state(self, batch_size, dtype):
            return tf.zeros([batch_size, 4], dtype)

        def __call__(self, inputs, state, scope=None):
            with tf.variable_scope(scope or "cell", reuse=tf.AUTO_REUSE):
                kernel = tf.get_variable("kernel", [3 + 4, 4])
            output = tf.tanh(tf.matmul(tf.concat([inputs, state], 1), kernel))
            return output, output

    with tf.Graph().as_default() as graph:
        inputs = tf.placeholder(tf.float32, [None, None, 3])
        lengths = tf.placeholder(tf.int32, [None])
        outputs, _ = tf.nn.dynamic_rnn(Cell(), inputs, sequence_length=lengths, dtype=tf.float32)
        with tf.Session(graph=graph) as session:
            session.run(tf.global_variables_initializer())
            result = session.run(outputs, {inputs: np.ones((2, 4, 3), np.float32), lengths: [4, 2]})
        assert result.shape == (2, 4, 4) and not result[1, 2:].any() and result[1, :2].any()
        if int(importlib.metadata.version("keras").split(".")[0]) >= 3:  # the keras package's own GRUCell
            import keras

            with pytest.raises(TypeError, match="get_initial_state\\(\\) got an unexpected keyword argument 'inputs'"):
                tf.nn.dynamic_rnn(keras.layers.GRUCell(4), inputs, sequence_length=lengths, dtype=tf.float32)


def test_pickling_a_predictor_says_what_to_do_instead(default_predictor):
    with pytest.raises(TypeError, match="load it there with Predictor.load"):
        pickle.dumps(default_predictor)


def test_a_predictors_info_and_featurizer_pickle_without_its_graph(default_predictor):
    """The metadata holds no graph or session: it pickles (a PicklingError named a cache), and the
    featurizer it brings back encodes as the loaded one does."""
    info = pickle.loads(pickle.dumps(default_predictor.info))
    assert info.manifest == default_predictor.info.manifest and info.path == default_predictor.info.path
    texts = ["hello there", "when do you open on sundays?", "ünïcödé and 😀"]
    expected, got = default_predictor.info.featurizer.encode(texts), info.featurizer.encode(texts)
    for name in ("ids", "weights", "lengths"):
        assert np.array_equal(getattr(expected, name), getattr(got, name)), name


def test_export_and_load_round_trip_instead_of_pickle(tiny_trained, tiny_intents, tmp_path):
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.predictor import Predictor

    texts, _ = tiny_intents.examples()
    path = export_artifact(tiny_trained, tiny_intents, tmp_path / "m", plot=False)
    assert not [p for p in path.rglob("*") if p.suffix in (".pkl", ".pickle")]
    predictor = Predictor.load(path)
    try:
        from compat.classifier.trainer import ClassifierTrainer

        with ClassifierTrainer(tiny_trained.spec, _optimizer(), seed=0) as trainer:
            trainer.set_weights(tiny_trained.weights)
            features = tiny_trained.featurizer.encode(texts)
            expected = trainer.predict_proba(features.ids, features.weights)
        np.testing.assert_allclose(predictor.predict_proba(texts), expected, atol=1e-6)
    finally:
        predictor.close()


def _optimizer():
    from compat.classifier.trainer import OptimizerSpec

    return OptimizerSpec()


def test_running_without_initialising_raises_but_our_loader_restores(tiny_model_dir):
    from compat.classifier.saved_model import LoadedClassifier

    with GraphSession() as gs:
        with gs.bound():
            v = tf.get_variable("v", [1], initializer=tf.zeros_initializer())
            # the README's quote, on every release (compat mode makes reference variables)
            with pytest.raises(tf.errors.FailedPreconditionError, match="Attempting to use uninitialized value v"):
                gs.run(v)

    classifier = LoadedClassifier(str(tiny_model_dir / "saved_model"))
    try:
        out = classifier.predict_proba(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.float32))
        np.testing.assert_allclose(out.sum(), 1.0, rtol=1e-5)
    finally:
        classifier.close()


def test_a_saved_model_refused_after_its_restore_frees_its_session(tiny_model_dir, monkeypatch):
    """A SavedModel that restores but then fails a check (here: no kernel where the signature's
    network should have one) is refused clearly and its session is closed, not leaked."""
    from compat.classifier import saved_model
    from compat.interface import SavedModelError

    closed = []
    real_close = GraphSession.close
    monkeypatch.setattr(GraphSession, "close", lambda self: (closed.append(self), real_close(self))[1])

    def no_kernel(gs):
        gs.tensor("classifier/nowhere:0")  # KeyError, as a graph without the kernel gives

    monkeypatch.setattr(saved_model, "_input_width", no_kernel)
    with pytest.raises(SavedModelError, match="not a usable classifier SavedModel"):
        saved_model.LoadedClassifier(str(tiny_model_dir / "saved_model"))
    assert len(closed) == 1


def test_a_saved_model_with_truncated_variables_names_the_cause(tiny_model_dir, tmp_path):
    # Loaded directly (no manifest checksums in front): TensorFlow's message begins with
    # "Graph execution error:" and the node; the refusal states the cause instead.
    import shutil

    from compat.classifier.saved_model import LoadedClassifier
    from compat.interface import SavedModelError, first_line

    saved_model = tmp_path / "saved_model"
    shutil.copytree(tiny_model_dir / "saved_model", saved_model)
    data = next((saved_model / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:64])
    with pytest.raises(SavedModelError) as refused:
        LoadedClassifier(str(saved_model))
    assert "Read less bytes than requested" in str(refused.value)
    assert "Graph execution error" not in str(refused.value)
    assert first_line(ValueError("\n\nNode: 'x'\n  useful part\nmore")) == "useful part"
    assert first_line(ValueError("Graph execution error:")) == "Graph execution error:"
    # a graph built in this process: where the node was defined, a Python stack, comes first
    built_here = 'Graph execution error:\n\nDetected at node x defined at:\n  File "a.py", line 1, in <m>\nNode: x\ncause'
    assert first_line(ValueError(built_here)) == "cause"
    with_source = built_here.replace("<m>\n", "<m>\n      raise SystemExit(main())\n")  # as TensorFlow 2.12 says it
    assert first_line(ValueError(with_source)) == "cause"
    assert first_line(ValueError("")) == "ValueError"


def _saved_model_with_a_variable_in_no_collection(path):
    """A SavedModel whose graph holds ``hidden_bias``, a variable in no collection: its saver
    neither saves nor restores it, and ``tf.report_uninitialized_variables()`` does not see it."""
    with GraphSession() as gs:
        with gs.bound():
            x = tf.placeholder(tf.float32, [None, 2], name="x")
            kept = tf.get_variable("kept", [2], initializer=tf.ones_initializer())
            hidden = tf.Variable(tf.zeros([2]), name="hidden_bias", collections=[])
            y = tf.identity(x * kept + hidden, name="y")
            gs.run(tf.global_variables_initializer())
            gs.run(hidden.initializer)
            signature = tf.saved_model.signature_def_utils.predict_signature_def(inputs={"x": x}, outputs={"y": y})
            builder = tf.saved_model.builder.SavedModelBuilder(str(path))
            builder.add_meta_graph_and_variables(gs.session, ["serve"], signature_def_map={"serving_default": signature})
            builder.save()
    return path


def test_a_variable_outside_the_collections_left_uninitialised_is_found():
    with GraphSession() as gs:
        with gs.bound():
            tf.get_variable("listed", [1], initializer=tf.zeros_initializer())
            tf.Variable(tf.zeros([1]), name="unlisted_ref", collections=[], use_resource=False)
            tf.Variable(tf.zeros([1]), name="unlisted_resource", collections=[], use_resource=True)
            gs.run(tf.global_variables_initializer())
            assert not len(gs.run(tf.report_uninitialized_variables()))  # what the loaders used to ask
        assert sorted(gs.uninitialized_variables()) == ["unlisted_ref", "unlisted_resource"]


def test_loaders_refuse_a_saved_model_with_a_variable_its_restore_leaves_empty(tmp_path):
    """Accepted before, such a model failed every prediction with FailedPreconditionError."""
    from compat.classifier.saved_model import LoadedClassifier
    from compat.interface import SavedModelError
    from compat.responder.saved_model import LoadedResponder

    path = _saved_model_with_a_variable_in_no_collection(tmp_path / "saved_model")
    for loader in (LoadedClassifier, LoadedResponder):
        with pytest.raises(SavedModelError, match="variables left uninitialised after restore: hidden_bias"):
            loader(str(path))


# ``fork()`` after TensorFlow started: each case runs in a fresh process, which forks children.
FORKED = "ForkedProcessError: this process ("


def test_a_session_run_before_fork_hangs_in_the_child():
    """The classic failure (multiprocessing's fork, Celery's prefork, gunicorn's preload_app):
    TensorFlow's thread pools are not copied into the child, whose first run waits forever,
    with the parent's session and with a session of its own alike."""
    result = run_snippet(
        FORK_PROBE + "import json\n"
        "import tensorflow.compat.v1 as tf\n"
        "tf.disable_v2_behavior()\n"
        "graph = tf.Graph()\n"
        "with graph.as_default():\n"
        "    value = tf.constant(1.0) + 1.0\n"
        "session = tf.Session(graph=graph)\n"
        "parent = float(session.run(value))\n"
        "inherited = in_child(lambda: session.run(value), seconds=3)\n"
        "own = in_child(lambda: tf.Session(graph=graph).run(value), seconds=3)\n"
        "print(json.dumps({'parent': parent, 'inherited': inherited, 'own': own, 'after': float(session.run(value))}))\n"
    )
    out = json_out(result)
    assert out == {"parent": 2.0, "inherited": "hung", "own": "hung", "after": 2.0}


def test_models_loaded_before_fork_refuse_the_child_at_once_and_the_parent_goes_on():
    result = run_snippet(
        FORK_PROBE + "import json\n"
        "from legacy_assistant.classifier.predictor import Predictor\n"
        "from legacy_assistant.responder.responder import Responder\n"
        f"p = Predictor.load({str(DEFAULT_MODEL)!r})\n"
        f"r = Responder.load({str(DEFAULT_RESPONDER)!r})\n"
        "before = (p.rank_one('hello there'), r.respond(['hello'], mode='greedy'))\n"
        "out = {\n"
        "    'rank': in_child(lambda: p.rank_one('hello there')),\n"
        "    'respond': in_child(lambda: r.respond(['hello'], mode='greedy')),\n"
        "    'beam': in_child(lambda: r.respond(['hello'], mode='beam')),\n"
        f"    'load': in_child(lambda: Predictor.load({str(DEFAULT_MODEL)!r})),\n"
        "    'close': in_child(lambda: (p.close(), r.close())),\n"
        "}\n"
        "out['parent_same'] = (p.rank_one('hello there'), r.respond(['hello'], mode='greedy')) == before\n"
        "print(json.dumps(out))\n"
    )
    out = json_out(result)
    for call in ("rank", "respond", "beam", "load"):
        assert out[call].startswith(FORKED), (call, out[call])
    assert "multiprocessing.get_context('spawn')" in out["rank"]
    assert out["close"] == "ok" and out["parent_same"] is True


def test_after_sessions_without_thread_pools_a_forked_child_runs_them_but_refuses_pools():
    """The server's setting (every op in the calling thread, one thread within an op) starts no
    pool: such sessions, the parent's and new ones, work in a child; a session with pools would
    hang there, and is refused."""
    result = run_snippet(
        FORK_PROBE + "import json\n"
        "from legacy_assistant.classifier.predictor import Predictor\n"
        "from legacy_assistant.responder.responder import Responder\n"
        f"MODEL, RESPONDER = {str(DEFAULT_MODEL)!r}, {str(DEFAULT_RESPONDER)!r}\n"
        "p, r = Predictor.load(MODEL, 1, -1), Responder.load(RESPONDER, 1, -1)\n"
        "expected = (p.rank_one('hello there', top=1), r.respond(['hello']))\n"
        "def same(got):\n"
        "    assert got == expected, got\n"
        "out = {\n"
        "    'inherited': in_child(lambda: same((p.rank_one('hello there', top=1), r.respond(['hello'])))),\n"
        "    'fresh': in_child(lambda: same((Predictor.load(MODEL, 1, -1).rank_one('hello there', top=1),\n"
        "                                    Responder.load(RESPONDER, 1, -1).respond(['hello'])))),\n"
        "    'pooled': in_child(lambda: Predictor.load(MODEL).rank_one('hi')),\n"
        "}\n"
        "Predictor.load(MODEL).rank_one('hi')  # pools start here: from now on a child cannot run at all\n"
        "out['after_pools'] = in_child(lambda: p.rank_one('hello there'))\n"
        "print(json.dumps(out))\n"
    )
    out = json_out(result)
    assert out["inherited"] == "ok" and out["fresh"] == "ok"
    assert out["pooled"].startswith(FORKED) and out["after_pools"].startswith(FORKED), out


def test_fork_before_loading_and_spawn_after_it_both_serve(golden, tmp_path):
    """The two ways out the error names: a child forked from a parent that imported everything
    but ran no model loads its own; a spawned pool works whatever the parent ran."""
    text = golden["cases"][0]["text"]
    script = tmp_path / "pools.py"  # a file: spawned children import their parent's main module
    script.write_text(
        FORK_PROBE + "import json, multiprocessing\n"
        "from legacy_assistant.classifier.predictor import Predictor\n"
        f"MODEL = {str(DEFAULT_MODEL)!r}\n"
        f"TEXT = {text!r}\n"
        "def fresh():\n"
        "    assert Predictor.load(MODEL).rank_one(TEXT, top=1)[0][0] == " + repr(golden["cases"][0]["intent"]) + "\n"
        "def pool_rank(text):\n"
        "    return Predictor.load(MODEL).rank_one(text, top=1)\n"
        "if __name__ == '__main__':\n"
        "    forked = in_child(fresh, seconds=60)\n"
        "    here = Predictor.load(MODEL).rank_one(TEXT, top=1)\n"
        "    with multiprocessing.get_context('spawn').Pool(1) as pool:\n"
        "        spawned = pool.map(pool_rank, [TEXT])[0]\n"
        "    print(json.dumps({'forked': forked, 'here': here, 'spawned': spawned}))\n"
    )
    out = json_out(run_python([str(script)], timeout=300))
    assert out["forked"] == "ok" and out["here"][0][0] == golden["cases"][0]["intent"]
    assert out["spawned"] == out["here"]
