"""The commands a Windows user runs, run here with what Windows' Python lacks hidden.

The wheel installs on Windows, so its commands must not reach a POSIX-only name (``fcntl``,
``signal.SIGHUP``, ``os.getuid``, ``os.O_NONBLOCK``...) on their way. Each command runs in a
child process whose ``sitecustomize`` hides those names before the project is imported
(:mod:`tests.posix_hidden`): a use of one fails here as it would there. Plain ``serve`` runs
gunicorn, which Windows cannot run: it must refuse in one line, naming ``serve --dev``.

This is Linux standing in for Windows: file semantics (an open file cannot be renamed there),
``/proc``, and a signal given by number are not simulated.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, TINY_INTENTS, terminal_chat
from tests.mood_corpus import PROMPTS, write_corpus
from tests.server_process import ServerProcess

TINY_RESPONDER = {
    "embedding_size": 8,
    "encoder_units": 8,
    "context_units": 8,
    "decoder_units": 8,
    "condition_size": 4,
    "batch_size": 8,
    "min_count": 1,
    "patience": 0,
    "held_out_fraction": 0.0,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("posix-hidden")


@pytest.fixture(scope="module")
def env(folder) -> dict[str, str]:
    """The environment of a child with the POSIX-only names hidden; its own temporary folder."""
    site = folder / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("from tests.posix_hidden import hide\n\nhide()\n", encoding="utf-8")
    temporary = folder / "tmp"
    temporary.mkdir()
    path = os.pathsep.join(p for p in (str(site), str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    child = dict(os.environ, PYTHONPATH=path, TMPDIR=str(temporary))
    child.pop("LEGACY_ASSISTANT_RUNTIME", None)
    return child


def run_hidden(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``legacy-assistant ARGS`` in a child with the POSIX-only names hidden."""
    return subprocess.run(
        [sys.executable, "-m", "legacy_assistant", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
    )


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def model(env, folder) -> Path:
    """A tiny intent model trained by ``train`` with the names hidden, for a user whose home
    folder cannot be written (matplotlib's folder then goes to the temporary folder)."""
    home = folder / "home-is-a-file"
    home.write_text("", encoding="utf-8")
    plain_home = {k: v for k, v in env.items() if k not in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR")}
    out = folder / "model"
    args = ["train", str(TINY_INTENTS), "--out", str(out), "--epochs", "30"]
    succeeded(run_hidden({**plain_home, "HOME": str(home)}, *args))
    return out


def test_the_simulation_hides_the_names_and_tensorflow_still_imports(env):
    code = (
        "import os, signal, socket, subprocess, sys\n"
        "hidden = [hasattr(os, 'getuid'), hasattr(os, 'fork'), hasattr(os, 'O_NONBLOCK'), hasattr(signal, 'SIGHUP'),\n"
        "          hasattr(signal, 'SIGQUIT'), hasattr(signal, 'pthread_sigmask'), hasattr(socket, 'AF_UNIX')]\n"
        "try:\n"
        "    import fcntl\n"
        "except ImportError:\n"
        "    hidden.append('no fcntl')\n"
        "import tensorflow.compat.v1\n"
        "print(hidden, hasattr(signal, 'SIGINT'), subprocess.run([sys.executable, '-c', 'pass']).returncode)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[0] == "[False, False, False, False, False, False, False, 'no fcntl'] True 0"


def test_help_names_every_command(env):
    result = succeeded(run_hidden(env, "--help"))
    assert "train-responder" in result.stdout and "serve" in result.stdout


def test_train_exports_a_model_and_plots_its_history(model):
    assert (model / "assistant.json").is_file()
    assert (model / "history.png").is_file()


def test_info_verifies_the_model(env, model):
    assert "checksums ok" in succeeded(run_hidden(env, "info", str(model))).stdout


def test_chat_answers_a_line_read_from_stdin(env, model):
    result = succeeded(run_hidden(env, "chat", "--model", str(model), "--show-intent", stdin="hello\n"))
    assert "greeting" in result.stdout


def test_chat_at_a_terminal_reads_its_lines_without_readline(env, model):
    """Windows' Python has no readline module: at a terminal the chat reads its lines as typed,
    answers each, and ends at "quit"."""
    status, shown = terminal_chat(b"hello\rquit\r", "--model", str(model), "--show-intent", env=env)
    assert status == 0 and "Traceback" not in shown, shown[-3000:]
    assert "bot> " in shown and "greeting" in shown, shown[-3000:]


def test_golden_writes_then_checks(env, model, folder):
    sentences = folder / "sentences.txt"
    sentences.write_text("hello\nbye\n", encoding="utf-8")
    succeeded(run_hidden(env, "golden", str(model), "--sentences", str(sentences)))
    assert "golden: OK" in succeeded(run_hidden(env, "golden", str(model), "--check")).stdout


def test_evaluate_reports_accuracy(env, model):
    result = succeeded(run_hidden(env, "evaluate", str(model), str(ROOT / "tests" / "data" / "tiny_val.csv")))
    assert "greeting" in result.stdout


@pytest.fixture(scope="module")
def responder(env, folder) -> Path:
    """A tiny responder trained by ``train-responder`` with the names hidden."""
    config = folder / "tiny-responder.json"
    config.write_text(json.dumps(TINY_RESPONDER), encoding="utf-8")
    out = folder / "responder"
    args = ["train-responder", str(corpus(folder)), "--out", str(out), "--config", str(config), "--epochs", "1"]
    succeeded(run_hidden(env, *args))
    return out


def corpus(folder: Path) -> Path:
    return write_corpus(folder / "moods.jsonl", PROMPTS)


def test_train_responder_exports_a_responder(env, responder):
    assert (responder / "responder.json").is_file()
    assert "checksums ok" in succeeded(run_hidden(env, "info", str(responder))).stdout


def test_evaluate_responder_and_reexport_responder_run(env, responder, folder):
    succeeded(run_hidden(env, "evaluate-responder", str(responder), str(corpus(folder))))
    succeeded(run_hidden(env, "reexport-responder", str(responder)))
    assert "checksums ok" in succeeded(run_hidden(env, "info", str(responder))).stdout


def test_import_classic_and_migrate_write_models(env, folder):
    classic = ROOT / "tests" / "data" / "classic"
    imported = folder / "classic"
    args = ["--words", str(classic / "words.json"), "--classes", str(classic / "classes.txt")]
    args += ["--intents", str(classic / "intents.json"), "--out", str(imported)]
    succeeded(run_hidden(env, "import-classic", str(classic / "keras2_chatbot_model.h5"), *args))
    succeeded(run_hidden(env, "migrate", str(imported), "--out", str(folder / "classic-tf2")))
    assert "checksums ok" in succeeded(run_hidden(env, "info", str(folder / "classic-tf2"))).stdout


def test_serve_dev_answers_a_chat_request(env, model, folder, free_port):
    args = ["--dev", "--model", str(model), "--no-responder", "--store", "memory"]
    with ServerProcess(args, port=free_port(), log_path=folder / "dev.log", env=env) as server:
        status, body = server.request("POST", "/api/v1/chat", {"sender": "w", "message": "hello"})
        assert status == 200 and body["intent"] == "greeting", body
        assert "no SIGHUP: reload the models with POST /admin/reload" in server.log()
        assert "Traceback" not in server.log()


def test_plain_serve_refuses_in_one_line_naming_serve_dev(env, model):
    result = run_hidden(env, "serve", "--model", str(model), "--no-responder", "--port", "0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: serve runs gunicorn"), result.stderr
    assert "'serve --dev'" in lines[0] and "WSL" in lines[0]


def test_playground_names_a_port_in_use_in_one_line(env, model):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_hidden(env, "playground", "--model", str(model), "--no-responder", "--port", str(port))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert f"error: cannot listen on 127.0.0.1:{port}" in result.stderr
