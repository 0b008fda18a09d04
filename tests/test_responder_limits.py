"""The responder's decoding limits, without TensorFlow: what :class:`DecodingOptions` accepts
(a :class:`RequestError` otherwise, at construction) is what the decode inputs accept
(:func:`compat.responder.inputs.decode_call`, a ``ValueError`` otherwise, at request time)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from compat.responder.inputs import (
    MAX_DECODE_LENGTH,
    MAX_REPETITION_PENALTY,
    MIN_REPETITION_PENALTY,
    allowed_tokens,
    decode_call,
)
from compat.responder.spec import END, N_SPECIAL, PAD, START, UNK
from legacy_assistant.errors import RequestError
from legacy_assistant.responder.responder import DecodingOptions
from tests.helpers import ROOT

V, K = 12, 3  # a vocabulary of 12 ids (8 words), 3 conditions
WORDS = np.arange(N_SPECIAL, V, dtype=np.int32)
CONTEXT = np.full((1, 1, 2), 5, np.int32)
CONDITION = np.zeros(1, np.int32)
PENALTY_MESSAGE = r"repetition_penalty must be from 1\.2e-38 to 3\.4e\+38 \(a normal, finite float32\)"


def call(**options):
    return decode_call(CONTEXT, CONDITION, V, K, **{"mode": "greedy", "max_length": 5, **options})


def _accepted(make, refusal, options) -> bool:
    try:
        make(**options)
    except refusal:
        return False
    return True


def accepted_by_options(**options) -> bool:
    return _accepted(DecodingOptions, RequestError, options)


def accepted_by_decode(**options) -> bool:
    return _accepted(call, ValueError, options)


def test_max_length_has_one_sane_bound():
    assert MAX_DECODE_LENGTH == 1_000
    DecodingOptions(max_length=MAX_DECODE_LENGTH)
    assert call(max_length=MAX_DECODE_LENGTH).max_length == MAX_DECODE_LENGTH
    for too_long in (MAX_DECODE_LENGTH + 1, 10**7, 2**31 - 1):
        with pytest.raises(RequestError, match=f"max_length must be a whole number from 1 to 1000, got {too_long}"):
            DecodingOptions(max_length=too_long)
        with pytest.raises(ValueError, match=rf"decode: max_length must be an integer in \[1, 1000\], got {too_long}"):
            call(max_length=too_long)


@pytest.mark.parametrize("penalty", [1e-46, 5e-46, 1e-45, 1e-40, 1.1e-38, 1e39, 1e300, 0.0, -1.0])
def test_a_repetition_penalty_float32_cannot_hold_is_refused_at_construction(penalty):
    # 1e-46 rounds to 0 as float32 (log: -inf), 1e39 to inf, 1e-40 is subnormal (its log inexact):
    # refused with the float32 limits,
    # when the options are built and by the decode alike
    with pytest.raises(RequestError, match=PENALTY_MESSAGE + re.escape(f", got {penalty!r}")):
        DecodingOptions(repetition_penalty=penalty)
    with pytest.raises(ValueError, match="decode: " + PENALTY_MESSAGE):
        call(repetition_penalty=penalty)


def test_options_and_decode_inputs_agree_at_the_bounds():
    penalties = [MIN_REPETITION_PENALTY, MAX_REPETITION_PENALTY, 1e-30, 1.0, 10.0, 1e30, 7e-46, 1e-45, 1e-40, 1.2e-38, 3.5e38]
    for penalty in penalties:
        assert accepted_by_options(repetition_penalty=penalty) == accepted_by_decode(repetition_penalty=penalty), (
            penalty
        )
    assert accepted_by_decode(repetition_penalty=MIN_REPETITION_PENALTY)
    assert accepted_by_decode(repetition_penalty=MAX_REPETITION_PENALTY)
    for length in (1, 30, MAX_DECODE_LENGTH, MAX_DECODE_LENGTH + 1, 2**31 - 1):
        assert accepted_by_options(max_length=length) == accepted_by_decode(max_length=length), length
    for temperature in (1e-7, 1e-6, 0.5, 100.0, 100.5):
        assert accepted_by_options(temperature=temperature) == accepted_by_decode(
            mode="sample", temperature=temperature
        ), temperature


def test_decoding_options_default_to_what_the_docs_say():
    """docs/RESPONDER.md promises 10 replies at temperature 0.5 and a beam of 5; penalties and guidance start off."""
    defaults = DecodingOptions()
    assert (defaults.temperature, defaults.beam_width, defaults.n_samples) == (0.5, 5, 10)
    assert (defaults.repetition_penalty, defaults.length_penalty) == (1.0, 1.0)
    assert defaults.max_length is None and defaults.condition_strength == 0.0
    docs = " ".join((ROOT / "docs" / "RESPONDER.md").read_text("utf-8").split())
    assert "(10 replies drawn at temperature 0.5," in docs and "`beam` (width 5)" in docs


def test_a_length_penalty_of_0_is_accepted_and_a_negative_one_refused():
    """0 (rank beam candidates by plain log p) is the documented lower bound, for the options and the decode."""
    assert DecodingOptions(length_penalty=0).length_penalty == 0
    assert DecodingOptions(length_penalty=0.0).length_penalty == 0.0
    assert call(mode="beam", length_penalty=0).values["length_penalty"] == 0.0
    for penalty in (-1, -0.5, -1e-9):
        assert not accepted_by_options(length_penalty=penalty)
        with pytest.raises(ValueError, match=f"decode: length_penalty must be >= 0, got {penalty!r}"):
            call(mode="beam", length_penalty=penalty)


def test_the_options_and_the_decode_take_the_same_length_penalties():
    """Above 10, ``length ** length_penalty`` may leave float32's range (inf), where beam search
    ranks every long candidate alike; the decode refuses what the options refuse."""
    for penalty in (0.0, 1.0, 10.0, 10.5, 30.0, 1e39, float("inf")):
        by_options = accepted_by_options(length_penalty=penalty)
        assert by_options == accepted_by_decode(mode="beam", length_penalty=penalty) == (penalty <= 10), penalty
    with pytest.raises(ValueError, match=r"decode: length_penalty must be at most 10, got 30\.0"):
        call(mode="beam", length_penalty=30.0)


def test_ids_must_lie_below_the_vocabulary_size_and_the_number_of_conditions():
    """The largest ids are accepted; one equal to the size (past the embedding's last row) is refused."""
    top_ids, top_condition = np.full((1, 1, 2), V - 1, np.int32), np.full(1, K - 1, np.int32)
    largest = decode_call(top_ids, top_condition, V, K, mode="greedy", max_length=5)
    assert largest.values["context_ids"].max() == V - 1 and largest.values["condition_ids"][0] == K - 1
    with pytest.raises(ValueError, match=r"decode: context_ids must lie in \[0, 12\), got values from 5 to 12"):
        decode_call(np.array([[[5, V]]], np.int32), CONDITION, V, K, mode="greedy", max_length=5)
    with pytest.raises(ValueError, match=r"decode: condition_ids must lie in \[0, 3\), got values from 3 to 3"):
        decode_call(CONTEXT, np.full(1, K, np.int32), V, K, mode="greedy", max_length=5)
    with pytest.raises(ValueError, match=r"decode: context_ids must lie in \[0, 12\), got values from -1 to 5"):
        decode_call(np.array([[[-1, 5]]], np.int32), CONDITION, V, K, mode="greedy", max_length=5)


def test_banned_ids_must_leave_a_token_to_produce():
    assert allowed_tokens(np.zeros(0, np.int32), V) == V - 3  # PAD, UNK and START never; END may be
    assert allowed_tokens(np.array([PAD, UNK, START, START], np.int32), V) == V - 3
    assert allowed_tokens(np.append(WORDS, END), V) == 0
    for mode in ("greedy", "sample"):
        call(mode=mode, banned_ids=WORDS)  # END is left: a decode that ends at once
        with pytest.raises(ValueError, match=r"banned_ids must leave at least one token allowed.*leave 0 of 12"):
            call(mode=mode, banned_ids=np.append(WORDS, END))


def test_beam_search_needs_beam_width_allowed_tokens():
    beam = {"mode": "beam", "beam_width": 3}
    call(banned_ids=WORDS[2:], **beam)  # words 4 and 5, and END: 3 allowed
    with pytest.raises(ValueError, match=r"banned_ids must leave at least beam_width \(3\).*leave 2 of 12"):
        call(banned_ids=WORDS[1:], **beam)
    with pytest.raises(ValueError, match=r"at least beam_width \(3\).*leave 1 of 12"):
        call(banned_ids=WORDS, **beam)  # only END allowed: the review's <unk> </s> ranked first
    call(banned_ids=WORDS, mode="beam", beam_width=1)


def test_sample_rerank_draws_at_most_a_bounded_number_of_samples():
    """Each sample is a row as long as max_length: 2**31 - 1 of them would allocate gigabytes."""
    from compat.responder.inputs import MAX_SAMPLES

    assert call(mode="sample", n_samples=MAX_SAMPLES)
    with pytest.raises(ValueError, match=f"n_samples must be an integer in \\[1, {MAX_SAMPLES}\\]"):
        call(mode="sample", n_samples=MAX_SAMPLES + 1)
    assert accepted_by_options(n_samples=MAX_SAMPLES) and not accepted_by_options(n_samples=MAX_SAMPLES + 1)


def test_training_cannot_ask_for_replies_no_decode_may_produce():
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.responder.config import ResponderTrainingConfig

    ResponderTrainingConfig(max_reply_tokens=MAX_DECODE_LENGTH)
    with pytest.raises(ConfigError, match=f"max_reply_tokens must be at most {MAX_DECODE_LENGTH:,}"):
        ResponderTrainingConfig(max_reply_tokens=MAX_DECODE_LENGTH + 1)


def test_a_graph_session_that_cannot_be_pickled_says_how_to_share_a_model():
    import pickle

    from compat.graph_session import GraphSession

    with GraphSession() as session, pytest.raises(TypeError, match="load it there \\(Predictor.load or Responder.load\\)"):
        pickle.dumps(session)


def test_the_widest_beam_is_the_vocabularys_words() -> None:
    """A beam keeps one word per place: its width may reach the vocabulary's words (the size
    less the special ids), not one more, even where no id is banned."""
    words = V - N_SPECIAL
    assert call(mode="beam", beam_width=words).candidates == words
    with pytest.raises(ValueError, match=rf"decode: beam_width must be an integer in \[1, {words}\], got {words + 1}"):
        call(mode="beam", beam_width=words + 1)


def test_a_sampling_seed_must_fit_in_64_bits() -> None:
    """The graph takes the seed as an int64: the largest one is accepted, 2**63 refused."""
    assert call(mode="sample", seed=2**63 - 1).values["seed"] == 2**63 - 1
    assert call(mode="sample", seed=-(2**63)).values["seed"] == -(2**63)
    for seed in (2**63, -(2**63) - 1):
        with pytest.raises(ValueError, match=rf"decode: seed must be a 64-bit integer, got {seed}"):
            call(mode="sample", seed=seed)


@pytest.mark.parametrize("mode", ["greedy", "beam", "sample"])
def test_a_strength_of_zero_decodes_unguided(mode: str) -> None:
    """Only a strength above 0 calls the guided signature: a model exported before guidance
    existed has none, and serves every unguided request."""
    unguided = call(mode=mode, condition_strength=0)
    assert unguided.mode == mode and "condition_strength" not in unguided.values
    guided = call(mode=mode, condition_strength=0.5)
    assert guided.mode == f"{mode}_guided" and guided.values["condition_strength"] == 0.5


@pytest.mark.parametrize(("option", "mode"), [("temperature", "sample"), ("repetition_penalty", "greedy")])
def test_a_bool_is_no_number_for_the_decode(option: str, mode: str) -> None:
    """``True`` is an int to Python but no temperature or penalty: refused, as the options refuse it."""
    assert not accepted_by_options(**{option: True})
    with pytest.raises(ValueError, match=f"decode: {option} must be from .*, got True"):
        call(mode=mode, **{option: True})


@pytest.mark.parametrize(
    ("option", "mode", "message"),
    [
        ("max_length", "greedy", r"max_length must be an integer in \[1, 1000\]"),
        ("beam_width", "beam", r"beam_width must be an integer in \[1, 8\]"),
        ("n_samples", "sample", r"n_samples must be an integer in \[1, 1000\]"),
        ("seed", "sample", "seed must be a 64-bit integer"),
    ],
)
def test_a_bool_is_no_count_or_seed_for_the_decode(option: str, mode: str, message: str) -> None:
    """``True`` was taken as 1 (a one-token reply, a beam of one, seed 1), where the Python
    API's options and ``check_seed`` refuse it."""
    assert call(mode=mode, **{option: 1})
    with pytest.raises(ValueError, match=f"decode: {message}, got True"):
        call(mode=mode, **{option: True})


@pytest.mark.parametrize("penalty", ["1", None, [1.0]])
def test_a_length_penalty_that_is_no_number_is_a_value_error(penalty: object) -> None:
    """Bad decode arguments raise ``ValueError``; a string raised ``TypeError: '>=' not supported``."""
    with pytest.raises(ValueError, match=f"decode: length_penalty must be a number, got {re.escape(repr(penalty))}"):
        call(mode="beam", length_penalty=penalty)
