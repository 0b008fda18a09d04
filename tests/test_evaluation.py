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
    # no sentence was given zzz: its precision has nothing to measure (it was 0.0)
    assert report["per_intent"]["zzz"]["precision"] is None
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
    zzz = next(line for line in text.splitlines() if line.lstrip().startswith("zzz "))
    assert " P   n/a  R 0.000  F1 0.000  n=1" in zzz, zzz  # no sentence given zzz: no precision


class _FakePredictor:
    """What evaluate_predictor reads of a Predictor: its manifest, classes, name, probabilities and
    how many features of each text it knows (``known_features(texts)``; by default all some)."""

    def __init__(self, probabilities, classes, oos_label, known=None):
        self.manifest = {"threshold": 0.5, "oos_label": oos_label}
        self.classes = list(classes)
        self.name = "fake"
        self._probabilities = probabilities
        self._known = np.ones(len(probabilities), dtype=np.int32) if known is None else np.asarray(known)

    def predict_proba(self, texts, batch_size=None):
        return self._probabilities[: len(texts)]

    def known_features(self, texts):
        return self._known[: len(texts)]


def test_the_models_out_of_scope_class_falls_back_whatever_the_data_calls_its_out_of_scope_sentences():
    from legacy_assistant.classifier.evaluation import evaluate_predictor

    predictor = _FakePredictor(PROBS, CLASSES, oos_label="oos")
    texts = [f"sentence {i}" for i in range(len(LABELS))]
    same = evaluate_predictor(predictor, texts, LABELS, oos_label="oos")
    renamed = ["out_of_scope" if label == "oos" else label for label in LABELS]
    other = evaluate_predictor(predictor, texts, renamed, oos_label="out_of_scope")
    # the data's label only says which sentences are out of scope; the model's 'oos' class still falls back
    assert other["at_threshold"] == same["at_threshold"]
    assert other["at_threshold"]["oos_recall"] == 1.0 and other["fallbacks"] == same["fallbacks"] == 3
    assert other["threshold_curve"] == same["threshold_curve"]
    assert (other["oos_label"], other["oos_class"], same["oos_class"]) == ("out_of_scope", "oos", "oos")
    assert "the model's class 'oos' falls back" in summary_lines(other)[0]
    # the default (no separate class given) keeps the figures it always had
    assert evaluation_report(PROBS, CLASSES, LABELS, 0.5, "oos")["at_threshold"] == same["at_threshold"]


def test_figures_with_no_sentence_to_measure_are_none_not_zero():
    out_of_scope = [i for i, label in enumerate(LABELS) if label == "oos"]
    report = evaluation_report(PROBS[out_of_scope], CLASSES, [LABELS[i] for i in out_of_scope], 0.5, "oos")
    assert report["accuracy"] is None and report["macro_f1"] is None
    at = report["at_threshold"]
    assert at["in_scope_accuracy"] is None and at["in_scope_fallback_rate"] is None
    assert at["oos_recall"] == 1.0 and at["joint_accuracy"] == 1.0
    assert all(p["in_scope_accuracy"] is None and p["in_scope_rejected"] is None for p in report["threshold_curve"])
    text = "\n".join(summary_lines(report))
    assert "accuracy     n/a" in text and "macro-F1     n/a" in text
    assert "in-scope accuracy n/a, in-scope fallback rate n/a" in text and "0.0000" not in text
    empty = evaluation_report(np.zeros((0, len(CLASSES))), CLASSES, [], 0.5, "oos")
    assert empty["accuracy"] is None and empty["threshold_curve"][0]["joint_accuracy"] is None


def test_a_sentence_with_no_known_feature_falls_back_as_in_the_dialogue():
    """The dialogue answers a text with no known feature with the fallback (``understood``), whatever
    the network's bias-only output ranks first; evaluate counts it so."""
    from legacy_assistant.classifier.evaluation import evaluate_predictor

    # the unsure out-of-scope sentence (top 'a' at 0.35) and the right 'a' at 0.9 hold no known word
    known = [0, 3, 2, 4, 1, 2, 3, 5, 0]
    report = evaluate_predictor(_FakePredictor(PROBS, CLASSES, "oos", known), [f"s{i}" for i in range(9)], LABELS)
    plain = evaluation_report(PROBS, CLASSES, LABELS, 0.5, "oos")
    assert report["accuracy"] == plain["accuracy"]  # the raw ranking's top intent, as /api/v1/parse reports
    at = report["at_threshold"]
    assert (at["oos_recall"], at["oos_precision"]) == (1.0, 0.5)
    assert at["in_scope_accuracy"] == pytest.approx(2 / 7) and at["in_scope_fallback_rate"] == pytest.approx(2 / 7)
    assert report["fallbacks"] == 4
    assert report["not_understood"] == 2 and plain["not_understood"] == 0
    low = next(p for p in report["threshold_curve"] if p["threshold"] == 0.0)
    assert low["oos_recall"] == 1.0 and low["in_scope_rejected"] == pytest.approx(2 / 7)  # at any threshold
    assert "2 sentence(s) hold no feature the model knows" in "\n".join(summary_lines(report))
    assert "hold no feature" not in "\n".join(summary_lines(plain))
    with pytest.raises(ValueError, match="known-feature counts"):
        evaluation_report(PROBS, CLASSES, LABELS, 0.5, "oos", known_features=known[:3])


