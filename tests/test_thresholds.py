"""The fallback rule and the choice of its threshold on validation data."""
import numpy as np
import pytest

from legacy_assistant.classifier.thresholds import choose_threshold, rejected, threshold_curve

# classes: 0 = a, 1 = b, 2 = oos
P = np.array([
    [0.90, 0.05, 0.05],  # a, confident, right
    [0.55, 0.40, 0.05],  # a, unsure, right
    [0.30, 0.60, 0.10],  # a, wrong (b)
    [0.10, 0.85, 0.05],  # b, right
    [0.45, 0.15, 0.40],  # out of scope, top a at 0.45
    [0.10, 0.20, 0.70],  # out of scope, top is the oos class
])
LABELS = np.array([0, 0, 0, 1, 2, 2])
IS_OOS = np.array([False, False, False, False, True, True])


def test_rejected_when_unsure_or_out_of_scope_class():
    assert rejected(P, 0.5, oos_index=2).tolist() == [False, False, False, False, True, True]
    assert rejected(P, 0.5, oos_index=None).tolist() == [False, False, False, False, True, False]
    assert rejected(P, 0.0, oos_index=2).tolist() == [False] * 5 + [True]


def test_curve_counts_by_hand():
    low, mid, high = threshold_curve(P, LABELS, IS_OOS, 2, [0.0, 0.5, 0.6])
    assert (low.in_scope_accuracy, low.oos_recall, low.oos_precision) == (0.75, 0.5, 1.0)
    assert low.joint_accuracy == pytest.approx(4 / 6)
    assert (mid.in_scope_accuracy, mid.oos_recall, mid.in_scope_rejected) == (0.75, 1.0, 0.0)
    assert mid.joint_accuracy == pytest.approx(5 / 6)
    # at 0.6 the unsure right answer (0.55) falls back too; so does the wrong one (0.60 is not below)
    assert (high.in_scope_accuracy, high.in_scope_rejected) == (0.5, 0.25)
    assert high.oos_precision == pytest.approx(2 / 3)


def test_curve_without_out_of_scope_rows():
    point = threshold_curve(P[:4], LABELS[:4], IS_OOS[:4], None, [0.5])[0]
    assert point.oos_recall is None and point.oos_precision is None
    assert point.joint_accuracy == point.in_scope_accuracy == 0.75


def test_choice_separates_out_of_scope_at_no_cost():
    best = choose_threshold(P, LABELS, IS_OOS, 2, oos_share=0.2)
    assert best.threshold == 0.46  # lowest grid value that rejects the 0.45 out-of-scope row
    assert (best.in_scope_accuracy, best.oos_recall) == (0.75, 1.0)


def test_choice_weighs_out_of_scope_share():
    # rejecting the out-of-scope row (top 0.45) costs the right but unsure in-scope one (0.40)
    p = np.array([[0.40, 0.35, 0.25], [0.90, 0.05, 0.05], [0.45, 0.30, 0.25]])
    labels, is_oos = np.array([0, 0, 2]), np.array([False, False, True])
    assert choose_threshold(p, labels, is_oos, 2, oos_share=0.9).threshold == 0.46
    rare = choose_threshold(p, labels, is_oos, 2, oos_share=0.1)
    assert rare.threshold == 0.0 and rare.in_scope_accuracy == 1.0 and rare.oos_recall == 0.0


def test_choice_needs_both_kinds_of_rows():
    with pytest.raises(ValueError, match="both in-scope and out-of-scope"):
        choose_threshold(P[:4], LABELS[:4], IS_OOS[:4], 2, 0.2)


def test_in_scope_threshold_by_hand():
    from legacy_assistant.classifier.thresholds import in_scope_threshold

    # ten in-scope rows over 20 classes: row i puts confidence[i] on class i, the rest evenly
    confidence = np.array([0.10, 0.12, 0.30, 0.41, 0.50, 0.62, 0.70, 0.81, 0.90, 0.95])
    p = np.tile(((1.0 - confidence) / 19)[:, None], (1, 20))
    p[np.arange(10), np.arange(10)] = confidence
    labels = np.arange(10)
    labels[:2] = [5, 6]  # the two least sure rows are wrong
    point = in_scope_threshold(p, 0.2, labels)  # at most 2 of the 10 may fall back
    assert point.threshold == pytest.approx(0.30)  # 0.31 would send the 0.30 row back too
    assert (point.fallback_share, point.sentences, point.fallback_rate) == (0.2, 10, 0.2)
    assert (point.accuracy, point.accuracy_at_threshold) == (0.8, 0.8)  # only wrong answers fell back
    labels[:2] = [0, 1]
    assert in_scope_threshold(p, 0.2, labels).accuracy_at_threshold == 0.8  # now two right ones did
    assert in_scope_threshold(p, 0.29).threshold == pytest.approx(0.30)  # floor(2.9) = 2 rows
    assert in_scope_threshold(p, 0.0).threshold == pytest.approx(0.10)  # nothing below it
    assert in_scope_threshold(p, 0.0).fallback_share == 0.0


