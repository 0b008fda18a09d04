"""Training time, one-sentence latency, and the serving process's memory for a model.

Training uses the recipe stored in the model's manifest. Prints figures with baselines measured
in the same run:
* latency of featurizing alone and of a numpy forward pass with the served model's own weights
  and featurizer, next to the full ``Predictor.rank_one`` (so the cost of the TensorFlow session
  call shows as a ratio); ``--data`` is what the training time is measured on;
* RSS of a bare Python process that imports the same libraries, next to the dev server's RSS
  after it has loaded the model (alone: ``--no-responder``) and answered requests.

    python benchmarks/predictor.py [--data data/intents.json] [--model exported/default] [--calls 1000]
        [--port PORT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import median_us, open_local, port_number, positive_int, run_main, server_ports, stop_process  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serving_memory(model: str, requests: int, port: int | None = None) -> tuple[float, float]:
    """(baseline RSS of python importing flask+TF, dev server RSS after load and requests) in MiB;
    the dev server listens on 127.0.0.1:``port`` (checked free first), or a free port."""
    baseline = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import compat.runtime, flask, nltk, numpy, time; print('ready', flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert baseline.stdout is not None
        baseline.stdout.readline()
        base_rss = rss_mib(baseline.pid)
    finally:  # also on Ctrl-C or SIGTERM while it imports: it would sleep on for a minute
        baseline.kill()
        baseline.wait()
    port = server_ports(1, port)[0]
    # a memory store: nothing written into the checkout, no history carried from run to run; the
    # classifier alone, as the figure is the model's (the responder has its own benchmark)
    command = ["serve", "--dev", "--model", model, "--no-responder", "--port", str(port), "--store", "memory"]
    with tempfile.NamedTemporaryFile(prefix="predictor-bench-", suffix=".log", delete=False) as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "legacy_assistant", "-q", *command],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    named = False  # the log is kept where the error names it, removed otherwise (Ctrl-C too)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(server, url, READY_TIMEOUT_SECONDS, log.name)
            body = json.dumps({"sender": "bench", "message": "what time do you open?"}).encode()
            for _ in range(requests):
                request = urllib.request.Request(url + "/api/v1/chat", body, {"Content-Type": "application/json"})
                open_local(request, timeout=5).read()
        except SystemExit:  # wait_for_health's, which names the log
            named = True
            raise
        except OSError as exc:  # a request that failed: the server's log says why
            named = True
            raise SystemExit(f"a request to the dev server failed ({exc}); see {log.name}") from None
        server_rss = rss_mib(server.pid)
    finally:
        stop_process(server)
        if not named:
            os.unlink(log.name)
    return base_rss, server_rss


def numpy_forward_of(predictor: Any, sentence: str) -> Callable[[], np.ndarray]:
    """The numpy baseline: a call that featurizes ``sentence`` densely with the served model's
    featurizer and runs the served model's own weights (read from its session) through numpy,
    giving the probabilities ``predictor`` gives. It was a model trained here on ``--data``: of
    another shape than the served model's whenever that was not the model's own data."""
    classifier = predictor._classifier
    names = sorted(name for name in classifier.variable_shapes or {} if name.startswith("classifier/"))
    weights = dict(zip(names, classifier.graph_session.run([f"{name}:0" for name in names])))
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    while f"classifier/hidden_{len(layers)}/kernel" in weights:
        layers.append(
            (weights[f"classifier/hidden_{len(layers)}/kernel"], weights[f"classifier/hidden_{len(layers)}/bias"])
        )
    out_kernel, out_bias = weights["classifier/output/kernel"], weights["classifier/output/bias"]
    shortcut = weights.get("classifier/shortcut/kernel")  # [n_features, n_classes] when the recipe has one
    featurizer = predictor.info.featurizer

    def numpy_forward() -> np.ndarray:
        x = h = featurizer.transform([sentence])
        for kernel, bias in layers:
            h = np.maximum(h @ kernel + bias, 0)
        logits = h @ out_kernel + out_bias
        if shortcut is not None:
            logits = logits + x @ shortcut
        e = np.exp(logits - logits.max())
        return e / e.sum()

    return numpy_forward


# A loaded machine took nearly a minute to start the dev server.
READY_TIMEOUT_SECONDS = 300


def wait_for_health(server: subprocess.Popen, url: str, timeout: float, log: str) -> None:
    """Return once ``url``'s ``/health`` answers; ``SystemExit`` naming ``log`` if ``server``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the dev server exited with status {server.returncode} before answering; see {log}")
        try:
            open_local(url + "/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the dev server did not answer /health within {timeout:g} s; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--data", default=str(ROOT / "data" / "intents.json"))
    parser.add_argument("--model", default=str(ROOT / "exported" / "default"))
    parser.add_argument("--calls", type=positive_int, default=1000)
    parser.add_argument(
        "--port", type=port_number, help="the dev server's port on 127.0.0.1 (default: a free one the system picks)"
    )
    args = parser.parse_args()
    if args.port is not None:
        server_ports(1, args.port)  # a port already taken is said now, not after the measuring
    # the dev server runs in the checkout: a relative path is the caller's, resolved here
    args.model = str(Path(args.model).resolve())

    from legacy_assistant.classifier.config import TrainingConfig
    from legacy_assistant.classifier.intents import load_intents
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.classifier.training import train
    from legacy_assistant.cli.serve import DEFAULT_INTER_OP, DEFAULT_INTRA_OP

    texts, tags = load_intents(args.data).examples()
    predictor = Predictor.load(args.model, DEFAULT_INTRA_OP, DEFAULT_INTER_OP)  # as `serve` runs it
    config = TrainingConfig.from_dict(predictor.manifest["training"])  # the served model's recipe
    start = time.perf_counter()
    trained = train(texts, tags, config)
    train_seconds = time.perf_counter() - start

    sentence = "hi, what time do you open on sundays?"
    numpy_forward = numpy_forward_of(predictor, sentence)

    featurize = median_us(lambda: predictor.features([sentence]), args.calls)
    numpy_us = median_us(numpy_forward, args.calls)
    full = median_us(lambda: predictor.rank_one(sentence), args.calls)
    base_rss, server_rss = serving_memory(args.model, 200, args.port)

    print(
        f"training {Path(args.data).name}: {len(texts)} patterns, {trained.summary['epochs_run']} epochs, "
        f"{train_seconds:.2f} s"
    )
    print(f"latency, one sentence, median of {args.calls} calls:")
    print(f"  featurize only            {featurize:8.1f} us")
    print(f"  numpy forward (baseline)  {numpy_us:8.1f} us")
    print(f"  Predictor.rank_one        {full:8.1f} us   ({full / numpy_us:.2f}x the numpy baseline)")
    print("memory (RSS):")
    print(f"  python + flask + TF import (baseline)   {base_rss:7.1f} MiB")
    print(
        f"  dev server, intent model loaded (no responder), 200 requests  {server_rss:7.1f} MiB   "
        f"(+{server_rss - base_rss:.1f} MiB)"
    )
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")


if __name__ == "__main__":
    run_main(main)
