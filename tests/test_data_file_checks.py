"""CSV and CLINC150 files: the out-of-scope label, the rules intents files apply to tags, quoting,
and train/evaluate naming the file and row of a bad label."""

import json

import pytest

from legacy_assistant.classifier.config import TrainingConfig
from legacy_assistant.classifier.datasets import detect_format, load_csv, load_data
from legacy_assistant.classifier.training import label_data
from legacy_assistant.cli import main
from legacy_assistant.errors import DataError, TrainingError

CLINC = {
    "train": [
        ["wake me at seven", "alarm"],
        ["set an alarm", "alarm"],
        ["book a table", "booking"],
        ["reserve a table for two", "booking"],
    ],
    "val": [["alarm at noon please", "alarm"], ["a table tonight", "booking"]],
    "test": [["alarm for six", "alarm"], ["table for four", "booking"]],
    "oos_train": [["what is the capital of peru", "oos"], ["sing me a song", "oos"]],
    "oos_val": [["how tall is everest", "oos"]],
    "oos_test": [["who won the game", "oos"]],
}


def _clinc(tmp_path, name="c.json", **changes):
    data = {**CLINC, **changes}
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")  # json escapes a lone surrogate as \ud800
    return path


def _csv(tmp_path, content, name="x.csv"):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _problems(call):
    with pytest.raises(DataError) as caught:
        call()
    return caught.value


# 1. --oos-label naming an in-scope label of a CLINC150 file


def test_oos_label_that_is_an_in_scope_clinc_label_is_refused(tmp_path):
    path = _clinc(tmp_path)
    error = _problems(lambda: load_data(path, "clinc", "alarm"))
    assert error.source == str(path)
    assert len(error.problems) == 1 and error.problems[0].startswith("'train'[0]: label 'alarm' is an in-scope intent")
    assert load_data(path, "clinc", "oos").splits["train"].labels.count("oos") == 2  # the file's own label is fine


