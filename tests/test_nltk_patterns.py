"""NLTK tokenizers whose patterns keep the GIL while matching: same tokens, same ReDoS guard."""
from __future__ import annotations

import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize import NLTKWordTokenizer, ToktokTokenizer

from legacy_assistant.text.nltk_patterns import (
    GilHoldingPattern, TimedPattern, hold_gil_while_matching, unwrapped_patterns,
)
from legacy_assistant.text import processing
from legacy_assistant.text.processing import TextConfig, TextProcessor

needs_timed_patterns = pytest.mark.skipif(TimedPattern is None, reason="this NLTK uses standard re patterns")

SENTENCES = [
    "hi, what time do you open on sundays?",
    "I'd like a large latte -- no, make that two (with oat milk)!",
    "\"Don't\" you think it's 5:30 already... isn't it?",
    "Send it to bob@example.com; it costs $4.50 & more [maybe].",
    "«Bonjour» — c’est l’heure du café… non?",
    "Visit https://example.com/menu?item=1&size=2 or call 555-0100.",
    "   tabs\tand   spaces\n\nand newlines   ",
    "Ünïcödé wörds, 漢字 and emoji ☕☕ together.",
    "'quoted' ``backticks'' and {braces} <angles>",
    "",
]


@pytest.mark.parametrize("make", [NLTKWordTokenizer, ToktokTokenizer])
def test_same_tokens_as_nltk(make) -> None:
    plain, holding = make(), hold_gil_while_matching(make())
    for sentence in SENTENCES:
        assert holding.tokenize(sentence) == plain.tokenize(sentence), sentence


_TREEBANK_PLAIN, _TREEBANK_HOLDING = NLTKWordTokenizer(), hold_gil_while_matching(NLTKWordTokenizer())
_TOKTOK_PLAIN, _TOKTOK_HOLDING = ToktokTokenizer(), hold_gil_while_matching(ToktokTokenizer())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_same_tokens_on_random_text(text: str) -> None:
    assert _TREEBANK_HOLDING.tokenize(text) == _TREEBANK_PLAIN.tokenize(text)
    assert _TOKTOK_HOLDING.tokenize(text) == _TOKTOK_PLAIN.tokenize(text)


@needs_timed_patterns
@pytest.mark.parametrize("make", [NLTKWordTokenizer, ToktokTokenizer])
def test_every_pattern_table_is_wrapped_on_the_instance_only(make) -> None:
    assert unwrapped_patterns(make()), "NLTK's tokenizer should start with bare TimedPatterns"
    holding = hold_gil_while_matching(make())
    assert unwrapped_patterns(holding) == []
    assert unwrapped_patterns(make()), "the class's tables must stay as NLTK made them"


@needs_timed_patterns
@pytest.mark.parametrize("tokenizer", ["treebank", "toktok"])
def test_text_processor_uses_gil_holding_tokenizers(tokenizer: str) -> None:
    processor = TextProcessor(TextConfig(tokenizer=tokenizer))
    split = processor._split
    # treebank: plain sentences in closed form, any other through the module's NLTK tokenizer
    nltk_tokenizer = processing._TREEBANK if split is processing._treebank_words else split.__self__
    assert unwrapped_patterns(nltk_tokenizer) == []


def other_thread_ran_during(call, *args) -> bool:
    """Whether another thread, released just before ``call(*args)``, ran before it returned.

    The other thread needs the GIL to run at all. With a long switch interval the calling
    thread gives the GIL up only where C code releases it on purpose, as ``regex`` does while it
    matches unless it is told ``concurrent=False``."""
    released, ran = threading.Event(), []
    other = threading.Thread(target=lambda: (released.wait(), ran.append(True)))
    other.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        released.set()
        result = call(*args)
        if hasattr(result, "__next__"):  # finditer matches as it is iterated
            list(result)
        seen = bool(ran)
    finally:
        sys.setswitchinterval(interval)
        other.join()
    return seen


# The pattern below backtracks through every way of splitting a run of a's: on SLOW_TEXT a call
# takes 0.05 to 0.5 s here, long enough for a waiting thread to be scheduled if the GIL were free.
SLOW_TEXT = "a" * 24
METHODS = ["search", "match", "fullmatch", "findall", "finditer", "split", "sub", "subn"]


def call_args(method: str, text: str) -> tuple:
    return ("x", text) if method in ("sub", "subn") else (text,)


def comparable(result):
    """A match object as its span, an iterator of matches as their spans; anything else as it is."""
    if hasattr(result, "span"):
        return result.span()
    if hasattr(result, "__next__"):
        return [match.span() for match in result]
    return result


@pytest.fixture(scope="module")
def slow_pattern():
    from nltk import redos

    return redos.compile(r"(?:a|aa)+b", timeout=60)


@needs_timed_patterns
def test_nltk_patterns_let_other_threads_run_while_matching(slow_pattern) -> None:
    """The control: NLTK's own pattern hands the GIL over during a match (what the wrapper is
    for), so the check below can tell the two apart."""
    assert other_thread_ran_during(slow_pattern.search, SLOW_TEXT)


@needs_timed_patterns
@pytest.mark.parametrize("method", METHODS)
def test_wrapped_patterns_keep_the_gil_while_matching(slow_pattern, method) -> None:
    holding = GilHoldingPattern(slow_pattern)
    assert not other_thread_ran_during(getattr(holding, method), *call_args(method, SLOW_TEXT))
    for text in ("aab, ab and aaab", "no match here", ""):  # and it answers as the pattern does
        plain, held = (comparable(getattr(p, method)(*call_args(method, text))) for p in (slow_pattern, holding))
        assert held == plain, text


@needs_timed_patterns
def test_other_attributes_are_the_wrapped_patterns(slow_pattern) -> None:
    holding = GilHoldingPattern(slow_pattern)
    assert (holding.pattern, holding.flags) == (slow_pattern.pattern, slow_pattern.flags)
    with pytest.raises(AttributeError):
        holding.__deepcopy__


@needs_timed_patterns
def test_redos_timeout_still_applies() -> None:
    from nltk import redos

    # An alternation of identical branches backtracks exponentially; NLTK's guard must still stop it.
    catastrophic = GilHoldingPattern(redos.compile(r"(a|a)*$", timeout=0.05))
    with pytest.raises(TimeoutError):
        catastrophic.search("a" * 40 + "b")
    assert catastrophic.fullmatch("aaa") is not None


@needs_timed_patterns
def test_calls_go_straight_to_the_engine_with_the_patterns_timeout() -> None:
    import functools

    from nltk import redos

    holding = GilHoldingPattern(redos.compile(r"a+", timeout=0.25))
    assert isinstance(holding.sub, functools.partial)
    assert holding.sub.keywords == {"timeout": 0.25, "concurrent": False}
    assert holding.sub("b", "caat") == "cbt"


def test_a_pattern_without_engine_internals_is_called_through_its_own_methods() -> None:
    """A pattern object that keeps no ``_rx`` (another NLTK release) still gets ``concurrent=False``."""
    calls = []

    class Pattern:
        pattern = "p"

        def sub(self, repl, text, concurrent=True):
            calls.append(concurrent)
            return text.replace("p", repl)

    holding = GilHoldingPattern(Pattern())
    assert holding.sub("q", "ppx") == "qqx"
    assert calls == [False]
    assert holding.pattern == "p"
