"""Read a JSON file, turning every way it can fail into one clear problem line."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from legacy_assistant.common.input_files import NotUtf8Error, input_text, read_input_bytes, read_problem

# Fields that name the object they are in, to say which object repeats a key.
_NAMING_FIELDS = ("tag", "name", "id")


class DuplicateKeyError(ValueError):
    """A JSON object gives one key twice: Python's decoder would keep the last value and drop the others."""

    def __init__(self, key: str, pairs: list[tuple[str, Any]]) -> None:
        self.key = key
        named = next(
            ((field, value) for field, value in pairs if field in _NAMING_FIELDS and isinstance(value, str)), None
        )
        where = "" if named is None else f" (the one with {json.dumps(named[0])}: {json.dumps(named[1][:60])})"
        super().__init__(f"key {json.dumps(key)} appears twice in one object{where}: only one value would be kept")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKeyError(key, pairs)
        seen.add(key)
    return dict(pairs)


def loads_unique(text: str) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` for an object repeating a key."""
    return json.loads(text, object_pairs_hook=_unique_keys)


def read_json_file(path: str | Path, error: Callable[[str], Exception]) -> Any:
    """The decoded JSON of ``path``; a missing, unreadable or invalid file raises ``error(problem)``
    where ``problem`` says what went wrong (with line and column for invalid JSON). An object that
    repeats a key is refused: one of its values would be lost without a word."""
    try:
        raw = input_text(read_input_bytes(path))  # a byte order mark dropped, as RFC 8259 allows
    except OSError as exc:
        raise error(read_problem(path, exc)) from None
    except NotUtf8Error as exc:
        raise error(str(exc)) from None
    try:
        return loads_unique(raw)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except DuplicateKeyError as exc:
        raise error(str(exc)) from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
        raise error(f"invalid JSON: {_digits_problem(raw, exc)}") from None


def _digits_problem(text: str, exc: ValueError) -> str:
    """Python's words for an integer too long to convert name a setting (sys.set_int_max_str_digits)
    that is no help to a person with a data file: say what and where instead."""
    if "int_max_str_digits" not in str(exc) and "Exceeds the limit" not in str(exc):
        return str(exc)
    limit = sys.get_int_max_str_digits()
    found = re.search(rf"-?\d{{{limit + 1},}}", text)
    if found is None:
        return f"a number of more than {limit} digits"
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return f"a number of {len(found.group().lstrip('-'))} digits at line {line}, column {column} (at most {limit})"
