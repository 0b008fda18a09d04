"""``evaluate`` says when it is shown the model's own training data, and words the OOS count."""
from __future__ import annotations

import pytest

from legacy_assistant.classifier.evaluation import evaluation_report, summary_lines, training_file_overlap

TRAINED = "a" * 64
OTHER = "b" * 64


@pytest.mark.parametrize(
    ("source", "data_sha256", "data_format", "split", "warned"),
    [
        ({"data": {"name": "intents.json", "sha256": TRAINED}, "format": "intents"}, TRAINED, "intents", "test", True),
        ({"data": {"name": "intents.json", "sha256": TRAINED}, "format": "intents"}, OTHER, "intents", "test", False),
        ({"data": {"name": "data_full.json", "sha256": TRAINED}, "format": "clinc"}, TRAINED, "clinc", "test", False),
        ({"data": {"name": "data_full.json", "sha256": TRAINED}, "format": "clinc"}, TRAINED, "clinc", "train", True),
        ({"data": "data/intents.json", "sha256": TRAINED, "format": "intents"}, TRAINED, "intents", "test", True),
        ({"intents": "intents.json"}, TRAINED, "intents", "test", False),
    ],
)
def test_training_file_overlap(source, data_sha256, data_format, split, warned):
    warning = training_file_overlap({"source": source}, data_sha256, data_format, split)
    assert (warning is not None) == warned
    if warned:
        assert "trained on" in warning


CLINC = {"data": {"name": "data_full.json", "sha256": TRAINED}, "format": "clinc"}
CSV = {"data": {"name": "train.csv", "sha256": OTHER}, "validation": {"name": "held.csv", "sha256": TRAINED},
       "format": "csv"}


@pytest.mark.parametrize(
    ("source", "data_format", "split", "warned"),
    [
        (CLINC, "clinc", "val", True),  # the split early stopping and the threshold were chosen on
        (CLINC, "clinc", "test", False),
        (CLINC, "clinc", "train", False),  # (the training data: the other warning)
        ({**CLINC, "validation": {"name": "held.csv", "sha256": "c" * 64}}, "clinc", "val", False),  # given data came first
        (CSV, "csv", "test", True),  # the file given as validation data
        ({**CSV, "validation": {"name": "held.json", "sha256": TRAINED}}, "clinc", "val", True),
        ({**CSV, "validation": {"name": "held.json", "sha256": TRAINED}}, "clinc", "test", False),
        ({"data": {"name": "intents.json", "sha256": TRAINED}, "format": "intents"}, "intents", "test", False),
    ],
)
def test_validation_file_overlap(source, data_format, split, warned):
    from legacy_assistant.classifier.evaluation import validation_file_overlap

    warning = validation_file_overlap({"source": source}, TRAINED, data_format, split)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith("these are the sentences the model was validated on in training")


def _report(labels: list[str]) -> dict:
    import numpy as np

    classes = ["greet", "bye"]
    probabilities = np.array([[0.9, 0.1] if label == "greet" else [0.2, 0.8] for label in labels], dtype=np.float32)
    return evaluation_report(probabilities, classes, labels, 0.5, "oos", 5)


def test_summary_without_out_of_scope_examples_does_not_name_a_label():
    first = summary_lines(_report(["greet", "bye"]))[0]
    assert first.endswith("(2 in scope, none out of scope)") and "'oos'" not in first


def test_summary_with_out_of_scope_examples_names_their_label():
    first = summary_lines(_report(["greet", "oos"]))[0]
    assert first.endswith("(1 in scope, 1 out of scope, label 'oos')")


def test_evaluating_the_shipped_model_on_its_training_file_warns(capsys):
    from pathlib import Path

    from legacy_assistant.cli import main

    root = Path(__file__).resolve().parent.parent
    assert main(["-q", "evaluate", str(root / "exported" / "default"), str(root / "data" / "intents.json")]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: these are the sentences the model was trained on")
    from legacy_assistant.classifier.intents import load_intents

    _, tags = load_intents(root / "data" / "intents.json").examples()
    n_oos = tags.count("oos")  # the shipped intents file's out-of-scope examples count as such
    assert n_oos and f"({len(tags) - n_oos} in scope, {n_oos} out of scope, label 'oos')" in captured.out
