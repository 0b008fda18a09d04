"""Read a JSON file, turning every way it can fail into one clear problem line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def absent_file_problem(path: str | Path) -> str:
    """What to say of a ``path`` that is no readable file: a folder is named as one."""
    return "is a folder, not a file" if Path(path).is_dir() else "file not found"


def read_json_file(path: str | Path, error: Callable[[str], Exception]) -> Any:
    """The decoded JSON of ``path``; a missing, unreadable or invalid file raises ``error(problem)``
    where ``problem`` says what went wrong (with line and column for invalid JSON)."""
    try:
        raw = Path(path).read_text(encoding="utf-8-sig")  # a byte order mark, which RFC 8259 lets a parser ignore
    except (FileNotFoundError, IsADirectoryError):
        raise error(absent_file_problem(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read file: {exc}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error("invalid JSON: nested too deeply") from None
    except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
        raise error(f"invalid JSON: {exc}") from None
