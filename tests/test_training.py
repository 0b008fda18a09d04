import numpy as np
import pytest

from legacy_assistant.classifier.config import TrainingConfig, load_config
from legacy_assistant.errors import ConfigError, TrainingError
from legacy_assistant.classifier.training import epoch_batches, learning_rate_schedule, planned_epochs, split_validation, train


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


@pytest.mark.parametrize("preset_name", ["classic", "ngrams"])
def test_a_training_that_diverges_is_refused_not_exported(tiny_intents, preset_name):
    """Its NaN weights would fall back on every message, while evaluate's threshold
    comparisons (NaN < threshold is False) counted its answers as confident."""
    from legacy_assistant.classifier.presets import preset

    texts, tags = tiny_intents.examples()
    config = preset(preset_name).with_overrides(epochs=5, learning_rate=1e30, seed=1)
    with pytest.raises(TrainingError, match=r"^training diverged at epoch \d+, batch \d+ \(loss nan\); lower learning_rate$"):
        train(texts, tags, config)


def test_a_training_whose_loss_runs_away_without_overflowing_is_refused_too(tiny_intents):
    """A learning rate of 1e9 ended at a loss of 5e9, yet reported train accuracy 1.000 and answered
    everything, out of scope too, at confidence 1.00: the loss never became NaN."""
    from legacy_assistant.classifier.presets import preset

    texts, tags = tiny_intents.examples()
    config = preset("ngrams").with_overrides(epochs=5, min_steps=0, learning_rate=1e4, seed=1)
    runaway = (
        r"^training diverged: the loss of epoch 5 \(\S+e\+\d+\) is far above the 1\.\d+ it started at "
        r"\(the weights grew instead of learning\); lower learning_rate$"
    )
    with pytest.raises(TrainingError, match=runaway):
        train(texts, tags, config)


