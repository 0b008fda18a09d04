"""The responder's figures, each beside a baseline measured in the same run, and the targets
they are read against (printed, not asserted).

* training: time, steps and epochs from the model's manifest (or of a small model trained here
  with ``--train``);
* held-out perplexity against an add-k unigram and a Witten-Bell bigram fitted on the model's
  training corpora, on the same tokens (:mod:`legacy_assistant.responder.evaluation`);
* distinct-2 of greedy and sampled replies against the human replies of the same contexts (at
  the library's default decoding, and again with the server's repetition penalty), and
  how often a condition classifier hears joy and sadness when they are asked for against when
  neutral is;
* decode latency at batch 1 for replies of up to 30 tokens, p50/p95 per mode: the network call
  alone (one compiled run of the graph) and ``Responder.respond`` (tokenizing and detokenizing too),
  timed alternately on the same contexts;
* the same model decoded as cakechat did it, one ``Session.run`` per token
  (:class:`compat.responder.stepwise.StepwiseDecoder`, greedy), against the in-graph greedy
  decode on the same contexts: the ratio of their times, the replies checked equal; and the
  same loop with each step a compiled call (``compiled=True``, as Keras's TF1 backend ran every
  function), which is the loop without ``Session.run``'s per-call Python work.

    python benchmarks/responder.py [--model exported/responder] \\
        [--corpus ../shared/datasets/topical_chat/test_rare.json] [--dialogues 100] [--replies 100]
    python benchmarks/responder.py --train [--train-corpus FILE...] [--train-minutes 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import once, positive_float, positive_int, run_main, thread_pool_size  # noqa: E402

from legacy_assistant.classifier.config import MAX_SEED  # noqa: E402
from legacy_assistant.cli.arguments import condition_strength_number, whole_number  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
MAX_LENGTH = 30
# The figures the responder is built to reach (read, not asserted).
TARGETS = {
    "greedy_p50_ms": 10.0,
    "beam_p50_ms": 30.0,
    "in_graph_speedup": 5.0,
    "perplexity_over_bigram": 0.6,
    "distinct_2_over_human": 0.5,
    "condition_vs_neutral": 2.0,
}
# A small network for --train: minutes on a laptop, not a model to ship.
SMALL: dict[str, Any] = {
    "embedding_size": 64,
    "encoder_units": 64,
    "context_units": 128,
    "decoder_units": 128,
    "condition_size": 16,
    "vocab_size": 4000,
    "batch_size": 64,
    "epochs": 2,
    "held_out_fraction": 0.05,
}


def train_small(corpora: list[str], minutes: float, out: Path) -> Path:
    """Train and export a :data:`SMALL` responder on ``corpora`` within ``minutes``."""
    from legacy_assistant.responder.artifact import export_responder_artifact
    from legacy_assistant.responder.config import ResponderTrainingConfig
    from legacy_assistant.responder.corpora import read_corpora
    from legacy_assistant.responder.training import train_responder

    config = ResponderTrainingConfig(**SMALL, max_minutes=minutes)
    trained = train_responder(read_corpora(corpora, strict=False), config)
    export_responder_artifact(trained, out, plot=False, sources=corpora)
    return out


def baseline_corpora(manifest: dict[str, Any], train_corpus: list[str] | None, corpora: list[str]) -> list[Any]:
    """The files the perplexity baselines are fitted on: ``--train-corpus``, or the model's
    training files found near ``corpora``. As ``evaluate-responder`` does, stderr names those of
    the model's files not found (the baselines are then fitted on the rest, or not at all, and
    the perplexity row's baseline is not the one its label says) and evaluated ``corpora`` that
    are the model's training data (the held-out figures would measure memorisation)."""
    from legacy_assistant.responder.evaluation import corpus_role, find_training_corpora

    trained_on = corpus_role(manifest, corpora)["training"]
    if trained_on:
        print(
            f"warning: {', '.join(trained_on)} is the model's training data (same sha256): "
            "the figures measure memorisation, not held-out quality",
            file=sys.stderr,
            flush=True,
        )
    if train_corpus:
        return list(train_corpus)
    found, missing = find_training_corpora(manifest, corpora)
    if missing:
        print(
            f"warning: {len(missing)} of the model's training file(s) not found near the corpora "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
            + ("the baselines are fitted on the rest" if found else "none found, so no baselines")
            + " (pass --train-corpus)",
            file=sys.stderr,
            flush=True,
        )
    return list(found)