def test_train_and_evaluate_refuse_oos_label_of_an_in_scope_intent(tmp_path, capsys):
    path = _clinc(tmp_path)
    assert main(["train", str(path), "--out", str(tmp_path / "m"), "--no-plot", "--oos-label", "alarm"]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "'train'[0]: label 'alarm'" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


# 2. an empty --oos-label


@pytest.mark.parametrize("label", ["", "   ", " oos", "\u200b"])
def test_empty_oos_label_is_refused_before_training(tmp_path, capsys, label):
    path = _clinc(tmp_path)
    assert main(["train", str(path), "--out", str(tmp_path / "m"), "--no-plot", "--oos-label", label]) == 1
    assert "--oos-label" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main(["evaluate", str(tmp_path / "no-model"), str(path), "--oos-label", label]) == 1
    assert "--oos-label" in capsys.readouterr().err


# 3. lone surrogates


def test_lone_surrogate_in_a_clinc_label_or_text_is_refused_at_load(tmp_path):
    path = _clinc(tmp_path, test=[*CLINC["test"], ["wake me", "ala\ud800rm"], ["wake\ud800 me", "alarm"]])
    error = _problems(lambda: load_data(path, "clinc"))
    assert error.problems == [
        "'test'[2]: label: is not valid Unicode text (a lone surrogate escape)",
        "'test'[3]: text: is not valid Unicode text (a lone surrogate escape)",
    ]


# 4. the rules intents files apply to tags


def test_csv_labels_follow_the_tag_rules_of_intents_files(tmp_path):
    path = _csv(
        tmp_path,
        "text,label\nhi there,greeting\nwhat is this,fallback\nno idea,FALLBACK\n"
        "bye now,\u200b\nsomething else,OOS\nout there,oos\n",
    )
    problems = _problems(lambda: load_csv(path)).problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 5", "line 6"]
    assert "reserved fallback tag" in problems[0] and "reserved fallback tag" in problems[1]
    assert "invisible format characters" in problems[2]
    assert "looks the same as the out-of-scope label 'oos'" in problems[3]


def test_clinc_labels_follow_the_tag_rules_of_intents_files(tmp_path):
    path = _clinc(tmp_path, train=[*CLINC["train"], ["what is this", "fallback"], ["bye", "\u200b"]])
    problems = _problems(lambda: load_data(path, "clinc")).problems
    assert problems[0].startswith("'train'[4]: label: 'fallback' is the reserved fallback tag")
    assert problems[1].startswith("'train'[5]: label: is empty once invisible format characters")


def test_clinc_label_looking_like_the_oos_label_without_oos_lists(tmp_path):
    data = {"train": [*CLINC["train"], ["what is the capital of peru", "OOS"]]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    problems = _problems(lambda: load_data(path, "clinc", "oos")).problems
    assert problems == [
        "'train'[4]: label: 'OOS' looks the same as the out-of-scope label 'oos' (--oos-label); labels may not "
        "differ only in case, Unicode form or invisible format characters"
    ]


# 5. CSV quoting


def test_unclosed_quote_is_reported_with_the_other_bad_rows(tmp_path):
    path = _csv(tmp_path, 'text,label\nhi,greeting,extra\n,goodbye\nbye,goodbye\n"never closed,thanks\nok,thanks\n')
    assert _problems(lambda: load_csv(path)).problems == [
        "line 2: expected 2 fields, got 3",
        "line 3: field 'text' is empty",
        "line 5: a quote opened in this row is never closed",
    ]


def test_stray_quote_closed_by_an_inch_mark_does_not_merge_rows(tmp_path):
    path = _csv(
        tmp_path,
        'text,label\n"hi there,greeting\nbye for now,goodbye\nsee you later,goodbye\n'
        'my 15" laptop is broken,support\nthanks,thanks\n',
    )
    problems = _problems(lambda: load_csv(path)).problems
    assert len(problems) == 1 and problems[0].startswith("line 2: a quote opened in this row is closed on line 5")


def test_stray_quote_closed_before_a_delimiter_does_not_merge_rows(tmp_path):
    path = _csv(
        tmp_path, 'text,label\n"hi there,greeting\nbye for now,goodbye\nmy laptop is 15",support\nthanks,thanks\n'
    )
    problems = _problems(lambda: load_csv(path)).problems
    assert len(problems) == 1 and problems[0].startswith("line 2: a quote opened in this row runs to line 4")


def test_quoted_field_across_lines_and_inch_mark_in_unquoted_field_read(tmp_path):
    path = _csv(
        tmp_path,
        'text,label,note\n"my laptop\nscreen is broken",support,15" model\nhi,greeting,x\n'
        '"Hello, world\nhow are you",greeting,y\n',
    )
    examples = load_csv(path)
    assert examples.texts == ("my laptop\nscreen is broken", "hi", "Hello, world\nhow are you")
    assert examples.places == ("line 2", "line 4", "line 5")


# 6. label errors of train name the file and the row


def test_unseen_validation_label_names_file_and_line(tmp_path, capsys):
    train = _csv(
        tmp_path,
        "text,label\nhi there,greeting\nhello friend,greeting\nbye for now,goodbye\nsee you later,goodbye\n",
        "train.csv",
    )
    val = _csv(tmp_path, "text,label\nhey there,Greeting\nsee ya,goodbye\nwhat time is it,time\n", "val.csv")
    assert main(["train", str(train), "--out", str(tmp_path / "m"), "--no-plot", "--validation-data", str(val)]) == 1
    err = capsys.readouterr().err
    assert f"{val}: 2 problem(s)" in err
    assert "line 2: label 'Greeting' is not a label of the training data" in err
    assert "looks the same as training label 'greeting'" in err
    assert "line 4: label 'time' is not a label of the training data" in err


def test_unseen_clinc_validation_label_names_split_and_index(tmp_path, capsys):
    path = _clinc(tmp_path, val=[*CLINC["val"], ["what is the weather", "weather"]])
    assert main(["train", str(path), "--out", str(tmp_path / "m"), "--no-plot"]) == 1
    assert "'val'[2]: label 'weather' is not a label of the training data" in capsys.readouterr().err


def test_label_data_errors_name_the_data():
    config = TrainingConfig(epochs=1)
    with pytest.raises(TrainingError, match=r"^one\.csv: training needs at least 2 intents with patterns, found 1"):
        label_data(["hi", "hello"], ["greeting", "greeting"], config, None, None, names=("one.csv", "val.csv"))
    with pytest.raises(
        TrainingError, match=r"^val\.csv: validation labels not seen in training: A .*'A' looks like 'a'"
    ):
        label_data(["hi", "bye"], ["a", "b"], config, (["yo"], ["A"]), None, names=("t.csv", "val.csv"))


# 7. minor


def test_clinc_file_with_only_out_of_scope_lists_is_recognised(tmp_path):
    path = tmp_path / "o.json"
    path.write_text(json.dumps({"oos_test": CLINC["oos_test"]}), encoding="utf-8")
    assert detect_format(path) == "clinc"


def test_validation_format_applies_to_validation_data(tmp_path, capsys):
    train = _csv(tmp_path, "text,label\nhi there,greeting\nbye for now,goodbye\n", "train.csv")
    val = _csv(tmp_path, "text,label\nhey there,greeting\nsee ya,time\n", "val.txt")
    argv = ["train", str(train), "--out", str(tmp_path / "m"), "--no-plot", "--validation-data", str(val)]
    assert main([*argv, "--validation-format", "csv"]) == 1
    # read as CSV (not refused as JSON): its unseen label is what is reported
    assert "line 3: label 'time' is not a label" in capsys.readouterr().err


def test_evaluate_refuses_an_unknown_split_of_a_csv(tiny_model_dir, tmp_path, capsys):
    data = _csv(tmp_path, "text,label\nhi,greeting\n")
    assert main(["evaluate", str(tiny_model_dir), str(data), "--split", "nonsense"]) == 1
    assert "--split 'nonsense'" in capsys.readouterr().err
    # a CLINC150 split's name too: it was ignored without a word, and the whole file evaluated
    assert main(["evaluate", str(tiny_model_dir), str(data), "--split", "val"]) == 1
    assert f"--split 'val': {data} is a csv file, evaluated whole: leave out --split" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_model_dir), str(data)]) == 0
    assert main(["evaluate", str(tiny_model_dir), str(data), "--split", "test"]) == 0  # the default: as before


