"""Turn a pickled list of strings (the classic ``words.pkl``/``classes.pkl``) into JSON, safely.

Unpickling runs a small stack machine whose ``GLOBAL``/``REDUCE``-style opcodes import and call
anything the file names, so ``pickle.load`` on a file from elsewhere is code execution. Even a
restricted ``Unpickler`` (``find_class`` refusing every global) still runs that machine, in C.
This module never unpickles: :func:`decode_string_list` walks the opcodes with
``pickletools.genops`` (a parser: it reads, it does not execute) and rebuilds the list itself,
accepting only the handful of opcodes a list of strings needs: protocol and frame markers, list
construction, strings, and memo bookkeeping. Any other opcode, a global, a call, a dict, a
number, is refused by name, so the worst a hostile file can do is be rejected.

    python -m legacy_assistant.classifier.classic.pickled_lists words.pkl --out words.json
"""

from __future__ import annotations

import argparse
import codecs
import io
import json
import pickletools
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from legacy_assistant.classifier.classic.string_lists import looks_like_pickle, whole_pickle
from legacy_assistant.common.files import write_text_atomically
from legacy_assistant.common.input_files import read_input_bytes
from legacy_assistant.common.terminal import json_visible, visible

# --help's description, the docstring's first line (which python -OO drops)
DESCRIPTION = "Turn a pickled list of strings (the classic ``words.pkl``/``classes.pkl``) into JSON, safely."
MAX_BYTES = 64 * 1024 * 1024

_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"}
_BYTE_STRINGS = {"SHORT_BINSTRING", "BINSTRING", "STRING"}  # Python 2 str
_PUTS = {"BINPUT", "LONG_BINPUT", "PUT"}
_GETS = {"BINGET", "LONG_BINGET", "GET"}
_MARK = object()


class UnsafePickle(ValueError):
    """The pickle holds something other than a list of strings; it was not run."""


def decode_string_list(data: bytes) -> list[str]:
    """The list of strings encoded in pickle ``data``, without unpickling it.

    Raises:
        UnsafePickle: any opcode outside the list-of-strings subset, or a malformed stream.
        TypeError: ``data`` is not bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        # len() or BytesIO would fail with a message that names neither the argument nor the call
        raise TypeError(f"decode_string_list: data must be bytes, got {type(data).__name__}")
    if len(data) > MAX_BYTES:
        raise UnsafePickle(f"pickle larger than {MAX_BYTES} bytes")
    stack: list = []
    memo: dict[int, object] = {}
    try:
        for opcode, arg, position in _genops(io.BytesIO(data)):
            name = opcode.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "EMPTY_LIST":
                stack.append([])
            elif name == "MARK":
                stack.append(_MARK)
            elif name == "LIST":  # protocol 0: MARK items... LIST
                items = _pop_to_mark(stack, position)
                stack.append(items)
            elif name in _STRINGS:
                stack.append(str(arg))
            elif name in _BYTE_STRINGS:
                stack.append(_python2_text(arg, position))
            elif name == "MEMOIZE":
                memo[len(memo)] = _top(stack, position)
            elif name in _PUTS:
                memo[_memo_key(arg, position)] = _top(stack, position)
            elif name in _GETS:
                key = _memo_key(arg, position)
                if key not in memo:
                    raise UnsafePickle(f"byte {position}: memo key {arg} used before it is set")
                stack.append(memo[key])
            elif name == "APPEND":
                value = stack.pop()
                _list_at(stack, -1, position).append(value)
            elif name == "APPENDS":
                items = _pop_to_mark(stack, position)
                _list_at(stack, -1, position).extend(items)
            elif name == "STOP":
                result = _top(stack, position)
                if not isinstance(result, list) or not all(isinstance(item, str) for item in result):
                    raise UnsafePickle("the pickle does not hold a list of strings")
                _refuse_lone_surrogates(result)
                return list(result)
            else:
                raise UnsafePickle(f"byte {position}: opcode {name} is not part of a list of strings; refused")
    except (ValueError, IndexError) as exc:
        if isinstance(exc, UnsafePickle):
            raise
        raise UnsafePickle(f"malformed pickle: {exc}") from None
    raise UnsafePickle("pickle ends without STOP")


# every opcode by its byte, as pickletools.genops looks them up
_OPCODES = {opcode.code.encode("latin-1"): opcode for opcode in pickletools.opcodes}


def _genops(stream: io.BytesIO) -> Iterator[tuple[pickletools.OpcodeInfo, object, int]]:
    """``pickletools.genops``, except that a protocol 0 ``STRING`` (Python 2's default protocol
    pickling a ``str``) is handed over as its bytes: genops decodes them as ASCII, so a classic
    script's ``"caf\u00e9"`` (``S'caf\\xc3\\xa9'``) stopped the walk as a malformed pickle."""
    while True:
        position = stream.tell()
        code = stream.read(1)
        opcode = _OPCODES.get(code)
        if opcode is None:
            if not code:
                raise ValueError("pickle exhausted before seeing STOP")
            raise ValueError(f"at position {position}, opcode {code!r} unknown")
        if opcode.name == "STRING":
            arg: object = codecs.escape_decode(pickletools.read_stringnl(stream, decode=False))[0]
        else:
            arg = None if opcode.arg is None else opcode.arg.reader(stream)
        yield opcode, arg, position
        if opcode.name == "STOP":
            return


