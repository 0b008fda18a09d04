"""Serving throughput and latency: the dev server, gunicorn, and a hello-world ceiling.

Starts each server on this machine, drives it with ``wrk`` (closed loop: a fixed number of
connections, each sending its next request when the last answer arrives) at several
concurrencies on ``/api/v1/parse`` and ``/api/v1/chat``, and prints requests/s, p50/p90/p99
latency, errors (socket errors and non-2xx answers) and the RSS of every server process.

    apt-get install wrk                       # the load generator (Debian package)
    python benchmarks/serve.py [--duration 5] [--workers 2] [--threads 4] [--concurrency 1 8 16 32]

The load generator runs on the same cores as the server, so the figures are a floor for the
server alone. Targets (printed, not enforced) are checked at 16 connections.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

LUA = r"""
local body_template = os.getenv("BENCH_BODY")
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = string.gsub(body_template, "{n}", tostring(counter % 1000))
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT {\"requests\": %d, \"seconds\": %f, \"p50\": %f, \"p90\": %f, \"p99\": %f, "
    .. "\"errors\": %d, \"non2xx\": %d}\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
"""

BODIES = {
    "/api/v1/parse": '{"text": "hi, what time do you open on sundays?"}',
    "/api/v1/chat": '{"sender": "bench-{n}", "message": "hi, what time do you open on sundays?"}',
    "/hello": '{"text": "hi, what time do you open on sundays?"}',
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return sorted(found)


class Server:
    def __init__(
        self,
        name: str,
        command: list[str],
        port: int,
        log: Path,
        ready_path: str,
        workers: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name, self.port = name, port
        self.log = open(log, "wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{name} exited early; see {log}")
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{ready_path}",
                    BODIES["/hello"].encode(),
                    {"Content-Type": "application/json"},
                )
                urllib.request.urlopen(request, timeout=2).read()
                if workers == 0 or len(children(self.process.pid)) >= workers:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        time.sleep(3 if workers else 0.5)  # let every worker finish loading its model

    def rss(self) -> list[tuple[str, float]]:
        pids = children(self.process.pid)
        if not pids:
            return [(f"process {self.process.pid}", rss_mib(self.process.pid))]
        return [(f"master {self.process.pid}", rss_mib(self.process.pid))] + [
            (f"worker {pid}", rss_mib(pid)) for pid in pids
        ]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def wrk(port: int, path: str, connections: int, seconds: float, script: Path) -> dict:
    threads = max(1, min(2, connections))
    run = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_BODY": BODIES[path]},
    )
    if run.returncode != 0:
        raise SystemExit(f"wrk failed ({run.returncode}): {run.stdout}{run.stderr}")
    out = run.stdout
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (default 5)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16, 32])
    parser.add_argument("--only", nargs="+", choices=["dev", "gunicorn", "hello"], default=["dev", "gunicorn", "hello"])
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    script = work / "post.lua"
    script.write_text(LUA)
    same = ["--workers", str(args.workers), "--threads", str(args.threads)]
    servers = {
        "dev": (
            ["-m", "legacy_assistant", "serve", "--dev", "--store", f"sqlite:///{work}/dev.db"],
            0,
            ["/api/v1/parse", "/api/v1/chat"],
        ),
        "gunicorn": (
            ["-m", "legacy_assistant", "serve", *same, "--store", f"sqlite:///{work}/gunicorn.db"],
            args.workers,
            ["/api/v1/parse", "/api/v1/chat"],
        ),
        "hello": (
            [
                "-m",
                "gunicorn",
                "-w",
                str(args.workers),
                "--threads",
                str(args.threads),
                "-k",
                "gthread",
                "--keep-alive",
                "5",
                "--reuse-port",
                "--worker-tmp-dir",
                "/dev/shm",
                "--chdir",
                str(ROOT / "benchmarks"),
                "hello_app:app",
            ],
            args.workers,
            ["/hello"],
        ),
    }
    rows, memory = [], []
    for name in args.only:
        command, workers, paths = servers[name]
        port = free_port()
        if name == "hello":
            command = command + ["-b", f"127.0.0.1:{port}"]
        else:
            command = command + ["--host", "127.0.0.1", "--port", str(port)]
        server = Server(name, [PYTHON, *command], port, work / f"{name}.log", paths[0], workers)
        try:
            for path in paths:
                wrk(port, path, 8, 1.0, script)  # warm-up
                for connections in args.concurrency:
                    result = wrk(port, path, connections, args.duration, script)
                    rows.append((name, path, connections, result))
                    print(
                        f"  {name:8} {path:16} c={connections:<3} {result['rps']:8.0f} req/s  "
                        f"p99 {result['p99']:6.2f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
            memory.append((name, server.rss()))
        finally:
            server.stop()

    print(
        f"\nmachine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; load generator (wrk) on the same "
        f"machine; gunicorn: {args.workers} workers x {args.threads} threads (gthread); {args.duration:g} s per row\n"
    )
    print("| server | route | connections | requests/s | p50 ms | p90 ms | p99 ms | errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, path, connections, r in rows:
        print(
            f"| {name} | {path} | {connections} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p90']:.2f} | "
            f"{r['p99']:.2f} | {r['errors'] + r['non2xx']} |"
        )
    print("\nmemory after the runs (RSS):")
    for name, processes in memory:
        print(f"  {name:8} " + ", ".join(f"{label} {mib:.0f} MiB" for label, mib in processes))

    lookup = {(n, p, c): r for n, p, c, r in rows}
    parse16, hello16 = lookup.get(("gunicorn", "/api/v1/parse", 16)), lookup.get(("hello", "/hello", 16))
    if parse16:
        print("\ntargets (gunicorn, /api/v1/parse, 16 connections):")
        print(f"  >= 1500 req/s: {parse16['rps']:.0f} -> {'met' if parse16['rps'] >= 1500 else 'NOT met'}")
        print(f"  p99 <= 30 ms: {parse16['p99']:.2f} -> {'met' if parse16['p99'] <= 30 else 'NOT met'}")
        errors = parse16["errors"] + parse16["non2xx"]
        print(f"  zero errors: {errors} -> {'met' if errors == 0 else 'NOT met'}")
        if hello16:
            share = parse16["rps"] / hello16["rps"]
            print(
                f"  >= 75% of hello world ({hello16['rps']:.0f} req/s): {share:.0%} -> "
                f"{'met' if share >= 0.75 else 'NOT met'}"
            )
    workers_rss = [
        mib
        for name, processes in memory
        if name == "gunicorn"
        for label, mib in processes
        if label.startswith("worker")
    ]
    if workers_rss:
        print(
            f"  each worker <= 600 MiB RSS: max {max(workers_rss):.0f} MiB -> "
            f"{'met' if max(workers_rss) <= 600 else 'NOT met'}"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
