"""A user's mistake on the command line is one line on stderr and a non-zero exit, never a traceback."""
from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest

from legacy_assistant.cli import main
from tests.helpers import TINY_INTENTS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "exported" / "default"
RESPONDER_DIR = ROOT / "exported" / "responder"  # read only: nothing here writes into it


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("cli-errors") / "model"
    shutil.copytree(SHIPPED, target)
    return target


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if " INFO " not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("truncated", "invalid JSON at line"),
        ('{"cases": [{"text": "hi"}]}', "case 1: expected 'text', 'intent' and 'probabilities' of finite numbers"),
        ('["not", "an", "object"]', "not a golden file"),
        (None, "golden file not found"),
    ],
)
def test_golden_check_with_a_damaged_golden_file(model_dir, tmp_path, capsys, monkeypatch, content, expected):
    """Refused before the model loads (seconds; a TF2 copy's load said nothing of the file until done)."""
    from legacy_assistant.classifier.predictor import Predictor

    loads = []
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, *args, **kwargs: loads.append(args)))
    golden = tmp_path / "golden.json"
    if content == "truncated":
        content = (SHIPPED / "golden.json").read_text(encoding="utf-8")[:1000]
    if content is not None:
        golden.write_text(content, encoding="utf-8")
    assert main(["golden", str(model_dir), "--check", "--golden", str(golden)]) == 1
    assert expected in _one_error_line(capsys)
    assert loads == []


def test_a_failed_golden_check_names_the_case_that_failed_it(model_dir, tmp_path, capsys):
    """Only changed top intents were listed: a difference past the tolerance printed FAILED
    beside "mismatches": [], naming nothing."""
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\nbye\n", encoding="utf-8")
    golden = tmp_path / "g.json"
    assert main(["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(golden)]) == 0
    cases = json.loads(golden.read_text(encoding="utf-8"))
    probabilities = cases["cases"][1]["probabilities"]
    other = next(tag for tag in probabilities if tag != cases["cases"][1]["intent"])
    probabilities[other] += 0.01  # the top intent stays
    golden.write_text(json.dumps(cases), encoding="utf-8")
    capsys.readouterr()
    assert main(["golden", str(model_dir), "--check", "--golden", str(golden)]) == 1
    verdict = capsys.readouterr().out.splitlines()[-1]
    assert verdict == 'golden: FAILED (tolerance 1e-05): the largest difference, 0.01, is on "bye"', verdict


def test_golden_check_against_a_folder_names_it_a_folder(model_dir, tmp_path, capsys):
    assert main(["golden", str(model_dir), "--check", "--golden", str(tmp_path)]) == 1
    assert _one_error_line(capsys) == f"error: {tmp_path}: a folder, not a golden file: name the file"  # was "not found"


def test_golden_check_against_a_pipe_names_it_a_pipe(model_dir, tmp_path, capsys):
    """``--golden <(...)`` (a pipe, /dev/fd/63) or /dev/null was "golden file not found"."""
    import os

    pipe = tmp_path / "golden.pipe"
    os.mkfifo(pipe)
    for given in (pipe, os.devnull):
        assert main(["golden", str(model_dir), "--check", "--golden", str(given)]) == 1
        line = _one_error_line(capsys)
        assert line == f"error: {given}: not a golden file: is not a regular file (a device, pipe or socket)", line


def test_golden_with_a_missing_sentences_file(model_dir, tmp_path, capsys):
    missing = tmp_path / "missing.txt"
    assert main(["golden", str(model_dir), "--sentences", str(missing), "--golden", str(tmp_path / "g.json")]) == 1
    assert _one_error_line(capsys) == f"error: {missing}: sentences file not found"


def test_golden_with_no_sentences_writes_nothing(model_dir, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", encoding="utf-8")
    golden = tmp_path / "g.json"
    assert main(["golden", str(model_dir), "--sentences", str(empty), "--golden", str(golden)]) == 1
    assert "no sentences" in _one_error_line(capsys) and not golden.exists()


def test_golden_without_sentences_or_check_is_refused_before_the_model_loads(model_dir, capsys, monkeypatch):
    from legacy_assistant.classifier.predictor import Predictor

    loads = []
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, *args, **kwargs: loads.append(args)))
    assert main(["golden", str(model_dir)]) == 1
    assert _one_error_line(capsys) == "error: --sentences is required to write golden predictions"
    assert loads == []
    assert main(["golden", str(model_dir), "--contexts", "contexts.json"]) == 1
    assert "--contexts is for a responder directory" in _one_error_line(capsys) and loads == []


def test_evaluate_top_must_be_at_least_one(model_dir, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["evaluate", str(model_dir), str(ROOT / "data" / "intents.json"), "--top", "-1"])
    assert raised.value.code == 2 and "--top: must be at least 1, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "nan", "2"])
@pytest.mark.parametrize("command", ["evaluate", "chat", "import-classic", "train"])
def test_a_threshold_out_of_range_is_refused_before_anything_is_read(model_dir, tmp_path, capsys, command, threshold):
    intents = str(ROOT / "data" / "intents.json")
    missing = str(tmp_path / "missing")  # read first, it would be the error
    argv = {
        "evaluate": ["evaluate", missing, intents, "--out", str(tmp_path / "report")],
        "chat": ["chat", "--model", missing],
        "import-classic": ["import-classic", missing, "--words", missing, "--classes", missing, "--intents", missing,
                           "--out", str(tmp_path / "out")],
        "train": ["train", missing, "--out", str(tmp_path / "out")],
    }[command]
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--threshold", threshold])
    assert raised.value.code == 2
    assert f"--threshold: must be a number from 0 to 1, got {threshold}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_info_on_a_file_says_it_is_not_a_model_directory(capsys):
    assert main(["info", str(ROOT / "data" / "intents.json")]) == 1
    assert "a file, not a model directory" in _one_error_line(capsys)


def test_whole_number_arguments_name_what_is_wrong():
    import argparse

    from legacy_assistant.cli.arguments import seed_number, whole_number

    at_least_one, between, seed = whole_number(low=1), whole_number(0, 9), seed_number()
    assert at_least_one("7") == 7 and between("0") == 0 and between("9") == 9
    assert seed(str(-(2**63))) == -(2**63) and seed(str(2**63 - 1)) == 2**63 - 1
    for parse, text, message in [
        (at_least_one, "0", "must be at least 1, got 0"),
        (at_least_one, "2.5", "expected a whole number, got '2.5'"),
        (between, "10", "must be at most 9, got 10"),
        (between, "-1", "must be at least 0, got -1"),
        (seed, str(2**63), f"must be a 64-bit integer, got {2**63}"),
        (seed, str(-(2**63) - 1), "must be a 64-bit integer"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            parse(text)


@pytest.mark.parametrize("seed", [-1, 2**32 - 1, 10**23, True])
def test_seeds_numpy_or_tensorflow_cannot_take_are_refused_by_every_config(seed):
    from legacy_assistant.classifier.config import MAX_SEED, TrainingConfig
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.responder.config import ResponderTrainingConfig
    from legacy_assistant.responder.evaluation import EvaluationSettings

    expected = "seed must be a whole number" + ("" if seed is True else f" from 0 to {MAX_SEED}")
    with pytest.raises(ConfigError, match=expected):
        TrainingConfig(seed=seed)
    with pytest.raises(ConfigError, match=expected):
        EvaluationSettings(seed=seed)
    if seed is True:
        with pytest.raises(ConfigError, match="seed must be an integer"):
            ResponderTrainingConfig(seed=seed)
    elif 0 <= seed < 2**63:
        assert ResponderTrainingConfig(seed=seed).seed == seed  # the responder's range is wider
    else:
        with pytest.raises(ConfigError, match="seed must be a whole number from 0 to 9223372036854775807"):
            ResponderTrainingConfig(seed=seed)
    assert TrainingConfig(seed=MAX_SEED).seed == MAX_SEED and TrainingConfig(seed=0).seed == 0


def test_a_seed_out_of_range_is_a_usage_error_naming_the_flag_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "model"
    with pytest.raises(SystemExit) as raised:
        main(["train", str(ROOT / "tests" / "data" / "tiny_intents.json"), "--out", str(out), "--seed", "-1"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "legacy-assistant train: error: argument --seed: seed must be a whole number from 0 to 4294967294, got -1"
    ) and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "DATA", "--epochs", "0"], "argument --epochs: epochs must be at least 1, got 0"),
        (["train", "DATA", "--patience", "-1"], "argument --patience: early_stopping_patience must be >= 0, got -1"),
        (["train", "DATA", "--batch-size", "0"], "argument --batch-size: batch_size must be at least 1, got 0"),
        (["train", "DATA", "--learning-rate", "nan"], "argument --learning-rate: learning_rate must be a finite number"),
        (["train", "DATA", "--validation-split", "1.5"], "argument --validation-split: validation_split must be in"),
        (["train", "DATA", "--epochs", "two"], "argument --epochs: expected a whole number, got 'two'"),
        (["train-responder", "DATA", "--epochs", "0"], "argument --epochs: epochs must be at least 1, got 0"),
        (["train-responder", "DATA", "--vocab-size", "4"], "argument --vocab-size: vocab_size must be above 4"),
        (["train-responder", "DATA", "--max-minutes", "-1"], "argument --max-minutes: max_minutes must be >= 0"),
        (["train-responder", "DATA", "--sampled-softmax", "-1"], "argument --sampled-softmax: sampled_softmax must be"),
        (["train-responder", "DATA", "--seed", "-1"], "argument --seed: seed must be a whole number from 0"),
    ],
)
def test_a_bad_training_flag_is_a_usage_error_naming_the_flag(tmp_path, capsys, argv, message):
    """Every other command refuses a bad flag value as the command line is read (exit status 2,
    naming the flag); train and train-responder said only the setting's name, exit status 1, as
    though a --config file had set it."""
    out = tmp_path / "out"
    argv = [str(TINY_INTENTS) if word == "DATA" else word for word in argv]
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert raised.value.code == 2 and message in err.splitlines()[-1] and "Traceback" not in err, err
    assert not out.exists()