def _python2_text(arg: object, position: int | None) -> str:
    """A Python 2 ``str`` as text. ``pickletools`` hands its bytes over decoded as Latin-1, which
    turned the UTF-8 of a classic script's ``"caf\u00e9"`` into ``"caf\u00c3\u00a9"``: the bytes
    are taken back and read as UTF-8, and bytes that are no UTF-8 are refused, not guessed at."""
    raw = arg if isinstance(arg, bytes) else str(arg).encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafePickle(f"byte {position}: a Python 2 string {ascii(raw[:40])} that is not UTF-8 text") from None


def _refuse_lone_surrogates(items: list[str]) -> None:
    """Python 2 and ``pickle`` (surrogatepass) store a lone surrogate such as ``"\\ud800"``, which
    no UTF-8 file, so no JSON list written from it, can hold: refuse it by item rather than fail
    when writing."""
    for index, item in enumerate(items):
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UnsafePickle(
                f"item #{index} ({ascii(item[:40])}) holds a lone surrogate {ascii(item[exc.start])} "
                f"at character {exc.start}, which no UTF-8 text can hold"
            ) from None


def _memo_key(arg: object, position: int | None) -> int:
    if not isinstance(arg, int):
        raise UnsafePickle(f"byte {position}: memo key {arg!r} is not a number")
    return arg


def _top(stack: list, position: int | None) -> object:
    if not stack or stack[-1] is _MARK:
        raise UnsafePickle(f"byte {position}: empty stack")
    return stack[-1]


def _list_at(stack: list, index: int, position: int | None) -> list:
    if not stack or not isinstance(stack[index], list):
        raise UnsafePickle(f"byte {position}: append to something that is not a list")
    return stack[index]


def _pop_to_mark(stack: list, position: int | None) -> list:
    items: list[object] = []
    while stack:
        value = stack.pop()
        if value is _MARK:
            items.reverse()
            return items
        items.append(value)
    raise UnsafePickle(f"byte {position}: no MARK on the stack")


def _not_a_pickle(raw: bytes, path: str) -> str | None:
    """What to say of a file that is no pickle at all (a JSON list already, or plain text: words
    and classes files ``import-classic`` reads as they are), else ``None``."""
    try:
        items = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        items = None
    if isinstance(items, list) and all(isinstance(item, str) for item in items):
        if Path(path).suffix.lower() in (".pkl", ".pickle"):  # which import-classic refuses by name alone
            return (
                f"not a pickle but a JSON list of {len(items)} strings already, under a pickle's name, which "
                f"import-classic refuses: rename it to {Path(path).with_suffix('.json')} and pass that"
            )
        return f"not a pickle but a JSON list of {len(items)} strings already: pass it to import-classic as it is"
    if looks_like_pickle(raw, path) or whole_pickle(raw):
        return None
    return (
        "not a pickle: import-classic reads a words or classes file of JSON, or of plain text (one per line), as it is"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m legacy_assistant.classifier.classic.pickled_lists", description=DESCRIPTION
    )
    parser.add_argument("pickle", help="pickled list of strings, e.g. words.pkl")
    parser.add_argument("--out", help="JSON file to write (default: print)")
    args = parser.parse_args(argv)
    try:
        raw = read_input_bytes(args.pickle)
    except OSError as exc:
        print(visible(f"error: {args.pickle}: {exc}"), file=sys.stderr)
        return 1
    try:
        items = decode_string_list(raw)
    except UnsafePickle as exc:
        print(visible(f"error: {args.pickle}: {_not_a_pickle(raw, args.pickle) or exc}"), file=sys.stderr)
        return 1
    text = json.dumps(items, indent=1, ensure_ascii=False) + "\n"
    if args.out:
        folder = Path(args.out).parent
        if not folder.is_dir():
            print(visible(f"error: {args.out}: folder {str(folder)!r} does not exist"), file=sys.stderr)
            return 1
        try:
            # whole or not at all: an interrupted write must not leave half a word list
            write_text_atomically(args.out, text)
        except OSError as exc:
            print(visible(f"error: {args.out}: cannot write: {exc.strerror or exc}"), file=sys.stderr)
            return 1
        print(visible(f"wrote {len(items)} strings to {args.out}"))
    else:
        sys.stdout.write(json_visible(text))  # the same JSON, without a raw control character
    return 0


if __name__ == "__main__":
    sys.exit(main())
