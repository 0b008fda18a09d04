"""Latency of the two runtimes on the same model, same machine, same run: compat (TF1 graph,
the compiled call ``GraphSession.fixed_run`` that serving uses) against tf2 (eager call of a
restored ``tf.function``).

Migrates the model to a temporary TF2 copy, then measures each runtime in a process of its own
(a process can host only one): the median of ``--calls`` one-sentence calls of
``Predictor.rank_one`` (featurize + network + ranking) and of the network call alone, and the
model's load (which imports TensorFlow: a process imports it with its first model).

    python benchmarks/runtimes.py [--model exported/default] [--calls 1000]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from timing import median_us, positive_int, run_main  # noqa: E402

SENTENCE = "hi, what time do you open on sundays?"


def worker(runtime: str, model: str, calls: int) -> None:
    from compat.selection import select

    select(runtime)
    started = time.perf_counter()
    from legacy_assistant.classifier.predictor import Predictor

    predictor = Predictor.load(model)
    load_seconds = time.perf_counter() - started
    features = predictor.features([SENTENCE])
    classifier = predictor._classifier
    network = median_us(lambda: classifier.predict_proba(features.ids, features.weights), calls)
    full = median_us(lambda: predictor.rank_one(SENTENCE), calls)
    # the version this process ran, from the runtime's own module (only compat/ imports TensorFlow)
    runtime_module = importlib.import_module("compat.tf2.runtime" if runtime == "tf2" else "compat.runtime")
    print(
        json.dumps(
            {
                "runtime": runtime,
                "rank_one_us": full,
                "network_us": network,
                "load_s": load_seconds,
                "tensorflow": runtime_module.versions()["tensorflow"],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", default=str(ROOT / "exported" / "default"))
    parser.add_argument("--calls", type=positive_int, default=1000)
    parser.add_argument("--worker", choices=("compat", "tf2"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.calls)
        return

    # the children run in the checkout: a relative path is the caller's, resolved here
    model = str(Path(args.model).resolve())
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        tf2_model = str(Path(tmp) / "tf2")
        subprocess.run(
            [sys.executable, "-m", "legacy_assistant", "-q", "migrate", model, "--out", tf2_model],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results = {}
        for runtime, runtime_model in (("compat", model), ("tf2", tf2_model)):
            out = subprocess.run(
                [sys.executable, __file__, "--worker", runtime, "--model", runtime_model, "--calls", str(args.calls)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            results[runtime] = json.loads(out.stdout.strip().splitlines()[-1])
    compat, tf2 = results["compat"], results["tf2"]
    print(f"one sentence ({SENTENCE!r}), median of {args.calls} calls, tensorflow {compat['tensorflow']}:")
    print("| runtime | Predictor.rank_one | network call only | model load |")
    print("| --- | --- | --- | --- |")
    for name in ("compat", "tf2"):
        r = results[name]
        print(f"| {name} | {r['rank_one_us']:.0f} µs | {r['network_us']:.0f} µs | {r['load_s']:.2f} s |")
    print(
        f"tf2 / compat: rank_one {tf2['rank_one_us'] / compat['rank_one_us']:.2f}x, "
        f"network call {tf2['network_us'] / compat['network_us']:.2f}x"
    )
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")


if __name__ == "__main__":
    run_main(main)
