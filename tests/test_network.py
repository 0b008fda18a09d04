"""The network takes sparse input; it must compute exactly what the dense network would."""
import numpy as np
import pytest

from compat.graph_session import GraphSession
from compat.layers import dense, sparse_dense
from compat.runtime import tf
from legacy_assistant.classifier.features import FeatureConfig, Featurizer


def dense_input(ids: np.ndarray, weights: np.ndarray, n_features: int) -> np.ndarray:
    """The dense float32 ``[batch, n_features]`` matrix that sparse ``ids``/``weights`` stand for
    (repeated ids add up, as in the network)."""
    x = np.zeros((len(ids), n_features), np.float32)
    for r in range(len(ids)):
        for j in range(ids.shape[1]):
            x[r, ids[r, j]] += weights[r, j]
    return x


@pytest.mark.parametrize("batch_rows", [False, True], ids=["inference-form", "training-form"])
def test_sparse_dense_equals_dense_matmul(batch_rows):
    """Both forms of the sparse layer give the dense layer's output and kernel gradient, with
    ids shared between rows, a real id 0 beside padding, and an empty row."""
    rng = np.random.RandomState(0)
    n_features, units = 50, 7
    ids = np.array([[3, 9, 0], [1, 0, 0], [0, 0, 0], [9, 0, 3]], np.int32)
    weights = np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.25, 1.5, 3.0]], np.float32)
    x = dense_input(ids, weights, n_features)
    with GraphSession() as gs, gs.bound():
        ids_in = tf.placeholder(tf.int32, [None, None])
        w_in = tf.placeholder(tf.float32, [None, None])
        x_in = tf.placeholder(tf.float32, [None, n_features])
        with tf.variable_scope("s"):
            sparse_out = sparse_dense(ids_in, w_in, n_features, units, "layer", seed=1, batch_rows=batch_rows)
        with tf.variable_scope("d"):
            dense_out = dense(x_in, units, "layer", seed=1)
        kernels = {scope: [v for v in tf.global_variables() if v.name == f"{scope}/layer/kernel:0"][0]
                   for scope in ("s", "d")}
        upstream = tf.constant(rng.randn(len(ids), units).astype(np.float32))
        gradients = [tf.convert_to_tensor(tf.gradients(tf.reduce_sum(out * upstream), kernels[scope])[0])
                     for out, scope in ((sparse_out, "s"), (dense_out, "d"))]
        gs.run(tf.global_variables_initializer())
        kernel = rng.randn(n_features, units).astype(np.float32)
        for var in kernels.values():
            var.load(kernel, gs.session)
        got_sparse, got_dense, grad_sparse, grad_dense = gs.run(
            [sparse_out, dense_out, *gradients], {ids_in: ids, w_in: weights, x_in: x}
        )
    np.testing.assert_allclose(got_sparse, got_dense, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got_sparse[2], 0.0)  # an empty row gives the bias (zero) only
    np.testing.assert_allclose(grad_sparse, grad_dense, rtol=1e-6, atol=1e-6)
    assert np.abs(grad_dense).sum() > 0


def test_predictor_matches_a_numpy_dense_forward_pass(tiny_predictor, tiny_trained, tiny_intents):
    texts = list(tiny_intents.examples()[0]) + ["nothing known here", "green green tea tea"]
    x = tiny_trained.featurizer.transform(texts)
    w = tiny_trained.weights
    h = np.maximum(x @ w["classifier/hidden_0/kernel"] + w["classifier/hidden_0/bias"], 0)
    h = np.maximum(h @ w["classifier/hidden_1/kernel"] + w["classifier/hidden_1/bias"], 0)
    logits = h @ w["classifier/output/kernel"] + w["classifier/output/bias"]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(tiny_predictor.predict_proba(texts), expected, atol=1e-5)


