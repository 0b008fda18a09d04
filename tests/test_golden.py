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



def test_a_sentence_holding_a_unicode_line_separator_stays_one_sentence(tmp_path):
    """Lines end at \\n, \\r\\n or a lone \\r: a sentence holding U+2028, U+0085 or a form feed
    (pinned on purpose, to check how the model reads it) was cut in two cases."""
    from legacy_assistant.classifier.golden import read_sentences

    path = tmp_path / "sentences.txt"
    path.write_text("hello\u2028there\r\nnext\x85line\rform\x0cfeed\n\x1c\n", encoding="utf-8")
    assert read_sentences(path) == ["hello\u2028there", "next\x85line", "form\x0cfeed"]


def test_golden_replies_of_a_model_replaced_meanwhile_are_not_written_into_the_new_one(model_copy, tmp_path, monkeypatch,
                                                                                      capsys):
    """`golden DIR --sentences` while `train --out DIR --force` replaces DIR: the old model's
    golden file landed in the new model's folder, and its `golden --check` failed for nothing."""
    import json
    import shutil

    import legacy_assistant.classifier.golden as golden_module
    from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest
    from legacy_assistant.cli import main

    newer = tmp_path / "newer"
    shutil.copytree(model_copy, newer)
    manifest = json.loads((newer / "assistant.json").read_text(encoding="utf-8"))
    manifest["name"] = "trained meanwhile"
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (newer / "assistant.json").write_text(json.dumps(manifest), encoding="utf-8")
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello\nbye\n", encoding="utf-8")
    cases = golden_module.golden_cases

    def cases_while_the_model_is_replaced(*args, **kwargs):
        found = cases(*args, **kwargs)
        shutil.rmtree(model_copy)
        shutil.copytree(newer, model_copy)
        return found

    monkeypatch.setattr(golden_module, "golden_cases", cases_while_the_model_is_replaced)
    assert main(["golden", str(model_copy), "--sentences", str(sentences)]) == 1
    err = capsys.readouterr().err
    assert f"error: {model_copy} was replaced by another model while its golden replies were computed: " \
           "nothing was written; run golden again for the model now there" in err
    assert not (model_copy / "golden.json").exists()
    monkeypatch.setattr(golden_module, "golden_cases", cases)
    assert main(["golden", str(model_copy), "--sentences", str(sentences)]) == 0  # as the error says
    assert json.loads((model_copy / "golden.json").read_text(encoding="utf-8"))["model"] == "trained meanwhile"


def test_golden_check_of_a_model_replaced_meanwhile_compares_nothing(model_copy, tmp_path, monkeypatch, capsys):
    """`golden DIR --check` while `train --out DIR --force` replaces DIR: the old model's golden
    file, read first, was compared with the new model loaded after it, and the check passed (or
    failed) for a model whose folder has no golden file."""
    import json
    import shutil

    import legacy_assistant.classifier.golden as golden_module
    from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest
    from legacy_assistant.cli import main

    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello\nbye\n", encoding="utf-8")
    assert main(["golden", str(model_copy), "--sentences", str(sentences)]) == 0
    newer = tmp_path / "newer"  # as train --force leaves it: no golden file
    shutil.copytree(model_copy, newer)
    (newer / "golden.json").unlink()
    manifest = json.loads((newer / "assistant.json").read_text(encoding="utf-8"))
    manifest["name"] = "trained meanwhile"
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (newer / "assistant.json").write_text(json.dumps(manifest), encoding="utf-8")
    read_golden = golden_module.read_golden

    def read_while_the_model_is_replaced(path):
        golden = read_golden(path)
        shutil.rmtree(model_copy)
        shutil.copytree(newer, model_copy)
        return golden

    monkeypatch.setattr(golden_module, "read_golden", read_while_the_model_is_replaced)
    capsys.readouterr()
    assert main(["golden", str(model_copy), "--check"]) == 1
    out, err = capsys.readouterr()
    golden_path = model_copy / "golden.json"
    assert f"error: {model_copy} was replaced by another model while it was checked against {golden_path}: " \
           "nothing was compared; run golden --check again for the model now there" in err
    assert "golden: OK" not in out
    monkeypatch.setattr(golden_module, "read_golden", read_golden)
    assert main(["golden", str(model_copy), "--check"]) == 1  # as the error says: the new model has none
    assert f"{golden_path}: golden file not found" in capsys.readouterr().err


def test_a_golden_case_naming_other_intents_names_the_file_and_the_case(tmp_path, capsys):
    """The error named neither the golden file nor the case, nor which intents differ."""
    import json
    import shutil

    from legacy_assistant.cli import main

    model = shutil.copytree(DEFAULT_MODEL, tmp_path / "default")
    golden = json.loads((model / "golden.json").read_text(encoding="utf-8"))
    golden["cases"][1]["probabilities"]["espresso"] = golden["cases"][1]["probabilities"].pop("greeting")
    (model / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    assert main(["golden", str(model), "--check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {model / 'golden.json'}: case 2 ("), err
    assert "field 'probabilities' names other intents than the model" in err[0], err
    assert "not the model's: 'espresso'; missing: 'greeting'" in err[0], err


def test_a_check_writes_the_texts_of_its_cases_as_they_are_written(tmp_path, capsys):
    """The comparison printed (and its --report held) each case's text as \\u escapes: a Hebrew
    or Chinese case could not be read. A bidi control in a case is still printed as its escape."""
    import json
    import shutil

    from legacy_assistant.cli import main

    model = shutil.copytree(DEFAULT_MODEL, tmp_path / "default")
    golden = json.loads((model / "golden.json").read_text(encoding="utf-8"))
    golden["cases"][0]["text"] = "שלום, 你好 \u202e"
    golden["cases"][0]["intent"] = "not what it answers"
    (model / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    report = tmp_path / "report.json"
    assert main(["golden", str(model), "--check", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    printed = json.loads(out[: out.rindex("}") + 1])
    assert printed["mismatches"][0]["text"] == "שלום, 你好 \u202e"
    assert '"שלום, 你好 \\u202e"' in out and "\u202e" not in out
    assert '"שלום, 你好' in report.read_text(encoding="utf-8")
    assert json.loads(report.read_text(encoding="utf-8"))["mismatches"][0]["text"] == "שלום, 你好 \u202e"


def test_a_check_keeps_a_lone_surrogate_of_a_case_as_its_escape(tmp_path, capsys):
    """A case's text cut inside an emoji (a golden file's "\\ud83d" alone): --report failed with
    a UnicodeEncodeError traceback, and the printed comparison showed the text with a "?"."""
    import json
    import shutil

    from legacy_assistant.cli import main

    model = shutil.copytree(DEFAULT_MODEL, tmp_path / "default")
    golden = json.loads((model / "golden.json").read_text(encoding="utf-8"))
    golden["cases"][0]["text"] = "hi \ud83d there, שלום"
    golden["cases"][0]["intent"] = "not what it answers"
    (model / "golden.json").write_text(json.dumps(golden), encoding="utf-8")
    report = tmp_path / "report.json"
    assert main(["golden", str(model), "--check", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert '"hi \\ud83d there, שלום"' in out and "?" not in out, out
    assert json.loads(out[: out.rindex("}") + 1])["mismatches"][0]["text"] == "hi \ud83d there, שלום"
    assert json.loads(report.read_text(encoding="utf-8"))["mismatches"][0]["text"] == "hi \ud83d there, שלום"
