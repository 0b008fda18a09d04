"""The production server for real: gunicorn master + 2 workers as a subprocess.

Checks that TensorFlow never loads in the master, that workers share conversations through
SQLite, and that reloads (admin route and SIGHUP) reach every worker with zero failed
requests under load, while a broken model is refused and the old one keeps serving.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER
from tests.server_process import ServerProcess, model_info, wait_for

ADMIN = {"Authorization": "Bearer admin-secret"}
# An admin reload answers once its worker has loaded and warmed up both models, after any
# reload that worker was already running: 7.8 s measured under load with a second suite's
# server on the same two cores. The other requests keep the default 10 s.
RELOAD_TIMEOUT = 60.0


class Load:
    """Threads sending parse and chat requests (fresh connection each) until stopped."""

    def __init__(self, server, threads=4):
        self.server = server
        self.ok = 0
        self.failures = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(k,), daemon=True) for k in range(threads)]

    def _run(self, k):
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                if i % 2:
                    status, body = self.server.request("POST", "/api/v1/parse", {"text": "hello there"})
                else:
                    status, body = self.server.request("POST", "/api/v1/chat", {"sender": f"load-{k}", "message": "hi"})
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append((status, body))
            except Exception as exc:  # connection refused or reset: a failed request
                self.failures.append(repr(exc))

    def serves_on(self, requests=5, timeout=60.0):
        """Whether ``requests`` more requests succeed within ``timeout`` seconds from now: waiting
        for answers, not sleeping a fixed time, so that a loaded machine slows the test, not fails it."""
        start = self.ok
        return wait_for(lambda: self.ok >= start + requests, timeout=timeout)

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(30)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_model_dir, free_port):
    base = tmp_path_factory.mktemp("deploy")
    model = base / "model"
    shutil.copytree(DEFAULT_MODEL, model)
    responder = base / "responder"
    shutil.copytree(DEFAULT_RESPONDER, responder)
    server = ServerProcess(
        ["--workers", "2", "--threads", "4", "--model", str(model), "--responder", str(responder),
         "--store", f"sqlite:///{base / 'conv.db'}"],
        port=free_port(), log_path=base / "server.log", env={"LEGACY_ASSISTANT_ADMIN_TOKEN": "admin-secret"},
    )
    try:
        # /metrics adds up every worker's files, so it may show a worker's model before that
        # worker listens; /ready answers 200 once every worker serves (socket open).
        assert wait_for(lambda: server.request("GET", "/ready")[0] == 200, timeout=90), server.log()
        assert wait_for(lambda: len(versions(server)) == 2, timeout=30), server.log()  # both workers loaded
        yield server, model
    finally:
        server.stop()


def put_model(target, source):
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    shutil.rmtree(target)
    staging.rename(target)


def versions(server):
    return model_info(server.request("GET", "/metrics")[1])


def serve(server, model, source):
    """Put ``source`` in the served directory and reload it into both workers; its version.

    The tests share one server: a test that reloads starts from a model it chose, whatever
    earlier tests left in service (another model, or a damaged directory)."""
    put_model(model, source)
    status, body = server.request("POST", "/admin/reload", headers=ADMIN, timeout=RELOAD_TIMEOUT)
    assert status == 200, body
    version = body["model"]["version"]
    serving = wait_for(lambda: (lambda v: len(v) == 2 and set(v.values()) == {version} and v)(versions(server)))
    assert serving, (version, versions(server), server.log())
    return version


def test_master_never_loads_tensorflow_workers_do(deployment):
    server, _ = deployment
    workers = wait_for(lambda: len(server.workers()) == 2 and server.workers())
    assert len(workers) == 2
    with open(f"/proc/{server.pid}/maps") as maps:
        assert "tensorflow" not in maps.read()
    for pid in workers:
        with open(f"/proc/{pid}/maps") as maps:
            assert "tensorflow" in maps.read()


def test_no_token_is_on_a_command_line_and_the_workers_still_check_it(deployment):
    """Any user of the machine can read /proc/PID/cmdline: the admin token reaches the workers
    through the environment, never through the re-executed server's arguments."""
    server, _ = deployment
    workers = wait_for(lambda: len(server.workers()) == 2 and server.workers())
    for pid in [server.pid, *workers]:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            assert b"admin-secret" not in cmdline.read(), pid
    # a worker without the token would answer 403 admin_disabled; with it, a wrong one is 401
    for _ in range(4):  # connections spread over both workers
        status, body = server.request("POST", "/admin/reload", headers={"Authorization": "Bearer wrong"})
        assert (status, body["error"]["code"]) == (401, "invalid_token")


