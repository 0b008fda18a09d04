"""Request batching: throughput of N threads calling a model at once, unbatched against batched.

Each thread calls the model for one request at a time, back to back (no other work between
calls, the hardest case for a batch's wait); every figure is requests per second over all
threads, and each batched row's ratio is against the unbatched row measured in the same run
with the same threads, the rows taking turns (in reverse order every other round). Rows:

* 1 thread: a lone caller, unbatched and batched (what batching costs a request that meets no
  other: the batcher runs it at once instead of waiting ``max_wait``);
* N threads: unbatched (``Session.run`` from N threads at once), then batched with each
  ``max_wait`` given (``--waits-ms``), with the mean batch size.

The classifier ranks the patterns of data/intents.json; the responder answers the contexts of
data/responder_contexts.json (greedy) under each of its conditions.

    python benchmarks/batching.py [--threads 16] [--waits-ms 0,0.5,2] [--max-batch-size 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from timing import median_us, once, positive_int, run_main, thread_pool_size  # noqa: E402


def throughput(call: Callable[[Any], object], inputs: Sequence[Any], threads: int, calls: int) -> float:
    """Requests per second while ``threads`` threads each make ``calls`` calls back to back,
    thread ``t`` starting at input ``t`` so that concurrent requests differ."""
    barrier = threading.Barrier(threads + 1)

    def work(offset: int) -> None:
        mine = itertools.islice(itertools.cycle(inputs), offset, None)
        barrier.wait()
        for _ in range(calls):
            call(next(mine))

    pool = [threading.Thread(target=work, args=(index * 7,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return threads * calls / (time.perf_counter() - start)


def compare(
    title: str,
    unbatched: Callable[[Any], object],
    batched: Callable[[float], tuple[Callable[[Any], object], list[int], Callable[[], None]]],
    inputs: Sequence[Any],
    threads: int,
    calls: int,
    waits_ms: Sequence[float],
    rounds: int,
) -> None:
    """Print one model's rows. ``batched(max_wait_s)`` gives (call, batch sizes seen, close).

    Every row is measured once per round, the rows in reverse order every other round (so that
    neither the unbatched rows nor the batched ones always run first, on a machine the others
    have not yet warmed); a ratio is taken against the unbatched row of the same round and thread
    count, and the median over the rounds is printed with its range (the machine's other load
    moves single figures)."""
    rows: list[tuple[str, int, float | None]] = [("1 thread, unbatched", 1, None)]
    if threads == 1:  # the lone caller's rows are the N-thread ones: measured once, not twice
        rows += [(f"1 thread, batched (wait {wait:g} ms)", 1, wait / 1000) for wait in waits_ms]
    else:
        rows.append((f"1 thread, batched (wait {max(waits_ms):g} ms)", 1, max(waits_ms) / 1000))
        rows.append((f"{threads} threads, unbatched", threads, None))
        rows += [(f"{threads} threads, batched (wait {wait:g} ms)", threads, wait / 1000) for wait in waits_ms]
    unbatched_row = {n_threads: index for index, (_, n_threads, wait_s) in enumerate(rows) if wait_s is None}
    for item in inputs[:20]:  # warm-up: first calls allocate
        unbatched(item)
    for _, n_threads, wait_s in rows:  # and the batched rows' first batches of each size, too
        if wait_s is not None:
            call, _seen, close = batched(wait_s)
            throughput(call, inputs, n_threads, max(1, 20 // n_threads))
            close()
    rates: list[list[float]] = [[] for _ in rows]
    sizes: list[list[int]] = [[] for _ in rows]
    for round_number in range(rounds):
        order = list(enumerate(rows))
        for index, (_, n_threads, wait_s) in order if round_number % 2 == 0 else order[::-1]:
            if wait_s is None:
                rates[index].append(throughput(unbatched, inputs, n_threads, max(1, calls // n_threads)))
                continue
            call, seen, close = batched(wait_s)
            rates[index].append(throughput(call, inputs, n_threads, max(1, calls // n_threads)))
            close()
            sizes[index] += seen
    print(f"\n{title}, median of {rounds} rounds")
    print(f"  {'':34} {'req/s':>9} {'ratio':>7} {'(range)':>13} {'mean batch':>11}")
    for index, (label, n_threads, wait_s) in enumerate(rows):
        base = rates[unbatched_row[n_threads]]
        ratios = [rate / baseline for rate, baseline in zip(rates[index], base)]
        spread = f"({min(ratios):.2f}-{max(ratios):.2f})" if wait_s is not None else ""
        mean = f"{statistics.fmean(sizes[index]):11.2f}" if sizes[index] else ""
        rate, ratio = statistics.median(rates[index]), statistics.median(ratios)
        print(f"  {label:34} {rate:9.1f} {ratio:7.2f} {spread:>13} {mean}")


def _waits(text: str) -> list[float]:
    """argparse type of --waits-ms: finite numbers >= 0, comma-separated."""
    try:
        waits = [float(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers >= 0 separated by commas, got {text!r}") from None
    if not all(math.isfinite(wait) and wait >= 0 for wait in waits):
        raise argparse.ArgumentTypeError(f"expected numbers >= 0 separated by commas, got {text!r}")
    return waits


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, each ``--waits-ms`` value once: a wait given twice was measured twice
    and printed as two rows of one name; it is now measured once, with a note on stderr."""
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", default=str(ROOT / "exported" / "default"))
    parser.add_argument("--responder", default=str(ROOT / "exported" / "responder"))
    parser.add_argument("--threads", type=positive_int, default=16)
    parser.add_argument("--max-batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--waits-ms",
        default="0,0.5,2",
        type=_waits,
        help="max_wait values to try, in ms, comma-separated, one row each, each value once",
    )
    parser.add_argument(
        "--classifier-calls", type=positive_int, default=600, help="calls per row (all threads together)"
    )
    parser.add_argument(
        "--responder-calls", type=positive_int, default=128, help="calls per row (all threads together)"
    )
    parser.add_argument("--rounds", type=positive_int, default=3)
    parser.add_argument("--intra-op", type=thread_pool_size(0), default=1)
    parser.add_argument("--inter-op", type=thread_pool_size(-1), default=-1)
    args = parser.parse_args(argv)
    args.waits_ms = once("--waits-ms", args.waits_ms)
    return args


