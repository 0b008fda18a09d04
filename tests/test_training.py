import numpy as np
import pytest

from legacy_assistant.config import TrainingConfig, load_config
from legacy_assistant.errors import ConfigError, TrainingError
from legacy_assistant.training import split_validation, train


def test_same_seed_gives_bit_identical_weights(tiny_intents, tiny_config, tiny_trained):
    texts, tags = tiny_intents.examples()
    again = train(texts, tags, tiny_config)
    assert set(again.weights) == set(tiny_trained.weights)
    for name, value in tiny_trained.weights.items():
        assert np.array_equal(value, again.weights[name]), name
    assert again.history == [dict(row, seconds=again.history[i]["seconds"]) for i, row in enumerate(tiny_trained.history)]


def test_another_seed_gives_other_weights(tiny_intents, tiny_config, tiny_trained):
    texts, tags = tiny_intents.examples()
    other = train(texts, tags, tiny_config.with_overrides(seed=8, epochs=2))
    assert not np.array_equal(other.weights["classifier/hidden_0/kernel"], tiny_trained.weights["classifier/hidden_0/kernel"])


def test_classic_network_shape_and_learning(tiny_trained):
    weights = tiny_trained.weights
    n_features = tiny_trained.featurizer.n_features
    assert weights["classifier/hidden_0/kernel"].shape == (n_features, 128)
    assert weights["classifier/hidden_1/kernel"].shape == (128, 64)
    assert weights["classifier/output/kernel"].shape == (64, len(tiny_trained.classes))
    assert tiny_trained.history[-1]["loss"] < tiny_trained.history[0]["loss"]
    assert tiny_trained.summary["train_accuracy"] == 1.0
    assert tiny_trained.classes == sorted(tiny_trained.classes)


def test_validation_split_and_early_stopping(tiny_intents):
    texts, tags = tiny_intents.examples()
    config = TrainingConfig(epochs=300, batch_size=4, validation_split=0.25, early_stopping_patience=5, seed=3)
    model = train(texts, tags, config)
    assert "val_loss" in model.history[0] and "val_accuracy" in model.history[0]
    assert len(model.history) < 300
    assert model.summary["validation_examples"] > 0
    assert model.summary["best_epoch"] <= len(model.history)


def test_stratified_split_keeps_every_class_in_training():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    train_rows, val_rows = split_validation(labels, 0.5, seed=0)
    assert set(labels[train_rows]) == {0, 1, 2}
    assert sorted(np.concatenate([train_rows, val_rows]).tolist()) == list(range(7))
    assert len(val_rows) == 3  # 2 of class 0, 1 of class 1, none of the singleton class 2


def test_training_needs_two_intents():
    with pytest.raises(TrainingError, match="at least 2 intents"):
        train(["hi", "hello"], ["greeting", "greeting"], TrainingConfig(epochs=1))


def test_config_round_trip_and_errors(tmp_path):
    config = TrainingConfig(epochs=3, hidden_units=(32,), optimizer="adam")
    assert TrainingConfig.from_dict(config.to_dict()) == config
    bad = tmp_path / "c.json"
    bad.write_text('{"epochz": 3}')
    with pytest.raises(ConfigError, match="epochz"):
        load_config(bad)
    bad.write_text('{"epochs": 0}')
    with pytest.raises(ConfigError, match="epochs"):
        load_config(bad)
