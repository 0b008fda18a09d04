"""The responder's commands on tiny corpora written here: train-responder (its progress bar, its
one-line errors, Ctrl-C and resuming), info, golden, and chat with a responder alone or behind
an intent model's fallback."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from legacy_assistant.cli import main
from tests import mood_corpus
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER, ROOT, intercept_respond
from tests.mood_corpus import PROMPTS, REPLIES, dialogue_line, write_corpus

HELD_OUT = mood_corpus.HELD_OUT[:2]
TINY = {
    "embedding_size": 24,
    "encoder_units": 24,
    "context_units": 48,
    "decoder_units": 48,
    "condition_size": 8,
    "batch_size": 8,
    "learning_rate": 0.01,
    "min_count": 1,
    "patience": 0,
    "held_out_fraction": 0.0,
}
EPOCHS = 30


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("responder-cli")
    config = folder / "tiny.json"
    config.write_text(json.dumps(TINY), encoding="utf-8")
    return {
        "corpus": write_corpus(folder / "moods.jsonl", PROMPTS),
        "held_out": write_corpus(folder / "held.jsonl", HELD_OUT),
        "config": config,
        "folder": folder,
    }


@pytest.fixture(scope="module")
def trained(files) -> tuple[Path, str, str]:
    """A responder trained by the command; its directory, stdout and stderr."""
    out = files["folder"] / "moods"
    argv = [
        "train-responder",
        str(files["corpus"]),
        "--validation",
        str(files["held_out"]),
        "--out",
        str(out),
        "--config",
        str(files["config"]),
        "--epochs",
        str(EPOCHS),
        "--no-plot",
    ]
    capture = pytest.MonkeyPatch()
    stdout, stderr = io.StringIO(), io.StringIO()
    stderr.isatty = lambda: True  # as on a terminal: the progress bar shows
    # of no known width: tqdm 4.60 (the lowest allowed) takes one from COLUMNS for a stream with no
    # terminal size (pytest-xdist's processes have COLUMNS=80) and cuts the bar's figures off
    capture.delenv("COLUMNS", raising=False)
    capture.delenv("LINES", raising=False)
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        status = main(["-q", *argv])
    finally:
        capture.undo()
    assert status == 0, stderr.getvalue()[-2000:]
    return out, stdout.getvalue(), stderr.getvalue()


def test_evaluate_responder_writes_its_report_when_a_figure_cannot_be_drawn(tmp_path, monkeypatch, caplog):
    from legacy_assistant.common import plots

    def cannot_draw(report, path):
        raise RuntimeError("Matplotlib requires access to a writable cache directory")

    monkeypatch.setattr(plots, "plot_responder_quality", cannot_draw)
    corpus = tmp_path / "corpus.yml"
    corpus.write_text("conversations:\n- - Hello\n  - Hi, how are you?\n- - Do you like movies?\n  - I do.\n")
    out = tmp_path / "reports" / "report.json"
    argv = ["-q", "evaluate-responder", str(ROOT / "exported" / "responder"), str(corpus), "--samples", "2",
            "--latency-replies", "1", "--out", str(out)]
    with caplog.at_level(logging.WARNING):
        assert main(argv) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["model"]
    assert "report-quality.png" not in [p.name for p in out.parent.iterdir()]
    assert [r.getMessage() for r in caplog.records if "not drawn" in r.getMessage()] == [
        "report-quality.png not drawn (RuntimeError: Matplotlib requires access to a writable cache directory); "
        "the report is written without it"
    ]


def _tokens(text: str) -> list[str]:
    from legacy_assistant.responder.vocabulary import tokenize

    return tokenize(text)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if " INFO " not in line and " WARNING " not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_info_shows_the_seed_of_a_responder(capsys):
    manifest = json.loads((DEFAULT_RESPONDER / "responder.json").read_text(encoding="utf-8"))
    assert main(["info", str(DEFAULT_RESPONDER), "--no-load"]) == 0
    training = [x for x in capsys.readouterr().out.splitlines() if x.startswith("training ")][0]
    assert training.endswith(f"; seed {manifest['training']['seed']}")


def test_info_shows_when_a_responder_was_reexported_and_by_which_versions(capsys):
    # The shipped responder's SavedModel was written again after training: its files are not
    # what the creation date and the training versions describe, and info says so.
    reexported = json.loads((DEFAULT_RESPONDER / "responder.json").read_text(encoding="utf-8"))["reexported"]
    assert main(["info", str(DEFAULT_RESPONDER), "--no-load"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("reexported ")]
    versions = ", ".join(f"{k} {v}" for k, v in reexported["versions"].items())
    assert lines == [f"reexported {reexported['at']} (the SavedModel, with {versions})"]
    assert main(["info", str(DEFAULT_RESPONDER), "--no-load", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reexported"] == reexported


# --- train-responder ---------------------------------------------------------------------------


def test_train_responder_exports_what_info_shows(trained, files, capsys):
    out, printed, _ = trained
    manifest = json.loads((out / "responder.json").read_text(encoding="utf-8"))
    summary = manifest["summary"]
    assert summary["epochs_run"] == EPOCHS and summary["stopped"] == "epochs"
    assert summary["train_pairs"] == len(PROMPTS) * len(REPLIES)
    assert summary["held_out_pairs"] == len(HELD_OUT) * len(REPLIES)
    assert manifest["training"]["decoder_units"] == TINY["decoder_units"]  # --config was applied
    assert [r["name"] for r in manifest["source"]["corpora"]] == ["moods.jsonl"]
    assert [r["name"] for r in manifest["source"]["held_out"]] == ["held.jsonl"]
    assert f"validation perplexity {summary['val_perplexity']:.2f} (epoch {summary['best_epoch']})" in printed
    assert f"exported to {out}" in printed

    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "responder" and info["verified"] == "checksums ok, SavedModel loads"
    assert info["vocabulary_size"] == len(manifest["vocabulary"]["tokens"]) == info["spec"]["vocab_size"]
    assert info["conditions"] == ["neutral", "anger", "joy", "fear", "sadness"]
    assert info["val_perplexity"] == pytest.approx(summary["val_perplexity"])
    assert info["runtime"] == "compat"
    assert main(["info", str(out), "--no-load"]) == 0
    text = capsys.readouterr().out
    assert "verified   checksums ok (" in text
    each = len(PROMPTS)  # every prompt answered once under each condition
    assert f"conditions neutral ({each}), anger ({each}), joy ({each}), fear ({each}), sadness ({each}) " in text
    assert info["condition_pairs"] == dict.fromkeys(["neutral", "anger", "joy", "fear", "sadness"], each)
    assert f"vocabulary {info['vocabulary_size']} tokens" in text
    assert f"perplexity {summary['val_perplexity']:.2f} on the held-out pairs" in text
    assert f"decoder {TINY['decoder_units']} GRU" in text
    assert "\nruntime    compat\n" in text


def test_train_responder_shows_one_bar_of_every_batch_with_loss_and_perplexity(trained):
    _, _, err = trained
    err = err.replace("\r", "\n")
    totals = {int(total) for total in re.findall(r"training:.*?\d+/(\d+) \[", err)}
    batches = -(-len(PROMPTS) * len(REPLIES) // TINY["batch_size"])  # per epoch, the last one partial
    assert totals == {EPOCHS * batches}, err[:500]
    last = [line for line in err.splitlines() if "training:" in line][-1]
    assert f"epoch={EPOCHS}/{EPOCHS}" in last and "loss=" in last and "ppl=" in last and "val_ppl=" in last


def test_off_a_terminal_training_logs_where_it_stands_within_an_epoch(files, tmp_path, monkeypatch, caplog):
    """No bar there, and an epoch of a large corpus takes many minutes: a line now and then."""
    import legacy_assistant.cli.train_responder as command

    monkeypatch.setattr(command, "PROGRESS_LOG_SECONDS", 0.0)
    argv = ["train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--config", str(files["config"]),
            "--epochs", "1", "--no-plot"]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    messages = [r.getMessage() for r in caplog.records]
    batches = -(-len(PROMPTS) * len(REPLIES) // TINY["batch_size"])
    within = [m for m in messages if re.fullmatch(rf"training: epoch 1/1, batch \d+/\d+, step \d+, loss [\d.]+, perplexity [\d.]+", m)]
    assert len(within) >= batches - 2, messages  # the 0 s interval: about one a batch
    assert any(m.startswith("preparing ") and "dialogue(s)" in m for m in messages)


def test_train_responder_refuses_an_existing_directory_unless_forced(trained, files, capsys):
    out, _, _ = trained
    argv = ["-q", "train-responder", str(files["corpus"]), "--out", str(out), "--epochs", "1"]
    assert main(argv) == 1
    assert "already exists (use --force to replace it)" in _one_error_line(capsys)


@pytest.mark.pinned_only
def test_a_malformed_dialogue_is_one_error_line_unless_skipped(files, tmp_path, capsys, caplog):
    corpus = tmp_path / "broken.jsonl"
    lines = [dialogue_line(p, c) for p in PROMPTS[:2] for c in ("joy", "anger")]
    lines.insert(2, '[{"text": "only one turn", "condition": "neutral"}]')
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "m"
    argv = [
        "train-responder",
        str(corpus),
        "--out",
        str(out),
        "--config",
        str(files["config"]),
        "--epochs",
        "1",
        "--no-plot",
    ]
    assert main(["-q", *argv]) == 1
    line = _one_error_line(capsys)
    assert f"{corpus}: line 3: a dialogue needs at least 2 turns, got 1" in line
    assert "--skip-bad-dialogues" in line
    assert not out.exists()

    assert main([*argv, "--skip-bad-dialogues"]) == 0
    assert "4 dialogues from 1 corpus path(s)" in capsys.readouterr().out
    assert any("skipped: line 3" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]["train_pairs"] == 4



@pytest.mark.pinned_only
def test_a_lone_surrogate_escape_is_a_bad_dialogue_not_a_traceback(files, tmp_path, capsys, caplog):
    corpus = tmp_path / "surrogate.jsonl"
    lines = [dialogue_line(p, c) for p in PROMPTS[:2] for c in ("joy", "anger")]
    lines.insert(1, r'[{"text": "hello \ud800 there", "condition": "joy"}, {"text": "hi", "condition": "joy"}]')
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    checkpoints = tmp_path / "ck"
    argv = ["train-responder", str(corpus), "--out", str(tmp_path / "m"), "--config", str(files["config"]),
            "--epochs", "1", "--no-plot", "--checkpoint-dir", str(checkpoints)]
    assert main(["-q", *argv]) == 1
    line = _one_error_line(capsys)
    assert f"{corpus}: line 2, turn 1: 'text' is not valid Unicode text (a lone surrogate escape" in line
    assert "--skip-bad-dialogues" in line
    assert main([*argv, "--skip-bad-dialogues"]) == 0
    assert "4 dialogues from 1 corpus path(s)" in capsys.readouterr().out
    assert any("skipped: line 2, turn 1" in r.getMessage() for r in caplog.records)


def test_a_corpus_given_twice_is_one_error_line_without_the_skip_hint(files, tmp_path, capsys):
    """Read twice, every dialogue would be trained on twice; skipping bad dialogues cannot help."""
    corpus = files["corpus"]
    for paths in ([corpus, corpus], [corpus, corpus.parent / ".." / corpus.parent.name / corpus.name]):
        argv = ["-q", "train-responder", *map(str, paths), "--out", str(tmp_path / "m"), "--no-plot"]
        assert main(argv) == 1
        line = _one_error_line(capsys)
        assert line.startswith(f"error: {paths[1]}: given twice") and "--skip-bad-dialogues" not in line
        assert not (tmp_path / "m").exists()


def test_resume_from_a_folder_without_a_run_is_one_error_line(files, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for name, found in (("typo", "no such folder"), ("empty", "it holds no run.json")):
        argv = ["-q", "train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--no-plot",
                "--config", str(files["config"]), "--checkpoint-dir", str(tmp_path / name), "--resume"]
        assert main(argv) == 1
        assert f"error: nothing to resume in {tmp_path / name}: {found}" in _one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # neither a new run nor a model
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_new_run_whose_checkpoints_cannot_be_written_is_refused_before_the_corpora_are_read(
    files, tmp_path, capsys
):
    """Found at the first checkpoint, it cost the minutes of reading the corpora first."""
    (tmp_path / "a-file").write_text("not a folder")
    checkpoints = tmp_path / "a-file" / "checkpoints"
    argv = ["train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--no-plot",
            "--config", str(files["config"]), "--checkpoint-dir", str(checkpoints)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"error: {checkpoints}: the checkpoints cannot be written there ({tmp_path / 'a-file'}: " in captured.err
    assert "dialogues from" not in captured.out  # the corpora were not read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]

@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--resume"], "--resume needs --checkpoint-dir"),
        (["--format", "chatterbot"], "invalid YAML"),
    ],
)
def test_user_errors_are_one_line(files, tmp_path, capsys, extra, expected):
    argv = ["-q", "train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--no-plot", *extra]
    assert main(argv) == 1
    assert expected in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--vocab-size", "3"], "argument --vocab-size: vocab_size must be above 4"),
        (["--epochs", "0"], "argument --epochs: epochs must be at least 1"),
    ],
)
def test_a_bad_setting_flag_is_a_usage_error_naming_it(files, tmp_path, capsys, extra, expected):
    argv = ["-q", "train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--no-plot", *extra]
    with pytest.raises(SystemExit) as refused:
        main(argv)
    err = capsys.readouterr().err
    assert refused.value.code == 2 and expected in err.splitlines()[-1] and "Traceback" not in err, err


def test_out_and_checkpoint_dir_must_not_overlap(files, tmp_path, capsys):
    """The export replaces --out: checkpoints inside it (or it inside them) would be lost."""
    for checkpoints in (tmp_path / "m", tmp_path / "m" / "ck", tmp_path):
        argv = ["-q", "train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--no-plot",
                "--force", "--checkpoint-dir", str(checkpoints)]
        assert main(argv) == 1
        assert "must not be one inside the other" in _one_error_line(capsys)


def test_a_checkpoint_dir_that_cannot_be_used_is_refused_before_the_corpora_are_read(files, tmp_path, capsys):
    """Reading the shipped recipe's corpora takes a minute or two: a checkpoint folder that a run
    cannot use is a setup mistake, found first (here the corpus does not even exist)."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    cases = [(foreign, [], "not empty and holds no run.json"), (a_file, [], "not a directory"),
             (tmp_path / "typo", ["--resume"], "nothing to resume in")]
    for checkpoints, extra, message in cases:
        argv = ["-q", "train-responder", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "m"), "--no-plot",
                "--checkpoint-dir", str(checkpoints), *extra]
        assert main(argv) == 1
        line = _one_error_line(capsys)
        assert message in line and str(checkpoints) in line, line