def test_confusion_figure_rows_are_labels_and_columns_predictions(report):
    """Each row of the drawn matrix is the sentences of one label, spread over what the model
    predicted for them (shares of the row), counted here from ROWS by hand."""
    from legacy_assistant.common.plots import confusion_shares

    tags, shares = confusion_shares(report)
    # the tags of the confusions, most frequent first: a -> b (2), c -> oos (1), zzz -> a (1)
    assert tags == ["a", "b", "c", "oos", "zzz"]
    expected = [
        [1 / 3, 2 / 3, 0, 0, 0],  # a: one right, two taken for b
        [0, 1, 0, 0, 0],  # b: its one sentence right
        [0, 0, 1 / 2, 1 / 2, 0],  # c: one right, one taken for the out-of-scope class
        [0, 0, 0, 0, 0],  # no in-scope sentence is labelled with the model's out-of-scope class
        [1, 0, 0, 0, 0],  # zzz, a label the model lacks: taken for a
    ]
    np.testing.assert_allclose(shares, expected)
    few, small = confusion_shares(report, max_intents=2)
    assert few == ["a", "b"] and np.allclose(small, [[1 / 3, 2 / 3], [0, 1]])


def test_threshold_figure_draws_only_lines_with_sentences_to_measure(report):
    from legacy_assistant.common.plots import threshold_series

    lines = threshold_series(report)
    assert list(lines) == ["in-scope accuracy", "in-scope fallback rate", "out-of-scope recall", "joint accuracy"]
    at_half = {label: values[50] for label, values in lines.items()}  # thresholds 0.00 ... 0.99
    assert at_half == pytest.approx(
        {
            "in-scope accuracy": 3 / 7,
            "in-scope fallback rate": 1 / 7,
            "out-of-scope recall": 1.0,
            "joint accuracy": 5 / 9,
        }
    )
    out_of_scope = [i for i, label in enumerate(LABELS) if label == "oos"]
    only_oos = evaluation_report(PROBS[out_of_scope], CLASSES, [LABELS[i] for i in out_of_scope], 0.5, "oos")
    # the in-scope lines would be all None: no line drawn, so none named in the legend either
    assert list(threshold_series(only_oos)) == ["out-of-scope recall", "joint accuracy"]
    in_scope = evaluation_report(PROBS[:6], CLASSES, LABELS[:6], 0.5, "oos")
    assert list(threshold_series(in_scope)) == ["in-scope accuracy", "in-scope fallback rate"]


def test_summary_columns_line_up_for_wide_and_combining_characters():
    """str.ljust counts characters: a Chinese or Japanese tag (two terminal columns a character)
    or one with a combining accent pushed its line's figures out of line with the others'."""
    import unicodedata

    classes = ["問候", "greeting", "注文コーヒー", "e\u0301clair", "שלום"]
    labels = ["問候", "greeting", "注文コーヒー", "e\u0301clair", "שלום", "問候"]
    report = evaluation_report(np.eye(5)[[0, 1, 1, 3, 2, 4]], classes, labels, threshold=0.5, oos_label=None)
    rows = [line for line in summary_lines(report) if line.startswith("  ") and " P " in line]
    assert len(rows) == 5

    def columns(text):
        return sum(
            0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
        )

    assert {columns(row.split(" P ")[0]) for row in rows} == {2 + 32}


def test_summary_columns_line_up_for_a_decomposed_korean_tag():
    """A Korean tag written decomposed (leading consonant, vowel, final consonant, as a file
    saved on macOS may hold it) takes the columns of its syllables, two each: its vowels and
    final consonants were counted one column each, and its figures stood four columns right."""
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "안녕")
    assert len(decomposed) == 6
    classes = [decomposed, "greeting"]
    report = evaluation_report(np.eye(2)[[0, 1, 1]], classes, [decomposed, "greeting", decomposed], 0.5, None)
    rows = {line.split()[0]: line for line in summary_lines(report) if line.startswith("  ") and " P " in line}
    # six characters in four columns: " P " two characters further along, in the same column
    assert rows[decomposed].index(" P ") - (len(decomposed) - 4) == rows["greeting"].index(" P ")