def test_both_workers_serve_and_share_conversations(deployment):
    server, model = deployment
    serve(server, model, DEFAULT_MODEL)  # the coffee flow is the shipped model's
    seen = {server.request("GET", "/version")[1]["pid"] for _ in range(20)}
    assert seen <= set(server.workers())
    assert set(versions(server)) == {str(pid) for pid in server.workers()}  # both loaded a model
    flows = []
    for k in range(6):  # each turn on a fresh connection: either worker may take it
        sender = f"flow-{k}"
        first = server.request("POST", "/api/v1/chat", {"sender": sender, "message": "I'd like to order a coffee"})
        second = server.request("POST", "/api/v1/chat", {"sender": sender, "message": "a large one"})
        flows.append((first[1]["intent"], second[1]["intent"]))
    assert flows == [("order_coffee", "coffee_size_large")] * 6


def test_admin_reload_reaches_every_worker_without_a_failed_request(deployment, tiny_model_dir):
    server, model = deployment
    old = {serve(server, model, DEFAULT_MODEL)}
    with Load(server) as load:
        assert load.serves_on(4), load.failures
        put_model(model, tiny_model_dir)
        status, body = server.request("POST", "/admin/reload", headers=ADMIN, timeout=RELOAD_TIMEOUT)
        assert status == 200, body
        # The worker that answers may already have picked the new model up by itself (a reload
        # signal that came while it reloaded for serve() above runs once more afterwards): then
        # it says "unchanged", and still tells the others, which is what this test is about.
        assert body["status"] in ("reloaded", "unchanged") and body["other_workers_notified"] is True, body
        new = body["model"]["version"]
        assert body["model"]["name"] == "tiny" and {new} != old
        serving = wait_for(lambda: (lambda v: set(v.values()) == {new} and len(v) == 2 and v)(versions(server)))
        assert load.serves_on(10), load.failures
    assert set(serving.values()) == {new}, serving
    assert load.failures == []


def test_sighup_reloads_every_worker_without_a_failed_request(deployment, tiny_model_dir):
    server, model = deployment
    old = {serve(server, model, tiny_model_dir)}
    with Load(server) as load:
        assert load.serves_on(4), load.failures
        put_model(model, DEFAULT_MODEL)
        server.signal(signal.SIGHUP)
        serving = wait_for(lambda: (lambda v: len(v) == 2 and len(set(v.values())) == 1 and set(v.values()) != old
                                    and v)(versions(server)))
        assert load.serves_on(10), load.failures
    assert serving and len(set(serving.values())) == 1 and set(serving.values()) != old
    assert server.request("GET", "/health")[1]["model"] == "default"
    assert load.failures == []


def test_broken_model_is_refused_and_the_old_one_keeps_serving(deployment):
    server, model = deployment
    serve(server, model, DEFAULT_MODEL)
    before = server.request("GET", "/version")[1]["model"]
    variables = next((model / "saved_model" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes()[:64])
    refused_before = server.log().count("reload (SIGHUP) refused")
    with Load(server, threads=2) as load:
        status, body = server.request("POST", "/admin/reload", headers=ADMIN, timeout=RELOAD_TIMEOUT)
        assert status == 422 and body["error"]["code"] == "reload_refused"
        assert "still serving default" in body["error"]["message"]
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: server.log().count("reload (SIGHUP) refused") >= refused_before + 2)
        assert load.serves_on(6), load.failures
    assert load.failures == []
    for _ in range(6):
        assert server.request("GET", "/version")[1]["model"] == before
    assert server.request("POST", "/admin/reload")[0] == 401