def test_a_checkpoint_dir_another_run_trains_in_is_refused_before_the_corpora_are_read(files, tmp_path, capsys):
    """Two runs with one --checkpoint-dir (two terminals, overlapping cron jobs): the second is
    refused in one line naming the folder and the process, before its corpora are read (here
    they do not even exist), and leaves the folder as it was."""
    checkpoints = tmp_path / "ck"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    holder = ("import sys\nfrom legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir\n"
              "with hold_checkpoint_dir(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", holder, str(checkpoints)], cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "held\n", child.stderr.read()[-2000:]
        for extra in ([], ["--resume"]):
            argv = ["-q", "train-responder", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "m"),
                    "--no-plot", "--checkpoint-dir", str(checkpoints), *extra]
            assert main(argv) == 1
            assert _one_error_line(capsys) == (
                f"error: {checkpoints}: another training run is using this checkpoint directory "
                f"(process {child.pid}); wait for it to end (or stop it), or choose another checkpoint directory"
            )
        assert [path.name for path in checkpoints.iterdir()] == [".holder"]
    finally:
        child.kill()
        child.communicate()
    # killed with SIGKILL, it held nothing any more: the folder takes a run at once
    argv = ["-q", "train-responder", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "m"),
            "--no-plot", "--checkpoint-dir", str(checkpoints)]
    assert main(argv) == 1
    assert "nope.jsonl: file not found" in _one_error_line(capsys)


