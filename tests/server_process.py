"""Run ``legacy-assistant serve`` as a real subprocess for tests, and talk HTTP to it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """``with ServerProcess(["--workers", "2"], port=p, log=path) as server: ...``; its own
    process group, so :meth:`kill9` takes the master and every worker down at once."""

    def __init__(self, args, port, log_path, env=None, startup_timeout=90.0, wait=True, health_path="/health",
                 launcher=("-m", "legacy_assistant")):
        self.port = port
        self.health_path = health_path  # where the server answers /health (under a SCRIPT_NAME prefix)
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(log_path)
        # launcher: Python's arguments before the CLI's, e.g. ("-c", code running legacy_assistant.cli.main)
        command = [sys.executable, *launcher, "serve", "--host", "127.0.0.1", "--port", str(port), *args]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})}, start_new_session=True)
        if wait:  # else the test calls wait_ready itself, after doing something while the server starts
            self.wait_ready(startup_timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Until ``/health`` answers 200; raises with the log if the server exits or never answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                status, _ = self.request("GET", self.health_path, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def request(self, method, path, body=None, headers=None, timeout=30.0):
        """(status, parsed JSON or text) over a fresh connection."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw, kind = response.status, response.read(), response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
        text = raw.decode("utf-8")
        return status, json.loads(text) if kind == "application/json" else text

    def workers(self) -> list[int]:
        """Pids of the master's children."""
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                children.append(int(stat.parent.name))
        return sorted(children)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum) -> None:
        os.kill(self.pid, signum)

    def kill9(self) -> None:
        """SIGKILL to the master and all its workers at the same instant."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(10)
        try:
            os.killpg(self.pid, signal.SIGKILL)  # any worker left behind
        except ProcessLookupError:
            pass
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def model_info(metrics_text: str) -> dict[str, str]:
    """From /metrics: worker pid -> version of the model it serves now (value 1)."""
    serving = {}
    for line in metrics_text.splitlines():
        if line.startswith("legacy_assistant_model_info{") and line.rstrip().endswith(" 1.0"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.index("}")].split(","))
            serving[labels["pid"].strip('"')] = labels["version"].strip('"')
    return serving


def wait_for(predicate, timeout=60.0, every=0.2):
    """``predicate()``'s first truthy value within ``timeout`` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()
