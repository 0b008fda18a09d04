"""What the commands print: one progress bar, sized from the start, and only on a terminal;
output a terminal cannot encode, a reader that goes away, Ctrl-C before the command starts."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from legacy_assistant.cli import main
from tests.helpers import main_with_reader_gone, terminal_chat

TINY_INTENTS = Path(__file__).resolve().parent / "data" / "tiny_intents.json"


def test_train_shows_one_progress_bar_with_the_planned_epochs(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # as on a terminal
    # The default preset decides its epochs from a step budget once it has seen the data.
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(tmp_path / "m"), "--no-plot"]) == 0
    err = capsys.readouterr().err.replace("\r", "\n")
    totals = {int(total) for total in re.findall(r"training:.*?\d+/(\d+) \[", err)}
    assert len(totals) == 1 and totals != {1}, err[:500]


def test_no_progress_bar_when_standard_error_is_not_a_terminal(tmp_path, capsys):
    """Redirected to a file, every redraw of a bar would be one more carriage-return copy of it."""
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(tmp_path / "m"), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "training:" not in err, err[:500]


ROOT = Path(__file__).resolve().parent.parent


def _cli(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-m", "legacy_assistant", *args], cwd=ROOT, env=env, timeout=180, **kwargs)


def test_characters_the_output_cannot_encode_are_replaced_not_a_traceback():
    # a help text and a chat reply of a terminal whose encoding is ASCII
    result = _cli(["golden", "--help"], env={"PYTHONIOENCODING": "ascii"}, capture_output=True)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    assert b"usage:" in result.stdout
    result = _cli(["-q", "chat", "--model", "exported/default"], env={"PYTHONIOENCODING": "ascii"},
                  input="caf\u00e9 \u2615\n".encode(), capture_output=True)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]
    assert b"bot>" in result.stdout


@pytest.mark.parametrize("buffered", [False, True])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, buffered):
    """``legacy-assistant info ... | head -1``: the command's output meets a closed pipe, also
    when it sat in Python's buffer until the command ended (the usual case, off PYTHONUNBUFFERED)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the command writes
    env = {"PYTHONUNBUFFERED": ""} if buffered else {"PYTHONUNBUFFERED": "1"}
    try:
        result = _cli(["-q", "info", "exported/default", "--no-load"], stdout=write_end, stderr=subprocess.PIPE,
                      env=env)
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == b"", result.stderr[-2000:]


