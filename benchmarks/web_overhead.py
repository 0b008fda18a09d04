"""Per-request cost of the web layer, in process, without sockets or a load generator.

Calls the WSGI app directly with a prepared request and reports the median wall microseconds per
request, one thread calling back to back (its CPU time when nothing else runs on the core), for:
a Flask hello-world JSON route, our ``/api/v1/parse`` with the model replaced by
a stub (web layer only: hooks, validation, metrics, access log, JSON), the same with the access
log off, ``Predictor.rank_one`` alone, and two floors under any prediction: NLTK tokenizing
and a bare ``Session.run``, the latter also through the compiled call the models use.

With ``--tf-threads`` it instead measures the CPU time of one prediction for several TensorFlow
session thread settings (intra-op, inter-op; -1 runs ops in the calling thread), from one
request thread and from four at once, each in a fresh process.

    python benchmarks/web_overhead.py [--calls 5000] [--tf-threads]
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from timing import median_us, positive_int, run_main, threads_elapsed  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))

BODY = b'{"text": "hi, what time do you open on sundays?"}'


def environ(path: str) -> dict:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(BODY),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "REMOTE_ADDR": "127.0.0.1",
    }


def wsgi_call(app, path: str):
    def call():
        status = []
        body = b"".join(app(environ(path), lambda s, h, e=None: status.append(s)))
        assert status[0].startswith("200"), (status, body)

    return call


SENTENCE = "hi, what time do you open on sundays?"


def prediction_cpu_us(intra: int, inter: int, threads: int, calls: int) -> float:
    """CPU microseconds per ``rank_one`` with ``threads`` threads calling at once (best of 3)."""
    from legacy_assistant.classifier.predictor import Predictor

    predictor = Predictor.load(ROOT / "exported" / "default", intra, inter)
    for _ in range(300):
        predictor.rank_one(SENTENCE)

    best = float("inf")
    for _ in range(3):
        elapsed = threads_elapsed(lambda: predictor.rank_one(SENTENCE), threads, calls, time.process_time)
        best = min(best, elapsed / (calls * threads) * 1e6)
    return best


def tf_threads_table(calls: int, rounds: int = 4) -> None:
    """Settings measured in interleaved rounds (a busy machine shifts every figure of one round
    alike), median over the rounds."""
    settings = [(1, -1), (1, 1), (0, 0), (1, 0)]
    results: dict[tuple[int, int, int], list[float]] = {}
    for _ in range(rounds):
        for intra, inter in settings:
            for threads in (1, 4):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", f"{intra},{inter},{threads}", "--calls", str(calls)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                results.setdefault((intra, inter, threads), []).append(float(out.strip().splitlines()[-1]))
    print(f"CPU per prediction, median of {rounds} interleaved rounds")
    print("| intra-op, inter-op | 1 request thread | 4 request threads at once |")
    print("| --- | ---: | ---: |")
    for intra, inter in settings:
        one, four = (statistics.median(results[(intra, inter, t)]) for t in (1, 4))
        print(f"| {intra}, {inter} | {one:.0f} us | {four:.0f} us |")


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--calls",
        type=positive_int,
        default=5000,
        help="timed calls per row (default 5000; with --tf-threads at most 800 per thread, each setting)",
    )
    parser.add_argument("--tf-threads", action="store_true", help="compare TensorFlow thread settings")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        intra, inter, threads = (int(v) for v in args.one.split(","))
        print(prediction_cpu_us(intra, inter, threads, args.calls))
        return
    if args.tf_threads:
        tf_threads_table(min(args.calls, 800))
        return
    logging.basicConfig(stream=open("/dev/null", "w"), level=logging.INFO)

    from hello_app import app as hello

    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.cli.serve import DEFAULT_INTER_OP, DEFAULT_INTRA_OP
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    predictor = Predictor.load(ROOT / "exported" / "default", DEFAULT_INTRA_OP, DEFAULT_INTER_OP)  # as `serve` runs it
    prediction = predictor.predict([SENTENCE])[0]

    class StubPredictor:
        """The real predictor's identity, a fixed answer: isolates the web layer."""

        name, manifest, classes = predictor.name, predictor.manifest, predictor.classes

        def predict(self, texts):
            return [prediction for _ in texts]

        def close(self):
            pass

    policy = DialoguePolicy.from_manifest(predictor.manifest, seed=0)
    stub = cast(Predictor, StubPredictor())  # duck-typed: the assistant only predicts and closes
    stubbed = create_app({}, assistant=Assistant(stub, policy, MemoryStore()))
    quiet = create_app({"ACCESS_LOG": False}, assistant=Assistant(stub, policy, MemoryStore()))

    rows = [
        ("Flask hello-world JSON route", median_us(wsgi_call(hello, "/hello"), args.calls, warmup=200)),
        (
            "/api/v1/parse, model stubbed (web layer)",
            median_us(wsgi_call(stubbed, "/api/v1/parse"), args.calls, warmup=200),
        ),
        ("  same, access log off", median_us(wsgi_call(quiet, "/api/v1/parse"), args.calls, warmup=200)),
        ("Predictor.rank_one alone", median_us(lambda: predictor.rank_one(SENTENCE, top=10), args.calls, warmup=200)),
    ]
    rows += floor_rows(args.calls)
    for label, us in rows:
        print(f"{label:48} {us:8.1f} us")


def floor_rows(calls: int) -> list[tuple[str, float]]:
    """Two costs no model can avoid here: tokenizing the sentence (and, beside it, NLTK's
    Treebank tokenizer, which a sentence that is not plain goes through), and a minimal
    ``Session.run`` (an identity op on one fed ``[1, 4]`` array) with serving's
    thread settings; beside it the same call through a :class:`compat.graph_session.FixedRun`
    (``Session::MakeCallable``), the way the models are called."""
    import numpy as np
    from nltk.tokenize import NLTKWordTokenizer

    from compat.graph_session import GraphSession, session_config
    from compat.runtime import tf
    from legacy_assistant.classifier.presets import preset
    from legacy_assistant.cli.serve import DEFAULT_INTER_OP, DEFAULT_INTRA_OP
    from legacy_assistant.text.processing import TextProcessor

    processor = TextProcessor(preset("ngrams").features.text)
    gs = GraphSession(session_config(DEFAULT_INTRA_OP, DEFAULT_INTER_OP))
    with gs.bound():
        fed = tf.placeholder(tf.float32, [None, 4])
        echoed = tf.identity(fed)
    compiled = gs.fixed_run([echoed], [fed])
    gs.finalize()
    array = np.ones((1, 4), np.float32)
    treebank = NLTKWordTokenizer()
    return [
        # a plain sentence, as SENTENCE is, takes the closed form of Treebank's rules (see
        # legacy_assistant/text/plain_words.py): NLTK's own tokenizer is timed beside it
        (
            "tokenizing alone (as the models do, no stemmer)",
            median_us(lambda: processor.tokens(SENTENCE), calls, warmup=200),
        ),
        ("  NLTK's Treebank tokenizer on it", median_us(lambda: treebank.tokenize(SENTENCE), calls, warmup=200)),
        (
            "bare Session.run (identity of a fed array)",
            median_us(lambda: gs.run(echoed, {fed: array}), calls, warmup=200),
        ),
        ("  same through a FixedRun (MakeCallable)", median_us(lambda: compiled(array), calls, warmup=200)),
    ]


if __name__ == "__main__":
    run_main(main)
