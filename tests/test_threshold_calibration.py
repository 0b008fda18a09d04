"""How train chooses the fallback threshold: out-of-scope tuning, in-scope calibration, fixed.

The data is made here: a few intents, each with its own keywords, mixed with shared filler
words and now and then another intent's keyword, so that the model is unsure of some sentences.
"""
import json

import numpy as np
import pytest

from legacy_assistant.classifier.config import TrainingConfig, merge_settings
from legacy_assistant.classifier.thresholds import GRID, choose_threshold
from legacy_assistant.classifier.training import label_data, split_validation, threshold_plan, train
from legacy_assistant.errors import ConfigError, TrainingError

KEYWORDS = {
    "weather": ["rain", "sunny", "forecast", "umbrella", "snow", "temperature"],
    "music": ["song", "playlist", "album", "guitar", "radio", "volume"],
    "food": ["pizza", "dinner", "recipe", "hungry", "lunch", "cook"],
    "travel": ["flight", "hotel", "airport", "ticket", "train", "passport"],
    "bank": ["account", "balance", "transfer", "card", "loan", "deposit"],
}
FILLER = ["please", "the", "my", "can", "you", "tell", "me", "about", "today", "now", "want", "a", "some", "is"]
OOS_WORDS = ["banana", "philosophy", "quantum", "zebra", "poem", "galaxy", "tennis", "garden"]


def sentences(per_intent, seed, oos=0):
    """``(texts, labels)``: ``per_intent`` sentences of each intent and ``oos`` out-of-scope ones."""
    rng = np.random.RandomState(seed)
    intents = sorted(KEYWORDS)
    texts, labels = [], []
    for intent in intents:
        for _ in range(per_intent):
            words = list(rng.choice(KEYWORDS[intent], size=rng.randint(1, 3)))
            words += list(rng.choice(FILLER, size=rng.randint(2, 5)))
            if rng.random_sample() < 0.3:  # another intent's word: some sentences are unsure or wrong
                words.append(rng.choice(KEYWORDS[intents[rng.randint(len(intents))]]))
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(intent)
    for _ in range(oos):
        words = list(rng.choice(OOS_WORDS, size=2)) + list(rng.choice(FILLER, size=3))
        texts.append(" ".join(words))
        labels.append("oos")
    return texts, labels


CONFIG = TrainingConfig(
    hidden_units=(16,), optimizer="adam", learning_rate=0.01, label_smoothing=0.1, batch_size=16, epochs=15,
    seed=3, threshold_holdout=0.25, threshold_fallback_rate=0.1, threshold_min_sentences=20,
)
TEXTS, LABELS = sentences(40, seed=0)  # 200 sentences, a 25% hold-out holds 50


@pytest.fixture(scope="module")
def holdout_model():
    return train(TEXTS, LABELS, CONFIG)