def test_in_scope_threshold_counts_rows_without_a_known_feature():
    from legacy_assistant.classifier.thresholds import in_scope_threshold

    # the ten rows of the test above; rows 8 and 9 (the surest) hold no feature the model knows, so
    # the dialogue sends them to the fallback whatever the threshold: they use up the 2 rows allowed
    confidence = np.array([0.10, 0.12, 0.30, 0.41, 0.50, 0.62, 0.70, 0.81, 0.90, 0.95])
    p = np.tile(((1.0 - confidence) / 19)[:, None], (1, 20))
    p[np.arange(10), np.arange(10)] = confidence
    labels = np.arange(10)
    understood = np.array([True] * 8 + [False] * 2)
    point = in_scope_threshold(p, 0.2, labels, understood)
    assert point.threshold == pytest.approx(0.10)  # 0.11 would send the 0.10 row back as a third
    assert point.fallback_share == 0.2
    assert point.accuracy_at_threshold == 0.8  # the two right answers never given
    # one not understood row leaves room for one more below the threshold
    point = in_scope_threshold(p, 0.2, labels, np.array([True] * 9 + [False]))
    assert point.threshold == pytest.approx(0.12) and point.fallback_share == 0.2
    # more rows not understood than the share allows: no understood row falls back
    point = in_scope_threshold(p, 0.1, labels, understood)
    assert point.threshold == pytest.approx(0.10) and point.fallback_share == 0.2
    with pytest.raises(ValueError, match="understood has shape"):
        in_scope_threshold(p, 0.2, labels, understood[:3])


def test_in_scope_threshold_counts_rows_taken_for_out_of_scope():
    """Serving falls back on a row whose top intent is the out-of-scope class whatever the
    threshold (``rejected``): the calibration's share must count it, as it counts the rows with no
    known feature, or the stored share understates what serving does."""
    from legacy_assistant.classifier.thresholds import in_scope_threshold
    from legacy_assistant.errors import TrainingError

    confidence = np.array([0.10, 0.12, 0.30, 0.41, 0.50, 0.62, 0.70, 0.81, 0.90, 0.95])
    p = np.tile(((1.0 - confidence) / 19)[:, None], (1, 20))
    p[np.arange(10), np.arange(10)] = confidence
    labels = np.arange(10)
    # class 9 is the out-of-scope class: the surest row's top intent, one of the 2 rows allowed
    point = in_scope_threshold(p, 0.2, labels, oos_index=9)
    assert point.threshold == pytest.approx(0.12)  # 0.13 would send the 0.12 row back as well
    assert point.fallback_share == pytest.approx(rejected(p, point.threshold, 9).mean()) == 0.2
    assert point.accuracy_at_threshold == 0.8
    # without it, the same rows calibrate as before
    assert in_scope_threshold(p, 0.2, labels).threshold == pytest.approx(0.30)
    # every understood row taken for out of scope: nothing to read a threshold off
    with pytest.raises(TrainingError, match="for out of scope"):
        in_scope_threshold(p, 0.2, labels, np.array([False] * 9 + [True]), oos_index=9)


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.99])
def test_in_scope_threshold_refuses_sentences_of_which_none_is_understood(rate):
    """Every threshold would qualify: the highest, 0.99, was stored and sent every message back."""
    from legacy_assistant.classifier.thresholds import in_scope_threshold
    from legacy_assistant.errors import TrainingError

    p = np.full((3, 4), 0.25)
    with pytest.raises(TrainingError, match=r"^the threshold cannot be calibrated: none of the 3 in-scope sentences"):
        in_scope_threshold(p, rate, np.arange(3), np.zeros(3, dtype=bool))


