"""How long a full garbage collection holds the GIL in a worker with both models loaded.

Loads the classifier and the responder as a server worker does, answers a few requests, then
times ``gc.collect()`` (every generation) several times: first as Python leaves the objects,
then after :func:`legacy_assistant.serving.heap.freeze_loaded`, which the gunicorn workers
call once the app is built. Every request thread of a worker waits while a collection runs.

    python benchmarks/gc_pause.py [--model DIR] [--responder DIR] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import positive_int, run_main  # noqa: E402


def full_collection_ms(rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", default=str(ROOT / "exported" / "default"))
    parser.add_argument("--responder", default=str(ROOT / "exported" / "responder"))
    parser.add_argument("--rounds", type=positive_int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from legacy_assistant.serving import heap
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.settings import DEFAULT_INTER_OP_THREADS, DEFAULT_INTRA_OP_THREADS

    assistant = Assistant.load(
        args.model,
        responder_dir=args.responder,
        intra_op_threads=DEFAULT_INTRA_OP_THREADS,
        inter_op_threads=DEFAULT_INTER_OP_THREADS,
    )
    for text in ("hello", "what can you do", "tell me something about space"):
        assistant.chat("bench", text)
    tracked = len(gc.get_objects())
    before = full_collection_ms(args.rounds)
    frozen = heap.freeze_loaded()
    after = full_collection_ms(args.rounds)
    print(f"objects the collector tracks with both models loaded: {tracked:,}; frozen: {frozen:,}")
    print(
        f"full collection, median of {args.rounds}: {statistics.median(before):.1f} ms as loaded, "
        f"{statistics.median(after) * 1000:.0f} us frozen"
    )
    assistant.close()


if __name__ == "__main__":
    run_main(main)
