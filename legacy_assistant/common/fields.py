"""Type checks of a settings dataclass's fields, by their declared type.

Settings come from JSON files and command lines, where ``"false"`` is a true string, ``1.5``
is no count and ``NaN`` passes every comparison. Each settings class calls
:func:`check_field_types` first in its ``__post_init__``, before its own range checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from legacy_assistant.errors import ConfigError, RequestError

# Counts (epochs, batch sizes, widths, ...) beyond this are a typo, not a setting: a loop or an
# allocation of that size would never end or fail deep inside numpy or TensorFlow.
MAX_COUNT = 10**9


SHOWN_CHARS = 80  # a value quoted in an error beyond this is cut: a whole list would bury the message


def shown(value: Any) -> str:
    """``value`` as a settings file spells it: JSON (``"yes"``, ``null``, ``true``, ``[1, 2]``),
    or Python's ``repr`` for what JSON cannot hold; cut after :data:`SHOWN_CHARS` characters."""
    try:
        text = json.dumps(list(value) if isinstance(value, tuple) else value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def shown_text(text: str) -> str:
    """``text`` quoted as Python writes it (``'hi there'``), cut after :data:`SHOWN_CHARS`
    characters and its length given: a warning quoting a 10,000-character pattern whole filled
    the terminal with one line."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text):,} characters)"


def threshold_text(threshold: float) -> str:
    """``threshold`` for a person to read: two places for a grid value (``0.25``, ``0.40``), else
    as many as it has (``0.125``, ``0.999``), so that a line never shows a threshold other than the
    one its figures were measured at (``0.999`` printed as ``1.00``, which would send everything
    back)."""
    two = f"{threshold:.2f}"
    return two if float(two) == threshold else f"{threshold:.15g}"


def json_kind(value: Any) -> str:
    """What ``value`` is, in JSON's words (``an object``, ``a list``, ``a string``, ``a
    boolean``, ``a number``, ``null``), for "must be ..., got ..." errors about a file's content:
    Python's type names (``dict``, ``NoneType``) are not what its writer wrote."""
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool) that is neither NaN nor infinite; an
    integer too large for a float counts as infinite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_whole_number(value: Any, low: int | None = None, high: int | None = None) -> bool:
    """Whether ``value`` is an int (not a bool) in ``[low, high]`` (either end open when ``None``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def check_field_types(settings: Any, unbounded: tuple[str, ...] = ()) -> None:
    """``ConfigError`` naming the first field whose value does not have its declared type:
    ``bool`` fields must be booleans, ``int`` fields whole numbers in ``[-MAX_COUNT,
    MAX_COUNT]`` (not booleans; the fields in ``unbounded`` are range-checked by the class),
    ``float`` fields finite numbers, ``str`` fields strings. Fields of other declared types are
    left to the class."""
    for field in fields(settings):
        value = getattr(settings, field.name)
        kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
        if kind == "bool" and not isinstance(value, bool):
            raise ConfigError(f"{field.name} must be true or false, got {shown(value)}")
        bound = None if field.name in unbounded else MAX_COUNT
        if kind == "int" and not is_whole_number(value, None if bound is None else -bound, bound):
            limit = "" if field.name in unbounded else f" of at most {MAX_COUNT:,}"
            raise ConfigError(f"{field.name} must be a whole number{limit}, got {shown(value)}")
        if kind == "float" and not is_finite_number(value):
            raise ConfigError(f"{field.name} must be a finite number, got {shown(value)}")
        if kind == "str" and not isinstance(value, str):
            raise ConfigError(f"{field.name} must be a string, got {shown(value)}")


def check_count_list(name: str, values: Any, low: int = 1, high: int = MAX_COUNT) -> tuple[int, ...]:
    """``values`` as a tuple of whole numbers in ``[low, high]`` (a list or tuple, not a string,
    whose items are not booleans or floats); ``ConfigError`` naming ``name`` otherwise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ConfigError(f"{name} must be a list of whole numbers, got {shown(values)}")
    for value in values:
        if not is_whole_number(value, low, high):
            raise ConfigError(f"{name} must hold whole numbers from {low} to {high:,}, got {shown(values)}")
    return tuple(values)


def checked_strings(value: object, refused: str, refused_item: str) -> Sequence[str]:
    """``value`` as a sequence of strings: a list, a tuple or any other sequence of strings, or a
    1-D numpy array of strings (as the list it holds). Anything else raises
    :class:`RequestError` with ``refused`` (a bare string, whose characters would be taken one
    by one; a generator or a set, with no order or length to read twice) or ``refused_item`` (an
    item that is not a string), each formatted with the ``type`` refused."""
    if getattr(value, "ndim", None) == 1 and callable(getattr(value, "tolist", None)):  # numpy, not imported
        value = value.tolist()  # type: ignore[attr-defined]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise RequestError(refused.format(type=type(value).__name__))
    for item in value:
        if not isinstance(item, str):
            raise RequestError(refused_item.format(type=type(item).__name__))
    return value
