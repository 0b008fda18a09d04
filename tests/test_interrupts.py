"""Ctrl-C (KeyboardInterrupt) and SIGTERM while a command writes its output: status 130 or 143,
one line, and the output as it was before the command (or absent), with nothing half written."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from legacy_assistant.cli import main
from tests.helpers import DEFAULT_MODEL, ROOT, TEST_DATA

STOPS = [("ctrl-c", 130, "interrupted"), ("sigterm", 128 + signal.SIGTERM, "terminated")]


def stop(how: str) -> None:
    """Stop the command as the user does: a KeyboardInterrupt for Ctrl-C (a test run started in the
    background has SIGINT ignored), a real SIGTERM to this process for ``kill``."""
    if how == "ctrl-c":
        raise KeyboardInterrupt
    os.kill(os.getpid(), signal.SIGTERM)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def stop_after_drawing(monkeypatch, plot_name, how):
    """Make ``plots.<plot_name>`` stop the command (``how``) once it has drawn its figure."""
    from legacy_assistant.common import plots

    draw = getattr(plots, plot_name)

    def stopped_after_drawing(report, path):
        draw(report, path)
        stop(how)

    monkeypatch.setattr(plots, plot_name, stopped_after_drawing)


@pytest.mark.parametrize("how, status, word", STOPS)
@pytest.mark.parametrize("previous", [False, True])
def test_evaluate_stopped_while_drawing_its_figures_leaves_no_new_report(how, status, word, previous, tmp_path,
                                                                        monkeypatch, capsys):
    """The figures take a while to draw: a report written before them was left beside no figures
    (or an older run's) by a stop meanwhile. Now the report and its figures are all new or all old."""
    from legacy_assistant.common import plots

    out = tmp_path / "report.json"
    if previous:
        for name in ("report.json", "report-confusion.png", "report-thresholds.png"):
            (tmp_path / name).write_bytes(f"the previous {name}\n".encode())
    before = folder_bytes(tmp_path)
    stop_after_drawing(monkeypatch, "plot_threshold_curve", how)
    argv = ["-q", "evaluate", str(DEFAULT_MODEL), str(ROOT / "data" / "heldout.csv"), "--out", str(out)]
    assert main(argv) == status
    assert capsys.readouterr().err.strip() == word
    assert folder_bytes(tmp_path) == before  # no new file, no temporary one, the old ones intact
    monkeypatch.undo()
    assert main(argv) == 0  # and a rerun writes all three
    assert json.loads(out.read_text())["examples"] == 94
    assert sorted(folder_bytes(tmp_path)) == ["report-confusion.png", "report-thresholds.png", "report.json"]


@pytest.mark.parametrize("how, status, word", STOPS)
def test_evaluate_responder_stopped_while_drawing_leaves_no_figure_without_its_report(how, status, word, tmp_path,
                                                                                     monkeypatch, capsys):
    """Its figure was written before the report, which a stop then never wrote: a figure of an
    evaluation that has no report, or a new one beside an older run's report."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "report.json").write_text("the previous report\n")
    before = folder_bytes(reports)
    stop_after_drawing(monkeypatch, "plot_responder_quality", how)
    corpus = tmp_path / "corpus.yml"
    corpus.write_text("conversations:\n- - Hello\n  - Hi, how are you?\n- - Do you like movies?\n  - I do.\n")
    argv = ["-q", "evaluate-responder", str(ROOT / "exported" / "responder"), str(corpus), "--samples", "2",
            "--latency-replies", "1", "--out", str(reports / "report.json")]
    assert main(argv) == status
    assert capsys.readouterr().err.strip().splitlines()[-1] == word
    assert folder_bytes(reports) == before


# Ctrl-C as the golden file is copied: half of it written, then the interrupt.
STOPPED_AT_THE_GOLDEN_FILE = r'''
import shutil, sys
from legacy_assistant.cli import main

copy = shutil.copy2

def copy_stopped_at_the_golden_file(source, destination, **options):
    if str(destination).endswith("golden.json"):
        data = open(source, "rb").read()
        open(destination, "wb").write(data[: len(data) // 2])
        raise KeyboardInterrupt
    return copy(source, destination, **options)

shutil.copy2 = copy_stopped_at_the_golden_file
sys.exit(main(sys.argv[1:]))
'''


@pytest.mark.pinned_only  # two migrations: their TensorFlow calls are test_*migration.py's
@pytest.mark.parametrize("model, options", [("default", []), ("responder", ["--contexts", "2"])])
def test_migrate_stopped_as_it_copies_the_golden_file_leaves_the_previous_copy(model, options, tmp_path):
    """The source's golden file was copied into the new directory after the swap: a stop then
    left the new model with half a golden file (``golden --check`` called it damaged)."""
    import shutil

    from tests.subprocesses import run_python

    out = tmp_path / "tf2"
    source = ROOT / "exported" / model
    argv = ["-q", "migrate", str(source), "--out", str(out), *options, "--force"]
    shutil.copytree(source, out)  # a model with a golden file, which the migration replaces
    first = run_python(["-m", "legacy_assistant", *argv[1:]])  # not quiet: its warnings are read
    assert first.returncode == 0, first.stderr[-2000:]
    manifest = "responder.json" if model == "responder" else "assistant.json"
    assert json.loads((out / manifest).read_text(encoding="utf-8"))["runtime"] == "tf2"  # the copy replaced
    assert (out / "golden.json").read_bytes() == (source / "golden.json").read_bytes()
    assert "was not kept" not in first.stderr  # the source's golden file comes with the copy
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    stopped = run_python(["-c", STOPPED_AT_THE_GOLDEN_FILE, *argv])
    assert stopped.returncode == 130 and stopped.stderr.strip() == "interrupted", stopped.stderr[-2000:]
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tf2"]  # no staging folder left


# The program as its console script runs it; the last exit hook stands for the interpreter's
# shutdown (TensorFlow's teardown, half a second): it says so, and lasts until stdin closes.
EXITING = r"""
import atexit, signal, sys
from legacy_assistant.cli import main

signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
atexit.register(lambda: (print("exiting", file=sys.stderr, flush=True), sys.stdin.readline()))
sys.argv[0] = "legacy-assistant"
sys.exit(main())
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_after_the_command_has_finished_leaves_its_status(signum):
    """A stop that came as the interpreter shut down, the command's work done and its output
    written, killed the process without a word (status -2 or -15 instead of 0)."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    process = subprocess.Popen(
        [sys.executable, "-c", EXITING, "info", "--no-load", str(DEFAULT_MODEL)], cwd=ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        said = [process.stderr.readline()]
        while said[-1] not in ("exiting\n", ""):  # "" is the end: it ended before its exit hook
            said.append(process.stderr.readline())
        assert said[-1] == "exiting\n", said
        process.send_signal(signum)
        out, err = process.communicate(input="", timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert "checksums ok" in out and err == ""


def test_sigterm_before_the_training_takes_the_stop_signals_is_said_once_as_terminated(tmp_path, monkeypatch,
                                                                                      capsys):
    """SIGTERM as the training started (before its own handler took the stop signals) was said
    twice, the first time as Ctrl-C: "interrupted before the first checkpoint" then "terminated"."""
    from legacy_assistant.responder import training

    def terminated_as_it_starts(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(training, "train_responder", terminated_as_it_starts)
    corpus = tmp_path / "corpus.yml"
    corpus.write_text("conversations:\n- - Hello\n  - Hi, how are you?\n- - Do you like movies?\n  - I do.\n")
    argv = ["-q", "train-responder", str(corpus), "--out", str(tmp_path / "responder"), "--epochs", "1"]
    assert main(argv) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err == "terminated before the first checkpoint; nothing to resume\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.yml"]


@pytest.mark.parametrize("how, status, word", STOPS)
def test_a_stop_during_the_export_names_the_signal(how, status, word, tmp_path, monkeypatch, capsys):
    """A SIGTERM while the trained model was exported was said as "the export was interrupted"."""
    from legacy_assistant.cli import train_responder as command
    from legacy_assistant.responder import artifact

    def trained(args, config, dialogues, held_out, checkpoint_dir):
        (checkpoint_dir / "checkpoint").write_text("a finished run's checkpoint\n")
        return object()

    monkeypatch.setattr(command, "_train", trained)
    monkeypatch.setattr(artifact, "export_responder_artifact", lambda *args, **kwargs: stop(how))
    corpus = tmp_path / "corpus.yml"
    corpus.write_text("conversations:\n- - Hello\n  - Hi, how are you?\n- - Do you like movies?\n  - I do.\n")
    argv = ["-q", "train-responder", str(corpus), "--out", str(tmp_path / "responder"), "--epochs", "1",
            "--checkpoint-dir", str(tmp_path / "checkpoints")]
    assert main(argv) == status
    said = capsys.readouterr().err.splitlines()
    past = {"interrupted": "was interrupted", "terminated": "was terminated"}[word]
    assert said[0] == f"the export {past}; the trained run is kept in {tmp_path / 'checkpoints'}; export it with:"
    assert said[-1] == word


@pytest.mark.parametrize("how, status, word", STOPS)
def test_a_stop_while_the_replaced_model_is_deleted_says_the_new_one_is_in_place(how, status, word, tmp_path,
                                                                                 monkeypatch, capsys):
    """``train --force`` over a model: once the new one is swapped in, the old one is deleted (a
    while, for a large one). A stop then left the new model in place but said only "interrupted",
    which passes for a stop that replaced nothing."""
    import shutil

    from legacy_assistant.artifacts import directory

    out = tmp_path / "model"
    argv = ["-q", "train", str(TEST_DATA / "tiny_intents.json"), "--out", str(out), "--epochs", "3", "--no-plot"]
    assert main(argv) == 0
    old_digest = json.loads((out / "assistant.json").read_text())["manifest_sha256"]
    delete = shutil.rmtree
    deletions = []

    def stopped_deleting(path, *args, **kwargs):
        deletions.append(Path(path))
        if len(deletions) == 1:
            stop(how)
        delete(path, *args, **kwargs)

    monkeypatch.setattr(directory.shutil, "rmtree", stopped_deleting)
    assert main([*argv, "--force", "--epochs", "4"]) == status
    monkeypatch.undo()
    assert capsys.readouterr().err == f"{word} after the new model was written: {out} holds it, whole\n"
    manifest = json.loads((out / "assistant.json").read_text())
    assert manifest["manifest_sha256"] != old_digest and manifest["training"]["epochs"] == 4
    assert main(["-q", "info", str(out)]) == 0  # whole: every checksum holds
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # the old one deleted all the same
    assert deletions[0].parent == tmp_path and not deletions[0].exists()


def test_a_stop_as_the_trained_responder_is_in_place_keeps_no_temporary_checkpoints(tmp_path, monkeypatch, capsys):
    """A stop after the export had put the model in place said "the export was interrupted; the
    trained run is kept in ...; export it with" a command that would export it again."""
    from legacy_assistant.artifacts.directory import stops_after_writing
    from legacy_assistant.cli import train_responder as command
    from legacy_assistant.responder import artifact

    checkpoints = []

    def trained(args, config, dialogues, held_out, checkpoint_dir):
        checkpoints.append(checkpoint_dir)
        (checkpoint_dir / "checkpoint").write_text("a finished run's checkpoint\n")
        return object()

    def exported_then_stopped(model, out, **kwargs):
        out.mkdir()
        with stops_after_writing(out):
            raise KeyboardInterrupt

    monkeypatch.setattr(command, "_train", trained)
    monkeypatch.setattr(artifact, "export_responder_artifact", exported_then_stopped)
    corpus = tmp_path / "corpus.yml"
    corpus.write_text("conversations:\n- - Hello\n  - Hi, how are you?\n- - Do you like movies?\n  - I do.\n")
    out = tmp_path / "responder"
    assert main(["-q", "train-responder", str(corpus), "--out", str(out), "--epochs", "1"]) == 130
    assert capsys.readouterr().err == f"interrupted after the new model was written: {out} holds it, whole\n"
    assert not checkpoints[0].exists()  # the temporary checkpoint folder went, as after a finished run


@pytest.mark.parametrize("how, status, word", STOPS)
@pytest.mark.parametrize("command", ["import-classic", "migrate", "migrate-responder", "reexport-responder"])
def test_a_stop_as_the_report_of_a_written_model_is_printed_says_the_model_is_in_place(
        command, how, status, word, tmp_path, monkeypatch, capsys):
    """``import-classic``, ``migrate`` and ``reexport-responder`` print their report once the model
    is in place (a pipe whose reader waits holds it back): a stop there said only "interrupted", as
    if no model was written, where ``train`` says that the new model is whole."""
    import builtins
    from types import SimpleNamespace

    from legacy_assistant.classifier import migration
    from legacy_assistant.responder import migration as responder_migration

    out = tmp_path / "model"
    classic = TEST_DATA / "classic"
    if command == "import-classic":
        argv = ["-q", "import-classic", str(classic / "keras2_chatbot_model.h5"), "--words", str(classic / "words.json"),
                "--classes", str(classic / "classes.txt"), "--intents", str(classic / "intents.json"),
                "--out", str(out)]
        first_line = "imported "
    elif command == "reexport-responder":  # the shipped responder, read only: nothing is written to it
        from legacy_assistant.responder import artifact

        out = ROOT / "exported" / "responder"
        monkeypatch.setattr(artifact, "reexport_responder_artifact", lambda path: out)
        argv = ["-q", "reexport-responder", str(out)]
        first_line = str(out)
    else:  # the TF2 side runs in a process of its own: here, the model it wrote and its report
        def migrated(source, target, **kwargs):
            out.mkdir()
            report = migration.MigrationReport(Path(source), Path(target), {}, {"sentences": 1, "max_abs_delta": 0.0,
                                                                               "top1_agreement": 1.0})
            return report if command == "migrate" else SimpleNamespace(
                target=Path(target), lines=lambda: [f"migrated responder {source}"])

        monkeypatch.setattr(migration, "migrate_artifact", migrated)
        monkeypatch.setattr(responder_migration, "migrate_responder", migrated)
        source = ROOT / "exported" / ("default" if command == "migrate" else "responder")
        argv = ["-q", "migrate", str(source), "--out", str(out)]
        first_line = "migrated "
    real_print = builtins.print

    def stopped_printing(*args, **kwargs):
        if args and str(args[0]).startswith(first_line):
            stop(how)
        real_print(*args, **kwargs)

    monkeypatch.setattr(builtins, "print", stopped_printing)
    assert main(argv) == status
    monkeypatch.undo()
    assert capsys.readouterr().err == f"{word} after the new model was written: {out} holds it, whole\n"


# A stop while a graph is built: TensorFlow logged a dozen lines of "Object was never used" for
# the op the stop left unused, after the stop's own line.
STOPPED_WHILE_BUILDING = r'''
import gc, sys
from legacy_assistant.cli import info, main

def run(args):
    from compat.runtime import tf
    with tf.Graph().as_default():
        left = tf.TensorArray(tf.float32, size=1).write(0, 1.0)  # the stop comes before its use
        raise KeyboardInterrupt

info.run = run
status = main(["info", "anything"])
gc.collect()
sys.exit(status)
'''


def test_a_stop_while_a_graph_is_built_ends_on_its_one_line():
    from tests.subprocesses import run_python

    result = run_python(["-c", STOPPED_WHILE_BUILDING])
    assert result.returncode == 130, result.stderr[-3000:]
    assert "never used" not in result.stderr and "ERROR" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.splitlines()[-1] == "interrupted"


def test_a_stop_inside_tensorflows_graph_lock_is_taken_once_the_lock_is_left(monkeypatch, capsys):
    """A stop raised inside TensorFlow's graph lock code left its lock held, and the command hung:
    the stop is sent again a moment later instead, and one outside that code stops at once."""
    import sys
    import time

    from legacy_assistant import cli
    from legacy_assistant.cli import info

    namespace: dict = {}
    code = "import sys\ndef where():\n    return sys._getframe()\n"
    tensorflow_lock_code = os.path.join(os.sep, "venv", "tensorflow", "python", "util", "lock_util.py")
    exec(compile(code, tensorflow_lock_code, "exec"), namespace)
    inside_the_lock = namespace["where"]()
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(cli.os, "kill", lambda pid, signum: sent.append((pid, signum)))
    outcomes = []

    def stopped_inside_the_lock(args):
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.getsignal(signum)(signum, inside_the_lock)  # no KeyboardInterrupt here
        try:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, sys._getframe())
        except KeyboardInterrupt:
            outcomes.append("stopped outside the lock")
        return 0

    monkeypatch.setattr(info, "run", stopped_inside_the_lock)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # ignored in a background run
    try:
        assert main(["info", str(DEFAULT_MODEL)]) == 0, capsys.readouterr().err
    finally:
        signal.signal(signal.SIGINT, previous)
    assert outcomes == ["stopped outside the lock"]
    deadline = time.monotonic() + 10
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(sent) == sorted([(os.getpid(), signal.SIGINT), (os.getpid(), signal.SIGTERM)])
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