def test_a_training_whose_loss_overflows_to_infinity_is_refused_too(
    tiny_intents, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An infinite loss is divergence too, refused as a NaN loss is (not only NaN stops a run)."""
    from compat.classifier.trainer import ClassifierTrainer

    step = ClassifierTrainer.train_batch

    def overflowing(self: ClassifierTrainer, *args: object, **kwargs: object) -> tuple[float, float]:
        _, accuracy = step(self, *args, **kwargs)
        return float("inf"), accuracy

    monkeypatch.setattr(ClassifierTrainer, "train_batch", overflowing)
    texts, tags = tiny_intents.examples()
    diverged = r"^training diverged at epoch 1, batch 1 \(loss inf\); lower learning_rate$"
    with pytest.raises(TrainingError, match=diverged):
        train(texts, tags, TrainingConfig(epochs=2, seed=1))


@pytest.mark.parametrize(
    ("featureless", "counted"), [(10, []), (11, ["1 more training patterns hold no word the classifier keeps"])]
)
def test_patterns_without_a_kept_word_are_named_up_to_ten_and_the_rest_counted(
    caplog: pytest.LogCaptureFixture, featureless: int, counted: list[str]
) -> None:
    """Ten such patterns are each named, with no line of "0 more"; from the eleventh on they are counted."""
    texts = ["!" * n for n in range(1, featureless + 1)] + ["thank you", "thanks a lot", "hello there", "hello you"]
    tags = ["thanks"] * featureless + ["thanks", "thanks", "greeting", "greeting"]
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.training"):
        train(texts, tags, TrainingConfig(epochs=1, seed=0))
    said = [record.getMessage() for record in caplog.records if record.name == "legacy_assistant.classifier.training"]
    assert len([line for line in said if line.startswith("training pattern ")]) == 10
    assert [line for line in said if "more training patterns" in line] == counted


def test_a_pattern_without_a_kept_word_is_warned_about_once_when_a_hold_out_calibrates_the_threshold(
    caplog: pytest.LogCaptureFixture, tiny_intents
) -> None:
    """The hold-out network featurizes the training data too: its warnings came as a second copy."""
    texts, tags = tiny_intents.examples()
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.training"):
        model = train([*texts, "?!"], [*tags, "greeting"], TrainingConfig(epochs=1, seed=0, threshold_from="in_scope"))
    assert model.summary["threshold_calibration"]["method"] == "in_scope_holdout"
    said = [record.getMessage() for record in caplog.records if "holds no word" in record.getMessage()]
    assert len(said) == 1 and said[0].startswith('training pattern "?!" of intent "greeting"')


def test_a_pattern_without_a_kept_word_is_named_by_its_place_after_the_examples_left_out_and_split(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Out-of-scope examples left out and a validation split reorder the rows: each warning still
    names the place of its own pattern."""
    marks = ["!", "?!", "...", "!!", "??", "!?!"]
    texts = ["what is the weather", "play a song", *marks, "thank you", "thanks a lot", "thanks so much"]
    texts += ["hello there", "hello you", "hello friend", "hi there"]
    tags = ["oos", "oos", *["thanks"] * len(marks), "thanks", "thanks", "thanks", *["greeting"] * 4]
    places = [f"intent #{i // 100} field 'patterns'[{i}]" for i in range(len(texts))]
    config = TrainingConfig(epochs=1, seed=0, oos_class=False, validation_split=0.3)
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.training"):
        train(texts, tags, config, oos_label="oos", names=("intents.json", "the validation data"), places=places)
    said = [record.getMessage() for record in caplog.records if "holds no word" in record.getMessage()]
    assert said  # some of the marks are left for training
    for line in said:
        place, text = line.split(": ")[1], line.split('training pattern "')[1].split('"')[0]
        assert line.startswith("intents.json: ") and place == places[texts.index(text)], line
    with pytest.raises(TrainingError, match="^15 texts but 2 places$"):
        train(texts, tags, config, places=places[:2])


def test_places_may_come_as_an_array_as_the_texts_may() -> None:
    """label_data tested ``places`` for truth: a NumPy array of them (as a data frame's column
    gives) raised "The truth value of an array ... is ambiguous", where texts and tags as arrays
    were taken."""
    from legacy_assistant.classifier.training import label_data

    texts = np.array(["hello there", "hi you", "bye now", "see you"])
    tags = np.array(["greeting", "greeting", "goodbye", "goodbye"])
    places = np.array([f"line {n}" for n in range(2, 6)])
    data = label_data(texts, tags, TrainingConfig(validation_split=0.0), None, None, places=places)
    assert data.places == ["line 2", "line 3", "line 4", "line 5"]
    assert label_data(texts, tags, TrainingConfig(validation_split=0.0), None, None, places=np.array([])).places == []
    with pytest.raises(TrainingError, match="^4 texts but 2 places$"):
        label_data(texts, tags, TrainingConfig(validation_split=0.0), None, None, places=places[:2])


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


SPLIT_TEXTS = ["hello there", "hi friend", "hey you", "good morning", "bye now", "see you", "later then",
               "farewell all", "!!!", "good day sir"]
SPLIT_TAGS = ["greet"] * 4 + ["bye"] * 4 + ["sir", "sir"]


def _seed_that_sets_aside(fraction, row):
    """A seed whose split of SPLIT_TAGS at ``fraction`` takes training row ``row``."""
    labels = np.array([sorted(set(SPLIT_TAGS)).index(tag) for tag in SPLIT_TAGS], dtype=np.int32)
    return next(seed for seed in range(100) if row in split_validation(labels, fraction, seed)[1])


@pytest.mark.parametrize("split", ["validation", "hold-out"])
def test_a_split_that_takes_an_intents_only_example_with_words_is_named_not_the_data(split):
    """Intent 'sir' has a learnable example, "good day sir": the split took it, not the data."""
    from legacy_assistant.classifier.training import UnlearnableIntentsError

    if split == "validation":
        config = TrainingConfig(epochs=1, validation_split=0.5, threshold_from="fixed")
        config = config.with_overrides(seed=_seed_that_sets_aside(0.5, 9))
        what = r"the validation split \(validation_split 0\.5\)"
    else:
        config = TrainingConfig(epochs=1, threshold_from="in_scope", threshold_holdout=0.5)
        config = config.with_overrides(seed=_seed_that_sets_aside(0.5, 9))
        what = r"the threshold hold-out \(threshold_holdout 0\.5\)"
    with pytest.raises(TrainingError, match=f"^{what} took every example that holds a word .* of intent\\(s\\) 'sir',") as raised:
        train(SPLIT_TEXTS, SPLIT_TAGS, config)
    assert not isinstance(raised.value, UnlearnableIntentsError)  # the train command would blame the file
    # an intent with no learnable example at all is the data's fault, split or not
    texts = [*SPLIT_TEXTS[:9], "???"]
    with pytest.raises(UnlearnableIntentsError, match="intent\\(s\\) 'sir': field 'patterns'"):
        train(texts, SPLIT_TAGS, config)


def test_a_validation_split_and_a_hold_out_together_are_named_not_the_data():
    """The hold-out trains on what the validation split left: its check read that as the data."""
    from legacy_assistant.classifier.training import UnlearnableIntentsError

    texts = [f"hello friend {i}" for i in range(12)] + [f"bye now {i}" for i in range(12)] + ["!!!", "good day sir", "???"]
    tags = ["greet"] * 12 + ["bye"] * 12 + ["sir"] * 3
    config = TrainingConfig(epochs=1, validation_split=0.2, threshold_holdout=0.5, threshold_min_sentences=8, seed=3)
    with pytest.raises(TrainingError, match=r"^the validation split \(validation_split 0\.2\) and the threshold "
                                            r"hold-out \(threshold_holdout 0\.5\) took every example") as raised:
        train(texts, tags, config)
    assert not isinstance(raised.value, UnlearnableIntentsError)
    # the train command's error names the file, as its others do
    with pytest.raises(TrainingError, match=r"^t\.csv: the validation split \(validation_split 0\.2\) and the threshold"):
        train(texts, tags, config, names=("t.csv", "the validation data"))


def test_an_intent_whose_patterns_hold_no_word_is_refused_by_name():
    texts = ["hello there", "hi friend", "bye now", "see you", "...", "?!"]
    tags = ["greet", "greet", "bye", "bye", "dots", "dots"]
    with pytest.raises(TrainingError, match="intent\\(s\\) 'dots': field 'patterns': no pattern holds a word"):
        train(texts, tags, TrainingConfig(epochs=1))
    # none holds one: every intent is named, not "no features" with no file or intent
    with pytest.raises(TrainingError, match="intent\\(s\\) 'bye', 'dots': field 'patterns': no pattern holds a word"):
        train(["...", "?!", "!", "??"], ["dots", "dots", "bye", "bye"], TrainingConfig(epochs=1))


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



@pytest.mark.parametrize("kind", ["classifier", "responder"])
def test_a_config_path_that_is_no_json_file_is_one_config_error(tmp_path, kind):
    from legacy_assistant.responder.config import load_responder_config

    load = load_config if kind == "classifier" else load_responder_config
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"note": "caf\xe9"}'.encode("latin-1"))
    huge = tmp_path / "huge.json"
    huge.write_text('{"epochs": ' + "9" * 5000 + "}")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    for path, problem in ((tmp_path, "is a folder, not a file"), (latin1, "line 1: not UTF-8 text"),
                          (tmp_path / "nope.json", "file not found"), (huge, "invalid JSON"),
                          (deep, "nested too deeply")):
        with pytest.raises(ConfigError, match=problem) as raised:
            load(path)
        assert str(raised.value).startswith(str(path)), raised.value


