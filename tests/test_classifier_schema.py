"""compat/classifier/schema.py is the one description of the network: the TF1 graph, the trainer,
the SavedModel, the manifest, training, the numpy reference and the TF2 port all follow it."""
import json

import numpy as np
import pytest

from compat.classifier.network import build_logits
from compat.classifier.reference import forward_numpy
from compat.classifier.saved_model import export_saved_model
from compat.classifier.schema import (
    IDS_KEY,
    LOGITS_KEY,
    NETWORK_OPTIONS,
    OUTPUT_KEY,
    SERVING_TAGS,
    SIGNATURE_NAME,
    WEIGHTS_KEY,
    NetworkSpec,
    UnsupportedNetwork,
)
from compat.classifier.trainer import ClassifierTrainer, OptimizerSpec
from compat.graph_session import GraphSession
from compat.runtime import tf
from legacy_assistant.classifier.config import TrainingConfig
from tests.subprocesses import run_snippet

# (hidden_units, linear_shortcut): no hidden layer, one, three, each with and without the shortcut
SHAPES = [((), False), ((6,), False), ((6,), True), ((5, 4, 3), False), ((5, 4, 3), True)]


def spec_of(hidden, shortcut, n_features=11, n_classes=4, dropout=0.5):
    return NetworkSpec(n_features, n_classes, hidden, dropout, linear_shortcut=shortcut)


def random_weights(spec, seed=0):
    rng = np.random.RandomState(seed)
    return {name: rng.randn(*shape).astype(np.float32) for name, shape in spec.variables().items()}


IDS = np.array([[2, 7, 0], [10, 0, 0], [0, 0, 0], [3, 3, 9]], np.int32)
VALUES = np.array([[1.0, 0.5, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.25, 1.5, 3.0]], np.float32)


@pytest.mark.parametrize("hidden, shortcut", SHAPES)
@pytest.mark.parametrize("batch_rows", [False, True], ids=["inference-form", "training-form"])
def test_trainer_holds_exactly_the_declared_variables(hidden, shortcut, batch_rows):
    spec = spec_of(hidden, shortcut)
    optimizer = OptimizerSpec("adam", 0.01, weight_decay=0.01)
    with ClassifierTrainer(spec, optimizer, seed=0, batch_rows=batch_rows) as trainer:
        weights = trainer.get_weights()
    assert {name: value.shape for name, value in weights.items()} == spec.variables()


@pytest.mark.parametrize("hidden, shortcut", SHAPES)
def test_numpy_reference_computes_what_build_logits_builds(hidden, shortcut):
    spec = spec_of(hidden, shortcut)
    weights = random_weights(spec, seed=len(hidden))
    with GraphSession() as gs, gs.bound():
        ids = tf.placeholder(tf.int32, [None, None])
        values = tf.placeholder(tf.float32, [None, None])
        logits = build_logits(ids, values, spec, dropout_rate=None, seed=0)
        variables = {v.name.split(":")[0]: v for v in tf.global_variables()}
        assert {name: tuple(v.shape.as_list()) for name, v in variables.items()} == spec.variables()
        gs.run(tf.global_variables_initializer())
        for name, variable in variables.items():
            variable.load(weights[name], gs.session)
        got = gs.run(logits, {ids: IDS, values: VALUES})
    expected, probabilities = forward_numpy(spec, weights, IDS, VALUES)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-6)


def test_saved_model_has_the_declared_signature_and_variables(tmp_path):
    spec = spec_of((6,), True)
    weights = random_weights(spec)
    export_saved_model(weights, spec, str(tmp_path / "sm"))
    stored = tf.train.load_checkpoint(str(tmp_path / "sm" / "variables" / "variables"))
    assert {name: tuple(shape) for name, shape in stored.get_variable_to_shape_map().items()} == spec.variables()
    for name, value in weights.items():
        np.testing.assert_array_equal(stored.get_tensor(name), value)
    with GraphSession() as gs, gs.bound():
        meta_graph = tf.saved_model.loader.load(gs.session, list(SERVING_TAGS), str(tmp_path / "sm"))
    signature = meta_graph.signature_def[SIGNATURE_NAME]
    assert set(signature.inputs) == {IDS_KEY, WEIGHTS_KEY}
    assert set(signature.outputs) == {OUTPUT_KEY, LOGITS_KEY}


