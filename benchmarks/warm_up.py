"""What the first requests cost a freshly loaded worker, with and without the warm-up.

Each round starts two fresh processes (TensorFlow's first-run costs are per session, but some
of its caches are per process), one after the other in alternating order: one without the
warm-up (``cold``), one with it (``warmed``).

* In process (default): each loads both models as a server worker does (one intra-op thread,
  ops in the calling thread, the serving repetition penalty); ``warmed`` runs
  :meth:`legacy_assistant.serving.assistant.Assistant.warm_up` (timed). Then the first parse
  and the first reply in each decoding mode are timed, then a second call of each.
* ``--http``: ``legacy-assistant serve`` for real (one worker, ``LEGACY_ASSISTANT_WARM_UP``
  off or on); once ``/ready`` answers, the first and second ``/api/v1/parse``, cakechat route
  (greedy) and ``/api/v1/chat`` answered by the responder (the server's default
  ``sample_rerank``) are timed from the client.

Prints the medians over the rounds: the first call with and without the warm-up, and the
later calls; in process, also what the warm-up adds to a worker's start.

    python benchmarks/warm_up.py [--model DIR] [--responder DIR] [--rounds 5] [--http [--port PORT]]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import port_number, positive_int, run_main, server_ports  # noqa: E402

# Other words than the warm-up's, as a first visitor would send.
TEXT = "is the shop open on sunday?"
CONTEXT = ["hi, how are you?", "great, I just watched a football game"]


def one_process(model: str, responder: str, warm: bool) -> dict[str, float]:
    """Milliseconds: ``warm_up`` (when warmed), then ``first <kind>`` and ``later <kind>``."""
    import logging

    logging.disable(logging.INFO)
    from legacy_assistant.responder.modes import MODES
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.settings import DEFAULT_INTER_OP_THREADS, DEFAULT_INTRA_OP_THREADS

    assistant = Assistant.load(
        model,
        responder_dir=responder,
        intra_op_threads=DEFAULT_INTRA_OP_THREADS,
        inter_op_threads=DEFAULT_INTER_OP_THREADS,
        seed=0,
    )
    figures: dict[str, float] = {}
    if warm:
        started = time.perf_counter()
        assistant.warm_up()
        figures["warm_up"] = (time.perf_counter() - started) * 1000
    generator = assistant.responder
    assert generator is not None

    def reply(mode: str) -> Callable[[], object]:
        return lambda: generator.respond(CONTEXT, "joy", mode, 1 if mode.startswith("sample") else None)

    calls: dict[str, Callable[[], object]] = {"parse": lambda: assistant.parse(TEXT)}
    calls.update((mode, reply(mode)) for mode in MODES)
    for when in ("first", "later"):
        for kind, call in calls.items():
            started = time.perf_counter()
            call()
            figures[f"{when} {kind}"] = (time.perf_counter() - started) * 1000
    assistant.close()
    return figures


def first_requests_over_http(
    model: str, responder: str, warm: bool, log: Path, port: int | None = None
) -> dict[str, float]:
    """Milliseconds, from the client: ``first <kind>`` and ``later <kind>`` of a fresh server
    (started, waited for and stopped as ``benchmarks/serve.py`` does) on 127.0.0.1:``port``
    (checked free first), or on a free port."""
    from serve import post, serving  # beside this script, on sys.path when it runs

    port = server_ports(1, port)[0]
    command = [sys.executable, "-m", "legacy_assistant", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1", "--model", model, "--responder", responder, "--store", "memory"]
    chat_message = "my cat sleeps on the piano"  # small talk no intent takes: the responder answers
    requests: dict[str, tuple[str, dict[str, object]]] = {
        "parse": ("/api/v1/parse", {"text": TEXT}),
        "cakechat greedy": (
            "/cakechat_api/v1/actions/get_response",
            {"context": CONTEXT, "emotion": "joy", "mode": "greedy"},
        ),
        "chat, generated": ("/api/v1/chat", {"sender": "first", "message": chat_message}),
    }
    env = {"LEGACY_ASSISTANT_WARM_UP": "on" if warm else "off"}
    with serving("warmed" if warm else "cold", command, port, log, env) as server:
        server.wait_ready(hello=False, workers=1)
        figures: dict[str, float] = {}
        for when in ("first", "later"):
            for kind, (path, body) in requests.items():
                started = time.perf_counter()
                status, answer = post(port, path, body)
                figures[f"{when} {kind}"] = (time.perf_counter() - started) * 1000
                if status != 200:
                    raise SystemExit(f"{path} answered {status}: {answer}")
                if kind == "chat, generated" and not answer.get("generated"):  # else it timed the intent model
                    raise SystemExit(f"{path} answered {chat_message!r} with an intent's reply, not a generated one")
        return figures


def main() -> None:
    from legacy_assistant.defaults import DEFAULT_MODEL_DIR, DEFAULT_RESPONDER_DIR

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--responder", default=str(DEFAULT_RESPONDER_DIR))
    parser.add_argument("--rounds", type=positive_int, default=5)
    parser.add_argument("--http", action="store_true", help="time the first requests to a real server")
    parser.add_argument(
        "--port",
        type=port_number,
        help="with --http: the servers' port on 127.0.0.1, one server at a time (default: a free one each)",
    )
    parser.add_argument("--child", choices=["cold", "warmed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.port is not None and not args.http:
        parser.error("--port is the port of the servers that --http starts; without --http nothing listens")
    if args.child:
        print(json.dumps(one_process(args.model, args.responder, args.child == "warmed")))
        return

    # the server starts in the checkout (`serve.serving`): a relative path is the caller's
    args.model, args.responder = str(Path(args.model).resolve()), str(Path(args.responder).resolve())
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warmed": []}
    # the servers' logs, in a folder of this run's own (two runs at once wrote one file); a server
    # that fails has the end of its log quoted in the error, so the folder goes whatever happens
    logs = Path(tempfile.mkdtemp(prefix="warm-up-")) if args.http else None
    try:
        for round_number in range(args.rounds):
            order = ("cold", "warmed") if round_number % 2 == 0 else ("warmed", "cold")
            for kind in order:
                if args.http:
                    assert logs is not None
                    log = logs / f"{kind}.log"
                    runs[kind].append(
                        first_requests_over_http(args.model, args.responder, kind == "warmed", log, args.port)
                    )
                    continue
                command = [sys.executable, __file__, "--model", args.model, "--responder", args.responder]
                command += ["--child", kind]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                runs[kind].append(json.loads(output.strip().splitlines()[-1]))
    finally:
        if logs is not None:
            shutil.rmtree(logs, ignore_errors=True)

    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    kinds = [key.split(" ", 1)[1] for key in runs["cold"][0] if key.startswith("first ")]
    print(f"median of {args.rounds} fresh processes each; milliseconds")
    print("| call | first, no warm-up | first, after warm-up | later calls | first / later, no warm-up | with |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        cold, warmed = median("cold", f"first {kind}"), median("warmed", f"first {kind}")
        later = statistics.median([run[f"later {kind}"] for run in runs["cold"] + runs["warmed"]])
        print(f"| {kind} | {cold:.1f} | {warmed:.1f} | {later:.1f} | {cold / later:.1f}x | {warmed / later:.1f}x |")
    if args.http:
        print("(through 'legacy-assistant serve', one worker, timed from the client after /ready)")
        return
    print(f"warm-up at load: {median('warmed', 'warm_up'):.0f} ms")
    print("(sample_rerank makes the same graph call as sample, which has just run before it: its first call is warm)")


if __name__ == "__main__":
    run_main(main)