def test_epoch_batches_classic_is_one_plain_permutation():
    lengths = np.arange(23)
    batches = epoch_batches(lengths, 5, np.random.RandomState(4), bucket=False)
    expected = np.random.RandomState(4).permutation(23)
    assert np.array_equal(np.concatenate(batches), expected)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]


def test_epoch_batches_bucketed_cover_every_row_once_with_similar_lengths():
    rng = np.random.RandomState(0)
    lengths = rng.randint(1, 300, size=5000)
    batches = epoch_batches(lengths, 16, np.random.RandomState(1), bucket=True)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(5000))
    spread = np.mean([lengths[b].max() - lengths[b].min() for b in batches])
    plain = np.mean([lengths[b].max() - lengths[b].min()
                     for b in epoch_batches(lengths, 16, np.random.RandomState(1), bucket=False)])
    assert spread < plain / 5
    first = [lengths[b].mean() for b in batches[:20]]
    assert np.std(first) > 10  # batch order is shuffled, not sorted by length


def test_min_steps_raises_epochs_for_small_data():
    config = TrainingConfig(epochs=2, batch_size=10, min_steps=50)
    assert planned_epochs(config, 35) == 13  # 4 batches per epoch
    assert planned_epochs(config, 10_000) == 2


def test_linear_schedule_falls_to_near_zero():
    constant = learning_rate_schedule(TrainingConfig(learning_rate=0.1), 10)
    assert constant(1) is None
    linear = learning_rate_schedule(TrainingConfig(learning_rate=0.1, lr_schedule="linear"), 10)
    assert linear(1) == pytest.approx(0.1) and linear(10) == pytest.approx(0.01)
    assert [linear(s) for s in range(1, 11)] == sorted([linear(s) for s in range(1, 11)], reverse=True)


NGRAM_SETTINGS = dict(
    hidden_units=(32,), optimizer="adam", learning_rate=0.01, lr_schedule="linear", label_smoothing=0.1,
    batch_size=8, bucket_by_length=True, feature_dropout=0.3, epochs=1, min_steps=120, seed=5,
)