def test_in_scope_threshold_stays_on_the_grid_and_under_the_rate():
    from legacy_assistant.classifier.thresholds import in_scope_threshold

    rng = np.random.RandomState(0)
    logits = rng.normal(size=(500, 6)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    point = in_scope_threshold(p, 0.05)
    confidence = p.max(1)
    assert round(point.threshold * 100) == pytest.approx(point.threshold * 100)
    assert np.mean(confidence < point.threshold) <= 0.05 < np.mean(confidence < point.threshold + 0.01)
    assert point.accuracy is None
    with pytest.raises(ValueError, match="at least one in-scope sentence"):
        in_scope_threshold(p[:0], 0.05)


# rows with no feature the model knows: the network's output is its biases alone, and the dialogue
# gives such a text the fallback whatever that output ranks first (DialoguePolicy.decide, understood)
UNDERSTOOD = np.array([True, True, True, True, False, True])  # the unsure out-of-scope row has no known word


def test_a_row_with_no_known_feature_always_falls_back():
    assert rejected(P, 0.0, oos_index=2, understood=UNDERSTOOD).tolist() == [False] * 4 + [True, True]
    assert rejected(P, 0.0, oos_index=None, understood=~UNDERSTOOD).tolist() == [True] * 4 + [False, True]
    with pytest.raises(ValueError, match="understood has shape"):
        rejected(P, 0.5, 2, understood=UNDERSTOOD[:3])


def test_curve_and_choice_follow_the_dialogue_for_rows_with_no_known_feature():
    low = threshold_curve(P, LABELS, IS_OOS, 2, [0.0], understood=UNDERSTOOD)[0]
    # at 0.0 the out-of-scope row whose top is 0.45 still falls back: the model knows none of its words
    assert (low.oos_recall, low.oos_precision, low.in_scope_accuracy) == (1.0, 1.0, 0.75)
    assert low.joint_accuracy == pytest.approx(5 / 6)
    # nothing to gain from a threshold any more: the lowest one keeps every in-scope answer
    best = choose_threshold(P, LABELS, IS_OOS, 2, oos_share=0.2, understood=UNDERSTOOD)
    assert best.threshold == 0.0 and (best.in_scope_accuracy, best.oos_recall) == (0.75, 1.0)
    # an in-scope row with no known feature is never answered, at any threshold
    lost = threshold_curve(P, LABELS, IS_OOS, 2, [0.0, 0.5], understood=np.array([False] + [True] * 5))
    assert [p.in_scope_accuracy for p in lost] == [0.5, 0.5] and lost[0].in_scope_rejected == 0.25


def test_a_confidence_equal_to_the_threshold_in_float32_is_compared_as_the_dialogue_compares_it():
    """float32 0.29 is just below 0.29: the dialogue (``not confidence >= threshold`` on Python
    floats) falls back on it, and so must the evaluation's figures at that threshold."""
    p = np.array([[0.29, 0.2, 0.2]], dtype=np.float32)
    assert not float(p[0, 0]) >= 0.29  # DialoguePolicy.decide's test: this turn falls back
    assert rejected(p, 0.29, None).tolist() == [True]
    (point,) = threshold_curve(p, np.array([0]), np.array([False]), None, thresholds=[0.29])
    assert point.in_scope_rejected == 1.0 and point.in_scope_accuracy == 0.0


def test_the_rule_and_the_curves_make_no_float64_copy_of_the_whole_probability_matrix():
    """Only each row's maximum is compared in float64; a copy of the matrix, twice the size of
    a float32 one, is gigabytes for a large evaluation set of many intents."""
    import tracemalloc

    from legacy_assistant.classifier.thresholds import in_scope_threshold

    rng = np.random.default_rng(0)
    probabilities = rng.random((2000, 500), dtype=np.float32)
    labels = rng.integers(0, 500, 2000)
    is_oos = labels == 499
    in_scope, in_scope_labels = probabilities[~is_oos], labels[~is_oos]
    tracemalloc.start()
    try:
        rejected(probabilities, 0.5, oos_index=499)
        threshold_curve(probabilities, labels, is_oos, 499)
        in_scope_threshold(in_scope, 0.1, labels=in_scope_labels, oos_index=499)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < probabilities.nbytes  # a float64 copy alone is twice its size


def test_a_nan_confidence_falls_back_at_every_threshold_as_in_the_dialogue():
    """Damaged weights can give NaN: the dialogue (``not confidence >= threshold``) falls back on
    it at any threshold, so the evaluation's figures and the calibration count it as a fallback,
    not as an answer of its top intent (argmax of a NaN row: the first column, here the label)."""
    from legacy_assistant.classifier.thresholds import in_scope_threshold

    p = np.array([[np.nan] * 3, [0.9, 0.05, 0.05], [0.1, 0.2, 0.7]], dtype=np.float32)
    labels, is_oos = np.array([0, 0, 2]), np.array([False, False, True])
    assert rejected(p, 0.0, oos_index=2).tolist() == [True, False, True]
    assert rejected(p, 0.5, oos_index=None).tolist() == [True, False, False]
    for point in threshold_curve(p, labels, is_oos, 2, [0.0, 0.5]):
        assert (point.in_scope_accuracy, point.in_scope_rejected) == (0.5, 0.5)
        assert point.oos_precision == 0.5 and point.joint_accuracy == pytest.approx(2 / 3)
    # ten in-scope rows, one NaN: at most one may fall back, and the NaN row is that one
    confidence = np.array([np.nan, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    rows = np.tile(((1.0 - confidence) / 19)[:, None], (1, 20))
    rows[:, 0] = confidence
    calibrated = in_scope_threshold(rows, 0.1)
    assert calibrated.threshold == pytest.approx(0.2) and calibrated.fallback_share == pytest.approx(0.1)


def test_a_calibration_on_nan_confidences_alone_says_so():
    """Rows whose confidence is NaN (damaged weights) cannot be calibrated on; the refusal said
    the model took every sentence for out of scope, even for a model without that class."""
    from legacy_assistant.classifier.thresholds import NothingUnderstoodError, in_scope_threshold

    p = np.full((4, 3), np.nan, dtype=np.float32)
    for oos_index in (None, 0, 2):  # 0: a NaN row's argmax
        with pytest.raises(NothingUnderstoodError, match="NaN") as refused:
            in_scope_threshold(p, 0.1, oos_index=oos_index)
        assert "out of scope" not in str(refused.value)
