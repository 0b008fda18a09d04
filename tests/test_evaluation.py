"""The evaluation report: figures checked by hand on small made-up predictions."""
import numpy as np
import pytest

from legacy_assistant.classifier.evaluation import evaluation_report, summary_lines

CLASSES = ["a", "b", "c", "oos"]
# rows: label, then probabilities over a, b, c, oos
ROWS = [
    ("a", [0.9, 0.05, 0.03, 0.02]),   # right
    ("a", [0.2, 0.7, 0.05, 0.05]),    # a -> b
    ("a", [0.3, 0.6, 0.05, 0.05]),    # a -> b
    ("b", [0.1, 0.8, 0.05, 0.05]),    # right
    ("c", [0.1, 0.1, 0.3, 0.5]),      # c -> oos class
    ("c", [0.05, 0.05, 0.85, 0.05]),  # right
    ("zzz", [0.7, 0.1, 0.1, 0.1]),    # a label the model does not know
    ("oos", [0.1, 0.1, 0.1, 0.7]),    # out of scope, top is the oos class
    ("oos", [0.35, 0.3, 0.2, 0.15]),  # out of scope, unsure
]
LABELS = [label for label, _ in ROWS]
PROBS = np.array([p for _, p in ROWS])


@pytest.fixture(scope="module")
def report():
    return evaluation_report(PROBS, CLASSES, LABELS, threshold=0.5, oos_label="oos", top_confusions=2)


def test_counts_and_accuracy(report):
    assert (report["examples"], report["in_scope_examples"], report["oos_examples"]) == (9, 7, 2)
    assert report["accuracy"] == pytest.approx(3 / 7)
    assert report["unknown_labels"] == ["zzz"]


def test_per_intent_and_macro_f1(report):
    a, b, c = (report["per_intent"][k] for k in "abc")
    assert (a["precision"], a["recall"], a["support"]) == (0.5, pytest.approx(1 / 3), 3)  # zzz -> a
    assert (b["precision"], b["recall"]) == (pytest.approx(1 / 3), 1.0)
    assert (c["precision"], c["recall"]) == (1.0, 0.5)
    assert a["f1"] == pytest.approx(0.4) and b["f1"] == pytest.approx(0.5) and c["f1"] == pytest.approx(2 / 3)
    assert report["per_intent"]["zzz"]["f1"] == 0.0
    assert report["macro_f1"] == pytest.approx((0.4 + 0.5 + 2 / 3 + 0.0) / 4)


def test_confused_pairs_most_frequent_first(report):
    assert report["confused_pairs"] == [
        {"label": "a", "predicted": "b", "count": 2},
        {"label": "c", "predicted": "oos", "count": 1},
    ]
    assert len(report["confusions"]) == 3  # and zzz -> a


def test_out_of_scope_at_threshold(report):
    at = report["at_threshold"]
    # in scope right and confident: a 0.9, b 0.8, c 0.85; wrong ones never count
    assert at["in_scope_accuracy"] == pytest.approx(3 / 7)
    # rejected in scope: c -> oos class; a->b 0.6 and 0.7 stay; all others are >= 0.5
    assert at["in_scope_fallback_rate"] == pytest.approx(1 / 7)
    assert at["oos_recall"] == 1.0
    assert at["oos_precision"] == pytest.approx(2 / 3)
    assert at["joint_accuracy"] == pytest.approx(5 / 9)
    assert report["fallbacks"] == 3
    curve = {round(p["threshold"], 2): p for p in report["threshold_curve"]}
    assert len(curve) == 100 and curve[0.0]["oos_recall"] == 0.5


def test_in_scope_only_data_has_no_oos_figures():
    report = evaluation_report(PROBS[:6], CLASSES, LABELS[:6], threshold=0.5, oos_label="oos")
    assert "oos_recall" not in report["at_threshold"]
    assert report["oos_examples"] == 0


def test_shape_mismatch_refused():
    with pytest.raises(ValueError, match="do not match"):
        evaluation_report(PROBS, CLASSES[:3], LABELS, 0.5, "oos")


def test_summary_lines_mention_the_key_figures(report):
    text = "\n".join(summary_lines(report))
    assert "accuracy     0.4286" in text
    assert "out of scope recall 1.0000, precision 0.6667, joint accuracy 0.5556" in text
    assert "a -> b: 2" in text and "zzz" in text