@pytest.mark.parametrize("hidden, shortcut", SHAPES)
def test_manifest_network_round_trips(hidden, shortcut):
    spec = spec_of(hidden, shortcut, dropout=0.25)
    stored = json.loads(json.dumps(spec.to_dict()))
    assert list(stored) == ["n_features", "n_classes", "hidden_units", "dropout", "linear_shortcut"]
    assert stored["hidden_units"] == list(hidden)
    assert NetworkSpec.from_dict(stored) == spec
    assert NetworkSpec.from_dict(stored).variables() == spec.variables()


def test_exported_manifest_holds_the_trained_spec(tiny_trained, tiny_predictor):
    network = tiny_predictor.manifest["network"]
    assert network == tiny_trained.spec.to_dict()
    assert NetworkSpec.from_dict(network) == tiny_trained.spec
    assert NetworkSpec.from_dict(network).variables() == {k: v.shape for k, v in tiny_trained.weights.items()}


def test_training_takes_every_network_option_from_the_config():
    assert set(NETWORK_OPTIONS) == {"hidden_units", "dropout", "linear_shortcut"}
    config = TrainingConfig(hidden_units=(9, 3), dropout=0.25, linear_shortcut=True)
    spec = NetworkSpec.from_options(20, 5, config)
    assert (spec.n_features, spec.n_classes) == (20, 5)
    for option in NETWORK_OPTIONS:
        assert getattr(spec, option) == getattr(config, option), option
    assert spec != NetworkSpec.from_options(20, 5, TrainingConfig())


def test_bad_specs_are_refused_where_they_are_read():
    with pytest.raises(UnsupportedNetwork, match="dropout must be in"):
        NetworkSpec(4, 2, (3,), dropout=1.0)
    with pytest.raises(UnsupportedNetwork, match="assistant.json: network: bad value for hidden_units"):
        NetworkSpec.from_dict({"n_features": 4, "n_classes": 2, "hidden_units": ["wide"]}, "assistant.json: network")
    with pytest.raises(UnsupportedNetwork, match="expected an object"):
        NetworkSpec.from_dict([4, 2])


def test_tf2_port_builds_the_declared_network():
    """The TF2 module (its own process) takes the same variables and computes the numpy reference."""
    result = run_snippet(
        "import json, numpy as np\n"
        "from compat.classifier.reference import forward_numpy\n"
        "from compat.classifier.schema import NetworkSpec, UnsupportedNetwork\n"
        "from compat.tf2.network import SparseMLP\n"
        f"ids = np.array({IDS.tolist()}, np.int32)\n"
        f"values = np.array({VALUES.tolist()}, np.float32)\n"
        "deltas = []\n"
        f"for hidden, shortcut in {SHAPES!r}:\n"
        "    spec = NetworkSpec(11, 4, hidden, 0.5, linear_shortcut=shortcut)\n"
        "    rng = np.random.RandomState(1)\n"
        "    weights = {n: rng.randn(*s).astype(np.float32) for n, s in spec.variables().items()}\n"
        "    module = SparseMLP(spec, weights)\n"
        "    got = module.predict(ids, values)['logits'].numpy()\n"
        "    deltas.append(float(np.abs(got - forward_numpy(spec, weights, ids, values)[0]).max()))\n"
        "    try:\n"
        "        SparseMLP(spec, {**weights, 'classifier/extra/kernel': np.zeros(1)})\n"
        "        deltas.append(None)\n"
        "    except UnsupportedNetwork:\n"
        "        pass\n"
        "print(json.dumps(deltas))\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    deltas = json.loads(result.stdout)
    assert len(deltas) == len(SHAPES) and None not in deltas
    assert max(deltas) < 1e-4
