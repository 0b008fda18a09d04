"""NLTK tokenizers whose patterns keep the GIL while matching: same tokens, same ReDoS guard."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize import NLTKWordTokenizer, ToktokTokenizer

from legacy_assistant.text.nltk_patterns import (
    GilHoldingPattern, TimedPattern, hold_gil_while_matching, unwrapped_patterns,
)
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
    assert unwrapped_patterns(processor._split.__self__) == []


class _RecordingPattern:
    pattern = "x"

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs)) or name


@pytest.mark.parametrize("method", ["search", "match", "fullmatch", "findall", "finditer", "split", "sub", "subn"])
def test_matching_methods_pass_concurrent_false(method: str) -> None:
    recorder = _RecordingPattern()
    assert getattr(GilHoldingPattern(recorder), method)("a", "b", count=1) == method
    assert recorder.calls == [(method, ("a", "b"), {"concurrent": False, "count": 1})]


def test_other_attributes_are_the_wrapped_patterns() -> None:
    assert GilHoldingPattern(_RecordingPattern()).pattern == "x"
    with pytest.raises(AttributeError):
        GilHoldingPattern(_RecordingPattern()).__deepcopy__


@needs_timed_patterns
def test_redos_timeout_still_applies() -> None:
    from nltk import redos

    # An alternation of identical branches backtracks exponentially; NLTK's guard must still stop it.
    catastrophic = GilHoldingPattern(redos.compile(r"(a|a)*$", timeout=0.05))
    with pytest.raises(TimeoutError):
        catastrophic.search("a" * 40 + "b")
    assert catastrophic.fullmatch("aaa") is not None