def test_missing_corpus_and_bad_config_are_one_line(files, tmp_path, capsys):
    assert main(["train-responder", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "m")]) == 1
    assert "nope.jsonl: file not found" in _one_error_line(capsys)
    config = tmp_path / "bad.json"
    config.write_text('{"hidden": 3}', encoding="utf-8")
    assert main(["train-responder", str(files["corpus"]), "--out", str(tmp_path / "m"), "--config", str(config)]) == 1
    assert "unknown setting(s): hidden" in _one_error_line(capsys)


@pytest.mark.pinned_only
@pytest.mark.parametrize("signum, word", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")])
def test_ctrl_c_saves_a_checkpoint_and_the_printed_command_resumes(files, tmp_path, signum, word, capsys):
    """Ctrl-C, or SIGTERM from a supervisor or `kill`: the batch in flight ends, a checkpoint is
    saved, and the command printed resumes the run."""
    checkpoints = tmp_path / "checkpoints"
    out = tmp_path / "interrupted"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    argv = [
        sys.executable,
        "-m",
        "legacy_assistant",
        "-q",
        "train-responder",
        str(files["corpus"]),
        "--out",
        str(out),
        "--config",
        str(files["config"]),
        "--epochs",
        "100000",
        "--no-plot",
        "--checkpoint-dir",
        str(checkpoints),
    ]
    child = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a test run started in the background hands its children SIGINT
        # ignored, and the training keeps an ignored signal ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not list(checkpoints.glob("state-*.json")):  # an epoch has ended: the loop is running
            assert child.poll() is None, child.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 128 + signum, err[-2000:]
    assert "Traceback" not in err and not out.exists()
    assert f"{word}: the latest checkpoint is in {checkpoints}; resume with:" in err
    command = shlex.split(err.split("resume with:")[1].strip().splitlines()[0])
    assert command[:2] == ["legacy-assistant", "train-responder"]
    assert command[-3:] == ["--checkpoint-dir", str(checkpoints), "--resume"]
    states = [json.loads(p.read_text(encoding="utf-8")) for p in checkpoints.glob("state-*.json")]
    reached = max(states, key=lambda state: state["step"])

    # Resumed with the command as printed, but as many epochs as it has run: it stops at once and exports.
    command[command.index("--epochs") + 1] = str(len(reached["history"]))
    capsys.readouterr()
    assert main(["-q", *command[1:]]) == 0
    summary = json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]
    assert summary["steps"] == reached["step"] and summary["epochs_run"] == len(reached["history"])
    # the figures count the interrupted run too, and say so
    assert f"{summary['steps']} steps in {summary['seconds']:.1f}s in all, the runs it resumed included " in \
        capsys.readouterr().out


