"""Read a JSON file, turning every way it can fail into one clear problem line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def absent_file_problem(path: str | Path) -> str:
    """What to say of a ``path`` that is no readable file: a folder is named as one."""
    return "is a folder, not a file" if Path(path).is_dir() else "file not found"


def read_json_file(path: str | Path, error: Callable[[str], Exception]) -> Any:
    """The decoded JSON of ``path``; a missing, unreadable or invalid file raises ``error(problem)``
    where ``problem`` says what went wrong (with line and column for invalid JSON). An object that
    repeats a key is refused: one of its values would be lost without a word."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")  # a byte order mark, which RFC 8259 lets a parser ignore
    except (FileNotFoundError, IsADirectoryError):
        raise error(absent_file_problem(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}") from None
    try:
        return loads_unique(raw)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except DuplicateKeyError as exc:
        raise error(str(exc)) from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
        raise error(f"invalid JSON: {exc}") from None
