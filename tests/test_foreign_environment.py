"""What the libraries underneath read from the environment and the working folder changes
nothing of the app or of ``serve --dev``: Flask's and Werkzeug's (no debug mode from
``FLASK_DEBUG`` or a ``.env`` or ``.flaskenv`` file, no reloader's hand-over from
``WERKZEUG_RUN_MAIN`` and ``WERKZEUG_SERVER_FD``, no ``flask run`` from ``FLASK_RUN_FROM_CLI``,
under which ``app.run()`` returned at once), and prometheus_client's multiprocess folder, which
the development server, one process, does not use."""
import logging

import pytest
from flask import Flask

from tests.server_process import ServerProcess


def test_flask_debug_in_the_environment_leaves_the_app_out_of_debug_mode(monkeypatch, default_predictor):
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    monkeypatch.setenv("FLASK_DEBUG", "1")
    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0),
                          MemoryStore())
    app = create_app({"TESTING": True}, assistant=assistant)
    assert app.debug is False
    assert app.jinja_env.auto_reload is False  # debug mode reloaded the templates on every request


@pytest.mark.parametrize("handover", [{}, {"FLASK_RUN_FROM_CLI": "true"}, {"WERKZEUG_RUN_MAIN": "true"},
                                      {"WERKZEUG_RUN_MAIN": "true", "WERKZEUG_SERVER_FD": "0"}])
def test_the_dev_server_runs_without_flask_settings_from_the_environment_or_folder(
        tmp_path, monkeypatch, caplog, handover):
    from legacy_assistant.cli import serve

    (tmp_path / ".flaskenv").write_text("FLASK_DEBUG=1\nFLASK_RUN_PORT=1\n", encoding="utf-8")
    (tmp_path / ".env").write_text("FLASK_DEBUG=1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name, value in handover.items():
        monkeypatch.setenv(name, value)
    ran = []

    def run_simple(host, port, application, **options):
        ran.append((host, port, application.debug, options))

    monkeypatch.setattr("werkzeug.serving.run_simple", run_simple)
    app = Flask("probe")
    with caplog.at_level(logging.WARNING, logger=serve.__name__):
        serve._run_flask(app, "127.0.0.1", 5)
    assert len(ran) == 1, "app.run() returned without serving"
    host, port, debug, options = ran[0]
    assert (host, port, debug) == ("127.0.0.1", 5, False)
    assert options["use_debugger"] is False and options["use_reloader"] is False
    import os

    assert "FLASK_DEBUG" not in os.environ  # neither file was read
    for name in handover:
        assert name not in os.environ
        assert f"{name} is ignored" in caplog.text


def test_serve_dev_under_foreign_settings_serves_without_the_debugger_or_a_metrics_folder(
        tmp_path, tiny_model_dir, free_port):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    env = {"FLASK_DEBUG": "1", "WERKZEUG_RUN_MAIN": "true", "PROMETHEUS_MULTIPROC_DIR": str(metrics),
           "SCRIPT_NAME": "/bot"}
    with ServerProcess(["--dev", "--model", str(tiny_model_dir), "--no-responder", "--store", "memory"],
                       port=free_port(), log_path=tmp_path / "dev.log", env=env) as server:
        assert server.request("GET", "/console")[0] == 404  # Werkzeug's debugger console, which runs code
        assert server.request("GET", "/version")[0] == 200
        status, text = server.request("GET", "/metrics")
        log = server.log()
    assert status == 200
    assert 'legacy_assistant_http_requests_total{method="GET",route="/version",status="200"} 1.0' in text
    assert list(metrics.iterdir()) == []  # an earlier run's files there would have been counted too
    assert "FLASK_DEBUG is ignored" in log and "WERKZEUG_RUN_MAIN is ignored" in log
    assert "PROMETHEUS_MULTIPROC_DIR is ignored" in log
    assert "SCRIPT_NAME is ignored: the development server answers at the root (/health, not /bot/health)" in log
    assert "Debug mode: off" in log


@pytest.mark.parametrize("module, described", [
    ("legacy_assistant", "train, inspect, chat with and serve"),
    ("legacy_assistant.classifier.classic.pickled_lists", "Turn a pickled list of strings"),
])
def test_the_commands_start_under_python_OO(module, described):
    """``python -OO`` (``PYTHONOPTIMIZE=2``) drops docstrings: the parser was built from one, and
    every command ended in a traceback (``'NoneType' object has no attribute 'splitlines'``)."""
    import subprocess
    import sys

    from tests.server_process import ROOT

    done = subprocess.run([sys.executable, "-OO", "-m", module, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert described in done.stdout


def test_serve_hands_the_server_no_upgrade_of_gunicorns_it_inherited(monkeypatch, caplog):
    """GUNICORN_PID and GUNICORN_FD are what gunicorn's USR2 upgrade gives the master it starts;
    inherited by serve, the server took itself for one and stopped with a KeyError traceback."""
    import os

    from legacy_assistant.serving import server

    class Execed(Exception):
        pass

    given = {}

    def execv(path, args):
        given.update(os.environ)
        raise Execed

    monkeypatch.setenv(server.PRIVATE_ENV, "{}")  # exec_server sets it: put back as it was after the test
    monkeypatch.setenv("GUNICORN_PID", "1")
    monkeypatch.setenv("GUNICORN_FD", "3")
    monkeypatch.setattr(server.os, "execv", execv)
    with caplog.at_level(logging.WARNING, logger=server.log.name), pytest.raises(Execed):
        server.exec_server(server.ServerOptions(port=1, workers=1))
    assert "GUNICORN_PID" not in given and "GUNICORN_FD" not in given
    assert "GUNICORN_PID is ignored" in caplog.text and "GUNICORN_FD is ignored" in caplog.text
