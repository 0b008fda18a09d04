"""Paths that are not plain ASCII: names whose bytes are not UTF-8, and UTF-8 names under a locale
whose encoding is ASCII (``LC_ALL=C`` with Python's UTF-8 mode and locale coercion off), where
Python holds each non-ASCII byte as a surrogate while TensorFlow encodes paths as UTF-8."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from legacy_assistant.cli import main
from tests.helpers import DEFAULT_MODEL, TINY_INTENTS

ROOT = Path(__file__).resolve().parent.parent
NOT_UTF8 = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: the surrogate "\udce9" in Python's str


def _ascii_locale_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The CLI in a child whose locale is C with UTF-8 mode and locale coercion off: ASCII
    standard streams and file system encoding. Output is read as bytes, decoded as ASCII."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LEGACY_ASSISTANT_RUNTIME"}
    env.update(LANG="C", LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-m", "legacy_assistant", "-q", *args], cwd=cwd, env=env, capture_output=True, timeout=180
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("ascii"), done.stderr.decode("ascii")
    )


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if " INFO " not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_a_model_under_a_utf8_name_loads_in_an_ascii_locale(tmp_path):
    """The name reached TensorFlow with surrogates: "cannot load SavedModel from ...: 'utf-8' codec
    can't encode characters ... surrogates not allowed", for info, chat, golden and serve alike."""
    shutil.copytree(DEFAULT_MODEL, tmp_path / "modèl")
    done = _ascii_locale_cli("info", "--json", "modèl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["name"] == json.loads((DEFAULT_MODEL / "assistant.json").read_text("utf-8"))["name"]


def test_an_ascii_locale_refuses_a_non_ascii_out_before_training_and_says_why(tmp_path):
    """Training ran, then the export ended in a UnicodeEncodeError traceback."""
    done = _ascii_locale_cli("train", str(TINY_INTENTS), "--out", "modèl", "--epochs", "1", cwd=tmp_path)
    assert done.returncode == 1
    line = _one_error_line(done.stderr)
    assert line.startswith(f"error: {tmp_path}/mod\\xe8l: TensorFlow cannot write under a path with non-ASCII"), line
    assert "PYTHONUTF8=1" in line and "training on" not in done.stderr
    assert not (tmp_path / "modèl").exists() and list(tmp_path.iterdir()) == []


def test_an_out_that_is_not_utf8_is_refused_before_training(tmp_path, capsys):
    """TensorFlow cannot open such a path at all: a traceback (UnicodeEncodeError) after training."""
    out = tmp_path / NOT_UTF8
    assert main(["train", str(TINY_INTENTS), "--out", str(out), "--epochs", "1"]) == 1
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert line == f"error: {tmp_path}/caf\\xe9: TensorFlow takes only paths that are UTF-8, and this one is not: " \
        "rename it or choose another", line
    assert list(tmp_path.iterdir()) == []


def test_a_model_directory_that_is_not_utf8_is_named_when_it_cannot_load(tmp_path, capsys):
    shutil.copytree(DEFAULT_MODEL, tmp_path / NOT_UTF8)
    assert main(["info", str(tmp_path / NOT_UTF8)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "caf\\xe9/saved_model: TensorFlow takes only paths that are UTF-8" in line, line


def test_a_data_file_name_that_is_not_utf8_is_recorded_readably_in_the_manifest(tmp_path):
    """The manifest's digest encodes it as UTF-8: a name with surrogates ended the command in a
    UnicodeEncodeError after training, and no model was written."""
    data = tmp_path / (NOT_UTF8 + ".json")
    shutil.copyfile(TINY_INTENTS, data)
    assert main(["-q", "train", str(data), "--out", str(tmp_path / "model"), "--epochs", "1", "--no-plot"]) == 0
    manifest = json.loads((tmp_path / "model" / "assistant.json").read_text(encoding="utf-8"))
    assert manifest["source"]["data"]["name"] == "caf\\xe9.json"


def test_a_utf8_data_file_name_is_recorded_as_itself_in_an_ascii_locale(tmp_path):
    shutil.copyfile(TINY_INTENTS, tmp_path / "données.json")
    done = _ascii_locale_cli("train", "données.json", "--out", "model", "--epochs", "1", "--no-plot", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "model" / "assistant.json").read_text(encoding="utf-8"))
    assert manifest["source"]["data"]["name"] == "données.json"


def test_a_model_under_a_utf8_name_migrates_in_an_ascii_locale(tmp_path):
    """The copy's manifest records its source's path: with surrogates in it, the manifest's digest
    ended the command in a UnicodeEncodeError once the copy was written and checked."""
    shutil.copytree(DEFAULT_MODEL, tmp_path / "modèl")
    done = _ascii_locale_cli("migrate", "modèl", "--out", "copy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "copy" / "assistant.json").read_text(encoding="utf-8"))
    assert manifest["runtime"] == "tf2" and manifest["migrated_from"]["path"] == "modèl"


def test_a_checkpoint_dir_that_is_not_utf8_is_refused_before_the_corpora_are_read(tmp_path, capsys):
    checkpoints = tmp_path / NOT_UTF8
    argv = ["train-responder", str(tmp_path / "unread.txt"), "--out", str(tmp_path / "r"), "--checkpoint-dir",
            str(checkpoints)]
    assert main(argv) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {tmp_path}/caf\\xe9: TensorFlow takes only paths that are UTF-8"), line
