"""Read the classic recipe's ``words`` and ``classes`` lists from JSON or plain text.

The classic recipe stores them with ``pickle.dump``; loading a pickle can run any code its
author chose, so pickles are refused here, with the way out: convert once with
``python -m legacy_assistant.classifier.classic.pickled_lists words.pkl --out words.json``, which decodes the
pickle's opcodes without unpickling (:mod:`legacy_assistant.classifier.classic.pickled_lists`).
"""

from __future__ import annotations

import ast
import io
import json
import pickletools
import re
from collections import Counter
from pathlib import Path

from legacy_assistant.common.input_files import read_input_bytes, read_problem, wide_encoding_problem
from legacy_assistant.common.jsonfile import digits_problem
from legacy_assistant.errors import ArtifactError

_PICKLE_PROTOCOL_MARK = b"\x80"  # protocol 2+ pickles start with PROTO
_PICKLE_PROTOCOL0_STARTS = (b"(lp", b"(l", b"]q", b"(dp")
# how print() writes a list of strings begins: "['", '["', or Python 2's "[u'"
_PRINTED_LIST_START = re.compile(r"""\[\s*[uUrRbB]{0,2}['"]""")


def looks_like_pickle(head: bytes, path: str | Path) -> bool:
    """Whether a file that begins with ``head`` is a pickle by its first bytes or its name
    (``.pkl``, ``.pickle``): read by nothing here, whatever it holds."""
    return (
        head.startswith(_PICKLE_PROTOCOL_MARK)
        or head.startswith(_PICKLE_PROTOCOL0_STARTS)
        or Path(path).suffix.lower() in (".pkl", ".pickle")
    )


def read_string_list(path: str | Path, what: str) -> list[str]:
    """A JSON array of strings, or one string per line of plain text (blank lines skipped).

    Raises:
        ArtifactError: missing file, a pickle, anything but a list of non-empty strings.
    """
    path = Path(path)
    try:
        raw = read_input_bytes(path)
    except OSError as exc:
        raise ArtifactError(f"{path}: {what} {read_problem(path, exc)}") from None
    if looks_like_pickle(raw, path) or whole_pickle(raw):
        raise ArtifactError(
            f"{path}: looks like a pickle, which is never loaded (it could run code). Convert it once with "
            f"'python -m legacy_assistant.classifier.classic.pickled_lists {path} "
            f"--out {path.with_suffix('.json')}' (decodes, never "
            "unpickles) and pass the JSON file"
        )
    wide = wide_encoding_problem(raw)  # PowerShell 5's "> words.txt" writes UTF-16
    if wide:
        raise ArtifactError(f"{path}: {what} file is {wide}")
    try:
        text = raw.decode("utf-8-sig")  # a byte order mark (editors add one) is no part of the first word
    except UnicodeDecodeError:
        raise ArtifactError(f"{path}: {what} file is neither JSON nor UTF-8 text") from None
    items = _items(text, path, what)
    if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
        raise ArtifactError(f"{path}: {what} must be a list of non-empty strings")
    if not items:
        raise ArtifactError(f"{path}: {what} list is empty")
    for index, item in enumerate(items):
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:  # a JSON escape such as "\\ud800": the model's manifest could not hold it
            raise ArtifactError(
                f"{path}: {what} item #{index} ({ascii(item[:40])}) holds a lone surrogate escape "
                f"{ascii(item[exc.start])}, which is not Unicode text"
            ) from None
    duplicates = sorted(item for item, count in Counter(items).items() if count > 1)
    if duplicates:
        raise ArtifactError(f"{path}: {what} list repeats {', '.join(map(repr, duplicates[:5]))}")
    return items


# How a pickled list or tuple begins, whatever the protocol
_PICKLED_SEQUENCE_STARTS = ("PROTO", "MARK", "EMPTY_LIST", "EMPTY_TUPLE")


def whole_pickle(raw: bytes) -> bool:
    """Whether ``raw`` is one pickle from its first byte to its STOP, read by its opcodes (a
    parser: nothing runs). Catches what the marks above miss: a pickled tuple of protocol 0 or
    1 (``(V...``, ``(X...``), which read as plain text gave a words list of pickle opcodes."""
    if not raw.endswith(b"."):  # STOP; a text file would end with a line break
        return False
    try:
        for opcode, _, position in pickletools.genops(io.BytesIO(raw)):
            if position == 0 and opcode.name not in _PICKLED_SEQUENCE_STARTS:  # "can\nhello\n." parses too
                return False
            if opcode.name == "STOP":
                return position == len(raw) - 1
    except Exception:  # noqa: BLE001 (any way of not parsing is "not a pickle")
        return False
    return False


def _python_list(text: str) -> type | None:
    """The item type (``str``, or ``bytes``: Python 3's print of a Python 2 pickle loaded with
    ``encoding="bytes"``) when ``text`` is one line holding a Python list of strings, as
    ``print(words)`` writes it: read as plain text it was one "word" (or invalid JSON); else
    None. ``ast.literal_eval`` parses literals only; it runs nothing."""
    stripped = text.strip()
    if "\n" in stripped or not (stripped.startswith("[") and stripped.endswith("]")):
        return None
    if not _PRINTED_LIST_START.match(stripped):
        # its first item is no string: parsing a long line of bare words into a syntax tree took
        # seconds and more than a hundred times the file's size in memory, to find no list of
        # strings (a quote further on, as in the classic tokens "'s" and "n't", is no string's)
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, list) or not value:
        return None
    for kind in (str, bytes):
        if all(isinstance(item, kind) for item in value):
            return kind
    return None


def _items(text: str, path: Path, what: str) -> object:
    """The file's items: a JSON value, or its non-blank lines. Classic tokens include "[" and
    "{", so a plain-text list may start with one: text that starts so but is no JSON, and holds
    no double quote (every JSON string has two), is plain text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not text.lstrip().startswith(("[", "{")):
        return lines
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        kind = _python_list(text)
        if kind is bytes:
            raise ArtifactError(
                f"{path}: {what} is a Python list of bytes as print() or str() writes it (b'...'), not JSON: "
                f"decode them and write the list with json.dump([w.decode('utf-8') for w in {what}], file)"
            ) from None
        if kind is str:
            raise ArtifactError(
                f"{path}: {what} is a Python list as print() or str() writes it (quoted with '), not JSON: "
                f"write it with json.dump({what}, file)"
            ) from None
        if '"' not in text:
            return lines
        raise ArtifactError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise ArtifactError(f"{path}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # valid syntax Python refuses: an integer of more than 4,300 digits
        raise ArtifactError(f"{path}: invalid JSON: {digits_problem(text, exc)}") from None
    if isinstance(items, dict):
        # read one word per line, a JSON object would be a "word" or two and fail later, on a count
        raise ArtifactError(
            f"{path}: {what} must be a JSON array of strings or one per line of plain text, got a JSON object"
        )
    return items
