"""The command line, run in-process through its ``main``."""
import json
import shutil

import pytest

from legacy_assistant.cli import main
from tests.conftest import DEFAULT_MODEL, TINY_INTENTS


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


def test_train_reports_bad_intents_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"intents": [{"tag": "a", "patterns": ["x"]}]}')
    assert main(["train", str(bad), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "bad.json" in err and "intent #0 ('a'): field 'responses' is missing" in err
    assert "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_info_on_shipped_model(capsys):
    assert main(["info", str(DEFAULT_MODEL)]) == 0
    out = capsys.readouterr().out
    assert "checksums ok" in out and "lancaster" in out


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


def test_golden_check_command(capsys):
    assert main(["golden", str(DEFAULT_MODEL), "--check"]) == 0
    assert "golden: OK" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["train"], ["serve", "--port", "x"], ["nope"]])
def test_usage_errors_exit_2(argv):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_parsing_commands_does_not_import_tensorflow():
    """`--help`, the gunicorn master and artifact checks must stay free of TensorFlow."""
    import subprocess
    import sys

    code = (
        "import sys, legacy_assistant.cli as cli, legacy_assistant.web, legacy_assistant.artifact;"
        "cli.build_parser(); print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