def main() -> None:
    args = parse_arguments()
    waits_ms = args.waits_ms

    logging.basicConfig(level=logging.WARNING)
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.batching import BatchedClassifier, BatchedResponder, MicroBatcher

    direct = median_us(lambda: [None], 20000, warmup=1000)
    noop: MicroBatcher[None, None] = MicroBatcher(lambda items: [None] * len(items), args.max_batch_size, 0.002)
    lone = median_us(lambda: noop.submit(None), 20000, warmup=1000)
    print(f"a lone request's cost in the batcher (no-op model, median): {lone - direct:.1f} us")
    predictor = Predictor.load(args.model, args.intra_op, args.inter_op)
    responder = Responder.load(args.responder, args.intra_op, args.inter_op)
    intents = json.loads((ROOT / "data" / "intents.json").read_text(encoding="utf-8"))["intents"]
    texts = [pattern for intent in intents for pattern in intent.get("patterns", [])]
    contexts = json.loads((ROOT / "data" / "responder_contexts.json").read_text(encoding="utf-8"))
    requests = [(context, condition) for condition in responder.conditions for context in contexts]
    print(
        f"threads {args.threads}, max_batch_size {args.max_batch_size}, TensorFlow threads "
        f"(intra {args.intra_op}, inter {args.inter_op}); {len(texts)} sentences, {len(requests)} contexts"
    )

    def batched_classifier(wait_s: float) -> tuple[Callable[[Any], object], list[int], Callable[[], None]]:
        sizes: list[int] = []
        model = BatchedClassifier(predictor, args.max_batch_size, wait_s, on_batch=sizes.append)
        return model.predict_one, sizes, model.close

    def batched_responder(wait_s: float) -> tuple[Callable[[Any], object], list[int], Callable[[], None]]:
        sizes: list[int] = []
        model = BatchedResponder(responder, args.max_batch_size, wait_s, on_batch=sizes.append)
        return (lambda request: model.respond(request[0], request[1], "greedy")), sizes, model.close

    compare(
        "classifier (Predictor.predict)",
        lambda text: predictor.predict([text])[0],
        batched_classifier,
        texts,
        args.threads,
        args.classifier_calls,
        waits_ms,
        args.rounds,
    )
    compare(
        "responder, greedy (Responder.respond_batch)",
        lambda request: responder.respond(request[0], request[1], "greedy"),
        batched_responder,
        requests,
        args.threads,
        args.responder_calls,
        waits_ms,
        args.rounds,
    )
    predictor.close()
    responder.close()


if __name__ == "__main__":
    run_main(main)
