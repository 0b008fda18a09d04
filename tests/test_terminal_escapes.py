"""Text from files, models and requests reaches the terminal with its control characters shown
as escapes: an escape sequence in a model's name, a file's name, a pickled word or a log record
cannot clear the screen, set the window's title or make the terminal answer. JSON output stays
exact."""
import array
import json
import logging
import pickle
import shutil
import sys
from pathlib import Path

import pytest

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


# the bidi embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI, FSI, PDI)
BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
# "reply: transfer 100 to bob" shown as "... bob ot 001 refsnart"
SPOOFED = "reply: \u202etransfer 100 to bob\u202c done \u2067isolated\u2069"


def test_visible_escapes_exactly_the_controls_and_the_bidi_controls():
    """Every code point: shown as an escape exactly when it is a control character (category Cc)
    but the tab and the line feed, or one of the nine bidi controls; every other format character
    (category Cf: the zero-width joiner, the bidi marks) is kept."""
    import unicodedata

    every = array.array("I", range(sys.maxunicode + 1)).tobytes().decode("utf-32-le", "surrogatepass")
    controls = [char for char, kind in zip(every, map(unicodedata.category, every)) if kind == "Cc"]
    expected = {ord(char): ascii(char)[1:-1] for char in controls + BIDI if char not in "\t\n"}
    assert len(expected) == 65 - 2 + 9
    shown, wanted = visible(every), every.translate(expected)
    if shown != wanted:  # (not compared in an assert: pytest's diff of two 1.1-million-character texts)
        first = next(hex(ord(char)) for char in every if visible(char) != char.translate(expected))
        pytest.fail(f"visible() differs from the category test first at {first}")


def test_visible_escapes_the_bidi_controls_and_keeps_joiners_and_marks():
    assert visible(SPOOFED) == "reply: \\u202etransfer 100 to bob\\u202c done \\u2067isolated\\u2069"
    assert visible(visible(SPOOFED)) == visible(SPOOFED)
    kept = [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: emoji joined by U+200D
        "\u05e9\u05dc\u05d5\u05dd\u200f 123",  # Hebrew with a right-to-left mark
        "\u0645\u0631\u062d\u0628\u0627\u061c 42",  # Arabic with the Arabic letter mark
        "abc\u200e",  # a left-to-right mark
        "\u0915\u094d\u200d\u0937",  # Devanagari held apart by a zero-width joiner
    ]
    for text in kept:
        assert visible(text) == text


def test_json_visible_is_the_same_json_without_raw_controls():
    text = json.dumps(["a" + HOSTILE + "\x7f", "é"], ensure_ascii=False)
    shown = json_visible(text)
    assert not raw_controls(shown) and "\x7f" not in shown and "é" in shown
    assert json.loads(shown) == json.loads(text)
    text = json.dumps([SPOOFED, "\u05e9\u05dc\u05d5\u05dd\u200f", "a\u200db"], ensure_ascii=False)
    shown = json_visible(text)
    assert not any(char in shown for char in BIDI) and "\u200f" in shown and "\u200d" in shown, shown
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


def test_an_error_and_a_log_line_show_the_bidi_controls_escaped(tmp_path, capsys):
    """A file's name or a request's data holding a right-to-left override shows in the order it
    has, in a command's error and in serve's and gunicorn's text log lines."""
    from gunicorn.config import Config

    from legacy_assistant.serving.server import ServerLog

    assert main(["-q", "info", str(tmp_path / f"missing{SPOOFED}")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and visible(SPOOFED) in err and not any(c in err for c in BIDI), err
    for text_formatter in (formatter("text"), TextFormatter(CLI_TEXT_FORMAT)):
        record = logging.LogRecord("legacy_assistant.test", logging.WARNING, "", 0, "got %s", (SPOOFED,), None)
        assert text_formatter.format(record).endswith("got " + visible(SPOOFED))
    log = ServerLog(Config())
    log.error_log.propagate = False
    log.warning("refused %s", SPOOFED)
    err = capsys.readouterr().err
    assert visible(SPOOFED) in err and not any(c in err for c in BIDI), err


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
