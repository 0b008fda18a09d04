"""A training config file with a setting of the wrong shape: one line naming the file and the
setting's path, never Python's own words for what went wrong inside."""
import json

import pytest

from legacy_assistant.classifier.config import TrainingConfig, load_config, merge_settings
from legacy_assistant.classifier.features import FeatureConfig
from legacy_assistant.classifier.presets import PRESETS
from legacy_assistant.errors import ConfigError
from legacy_assistant.text.processing import TextConfig

SPAN = "must be a list of two whole numbers [min, max]"


def _refusal(tmp_path, settings):
    """(the settings file written, load_config's error message for it)."""
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(settings))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return path, str(caught.value)


@pytest.mark.parametrize("settings, message", [
    ({"features": "abc"}, "features must be an object of feature settings, got \"abc\""),
    ({"features": None}, "features must be an object of feature settings, got null"),
    ({"features": 5}, "features must be an object of feature settings, got 5"),
    ({"features": {"word_ngrams": 5}}, f"features.word_ngrams {SPAN}, got 5"),
    ({"features": {"char_ngrams": 3}}, f"features.char_ngrams {SPAN}, got 3"),
    ({"features": {"word_ngrams": "12"}}, f"features.word_ngrams {SPAN}, got \"12\""),
    ({"features": {"word_ngrams": {"a": 1}}}, f"features.word_ngrams {SPAN}, got {{\"a\": 1}}"),
    ({"features": {"text": "x"}}, "features.text must be an object of text settings, got \"x\""),
    ({"features": {"text": None}}, "features.text must be an object of text settings, got null"),
    ({"features": {"text": {"bogus": 1}}}, "features.text: unknown setting 'bogus'"),
    ({"features": {"bogus": 1, "other": 2}}, "features: unknown settings 'bogus', 'other'"),
    ({"features": {"text": {"stemmer": 3}}}, "features.text.stemmer must be a string, got 3"),
    ({"features": {"min_count": 0}}, "features.min_count must be at least 1, got 0"),
])
def test_a_misshapen_feature_setting_is_one_line_naming_file_and_path(tmp_path, settings, message):
    path, error = _refusal(tmp_path, settings)
    assert error == f"{path}: {message}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_valid_settings_read_as_before(name):
    config = PRESETS[name]
    assert TrainingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert merge_settings(TrainingConfig(), config.to_dict()) == config
    merged = merge_settings(config, {"features": {"char_ngrams": None, "word_ngrams": [1, 2], "text": {}}})
    assert merged.features.char_ngrams is None and merged.features.word_ngrams == (1, 2)
    assert merged.features.text == config.features.text


def test_settings_objects_refuse_other_values_by_path():
    with pytest.raises(ConfigError, match=r"^features.word_ngrams must be \(min_n, max_n\)"):
        FeatureConfig.from_dict({"word_ngrams": [2, 1]})
    with pytest.raises(ConfigError, match="^training settings must be an object, got \\[1\\]$"):
        TrainingConfig.from_dict([1])
    assert FeatureConfig.from_dict({"word_ngrams": (1, 2)}).word_ngrams == (1, 2)
    assert FeatureConfig.from_dict({}) == FeatureConfig()


def test_text_settings_name_their_path_and_stay_a_type_error_for_old_callers():
    with pytest.raises(ConfigError, match=r"^features\.text: unknown setting 'colour'$"):
        TextConfig.from_dict({"colour": "blue"}, "features.text")
    # the responder's vocabulary reader catches TypeError, what TextConfig(**data) raised for it
    with pytest.raises(TypeError, match="^unknown text setting 'colour'$"):
        TextConfig.from_dict({"colour": "blue"})
    with pytest.raises(TypeError, match="^text must be an object of text settings, got \"x\"$"):
        TextConfig.from_dict("x")
    with pytest.raises(ConfigError, match="^stemmer must be one of"):
        TextConfig.from_dict({"stemmer": "wordnet"})
    assert TextConfig.from_dict({"stemmer": "porter"}) == TextConfig(stemmer="porter")


