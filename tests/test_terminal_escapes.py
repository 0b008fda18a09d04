"""Text from files, models and requests reaches the terminal with its control characters shown
as escapes: an escape sequence in a model's name, a file's name, a pickled word or a log record
cannot clear the screen, set the window's title or make the terminal answer. JSON output stays
exact."""
import json
import logging
import pickle
import shutil
from pathlib import Path

from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest
from legacy_assistant.cli import main
from legacy_assistant.common.terminal import json_visible, visible
from legacy_assistant.serving.log_format import CLI_TEXT_FORMAT, TextFormatter, formatter

TINY_INTENTS = Path(__file__).resolve().parent / "data" / "tiny_intents.json"
# set the window's title, clear the screen, an 8-bit CSI
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b"
RAW = ("\x1b", "\x07", "\x9b")


def raw_controls(text):
    return [char for char in RAW if char in text]


def named_hostile(model):
    """``model``'s manifest with its name holding an escape sequence, its digest made again."""
    path = model / "assistant.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["name"] += HOSTILE
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return manifest["name"]


def test_visible_escapes_controls_but_the_tab_and_the_line_feed():
    assert visible("a\tb\nc" + HOSTILE + "\r\x7f") == "a\tb\nc\\x1b]0;pwned\\x07\\x1b[2J\\x9b\\r\\x7f"
    assert visible(visible(HOSTILE)) == visible(HOSTILE)
    assert visible("café ☕") == "café ☕"


def test_json_visible_is_the_same_json_without_raw_controls():
    text = json.dumps(["a" + HOSTILE + "\x7f", "é"], ensure_ascii=False)
    shown = json_visible(text)
    assert not raw_controls(shown) and "\x7f" not in shown and "é" in shown
    assert json.loads(shown) == json.loads(text)


def test_info_shows_a_manifest_name_escaped_and_its_json_exact(model_copy, capsys):
    name = named_hostile(model_copy)
    assert main(["-q", "info", str(model_copy), "--no-load"]) == 0
    out = capsys.readouterr().out
    assert not raw_controls(out), out
    assert visible(name) in out
    assert main(["-q", "info", str(model_copy), "--no-load", "--json"]) == 0
    out = capsys.readouterr().out
    assert not raw_controls(out) and json.loads(out)["name"] == name


def test_evaluate_shows_the_model_and_file_names_escaped(model_copy, tmp_path, capsys):
    named_hostile(model_copy)
    data = tmp_path / f"bad{HOSTILE}.json"
    shutil.copyfile(TINY_INTENTS, data)
    assert main(["-q", "evaluate", str(model_copy), str(data)]) == 0
    captured = capsys.readouterr()
    assert not raw_controls(captured.out + captured.err), captured
    assert f"on {visible(str(data))}" in captured.out


def test_an_error_quoting_a_path_shows_it_escaped(tmp_path, capsys):
    assert main(["-q", "info", str(tmp_path / f"missing{HOSTILE}")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and not raw_controls(err), err
    assert visible(HOSTILE) in err


def test_train_shows_a_file_name_escaped(tmp_path, capsys):
    data = tmp_path / f"bad{HOSTILE}.json"
    shutil.copyfile(TINY_INTENTS, data)
    assert main(["-q", "train", str(data), "--out", str(tmp_path / "m"), "--no-plot"]) == 0
    captured = capsys.readouterr()
    assert not raw_controls(captured.out + captured.err), captured
    assert f"{visible(data.name)} (intents)" in captured.out


def test_text_log_lines_show_controls_escaped():
    """A record that quotes a file's text or a request's data, in serve's and a command's text lines."""
    for text_formatter in (formatter("text"), TextFormatter(CLI_TEXT_FORMAT)):
        record = logging.LogRecord("legacy_assistant.test", logging.WARNING, "", 0, "got %r and %s", ("a", HOSTILE), None)
        line = text_formatter.format(record)
        assert not raw_controls(line) and line.endswith("got 'a' and " + visible(HOSTILE)), line
    record = logging.LogRecord("legacy_assistant.test", logging.WARNING, "", 0, HOSTILE, None, None)
    assert json.loads(formatter("json").format(record))["message"] == HOSTILE


def test_gunicorns_text_lines_show_controls_escaped(capsys):
    from gunicorn.config import Config

    from legacy_assistant.serving.server import ServerLog

    log = ServerLog(Config())
    log.error_log.propagate = False
    log.warning("refused %s", HOSTILE)
    err = capsys.readouterr().err
    assert "refused" in err and not raw_controls(err), err


def test_pickled_lists_print_their_words_without_raw_controls(tmp_path, capsys):
    from legacy_assistant.classifier.classic.pickled_lists import main as convert

    words = ["hi", "a" + HOSTILE]
    (tmp_path / "words.pkl").write_bytes(pickle.dumps(words))
    assert convert([str(tmp_path / "words.pkl")]) == 0
    out = capsys.readouterr().out
    assert not raw_controls(out) and json.loads(out) == words
    named = tmp_path / f"w{HOSTILE}.pkl"
    named.write_bytes(b"not a pickle")
    assert convert([str(named)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and not raw_controls(err), err


def test_a_stop_naming_the_model_written_shows_it_escaped(capsys):
    from legacy_assistant.cli import say_stopped

    say_stopped(f"interrupted after the new model was written: m{HOSTILE} holds it, whole", ["train"])
    err = capsys.readouterr().err
    assert not raw_controls(err) and visible(HOSTILE) in err, err