def test_a_bad_value_in_a_config_file_still_names_the_file(tmp_path, capsys):
    config = tmp_path / "my.json"
    config.write_text('{"epochs": 0}', encoding="utf-8")
    argv = ["train", str(TINY_INTENTS), "--out", str(tmp_path / "out"), "--config", str(config)]
    assert main(argv) == 1
    assert _one_error_line(capsys) == f"error: {config}: epochs must be at least 1, got 0"


def test_force_never_deletes_the_commands_own_inputs_or_a_folder_that_is_no_model(tmp_path, capsys):
    intents = ROOT / "tests" / "data" / "tiny_intents.json"
    inside = tmp_path / "model"
    inside.mkdir()
    own_input = inside / "intents.json"
    own_input.write_bytes(intents.read_bytes())
    args = ["--no-plot", "--epochs", "1", "--force"]
    assert main(["train", str(own_input), "--out", str(inside), *args]) == 1
    assert "an input of this command" in _one_error_line(capsys) and own_input.exists()

    corpus = inside / "corpus.txt"
    corpus.write_text('[{"text": "hi", "condition": "neutral"}, {"text": "hello", "condition": "joy"}]\n')
    assert main(["train-responder", str(corpus), "--out", str(inside), *args]) == 1
    assert "an input of this command" in _one_error_line(capsys) and corpus.exists()

    # a --config file kept in the model directory it replaces (a model there, so --force would replace it)
    model_dir = tmp_path / "kept-config"
    model_dir.mkdir()
    (model_dir / "assistant.json").write_text("{}")
    config = model_dir / "train-config.json"
    config.write_text('{"epochs": 1}')
    assert main(["train", str(intents), "--out", str(model_dir), "--config", str(config), *args]) == 1
    assert "an input of this command" in _one_error_line(capsys) and config.exists()
    (model_dir / "assistant.json").rename(model_dir / "responder.json")
    responder_config = model_dir / "tiny.json"
    responder_config.write_text('{"epochs": 1}')
    assert main(["train-responder", str(corpus), "--out", str(model_dir), "--config", str(responder_config),
                 *args]) == 1
    assert "an input of this command" in _one_error_line(capsys) and responder_config.exists()

    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    (not_a_model / "important.txt").write_text("keep me")
    assert main(["train", str(intents), "--out", str(not_a_model), *args]) == 1
    assert "holds files but no model" in _one_error_line(capsys)
    assert (not_a_model / "important.txt").read_text() == "keep me"


def test_force_still_replaces_a_model_directory_and_fills_an_empty_one(tmp_path):
    from legacy_assistant.artifacts.directory import check_destination
    from legacy_assistant.errors import ArtifactError

    model, empty = tmp_path / "model", tmp_path / "empty"
    model.mkdir()
    empty.mkdir()
    (model / "assistant.json").write_text("{}")
    (model / "history.json").write_text("[]")
    check_destination(model, force=True)
    check_destination(empty, force=True)
    check_destination(model, force=True, inputs=[tmp_path / "data.json", model.parent])  # a parent is no input inside
    with pytest.raises(ArtifactError, match="an input of this command"):
        check_destination(model, force=True, inputs=[model / "history.json"])
    with pytest.raises(ArtifactError, match="an input of this command"):
        check_destination(model, force=True, inputs=[model])