@pytest.mark.parametrize("settings, message", [
    ({"tied_output": "yes"}, 'tied_output must be true or false, got "yes"'),
    ({"tied_output": None}, "tied_output must be true or false, got null"),
    ({"epochs": True}, "epochs must be an integer, got true"),
    ({"epochs": [1, 2]}, "epochs must be an integer, got [1, 2]"),
    ({"dropout": "0.1"}, 'dropout must be a finite number, got "0.1"'),
])
def test_a_responder_setting_of_the_wrong_type_is_shown_as_its_file_spells_it(tmp_path, settings, message):
    from legacy_assistant.responder.config import load_responder_config

    path = tmp_path / "responder.json"
    path.write_text(json.dumps(settings))
    with pytest.raises(ConfigError) as caught:
        load_responder_config(path)
    assert str(caught.value).endswith(message)


def test_a_long_value_in_an_error_is_cut():
    with pytest.raises(ConfigError) as caught:
        TrainingConfig.from_dict(list(range(1000)))
    shown = str(caught.value).split("got ", 1)[1]
    assert shown.startswith("[0, 1, 2") and shown.endswith("...") and len(shown) == 80


@pytest.mark.parametrize("settings, message", [
    ({"hidden_units": []}, "hidden_units must be a non-empty list of positive widths, got []"),
    ({"optimizer": "rmsprop"}, 'optimizer must be one of ["sgd", "adam"], got "rmsprop"'),
    ({"learning_rate": 0}, "learning_rate must be above 0, got 0"),
    ({"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
    ({"label_smoothing": -0.1}, "label_smoothing must be in [0, 1), got -0.1"),
    ({"momentum": 1}, "momentum must be in [0, 1), got 1"),
    ({"weight_decay": -1}, "weight_decay must be >= 0, got -1"),
    ({"seed": -1}, "seed must be a whole number from 0 to 4294967294, got -1"),
    ({"epochs": 0}, "epochs must be at least 1, got 0"),
    ({"min_steps": -1}, "min_steps must be >= 0, got -1"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"validation_split": 1}, "validation_split must be in [0, 1), got 1"),
    ({"early_stopping_patience": -1}, "early_stopping_patience must be >= 0, got -1"),
    ({"early_stopping_metric": "acc"}, 'early_stopping_metric must be one of ["val_loss", "val_accuracy"], got "acc"'),
    ({"lr_schedule": "cosine"}, 'lr_schedule must be one of ["constant", "linear"], got "cosine"'),
    ({"lr_decay": -1}, "lr_decay must be >= 0, got -1"),
    ({"lr_decay": 0.1, "optimizer": "sgd", "sparse_updates": True},
     "lr_decay needs dense updates: set sparse_updates false or lr_decay 0"),
    ({"feature_dropout": 1}, "feature_dropout must be in [0, 1), got 1"),
    ({"threshold_oos_share": 0}, "threshold_oos_share must be in (0, 1), got 0"),
    ({"threshold_from": "best"}, 'threshold_from must be one of ["auto", "oos_validation", "in_scope", "fixed"], '
                                 'got "best"'),
    ({"threshold_fallback_rate": 1}, "threshold_fallback_rate must be in [0, 1), got 1"),
    ({"threshold_holdout": 1}, "threshold_holdout must be in (0, 1), got 1"),
    ({"threshold_min_sentences": 0}, "threshold_min_sentences must be at least 1, got 0"),
    ({"threshold": 1.5}, "threshold must be in [0, 1], got 1.5"),
])
def test_a_setting_out_of_its_range_is_one_line_naming_file_setting_and_value(tmp_path, settings, message):
    path, error = _refusal(tmp_path, settings)
    assert error == f"{path}: {message}"


def test_train_flags_for_the_text_settings_keep_the_rest_of_the_config(tmp_path):
    from dataclasses import replace

    from legacy_assistant.cli import build_parser
    from legacy_assistant.cli.train import config_from_args

    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"features": {"text": {"tokenizer": "unicode", "stemmer": "snowball",
                                                      "lowercase": False}}, "epochs": 3}))
    words = ["train", "x.csv", "--out", "o", "--config", str(path)]
    loaded = load_config(path, PRESETS["ngrams"])
    for flags, text in [(["--stemmer", "porter"], TextConfig("unicode", "porter", False)),
                        (["--tokenizer", "treebank"], TextConfig("treebank", "snowball", False))]:
        config = config_from_args(build_parser().parse_args([*words, *flags]))
        assert config == replace(loaded, features=replace(loaded.features, text=text))
