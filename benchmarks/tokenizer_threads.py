"""NLTK tokenizing from several threads at once: NLTK's patterns as shipped against the same
patterns holding the GIL while they match (``legacy_assistant/text/nltk_patterns.py``).

Each row tokenizes the same sentence ``--sentences`` times in each of N threads with each variant
and prints the wall time per sentence (all threads together; on 2 cores the GIL lets one thread
tokenize at a time, so the ideal is the one-thread figure) and the ratio of the two variants,
measured in the same run. The two variants take turns: a row's sentences are split into
``--rounds`` rounds, each variant tokenizing its share of them in every round, the one that goes
first alternating from round to round (as shipped first, then holding the GIL first, ...), so
that the machine warming up, its caches and a change of its load meanwhile fall on both alike;
a variant's figure is its time over all the rounds divided by all its sentences.

    python benchmarks/tokenizer_threads.py [--sentences 3000] [--threads 1 2 4 8] [--rounds 4]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from nltk.tokenize import NLTKWordTokenizer, ToktokTokenizer  # noqa: E402
from timing import once, positive_int, run_main, threads_elapsed  # noqa: E402

from legacy_assistant.text.nltk_patterns import hold_gil_while_matching  # noqa: E402

SENTENCE = "hi, what time do you open on sundays? I'd like a large latte (with oat milk)."


def wall_us_per_sentence(tokenize: Callable[[str], object], threads: int, sentences: int) -> float:
    """Wall microseconds per tokenized sentence with ``threads`` threads tokenizing at once."""
    return threads_elapsed(lambda: tokenize(SENTENCE), threads, sentences) / (threads * sentences) * 1e6


def alternating_us_per_sentence(
    tokenizers: Sequence[Callable[[str], object]], threads: int, sentences: int, rounds: int
) -> list[float]:
    """Wall microseconds per sentence of each of ``tokenizers``, each tokenizing ``sentences``
    sentences in each of ``threads`` threads, split into ``rounds`` rounds (fewer where there are
    fewer sentences) in which they take turns, their order reversed every other round."""
    rounds = min(rounds, sentences)
    shares = [sentences // rounds + (1 if index < sentences % rounds else 0) for index in range(rounds)]
    seconds = [0.0] * len(tokenizers)
    order = list(range(len(tokenizers)))
    for index, share in enumerate(shares):
        for which in order if index % 2 == 0 else order[::-1]:
            seconds[which] += threads_elapsed(partial(tokenizers[which], SENTENCE), threads, share)
    return [total / (threads * sentences) * 1e6 for total in seconds]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, each ``--threads`` value once: a count given twice was measured twice
    and printed as two rows of one name; it is now measured once, with a note on stderr."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=positive_int, default=3000, help="sentences per thread per row")
    parser.add_argument(
        "--threads", type=positive_int, nargs="+", default=[1, 2, 4, 8], help="threads, one row each, each value once"
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=4,
        help="rounds a row's sentences are split into, the variants taking turns (default 4)",
    )
    args = parser.parse_args(argv)
    args.threads = once("--threads", args.threads)
    return args


def main() -> None:
    args = parse_arguments()

    import nltk

    print(f"nltk {nltk.__version__}, python {sys.version.split()[0]}; wall µs per sentence, all threads together")
    print("| tokenizer | threads | NLTK as shipped | holding the GIL | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, make in (("treebank", NLTKWordTokenizer), ("toktok", ToktokTokenizer)):
        shipped, holding = make().tokenize, hold_gil_while_matching(make()).tokenize
        wall_us_per_sentence(shipped, 1, 200)  # warm both up
        wall_us_per_sentence(holding, 1, 200)
        for threads in args.threads:
            before, after = alternating_us_per_sentence([shipped, holding], threads, args.sentences, args.rounds)
            print(f"| {name} | {threads} | {before:.1f} | {after:.1f} | {before / after:.2f}× |")


if __name__ == "__main__":
    run_main(main)
