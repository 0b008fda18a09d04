"""The command line, run in-process through its ``main``."""
import json
import logging
import os
import shutil
import signal
import warnings

import pytest

from legacy_assistant.cli import main
from tests.helpers import DEFAULT_MODEL, TINY_INTENTS


def test_train_then_info(tmp_path, capsys):
    out = tmp_path / "bot"
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(out), "--epochs", "5", "--no-plot"]) == 0
    assert "exported to" in capsys.readouterr().out
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["training"]["epochs_run"] == 5
    assert info["verified"] == "checksums ok, SavedModel loads"
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(out), "--epochs", "1"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_train_whose_out_another_run_wrote_meanwhile_says_so(tmp_path, capsys, monkeypatch):
    """Two `train --out DIR` at once: the one that finished second was refused as "DIR already
    exists (--force ... replaces it)", about a folder that was not there when it started, and
    with advice that would throw the other run's model away."""
    from legacy_assistant.classifier import datasets

    out = tmp_path / "bot"
    load = datasets.load_data

    def load_while_another_run_exports(*args, **kwargs):
        shutil.copytree(DEFAULT_MODEL, out)  # the other run's model
        return load(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_data", load_while_another_run_exports)
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(out), "--epochs", "1", "--no-plot"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {out} appeared while the model was being trained (another run writing there?): nothing was "
        "written; choose another --out (or --force to replace what is there now)"
    )
    assert json.loads((out / "assistant.json").read_text())["name"] == "default"  # the other run's, kept


