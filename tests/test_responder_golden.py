"""The shipped responder is pinned: its greedy replies to the golden contexts must not drift."""

from __future__ import annotations

import json
import re

import pytest

from legacy_assistant.responder.artifact import verify_responder
from legacy_assistant.responder.golden import (
    DEFAULT_TOLERANCE,
    compare_golden,
    golden_cases,
    read_contexts,
    read_golden,
)
from legacy_assistant.responder.vocabulary import END
from tests.helpers import DEFAULT_RESPONDER, ROOT

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


@pytest.mark.parametrize("options", [{"repetition_penalty": 10.0}, {"condition_strength": 3.0}])
def test_golden_cases_of_a_responder_with_decoding_options_store_the_ids_of_their_text(options):
    """The text comes from ``respond_batch``, which decodes with the responder's options; the
    ids must be that same reply's, not the plain greedy reply's."""
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    contexts = read_contexts(CONTEXTS)[:6]
    with Responder.load(SHIPPED, options=DecodingOptions(**options)) as responder:
        cases = golden_cases(responder, contexts)
        for case in cases:
            assert responder.vocabulary.decode(case["ids"]) == case["reply"], case
        report = compare_golden(responder, {"cases": cases})
    assert report["mismatches"] == [] and report["max_abs_delta"] == 0.0
    # the options did change replies here, so the plain greedy ids would not have matched
    plain = [case["reply"] for case in read_golden(SHIPPED / "golden.json")["cases"][: len(cases)]]
    assert [case["reply"] for case in cases] != plain


def test_a_changed_golden_reply_is_caught(golden, shipped):
    altered = json.loads(json.dumps(golden))
    case = altered["cases"][0]
    case["ids"] = [4, *case["ids"]] if case["ids"][0] != 4 else [5, *case["ids"]]
    case["log_prob"] -= 1.0
    report = compare_golden(shipped, altered)
    assert len(report["mismatches"]) == 1 and report["max_abs_delta"] == pytest.approx(1.0, abs=DEFAULT_TOLERANCE)


def test_contexts_the_responder_cannot_answer_are_refused_naming_file_and_number(tmp_path, capsys):
    """A lone surrogate no UTF-8 golden file can hold, and a turn with no token (a zero-width
    space): one line naming the file and the context or case, and no golden file written."""
    from legacy_assistant.cli import main

    written = tmp_path / "golden.json"
    surrogate = tmp_path / "surrogate.json"
    surrogate.write_text('[["hello"], ["\\ud800"]]', encoding="utf-8")
    with pytest.raises(Exception, match=r"surrogate.json: context 2: a turn is not valid Unicode text"):
        read_contexts(surrogate)
    invisible = tmp_path / "invisible.json"
    invisible.write_text('[["\\u200b"]]', encoding="utf-8")
    for contexts, expected in (
        (surrogate, "context 2: a turn is not valid Unicode text (a lone surrogate escape)"),
        (invisible, "context 1: the context is empty: give at least one turn with text"),
    ):
        assert main(["-q", "golden", str(SHIPPED), "--contexts", str(contexts), "--golden", str(written)]) == 1
        assert capsys.readouterr().err.strip() == f"error: {contexts}: {expected}"
        assert not written.exists()
    stored = json.loads((SHIPPED / "golden.json").read_text(encoding="utf-8"))
    stored["cases"][2]["context"] = ["\u200b"]
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(stored), encoding="utf-8")
    assert main(["-q", "golden", str(SHIPPED), "--check", "--golden", str(altered)]) == 1
    assert capsys.readouterr().err.strip().endswith(
        f"error: {altered}: case 3: the context is empty: give at least one turn with text")
    stored["cases"][2]["context"] = ["hello"]
    stored["cases"][4]["condition"] = "bogus"
    altered.write_text(json.dumps(stored), encoding="utf-8")
    assert main(["-q", "golden", str(SHIPPED), "--check", "--golden", str(altered)]) == 1
    assert capsys.readouterr().err.strip().endswith(
        f"error: {altered}: case 5: condition 'bogus' is not one of the model's (neutral, anger, joy, fear, sadness)")