@pytest.mark.pinned_only
@pytest.mark.parametrize("stop", ["full disk", "ctrl-c"])
def test_a_failed_export_keeps_the_trained_run_and_says_how_to_export_it(files, tmp_path, capsys, monkeypatch, stop):
    """Without --checkpoint-dir the run lives in a temporary folder, which a failed export (a full
    disk) used to delete with it: the whole training was lost. A Ctrl-C there is no failure."""
    import tempfile

    from legacy_assistant.responder import artifact

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "model"

    def stopped(*args, **kwargs):
        if stop == "ctrl-c":
            raise KeyboardInterrupt
        raise OSError(28, "No space left on device", str(out))

    monkeypatch.setattr(artifact, "export_responder_artifact", stopped)
    argv = ["train-responder", str(files["corpus"]), "--out", str(out), "--config", str(files["config"]),
            "--epochs", "2", "--no-plot"]
    assert main(["-q", *argv]) == (130 if stop == "ctrl-c" else 1)
    err = capsys.readouterr().err
    assert ("interrupted" if stop == "ctrl-c" else "No space left on device") in err and "Traceback" not in err
    kept = next(tmp_path.glob("legacy-assistant-responder-*"))
    what = "was interrupted" if stop == "ctrl-c" else "failed"
    assert f"the export {what}; the trained run is kept in {kept}; export it with:" in err
    command = shlex.split(err.split("export it with:")[1].strip().splitlines()[0])
    assert command[-3:] == ["--checkpoint-dir", str(kept), "--resume"]
    assert not (kept / ".temporary").exists()  # printed to export from: no later run removes it
    monkeypatch.undo()
    assert main(["-q", *command[1:]]) == 0  # exported without training again
    summary = json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]
    assert summary["epochs_run"] == 2