def test_a_worker_restarted_while_the_model_is_damaged_does_not_stop_the_server(deployment):
    """Gunicorn stops the whole server when a worker fails to boot: right at start-up, but not
    once it serves, when a worker that dies (here: SIGKILL) meets the damaged model a refused
    reload left on disk. The other worker serves on; a new one comes up once the model is mended."""
    server, model = deployment
    serve(server, model, DEFAULT_MODEL)
    variables = next((model / "saved_model" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes()[:64])
    retries_before = server.log().count("a new worker tries again")
    os.kill(server.workers()[0], signal.SIGKILL)
    assert wait_for(lambda: server.log().count("a new worker tries again") > retries_before, timeout=60), server.log()
    assert server.process.poll() is None, server.log()
    for _ in range(6):
        assert server.request("POST", "/api/v1/parse", {"text": "hello there"})[0] == 200
    assert server.request("GET", "/ready")[0] == 503  # one of the two workers does not serve
    put_model(model, DEFAULT_MODEL)
    assert wait_for(lambda: server.request("GET", "/ready")[0] == 200, timeout=90), server.log()
    assert wait_for(lambda: len(versions(server)) == 2, timeout=30), server.log()
    assert "Shutting down: Master" not in server.log()


def test_a_cakechat_client_works_as_it_is(deployment):
    """As cakechat's clients call its server: ``requests.post(url, json=...)``, read ``response``."""
    import requests

    server, _ = deployment
    url = f"{server.url}/cakechat_api/v1/actions/get_response"
    for emotion in ("neutral", "anger", "joy", "fear", "sadness"):
        answer = requests.post(url, json={"context": ["Hi!", "Hello, how are you?"], "emotion": emotion}, timeout=60)
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"] == "application/json"
        assert isinstance(answer.json()["response"], str) and answer.json()["response"]
    refused = requests.post(url, json={"context": ["hi"], "emotion": "happiness"}, timeout=60)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith('Malformed request, emotion param "happiness"')
    chat = server.request("POST", "/api/v1/chat", {"sender": "cake", "message": "qwertyuiop zxcvbnm", "emotion": "joy"})
    assert chat[0] == 200 and chat[1]["generated"] is True and chat[1]["intent"] == "fallback"


def test_a_damaged_responder_is_refused_with_its_model_and_both_keep_serving(deployment, tmp_path):
    server, model = deployment
    serve(server, model, DEFAULT_MODEL)
    responder = model.parent / "responder"
    before = server.request("GET", "/version")[1]["model"]
    assert before["responder"]["emotions"] == ["neutral", "anger", "joy", "fear", "sadness"]
    keep = tmp_path / "responder"
    shutil.copytree(responder, keep)
    try:
        variables = next((responder / "saved_model" / "variables").glob("variables.data-*"))
        variables.write_bytes(variables.read_bytes()[:64])
        with Load(server, threads=2) as load:
            status, body = server.request("POST", "/admin/reload", headers=ADMIN, timeout=RELOAD_TIMEOUT)
            assert status == 422 and body["error"]["code"] == "reload_refused", body
            assert "responder" in body["error"]["message"]
            assert load.serves_on(6), load.failures
        assert load.failures == []
        for _ in range(6):
            assert server.request("GET", "/version")[1]["model"] == before
        status, body = server.request(
            "POST", "/cakechat_api/v1/actions/get_response", {"context": ["hi"], "mode": "greedy"}
        )
        assert status == 200 and body["response"]
    finally:
        shutil.rmtree(responder)
        shutil.copytree(keep, responder)


def listening_sockets(port):
    """Inodes of the IPv4 sockets listening on ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    return inodes


def socket_inodes(pid):
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def test_each_worker_listens_on_a_socket_of_its_own(deployment):
    """With one shared socket, a burst of keep-alive connections can all land on one worker;
    with a socket per worker (SO_REUSEPORT) the kernel spreads them over the workers."""
    server, _ = deployment
    workers = wait_for(lambda: len(server.workers()) == 2 and server.workers())
    listening = listening_sockets(server.port)
    held = [socket_inodes(pid) & listening for pid in workers]
    assert [len(inodes) for inodes in held] == [1, 1], (listening, held)
    assert held[0] != held[1]
    assert not socket_inodes(server.pid) & listening  # the master accepts nothing itself


def test_a_second_server_on_a_port_in_use_is_refused(deployment):
    """SO_REUSEPORT would let a second server share the port and half the traffic: refused."""
    server, _ = deployment
    second = subprocess.run(
        [sys.executable, "-m", "legacy_assistant", "serve", "--host", "127.0.0.1", "--port", str(server.port)],
        capture_output=True, text=True, timeout=120,
    )
    assert second.returncode == 1
    # one line, before anything claims to be serving
    assert (second.stderr + second.stdout).strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{server.port}: Address already in use (choose another --host or --port)"]
    assert len(listening_sockets(server.port)) == 2
    # the server checks again as it starts, for a port taken after serve looked
    from legacy_assistant.serving.server import refuse_port_in_use

    with pytest.raises(SystemExit):
        refuse_port_in_use("127.0.0.1", server.port)


@pytest.mark.pinned_only
def test_a_metrics_folder_removed_while_serving_is_made_again(tmp_path, free_port):
    """A cleaner of the temporary folder (where the server makes it by default) or a person
    removes the metrics folder: a scrape answered 500, and a worker started after it (here one
    killed) failed to import the metrics, which stopped the whole server."""
    metrics = tmp_path / "metrics"
    with ServerProcess(
        ["--workers", "2", "--threads", "2", "--no-responder", "--store", f"sqlite:///{tmp_path / 'c.db'}"],
        port=free_port(), log_path=tmp_path / "server.log", env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)},
    ) as server:
        assert wait_for(lambda: server.request("GET", "/ready")[0] == 200, timeout=90), server.log()
        shutil.rmtree(metrics)
        # what the running workers count goes to their removed files: nothing to show, but no 500
        assert server.request("GET", "/metrics")[0] == 200
        assert metrics.is_dir() and "was removed while the server ran: made again" in server.log()
        shutil.rmtree(metrics)  # again, and a worker starts meanwhile
        before = set(server.workers())
        killed = server.workers()[0]
        os.kill(killed, signal.SIGKILL)
        assert wait_for(lambda: killed not in server.workers() and len(server.workers()) == 2, timeout=60)
        assert wait_for(lambda: server.request("GET", "/ready")[0] == 200, timeout=90), server.log()
        assert server.process.poll() is None and "Shutting down: Master" not in server.log(), server.log()
        # the new worker's model is counted: its files are in the folder made again
        [new] = set(server.workers()) - before  # not the one that lived through it: its files went with the folder
        assert wait_for(lambda: f'pid="{new}"' in server.request("GET", "/metrics")[1], timeout=30), server.log()