def paired_latency(
    responder: Any, batches: list[Any], contexts: list[tuple[list[str], str]], mode: str, seed: int
) -> tuple[dict[str, float], dict[str, float]]:
    """p50/p95 (ms) of the network call alone and of ``Responder.respond`` (tokenizing and
    detokenizing too) on the same contexts, the two timed alternately, one context at a time, the
    one timed first alternating from context to context, so that the machine's drift during the
    run, and what the first call leaves warm for the second, fall on both columns alike."""
    from legacy_assistant.responder.evaluation import percentiles_ms

    if responder.max_length != MAX_LENGTH:
        raise SystemExit(f"the model writes replies of up to {responder.max_length} tokens, not {MAX_LENGTH}")
    for batch, (context, condition) in list(zip(batches, contexts))[:3]:  # warm-up: first runs allocate
        responder.decode_batch(batch, mode, seed)
        responder.respond(context, condition, mode, seed=seed)
    network: list[float] = []
    whole: list[float] = []
    for number, (batch, (context, condition)) in enumerate(zip(batches, contexts)):
        calls = [
            (network, partial(responder.decode_batch, batch, mode, seed + number)),
            (whole, partial(responder.respond, context, condition, mode, seed=seed + number)),
        ]
        for times, call in calls if number % 2 == 0 else calls[::-1]:
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return percentiles_ms(network), percentiles_ms(whole)


def served_replies(model: str, data: Any, settings: Any, threads: int, strength: float) -> dict[str, Any]:
    """Reply figures (distinct-n, length) of greedy and sampled replies decoded as the server and
    ``chat`` decode them, with cakechat's repetition penalty, on the evaluation's contexts
    (``data``: its held-out pairs, encoded by the same model)."""
    from legacy_assistant.responder.evaluation import replies_section, sampled_rows
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY, condition_strength=strength)
    with Responder.load(model, threads, threads, options=options) as served:
        section, _ = replies_section(served, data, sampled_rows(data, settings), settings)
    return {**section["modes"], "penalty": SERVING_REPETITION_PENALTY}


def stepwise_comparison(responder: Any, batches: list[Any], threads: tuple[int, int]) -> dict[str, Any]:
    """In-graph greedy against the per-step loop on the same batch-1 contexts, the loop both with
    ``Session.run`` (as specified) and with compiled calls (as Keras's backend ran each step)."""
    from compat.responder.stepwise import StepwiseDecoder, read_saved_model_weights
    from legacy_assistant.responder.evaluation import percentiles_ms

    weights = read_saved_model_weights(str(responder.info.saved_model_dir), responder.spec)
    in_graph: list[float] = []
    stepwise: list[float] = []
    compiled: list[float] = []
    equal, lengths = 0, []
    with (
        StepwiseDecoder(responder.spec, weights, *threads) as loop,
        StepwiseDecoder(responder.spec, weights, *threads, compiled=True) as compiled_loop,
    ):
        for batch in batches[:3]:
            loop.greedy(batch.context_ids, batch.condition_ids, MAX_LENGTH)
            compiled_loop.greedy(batch.context_ids, batch.condition_ids, MAX_LENGTH)
            responder.model.decode(batch.context_ids, batch.condition_ids, mode="greedy", max_length=MAX_LENGTH)
        # the three take turns on each context, and which goes first turns too (in-graph first,
        # then the loop, then the compiled loop ...), so that a change of machine load, and what
        # one leaves warm for the next, fall on all three alike
        for number, batch in enumerate(batches):
            decoders = [
                partial(responder.model.decode, mode="greedy", max_length=MAX_LENGTH),
                partial(loop.greedy, max_length=MAX_LENGTH),
                partial(compiled_loop.greedy, max_length=MAX_LENGTH),
            ]
            replies: list[Any] = [None] * len(decoders)
            for which in [(number + turn) % len(decoders) for turn in range(len(decoders))]:
                started = time.perf_counter()
                replies[which] = decoders[which](batch.context_ids, batch.condition_ids)
                (in_graph, stepwise, compiled)[which].append(time.perf_counter() - started)
            a, b, c = replies
            equal += int(np.array_equal(a.ids, b.ids) and np.array_equal(a.ids, c.ids))
            lengths.append(int(a.lengths[0, 0]))
    graph_ms, loop_ms, compiled_ms = percentiles_ms(in_graph), percentiles_ms(stepwise), percentiles_ms(compiled)
    return {
        "in_graph": graph_ms,
        "stepwise": loop_ms,
        "stepwise_compiled": compiled_ms,
        "speedup_p50": loop_ms["p50_ms"] / graph_ms["p50_ms"],
        "speedup_total": sum(stepwise) / sum(in_graph),
        "compiled_speedup_p50": compiled_ms["p50_ms"] / graph_ms["p50_ms"],
        "equal": equal,
        "replies": len(batches),
        "mean_length": float(np.mean(lengths)),
    }


