"""Scripts written without spaces between words (Chinese, Japanese, Thai, Lao, Khmer, Burmese).

Word tokenizers read a run of such a script (most often a whole sentence) as one word. Both
trainings warn when their data holds such runs: a model of whole words then learns whole
phrases, and understands a message only where it holds a run spelt as in the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import regex

# Katakana's length mark (full and half width), of no script of its own, counts when a letter is
# in the run: "コーヒー" and "ケーキ" are one word each, not letters apart; "ーー" alone, which
# the unicode tokenizer leaves between the letters it parts, is no run.
_LENGTH_MARKS = "\u30fc\uff70"
_CHINESE_OR_JAPANESE_LETTER = r"\p{Han}\p{Hiragana}\p{Katakana}"
_UNSPACED_LETTER = _CHINESE_OR_JAPANESE_LETTER + r"\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"


def _run_of(letters: str) -> regex.Pattern[str]:
    """A pattern that ``search`` finds in a text holding two or more of ``letters`` (a character
    class's inside) and length marks in a row, a letter among them: a letter with one of them
    beside it. It matches that letter alone, not the run, and takes a time linear in the text's
    length (one that read the run from each of its length marks took 9 s on 16,000 of them)."""
    either = f"[{letters}{_LENGTH_MARKS}]"
    return regex.compile(rf"[{letters}](?={either})|(?<={either})[{letters}]")


UNSPACED_RUN = _run_of(_UNSPACED_LETTER)
CHINESE_OR_JAPANESE_RUN = _run_of(_CHINESE_OR_JAPANESE_LETTER)


def unspaced_runs(texts: Iterable[str], tokens: Callable[[str], Sequence[str]]) -> list[str]:
    """For each of ``texts`` that holds a run of a script written without spaces, the first of
    its ``tokens`` that holds one (a text whose tokenizer parts the run into letters gives none)."""
    return [
        run
        for text in texts
        if not text.isascii() and UNSPACED_RUN.search(text)
        for run in [next((token for token in tokens(text) if UNSPACED_RUN.search(token)), None)]
        if run is not None
    ]