def test_reports_never_replace_a_file_of_the_model_or_an_input(model_dir, tmp_path, capsys):
    data = tmp_path / "data.json"
    data.write_bytes((ROOT / "tests" / "data" / "tiny_intents.json").read_bytes())
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\nbye\n")
    manifest_before = (model_dir / "assistant.json").read_bytes()
    refused = [
        (["evaluate", str(model_dir), str(data), "--out", str(model_dir / "assistant.json")], "a file of the model"),
        (["evaluate", str(model_dir), str(data), "--out", str(model_dir / "history.json")], "a file of the model"),
        (["evaluate", str(model_dir), str(data), "--out", str(data)], "an input of this command"),
        (["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(model_dir / "assistant.json")],
         "a file of the model"),
        (["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(sentences)],
         "an input of this command"),
        (["golden", str(model_dir), "--check", "--report", str(model_dir / "golden.json")], "an input of this command"),
    ]
    for argv, message in refused:
        assert main(argv) == 1, argv
        assert message in _one_error_line(capsys), argv
    assert (model_dir / "assistant.json").read_bytes() == manifest_before
    assert data.read_bytes() == (ROOT / "tests" / "data" / "tiny_intents.json").read_bytes()


def test_reports_never_replace_a_file_of_another_model(model_dir, tmp_path, capsys):
    """Only the command's own model was looked after: a golden file or a report could be
    written over another model's manifest, which that model then failed to load with."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    (other / "saved_model" / "variables").mkdir(exist_ok=True)
    data = tmp_path / "data.json"
    data.write_bytes((ROOT / "tests" / "data" / "tiny_intents.json").read_bytes())
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\n")
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    refused = [
        ["evaluate", str(model_dir), str(data), "--out", str(other / "assistant.json")],
        ["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(other / "history.json")],
        ["golden", str(model_dir), "--check", "--report", str(other / "saved_model" / "variables" / "new.json")],
    ]
    for argv in refused:
        assert main(argv) == 1, argv
        assert f"is a file of another model, {other.resolve()}: write somewhere else" in _one_error_line(capsys), argv
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == before
    # a file of one's own beside another model's is no harm, as beside the command's own, and
    # may be written again
    for _ in range(2):
        assert main(["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(other / "mine.json")]) == 0
    # a model kept inside another's folder writes its own golden file
    inner = other / "inner"
    shutil.copytree(model_dir, inner)
    assert main(["golden", str(inner), "--sentences", str(sentences)]) == 0 and (inner / "golden.json").is_file()


def test_a_report_onto_a_folder_or_under_a_file_is_refused_before_any_work(model_dir, tmp_path, capsys, monkeypatch):
    from legacy_assistant.classifier import golden

    monkeypatch.setattr(golden, "golden_cases", lambda *a: pytest.fail("worked before checking where to write"))
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\n")
    folder, a_file = tmp_path / "reports", tmp_path / "notes.txt"
    folder.mkdir()
    a_file.write_text("mine")
    refused = [
        (["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(folder)], "is a folder"),
        (["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(a_file / "g.json")],
         f"{a_file} is a file, not a folder"),
        (["golden", str(model_dir), "--check", "--report", str(a_file / "sub" / "r.json")], "is a file, not a folder"),
        # a new file in the SavedModel: every one there is listed, so the model would no longer load
        (["golden", str(model_dir), "--sentences", str(sentences), "--golden",
          str(model_dir / "saved_model" / "golden.json")], "inside the SavedModel of"),
        (["golden", str(model_dir), "--check", "--report", str(model_dir / "saved_model" / "variables" / "r.json")],
         "inside the SavedModel of"),
        # "" wrote over the model's own golden file, as if --golden were not given
        (["golden", str(model_dir), "--sentences", str(sentences), "--golden", ""], "--golden is an empty path"),
        (["golden", str(model_dir), "--check", "--report", " "], "--report is an empty path"),
        (["golden", str(model_dir), "--sentences", str(sentences), "--tolerance", "0.5"], "give --check too"),
    ]
    golden_before = (model_dir / "golden.json").read_bytes() if (model_dir / "golden.json").exists() else None
    for argv, message in refused:
        assert main(argv) == 1, argv
        assert message in _one_error_line(capsys), argv
    assert a_file.read_text() == "mine"
    assert not list((model_dir / "saved_model").rglob("*.json"))
    if golden_before is not None:
        assert (model_dir / "golden.json").read_bytes() == golden_before


def test_golden_beside_a_model_this_user_cannot_write_says_to_give_golden(model_dir, tmp_path, monkeypatch, capsys):
    """The shipped model of an install lies in a folder its users cannot write: writing its golden
    file was refused without a word of --golden, which writes it elsewhere."""
    from legacy_assistant.artifacts import directory

    real_mkdtemp = directory.tempfile.mkdtemp

    def read_only_model(*args, **kwargs):  # the probe of the folder the golden file goes to
        if Path(kwargs.get("dir", "")) == model_dir:
            raise PermissionError(13, "Permission denied")
        return real_mkdtemp(*args, **kwargs)

    monkeypatch.setattr(directory.tempfile, "mkdtemp", read_only_model)
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\n")
    assert main(["golden", str(model_dir), "--sentences", str(sentences)]) == 1
    assert _one_error_line(capsys) == (
        f"error: {model_dir / 'golden.json'} cannot be written ({model_dir}: Permission denied); "
        "write it elsewhere with --golden PATH (and --check with the same one)"
    )
    elsewhere = tmp_path / "golden.json"
    assert main(["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(elsewhere)]) == 0
    assert main(["golden", str(model_dir), "--check", "--golden", str(elsewhere)]) == 0


def test_golden_makes_the_folders_of_the_files_it_writes(model_dir, tmp_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\n")
    written = tmp_path / "new" / "golden.json"
    assert main(["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(written)]) == 0
    report = tmp_path / "reports" / "r.json"
    assert main(["golden", str(model_dir), "--check", "--golden", str(written), "--report", str(report)]) == 0
    assert json.loads(report.read_text())["ok"] is True


def test_a_golden_file_is_replaced_whole_or_not_at_all(model_dir, tmp_path, monkeypatch):
    import os

    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello there\n")
    target = tmp_path / "g.json"
    assert main(["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(target)]) == 0
    good = target.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(["golden", str(model_dir), "--sentences", str(sentences), "--golden", str(target)]) == 1
    assert target.read_bytes() == good  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "sentences.txt"]  # no temporary left


def test_an_empty_out_path_is_named_as_such(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "" would be the working directory
    data = ROOT / "tests" / "data" / "tiny_intents.json"
    for argv in (["train", str(data), "--out", ""], ["train", str(data), "--out", " ", "--force"],
                 ["train-responder", str(data), "--out", ""]):
        assert main(argv) == 1, argv
        assert "--out is an empty path" in _one_error_line(capsys), argv


def test_flags_the_command_would_ignore_are_refused(model_dir, tmp_path, capsys):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("hello\n")
    refused = [
        (["golden", str(model_dir), "--check", "--sentences", str(sentences)], "--sentences writes a golden file"),
        (["golden", str(model_dir), "--report", str(tmp_path / "r.json")], "give --check too"),
        (["migrate", str(model_dir), "--out", str(tmp_path / "out"), "--corpus", str(sentences)],
         "--corpus is for a responder"),
        (["migrate", str(model_dir), "--out", str(tmp_path / "out"), "--contexts", "5"],
         "--contexts is for a responder"),
        (["migrate", str(RESPONDER_DIR), "--out", str(tmp_path / "out"), "--probes", "5"],
         "--probes is for an intent model"),
    ]
    for argv, message in refused:
        assert main(argv) == 1, argv
        assert message in _one_error_line(capsys), argv
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["golden", "MODEL", "--check", "--tolerance", "nan"], "--tolerance: must be a finite number >= 0, got nan"),
        (["golden", "MODEL", "--check", "--tolerance", "-1"], "--tolerance: must be a finite number >= 0, got -1"),
        (["migrate", "MODEL", "--out", "OUT", "--tolerance", "inf"], "--tolerance: must be a finite number >= 0"),
        (["migrate", "MODEL", "--out", "OUT", "--probes", "-1"], "--probes: must be at least 0, got -1"),
        (["migrate", "MODEL", "--out", "OUT", "--probes", str(10**30)], "--probes: must be at most 1000000"),
        (["migrate", "MODEL", "--out", "OUT", "--contexts", "contexts.txt"],
         "--contexts: expected a whole number, got 'contexts.txt'"),
        (["migrate", "MODEL", "--out", "OUT", "--contexts", "0"], "--contexts: must be at least 1, got 0"),
    ],
)
def test_tolerances_and_probe_counts_that_would_skew_a_verdict_are_refused(model_dir, tmp_path, capsys, argv, message):
    argv = [str(model_dir) if a == "MODEL" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2 and message in capsys.readouterr().err


def test_an_unknown_runtime_in_the_environment_is_one_error_line(model_dir, monkeypatch, capsys):
    from compat import selection

    monkeypatch.setenv("LEGACY_ASSISTANT_RUNTIME", "bogus")
    monkeypatch.setattr(selection, "_claimed", None)  # as in a fresh process: nothing imported yet
    monkeypatch.setattr(selection, "_selected", None)
    assert main(["golden", str(model_dir), "--check"]) == 1
    assert _one_error_line(capsys) == (
        "error: LEGACY_ASSISTANT_RUNTIME='bogus': unknown runtime, choose one of compat, tf2"
    )


def test_a_corpus_whose_words_are_all_too_rare_is_refused_before_training(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text('[{"text": "alpha beta", "condition": "neutral"}, {"text": "gamma delta", "condition": "joy"}]\n')
    out = tmp_path / "responder"
    assert main(["train-responder", str(corpus), "--out", str(out), "--no-plot"]) == 1
    assert "no token occurs min_count=2 times" in _one_error_line(capsys) and not out.exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"embedding_size": 10**30}, "embedding_size must be at most 65,536"),
        ({"decoder_units": 65_537}, "decoder_units must be at most 65,536"),
        ({"max_context_turns": 10**30}, "max_context_turns must be at most 100,000"),
        ({"epochs": 10**12}, "epochs must be at most 1,000,000,000"),
    ],
)
def test_responder_sizes_beyond_reason_are_refused(setting, message):
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.responder.config import ResponderTrainingConfig

    with pytest.raises(ConfigError, match=message):
        ResponderTrainingConfig(**setting)
    assert ResponderTrainingConfig(embedding_size=65_536, seed=2**63 - 1).embedding_size == 65_536


def test_an_intent_no_pattern_of_which_holds_a_word_is_named_with_its_file_and_index(tmp_path, capsys):
    intents = tmp_path / "punct.json"
    intents.write_text(json.dumps({"intents": [
        {"tag": "greeting", "patterns": ["hello there", "hello friend"], "responses": ["Hi"]},
        {"tag": "dots", "patterns": ["!!!", "?", "..."], "responses": ["x"]},
        {"tag": "coffee", "patterns": ["order coffee", "coffee please"], "responses": ["z"]},
        {"tag": "fallback", "patterns": [], "responses": ["Sorry?"]},
    ]}), encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", str(intents), "--out", str(out), "--epochs", "1", "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert f"error: {intents}: 1 problem(s) in intents file:" in err and "Traceback" not in err, err
    assert "  - intent #1 ('dots'): field 'patterns': no pattern holds a word the classifier keeps" in err, err
    assert not out.exists()


FULL_DISK_MESSAGE = (  # what TensorFlow 2.21 said when the disk filled under a SavedModel's variables
    "Graph execution error:\n\nDetected at node 'save/SaveV2' defined at (most recent call last):\n"
    '    File "/work/main/compat/classifier/saved_model.py", line 58, in export_saved_model\n'
    "Node: 'save/SaveV2'\n/full/.m.tmp-3rymo6vc/saved_model/variables/variables_temp/part-00000-of-00001"
    ".data-00000-of-00001.tempstate5310813956084324470; No space left on device\n\t [[{{node save/SaveV2}}]]\n"
    "Hint: If you want to see a list of allocated tensors when OOM happens, add report_tensor_allocations_upon_oom"
)


def test_a_tensorflow_error_is_one_error_line_and_any_other_a_traceback(tmp_path, capsys, monkeypatch):
    """A full disk under the export was TensorFlow's ResourceExhaustedError: 80 lines of stack
    and an out-of-memory hint, where the command says one line for every other write error."""
    from compat.failures import tensorflow_error_text
    from compat.runtime import tf
    from legacy_assistant.classifier import artifact

    def full_disk(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, FULL_DISK_MESSAGE)

    monkeypatch.setattr(artifact, "export_artifact", full_disk)
    argv = ["train", str(TINY_INTENTS), "--out", str(tmp_path / "m"), "--epochs", "1", "--no-plot"]
    assert main(argv) == 1
    assert _one_error_line(capsys) == (
        "error: TensorFlow ResourceExhaustedError: /full/.m.tmp-3rymo6vc/saved_model/variables/variables_temp/"
        "part-00000-of-00001.data-00000-of-00001.tempstate5310813956084324470; No space left on device"
    )
    assert tensorflow_error_text(RuntimeError("a bug")) is None
    # TensorFlow 2.12 writes each stack frame's source line under it
    old_style = FULL_DISK_MESSAGE.replace("export_saved_model\n", "export_saved_model\n      saver.save(sess, path)\n")
    assert tensorflow_error_text(tf.errors.ResourceExhaustedError(None, None, old_style)).endswith(
        "; No space left on device")
    assert tensorflow_error_text(tf.errors.UnknownError(None, None, "/m/x.data: Read-only file system")) == (
        "TensorFlow UnknownError: /m/x.data: Read-only file system")
    # any other TensorFlow error is a bug: its traceback is kept
    assert tensorflow_error_text(tf.errors.InvalidArgumentError(None, None, "shape mismatch")) is None
    assert tensorflow_error_text(tf.errors.ResourceExhaustedError(None, None, "")) == (
        "TensorFlow ResourceExhaustedError: no message")

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(artifact, "export_artifact", bug)
    with pytest.raises(RuntimeError, match="a bug"):  # not hidden: its traceback is what to report
        main(argv)


def test_a_csv_label_no_example_of_which_holds_a_word_is_named_with_its_file(tmp_path, capsys):
    data = tmp_path / "punct.csv"
    data.write_text("text,label\n!!!,dots\n?,dots\nhello there,greeting\nhello you,greeting\n", encoding="utf-8")
    assert main(["train", str(data), "--out", str(tmp_path / "model"), "--epochs", "1", "--no-plot"]) == 1
    assert _one_error_line(capsys) == (
        f"error: {data}: label(s) 'dots': no example holds a word the classifier keeps (only punctuation or emoji, "
        "or words too rare for min_count); give them examples with words"
    )


def test_a_pattern_with_no_word_is_warned_about_by_name(tmp_path, caplog):
    """A pattern of emoji trained as an empty message: parse then ranked its intent first for any
    message of emoji or punctuation, and nothing said so."""
    data = tmp_path / "thumbs.csv"
    data.write_text("text,label\n\U0001F44D,thanks\nthank you,thanks\nthanks a lot,thanks\n"
                    "hello there,greeting\nhello you,greeting\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.training"):
        assert main(["train", str(data), "--out", str(tmp_path / "model"), "--epochs", "1", "--no-plot"]) == 0
    assert [r.getMessage() for r in caplog.records if "holds no word" in r.getMessage()] == [
        f'{data}: line 2: training pattern "\U0001F44D" of intent "thanks" holds no word the classifier keeps '
        "(punctuation and emoji are dropped, rare words cut by min_count): it only teaches that an empty message is "
        "that intent"
    ]


def test_a_pattern_with_no_word_is_warned_about_with_its_intent_and_place_in_the_intents_file(tmp_path, caplog):
    """The warning named the file and the pattern's text, not which intent of the file holds it, nor
    which of its patterns it is."""
    data = tmp_path / "intents.json"
    intents = [
        {"tag": "greeting", "patterns": ["hello there", "hello you"], "responses": ["Hi"]},
        {"tag": "thanks", "patterns": ["thank you", "\U0001F44D", "thanks a lot"], "responses": ["Welcome"]},
    ]
    data.write_text(json.dumps({"intents": intents}), encoding="utf-8")
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.training"):
        assert main(["train", str(data), "--out", str(tmp_path / "model"), "--epochs", "1", "--no-plot"]) == 0
    assert [r.getMessage() for r in caplog.records if "holds no word" in r.getMessage()] == [
        f"{data}: intent #1 ('thanks') field 'patterns'[1]: training pattern \"\U0001F44D\" of intent \"thanks\" "
        "holds no word the classifier keeps (punctuation and emoji are dropped, rare words cut by min_count): it only "
        "teaches that an empty message is that intent"
    ]


@pytest.mark.parametrize("preset, tokenizer, texts, remedy", [
    ("classic", "treebank", ["你好", "您好啊", "再见", "明天见"], "--tokenizer unicode"),
    ("classic", "unicode", ["สวัสดีครับ", "หวัดดี", "ลาก่อน", "บายบาย"], "the ngrams preset"),
    ("classic", "unicode", ["你好", "您好啊", "再见", "明天见"], None),  # a word per character
    # Katakana's length mark is of no script: a loanword was no run of two letters
    ("classic", "treebank", ["コーヒー", "ケーキ", "ビール", "ｺｰﾋｰ"], "--tokenizer unicode"),
    ("classic", "unicode", ["コーヒー", "ケーキ", "すごーーい", "ｺｰﾋｰ"], None),  # "ーー" stays, no letter
    ("ngrams", "treebank", ["你好", "您好啊", "再见", "明天见"], None),  # character n-grams
    ("classic", "treebank", ["hello", "bonjour à tous", "bye", "au revoir"], None),
])
def test_patterns_without_spaces_read_as_whole_words_are_warned_about(caplog, preset, tokenizer, texts, remedy):
    """With the classic preset, a Chinese or Thai pattern was one word: a paraphrase shared none
    of the model's words, so it always got the fallback, and training said nothing."""
    from dataclasses import replace

    from legacy_assistant.classifier import training
    from legacy_assistant.classifier.presets import preset as named_preset

    config = named_preset(preset)
    config = replace(config, features=replace(config.features, text=replace(config.features.text, tokenizer=tokenizer)))
    data = training.label_data(texts, ["hi", "hi", "bye", "bye"], config, None, None)
    data = replace(data, source="chat.json")
    with caplog.at_level("WARNING", logger="legacy_assistant.classifier.training"):
        training.featurize(data, config)
    warned = [r.getMessage() for r in caplog.records if "without spaces" in r.getMessage()]
    if remedy is None:
        assert warned == []
    else:
        assert len(warned) == 1
        assert warned[0].startswith("chat.json: 4 of 4 training patterns hold text written without spaces between words")
        assert f"tokenizer {tokenizer!r} reads as one word each run" in warned[0]
        assert f"train with {remedy}" in warned[0]


@pytest.mark.parametrize("command", ["train", "train-responder"])
def test_an_out_that_is_a_file_is_named_as_one_without_a_force_hint(tmp_path, capsys, command):
    """``--force`` cannot make a file a model directory: the first answer says what is wrong."""
    afile = tmp_path / "afile.txt"
    afile.write_text("keep me\n")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps([{"text": "hi", "condition": "joy"}, {"text": "hello", "condition": "joy"}]) + "\n")
    data = str(Path(__file__).parent / "data" / "tiny_intents.json") if command == "train" else str(corpus)
    assert main([command, data, "--out", str(afile), "--no-plot"]) == 1
    line = _one_error_line(capsys)
    assert "is a file, not a model directory" in line and "--force" not in line, line
    assert afile.read_text() == "keep me\n"


def test_migrate_refuses_a_destination_before_any_work(model_dir, tmp_path, capsys, caplog):
    """A file as --out is refused at once, for a responder (whose checks decode 200 contexts
    first) as for an intent model."""
    caplog.set_level(logging.INFO)
    taken = tmp_path / "taken.txt"
    taken.write_text("mine\n")
    for source in (model_dir, RESPONDER_DIR):
        caplog.clear()
        assert main(["migrate", str(source), "--out", str(taken)]) == 1
        assert "is a file, not a model directory" in _one_error_line(capsys), source
        assert not any("decoding" in record.getMessage() for record in caplog.records), source
    assert taken.read_text() == "mine\n"


def test_migrates_defaults_are_the_librarys():
    from legacy_assistant.classifier import migration as classifier_migration
    from legacy_assistant.cli import migrate
    from legacy_assistant.responder import migration as responder_migration

    assert migrate.DEFAULT_PROBES == classifier_migration.DEFAULT_PROBES
    assert migrate.DEFAULT_CONTEXTS == responder_migration.DEFAULT_CONTEXTS


def test_sigterm_ends_a_command_as_ctrl_c_does(monkeypatch, capsys):
    """``kill PID`` (a supervisor, ``timeout``) runs the same clean-up as Ctrl-C: a staging
    folder removed, a child process stopped; Python's default would end the process at once."""
    import os
    import signal
    import time

    from legacy_assistant.cli import info

    cleaned = []

    def run(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        finally:
            cleaned.append(True)

    monkeypatch.setattr(info, "run", run)
    assert main(["info", "anything"]) == 128 + signal.SIGTERM
    assert cleaned == [True]
    assert capsys.readouterr().err.strip() == "terminated"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handed back after the command


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_a_host_programs_stop_handler_is_left_alone(monkeypatch, capsys, signal_name):
    import signal

    from legacy_assistant.cli import info

    signum = getattr(signal, signal_name)
    seen = []
    monkeypatch.setattr(info, "run", lambda args: seen.append(signal.getsignal(signum)) or 0)
    previous = signal.signal(signum, lambda *_: None)
    try:
        handler = signal.getsignal(signum)
        assert main(["info", "anything"]) == 0
        assert seen == [handler] and signal.getsignal(signum) is handler
    finally:
        signal.signal(signum, previous)


def test_sigterm_is_reported_by_a_command_that_ends_quietly_on_an_interrupt(monkeypatch, capsys):
    """A server (the development server, the playground) stops on KeyboardInterrupt and returns 0:
    SIGTERM still ends the process with 143."""
    import os
    import signal
    import time

    from legacy_assistant.cli import info

    def serve_until_stopped(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        except KeyboardInterrupt:
            return 0
        return 0

    monkeypatch.setattr(info, "run", serve_until_stopped)
    assert main(["info", "anything"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "terminated"


def test_chat_names_a_missing_responder_directory_as_the_responder(tmp_path, capsys, monkeypatch):
    """Not "model directory not found", which reads as the intent model's."""
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    gone = tmp_path / "gone"
    assert main(["chat", "--model", str(ROOT / "exported" / "default"), "--responder", str(gone)]) == 1
    assert _one_error_line(capsys) == f"error: responder directory not found: {gone}"
    assert main(["reexport-responder", str(gone)]) == 1
    assert _one_error_line(capsys) == f"error: responder directory not found: {gone}"


def test_force_replaces_a_model_with_one_of_its_kind_only(tmp_path, capsys):
    """A responder (hours of training) is not replaced by an intent model, nor the other way."""
    from legacy_assistant.artifacts.directory import RESPONDER_MANIFEST, check_destination
    from legacy_assistant.errors import ArtifactError

    responder = tmp_path / "responder"
    shutil.copytree(ROOT / "exported" / "responder", responder)
    before = sorted(p.name for p in responder.iterdir())
    assert main(["train", str(TINY_INTENTS), "--out", str(responder), "--force", "--epochs", "1", "--no-plot"]) == 1
    assert _one_error_line(capsys) == (
        f"error: {responder} holds a responder (responder.json) and this writes an intent model: --force replaces "
        "a model of the same kind only; choose another destination, or remove it yourself"
    )
    assert sorted(p.name for p in responder.iterdir()) == before
    intent_model = tmp_path / "intents"
    shutil.copytree(ROOT / "exported" / "default", intent_model)
    with pytest.raises(ArtifactError, match=r"holds an intent model \(assistant\.json\) and this writes a responder"):
        check_destination(intent_model, True, writes=RESPONDER_MANIFEST)
    check_destination(responder, True, writes=RESPONDER_MANIFEST)  # its own kind: replaced
    # without --force, the same answer: "use --force" would only lead to this refusal
    assert main(["train", str(TINY_INTENTS), "--out", str(responder), "--epochs", "1", "--no-plot"]) == 1
    assert "--force replaces a model of the same kind only" in _one_error_line(capsys)
    assert main(["train-responder", str(ROOT / "data" / "responder_contexts.json"), "--out", str(intent_model),
                 "--no-plot"]) == 1
    assert "holds an intent model (assistant.json) and this writes a responder" in _one_error_line(capsys)


def test_chat_takes_the_follow_up_mode_as_serve_does(capsys, monkeypatch):
    """Models made before a follow-up could be marked free text need classic follow-ups to keep
    their flows; the terminal had no way to ask for them."""
    import io

    model = str(ROOT / "exported" / "default")
    lines = {}
    for mode in ("yield", "classic"):
        monkeypatch.setattr("sys.stdin", io.StringIO("can I book a table?\nwhat's on the menu?\n"))
        assert main(["-q", "chat", "--model", model, "--show-intent", "--follow-ups", mode]) == 0
        lines[mode] = capsys.readouterr().out.strip().splitlines()
    assert "  [menu 0." in lines["yield"][-1]
    assert lines["classic"][-1].endswith("[book_table_time 1.00]")
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    assert main(["chat", "--responder", "--follow-ups", "classic"]) == 1
    assert _one_error_line(capsys) == "error: --follow-ups is an intent model option: give --model too"



def test_chat_takes_the_escape_confidence_as_serve_does(capsys, monkeypatch):
    """A server started with another escape confidence left follow-ups at other turns than the
    terminal, which had no way to ask for it: the same conversation went two ways."""
    import io

    model = str(ROOT / "exported" / "default")
    lines = {}
    for confidence in ("0.75", "0.99"):  # "what's on the menu?" is the menu at about 0.92
        monkeypatch.setattr("sys.stdin", io.StringIO("can I book a table?\nwhat's on the menu?\n"))
        assert main(["-q", "chat", "--model", model, "--show-intent", "--escape-confidence", confidence]) == 0
        lines[confidence] = capsys.readouterr().out.strip().splitlines()
    assert "  [menu 0." in lines["0.75"][-1]
    assert lines["0.99"][-1].endswith("[book_table_time 1.00]")
    monkeypatch.setattr("sys.stdin", open("/dev/null"))
    assert main(["chat", "--responder", "--escape-confidence", "0.9"]) == 1
    assert _one_error_line(capsys) == "error: --escape-confidence is an intent model option: give --model too"

STOP_DURING_IMPORTS = """
import json, os, signal
os.environ["OPENBLAS_NUM_THREADS"] = "2"  # a BLAS pool thread on any machine
import legacy_assistant.cli as cli

real_build_parser = cli.build_parser
during = []


def build_parser():
    os.kill(os.getpid(), signal.SIGTERM)  # to the process: any thread that does not block it may take it
    parser = real_build_parser()  # imports numpy, whose BLAS pool starts while the signal waits
    during.append(signal.SIGTERM in signal.sigpending())  # held, not handled yet
    return parser


cli.build_parser = build_parser
before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
status = cli.main(["info", "anything"])
print(json.dumps({"status": status, "during": during,
                  "mask_kept": signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before}))
"""


def test_a_stop_signal_sent_while_the_commands_are_imported_waits_for_their_end():
    """The imports run with the stop signals blocked (the threads they start never take one):
    a SIGTERM sent meanwhile is held, then ends the command as "terminated", and the main
    thread's mask is as it was. In a fresh process, as the command runs: in the test process,
    threads that earlier tests started (TensorFlow's, numpy's) block nothing, and one woken in
    time took the signal before the check, which Python then handled at once."""
    import signal

    from tests.subprocesses import run_python

    ended = run_python(["-c", STOP_DURING_IMPORTS], timeout=120)
    assert ended.returncode == 0, ended.stderr[-3000:]
    assert json.loads(ended.stdout) == {"status": 128 + signal.SIGTERM, "during": [True], "mask_kept": True}
    assert ended.stderr.strip() == "terminated"


def test_a_deleted_working_directory_is_named_as_the_reason(tmp_path, capsys, monkeypatch):
    """A relative path needs the working directory: the error said only "[Errno 2] No such file
    or directory", naming nothing."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert main(["info", "model"]) == 1
    line = _one_error_line(capsys)
    assert line.endswith(": the working directory no longer exists (deleted); cd to a folder that does, or give "
                         "absolute paths"), line


@pytest.mark.parametrize("options", [["--model", "model"], ["--responder", "model"]])
def test_a_deleted_working_directory_is_named_as_the_reason_when_a_model_is_checked(options, tmp_path, capsys,
                                                                                   monkeypatch):
    """The model directory's checks turned every OSError into ``PATH: cannot be read (REASON)``,
    also that of a working directory gone (no path of its own): ``chat --model model`` said
    ``model: cannot be read (No such file or directory)`` instead of naming the working directory."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert main(["chat", *options]) == 1
    line = _one_error_line(capsys)
    assert line.endswith(": the working directory no longer exists (deleted); cd to a folder that does, or give "
                         "absolute paths"), line


def test_an_unnamed_missing_file_is_not_blamed_on_a_working_directory_that_exists(tmp_path, capsys, monkeypatch):
    import legacy_assistant.cli.info

    def missing(args):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(legacy_assistant.cli.info, "run", missing)
    monkeypatch.chdir(tmp_path)
    assert main(["info", "model"]) == 1
    assert _one_error_line(capsys) == "error: [Errno 2] No such file or directory"


def test_evaluating_the_other_kind_of_model_names_the_command_for_it(model_dir, tmp_path, capsys):
    """``evaluate`` given a responder (and ``evaluate-responder`` an intent model) said "load it
    as a responder (--responder)": an option neither command has."""
    corpus = tmp_path / "dialogues.jsonl"
    corpus.write_text(json.dumps([{"text": "hi there", "condition": "neutral"}, {"text": "hello"}]) + "\n")
    assert main(["evaluate", str(RESPONDER_DIR), str(TINY_INTENTS)]) == 1
    line = _one_error_line(capsys)
    assert f"{RESPONDER_DIR}: a responder (responder.json), not an intent model" in line
    assert f"'legacy-assistant evaluate-responder {RESPONDER_DIR} CORPUS'" in line and "--responder" not in line
    assert main(["evaluate-responder", str(model_dir), str(corpus)]) == 1
    line = _one_error_line(capsys)
    assert f"{model_dir}: an intent model (assistant.json), not a responder" in line
    assert f"'legacy-assistant evaluate {model_dir} DATA'" in line and "--model" not in line


def test_a_suggested_command_quotes_a_path_with_spaces(model_dir, tmp_path, capsys, monkeypatch):
    """The command lines the errors suggest are pasted into a shell: a model path with a space
    split into two arguments there."""
    import argparse

    from legacy_assistant.cli import chat, model_kind, serve
    from legacy_assistant.errors import AssistantError, ConfigError

    spaced = tmp_path / "my models" / "bot é"
    spaced.parent.mkdir()
    spaced.symlink_to(model_dir)
    responder = tmp_path / "my models" / "responder"
    responder.symlink_to(RESPONDER_DIR)
    corpus = tmp_path / "dialogues.jsonl"
    corpus.write_text(json.dumps([{"text": "hi there", "condition": "neutral"}, {"text": "hello"}]) + "\n")
    assert main(["evaluate-responder", str(spaced), str(corpus)]) == 1
    assert f"'legacy-assistant evaluate '{spaced}' DATA'" in _one_error_line(capsys)
    assert main(["evaluate", str(responder), str(TINY_INTENTS)]) == 1
    assert f"'legacy-assistant evaluate-responder '{responder}' CORPUS'" in _one_error_line(capsys)

    monkeypatch.setattr(model_kind, "written_for", lambda path, role="model": "tf2" if "tf2" in str(path) else "compat")
    with pytest.raises(AssistantError, match=r"legacy-assistant migrate 'my m' --out DIR"):
        chat._run_behind_model(argparse.Namespace(model="my m", responder="r tf2"))
    with pytest.raises(AssistantError, match=r"legacy-assistant migrate 'my r' --out DIR"):
        chat._run_behind_model(argparse.Namespace(model="m tf2", responder="my r"))
    with pytest.raises(ConfigError, match=rf"legacy-assistant migrate '{responder}' --out DIR"):
        serve.check_responder(str(responder), "tf2")

    from legacy_assistant.classifier.migration import MigrationReport
    from legacy_assistant.cli.migrate import _print_report

    reference = {"sentences": 1, "max_abs_delta": 0.0, "top1_agreement": 1.0}
    _print_report(MigrationReport(model_dir, spaced, {"w": [1]}, reference), as_json=False)
    assert f"serve --runtime tf2 --model '{spaced}' --no-responder" in capsys.readouterr().out


def test_a_path_that_starts_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    """The shell leaves ``~`` alone after an ``=`` (``--out=~/bots/x``) and in quotes: train wrote a
    folder named ``~`` in the working folder, and chat looked for a model there; serve's settings
    already took ``~`` for the home folder."""
    from legacy_assistant.cli import build_parser

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert main(["-q", "train", str(TINY_INTENTS), "--out=~/bots/x", "--epochs", "1", "--no-plot"]) == 0
    assert (home / "bots" / "x" / "assistant.json").is_file() and not (work / "~").exists()
    parser = build_parser()
    for argv in (["migrate", "m", "--out=~/m2"], ["import-classic", "m.h5", "--words", "w", "--classes", "c",
                                                  "--intents", "i", "--out", "~/m2"],
                 ["train-responder", "c", "--out=~/m2"], ["chat", "--model", "~/m2"], ["playground", "--model=~/m2"],
                 ["evaluate", "m", "d", "--out", "~/m2"]):
        args = parser.parse_args(argv)
        assert (args.model if argv[0] in ("chat", "playground") else args.out) == str(home / "m2"), argv
    assert parser.parse_args(["train", "d", "--out", "~/m2"]).out == str(home / "m2")
    assert parser.parse_args(["chat", "--model", "a~/m"]).model == "a~/m"  # only a leading ~


def test_every_file_option_takes_a_leading_tilde_for_the_home_folder(tiny_model_dir, tmp_path, monkeypatch):
    """``golden --golden=~/g.json`` wrote a folder named ``~`` in the working folder, as ``train
    --out=~/x`` once did; the files a command reads (``--config=~/my.json``) were looked for there."""
    from legacy_assistant.cli import build_parser

    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    (home / "sentences.txt").write_text("hi\nbye\n", encoding="utf-8")
    assert main(["-q", "golden", str(tiny_model_dir), "--sentences=~/sentences.txt", "--golden=~/g.json"]) == 0
    assert main(["-q", "golden", str(tiny_model_dir), "--check", "--golden=~/g.json", "--report=~/r.json"]) == 0
    assert json.loads((home / "r.json").read_text(encoding="utf-8"))["ok"] is True
    assert list(work.iterdir()) == []
    parser = build_parser()
    for argv, field in (
        (["golden", "m", "--contexts=~/f"], "contexts"),
        (["train", "d", "--out", "o", "--config=~/f"], "config"),
        (["train", "d", "--out", "o", "--validation-data=~/f"], "validation_data"),
        (["train-responder", "c", "--out", "o", "--config=~/f"], "config"),
        (["import-classic", "m.h5", "--words=~/f", "--classes", "c", "--intents", "i", "--out", "o"], "words"),
        (["import-classic", "m.h5", "--words", "w", "--classes=~/f", "--intents", "i", "--out", "o"], "classes"),
        (["import-classic", "m.h5", "--words", "w", "--classes", "c", "--intents=~/f", "--out", "o"], "intents"),
    ):
        assert getattr(parser.parse_args(argv), field) == str(home / "f"), argv
    for argv, field in (
        (["train-responder", "c", "--out", "o", "--validation", "~/f", "~/g"], "validation"),
        (["evaluate-responder", "m", "c", "--train-corpus", "~/f", "~/g"], "train_corpus"),
    ):
        assert getattr(parser.parse_args(argv), field) == [str(home / "f"), str(home / "g")], argv


def test_migrate_corpus_takes_a_leading_tilde_for_the_home_folder(tmp_path, monkeypatch):
    """``migrate RESPONDER --out DIR --corpus=~/dialogues.txt`` looked for a folder named ``~`` in
    the working folder, as every other file option no longer does."""
    from legacy_assistant.cli import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    args = build_parser().parse_args(["migrate", "r", "--out", "o", "--corpus=~/dialogues.txt"])
    assert args.corpus == str(tmp_path / "dialogues.txt")


def test_a_suggested_command_keeps_a_folder_named_tilde_in_the_working_folder(tmp_path, monkeypatch, capsys):
    """``--checkpoint-dir ./~/run`` (a folder named ``~``): the printed resume command said
    ``--checkpoint-dir '~/run'``, which the option reads as the home folder's ``run``; so did
    migrate's serve command of ``--out ./~/m``, and ``serve --model ./~/m`` itself read the home
    folder's ``m``."""
    import os
    import shlex

    from legacy_assistant.classifier.migration import MigrationReport
    from legacy_assistant.cli import build_parser
    from legacy_assistant.cli.migrate import _print_report
    from legacy_assistant.cli.train_responder import resume_command

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    argv = ["train-responder", "c.txt", "--out", "./~/bot", "--validation", "./~/v.txt", "--config", "./~/c.json"]
    args = parser.parse_args([*argv, "--checkpoint-dir", "./~/run"])
    again = parser.parse_args(shlex.split(resume_command(args, Path(args.checkpoint_dir)))[1:])
    for field in ("out", "checkpoint_dir", "config"):
        assert os.path.abspath(getattr(again, field)) == str(tmp_path / "~" / Path(getattr(args, field)).name), field
    assert [os.path.abspath(path) for path in again.validation] == [str(tmp_path / "~" / "v.txt")]
    reference = {"sentences": 1, "max_abs_delta": 0.0, "top1_agreement": 1.0}
    _print_report(MigrationReport(tmp_path / "m", Path("./~/m"), {"w": [1]}, reference), as_json=False)
    suggested = capsys.readouterr().out.split("serve it with: ", 1)[1].split(" (or", 1)[0]
    served = parser.parse_args(shlex.split(suggested)[1:])
    assert os.path.abspath(served.model) == str(tmp_path / "~" / "m")
    assert parser.parse_args(["serve", "--model", "~/m"]).model == str(tmp_path / "home" / "m")


@pytest.mark.parametrize("flags", [["-v", "-q"], ["--quiet", "--verbose"]])
def test_verbose_and_quiet_together_are_a_usage_error(flags, capsys):
    # both were taken without a word, and --verbose silently won over --quiet
    with pytest.raises(SystemExit) as stopped:
        main([*flags, "info", str(SHIPPED), "--no-load"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "not allowed with argument" in err and "Traceback" not in err


@pytest.mark.parametrize("flag", ["-v", "--verbose", "-q", "--quiet"])
def test_verbose_or_quiet_after_the_command_says_where_it_goes(flag, capsys):
    """-v and -q are the program's options, read before the command: after it they were only
    'unrecognized arguments: -v', which left an operator who wrote 'serve -v' guessing."""
    with pytest.raises(SystemExit) as stopped:
        main(["info", str(SHIPPED), "--no-load", flag])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: {flag} " in err and "Traceback" not in err, err
    assert f"'legacy-assistant {flag} info ...'" in err, err


def test_other_unrecognized_arguments_are_refused_as_before(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["info", str(SHIPPED), "--no-load", "--bogus", "x"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "legacy-assistant: error: unrecognized arguments: --bogus x"