def test_a_failed_check_names_the_case_of_the_largest_difference(golden, tmp_path, capsys):
    """The same reply with another log-probability: FAILED beside "mismatches": [] named nothing."""
    from legacy_assistant.cli import main

    altered = json.loads(json.dumps(golden))
    altered["cases"][2]["log_prob"] -= 0.5
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(altered), encoding="utf-8")
    assert main(["golden", str(DEFAULT_RESPONDER), "--check", "--golden", str(path)]) == 1
    verdict = capsys.readouterr().out.splitlines()[-1]
    case = altered["cases"][2]
    assert verdict == (f"golden: FAILED (tolerance {DEFAULT_TOLERANCE}): the largest difference, 0.5, is on "
                       f"{json.dumps(case['context'], ensure_ascii=False)} under {case['condition']!r}"), verdict


def test_a_reply_with_the_same_text_from_other_token_ids_shows_the_ids(golden, tmp_path, capsys):
    """A model trained again with another vocabulary says the same words with other ids: the
    mismatch showed "stored" and "now" alike and named no difference."""
    from legacy_assistant.cli import main

    altered = json.loads(json.dumps(golden))
    case = altered["cases"][1]
    stored_ids = [token + 1 if token != END else END for token in case["ids"]]
    case["ids"] = stored_ids
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(altered), encoding="utf-8")
    report_path = tmp_path / "report.json"
    assert main(["golden", str(DEFAULT_RESPONDER), "--check", "--golden", str(path), "--report", str(report_path)]) == 1
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict == (f"golden: FAILED (tolerance {DEFAULT_TOLERANCE}): 1 case(s) answer otherwise (mismatches), "
                       "1 of them the same text from other token ids (stored_ids, now_ids)"), verdict
    [mismatch] = json.loads(report_path.read_text(encoding="utf-8"))["mismatches"]
    assert mismatch["stored"] == mismatch["now"] == case["reply"]
    assert mismatch["stored_ids"] == stored_ids and mismatch["now_ids"] == golden["cases"][1]["ids"]


def test_a_golden_file_of_the_other_kind_of_model_is_named_as_such(capsys):
    """An intent model's golden.json given to a responder's check, and a responder's to an intent
    model's: each said which kind of golden file it is (the latter read as a bad case 1)."""
    from legacy_assistant.cli import main
    from tests.helpers import DEFAULT_MODEL

    intent_golden = DEFAULT_MODEL / "golden.json"
    assert main(["-q", "golden", str(DEFAULT_RESPONDER), "--check", "--golden", str(intent_golden)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {intent_golden}: an intent model's golden predictions, not a responder's golden replies: "
        "check it against the intent model it was written for")
    responder_golden = DEFAULT_RESPONDER / "golden.json"
    assert main(["-q", "golden", str(DEFAULT_MODEL), "--check", "--golden", str(responder_golden)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {responder_golden}: a responder's golden replies, not an intent model's golden predictions: "
        "check it against the responder it was written for")


def test_golden_check_of_a_responder_replaced_meanwhile_compares_nothing(tmp_path, monkeypatch, capsys):
    """`golden DIR --check` while `train-responder --out DIR --force` replaces DIR: the old
    responder's golden file, read first, was compared with the new responder loaded after it."""
    import shutil

    import legacy_assistant.responder.golden as golden_module
    from legacy_assistant.cli import main

    copy = tmp_path / "responder"
    shutil.copytree(DEFAULT_RESPONDER, copy)
    read = golden_module.read_golden

    def read_while_the_responder_is_replaced(path):
        golden = read(path)
        (copy / "golden.json").unlink()  # a new responder is written without one
        return golden

    monkeypatch.setattr(golden_module, "read_golden", read_while_the_responder_is_replaced)
    assert main(["golden", str(copy), "--check"]) == 1
    out, err = capsys.readouterr()
    assert f"error: {copy} was replaced by another model while it was checked against {copy / 'golden.json'}: " \
           "nothing was compared; run golden --check again for the model now there" in err
    assert "golden: OK" not in out