def test_info_with_standard_output_closed_still_checks_the_model():
    result = _cli(["-q", "info", "exported/default", "--no-load"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                  pass_fds=(), preexec_fn=lambda: os.close(1))
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("out", ["/dev/stdout", "/dev/stdin"])
def test_out_naming_a_standard_descriptor_closed_at_start_is_refused_before_any_work(out):
    # the command points a closed descriptor at /dev/null (no file may take its number): the
    # report went there, nothing was printed, and the evaluation "succeeded" with status 0
    closed = 1 if out == "/dev/stdout" else 0
    result = _cli(["-q", "evaluate", "exported/default", "data/heldout.csv", "--out", out],
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(),
                  preexec_fn=lambda: os.close(closed))
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"names file descriptor {closed}, which is closed".encode() in result.stderr, result.stderr[-2000:]


def test_out_naming_a_standard_descriptor_reopened_on_a_file_writes_there(tmp_path):
    # a process started with standard output closed that opens its log as descriptor 1 (a
    # daemon) and runs the command in-process: /dev/stdout is that file, not a closed descriptor
    report = tmp_path / "report.json"
    code = (
        "import os, sys\n"
        f"assert os.open({str(report)!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) == 1\n"
        "from legacy_assistant.cli import main\n"
        "sys.exit(main(['-q', 'evaluate', 'exported/default', 'data/heldout.csv', '--out', '/dev/stdout']))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy" in json.loads(report.read_text()), report.read_text()[:500]


def test_out_dash_is_standard_output_not_a_file_named_dash(tmp_path):
    """``evaluate --out -`` wrote files named ``-``, ``--confusion.png`` and ``--thresholds.png``
    in the working folder; ``-`` now means standard output, as ``/dev/stdout`` does."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "legacy_assistant", "-q", "evaluate", str(ROOT / "exported/default"),
                             str(TINY_INTENTS), "--out", "-"], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["examples"] > 0  # the report alone: the summary went to standard error
    assert b"accuracy" in result.stderr and sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("command", [["evaluate", "m", "d"], ["evaluate-responder", "m", "c"]])
def test_out_dash_names_standard_output_in_both_evaluations(command):
    from legacy_assistant.cli import build_parser

    assert build_parser().parse_args([*command, "--out", "-"]).out == "/dev/stdout"
    assert build_parser().parse_args([*command, "--out", "./-"]).out == "./-"  # a file named -, asked for


def test_golden_report_dash_is_standard_output_with_the_report_alone(tmp_path):
    """``golden --check --report -`` wrote a file named ``-`` in the working folder (``--report
    /dev/stdout`` had the comparison twice, then the verdict, on standard output: no JSON reader
    could take it); ``-`` is standard output, as evaluate's ``--out -``, and holds the report alone."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "legacy_assistant", "-q", "golden", str(ROOT / "exported/default"),
                             "--check", "--report", "-"], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["ok"] is True
    assert result.stderr.decode().strip().endswith("golden: OK") and sorted(os.listdir(tmp_path)) == []


def test_golden_report_dash_names_standard_output():
    from legacy_assistant.cli import build_parser

    assert build_parser().parse_args(["golden", "m", "--check", "--report", "-"]).report == "/dev/stdout"
    assert build_parser().parse_args(["golden", "m", "--check", "--report", "./-"]).report == "./-"


def test_chat_with_standard_output_closed_reads_its_input_without_a_traceback():
    # input() needs standard output even without a prompt: "RuntimeError: input(): lost sys.stdout"
    result = _cli(["-q", "chat"], input=b"hi\nwhat time do you open\n", stdout=subprocess.DEVNULL,
                  stderr=subprocess.PIPE, pass_fds=(), preexec_fn=lambda: os.close(1))
    assert b"Traceback" not in result.stderr and b"lost sys.stdout" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in (0, 141), result.stderr[-2000:]


def test_train_off_a_terminal_logs_its_figures_instead_of_a_bar(tmp_path, caplog):
    with caplog.at_level("INFO", logger="legacy_assistant.cli.train"):
        assert main(["train", str(TINY_INTENTS), "--out", str(tmp_path / "m"), "--no-plot", "--epochs", "3"]) == 0
    assert re.search(r"training: epoch 3/3: loss \d\.\d{4}, accuracy \d\.\d{4}", caplog.text), caplog.text[-2000:]


def test_ctrl_c_while_the_commands_load_is_one_line(monkeypatch, capsys):
    import legacy_assistant.cli as cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["info", "exported/default"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("share", [None, 0.5])
def test_a_condition_matrix_with_unmeasured_cells_is_drawn(tmp_path, share):
    """A mode whose replies all came out empty has null shares: drawn as n/a, not a TypeError
    after the report was written."""
    from legacy_assistant.common.plots import plot_responder_conditions

    conditions = ["neutral", "joy"]
    report = {"conditions": {
        "requested": conditions, "contexts": 3, "classifier": {"classes": conditions},
        "modes": {"greedy": {"matrix": {r: {c: None for c in conditions} for r in conditions}},
                  "sample": {"matrix": {r: {c: share for c in conditions} for r in conditions}}},
    }}
    plot_responder_conditions(report, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_top_level_help_reads_as_plain_text(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and "legacy-assistant: train, inspect" in out and "``" not in out


def test_the_arrow_keys_edit_the_line_at_a_terminal():
    """"qut", the left arrow, "i" is the line "quit", which ends the chat at once; without line
    editing the arrow's escape code went into a message ("qut\\x1b[Di") that got a reply."""
    status, shown = terminal_chat(b"qut\x1b[Di\r")
    assert status == 0, shown
    assert "bot> " not in shown, shown


def test_the_up_arrow_recalls_the_previous_message_at_a_terminal():
    """The up arrow brings "hello" back for a second send: two replies of the same intent (the
    arrow's escape code sent as a message would be a sentence of no intent's)."""
    status, shown = terminal_chat(b"hello\r\x1b[A\rquit\r", "--show-intent")
    assert status == 0, shown
    details = re.findall(r"bot> .*  \[(\w+) [01]\.\d\d\]", shown)
    assert len(details) == 2 and details[0] == details[1] and details[0] != "fallback", shown


def test_chat_typed_at_a_terminal_into_a_file_prompts_on_the_terminal_and_writes_the_replies_alone(tmp_path):
    """``chat > replies.txt`` at a terminal: the banner and each "you> " went into the file, the
    person typing saw no prompt at all, and the file read "you> bot> ..."."""
    replies = tmp_path / "replies.txt"
    with replies.open("wb") as file:
        status, shown = terminal_chat([b"hello\r", b"\x04"], "--show-intent", stdout=file.fileno())
    written = replies.read_text(encoding="utf-8")
    assert status == 0, (shown, written)
    assert shown.startswith("Chatting with ") and shown.count("you> ") == 2 and shown.endswith("you> \r\n"), shown
    assert "bot> " not in shown, shown
    assert re.fullmatch(r"bot> .*  \[greeting [01]\.\d\d\]\n", written), written


def test_ctrl_c_at_a_terminal_prompt_ends_the_chat_on_a_line_of_its_own():
    status, shown = terminal_chat([b"hel", b"\x03"])
    assert status == 130, shown
    assert shown.endswith("\r\ninterrupted\r\n") and "bot> " not in shown, shown


def test_ctrl_z_then_fg_at_a_terminal_prompt_gives_back_the_line_being_typed(tmp_path):
    """Stopped at the prompt (Ctrl-Z) and resumed by the shell (fg), the chat drew no prompt, and
    the terminal was left in the shell's mode: each key was shown twice, an arrow key as "^[[D"."""
    import pty
    import select
    import shutil
    import time

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash: a shell with job control stops and resumes the chat")
    if not hasattr(os, "login_tty"):  # Python 3.11 and later
        pytest.skip("no os.login_tty: the shell needs the terminal as its controlling one")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), TERM="xterm",
               INPUTRC=os.devnull, PS1="shell$ ", HISTFILE=os.devnull)
    leader, follower = pty.openpty()
    shell = subprocess.Popen([bash, "--norc", "--noprofile", "-i"], stdin=follower, stdout=follower,
                             stderr=follower, cwd=tmp_path, env=env, preexec_fn=lambda: os.login_tty(0))
    os.close(follower)
    shown, everything = b"", b""

    def type_when_shown(expected: bytes, keys: bytes) -> None:
        nonlocal shown, everything
        deadline = time.monotonic() + 60
        while expected not in shown and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.5)[0]:
                shown += os.read(leader, 4096)
        everything += shown
        assert expected in shown, everything.decode("utf-8", "replace")
        shown = b""
        time.sleep(0.3)  # as between a person's keys
        os.write(leader, keys)

    try:
        type_when_shown(b"shell$ ", f"{sys.executable} -m legacy_assistant -q chat --show-intent\r".encode())
        type_when_shown(b"you> ", b"hel")
        type_when_shown(b"hel", b"\x1a")
        type_when_shown(b"Stopped", b"fg\r")
        type_when_shown(b"you> hel", b"lo\x1b[D\x1b[D\r")  # the line again, then two left arrows
        type_when_shown(b"bot> ", b"quit\r")
        type_when_shown(b"shell$ ", b"exit\r")
        assert shell.wait(timeout=30) == 0
        # "hello": a greeting, and the keys after fg shown once each, the arrows as moves
        assert b"[greeting " in everything and b"^[" not in everything and b"lolo" not in everything, everything
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        os.close(leader)


def test_a_reader_that_goes_away_leaves_the_reports_asked_for_written(tmp_path, tiny_model_dir):
    """``evaluate --out R | head`` and ``golden --check --report R | head``: the summary met the
    closed pipe before the report was written, and the command ended without it."""
    report = tmp_path / "evaluation.json"
    argv = ["-q", "evaluate", str(tiny_model_dir), str(TINY_INTENTS), "--out", str(report)]
    assert main_with_reader_gone(argv) == 141
    assert json.loads(report.read_text(encoding="utf-8"))["examples"] > 0
    assert (tmp_path / "evaluation-confusion.png").is_file() and (tmp_path / "evaluation-thresholds.png").is_file()
    sentences, golden, compared = tmp_path / "sentences.txt", tmp_path / "golden.json", tmp_path / "compared.json"
    sentences.write_text("hello\nbye\n", encoding="utf-8")
    assert main(["-q", "golden", str(tiny_model_dir), "--sentences", str(sentences), "--golden", str(golden)]) == 0
    argv = ["-q", "golden", str(tiny_model_dir), "--check", "--golden", str(golden), "--report", str(compared)]
    assert main_with_reader_gone(argv) == 141
    assert json.loads(compared.read_text(encoding="utf-8"))["ok"] is True


def test_every_help_fits_an_80_column_terminal(monkeypatch):
    # a usage line with a long list of choices ([--tokenizer {treebank,...}]) cannot be wrapped
    # by argparse, and ran past 80 columns
    from legacy_assistant.cli import build_parser

    monkeypatch.setenv("COLUMNS", "80")
    parser = build_parser()
    commands = next(action for action in parser._actions if action.dest == "command").choices
    for name, command in [("legacy-assistant", parser), *commands.items()]:
        too_wide = [line for line in command.format_help().splitlines() if len(line) > 80]
        assert not too_wide, (name, too_wide)



def _evaluate_on(terminal, capsys, monkeypatch, out, *options):
    from legacy_assistant.classifier import evaluation

    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(evaluation, "EVAL_CHUNK", 100)  # several steps of the 370 patterns
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert main([*options, "evaluate", "exported/default", "data/intents.json", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(out.read_text(encoding="utf-8"))["examples"] == 370
    return captured


def test_evaluate_shows_a_bar_of_its_sentences_on_a_terminal(tmp_path, capsys, monkeypatch):
    """Tens of thousands of sentences took a minute or more without a sign of life."""
    captured = _evaluate_on(True, capsys, monkeypatch, tmp_path / "a.json")
    err = captured.err.replace("\r", "\n")
    assert re.search(r"evaluating: 100%.*370/370", err), err[-1000:]
    assert re.search(r"evaluating: +0%.*0/370", err), err[-1000:]  # sized from the start
    # the bar stays on standard error: the summary on standard output is what it is off a terminal
    off = _evaluate_on(False, capsys, monkeypatch, tmp_path / "a.json")
    assert captured.out == off.out and captured.out.startswith("default on data/intents.json\n"), captured.out


@pytest.mark.parametrize("options", [(), ("-q",)])
def test_evaluate_shows_no_bar_off_a_terminal(tmp_path, capsys, monkeypatch, options):
    captured = _evaluate_on(False, capsys, monkeypatch, tmp_path / "a.json", *options)
    assert "\r" not in captured.err and "evaluating" not in captured.err, captured.err[-1000:]