def test_new_training_options_are_repeatable_and_learn(tiny_intents):
    texts, tags = tiny_intents.examples()
    config = TrainingConfig(**NGRAM_SETTINGS)
    first, second = train(texts, tags, config), train(texts, tags, config)
    for name, value in first.weights.items():
        assert np.array_equal(value, second.weights[name]), name
    assert first.summary["epochs_run"] == 30  # 30 patterns in 4 batches of 8: 120 steps
    assert first.summary["train_accuracy"] == 1.0
    other = train(texts, tags, config.with_overrides(feature_dropout=0.0))
    assert not np.array_equal(other.weights["classifier/hidden_0/kernel"], first.weights["classifier/hidden_0/kernel"])


def test_early_stopping_on_validation_accuracy_keeps_best_epoch(tiny_intents):
    texts, tags = tiny_intents.examples()
    config = TrainingConfig(epochs=200, batch_size=4, validation_split=0.3, early_stopping_patience=4,
                            early_stopping_metric="val_accuracy", seed=3)
    model = train(texts, tags, config)
    best = max(row["val_accuracy"] for row in model.history)
    assert model.history[model.summary["best_epoch"] - 1]["val_accuracy"] == best
    assert model.summary["val_accuracy"] == pytest.approx(best)
    assert len(model.history) == model.summary["best_epoch"] + 4
    with pytest.raises(ConfigError, match="early_stopping_metric"):
        TrainingConfig(early_stopping_metric="f1")


def _csv(name):
    from legacy_assistant.classifier.datasets import load_csv
    from tests.helpers import TEST_DATA

    return load_csv(TEST_DATA / name)


def test_out_of_scope_examples_become_a_class_and_tune_the_threshold():
    data, val = _csv("tiny.csv"), _csv("tiny_val.csv")
    config = TrainingConfig(**{**NGRAM_SETTINGS, "threshold_oos_share": 0.5})
    model = train(data.texts, data.labels, config, validation=(val.texts, val.labels), oos_label="oos")
    assert "oos" in model.classes and model.oos_label == "oos"
    tuning = model.summary["threshold_tuning"]
    assert model.threshold == tuning["threshold"]
    assert (tuning["validation_in_scope"], tuning["validation_out_of_scope"]) == (8, 2)
    assert tuning["oos_share"] == 0.5
    # the tuned threshold is the best on the grid for the stated score, the lowest among equals,
    # scored here from the model's own probabilities, independently of thresholds.py
    probabilities = _numpy_probabilities(model, val.texts)
    oos_column = model.classes.index("oos")
    in_scope = np.array([label != "oos" for label in val.labels])
    truth = np.array([model.classes.index(label) if label != "oos" else -1 for label in val.labels])
    top, confidence = probabilities.argmax(1), probabilities.max(1)
    grid = [i / 100 for i in range(100)]
    scores = []
    # a sentence with no known feature always gets the fallback, as the dialogue gives it
    understood = model.featurizer.encode(val.texts).lengths > 0
    assert not understood.all()  # the rule matters on this data
    for threshold in grid:
        answered = (confidence >= threshold) & (top != oos_column) & understood
        in_scope_accuracy = np.mean((answered & (top == truth))[in_scope])
        oos_recall = np.mean(~answered[~in_scope])
        scores.append((1 - config.threshold_oos_share) * in_scope_accuracy + config.threshold_oos_share * oos_recall)
    best = grid[int(np.argmax(scores))]
    assert max(scores) > min(scores)  # the choice matters on this data
    assert tuning["threshold"] == pytest.approx(best)
    assert model.threshold == pytest.approx(best)


def _numpy_probabilities(model, texts):
    """float ``[n, n_classes]``: the trained network's softmax, a dense numpy forward pass of its weights."""
    x = model.featurizer.transform(texts)
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


def test_without_oos_class_the_examples_are_left_out_but_still_tune():
    data, val = _csv("tiny.csv"), _csv("tiny_val.csv")
    config = TrainingConfig(**NGRAM_SETTINGS, oos_class=False)
    model = train(data.texts, data.labels, config, validation=(val.texts, val.labels), oos_label="oos")
    assert "oos" not in model.classes and model.oos_label is None
    assert model.summary["examples"] == 24
    assert model.summary["validation_examples"] == 10
    assert "threshold_tuning" in model.summary
    # validation accuracy is measured on in-scope rows only: the model has no oos class
    assert model.history[-1]["val_accuracy"] > 0.5


