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

    def __init__(self, key: str, pairs: list[tuple[str, Any]], at: tuple[int, int] | None = None) -> None:
        self.key = key
        self.pairs = pairs
        self.at = at
        named = next(
            ((field, value) for field, value in pairs if field in _NAMING_FIELDS and isinstance(value, str)), None
        )
        which = [] if at is None else [f"at line {at[0]}, column {at[1]}"]
        if named is not None:
            which.append(f"with {json.dumps(named[0])}: {json.dumps(named[1][:60])}")
        where = f" (the one {', '.join(which)})" if which else ""
        super().__init__(f"key {json.dumps(key)} appears twice in one object{where}: only one value would be kept")

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own rebuilds it from args (the message alone), which __init__ does not take:
        # unpickling raised TypeError, so a process pool or a logging queue handler carrying it broke.
        return type(self), (self.key, self.pairs, self.at), self.__dict__


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKeyError(key, pairs)
        seen.add(key)
    return dict(pairs)


def loads_unique(text: str, locate: bool = False) -> Any:
    """``json.loads`` that raises :class:`DuplicateKeyError` for an object repeating a key; with
    ``locate``, its message names the line and column where that object starts."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except DuplicateKeyError as exc:
        if not locate:
            raise
        raise DuplicateKeyError(exc.key, exc.pairs, _start_of_repeating_object(text)) from None


def _start_of_repeating_object(text: str) -> tuple[int, int] | None:
    """Line and column (from 1) where the first object that repeats a key starts: the text decoded
    again by the pure-Python scanner, whose objects are parsed by a function that knows where each
    starts (the C scanner does not tell). Only on this error's path, so its slowness costs nothing."""
    starts: list[int] = []

    def parse_object(s_and_end: tuple[str, int], *rest: Any) -> Any:
        try:
            return json.decoder.JSONObject(s_and_end, *rest)  # type: ignore[attr-defined]
        except DuplicateKeyError:
            if not starts:  # the innermost object raises first
                starts.append(s_and_end[1] - 1)
            raise

    decoder = json.JSONDecoder(object_pairs_hook=_unique_keys)
    setattr(decoder, "parse_object", parse_object)  # noqa: B010 (an attribute typeshed does not declare)
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        decoder.decode(text)
    except (DuplicateKeyError, RecursionError):
        pass
    if not starts:
        return None
    line = text.count("\n", 0, starts[0]) + 1
    return line, starts[0] - (text.rfind("\n", 0, starts[0]) + 1) + 1


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
        return loads_unique(raw, locate=True)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}{_syntax_hint(exc)}") from None
    except DuplicateKeyError as exc:
        raise error(str(exc)) from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
        raise error(f"invalid JSON: {digits_problem(raw, exc)}") from None


def _syntax_hint(exc: json.JSONDecodeError) -> str:
    """What a hand-written file most likely did where Python's decoder stopped: files written after
    the tutorials (or copied from JavaScript) hold comments, trailing commas and single quotes, which
    Python only reports as "Expecting value" or "Expecting property name"."""
    text, pos = exc.doc, exc.pos
    found = text[pos : pos + 2]
    if found.startswith(("//", "/*", "#")):
        return " (JSON has no comments: remove them)"
    if found[:1] in ("]", "}") and text[:pos].rstrip().endswith(","):
        return " (JSON allows no comma after the last item of a list or object)"
    if found[:1] == "'" and exc.msg.startswith(("Expecting value", "Expecting property name")):
        return " (JSON strings and keys take double quotes)"
    return ""


def digits_problem(text: str, exc: ValueError) -> str:
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