def test_encode_and_transform_agree_and_rows_trim():
    config = FeatureConfig(word_ngrams=(1, 2), weighting="tfidf", normalize=True)
    texts = ["order a coffee", "coffee coffee coffee please", "", "a b c d e f g"]
    featurizer = Featurizer.fit(texts, config)
    encoded = featurizer.encode(texts)
    assert encoded.ids.dtype == np.int32 and encoded.weights.dtype == np.float32
    assert encoded.lengths.tolist() == [int((row != 0).sum()) for row in featurizer.transform(texts)]
    np.testing.assert_allclose(encoded.to_dense(featurizer.n_features), featurizer.transform(texts))
    short = encoded.take(np.array([0, 2]))
    assert short.ids.shape[1] == encoded.lengths[0] < encoded.ids.shape[1]
    for row, length in zip(encoded.ids, encoded.lengths):
        assert list(row[:length]) == sorted(row[:length])


def test_out_of_range_ids_are_refused(tiny_predictor):
    classifier = tiny_predictor._classifier
    with pytest.raises(ValueError, match="feature ids"):
        classifier.predict_proba(np.array([[classifier.n_features]], np.int32), np.ones((1, 1), np.float32))


def test_sparse_updates_option_trains(tiny_intents):
    from legacy_assistant.classifier.config import TrainingConfig
    from legacy_assistant.classifier.training import train

    texts, tags = tiny_intents.examples()
    config = TrainingConfig(epochs=40, batch_size=4, optimizer="adam", learning_rate=0.01, sparse_updates=True)
    model = train(texts, tags, config)
    assert model.summary["train_accuracy"] == 1.0


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_learning_rate_fed_per_step(optimizer):
    from compat.classifier.schema import NetworkSpec
    from compat.classifier.trainer import ClassifierTrainer, OptimizerSpec

    ids = np.array([[1, 2], [3, 0]], np.int32)
    weights = np.array([[1.0, 1.0], [1.0, 0.0]], np.float32)
    y = np.array([0, 1], np.int32)
    with ClassifierTrainer(NetworkSpec(5, 2, (4,), 0.0), OptimizerSpec(optimizer, 0.1), seed=0) as trainer:
        before = trainer.get_weights()
        trainer.train_batch(ids, weights, y, learning_rate=0.0)
        for name, value in trainer.get_weights().items():
            np.testing.assert_array_equal(value, before[name])
        trainer.train_batch(ids, weights, y)  # the spec's rate
        assert not np.array_equal(trainer.get_weights()["classifier/output/kernel"], before["classifier/output/kernel"])


@pytest.mark.parametrize("batch_rows", [False, True], ids=["inference-form", "training-form"])
def test_linear_shortcut_adds_a_linear_map_of_the_input_to_the_logits(batch_rows):
    """logits = output(relu(hidden(x))) + x @ shortcut, in both forms of the sparse product,
    with the shortcut kernel's gradient that of the dense expression."""
    from compat.classifier.network import build_logits
    from compat.classifier.schema import NetworkSpec

    rng = np.random.RandomState(3)
    spec = NetworkSpec(n_features=12, n_classes=4, hidden_units=(5,), dropout=0.5, linear_shortcut=True)
    ids = np.array([[2, 7, 0], [11, 0, 0], [0, 0, 0]], np.int32)
    values = np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    x = dense_input(ids, values, spec.n_features)
    with GraphSession() as gs, gs.bound():
        ids_in = tf.placeholder(tf.int32, [None, None])
        values_in = tf.placeholder(tf.float32, [None, None])
        logits = build_logits(ids_in, values_in, spec, dropout_rate=None, seed=0, batch_rows=batch_rows)
        variables = {v.name.split(":")[0]: v for v in tf.global_variables()}
        assert variables["classifier/shortcut/kernel"].shape.as_list() == [12, 4]
        assert "classifier/shortcut/bias" not in variables  # the output layer's bias serves
        upstream = rng.randn(len(ids), spec.n_classes).astype(np.float32)
        gradient = tf.convert_to_tensor(
            tf.gradients(tf.reduce_sum(logits * upstream), variables["classifier/shortcut/kernel"])[0]
        )
        gs.run(tf.global_variables_initializer())
        for var in variables.values():  # non-zero biases so that a missing term would show
            var.load(rng.randn(*var.shape.as_list()).astype(np.float32), gs.session)
        got, got_gradient = gs.run([logits, gradient], {ids_in: ids, values_in: values})
        w = {name: gs.run(var) for name, var in variables.items()}
    hidden = np.maximum(x @ w["classifier/hidden_0/kernel"] + w["classifier/hidden_0/bias"], 0)
    expected = hidden @ w["classifier/output/kernel"] + w["classifier/output/bias"] + x @ w["classifier/shortcut/kernel"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_gradient, x.T @ upstream, rtol=1e-5, atol=1e-5)


