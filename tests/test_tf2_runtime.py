"""The TF2-native port: same architecture as build_logits, its own process, clear refusals."""
import sys

import numpy as np
import pytest

from compat import selection
from compat.classifier.network import build_logits
from compat.classifier.reference import forward_numpy
from compat.classifier.schema import NetworkSpec, UnsupportedNetwork
from compat.graph_session import GraphSession
from compat.runtime import tf
from tests.subprocesses import run_snippet


@pytest.mark.parametrize("hidden, shortcut", [((5, 4), False), ((6,), False), ((), False), ((6,), True)])
def test_layout_names_exactly_the_variables_build_logits_creates(hidden, shortcut):
    spec = NetworkSpec(7, 3, hidden, 0.5, linear_shortcut=shortcut)
    with GraphSession() as gs, gs.bound():
        ids = tf.placeholder(tf.int32, [None, None])
        weights = tf.placeholder(tf.float32, [None, None])
        build_logits(ids, weights, spec, dropout_rate=None, seed=0)
        built = {v.name.split(":")[0]: tuple(v.shape.as_list()) for v in tf.global_variables()}
    stored = NetworkSpec.from_dict(
        {"n_features": 7, "n_classes": 3, "hidden_units": list(hidden), "dropout": 0.5, "linear_shortcut": shortcut}
    )
    assert stored.variables() == built


def test_numpy_reference_matches_the_compat_network(tiny_predictor, tiny_trained):
    texts = ["hi there", "green tea please", "nothing known", ""]
    features = tiny_trained.featurizer.encode(texts)
    spec = NetworkSpec.from_dict(tiny_predictor.manifest["network"])
    _, expected = forward_numpy(spec, tiny_trained.weights, features.ids, features.weights)
    np.testing.assert_allclose(tiny_predictor.predict_proba(texts), expected, atol=1e-6)


def test_unknown_network_options_are_refused_by_name():
    base = {"n_features": 4, "n_classes": 2, "hidden_units": [3], "dropout": 0.5}
    with pytest.raises(UnsupportedNetwork, match="'activation'.*not understood"):
        NetworkSpec.from_dict({**base, "activation": "gelu"})
    with pytest.raises(UnsupportedNetwork, match="missing hidden_units"):
        NetworkSpec.from_dict({"n_features": 4, "n_classes": 2})
    with pytest.raises(UnsupportedNetwork, match="n_classes at least 2"):
        NetworkSpec.from_dict({**base, "n_classes": 1})
    with pytest.raises(UnsupportedNetwork, match="linear_shortcut must be true or false"):
        NetworkSpec.from_dict({**base, "linear_shortcut": "yes"})
    with pytest.raises(UnsupportedNetwork, match="linear_shortcut needs at least one hidden layer"):
        NetworkSpec.from_dict({**base, "hidden_units": [], "linear_shortcut": True})
    assert NetworkSpec.from_dict(base).linear_shortcut is False  # models written before the option


def test_weights_must_match_the_layout():
    spec = NetworkSpec(4, 2, (3,))
    good = {name: np.zeros(shape, np.float32) for name, shape in spec.variables().items()}
    spec.check_weights(good)
    with pytest.raises(UnsupportedNetwork, match="unexpected \\['classifier/norm/gamma'\\]"):
        spec.check_weights({**good, "classifier/norm/gamma": np.ones(3)})
    with pytest.raises(UnsupportedNetwork, match="shape \\(4, 5\\)"):
        spec.check_weights({**good, "classifier/hidden_0/kernel": np.zeros((4, 5))})


def test_this_process_is_compat_and_refuses_the_tf2_runtime():
    assert selection.active() == "compat"
    with pytest.raises(selection.RuntimeConflict, match="already runs TensorFlow runtime 'compat'"):
        import compat.tf2.runtime  # noqa: F401
    with pytest.raises(selection.RuntimeConflict):
        selection.select("tf2")
    assert "compat.tf2.runtime" not in sys.modules


# a snippet's import of the compat runtime, printing its refusal
IMPORT_COMPAT = (
    "from compat import selection\n"
    "try:\n    import compat.runtime\nexcept selection.RuntimeConflict as exc:\n    print('refused:', exc)\n"
)


@pytest.mark.parametrize("ran", ["", "runtime.tf.constant(1.0).numpy()\n"], ids=["imported", "ran"])
def test_compat_runtime_refuses_a_tf2_process(ran):
    """Also one that ran its runtime (a loaded model runs eagerly): it was told that TensorFlow
    had run eagerly in it, as if code of its own had, not that it runs the other runtime."""
    result = run_snippet("import compat.tf2.runtime as runtime\n" + ran + IMPORT_COMPAT)
    assert result.returncode == 0, result.stderr
    assert "refused: this process already runs TensorFlow runtime 'tf2'" in result.stdout


def test_compat_runtime_refuses_a_process_that_ran_tensorflow_eagerly():
    """A program that ran TF2 code, then loaded a model, had eager execution switched off under
    it: its next eager call failed ('SymbolicTensor' object has no attribute 'numpy')."""
    result = run_snippet(
        "import tensorflow as tf\n"
        "before = float(tf.reduce_sum(tf.constant([1.0, 2.0])).numpy())\n"
        + IMPORT_COMPAT +
        "print('after:', tf.executing_eagerly(), before, float(tf.constant(2.0).numpy()), selection.active())\n"
    )
    assert result.returncode == 0, result.stderr
    assert "refused: TensorFlow already ran eagerly in this process" in result.stdout
    assert "runtime='tf2'" in result.stdout
    assert "after: True 3.0 2.0 None" in result.stdout  # its eager code goes on; tf2 can still load


def test_compat_runtime_starts_where_tensorflow_was_only_imported():
    result = run_snippet(
        "import tensorflow as tf\n"
        "import compat.runtime\n"
        "print('eager:', tf.executing_eagerly())\n"
    )
    assert result.returncode == 0, result.stderr
    assert "eager: False" in result.stdout


def test_a_selected_runtime_is_not_quietly_replaced_by_the_other():
    result = run_snippet(
        "from compat import selection\n"
        "selection.select('tf2')\n"
        + IMPORT_COMPAT +
        "print('active:', selection.active(), 'selected:', selection.selected())\n"
    )
    assert result.returncode == 0, result.stderr
    assert "refused: runtime 'tf2' was selected for this process" in result.stdout
    assert "active: None selected: tf2" in result.stdout


def test_cli_web_and_serving_modules_import_no_tensorflow():
    """Either runtime can still be chosen after the CLI parsed its arguments or the app was imported."""
    result = run_snippet(
        "import sys\n"
        "import legacy_assistant.cli, legacy_assistant.web, legacy_assistant.classifier.predictor, legacy_assistant.classifier.golden\n"
        "import legacy_assistant.classifier.migration, legacy_assistant.classifier.classic.importer, compat.selection\n"
        "import compat.classifier.schema, compat.classifier.reference, legacy_assistant.classifier.artifact\n"
        "legacy_assistant.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow' or m in ('compat.runtime', 'compat.tf2.runtime')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