def probabilities(model, texts):
    """float ``[n, n_classes]``: a dense numpy forward pass of the trained weights (no TensorFlow)."""
    x = model.featurizer.transform(texts).astype(np.float64)
    w = model.weights
    layers = [f"hidden_{i}" for i in range(len(model.spec.hidden_units))] + ["output"]
    h = x
    for i, layer in enumerate(layers):
        h = h @ w[f"classifier/{layer}/kernel"] + w[f"classifier/{layer}/bias"]
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    if model.spec.linear_shortcut:
        h = h + x @ w["classifier/shortcut/kernel"]
    e = np.exp(h - h.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def highest_threshold(confidence, rate):
    """The largest grid threshold with at most ``floor(rate * n)`` confidences below it, by a plain loop."""
    allowed = int(np.floor(rate * len(confidence) + 1e-9))
    return max(t for t in GRID if int((confidence < t).sum()) <= allowed)


def test_holdout_calibration_is_stored_with_its_method(holdout_model):
    record = holdout_model.summary["threshold_calibration"]
    assert record["method"] == "in_scope_holdout"
    assert holdout_model.threshold == record["threshold"]
    assert (record["holdout"], record["seed"], record["fallback_rate"]) == (0.25, 3, 0.1)
    assert record["sentences"] == 50  # 25% of 40 sentences of each of 5 intents
    assert record["fallback_share"] <= 0.1
    assert "threshold_tuning" not in holdout_model.summary
    # the same threshold, rebuilt by hand: a plain run on the kept rows, its confidences on the held-out ones
    labels = np.array([sorted(KEYWORDS).index(label) for label in LABELS])
    kept, held = split_validation(labels, 0.25, seed=3)
    part = train([TEXTS[i] for i in kept], [LABELS[i] for i in kept], CONFIG.with_overrides(threshold_from="fixed"))
    confidence = probabilities(part, [TEXTS[i] for i in held]).max(axis=1)
    expected = highest_threshold(confidence, 0.1)
    assert 0.0 < expected < 0.99  # the calibration has something to decide on this data
    assert holdout_model.threshold == pytest.approx(expected)
    assert record["fallback_share"] == pytest.approx(np.mean(confidence < expected))


def test_final_model_is_a_plain_run_on_all_the_data(holdout_model):
    plain = train(TEXTS, LABELS, CONFIG.with_overrides(threshold_from="fixed"))
    assert set(plain.weights) == set(holdout_model.weights)
    for name, value in plain.weights.items():
        assert np.array_equal(value, holdout_model.weights[name]), name
    assert plain.summary["examples"] == holdout_model.summary["examples"] == len(TEXTS)
    assert plain.threshold == CONFIG.threshold and plain.summary["threshold_calibration"]["method"] == "fixed"


def test_in_scope_validation_sentences_calibrate_without_a_holdout():
    val_texts, val_labels = sentences(10, seed=1)  # 50 in-scope sentences, no out-of-scope ones
    model = train(TEXTS, LABELS, CONFIG, validation=(val_texts, val_labels), oos_label="oos")
    record = model.summary["threshold_calibration"]
    assert record["method"] == "in_scope_validation" and record["sentences"] == 50 and "holdout" not in record
    confidence = probabilities(model, val_texts).max(axis=1)
    assert model.threshold == pytest.approx(highest_threshold(confidence, 0.1))


def test_calibration_counts_sentences_without_a_known_word():
    # with no fallback allowed, three validation sentences that use only words never seen in
    # training still get it (the dialogue's rule), whatever the threshold: they must not pull the
    # threshold down to their own confidence, the network's biases alone
    val_texts, val_labels = sentences(9, seed=1)
    val_texts += ["zorblat quixel", "vlimp", "gnarf trundle"]
    val_labels += ["music", "food", "bank"]
    config = CONFIG.with_overrides(threshold_fallback_rate=0.0)
    model = train(TEXTS, LABELS, config, validation=(val_texts, val_labels), oos_label="oos")
    record = model.summary["threshold_calibration"]
    assert record["method"] == "in_scope_validation" and record["sentences"] == 48
    understood = model.featurizer.encode(val_texts).lengths > 0
    assert understood.sum() == 45
    confidence = probabilities(model, val_texts).max(axis=1)
    assert confidence[~understood].max() < confidence[understood].min() - 0.01  # the rule matters here
    assert model.threshold == pytest.approx(max(t for t in GRID if not (confidence[understood] < t).any()))
    assert record["fallback_share"] == pytest.approx(3 / 48)  # the 3 not understood, none of the others


def test_explicit_threshold_wins():
    val_texts, val_labels = sentences(10, seed=1, oos=10)
    fixed = CONFIG.with_overrides(threshold=0.4, threshold_from="fixed")
    model = train(TEXTS, LABELS, fixed, validation=(val_texts, val_labels), oos_label="oos")
    assert model.threshold == 0.4 and "threshold_tuning" not in model.summary
    assert model.summary["threshold_calibration"]["method"] == "fixed"
    # a threshold in a config file is explicit: it turns the choice off unless threshold_from is given too
    assert merge_settings(CONFIG, {"threshold": 0.4}).threshold_from == "fixed"
    assert merge_settings(CONFIG, {"threshold": 0.4, "threshold_from": "in_scope"}).threshold_from == "in_scope"
    assert merge_settings(CONFIG, {"epochs": 3}).threshold_from == "auto"


def test_train_flag_threshold_is_fixed():
    from legacy_assistant.cli import build_parser
    from legacy_assistant.cli.train import config_from_args

    args = build_parser().parse_args(["train", "x.csv", "--out", "o", "--threshold", "0.3"])
    assert (config_from_args(args).threshold, config_from_args(args).threshold_from) == (0.3, "fixed")
    args = build_parser().parse_args(["train", "x.csv", "--out", "o", "--threshold-from", "in_scope"])
    assert config_from_args(args).threshold_from == "in_scope"
    assert config_from_args(build_parser().parse_args(["train", "x.csv", "--out", "o"])).threshold_from == "auto"
    both = ["train", "x.csv", "--out", "o", "--threshold", "0.3", "--threshold-from"]
    assert config_from_args(build_parser().parse_args([*both, "fixed"])).threshold == 0.3
    for method in ("auto", "in_scope", "oos_validation"):  # one of them was ignored without a word
        with pytest.raises(ConfigError, match=f"^--threshold 0.3 fixes the threshold and --threshold-from {method} "):
            config_from_args(build_parser().parse_args([*both, method]))


def test_out_of_scope_validation_keeps_the_old_tuning():
    val_texts, val_labels = sentences(10, seed=1, oos=10)
    model = train(TEXTS, LABELS, CONFIG, validation=(val_texts, val_labels), oos_label="oos")
    assert model.summary["threshold_calibration"]["method"] == "oos_validation"
    tuning = model.summary["threshold_tuning"]
    assert model.threshold == tuning["threshold"] and tuning["validation_out_of_scope"] == 10
    classes = model.classes
    truth = np.array([classes.index(label) if label != "oos" else -1 for label in val_labels])
    is_oos = np.array([label == "oos" for label in val_labels])
    expected = choose_threshold(probabilities(model, val_texts), truth, is_oos, None, CONFIG.threshold_oos_share)
    assert model.threshold == pytest.approx(expected.threshold)


def plan(texts, labels, config, validation=None, oos_label="oos"):
    return threshold_plan(label_data(texts, labels, config, validation, oos_label), config)


def test_plan_follows_the_data_and_the_setting():
    with_oos = sentences(10, seed=1, oos=10)
    in_scope_only = sentences(10, seed=1)
    assert plan(TEXTS, LABELS, CONFIG, with_oos).method == "oos_validation"
    assert plan(TEXTS, LABELS, CONFIG, in_scope_only).method == "in_scope_validation"
    assert plan(TEXTS, LABELS, CONFIG).method == "in_scope_holdout"
    asked = CONFIG.with_overrides(threshold_from="in_scope")
    assert plan(TEXTS, LABELS, asked, with_oos).method == "in_scope_validation"
    assert plan(TEXTS, LABELS, CONFIG.with_overrides(tune_threshold=False)).method == "fixed"
    assert plan(TEXTS, LABELS, CONFIG.with_overrides(threshold_from="fixed"), with_oos).method == "fixed"
    # validation_split gives in-scope validation rows of its own: no second network needed
    assert plan(TEXTS, LABELS, CONFIG.with_overrides(validation_split=0.25)).method == "in_scope_validation"
    with pytest.raises(TrainingError, match="'oos_validation' needs validation data with both"):
        plan(TEXTS, LABELS, CONFIG.with_overrides(threshold_from="oos_validation"), in_scope_only)


def test_small_data_keeps_the_fixed_threshold_unless_asked():
    texts, labels = sentences(8, seed=2)  # 40 sentences: a 25% hold-out holds 10, fewer than 20
    chosen = plan(texts, labels, CONFIG)
    assert chosen.method == "fixed" and "threshold_min_sentences is 20" in chosen.reason
    model = train(texts, labels, CONFIG)
    assert model.threshold == CONFIG.threshold == 0.25
    assert model.summary["threshold_calibration"] == {"method": "fixed", "threshold": 0.25, "reason": chosen.reason}
    # asked for, in-scope calibration runs on what there is
    asked = CONFIG.with_overrides(threshold_from="in_scope")
    assert plan(texts, labels, asked).holdout_sentences == 10
    model = train(texts, labels, asked)
    assert model.summary["threshold_calibration"]["sentences"] == 10
    # a class with one example keeps it for training: nothing of it is held out
    single = (texts + ["a lonely sentence"], labels + ["lonely"])
    assert plan(*single, asked).holdout_sentences == 10
    with pytest.raises(TrainingError, match="'in_scope' needs in-scope validation sentences"):
        plan(["hi", "bye"], ["a", "b"], asked)
    # two examples of an intent: a 25% hold-out takes round(0.5) = 0 of them, and says so
    with pytest.raises(TrainingError, match=r"a 25% hold-out takes round\(0.25 x n\).* the largest intent has 2;"):
        plan(["hi", "hello", "bye"], ["a", "a", "b"], asked)
    assert plan(["hi", "hello", "hey", "bye"], ["a", "a", "a", "b"], asked).holdout_sentences == 1


def test_train_command_prints_and_stores_the_calibration(tmp_path, capsys):
    from legacy_assistant.cli import main

    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in zip(TEXTS, LABELS)))
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"threshold_min_sentences": 20, "threshold_holdout": 0.25}))
    out = tmp_path / "model"
    argv = ["-q", "train", str(data), "--out", str(out), "--config", str(settings), "--epochs", "5", "--no-plot"]
    assert main(argv) == 0
    manifest = json.loads((out / "assistant.json").read_text())
    record = manifest["summary"]["threshold_calibration"]
    assert record["method"] == "in_scope_holdout" and manifest["threshold"] == record["threshold"]
    assert manifest["training"]["threshold_from"] == "auto"
    printed = capsys.readouterr().out
    assert f"threshold {record['threshold']:.2f}, calibrated on 50 in-scope sentences of a 25% hold-out" in printed


