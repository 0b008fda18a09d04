"""``serve --dev``: Flask's development server in one process; SIGHUP reloads in place."""
import shutil
import signal
import time

from tests.helpers import DEFAULT_MODEL
from tests.server_process import ServerProcess


def test_dev_server_serves_and_reloads_on_sighup(tmp_path, tiny_model_dir, free_port):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with ServerProcess(["--dev", "--model", str(model), "--store", "memory"], port=free_port(),
                       log_path=tmp_path / "dev.log") as server:
        assert server.workers() == []  # one process
        assert server.request("GET", "/health")[1]["model"] == "tiny"
        shutil.rmtree(model)
        shutil.copytree(DEFAULT_MODEL, model)
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while server.request("GET", "/health")[1]["model"] != "default" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.request("GET", "/health")[1]["model"] == "default"
        status, body = server.request("POST", "/api/v1/chat", {"sender": "d", "message": "I'd like to order a coffee"})
        assert status == 200 and body["intent"] == "order_coffee"
        (model / "assistant.json").write_text("{}", encoding="utf-8")
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reload (SIGHUP) refused" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "reload (SIGHUP) refused" in server.log()
        assert server.request("GET", "/health")[1]["model"] == "default"