@pytest.mark.parametrize("threshold, shown", [(0.5, "0.50"), (0.125, "0.125"), (0.999, "0.999"), (0.005, "0.005")])
def test_summary_shows_the_threshold_the_figures_were_measured_at(threshold, shown):
    # 0.999 printed as "1.00" read as "everything falls back", 0.005 as "0.01" as a grid value
    text = "\n".join(summary_lines(evaluation_report(PROBS, CLASSES, LABELS, threshold, "oos")))
    assert f"threshold    {shown}: in-scope accuracy" in text


def test_threshold_figure_names_the_threshold_the_figures_were_measured_at(monkeypatch, tmp_path):
    from legacy_assistant.common import plots

    legends = []

    def keep_legend(figure, path, **options):
        legends.extend(text.get_text() for axis in figure.axes for text in axis.get_legend().get_texts())

    monkeypatch.setattr(plots, "_save", keep_legend)
    plots.plot_threshold_curve(evaluation_report(PROBS, CLASSES, LABELS, 0.999, "oos"), tmp_path / "t.png")
    assert "threshold 0.999" in legends  # not "threshold 1.00"


def test_evaluate_predictor_reports_its_progress_and_the_same_figures_in_steps(monkeypatch):
    from legacy_assistant.classifier import evaluation
    from legacy_assistant.classifier.evaluation import evaluate_predictor

    class _ByText(_FakePredictor):  # the probabilities of the very texts asked for, as a model gives
        def predict_proba(self, texts, batch_size=None):
            return self._probabilities[[int(text.split()[1]) for text in texts]]

        def known_features(self, texts):
            return self._known[[int(text.split()[1]) for text in texts]]

    predictor = _ByText(PROBS, CLASSES, oos_label="oos", known=[1, 0] + [1] * (len(LABELS) - 2))
    texts = [f"sentence {i}" for i in range(len(LABELS))]
    whole = evaluate_predictor(predictor, texts, LABELS, oos_label="oos")
    monkeypatch.setattr(evaluation, "EVAL_CHUNK", 2)
    done = []
    stepped = evaluate_predictor(predictor, texts, LABELS, oos_label="oos", progress=done.append)
    assert stepped == whole
    assert done == [min(n, len(LABELS)) for n in range(2, len(LABELS) + 2, 2)]


def test_summary_says_how_many_unknown_labels_it_leaves_out():
    """The summary names the first 20 labels the model does not know; the others were cut
    without a word, so the list read as all of them."""
    labels = [f"unknown_{i:02d}" for i in range(26)]
    probs = np.full((26, 2), 0.5, dtype=np.float32)
    report = evaluation_report(probs, ["a", "b"], labels, 0.25, "oos")
    line = next(line for line in summary_lines(report) if line.startswith("labels the model does not know"))
    assert line.endswith(": " + ", ".join(labels[:20]) + " and 6 more")
    short = evaluation_report(probs[:3], ["a", "b"], labels[:3], 0.25, "oos")
    assert [line for line in summary_lines(short) if line.startswith("labels the model")] == [
        "labels the model does not know (always wrong): unknown_00, unknown_01, unknown_02"]


def test_labels_naming_the_models_oos_class_under_another_oos_label_are_refused():
    """Sentences labelled with the model's out-of-scope class while the data's out-of-scope label
    is another were scored as an in-scope intent: right in accuracy when the model ranked its
    out-of-scope class first, wrong at the threshold, where that class is a fallback."""
    probs = np.asarray([[0.05, 0.05, 0.1, 0.8], [0.9, 0.05, 0.03, 0.02], [0.1, 0.1, 0.1, 0.7]], dtype=np.float32)
    labels = ["oos", "a", "out_of_scope"]
    with pytest.raises(ValueError, match="labels hold the model's out-of-scope class 'oos'"):
        evaluation_report(probs, CLASSES, labels, 0.5, "out_of_scope", oos_class="oos")
    renamed = evaluation_report(probs, CLASSES, ["out_of_scope", "a", "out_of_scope"], 0.5, "out_of_scope",
                                oos_class="oos")
    assert renamed["accuracy"] == renamed["at_threshold"]["in_scope_accuracy"] == 1.0
    # a model with no out-of-scope class of its own: 'oos' is just a label it may know
    assert evaluation_report(probs, CLASSES, labels, 0.5, "out_of_scope", oos_class=None)["accuracy"] == 1.0


def test_evaluate_predictor_is_typed_as_taking_a_predictor():
    """A typed caller sees the Predictor it must pass, not Any."""
    import typing

    from legacy_assistant.classifier.evaluation import evaluate_predictor
    from legacy_assistant.classifier.predictor import Predictor

    hints = typing.get_type_hints(evaluate_predictor, localns={"Predictor": Predictor})
    assert hints["predictor"] is Predictor