@pytest.mark.pinned_only
def test_an_export_refused_because_another_run_wrote_the_out_folder_says_a_command_that_exports(
    files, tmp_path, capsys, monkeypatch
):
    """Two runs with one --out: the one that exports second is refused (the folder appeared while
    it trained), and the command it printed to export its run repeated --out without --force,
    which was refused in turn as "already exists"."""
    import tempfile

    from legacy_assistant.responder import artifact

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "model"
    export = artifact.export_responder_artifact

    def export_after_another_run(*args, **kwargs):
        shutil.copytree(DEFAULT_RESPONDER, out)  # the other run's model
        return export(*args, **kwargs)

    monkeypatch.setattr(artifact, "export_responder_artifact", export_after_another_run)
    argv = ["train-responder", str(files["corpus"]), "--out", str(out), "--config", str(files["config"]),
            "--epochs", "2", "--no-plot"]
    assert main(["-q", *argv]) == 1
    err = capsys.readouterr().err
    kept = next(tmp_path.glob("legacy-assistant-responder-*"))
    said = (f"the export failed; the trained run is kept in {kept}; {out} now holds what another run wrote there: "
            "export it to another --out, or over that with:")
    assert said in err, err
    command = shlex.split(err.split(said)[1].strip().splitlines()[0])
    assert "--force" in command and command[-3:] == ["--checkpoint-dir", str(kept), "--resume"]
    monkeypatch.undo()
    assert main(["-q", *command[1:]]) == 0, capsys.readouterr().err  # as printed: exported
    summary = json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]
    assert summary["epochs_run"] == 2


@pytest.mark.pinned_only
def test_the_temporary_checkpoints_of_a_killed_run_are_removed_by_the_next_run(files, tmp_path, monkeypatch, caplog):
    """Without --checkpoint-dir a run trains in a temporary folder; one killed (kill -9, the
    out-of-memory killer) left it, its checkpoints a whole model's size, for good and unnamed.
    The next run removes it, and leaves a folder printed to resume from and one whose run holds
    it."""
    import tempfile

    from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folders = {name: tmp_path / f"legacy-assistant-responder-{name}" for name in ("killed", "kept", "running")}
    for name, folder in folders.items():
        folder.mkdir()
        (folder / "run.json").write_text("{}", encoding="utf-8")
        if name != "kept":
            (folder / ".temporary").write_bytes(b"")
    out = tmp_path / "model"
    argv = ["train-responder", str(files["corpus"]), "--out", str(out), "--config", str(files["config"]),
            "--epochs", "1", "--no-plot"]
    with hold_checkpoint_dir(folders["running"]):
        an_hour_ago = time.time() - 3600
        for folder in folders.values():
            os.utime(folder, (an_hour_ago, an_hour_ago))
        with caplog.at_level(logging.WARNING, logger="legacy_assistant.responder.checkpoint_lock"):
            assert main(["-q", *argv]) == 0
    assert sorted(tmp_path.glob("legacy-assistant-responder-*")) == [folders["kept"], folders["running"]]
    assert f"removed {folders['killed']}, the checkpoints of a training run that was killed" in caplog.text


def test_a_killed_run_s_temporary_folder_named_by_the_user_is_theirs_even_when_the_command_is_refused(
    files, tmp_path, capsys
):
    """A temporary folder a killed run left, named with --checkpoint-dir to resume it, is the
    user's to keep; a first try refused (--resume left out) kept its note, and the next run
    without --checkpoint-dir removed the folder before the user tried again."""
    folder = tmp_path / "legacy-assistant-responder-killed"
    folder.mkdir()
    (folder / "run.json").write_text("{}", encoding="utf-8")
    (folder / ".temporary").write_bytes(b"")
    argv = ["train-responder", str(files["corpus"]), "--out", str(tmp_path / "model"), "--config",
            str(files["config"]), "--no-plot", "--checkpoint-dir", str(folder)]
    assert main(["-q", *argv]) == 1
    assert "already holds a training run" in capsys.readouterr().err
    assert sorted(path.name for path in folder.iterdir()) == ["run.json"]
    foreign = tmp_path / "notes"  # not a checkpoint folder: refused, and nothing of it touched
    foreign.mkdir()
    (foreign / "todo.txt").write_text("x", encoding="utf-8")
    (foreign / ".temporary").write_bytes(b"")
    assert main(["-q", *argv[:-1], str(foreign)]) == 1
    assert "not a responder checkpoint directory" in capsys.readouterr().err
    assert sorted(path.name for path in foreign.iterdir()) == [".temporary", "todo.txt"]


