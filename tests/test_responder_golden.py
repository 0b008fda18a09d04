"""The shipped responder is pinned: its greedy replies to the golden contexts must not drift."""

from __future__ import annotations

import json
import re

import pytest

from legacy_assistant.responder.artifact import verify_responder
from legacy_assistant.responder.golden import DEFAULT_TOLERANCE, compare_golden, read_contexts, read_golden
from legacy_assistant.responder.vocabulary import END
from tests.helpers import ROOT

SHIPPED = ROOT / "exported" / "responder"
CONTEXTS = ROOT / "data" / "responder_contexts.json"
MAX_BYTES = 60 * 1024 * 1024


@pytest.fixture(scope="module")
def golden():
    return read_golden(SHIPPED / "golden.json")


@pytest.fixture(scope="module")
def shipped():
    from legacy_assistant.responder.responder import Responder

    with Responder.load(SHIPPED) as responder:
        yield responder


def test_shipped_responder_verifies_and_stays_small():
    info = verify_responder(SHIPPED)
    assert info.conditions == ("neutral", "anger", "joy", "fear", "sadness")
    size = sum(path.stat().st_size for path in SHIPPED.rglob("*") if path.is_file())
    assert size <= MAX_BYTES, f"{size / 2**20:.1f} MiB"
    summary = info.manifest["summary"]
    assert summary["val_perplexity"] is not None and summary["held_out_pairs"] > 0
    held_out = {record["name"] for record in info.manifest["source"]["held_out"]}
    trained_on = {record["name"] for record in info.manifest["source"]["corpora"]}
    assert held_out == {"test_rare.json"} and not held_out & trained_on


def test_the_shipped_responder_was_trained_with_the_recipe_in_the_repository():
    """``make responder``'s settings (data/responder_config.json and the Makefile's flags) are the
    ones the shipped model's manifest records, so the recipe and the model cannot drift apart."""
    from legacy_assistant.responder.config import ResponderTrainingConfig, load_responder_config

    recipe = load_responder_config(ROOT / "data" / "responder_config.json")
    makefile = (ROOT / "Makefile").read_text()
    flags = {"vocab_size": "--vocab-size", "sampled_softmax": "--sampled-softmax", "epochs": "--epochs",
             "max_minutes": "--max-minutes"}
    changes = {}
    for name, flag in flags.items():
        found = re.search(rf"{flag} (\S+)", makefile)
        assert found, f"the Makefile's responder target lacks {flag}"
        changes[name] = type(getattr(recipe, name))(found.group(1))
    recipe = recipe.with_overrides(**changes)
    trained = ResponderTrainingConfig.from_dict(verify_responder(SHIPPED).manifest["training"])
    assert trained.differences(recipe) == []


def test_golden_covers_every_context_under_every_condition(golden, shipped):
    contexts = read_contexts(CONTEXTS)
    assert len(contexts) >= 10
    expected = [(context, condition) for context in contexts for condition in shipped.conditions]
    assert [(case["context"], case["condition"]) for case in golden["cases"]] == expected
    for case in golden["cases"]:
        # The stored ids are the stored text: END last, and the vocabulary spells them as the reply.
        assert case["ids"] and END not in case["ids"][:-1]  # END ends a reply, unless it runs to the limit
        assert shipped.vocabulary.decode(case["ids"]) == case["reply"]


def test_shipped_responder_reproduces_golden(golden, shipped):
    report = compare_golden(shipped, golden)
    assert report["mismatches"] == []
    assert report["same_replies"] == report["cases"] == len(golden["cases"])
    assert report["max_abs_delta"] <= DEFAULT_TOLERANCE


def test_a_changed_golden_reply_is_caught(golden, shipped):
    altered = json.loads(json.dumps(golden))
    case = altered["cases"][0]
    case["ids"] = [4, *case["ids"]] if case["ids"][0] != 4 else [5, *case["ids"]]
    case["log_prob"] -= 1.0
    report = compare_golden(shipped, altered)
    assert len(report["mismatches"]) == 1 and report["max_abs_delta"] == pytest.approx(1.0, abs=DEFAULT_TOLERANCE)
