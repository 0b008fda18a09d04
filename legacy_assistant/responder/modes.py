"""The responder's decoding modes and emotions by name, without loading anything (the gunicorn
master reads them for its settings)."""

from __future__ import annotations

import numbers
import unicodedata
from collections.abc import Sequence

import regex

from legacy_assistant.common.fields import checked_strings
from legacy_assistant.errors import RequestError
from legacy_assistant.text.processing import strip_format_characters

MODES = ("greedy", "beam", "sample", "sample_rerank")
DEFAULT_CONDITION = "neutral"
# The conditions of cakechat's models and API, in its order (its error messages list them so).
CAKECHAT_EMOTIONS = ("neutral", "anger", "joy", "fear", "sadness")
# The largest condition guidance strength: the graph's own limit
# (compat.responder.inputs.MAX_CONDITION_STRENGTH, which a test keeps equal), here without numpy.
MAX_CONDITION_STRENGTH = 10.0
# A letter or digit, or an emoji: a reply of only "\U0001f44d" or "\u2764\ufe0f" says something (a
# corpus of chat text holds many), one of only punctuation does not.
_WORD = regex.compile(r"\w|\p{Extended_Pictographic}|\p{Regional_Indicator}")


def has_words(text: str) -> bool:
    """Whether a generated reply says anything (an empty reply, or only punctuation, does not;
    only emoji does)."""
    return _WORD.search(text) is not None


def fold_condition(name: str) -> str:
    """A condition's name as training keeps it: stripped (of spaces and of invisible format
    characters at its ends, which print as nothing), lower-cased and in Unicode's composed form
    (NFC), so that ``"Colère"`` typed with a combining accent (as macOS and some keyboards write
    it) is the same condition as ``"colère"``, and ``"joy\u200b"`` the same as ``"joy"``."""
    # spaces and format characters may alternate at an end ("joy \u200b \u200b"): all go, in one
    # pass, but the format characters right after the last visible one are read with it, as an
    # emoji (a subdivision flag's tag characters) keeps them
    start = 0
    while start < len(name) and _blank(name[start]):
        start += 1
    end = len(name)
    while end > start and _blank(name[end - 1]):
        end -= 1
    while end < len(name) and unicodedata.category(name[end]) == "Cf":
        end += 1
    return unicodedata.normalize("NFC", strip_format_characters(name[start:end]).lower())


def _blank(char: str) -> bool:
    """Whether ``char`` prints as nothing at a name's end: a space or a format character."""
    return char.isspace() or not strip_format_characters(char)


def known_condition(name: object, known: Sequence[str]) -> str | None:
    """The name in ``known`` that ``name`` asks for, as training names conditions (stripped,
    lower-cased and composed: ``" Joy"`` is ``joy``), or None when it asks for none of them (or
    is no text)."""
    if not isinstance(name, str):
        return None
    if name in known:
        return name
    folded = fold_condition(name)
    # a model trained before condition names were lower-cased may hold "Formal"
    return next((condition for condition in known if fold_condition(condition) == folded), None)


def is_condition_strength(value: object) -> bool:
    """Whether ``value`` is a guidance strength a request may ask for: a real number (not a
    bool, not NaN; numpy's scalars count) from 0 to :data:`MAX_CONDITION_STRENGTH`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        strength = float(value)
    except OverflowError:  # an integer beyond float's range (JSON allows any number of digits)
        return False
    return 0.0 <= strength <= MAX_CONDITION_STRENGTH


def checked_condition_strength(value: object) -> float:
    """``value`` as a float; :class:`RequestError` unless :func:`is_condition_strength`."""
    if not is_condition_strength(value):
        raise RequestError(f"condition_strength must be a number in [0, {MAX_CONDITION_STRENGTH:g}], got {value!r}")
    return float(value)  # type: ignore[arg-type]  # a Real, checked above


def check_seed(seed: object) -> None:
    """Raise :class:`RequestError` unless ``seed`` is None or a 64-bit integer (numpy's count;
    a bool, a float or a numeric string does not)."""
    if seed is None:
        return
    # numbers.Integral admits numpy's integers without importing numpy here
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not -(2**63) <= int(seed) < 2**63:
        raise RequestError(f"seed must be a 64-bit integer or None, got {seed!r}")


def checked_context(context: object) -> Sequence[str]:
    """``context`` (a conversation's turns, oldest first) as a sequence of strings, taken as the
    classifier takes its texts: a list, a tuple or any other sequence of strings, or a numpy array
    of strings (as the list it holds). Anything else raises :class:`RequestError` naming its type:
    a bare string (its characters would be turns), a generator or a set (no order or length to
    read twice), a turn that is not a string."""
    return checked_strings(
        context,
        "context must be a list of turns (strings), oldest first, got {type}",
        "every turn of the context must be a string, got {type}",
    )