@pytest.mark.pinned_only
def test_a_checkpoint_that_cannot_be_written_says_how_to_resume_from_the_one_before(
    files, tmp_path, capsys, monkeypatch
):
    """A full disk while a checkpoint is written ends the run: the one written before is kept,
    and the error comes with the command that resumes from it once there is room again."""
    from compat.responder.trainer import ResponderTrainer

    checkpoints = tmp_path / "checkpoints"
    out = tmp_path / "model"
    saves = []
    save = ResponderTrainer.save_checkpoint

    def full_on_the_second(self, directory, step):
        saves.append(step)
        if len(saves) == 2:
            raise OSError(28, "No space left on device", directory)
        return save(self, directory, step)

    monkeypatch.setattr(ResponderTrainer, "save_checkpoint", full_on_the_second)
    argv = ["train-responder", str(files["corpus"]), "--out", str(out), "--config", str(files["config"]),
            "--epochs", "3", "--no-plot", "--checkpoint-dir", str(checkpoints)]
    assert main(["-q", *argv]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and not out.exists()
    assert f"the training failed; the latest checkpoint is in {checkpoints}; resume with:" in err
    command = shlex.split(err.split("resume with:")[1].strip().splitlines()[0])
    assert command[-3:] == ["--checkpoint-dir", str(checkpoints), "--resume"]
    monkeypatch.undo()
    assert main(["-q", *command[1:]]) == 0
    summary = json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]
    assert summary["epochs_run"] == 3


@pytest.mark.pinned_only
def test_the_command_printed_when_the_budget_ends_resumes_over_the_exported_model(files, tmp_path, capsys):
    out, checkpoints = tmp_path / "budget", tmp_path / "checkpoints"
    argv = ["train-responder", str(files["corpus"]), "--out", str(out), "--config", str(files["config"]),
            "--epochs", "3", "--no-plot", "--checkpoint-dir", str(checkpoints), "--max-minutes", "1e-6"]
    assert main(["-q", *argv]) == 0 and out.exists()  # the model so far is exported
    steps = json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]["steps"]
    printed = capsys.readouterr().out
    command = shlex.split(printed.split("to train on:")[1].strip().splitlines()[0])
    assert "--force" in command  # it replaces that export
    assert main(["-q", *command[1:]]) == 0  # (the same budget again: a step further)
    assert json.loads((out / "responder.json").read_text(encoding="utf-8"))["summary"]["steps"] > steps


@pytest.mark.pinned_only
def test_repeated_dialogues_can_be_dropped_and_a_resume_keeps_dropping_them(files, tmp_path, capsys):
    doubled = tmp_path / "doubled.jsonl"  # the corpus given twice, as from two overlapping sources
    doubled.write_text(files["corpus"].read_text(encoding="utf-8") * 2, encoding="utf-8")
    out, checkpoints = tmp_path / "once", tmp_path / "checkpoints"
    argv = ["train-responder", str(doubled), "--out", str(out), "--config", str(files["config"]), "--epochs", "2",
            "--no-plot", "--checkpoint-dir", str(checkpoints), "--max-minutes", "1e-6", "--drop-repeated-dialogues"]
    assert main(["-q", *argv]) == 0
    manifest = json.loads((out / "responder.json").read_text(encoding="utf-8"))
    assert manifest["training"]["drop_repeated_dialogues"] is True
    once = len(files["corpus"].read_text(encoding="utf-8").splitlines())
    assert manifest["summary"]["train_dialogues"] == once  # one of each, not two
    command = shlex.split(capsys.readouterr().out.split("to train on:")[1].strip().splitlines()[0])
    assert "--drop-repeated-dialogues" in command
    without = [word for word in command if word != "--drop-repeated-dialogues"]
    assert main(["-q", *without[1:]]) == 1  # the run's settings must not change under it
    assert "drop_repeated_dialogues True -> False" in capsys.readouterr().err
    assert main(["-q", *command[1:]]) == 0


# --- golden ------------------------------------------------------------------------------------


def test_golden_writes_and_checks_greedy_replies(trained, tmp_path, capsys):
    out, _, _ = trained
    contexts = tmp_path / "contexts.json"
    contexts.write_text(json.dumps([PROMPTS[0], [PROMPTS[1], "it is ok .", HELD_OUT[0]]]), encoding="utf-8")
    golden = tmp_path / "golden.json"
    assert main(["golden", str(out), "--contexts", str(contexts), "--golden", str(golden)]) == 0
    assert f"wrote 10 golden replies (2 contexts x every condition) to {golden}" in capsys.readouterr().out
    data = json.loads(golden.read_text(encoding="utf-8"))
    assert [case["condition"] for case in data["cases"][:5]] == ["neutral", "anger", "joy", "fear", "sadness"]
    for case in data["cases"][:5]:  # a trained prompt: the reply of its condition, END last
        assert _tokens(case["reply"]) == _tokens(REPLIES[case["condition"]])
        assert case["ids"][-1] == 3 and len(case["ids"]) == len(_tokens(case["reply"])) + 1
        assert case["log_prob"] < 0

    assert main(["golden", str(out), "--check", "--golden", str(golden)]) == 0
    assert "golden: OK" in capsys.readouterr().out
    data["cases"][1]["ids"][0] = data["cases"][2]["ids"][0]
    data["cases"][1]["reply"] = "something else"
    golden.write_text(json.dumps(data), encoding="utf-8")
    report_path = tmp_path / "report.json"
    assert main(["golden", str(out), "--check", "--golden", str(golden), "--report", str(report_path)]) == 1
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["ok"] is False and report["same_replies"] == 9
    [mismatch] = report["mismatches"]
    assert mismatch["context"] == [PROMPTS[0]] and mismatch["condition"] == "anger"
    assert mismatch["stored"] == "something else" and _tokens(mismatch["now"]) == _tokens(REPLIES["anger"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sentences", "x.txt"], "is a responder: give --contexts, not --sentences"),
        ([], "--contexts is required"),
        (["--check", "--golden", "missing.json"], "missing.json: golden file not found"),
    ],
)
def test_golden_mistakes_on_a_responder_are_one_line(trained, capsys, args, expected):
    out, _, _ = trained
    assert main(["golden", str(out), *args]) == 1
    assert expected in _one_error_line(capsys)


