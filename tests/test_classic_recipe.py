"""The classic preset trains as the classic Keras chatbot recipe does, checked without Keras.

The recipe's optimizer is Keras SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True). Its
``decay`` lowers the rate of step t (0-based) to ``lr / (1 + decay * t)``, and Keras keeps the
momentum slot scaled by the rate of each step. Leaving the decay out looks harmless (the rate is
still 0.94 lr after 60,000 steps) but changes what long runs converge to: on CLINC150 full the
epoch loss turns upward after ~10 epochs without it, in Keras and here alike
(benchmarks/classic_fidelity.py). These tests pin the update rule on a toy problem in numpy.
"""

import numpy as np
import pytest

from compat.classifier.schema import NetworkSpec, bias_name, kernel_name
from compat.classifier.trainer import ClassifierTrainer, OptimizerSpec
from legacy_assistant.classifier.config import TrainingConfig
from legacy_assistant.classifier.presets import preset
from legacy_assistant.classifier.training import optimizer_spec
from legacy_assistant.errors import ConfigError

# A toy problem: 3 sentences over 7 features (sparse ids/weights, padding id 0 weight 0), 3 classes.
IDS = np.array([[0, 2, 0], [1, 3, 5], [4, 6, 0]], dtype=np.int32)
WEIGHTS = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 0]], dtype=np.float32)
LABELS = np.array([0, 1, 2], dtype=np.int32)
SPEC = NetworkSpec(7, 3, (5, 4), dropout=0.0)  # dropout off: the update must be deterministic
STEPS = 6


def dense_inputs() -> np.ndarray:
    x = np.zeros((len(IDS), SPEC.n_features))
    for row, (ids, weights) in enumerate(zip(IDS, WEIGHTS)):
        np.add.at(x[row], ids, weights)
    return x


def gradients(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gradients of the batch-mean softmax cross-entropy of the toy batch, float64."""
    names = SPEC.layer_names
    activations = [dense_inputs()]
    for name in names[:-1]:
        activations.append(np.maximum(activations[-1] @ params[kernel_name(name)] + params[bias_name(name)], 0.0))
    logits = activations[-1] @ params[kernel_name(names[-1])] + params[bias_name(names[-1])]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    delta = (p - np.eye(SPEC.n_classes)[LABELS]) / len(LABELS)
    grads = {}
    for index in range(len(names) - 1, -1, -1):
        name = names[index]
        grads[kernel_name(name)] = activations[index].T @ delta
        grads[bias_name(name)] = delta.sum(axis=0)
        if index:
            delta = (delta @ params[kernel_name(name)].T) * (activations[index] > 0)
    return grads


def keras_sgd(initial, lr, momentum, decay, steps, keras_slots=True):
    """Keras SGD (legacy optimizer_v2, nesterov=True) in numpy: slot v, step t from 0,
    lr_t = lr / (1 + decay t); v <- m v - lr_t g; w <- w + m v - lr_t g. With
    ``keras_slots=False``, tf.train.MomentumOptimizer's form at the same rates instead
    (a <- m a + g; w <- w - lr_t g - lr_t m a), which equals Keras's only at a constant rate."""
    params = {k: v.astype(np.float64) for k, v in initial.items()}
    slots = {k: np.zeros_like(v) for k, v in params.items()}
    for t in range(steps):
        rate = lr / (1.0 + decay * t)
        grads = gradients(params)
        for k in params:
            if keras_slots:
                slots[k] = momentum * slots[k] - rate * grads[k]
                params[k] = params[k] + momentum * slots[k] - rate * grads[k]
            else:
                slots[k] = momentum * slots[k] + grads[k]
                params[k] = params[k] - rate * grads[k] - rate * momentum * slots[k]
    return params


def trained(spec: OptimizerSpec) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Initial weights and the weights after STEPS training steps on the toy batch."""
    with ClassifierTrainer(SPEC, spec, seed=5) as trainer:
        initial = trainer.get_weights()
        for _ in range(STEPS):
            trainer.train_batch(IDS, WEIGHTS, LABELS)
        return initial, trainer.get_weights()


def largest_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert set(a) == set(b)
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def test_classic_preset_uses_keras_sgd_with_its_decay():
    spec = optimizer_spec(preset("classic"))
    assert (spec.name, spec.learning_rate, spec.momentum, spec.nesterov) == ("sgd", 0.01, 0.9, True)
    assert spec.decay == 1e-6
    assert (spec.label_smoothing, spec.weight_decay, spec.sparse_updates) == (0.0, 0.0, False)
    assert optimizer_spec(preset("ngrams")).decay == 0.0  # Adam with its own schedule


def test_training_step_is_keras_sgd_with_time_decay():
    # A decay this large shows within a few steps what 1e-6 does over hundreds of thousands.
    lr, momentum, decay = 0.5, 0.9, 0.3
    initial, after = trained(OptimizerSpec(learning_rate=lr, momentum=momentum, nesterov=True, decay=decay))
    expected = keras_sgd(initial, lr, momentum, decay, STEPS)
    assert largest_difference(after, expected) < 2e-6
    # the test tells the candidates apart: no decay, and the decayed rate with TF's slot form
    assert largest_difference(after, keras_sgd(initial, lr, momentum, 0.0, STEPS)) > 1e-3
    assert largest_difference(after, keras_sgd(initial, lr, momentum, decay, STEPS, keras_slots=False)) > 1e-3


def test_without_decay_the_momentum_optimizer_is_the_same_update():
    lr, momentum = 0.5, 0.9
    initial, after = trained(OptimizerSpec(learning_rate=lr, momentum=momentum, nesterov=True))
    assert largest_difference(after, keras_sgd(initial, lr, momentum, 0.0, STEPS)) < 2e-6


def test_classic_network_starts_glorot_uniform_with_zero_biases():
    spec = NetworkSpec(400, 30)  # the classic widths, 128 and 64
    with ClassifierTrainer(spec, optimizer_spec(preset("classic")), seed=1) as trainer:
        weights = trainer.get_weights()
    widths = [spec.n_features, *spec.hidden_units, spec.n_classes]
    for name, fan_in, fan_out in zip(spec.layer_names, widths[:-1], widths[1:]):
        kernel = weights[kernel_name(name)]
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(kernel).max() <= limit
        # uniform on [-limit, limit]: standard deviation limit / sqrt(3)
        assert kernel.std() == pytest.approx(limit / np.sqrt(3.0), rel=0.05), name
        assert not weights[bias_name(name)].any(), name


def test_decay_settings_are_checked():
    with pytest.raises(ValueError, match="needs optimizer 'sgd'"):
        OptimizerSpec(name="adam", decay=1e-6)
    with pytest.raises(ValueError, match="decay must be >= 0"):
        OptimizerSpec(decay=-1.0)
    with pytest.raises(ConfigError, match="lr_decay must be >= 0"):
        TrainingConfig(lr_decay=-1e-6)
    with pytest.raises(ConfigError, match="needs dense updates"):
        TrainingConfig(sparse_updates=True)
    assert TrainingConfig(sparse_updates=True, lr_decay=0.0).sparse_updates
