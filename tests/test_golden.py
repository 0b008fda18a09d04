"""The shipped model is pinned: its predictions must not drift."""
import numpy as np

from legacy_assistant.classifier.artifact import verify_artifact
from legacy_assistant.classifier.golden import compare_golden
from tests.helpers import DEFAULT_MODEL, SHIPPED_INTENTS

TOLERANCE = 1e-5


def test_shipped_model_verifies():
    info = verify_artifact(DEFAULT_MODEL)
    assert info.name == "default"
    assert len(info.classes) >= 25


def test_golden_file_covers_what_it_should(golden, default_predictor):
    cases = golden["cases"]
    assert len(cases) >= 40
    threshold = default_predictor.manifest["threshold"]
    tops = [max(case["probabilities"].values()) for case in cases]
    assert any(top < threshold for top in tops), "some cases must fall below the fallback threshold"
    patterns = {p.lower() for rule in _patterns() for p in rule}
    unseen = [case for case in cases if case["text"].lower() not in patterns]
    assert len(unseen) >= 20


def _patterns():
    from legacy_assistant.classifier.intents import load_intents

    return [intent.patterns for intent in load_intents(SHIPPED_INTENTS).intents]


def test_shipped_model_reproduces_golden(golden, default_predictor):
    report = compare_golden(default_predictor, golden)
    assert report["mismatches"] == []
    assert report["max_abs_delta"] <= TOLERANCE


def test_golden_intent_is_top_of_raw_ranking(golden, default_predictor):
    for case in golden["cases"][:10]:
        ranking = default_predictor.rank_one(case["text"])
        assert ranking[0][0] == case["intent"]
        np.testing.assert_allclose(ranking[0][1], case["probabilities"][case["intent"]], atol=TOLERANCE)


def test_a_sentences_file_with_a_byte_order_mark_keeps_it_out_of_the_first_sentence(tmp_path):
    from legacy_assistant.classifier.golden import read_sentences

    path = tmp_path / "sentences.txt"
    path.write_bytes(b"\xef\xbb\xbfhello there\n# a comment\nI'd like a coffee\n")
    assert read_sentences(path) == ["hello there", "I'd like a coffee"]