def test_golden_refuses_a_damaged_contexts_file(trained, tmp_path, capsys):
    out, _, _ = trained
    contexts = tmp_path / "contexts.json"
    contexts.write_text(json.dumps([["fine"], ["", "x"]]), encoding="utf-8")
    assert main(["golden", str(out), "--contexts", str(contexts), "--golden", str(tmp_path / "g.json")]) == 1
    assert "context 2: expected a list of non-empty strings" in _one_error_line(capsys)


# --- chat --------------------------------------------------------------------------------------


def _chat(monkeypatch, capsys, argv: list[str], messages: list[str]) -> list[str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(messages) + "\nquit\nnever read\n"))
    assert main(["chat", *argv]) == 0
    return capsys.readouterr().out.strip().splitlines()


def test_chat_with_a_responder_answers_in_the_chosen_emotion(trained, monkeypatch, capsys):
    out, _, _ = trained
    for emotion in ("joy", "sadness"):
        lines = _chat(
            monkeypatch,
            capsys,
            ["--responder", str(out), "--emotion", emotion, "--mode", "greedy", "--show-intent"],
            [PROMPTS[2], PROMPTS[4]],
        )
        assert len(lines) == 2
        for line in lines:
            text, detail = line.removeprefix("bot> ").split("  [")
            assert _tokens(text) == _tokens(REPLIES[emotion]) and detail == f"generated {emotion}]"


def test_chat_keeps_the_last_turns_as_context(trained, monkeypatch, capsys):
    out, _, _ = trained
    seen = []
    intercept_respond(monkeypatch, lambda context, *_: seen.append(list(context)))
    lines = _chat(monkeypatch, capsys, ["--responder", str(out), "--mode", "greedy"], ["one", "two", "three"])
    replies = [line.removeprefix("bot> ") for line in lines]
    assert seen == [["one"], ["one", replies[0], "two"], ["two", replies[1], "three"]]


def test_chat_sampling_repeats_with_a_seed(trained, monkeypatch, capsys):
    out, _, _ = trained
    argv = ["--responder", str(out), "--mode", "sample", "--seed", "7"]
    first = _chat(monkeypatch, capsys, argv, PROMPTS[:4])
    assert _chat(monkeypatch, capsys, argv, PROMPTS[:4]) == first and len(first) == 4
    # the last 64-bit seed: the next turns' seeds wrap around instead of ending the session
    argv = ["--responder", str(out), "--mode", "sample", "--seed", str(2**63 - 1)]
    assert len(_chat(monkeypatch, capsys, argv, PROMPTS[:3])) == 3


def test_chat_responder_without_a_directory_talks_to_the_shipped_one(monkeypatch, capsys):
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    lines = _chat(monkeypatch, capsys, ["--responder", "--mode", "greedy", "--emotion", "joy"], ["hello there"])
    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY)
    with Responder.load(DEFAULT_RESPONDER, options=options) as responder:
        expected = responder.respond(["hello there"], "joy", mode="greedy")
    assert expected and lines == [f"bot> {expected}"]


def test_chat_goes_on_after_a_first_message_with_no_readable_word(trained, monkeypatch, capsys):
    """A zero-width space (or a lone byte order mark) alone holds no token: said, and skipped."""
    from legacy_assistant.cli.chat import NO_WORDS

    out, _, _ = trained
    argv = ["--responder", str(out), "--mode", "greedy"]
    expected = _chat(monkeypatch, capsys, argv, [PROMPTS[2]])
    lines = _chat(monkeypatch, capsys, argv, ["\u200b", "\ufeff", PROMPTS[2]])
    assert lines == [f"bot> {NO_WORDS}", f"bot> {NO_WORDS}", *expected] and len(expected) == 1


def test_chat_keeps_the_turns_with_words_past_a_message_without_one(trained, monkeypatch, capsys):
    """A message of no word (a zero-width space) later on is answered from the turns before it,
    as many as the responder reads: it takes no place among them (as the server's context)."""
    out, _, _ = trained
    seen = []
    intercept_respond(monkeypatch, lambda context, *_: seen.append(list(context)))
    lines = _chat(monkeypatch, capsys, ["--responder", str(out), "--mode", "greedy"], ["one", "two", "\u200b"])
    replies = [line.removeprefix("bot> ") for line in lines]
    assert len(seen) == 3 and [turn for turn in seen[2] if turn != "\u200b"] == [replies[0], "two", replies[1]]


