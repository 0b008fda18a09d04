"""Run the CLI or a snippet in a fresh Python process: the test process is on the TF1 runtime,
and the TF2 runtime needs a process of its own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_python(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("LEGACY_ASSISTANT_RUNTIME", None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run_python(["-m", "legacy_assistant", "-q", *args], timeout=timeout)


def run_snippet(code: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return run_python(["-c", code], timeout=timeout)


def json_out(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


# Prefix for a snippet: ``in_child(call, seconds)`` runs ``call()`` in a forked child and gives
# back "ok", the exception as "Type: message", or "hung" when SIGALRM ended the child first.
FORK_PROBE = r'''
import os, signal


def in_child(call, seconds=20):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        signal.alarm(seconds)
        try:
            call()
            out = "ok"
        except Exception as exc:
            out = f"{type(exc).__name__}: {exc}"
        os.write(write, out.encode()[:4096])
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    out = os.read(read, 8192).decode()
    os.close(read)
    if out:
        return out
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
        return "hung"
    return f"child ended with status {status} and no answer"
'''
