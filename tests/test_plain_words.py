"""The closed-form Treebank tokens of plain sentences against NLTK's own tokenizer."""

from __future__ import annotations

import random
import re

import pytest
from nltk.tokenize import NLTKWordTokenizer

from legacy_assistant.text import processing
from legacy_assistant.text.plain_words import plain_words
from legacy_assistant.text.processing import TextConfig, TextProcessor

_TREEBANK = NLTKWordTokenizer()
_WORD_CHAR = re.compile(r"\w")

# The characters and words the closed form handles, and the ones next to them that it must
# leave to NLTK (quotes, colons, upper case, digit groups, NLTK's contraction words).
PIECES = [
    "a", "b", "n", "t", "s", "x", "'", "'s", "'t", "n't", "'ll", "'re", "'ve", "'m", "'d", "'n", "'ye",
    " ", "  ", "?", "!", ",", ".", "..", "-", "--", "1", "2", ":", ";", "cannot", "gonna", "wanna",
    "gimme", "lemme", "gotta", "more", "d", "is", "was", "A", "N'T", "'LL", '"', "`", "(", "$", "1,000",
    "\t", "é",
]  # fmt: skip


def nltk_words(text: str) -> list[str]:
    return [word for word in _TREEBANK.tokenize(text) if _WORD_CHAR.search(word)]


def test_generated_plain_sentences_match_nltk() -> None:
    rng = random.Random(7)
    plain = 0
    for _ in range(30_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 10)))
        words = plain_words(text)
        if words is not None:
            plain += 1
            assert words == nltk_words(text), text
    assert plain > 3_000  # the comparison covered many sentences, not a handful


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("hi there", ["hi", "there"]),
        ("what's the time, please?", ["what", "'s", "the", "time", "please"]),
        ("i don't know... ok!", None),  # an inner ellipsis: NLTK decides
        ("i can't, won't and shouldn't", ["i", "ca", "n't", "wo", "n't", "and", "should", "n't"]),
        (
            "we'll see you're right, they've gone, i'd go, i'm in.",
            ["we", "'ll", "see", "you", "'re", "right", "they", "'ve", "gone", "i", "'d", "go", "i", "'m", "in"],
        ),
        ("e-mail me at noon.", ["e-mail", "me", "at", "noon"]),
        ("really?! yes!!", ["really", "yes"]),
        ("thanks...", ["thanks"]),
    ],
)
def test_examples(text: str, expected: list[str] | None) -> None:
    words = plain_words(text)
    if words is not None:
        assert words == nltk_words(text)
    if expected is not None:
        assert words == expected


@pytest.mark.parametrize(
    "text",
    [
        "Hello there",  # upper case
        "i cannot go",  # NLTK: "can", "not"
        "cannotn't",  # "cannot" once "n't" is split off
        "gonna-go",  # \b at the hyphen
        "it costs 1,000 dollars",  # a digit group
        "wait -- what",  # a double dash
        "café",  # not ASCII
        "say \"hi\"",  # quotes
        "mr. smith",  # an inner period
        "time: now",  # a colon
        "more'n enough",  # NLTK's "more", "'n"
        "'tis true",  # NLTK's "'t", "is"
    ],
)
def test_other_sentences_go_to_nltk(text: str) -> None:
    assert plain_words(text) is None


def test_text_processor_uses_the_closed_form_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    processor = TextProcessor(TextConfig(tokenizer="treebank", stemmer="none"))
    called: list[str] = []
    real = processing._TREEBANK.tokenize
    monkeypatch.setattr(processing._TREEBANK, "tokenize", lambda text: called.append(text) or real(text))
    assert processor.tokens("What's the time?") == ["what", "'s", "the", "time"]
    assert called == []  # plain once lower-cased
    assert processor.tokens("It costs $1,000: really!") == nltk_words("it costs $1,000: really!")
    assert called == ["it costs $1,000: really!"]


def test_long_input_that_fails_at_its_end_is_refused() -> None:
    # fails the pattern only at the last character (backtracking must stay bounded)
    for text in ("a" * 50_000 + "#", "a " * 25_000 + "#", "an't" * 12_000 + "#"):
        assert plain_words(text) is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        "a" + " " * 20_000 + ".#",
        " " * 20_000 + "#",
        "a" + "?" * 20_000 + "#",
        "a b" + " !" * 10_000 + ". #",
        "a" + " " * 10_000 + "." * 10_000 + "#",
    ],
    ids=["spaces-after-a-word", "spaces-alone", "marks", "gaps-of-two", "spaces-then-periods"],
)
def test_long_runs_of_gaps_that_fail_at_the_end_are_refused(text: str) -> None:
    # A run of gaps that two quantifiers could share made every failing match try each split
    # of it: 2,000 spaces took 12 s, these would take hours (the timeout fails the test).
    assert plain_words(text) is None