def _row(name: str, measured: str, target: str, met: bool | None) -> str:
    verdict = "n/a" if met is None else ("yes" if met else "NO")
    return f"| {name} | {measured} | {target} | {verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--model", default=str(ROOT / "exported" / "responder"))
    parser.add_argument("--corpus", nargs="+", default=[str(DATASETS / "topical_chat" / "test_rare.json")])
    parser.add_argument("--train-corpus", nargs="+", help="the model's training corpora (default: its manifest's)")
    parser.add_argument("--dialogues", type=positive_int, default=100, help="held-out dialogues scored (default 100)")
    parser.add_argument(
        "--samples", type=positive_int, default=100, help="contexts answered per condition (default 100)"
    )
    parser.add_argument(
        "--replies", type=positive_int, default=100, help="timed replies per mode at batch 1 (default 100)"
    )
    parser.add_argument("--classifier-steps", type=positive_int, default=1500)
    parser.add_argument(
        "--threads", type=thread_pool_size(0), default=0, help="intra- and inter-op threads (0: TensorFlow's choice)"
    )
    parser.add_argument(
        "--seed",
        # the evaluation's range, checked here rather than after --train's minutes of training
        type=whole_number(0, MAX_SEED),
        default=1,
        help="chooses dialogues and contexts, seeds sampling (default 1)",
    )
    parser.add_argument(
        "--condition-strength",
        # checked here: the responder refused a strength out of range only as it loaded, after
        # --train's minutes of training, in words of no option
        type=condition_strength_number,
        default=0.0,
        help="condition guidance of every decode measured, 0 to 10 (default 0: off)",
    )
    parser.add_argument("--train", action="store_true", help="train a small model here instead of --model")
    parser.add_argument("--train-minutes", type=positive_float, default=3.0, help="minutes of training (default 3)")
    args = parser.parse_args()
    args.corpus = once("--corpus", args.corpus)  # a file given twice was read, and scored, twice
    if args.train_corpus:
        args.train_corpus = once("--train-corpus", args.train_corpus)
    # --train's default corpus too: missing, it was a data-file error of exit status 1 naming no option
    trained_on = args.train_corpus or ([str(DATASETS / "topical_chat" / "valid_freq.json")] if args.train else [])
    missing = [path for path in dict.fromkeys([*args.corpus, *trained_on]) if not Path(path).exists()]
    if missing:  # before minutes of loading and evaluating, not after
        parser.error(f"not found: {', '.join(missing)} (pass --corpus / --train-corpus)")
    logging.basicConfig(level=logging.WARNING)

    from legacy_assistant.responder.batching import pad_batch
    from legacy_assistant.responder.corpora import read_corpora
    from legacy_assistant.responder.evaluation import (
        EvaluationSettings,
        evaluate_responder,
        held_out_data,
        read_training_corpora,
    )
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if args.train:
            corpora = trained_on
            started = time.perf_counter()
            model = str(train_small(corpora, args.train_minutes, Path(scratch) / "small"))
            print(f"trained a small responder in {time.perf_counter() - started:.0f} s (export included)")
        options = DecodingOptions(condition_strength=args.condition_strength)
        responder = Responder.load(model, args.threads, args.threads, options=options)
        if args.condition_strength:
            print(f"condition guidance: strength {args.condition_strength:g}")
        with responder:
            manifest = responder.info.manifest
            summary = manifest.get("summary", {})
            seconds = summary.get("seconds") or 0.0
            steps = summary.get("steps") or 0
            batch = manifest.get("training", {}).get("batch_size", 0)
            spec = responder.spec
            print(
                f"model {responder.info.name}: vocabulary {spec.vocab_size}, embedding {spec.embedding_size}, "
                f"encoder 2x{spec.encoder_units}, context {spec.context_units}, decoder {spec.decoder_units} GRU"
            )
            print(
                f"training: {seconds / 60:.1f} min, {steps} steps of {batch} pairs "
                f"({1e3 * seconds / max(steps, 1):.0f} ms/step, {steps * batch / max(seconds, 1e-9):.0f} pairs/s), "
                f"{summary.get('epochs_run')} epoch(s), {summary.get('train_pairs')} training pairs, "
                f"stopped by {summary.get('stopped')}; validation perplexity {summary.get('val_perplexity')}"
            )

            train_paths = baseline_corpora(manifest, args.train_corpus, args.corpus)
            train_dialogues = read_training_corpora(train_paths) if train_paths else None
            dialogues = read_corpora(args.corpus, strict=False)
            settings = EvaluationSettings(
                samples=args.samples,
                max_dialogues=args.dialogues,
                seed=args.seed,
                reply_modes=("greedy", "sample"),
                condition_modes=("greedy", "sample"),
                latency_modes=("greedy", "beam", "sample", "sample_rerank"),
                latency_replies=0,  # timed below, next to the network call alone
                classifier_steps=args.classifier_steps,
            )
            started = time.perf_counter()
            report = evaluate_responder(responder, dialogues, settings, train_dialogues)
            print(f"evaluation ({', '.join(Path(c).name for c in args.corpus)}): {time.perf_counter() - started:.0f} s")

            data = held_out_data(responder, dialogues, settings)
            rng = np.random.default_rng(args.seed + 1)
            rows = rng.choice(len(data.encoded), min(args.replies, len(data.encoded)), replace=False)
            batches = [pad_batch([data.encoded[i]], spec.max_context_turns) for i in rows]
            contexts = [(list(data.pairs[i].context), data.pairs[i].condition) for i in rows]
            decode, respond = {}, {}
            for mode in settings.latency_modes:
                decode[mode], respond[mode] = paired_latency(responder, batches, contexts, mode, args.seed)
            compared = stepwise_comparison(responder, batches, (args.threads, args.threads))
        served = served_replies(model, data, settings, args.threads, args.condition_strength)

    ppl = report["perplexity"]
    print(
        f"\nheld-out perplexity on {ppl['tokens']} reply tokens of {report['data']['dialogues']} dialogues "
        f"(END counted, <unk> {ppl['unk_share']:.1%} of them): model {ppl['model']:.1f}, "
        f"bigram {ppl['bigram'] or float('nan'):.1f}, unigram {ppl['unigram'] or float('nan'):.1f}"
    )
    print(f"\ndecode latency at batch 1, up to {MAX_LENGTH} tokens, {len(batches)} replies per mode (ms):")
    print("| mode | network call p50 | p95 | Responder.respond p50 | p95 |")
    print("| --- | --- | --- | --- | --- |")
    for mode in settings.latency_modes:
        d, r = decode[mode], respond[mode]
        print(f"| {mode} | {d['p50_ms']:.1f} | {d['p95_ms']:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    print(
        # the in-graph decode is the model's compiled call (FixedRun), as served, not a Session.run
        f"\ngreedy, one compiled run of the graph (in-graph while_loop) vs one Session.run per token "
        f"(cakechat's loop), "
        f"{compared['replies']} replies of {compared['mean_length']:.1f} tokens on average: "
        f"p50 {compared['in_graph']['p50_ms']:.1f} ms vs {compared['stepwise']['p50_ms']:.1f} ms, "
        f"in-graph {compared['speedup_p50']:.1f}x faster (total time {compared['speedup_total']:.1f}x); "
        f"the loop with compiled calls (as Keras ran each step): p50 {compared['stepwise_compiled']['p50_ms']:.1f} ms, "
        f"in-graph {compared['compiled_speedup_p50']:.1f}x faster; "
        f"same replies in all three: {compared['equal']}/{compared['replies']}"
    )
    replies = report["replies"]["modes"]
    conditions = report["conditions"]
    print("\n| figure | measured | target | met |")
    print("| --- | --- | --- | --- |")
    print(_row("greedy p50", f"{decode['greedy']['p50_ms']:.1f} ms", "<= 10 ms", decode["greedy"]["p50_ms"] <= 10))
    print(_row("beam k=5 p50", f"{decode['beam']['p50_ms']:.1f} ms", "<= 30 ms", decode["beam"]["p50_ms"] <= 30))
    print(
        _row(
            "in-graph / per-step speed",
            f"{compared['speedup_p50']:.1f}x",
            f">= {TARGETS['in_graph_speedup']:.0f}x",
            compared["speedup_p50"] >= TARGETS["in_graph_speedup"],
        )
    )
    ratio = ppl.get("model_over_bigram")
    print(
        _row(
            "perplexity / bigram's",
            "n/a" if ratio is None else f"{ratio:.2f} ({ppl['model']:.1f} / {ppl['bigram']:.1f})",
            f"<= {TARGETS['perplexity_over_bigram']}",
            None if ratio is None else ratio <= TARGETS["perplexity_over_bigram"],
        )
    )
    for row in distinct_rows(replies, served):
        print(row)
    if "modes" in conditions:
        for mode in ("sample", "greedy"):
            figures = conditions["modes"][mode]
            for emotion in ("joy", "sadness"):
                found, neutral = figures["found"][emotion], figures["when_neutral"][emotion]
                ratio = figures["vs_neutral"][emotion]
                measured = f"{_share(found)} when asked vs {_share(neutral)} with neutral"
                met = None if found is None else (found > 0 if not neutral else found / neutral >= 2)
                text = "inf" if found and not neutral else ("n/a" if ratio is None else f"{ratio:.1f}x")
                print(_row(f"{emotion} heard, {mode}", f"{text}: {measured}", ">= 2x", met))
        classifier = conditions["classifier"]
        recall = ", ".join(
            f"{name} {m['recall']:.2f} (n={m['support']})" for name, m in classifier["per_class"].items()
        )
        print(f"\ncondition classifier ({classifier['held_out_turns']} held-out turns), recall: {recall}")
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")