def test_fixed_threshold_when_tuning_is_off_or_impossible():
    data, val = _csv("tiny.csv"), _csv("tiny_val.csv")
    config = TrainingConfig(**NGRAM_SETTINGS, tune_threshold=False, threshold=0.4)
    model = train(data.texts, data.labels, config, validation=(val.texts, val.labels), oos_label="oos")
    assert model.threshold == 0.4 and "threshold_tuning" not in model.summary
    in_scope = [i for i, label in enumerate(val.labels) if label != "oos"]
    model = train(data.texts, data.labels, config.with_overrides(tune_threshold=True),
                  validation=([val.texts[i] for i in in_scope], [val.labels[i] for i in in_scope]), oos_label="oos")
    assert model.threshold == 0.4  # no out-of-scope validation rows to tune on


def test_unknown_validation_labels_refused():
    with pytest.raises(TrainingError, match="not seen in training: x"):
        train(["hi", "bye"], ["a", "b"], TrainingConfig(epochs=1), validation=(["yo"], ["x"]))


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name.endswith(".training")]


def test_validation_sentences_that_are_the_training_sentences_are_refused_by_name(tiny_intents):
    texts, tags = tiny_intents.examples()
    # the same sentences, shouted and punctuated: the featurizer sees the same words
    shouted = [text.upper() + " !" for text in texts]
    with pytest.raises(TrainingError) as caught:
        train(texts, tags, TrainingConfig(epochs=1), validation=(shouted, tags))
    message = str(caught.value)
    assert message.startswith(
        f"the validation data: {len(texts)} of {len(texts)} validation sentences (100%) are also training sentences "
        "of the training data"
    )
    assert "\n" not in message


def test_a_few_validation_sentences_that_are_training_sentences_are_warned_about_with_their_count(caplog):
    texts = ["hello there", "hi friend", "good morning", "bye now", "see you later", "goodbye friend"]
    tags = ["greet"] * 3 + ["bye"] * 3
    val = (["Hello there!", "hey you", "see you soon", "farewell"], ["greet", "greet", "bye", "bye"])
    with caplog.at_level("WARNING"):
        train(texts, tags, TrainingConfig(epochs=1), validation=val)
    assert _warnings(caplog) == [
        "the validation data: 1 of 4 validation sentences are also training sentences of the training data: "
        "validation figures, early stopping and the threshold are somewhat optimistic"
    ]
    caplog.clear()  # a split off training data that repeats a sentence: warned, never refused
    with caplog.at_level("WARNING"):
        train(texts + texts, tags + tags, TrainingConfig(epochs=1, validation_split=0.5))
    assert any("--validation-split" in m and "repeated" in m for m in _warnings(caplog))


def test_validation_or_early_stopping_asked_for_but_impossible_is_warned_about_by_flag(caplog):
    texts, tags = ["hi there hello", "bye now goodbye", "thank you thanks"], ["greet", "bye", "thanks"]
    with caplog.at_level("WARNING"):
        model = train(texts, tags, TrainingConfig(epochs=3, validation_split=0.5, early_stopping_patience=2))
    assert model.summary["validation_examples"] == 0 and len(model.history) == 3
    split, patience = _warnings(caplog)
    assert split.startswith("validation_split 0.5 (--validation-split) held out no examples")
    assert patience.startswith("early_stopping_patience 2 (--patience) is not used: there is no validation data")
    caplog.clear()
    with caplog.at_level("WARNING"):  # given validation data comes before a split: the split is not taken
        model = train(texts, tags, TrainingConfig(epochs=1, validation_split=0.3),
                      validation=(["hello", "see ya"], ["greet", "bye"]))
    assert model.summary["examples"] == 3 and model.summary["validation_examples"] == 2
    assert _warnings(caplog) == [
        "validation_split 0.3 (--validation-split) is not used: validation data is given and comes first"
    ]


def test_a_long_epoch_says_where_it_stands(tiny_intents, tiny_config, monkeypatch, caplog):
    """The progress bar counts epochs, and a large model's epoch took minutes without a word."""
    import dataclasses
    import logging

    from legacy_assistant.classifier import training

    monkeypatch.setattr(training, "WITHIN_EPOCH_LOG_SECONDS", 0.0)
    config = dataclasses.replace(tiny_config, epochs=2, min_steps=0, batch_size=4, validation_split=0.0)
    texts, tags = tiny_intents.examples()
    with caplog.at_level(logging.INFO, logger="legacy_assistant.classifier.training"):
        train(texts, tags, config)
    batches = -(-len(texts) // 4)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert said == [f"epoch {e}/2: batch {b}/{batches}" for e in (1, 2) for b in range(1, batches + 1)]