def test_chat_offers_the_responders_modes():
    from legacy_assistant.cli.chat import DEFAULT_RESPONDER_MODE, RESPONDER_MODES
    from legacy_assistant.responder.responder import MODES

    assert RESPONDER_MODES == MODES and DEFAULT_RESPONDER_MODE in MODES


def test_chat_refuses_an_unknown_emotion_in_one_line(trained, monkeypatch, capsys):
    out, _, _ = trained
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    assert main(["chat", "--responder", str(out), "--emotion", "bored"]) == 1
    assert "unknown emotion 'bored'" in _one_error_line(capsys)
    # beside an intent model too, where the responder answers the fallback
    assert main(["chat", "--model", str(DEFAULT_MODEL), "--responder", str(out), "--emotion", "bored"]) == 1
    assert _one_error_line(capsys).startswith(f"error: unknown emotion 'bored'; {out} knows ")
    assert main(["chat", "--emotion", "joy"]) == 1
    assert "--emotion is a responder option" in _one_error_line(capsys)
    assert main(["chat", "--mode", "beam"]) == 1  # it was ignored without a word
    assert "--mode is a responder option" in _one_error_line(capsys)


def test_chat_generates_only_where_the_intent_model_falls_back(trained, monkeypatch, capsys):
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    out, _, _ = trained
    gibberish = "qwerty asdf zxcv"
    lines = _chat(
        monkeypatch,
        capsys,
        [
            "--model",
            str(DEFAULT_MODEL),
            "--responder",
            str(out),
            "--mode",
            "greedy",
            "--emotion",
            "joy",
            "--show-intent",
        ],
        ["hello there", gibberish],
    )
    assert len(lines) == 2
    assert "[greeting" in lines[0]
    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY)  # as the server decodes
    with Responder.load(out, options=options) as responder:
        expected = responder.respond(
            ["hello there", lines[0].removeprefix("bot> ").split("  [")[0], gibberish], "joy", mode="greedy"
        )
    # the classifier's best guess behind the fallback, named with its confidence and why not taken
    assert re.fullmatch(rf"bot> {re.escape(expected)}  \[generated joy; best \S+ \d\.\d\d, [^]]+\]", lines[1])


def test_chat_behind_a_model_reads_its_generated_replies_back_as_context(trained, monkeypatch, capsys):
    """The server's chat route in the terminal: a generated reply is the turn's stored reply."""
    out, _, _ = trained
    seen = []
    intercept_respond(monkeypatch, lambda context, *_: seen.append(list(context)))
    first, second = "qwerty asdf", "zxcv uiop"
    argv = ["--model", str(DEFAULT_MODEL), "--responder", str(out), "--mode", "greedy"]
    lines = _chat(monkeypatch, capsys, argv, [first, second])
    replies = [line.removeprefix("bot> ") for line in lines]
    assert seen == [[first], [first, replies[0], second]]


def test_which_weights_a_summary_holds_reads_as_words():
    from legacy_assistant.cli.train_responder import weights_from

    def at_end(batches):
        end = {"step": 4481, "batches": batches, "epoch": 9}
        return weights_from({"weights": "time budget end", "budget_end": end, "best_epoch": 8})

    assert at_end(1) == "at the time budget's end: step 4481, 1 batch into epoch 9"
    assert at_end(3) == "at the time budget's end: step 4481, 3 batches into epoch 9"
    assert weights_from({"weights": "best epoch", "best_epoch": 8}) == "epoch 8"


def _evaluate_responder_on(terminal, tmp_path, capsys, monkeypatch, *options):
    corpus = tmp_path / "corpus.yml"
    corpus.write_text("conversations:\n- - Hello\n  - Hi, how are you?\n- - Do you like movies?\n  - I do.\n")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    argv = [*options, "evaluate-responder", str(ROOT / "exported" / "responder"), str(corpus), "--samples", "2",
            "--latency-replies", "1"]
    assert main(argv) == 0
    return capsys.readouterr()


def test_evaluate_responder_shows_a_bar_of_its_parts_on_a_terminal(tmp_path, capsys, monkeypatch):
    """Each part (perplexity, replies, ...) takes up to minutes: under -q nothing showed the command at work."""
    captured = _evaluate_responder_on(True, tmp_path, capsys, monkeypatch, "-q")
    err = captured.err.replace("\r", "\n")
    assert re.search(r"evaluating: +0%.*0/4", err), err[-1000:]
    assert re.search(r"evaluating replies: .*1/4", err), err[-1000:]  # the part under way, after those done
    assert re.search(r"evaluating latency: 100%.*4/4", err), err[-1000:]
    off = _evaluate_responder_on(False, tmp_path, capsys, monkeypatch, "-q")
    assert "\r" not in off.err and "evaluating" not in off.err, off.err[-1000:]
    # the bar stays on standard error: the summary is the same with it and without (but the timings)
    assert captured.out.split("latency")[0] == off.out.split("latency")[0], captured.out
    assert captured.out.startswith("responder on ") and "\r" not in captured.out, captured.out