def distinct_rows(replies: dict[str, Any], served: dict[str, Any]) -> list[str]:
    """The distinct-2 rows of the targets table: sampled and greedy replies at the library's
    default decoding (``replies``: the evaluation's reply figures by mode, ``human`` among them)
    and as served (``served``: :func:`served_replies`), each over the human replies'."""
    human = replies["human"]["distinct_2"]
    target = TARGETS["distinct_2_over_human"]
    rows = []
    for mode in ("sample", "greedy"):
        measured = replies[mode]["distinct_2"]
        share = _over(measured, human)
        rows.append(
            _row(
                f"distinct-2 {mode} / human",
                f"{_ratio(share)} ({_share_of(measured)} / {_share_of(human)})",
                f">= {target}" if mode == "sample" else "(no target)",
                share >= target if mode == "sample" and share is not None else None,
            )
        )
    measured = served["sample"]["distinct_2"]  # None too where no reply holds two tokens
    share = _over(measured, human)
    rows.append(
        _row(
            f"distinct-2 sample / human, repetition penalty {served['penalty']:g} (as served)",
            f"{_ratio(share)} ({_share_of(measured)} / {_share_of(human)}); "
            f"greedy {_share_of(served['greedy']['distinct_2'])}",
            f">= {target}",
            None if share is None else share >= target,
        )
    )
    return rows


def _over(value: float | None, base: float | None) -> float | None:
    """``value / base``; None where either is missing (no bigram in the replies) or ``base`` is 0."""
    return None if value is None or not base else value / base


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _share_of(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


if __name__ == "__main__":
    run_main(main)