def test_train_reports_bad_intents_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"intents": [{"tag": "a", "patterns": ["x"]}]}')
    assert main(["train", str(bad), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "intent #0 ('a'): field 'responses' is missing" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_info_on_shipped_model(capsys):
    manifest = json.loads((DEFAULT_MODEL / "assistant.json").read_text())
    assert main(["info", str(DEFAULT_MODEL)]) == 0
    out = capsys.readouterr().out
    assert "checksums ok" in out
    assert f"stemmer {manifest['featurizer']['config']['text']['stemmer']}" in out
    assert f"threshold  {manifest['threshold']}" in out


def test_info_shows_the_seed_settings_and_data_checksum_a_rerun_needs(capsys):
    manifest = json.loads((DEFAULT_MODEL / "assistant.json").read_text())
    assert main(["info", str(DEFAULT_MODEL), "--no-load"]) == 0
    lines = capsys.readouterr().out.splitlines()
    training = [x for x in lines if x.startswith("training ")][0]
    assert training.endswith(f", seed {manifest['training']['seed']}")
    data = manifest["source"]["data"]
    assert f"data       {data['name']} (intents), sha256 {data['sha256']}" in lines
    assert main(["info", str(DEFAULT_MODEL), "--no-load", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["training_config"] == manifest["training"] and info["source"] == manifest["source"]


def test_info_on_damaged_model_exits_nonzero_without_traceback(tmp_path, capsys):
    copy = tmp_path / "damaged"
    shutil.copytree(DEFAULT_MODEL, copy)
    (copy / "saved_model" / "variables" / "variables.index").unlink()
    assert main(["info", str(copy)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "variables.index: missing" in err
    assert "Traceback" not in err


def test_chat_reads_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\n\nI'd like to order a coffee\nquit\nnever read\n"))
    assert main(["chat", "--show-intent"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("bot> ") and "[greeting" in lines[0]
    assert "[order_coffee" in lines[1]


@pytest.mark.parametrize("extra", [[], ["--responder"]])
def test_chat_says_so_when_its_conversation_was_idle_past_its_expiry(extra, monkeypatch, capsys):
    """A conversation idle past the store's expiry starts over: the chat page puts its note there,
    and so does the chat in the terminal (on standard error: one 'bot> ' reply a message stays)."""
    import io
    import time

    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import STARTED_OVER

    loaded = []
    load = Assistant.load

    def loading(*args, **kwargs):
        loaded.append(load(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(Assistant, "load", loading)

    class Idle(io.StringIO):
        """Its third line is typed once the conversation has been idle past the store's expiry."""

        def __init__(self, text):
            super().__init__(text)
            self.read_lines = 0

        def readline(self, *args):
            self.read_lines += 1
            if self.read_lines == 3:
                store = loaded[0].store
                store._clock = lambda: time.time() + 2 * store.ttl_seconds
            return super().readline(*args)

    monkeypatch.setattr("sys.stdin", Idle("hello there\nI'd like to order a coffee\nhello again\nthanks\n"))
    model = ["--model", str(DEFAULT_MODEL), *extra]
    assert main(["chat", *model]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.strip().splitlines()) == 4
    assert captured.err.count(STARTED_OVER) == 1, captured.err
    # a conversation that did not idle gets no note
    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\nI'd like to order a coffee\nthanks\n"))
    loaded.clear()
    assert main(["chat", *model]) == 0
    assert STARTED_OVER not in capsys.readouterr().err


def test_chat_reads_stdin_that_is_not_utf8_instead_of_stopping(monkeypatch, capsys):
    import io

    raw = io.BytesIO(b"hello \xff there\nI'd like to order a coffee\n")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw, encoding="utf-8", errors="strict"))
    assert main(["chat", "--show-intent"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "[greeting" in lines[0] and "[order_coffee" in lines[1]


@pytest.mark.parametrize(
    "encoding, why",
    [("utf-16", "it starts with a UTF-16 byte order mark"), ("utf-16-le", "a NUL byte among its first characters")],
)
@pytest.mark.parametrize("options", [[], ["--responder"]])
def test_chat_refuses_utf16_text_piped_in_instead_of_answering_its_bytes(options, encoding, why, monkeypatch, capsys):
    """A file saved as UTF-16 (Notepad's "Unicode"): read as UTF-8, each line was a message of
    replacement characters and NULs, and the NUL after each line end one more message."""
    import io

    raw = io.BufferedReader(io.BytesIO("hello there\nI'd like to order a coffee\n".encode(encoding)))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    assert main(["chat", *options]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"error: standard input: not UTF-8 text: {why}" + (
        " (save it as UTF-8)" if "mark" in why else ", as UTF-16 or UTF-32 text saved without a byte order mark has "
        "(save it as UTF-8)"
    )


def test_chat_show_intent_names_the_best_guess_behind_a_fallback(monkeypatch, capsys):
    """A fallback's detail was "[fallback 0.92]": a confidence, without the intent it is of or why
    that intent was not taken."""
    import io
    import re

    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\n"))
    assert main(["chat", "--show-intent", "--threshold", "0.995"]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"bot> .+  \[fallback; best greeting 0\.\d\d, below the threshold 0\.995\]", line), line


def test_chat_show_intent_gives_the_ranking_the_fallback_was_chosen_by(monkeypatch, capsys):
    """The detail of a fallback classified the message a second time, and showed that ranking's
    best intent (another one, should the second classification differ from the first)."""
    import io
    import re

    from legacy_assistant.serving.assistant import Assistant

    def parse_again(self, *args, **kwargs):
        raise AssertionError("the message was classified a second time")

    monkeypatch.setattr(Assistant, "parse", parse_again)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello there\n"))
    assert main(["chat", "--show-intent", "--threshold", "0.995"]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(r"bot> .+  \[fallback; best greeting 0\.\d\d, below the threshold 0\.995\]", line), line


def _chat_once_answered_with(response, tiny_trained, tmp_path, monkeypatch, capsys):
    """What ``chat --show-intent`` prints for "hello" from a model whose every intent answers
    ``response``."""
    import io

    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.intents import load_intents

    data = json.loads(TINY_INTENTS.read_text(encoding="utf-8"))
    for intent in data["intents"]:
        intent["responses"] = [response]
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps(data), encoding="utf-8")
    model = export_artifact(tiny_trained, load_intents(intents), tmp_path / "model", plot=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    assert main(["chat", "--model", str(model), "--threshold", "0", "--show-intent"]) == 0
    return capsys.readouterr().out


def test_chat_indents_the_later_lines_of_a_reply_of_several(tiny_trained, tmp_path, monkeypatch, capsys):
    """A response holding a line break printed its second line without "bot> ": it read as the
    user's. A "\r" of one went to the terminal and wrote the next line over the first."""
    out = _chat_once_answered_with(
        "First line.\nSecond line.\r\n\nFourth line.", tiny_trained, tmp_path, monkeypatch, capsys
    )
    assert out.startswith("bot> First line.\n     Second line.\n\n     Fourth line.  [greeting "), out
    assert out.count("\n") == 4 and "\r" not in out


def test_chat_shows_the_control_characters_of_a_reply_instead_of_sending_them_to_the_terminal(
    tiny_trained, tmp_path, monkeypatch, capsys
):
    """A response holding an escape sequence (set the window's title, clear the screen, an
    8-bit CSI) drove the terminal the chat was printed on."""
    out = _chat_once_answered_with(
        "Hi\x1b]0;title\x07\x1b[2J\x9b31m\tthere.", tiny_trained, tmp_path, monkeypatch, capsys
    )
    assert out.startswith("bot> Hi\\x1b]0;title\\x07\\x1b[2J\\x9b31m\tthere.  [greeting "), out
    assert not any(char in out for char in "\x1b\x07\x9b"), out


def test_chat_drops_a_byte_order_mark_before_the_first_piped_line(monkeypatch, capsys):
    """An editor's UTF-8 mark made a first line of "quit" a message to answer."""
    import io

    raw = io.BytesIO("\ufeffquit\nhello there\n".encode())
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    assert main(["chat"]) == 0
    assert capsys.readouterr().out == ""


def test_chat_with_no_standard_input_at_all_ends_like_an_empty_one(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", None)  # as a process started with stdin closed (<&-) has it
    assert main(["chat"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "sender, said", [("", "must not be blank"), (" ", "must not be blank"), ("a\udcff", "is not valid Unicode text")]
)
def test_chat_refuses_a_sender_no_store_can_keep_before_it_begins(sender, said, monkeypatch, capsys):
    """A usage error at once, not an error after the model loaded and the first message was typed."""
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n"))
    with pytest.raises(SystemExit) as caught:
        main(["chat", "--sender", sender])
    assert caught.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"error: argument --sender: {said}" in captured.err


@pytest.mark.parametrize("key, status", [(EOFError, 0), (KeyboardInterrupt, 130)])
def test_chat_in_a_terminal_ends_the_prompts_line_on_ctrl_d_or_ctrl_c(key, status, monkeypatch, capsys):
    """The shell's prompt (or "interrupted") starts a line of its own, not "you> $"."""
    import io
    import sys

    def typed(prompt):
        sys.stdout.write(prompt)  # as input() shows it; then the key
        raise key

    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", terminal)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the prompt's there, as at a terminal
    monkeypatch.setattr("builtins.input", typed)
    assert main(["chat"]) == status
    assert capsys.readouterr().out.endswith("you> \n")


def typed_hello(prompt):
    """``input`` at a terminal where "hello" is typed: the prompt and the line as the terminal
    shows them, Enter's line end included."""
    import sys

    sys.stdout.write(prompt + "hello\n")
    return "hello"


def ctrl_c_at_a_terminal(monkeypatch):
    """Standard input a terminal; returns a stand-in for a call that Ctrl-C stops, writing the
    "^C" the terminal shows."""
    import io
    import sys

    def pressed(*args, **kwargs):
        sys.stdout.write("^C")
        raise KeyboardInterrupt

    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", terminal)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # standard output too: the "^C" is there
    return pressed


@pytest.mark.parametrize("options", [[], ["--responder"]])
def test_chat_in_a_terminal_ends_the_line_on_ctrl_c_as_a_reply_is_worked_out(options, monkeypatch, capsys):
    """The terminal shows "^C" after the message's line: "interrupted" followed it there."""
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant

    pressed = ctrl_c_at_a_terminal(monkeypatch)
    monkeypatch.setattr("builtins.input", typed_hello)
    monkeypatch.setattr(Assistant, "chat", pressed)
    monkeypatch.setattr(Responder, "respond", pressed)
    assert main(["chat", *options]) == 130
    assert capsys.readouterr().out.endswith("you> hello\n^C\n")


@pytest.mark.parametrize("options", [[], ["--responder"], ["--model", str(DEFAULT_MODEL), "--responder"]])
def test_chat_in_a_terminal_ends_the_line_on_ctrl_c_as_the_models_load(options, monkeypatch, capsys):
    """Loading takes seconds (TensorFlow's import): a Ctrl-C there left "^Cinterrupted" on one line."""
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant

    pressed = ctrl_c_at_a_terminal(monkeypatch)
    monkeypatch.setattr(Assistant, "load", pressed)
    monkeypatch.setattr(Responder, "load", pressed)
    assert main(["chat", *options]) == 130
    captured = capsys.readouterr()
    assert captured.out == "^C\n" and captured.err.endswith("interrupted\n"), captured


def sigterm_at_a_terminal(monkeypatch):
    """Standard input and output a terminal; returns a stand-in for a call that SIGTERM stops
    (``kill PID``: the terminal shows nothing of it)."""
    import io
    import sys
    import time

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)

    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", terminal)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    return killed


@pytest.mark.parametrize("options", [[], ["--responder"]])
def test_chat_in_a_terminal_leaves_no_blank_line_on_sigterm_as_a_reply_is_worked_out(options, monkeypatch, capsys):
    """The cursor is at a line's start after the message's Enter: the line end Ctrl-C's "^C"
    needs made a blank line before "terminated"."""
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant

    killed = sigterm_at_a_terminal(monkeypatch)
    monkeypatch.setattr("builtins.input", typed_hello)
    monkeypatch.setattr(Assistant, "chat", killed)
    monkeypatch.setattr(Responder, "respond", killed)
    assert main(["chat", *options]) == 128 + signal.SIGTERM
    captured = capsys.readouterr()
    assert captured.out.endswith("you> hello\n") and captured.err.endswith("terminated\n"), captured


@pytest.mark.parametrize("options", [[], ["--responder"], ["--model", str(DEFAULT_MODEL), "--responder"]])
def test_chat_in_a_terminal_leaves_no_blank_line_on_sigterm_as_the_models_load(options, monkeypatch, capsys):
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant

    killed = sigterm_at_a_terminal(monkeypatch)
    monkeypatch.setattr(Assistant, "load", killed)
    monkeypatch.setattr(Responder, "load", killed)
    assert main(["chat", *options]) == 128 + signal.SIGTERM
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.endswith("terminated\n"), captured


def test_chat_in_a_terminal_ends_the_prompts_line_on_sigterm(monkeypatch, capsys):
    """At the prompt the cursor is after "you> ": "terminated" goes on a line of its own."""
    import sys

    killed = sigterm_at_a_terminal(monkeypatch)

    def typed(prompt):
        sys.stdout.write(prompt)  # as input() shows it; then the signal
        killed()

    monkeypatch.setattr("builtins.input", typed)
    assert main(["chat"]) == 128 + signal.SIGTERM
    captured = capsys.readouterr()
    assert captured.out.endswith("you> \n") and captured.err.endswith("terminated\n"), captured


@pytest.mark.skipif(not hasattr(signal, "SIGTSTP"), reason="no job control")
@pytest.mark.parametrize("options", [[], ["--responder"]])
def test_chat_in_a_terminal_leaves_ctrl_z_to_the_system_as_a_reply_is_worked_out(options, monkeypatch):
    """The handler that draws the prompt again after Ctrl-Z and fg runs only as Python code
    does: left in place as a reply was worked out (in TensorFlow's C++ code), it held the stop
    back until the reply was done. It is in place while input() waits, and not after the chat."""
    import builtins
    import pty

    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant

    leader, follower = pty.openpty()
    terminal = open(follower, encoding="utf-8")  # noqa: SIM115 - closed below
    at_prompt, replying = [], []

    def typed(prompt=""):  # standard output is no terminal here: the prompt went to standard error
        at_prompt.append(signal.getsignal(signal.SIGTSTP))
        return "hello"

    def worked_out(*args, **kwargs):
        replying.append(signal.getsignal(signal.SIGTSTP))
        raise KeyboardInterrupt

    monkeypatch.setattr("sys.stdin", terminal)
    monkeypatch.setattr(builtins, "input", typed)
    monkeypatch.setattr(Assistant, "chat", worked_out)
    monkeypatch.setattr(Responder, "respond", worked_out)
    try:
        assert main(["chat", *options]) == 130
    finally:
        terminal.close()
        os.close(leader)
    assert len(at_prompt) == 1 and at_prompt[0] not in (signal.SIG_DFL, signal.SIG_IGN), at_prompt
    assert replying == [signal.SIG_DFL]
    assert signal.getsignal(signal.SIGTSTP) == signal.SIG_DFL


def test_chat_in_a_terminal_with_standard_output_closed_reads_its_input_without_a_traceback(monkeypatch):
    import io

    terminal = io.StringIO("hello there\nI'd like to order a coffee\n")
    terminal.isatty = lambda: True
    monkeypatch.setattr("sys.stdin", terminal)
    monkeypatch.setattr("sys.stdout", None)  # as `legacy-assistant chat >&-` at a terminal has it
    assert main(["chat"]) == 0  # input() failed: "RuntimeError: input(): lost sys.stdout"
    assert terminal.read() == ""


def test_golden_check_command(capsys):
    assert main(["golden", str(DEFAULT_MODEL), "--check"]) == 0
    assert "golden: OK" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["train"], ["serve", "--port", "x"], ["nope"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["evaluate", "m", "d.csv", "--out", ""], "--out"),  # it ran the whole evaluation and wrote no report
        (["evaluate-responder", "m", "c.jsonl", "--out", " "], "--out"),
        (["train-responder", "c.jsonl", "--out", "o", "--checkpoint-dir", ""], "--checkpoint-dir"),  # was "."
        (["chat", "--model", ""], "--model"),  # it chatted with the shipped model
        (["chat", "--responder", " "], "--responder"),
        (["playground", "--model", ""], "--model"),  # it served the shipped model
        (["playground", "--responder", ""], "--responder"),
    ],
)
def test_an_empty_path_is_a_usage_error_naming_its_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert f"error: argument {flag}: is an empty path" in capsys.readouterr().err


def test_parsing_commands_does_not_import_tensorflow():
    """`--help`, the gunicorn master and artifact checks (the responder's too) must stay free of TensorFlow."""
    import subprocess
    import sys

    code = (
        "import sys, legacy_assistant.cli as cli, legacy_assistant.web, legacy_assistant.classifier.artifact;"
        "import legacy_assistant.responder.artifact;"
        "p = cli.build_parser();"
        "p.parse_args(['train-responder', 'a.jsonl', '--out', 'x', '--validation', 'b.json', '--resume']);"
        "p.parse_args(['chat', '--responder', 'r', '--model', 'm', '--emotion', 'joy', '--mode', 'beam']);"
        "p.parse_args(['golden', 'r', '--contexts', 'c.json']);"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_train_and_evaluate_read_held_out_intents_for_their_sentences_alone(tmp_path):
    """--validation-data (and evaluate's DATA) that holds some of the bot's intents, with their
    context rules, was refused for the follow-up intent it leaves out and its missing answers."""
    held_out = tmp_path / "held_out.json"
    held_out.write_text(json.dumps({"intents": [
        {"tag": "greeting", "patterns": ["hiya", "good evening"]},
        {"tag": "tea_green", "patterns": ["green one"], "context_filter": "tea_kind", "context_set": ""},
        {"tag": "book", "patterns": ["I need a table"], "responses": ["For when?"], "context": ["book_when"]},
    ]}))
    out = tmp_path / "m"
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(out), "--epochs", "1", "--no-plot",
                 "--validation-data", str(held_out)]) == 0
    assert json.loads((out / "assistant.json").read_text())["summary"]["validation_examples"] == 4
    assert main(["-q", "evaluate", str(out), str(held_out)]) == 0


@pytest.fixture(scope="module")
def csv_model(tmp_path_factory):
    from tests.helpers import TEST_DATA

    out = tmp_path_factory.mktemp("cli") / "csvbot"
    argv = ["-q", "train", str(TEST_DATA / "tiny.csv"), "--out", str(out), "--epochs", "60",
            "--validation-data", str(TEST_DATA / "tiny_val.csv"), "--no-plot"]
    assert main(argv) == 0
    return out


def test_train_from_csv_learns_out_of_scope_and_tunes_threshold(csv_model, capsys):
    manifest = json.loads((csv_model / "assistant.json").read_text())
    assert manifest["oos_label"] == "oos" and "oos" in manifest["classes"]
    assert main(["info", str(csv_model)]) == 0
    assert "out-of-scope class 'oos' also falls back" in capsys.readouterr().out
    assert manifest["training"]["features"]["char_ngrams"] == [1, 4]  # the default preset
    tuning = manifest["summary"]["threshold_tuning"]
    assert manifest["threshold"] == tuning["threshold"] and tuning["validation_out_of_scope"] == 2
    rules = {rule["tag"]: rule for rule in manifest["intents"]}
    assert set(rules) == {"greeting", "goodbye", "order_tea", "book"}
    assert rules["book"]["responses"] == ["I understood this as 'book'."]
    assert manifest["source"]["format"] == "csv" and manifest["source"]["validation"]["name"] == "tiny_val.csv"


def test_evaluate_writes_report_and_pngs(csv_model, tmp_path, capsys):
    from tests.helpers import TEST_DATA

    out = tmp_path / "reports" / "val.json"
    assert main(["evaluate", str(csv_model), str(TEST_DATA / "tiny_val.csv"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["examples"] == 10 and report["oos_examples"] == 2
    assert f"accuracy     {report['accuracy']:.4f}" in printed
    assert set(report["at_threshold"]) >= {"in_scope_accuracy", "oos_recall", "oos_precision", "joint_accuracy"}
    assert report["threshold"] == json.loads((csv_model / "assistant.json").read_text())["threshold"]
    for name in ("val-confusion.png", "val-thresholds.png"):
        assert (out.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["evaluate", str(csv_model), str(TEST_DATA / "tiny_val.csv"), "--threshold", "1.0"]) == 0
    assert "in-scope fallback rate 1.0000" in capsys.readouterr().out


def test_evaluate_reports_bad_data_with_line(csv_model, capsys):
    from tests.helpers import TEST_DATA

    assert main(["evaluate", str(csv_model), str(TEST_DATA / "bad.csv")]) == 1
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 3: expected 2 fields, got 3" in err and "Traceback" not in err


def test_train_and_evaluate_clinc_layout(tmp_path, capsys):
    from tests.helpers import TEST_DATA

    data = str(TEST_DATA / "tiny_clinc.json")
    out = tmp_path / "clincbot"
    assert main(["-q", "train", data, "--out", str(out), "--epochs", "60", "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert "(clinc): 5 labels, 28 training examples (4 out of scope), 10 validation examples" in printed
    manifest = json.loads((out / "assistant.json").read_text())
    assert manifest["summary"]["validation_examples"] == 10 and "threshold_tuning" in manifest["summary"]
    assert main(["evaluate", str(out), data]) == 0  # --split test by default
    assert "examples     11 (8 in scope, 3 out of scope" in capsys.readouterr().out
    assert main(["evaluate", str(out), data, "--split", "dev"]) == 1
    assert "no split 'dev'" in capsys.readouterr().err


def test_train_classic_preset_and_fixed_threshold(tmp_path, capsys):
    from tests.helpers import TEST_DATA

    out = tmp_path / "classic"
    argv = ["-q", "train", str(TEST_DATA / "tiny.csv"), "--out", str(out), "--preset", "classic", "--epochs", "3",
            "--threshold", "0.4", "--no-oos-class", "--no-plot"]
    assert main(argv) == 0
    # what it trains on: the out-of-scope rows are not among its labels and examples
    from legacy_assistant.classifier.datasets import load_csv

    labels = load_csv(TEST_DATA / "tiny.csv").labels
    n_oos, rows = labels.count("oos"), len(labels)
    assert n_oos and f"{rows - n_oos} training examples ({n_oos} out of scope left out)" in capsys.readouterr().out
    manifest = json.loads((out / "assistant.json").read_text())
    assert manifest["training"]["hidden_units"] == [128, 64] and manifest["training"]["optimizer"] == "sgd"
    assert manifest["threshold"] == 0.4 and manifest["oos_label"] is None and "oos" not in manifest["classes"]


def test_chat_falls_back_on_the_out_of_scope_class(csv_model, monkeypatch, capsys):
    import io

    # a sentence learnt as out of scope, then one learnt as a greeting
    monkeypatch.setattr("sys.stdin", io.StringIO("how tall is mount everest\nHello\n"))
    assert main(["chat", "--model", str(csv_model), "--show-intent", "--threshold", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "[fallback" in lines[0]
    assert "[greeting" in lines[1] and "I understood this as 'greeting'." in lines[1]


def test_intents_file_with_out_of_scope_examples_trains_that_class(tmp_path, monkeypatch, capsys):
    import io

    data = json.loads(TINY_INTENTS.read_text())
    off_topic = ["what is the capital of peru", "how tall is mount everest", "play some jazz music",
                 "what is my credit score", "who won the football", "write me a poem"]
    data["intents"].insert(0, {"tag": "oos", "patterns": off_topic})
    intents = tmp_path / "intents.json"
    intents.write_text(json.dumps(data))
    out = tmp_path / "bot"
    assert main(["-q", "train", str(intents), "--out", str(out), "--epochs", "60", "--no-plot"]) == 0
    assert "(6 out of scope)" in capsys.readouterr().out
    manifest = json.loads((out / "assistant.json").read_text())
    assert manifest["oos_label"] == "oos" and "oos" in manifest["classes"]
    assert "oos" not in {rule["tag"] for rule in manifest["intents"]}  # it answers nothing itself

    monkeypatch.setattr("sys.stdin", io.StringIO("play some jazz music\nhello\n"))
    assert main(["chat", "--model", str(out), "--show-intent", "--threshold", "0"]) == 0
    first, second = capsys.readouterr().out.strip().splitlines()
    assert "[fallback" in first and "[greeting" in second


def _error_lines(err):
    return [line for line in err.strip().splitlines() if " INFO " not in line and " WARNING " not in line]


def test_evaluate_counts_the_models_oos_class_as_fallback_under_another_data_label(tmp_path, capsys):
    from tests.helpers import ROOT

    heldout = ROOT / "data" / "heldout.csv"
    renamed = tmp_path / "heldout_off_topic.csv"
    renamed.write_text(heldout.read_text().replace(",oos\n", ",off_topic\n"))
    assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(heldout)]) == 0
    same = capsys.readouterr().out.splitlines()
    assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(renamed), "--oos-label", "off_topic"]) == 0
    other = capsys.readouterr().out.splitlines()
    recall = [line for line in same if line.startswith("out of scope recall")]
    assert recall and recall == [line for line in other if line.startswith("out of scope recall")]
    assert same[2:] == other[2:]  # every figure as with the model's own label
    assert "30 out of scope, label 'off_topic'; the model's class 'oos' falls back" in other[1]
    # one of the model's own intents: its sentences would count as out of scope, rightly answered
    assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(heldout), "--oos-label", "greeting"]) == 1
    assert _error_lines(capsys.readouterr().err) == [
        f"error: --oos-label 'greeting' is an in-scope intent of {DEFAULT_MODEL}: name the label DATA gives its "
        "out-of-scope sentences"]


def test_evaluate_refuses_data_labelling_the_models_oos_class_under_another_oos_label(tmp_path, capsys):
    """Sentences labelled with the model's out-of-scope class while --oos-label names another
    label counted as in scope: right in the raw accuracy, wrong at the threshold (the model's
    fallback on them), so the report contradicted itself."""
    held_out = tmp_path / "held_out.csv"
    held_out.write_text("text,label\nhello there,greeting\nwho won the football,oos\nthe capital of peru,ood\n")
    out = tmp_path / "report.json"
    args = ["-q", "evaluate", str(DEFAULT_MODEL), str(held_out), "--out", str(out)]
    assert main([*args, "--oos-label", "ood"]) == 1
    captured = capsys.readouterr()
    assert _error_lines(captured.err) == [
        f"error: {held_out}: 1 problem(s) in data file:",
        f"  - line 3: label 'oos' (1 sentence(s)) is the out-of-scope class of {DEFAULT_MODEL}, but --oos-label "
        "names 'ood': its sentences would count as in scope; give DATA's out-of-scope sentences one label"]
    assert captured.out == "" and not out.exists()
    assert main(args) == 0  # its own label: 'ood' is then an intent the model lacks
    assert json.loads(out.read_text())["unknown_labels"] == ["ood"]


def test_evaluate_refuses_an_empty_split_and_leaves_unmeasurable_figures_null(tmp_path, capsys):
    pairs = [["hi there", "greeting"], ["bye now", "goodbye"]]
    empty = tmp_path / "empty_test.json"
    empty.write_text(json.dumps({"train": pairs, "test": []}))
    assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(empty)]) == 1
    captured = capsys.readouterr()
    assert _error_lines(captured.err) == [f"error: split 'test' of {empty} holds no sentences: nothing to evaluate"]
    assert captured.out == ""
    oos_only = tmp_path / "oos_only.json"
    oos_only.write_text(json.dumps({"train": pairs, "oos_test": [["football scores", ""], ["weather", ""]]}))
    out = tmp_path / "report.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no plotting warning on stderr: nothing to draw is said
        assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(oos_only), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy     n/a" in printed and "macro-F1     n/a" in printed
    assert "in-scope accuracy n/a, in-scope fallback rate n/a" in printed
    report = json.loads(out.read_text())
    assert report["accuracy"] is None and report["macro_f1"] is None
    assert report["at_threshold"]["in_scope_accuracy"] is None and report["at_threshold"]["oos_recall"] is not None
    for name in ("report-confusion.png", "report-thresholds.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_draws_tags_of_any_script_and_with_dollar_signs_as_plain_text(tmp_path, capsys):
    """Tags are the user's text: a pair of "$" is no TeX math (it failed with a traceback after the
    report was written), and characters the font lacks are drawn as escapes, not as boxes that
    make two Chinese tags look alike, with a warning per character."""
    held_out = tmp_path / "held_out.csv"
    held_out.write_text(
        "text,label\nhello there,问候\ngood morning,问候\nbye now,再见\nhow much is it,$\\foo$\n", encoding="utf-8"
    )
    out = tmp_path / "report.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # matplotlib's missing-glyph warnings are UserWarnings
        assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(held_out), "--out", str(out)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    for name in ("report-confusion.png", "report-thresholds.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from legacy_assistant.common.plots import _drawable, plot_history

    assert _drawable("问候 $\\foo$ café") == "\\u95ee\\u5019 $\\foo$ café"
    assert _drawable("a\tb\x85c") == "a\\tb\\x85c"  # whitespace the font has no glyph for, too
    # train's history.png is titled with the model folder's name
    plot_history([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}], tmp_path / "h.png", title="bot$\\foo$: history")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_writes_its_report_whole_or_not_at_all(tmp_path, monkeypatch, capsys):
    import os

    from tests.helpers import ROOT

    heldout = ROOT / "data" / "heldout.csv"
    out = tmp_path / "report.json"
    out.write_text("the previous report\n")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(heldout), "--out", str(out)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary file left behind
    monkeypatch.undo()
    assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(heldout), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["examples"] == 94


def test_evaluate_writes_its_report_when_a_figure_cannot_be_drawn(tmp_path, monkeypatch, caplog, capsys):
    """matplotlib failing (no folder it can write its config in) leaves out that figure with one
    warning naming it and why; the report and the other figure are written, and the status is 0."""
    from legacy_assistant.common import plots
    from tests.helpers import ROOT

    def cannot_draw(report, path):
        raise RuntimeError("Matplotlib requires access to a writable cache directory\nset MPLCONFIGDIR")

    out = tmp_path / "report.json"
    (tmp_path / "report-confusion.png").write_text("an older run's figure")
    monkeypatch.setattr(plots, "plot_confusions", cannot_draw)
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "evaluate", str(DEFAULT_MODEL), str(ROOT / "data" / "heldout.csv"), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["examples"] == 94
    assert (tmp_path / "report-thresholds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # not an older run's figure beside the new report, and no temporary file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report-thresholds.png", "report.json"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "report-confusion.png not drawn (RuntimeError: Matplotlib requires access to a writable cache directory); "
        "the report is written without it"
    ]
    assert "Traceback" not in capsys.readouterr().err


def test_train_refuses_validation_data_that_is_its_training_data(tmp_path, capsys):
    from tests.helpers import TEST_DATA

    data = str(TEST_DATA / "tiny.csv")
    assert main(["-q", "train", data, "--out", str(tmp_path / "m"), "--epochs", "1", "--validation-data", data,
                 "--no-plot"]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: {data}: ") and f"are also training sentences of {data}" in line
    assert not (tmp_path / "m").exists()
    clinc = json.loads((TEST_DATA / "tiny_clinc.json").read_text())
    clinc["val"] = clinc["train"][::2]  # a val split that repeats train sentences
    repeated = tmp_path / "repeated.json"
    repeated.write_text(json.dumps(clinc))
    assert main(["-q", "train", str(repeated), "--out", str(tmp_path / "m"), "--epochs", "1", "--no-plot"]) == 1
    (line,) = _error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: split 'val' of {repeated}: ") and f"of split 'train' of {repeated}" in line


def test_train_warns_by_flag_when_patience_has_no_validation_data_to_watch(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        assert main(["train", str(TINY_INTENTS), "--out", str(tmp_path / "m"), "--epochs", "2", "--patience", "2",
                     "--no-plot"]) == 0
    assert any("(--patience) is not used: there is no validation data" in r.getMessage() for r in caplog.records)


def test_info_names_a_limited_number_of_intents_on_its_line(model_copy, capsys, monkeypatch):
    """A model of a thousand intents printed one line of 20,000 characters."""
    from legacy_assistant.cli import info
    from legacy_assistant.classifier.artifact import MANIFEST

    classes = json.loads((model_copy / MANIFEST).read_text(encoding="utf-8"))["classes"]
    assert info.INTENTS_NAMED == 60 and 2 < len(classes) <= 60
    assert main(["info", str(model_copy), "--no-load"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("intents")][0]
    assert line == f"intents    {len(classes)}: " + ", ".join(classes)  # up to the limit: every one named

    monkeypatch.setattr(info, "INTENTS_NAMED", 2)
    assert main(["info", str(model_copy), "--no-load"]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("intents")][0]
    assert line == (f"intents    {len(classes)}: {classes[0]}, {classes[1]}, ... and {len(classes) - 2} more "
                    "(--json lists them all)")
    assert main(["info", str(model_copy), "--no-load", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"] == classes


def test_evaluate_out_to_a_pipe_writes_the_report_there_and_no_figures_beside_it(
    tiny_model_dir, tmp_path, monkeypatch, capsys
):
    """``evaluate --out /dev/stdout``: the report goes to the pipe the link names and the link
    stays; no figure is made in the link's folder (as root that littered /dev, and a user who may
    not write in /dev was refused before the evaluation for the folder the report never needs)."""
    import tempfile

    folder = tmp_path / "dev"
    folder.mkdir()
    fifo, link = tmp_path / "pipe", folder / "stdout"
    os.mkfifo(fifo)
    link.symlink_to(fifo)

    def read_only(*args, **kwargs):  # the folder of /dev/stdout takes no new entry from a user
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        assert main(["-q", "evaluate", str(tiny_model_dir), str(TINY_INTENTS), "--out", str(link)]) == 0
        received = b""
        while chunk := os.read(reader, 1 << 16):
            received += chunk
    finally:
        os.close(reader)
    assert json.loads(received)["examples"] > 0
    assert f"wrote {link} (no figures)" in capsys.readouterr().out
    assert link.is_symlink() and [p.name for p in folder.iterdir()] == ["stdout"]


def test_evaluate_out_to_standard_output_has_the_report_alone_there(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """``evaluate --out /dev/stdout | jq``: the summary came before the report on standard output
    (and, off a terminal, after it), so that no JSON reader could take it; it goes to standard
    error there."""
    import sys

    read_end, write_end = os.pipe()
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{write_end}")
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", stream)
            assert main(["-q", "evaluate", str(tiny_model_dir), str(TINY_INTENTS), "--out", str(link)]) == 0
    finally:
        stream.close()
    with open(read_end, "rb") as pipe:
        received = pipe.read()
    assert json.loads(received)["examples"] > 0
    said = capsys.readouterr()
    assert said.out == "" and f"wrote {link} (no figures)" in said.err and "accuracy" in said.err


def test_info_shows_escaped_an_intent_name_with_an_invisible_character_at_an_end(model_copy, capsys):
    """A model trained before such names were refused still loads; its ``info`` line showed
    "greeting\\u200b" as "greeting", which the API's answers did not equal."""
    from legacy_assistant.artifacts.directory import manifest_digest, write_json
    from legacy_assistant.classifier.artifact import MANIFEST

    manifest = json.loads((model_copy / MANIFEST).read_text(encoding="utf-8"))
    old = manifest["classes"][0]
    manifest["classes"][0] = old + "\u200b"
    for rule in manifest["intents"]:
        if rule["tag"] == old:
            rule["tag"] = old + "\u200b"
    manifest["manifest_sha256"] = manifest_digest(manifest)
    write_json(model_copy / MANIFEST, manifest)
    assert main(["info", str(model_copy)]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("intents")][0]
    assert line.startswith(f"intents    {len(manifest['classes'])}: '{old}\\u200b', {manifest['classes'][1]}, "), line
    assert main(["info", str(model_copy), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["classes"][0] == old + "\u200b"