def test_shipped_intents_keep_the_fixed_threshold():
    """``make default-model`` trains data/intents.json with no validation data: too few sentences
    for a calibration, so the shipped model keeps 0.25 and its golden predictions."""
    from legacy_assistant.classifier.intents import load_intents
    from legacy_assistant.classifier.presets import preset
    from tests.helpers import DEFAULT_MODEL, SHIPPED_INTENTS

    texts, tags = load_intents(SHIPPED_INTENTS).examples()
    chosen = plan(texts, tags, preset("ngrams"))
    assert chosen.method == "fixed" and "threshold_min_sentences is 200" in chosen.reason
    assert json.loads((DEFAULT_MODEL / "assistant.json").read_text())["threshold"] == preset("ngrams").threshold


def test_out_of_scope_tuning_counts_sentences_with_no_known_word_as_fallbacks():
    """The dialogue answers a text with no feature the model knows with the fallback whatever the
    network's bias-only output says: tuning counts those validation sentences as rejected at every
    threshold, so the threshold is not raised to catch them."""
    val_texts, val_labels = sentences(10, seed=1, oos=0)
    unknown = ["banana galaxy", "zebra poem", "quantum tennis", "garden philosophy", "galaxy banana poem"] * 2
    val_texts, val_labels = val_texts + unknown, val_labels + ["oos"] * len(unknown)
    model = train(TEXTS, LABELS, CONFIG, validation=(val_texts, val_labels), oos_label="oos")
    known = model.featurizer.encode(val_texts).lengths
    assert not known[-len(unknown) :].any() and known[: -len(unknown)].all()
    classes = model.classes
    truth = np.array([classes.index(label) if label != "oos" else -1 for label in val_labels])
    is_oos = np.array([label == "oos" for label in val_labels])
    expected = choose_threshold(
        probabilities(model, val_texts), truth, is_oos, None, CONFIG.threshold_oos_share, understood=known > 0
    )
    tuning = model.summary["threshold_tuning"]
    assert model.threshold == pytest.approx(expected.threshold) and tuning["oos_recall"] == 1.0
    assert tuning["in_scope_accuracy"] == pytest.approx(expected.in_scope_accuracy)