def test_trained_shortcut_model_serves_what_numpy_computes(tiny_intents, tmp_path):
    """Train, export and load a model with the shortcut; the served probabilities are a numpy
    dense forward pass of its weights (the shortcut included) and of the numpy reference."""
    from compat.classifier.reference import forward_numpy
    from compat.classifier.schema import NetworkSpec
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.config import TrainingConfig
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.classifier.training import train

    texts, tags = tiny_intents.examples()
    config = TrainingConfig(epochs=30, batch_size=4, hidden_units=(16,), optimizer="adam", learning_rate=0.01,
                            linear_shortcut=True, batch_rows=True, seed=5)
    trained = train(texts, tags, config)
    assert np.abs(trained.weights["classifier/shortcut/kernel"]).sum() > 0
    predictor = Predictor.load(export_artifact(trained, tiny_intents, tmp_path / "m", plot=False))
    try:
        assert predictor.manifest["network"]["linear_shortcut"] is True
        probe = list(texts) + ["nothing known here", "green green tea tea"]
        got = predictor.predict_proba(probe)
    finally:
        predictor.close()
    x = trained.featurizer.transform(probe)
    w = trained.weights
    hidden = np.maximum(x @ w["classifier/hidden_0/kernel"] + w["classifier/hidden_0/bias"], 0)
    logits = hidden @ w["classifier/output/kernel"] + w["classifier/output/bias"] + x @ w["classifier/shortcut/kernel"]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    features = trained.featurizer.encode(probe)
    spec = NetworkSpec.from_dict(predictor.manifest["network"])
    _, reference = forward_numpy(spec, w, features.ids, features.weights)
    np.testing.assert_allclose(got, reference, atol=1e-5)


@pytest.mark.parametrize("shape", [[None, None], None], ids=["unknown-width", "unknown-rank"])
def test_dense_refuses_an_input_of_unknown_width_with_its_value_error(shape):
    with GraphSession() as gs, gs.bound():
        inputs = tf.placeholder(tf.float32, shape)
        with pytest.raises(ValueError, match="input width must be known"):
            dense(inputs, 4, "layer", activation=None, seed=1)


def test_a_signature_with_swapped_inputs_is_refused_at_load(tmp_path):
    """Swapped, the float weights would be cast to int32 ids and the model would answer wrong
    without a word."""
    from compat.classifier.saved_model import LoadedClassifier
    from compat.classifier.schema import IDS_KEY, OUTPUT_KEY, SERVING_TAGS, SIGNATURE_NAME, WEIGHTS_KEY
    from compat.interface import SavedModelError

    export = tmp_path / "swapped"
    with GraphSession() as gs, gs.bound():
        ids = tf.placeholder(tf.int32, [None, None])
        weights = tf.placeholder(tf.float32, [None, None])
        table = tf.Variable(np.ones((5, 3), np.float32))
        probabilities = tf.nn.softmax(tf.reduce_sum(tf.gather(table, ids) * weights[..., None], axis=1))
        gs.run(tf.global_variables_initializer())
        signature = tf.saved_model.signature_def_utils.predict_signature_def(
            inputs={IDS_KEY: weights, WEIGHTS_KEY: ids}, outputs={OUTPUT_KEY: probabilities}
        )
        builder = tf.saved_model.builder.SavedModelBuilder(str(export))
        builder.add_meta_graph_and_variables(gs.session, list(SERVING_TAGS), signature_def_map={SIGNATURE_NAME: signature})
        builder.save()
    with pytest.raises(SavedModelError, match=f"signature's '{IDS_KEY}' is float32"):
        LoadedClassifier(str(export), 1, 1)