def test_evaluate_refuses_a_label_that_only_looks_like_a_class_of_the_model(tiny_model_dir, tmp_path, capsys):
    # counted as a label the model lacks, every such sentence was scored wrong however right the answer
    data = _csv(tmp_path, "text,label\nhello there,Greeting\nbye bye,goodbye\nwhat time is it,time\n")
    assert main(["evaluate", str(tiny_model_dir), str(data)]) == 1
    err = capsys.readouterr().err
    assert f"{data}: 1 problem(s)" in err
    assert f"line 2: label 'Greeting' is not a class of {tiny_model_dir}, but looks the same as its class 'greeting'" in err
    assert "'time'" not in err  # unlike every class: an unknown label, reported as such
    unknown = _csv(tmp_path, "text,label\nhi,greeting\nwhat time is it,time\n", "unknown.csv")
    assert main(["evaluate", str(tiny_model_dir), str(unknown)]) == 0
    assert "labels the model does not know (always wrong): time" in capsys.readouterr().out


def test_evaluate_scores_a_model_trained_with_an_invisible_character_at_a_class_name_end(model_copy, tmp_path, capsys):
    """A model trained before "greeting\\u200b" was refused: its data can no longer name the class
    so (the readers refuse the label) and named it as it prints, "greeting", was refused as a
    look-alike, so the model could not be evaluated at all. That label is now scored as its class."""
    from legacy_assistant.artifacts.directory import manifest_digest, write_json
    from legacy_assistant.classifier.artifact import MANIFEST

    manifest = json.loads((model_copy / MANIFEST).read_text(encoding="utf-8"))
    manifest["classes"] = [name + "\u200b" if name == "greeting" else name for name in manifest["classes"]]
    for rule in manifest["intents"]:
        if rule["tag"] == "greeting":
            rule["tag"] = "greeting\u200b"
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(model_copy / MANIFEST, manifest)
    data = _csv(tmp_path, "text,label\nhello there,greeting\nhi,greeting\nbye bye,goodbye\n")
    assert main(["evaluate", str(model_copy), str(data)]) == 0
    out = capsys.readouterr().out
    assert "labels the model does not know" not in out and "always wrong" not in out, out
    assert main(["evaluate", str(model_copy), str(_csv(tmp_path, "text,label\nhi,Greeting\n", "b.csv"))]) == 1
    assert "looks the same as its class 'greeting\\u200b'" in capsys.readouterr().err  # case still matters
