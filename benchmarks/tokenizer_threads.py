"""NLTK tokenizing from several threads at once: NLTK's patterns as shipped against the same
patterns holding the GIL while they match (``legacy_assistant/text/nltk_patterns.py``).

Each row tokenizes the same sentence ``--sentences`` times in each of N threads and prints the
wall time per sentence (all threads together; on 2 cores the GIL lets one thread tokenize at a
time, so the ideal is the one-thread figure) and the ratio of the two variants, measured in the
same run.

    python benchmarks/tokenizer_threads.py [--sentences 3000] [--threads 1 2 4 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from nltk.tokenize import NLTKWordTokenizer, ToktokTokenizer  # noqa: E402
from timing import positive_int, run_main, threads_elapsed  # noqa: E402

from legacy_assistant.text.nltk_patterns import hold_gil_while_matching  # noqa: E402

SENTENCE = "hi, what time do you open on sundays? I'd like a large latte (with oat milk)."


def wall_us_per_sentence(tokenize, threads: int, sentences: int) -> float:
    """Wall microseconds per tokenized sentence with ``threads`` threads tokenizing at once."""
    return threads_elapsed(lambda: tokenize(SENTENCE), threads, sentences) / (threads * sentences) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=positive_int, default=3000, help="sentences per thread per row")
    parser.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()

    import nltk

    print(f"nltk {nltk.__version__}, python {sys.version.split()[0]}; wall µs per sentence, all threads together")
    print("| tokenizer | threads | NLTK as shipped | holding the GIL | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, make in (("treebank", NLTKWordTokenizer), ("toktok", ToktokTokenizer)):
        shipped, holding = make().tokenize, hold_gil_while_matching(make()).tokenize
        wall_us_per_sentence(shipped, 1, 200)  # warm both up
        wall_us_per_sentence(holding, 1, 200)
        for threads in args.threads:
            before = wall_us_per_sentence(shipped, threads, args.sentences)
            after = wall_us_per_sentence(holding, threads, args.sentences)
            print(f"| {name} | {threads} | {before:.1f} | {after:.1f} | {before / after:.2f}× |")


if __name__ == "__main__":
    run_main(main)