def test_validation_sentences_the_model_understands_none_of_keep_the_fixed_threshold_under_auto(caplog):
    """Nothing can be calibrated on them: auto keeps the fixed threshold (as its help says it
    ends), while in_scope, asked for by name, is refused."""
    import logging

    from legacy_assistant.classifier.thresholds import NothingUnderstoodError

    intents = sorted(set(LABELS))
    unknown = ([f"zzq{i} xxv{i}" for i in range(len(intents))], intents)  # words the model never saw
    config = CONFIG.with_overrides(threshold_min_sentences=1, epochs=2, threshold=0.33)
    with caplog.at_level(logging.WARNING):
        model = train(TEXTS, LABELS, config, validation=unknown)
    record = model.summary["threshold_calibration"]
    assert (record["method"], model.threshold or config.threshold) == ("fixed", 0.33)
    assert record["reason"].startswith("in_scope_validation: the threshold cannot be calibrated")
    assert "the fixed threshold 0.33 is kept" in caplog.text
    with pytest.raises(NothingUnderstoodError):
        train(TEXTS, LABELS, config.with_overrides(threshold_from="in_scope"), validation=unknown)


def test_train_prints_an_explicit_threshold_as_given():
    from legacy_assistant.cli.train import threshold_line

    fixed = {"threshold_calibration": {"method": "fixed", "reason": "threshold_from is 'fixed'"}}
    assert threshold_line(0.125, fixed).startswith("threshold 0.125, fixed")  # not "0.12"
    assert threshold_line(0.995, {}) == "threshold 0.995"  # not "1.00"
    assert threshold_line(0.4, fixed).startswith("threshold 0.40, fixed")
