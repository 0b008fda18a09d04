"""``serve --host unix:PATH``: the server listens on a Unix socket (mode 0660) for a proxy on the
same machine; what would go wrong is refused in one line before gunicorn starts."""
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from legacy_assistant.cli import build_parser
from legacy_assistant.errors import ConfigError
from legacy_assistant.serving.unix_socket import MAX_PATH_BYTES, socket_path, socket_problem
from tests.helpers import ROOT


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def call(path, method, url, body=None, host="localhost"):
    connection = UnixConnection(path)
    try:
        data = None if body is None else json.dumps(body)
        connection.request(method, url, body=data, headers={"Host": host, "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def short_dir(tmp_path_factory):
    """A folder with a short path: pytest's own can approach a Unix socket's 107 bytes."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="la-sock-")
    yield folder
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    os.rmdir(folder)


def test_only_unix_colon_names_a_socket(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert socket_path("127.0.0.1") is None and socket_path("::1") is None and socket_path("unixhost") is None
    assert socket_path("unix:/run/a.sock") == "/run/a.sock"
    assert socket_path("unix:rel/a.sock") == str(tmp_path / "rel/a.sock")  # absolute, from where serve runs
    assert socket_path("unix:") == "" and socket_path("unix:  ") == ""


def test_a_socket_path_under_the_home_folder_may_start_with_a_tilde(monkeypatch, tmp_path):
    """The shell leaves ``unix:~/...`` as it is (a tilde expands at a word's start only): the
    socket went to a folder named "~" under the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert socket_path("unix:~/run/a.sock") == str(tmp_path / "home/run/a.sock")


def test_what_stops_a_socket_is_said(short_dir):
    assert socket_problem(os.path.join(short_dir, "ok.sock")) is None
    assert "needs the socket's path after 'unix:'" in socket_problem("")
    long = os.path.join(short_dir, "s" * MAX_PATH_BYTES)
    assert f"at most {MAX_PATH_BYTES}" in socket_problem(long)
    assert socket_problem(os.path.join(short_dir, "nope", "a.sock")).endswith(f"{short_dir}/nope does not exist")
    a_file = os.path.join(short_dir, "file")
    open(a_file, "w").close()
    assert "exists and is not a socket" in socket_problem(a_file)
    live = os.path.join(short_dir, "live.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(live)
    listener.listen(1)
    try:
        assert "another server listens on it" in socket_problem(live)
    finally:
        listener.close()
    # closed without removing its file, as a killed server leaves it: nothing listens, gunicorn replaces it
    assert os.path.exists(live) and socket_problem(live) is None


def test_the_longest_path_a_socket_may_have_is_accepted_and_binds(short_dir: str) -> None:
    """A path of exactly MAX_PATH_BYTES bytes is no problem, and the system binds a socket
    there; one byte more is refused."""
    longest = os.path.join(short_dir, "s" * (MAX_PATH_BYTES - len(short_dir) - 1))
    assert len(os.fsencode(longest)) == MAX_PATH_BYTES
    assert socket_problem(longest) is None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(longest)
    finally:
        listener.close()
    assert f"the path is {MAX_PATH_BYTES + 1} bytes long" in socket_problem(longest + "s")


def test_a_socket_removed_as_it_is_probed_is_no_problem(short_dir: str) -> None:
    """A stale socket that goes (its server's cleanup, another start replacing it) between the
    look at the path and the probe of who listens: nothing listens, so nothing stops a start."""
    from legacy_assistant.serving.unix_socket import _listener_problem

    gone = os.path.join(short_dir, "gone.sock")
    assert _listener_problem(gone, f"unix:{gone}") is None


def test_a_stale_socket_of_another_user_in_a_sticky_folder_is_said(monkeypatch, short_dir):
    """A killed server of another user (of the group the socket's mode lets connect) left its
    socket in a sticky folder such as /tmp: gunicorn could not remove it, tried five times and
    stopped with "Can't connect to PATH"."""
    from legacy_assistant.serving import unix_socket

    stale = os.path.join(short_dir, "stale.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(stale)
    listener.close()  # its file stays, nothing listens
    owner = os.stat(stale).st_uid
    monkeypatch.setattr(unix_socket.os, "geteuid", lambda: owner + 1)  # as a user who neither owns it nor the folder
    assert socket_problem(stale) is None  # not sticky: whoever may write in the folder may replace it
    os.chmod(short_dir, 0o1777)
    assert socket_problem(stale) == (
        f"unix:{stale}: a socket another user's server left (uid {owner}) is there, and this user may not remove it "
        f"in {short_dir} (a sticky folder); its owner can remove it, or choose another path"
    )
    monkeypatch.setattr(unix_socket.os, "geteuid", lambda: owner)
    assert socket_problem(stale) is None  # its owner's own: replaced


def test_a_server_too_busy_to_accept_still_counts_as_listening(short_dir):
    busy = os.path.join(short_dir, "busy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(busy)
    listener.listen(0)
    waiting = []
    try:
        while True:  # fill its queue: the next connect fails with EAGAIN instead of waiting
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)
            waiting.append(client)
            try:
                client.connect(busy)
            except BlockingIOError:
                break
            assert len(waiting) < 100
        assert socket_problem(busy) == (
            f"unix:{busy}: another server listens on it, its queue full (stop it, or choose another path)"
        )
    finally:
        for client in waiting:
            client.close()
        listener.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may create files in any folder")
def test_a_folder_this_user_cannot_write_is_said(short_dir):
    os.chmod(short_dir, 0o500)
    try:
        assert "this user cannot create files in" in socket_problem(os.path.join(short_dir, "a.sock"))
    finally:
        os.chmod(short_dir, 0o700)


def run(*argv):
    from legacy_assistant.cli.serve import run as serve_run

    return serve_run(build_parser().parse_args(["serve", *argv]))


def test_the_cli_refuses_a_port_the_dev_server_and_a_bad_socket(monkeypatch, short_dir):
    monkeypatch.delenv("LEGACY_ASSISTANT_PORT", raising=False)
    where = f"unix:{short_dir}/a.sock"
    with pytest.raises(ConfigError, match=r"^--port is not used with a Unix socket \(--host unix:PATH\)"):
        run("--host", where, "--port", "5000", "--no-responder")
    monkeypatch.setenv("LEGACY_ASSISTANT_HOST", where)
    monkeypatch.setenv("LEGACY_ASSISTANT_PORT", "5000")
    with pytest.raises(ConfigError, match=r"^environment variable LEGACY_ASSISTANT_PORT is not used with a Unix "
                                          r"socket \(environment variable LEGACY_ASSISTANT_HOST unix:PATH\)"):
        run("--no-responder")
    monkeypatch.delenv("LEGACY_ASSISTANT_HOST")
    monkeypatch.delenv("LEGACY_ASSISTANT_PORT")
    with pytest.raises(ConfigError, match="the development server .--dev. listens on TCP only"):
        run("--host", where, "--dev", "--no-responder")
    with pytest.raises(ConfigError, match="does not exist"):
        run("--host", f"unix:{short_dir}/missing/a.sock", "--no-responder")


def test_the_allowed_hosts_default_to_any_on_a_socket():
    from legacy_assistant.cli.serve import serving_values

    from legacy_assistant.serving.settings import app_config, check_config

    values = serving_values(build_parser().parse_args(["serve", "--host", "unix:/run/a.sock"]))
    assert values["ALLOWED_HOSTS"] == "*"
    assert check_config(app_config(values))["ALLOWED_HOSTS"] == "*"  # what each worker's create_app takes


def start(path, log):
    command = [sys.executable, "-m", "legacy_assistant", "serve", "--host", f"unix:{path}", "--workers", "1",
               "--store", "memory", "--no-responder"]
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_health(path, process, log_path, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{open(log_path).read()}")
        try:
            if call(path, "GET", "/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no answer on {path}:\n{open(log_path).read()}")


def test_a_server_on_a_unix_socket(short_dir, tmp_path):
    path = os.path.join(short_dir, "http.sock")
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        first = start(path, log)
        try:
            wait_health(path, first, log_path)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660  # owner and group only
            # behind a proxy the Host header is the site's name: not refused, as on a loopback port
            status, answer = call(path, "POST", "/api/v1/chat", {"sender": "u", "message": "when do you open?"},
                                  host="chat.example")
            assert status == 200 and answer["intent"] == "opening_hours"
            assert call(path, "GET", "/ready")[0] == 200
            second = subprocess.run(
                [sys.executable, "-m", "legacy_assistant", "serve", "--host", f"unix:{path}", "--no-responder"],
                cwd=ROOT, capture_output=True, text=True, timeout=60,
            )
            assert second.returncode != 0
            assert second.stderr.strip().splitlines() == [
                f"error: unix:{path}: another server listens on it (stop it, or choose another path)"
            ]
            assert call(path, "GET", "/health")[0] == 200  # the first server's socket is still its own
            # gunicorn's upgrade in place: the new master takes the old one's socket, not refused
            os.kill(first.pid, signal.SIGUSR2)
            wait_until = time.monotonic() + 90
            while log_path.read_text().count("Booting worker") < 2 or "serving model" not in log_path.read_text().split(
                "Handling signal: usr2"
            )[-1]:
                assert time.monotonic() < wait_until, log_path.read_text()
                time.sleep(0.2)
            assert "another server listens" not in log_path.read_text()
            assert call(path, "GET", "/health")[0] == 200
            os.killpg(first.pid, signal.SIGKILL)  # both masters and their workers; leaves the socket file behind
            first.wait(30)
            assert stat.S_ISSOCK(os.stat(path).st_mode)
            again = start(path, log)
            try:
                wait_health(path, again, log_path)
            finally:
                again.send_signal(signal.SIGTERM)
                assert again.wait(60) == 0
            assert not os.path.exists(path)  # a clean stop removes the socket
        finally:
            if first.poll() is None:
                os.killpg(first.pid, signal.SIGKILL)
                first.wait(30)
    text = log_path.read_text()
    assert f"on unix:{path} with 1 worker(s)" in text and f"Listening at: unix:{path}" in text
