"""Text from files, models and requests as a terminal is to show it.

An intents file's response, a model's name in its manifest, a corpus line, a file's name or a
request's header may hold an escape sequence (``ESC [ 2 J``, ``OSC 0 ; title BEL``, the 8-bit
CSI U+009B): printed as it is, it drives the terminal (clears the screen, sets the window's
title, changes the colours, or has the terminal answer a query as if the user typed it). A
bidirectional embedding, override or isolate (U+202A to U+202E, U+2066 to U+2069) reorders what
follows it on the line: a reply, a file's name or a log line shown in another order than it has
("Trojan Source"). Those nine are shown as escapes too; the other format characters are not: the
zero-width joiner (U+200D) joins emoji and letters, and the marks U+200E, U+200F and U+061C,
which Hebrew and Arabic text holds, order nothing but themselves.
"""

from __future__ import annotations

import logging
import re
from typing import TextIO

# The bidirectional embeddings and overrides (LRE, RLE, PDF, LRO, RLO) and isolates (LRI, RLI,
# FSI, PDI): exactly these nine, not every format character (category Cf).
_BIDI = "\u202a-\u202e\u2066-\u2069"

# What json.dumps(ensure_ascii=False) leaves unescaped of the controls, and the bidi controls.
_RAW_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")


# The control characters (Unicode category Cc, exactly these) but the tab and the line feed,
# and the bidi controls.
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")


def visible(text: str) -> str:
    """``text`` with each control character but the tab and the line feed, and each bidi control,
    written as its escape (``\\x1b``, ``\\x9b``, ``\\r``, ``\\u202e``). One pattern rather than
    a look at each character's category: every text log line passes here, the access log's on
    the request path."""
    return _CONTROLS.sub(lambda found: ascii(found.group())[1:-1], text)


class VisibleFormatter(logging.Formatter):
    """Wraps a formatter so that the lines it makes show control characters as escapes: a log
    record may carry a file's text or a request's data."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return visible(self.inner.format(record))


def say(*values: object, sep: str = " ", end: str = "\n", file: TextIO | None = None, flush: bool = False) -> None:
    """:func:`print`, the text's control characters made :func:`visible`: for a command's lines
    that name a model, a file or a text that came from one. (JSON printed with
    :func:`json.dumps` holds none: it escapes them itself.)"""
    print(visible(sep.join(map(str, values))), end=end, file=file, flush=flush)


class SaidBeforeWriting:
    """:func:`say` for the lines a command prints before it writes the files it was asked for
    (a report's summary before ``--out``): once the reader of standard output has gone away
    (``... | head``), the lines left are dropped rather than end the command before its files
    are written; :meth:`raise_if_gone` raises that reader's ``BrokenPipeError`` once they are.
    ``file``: where the lines go instead of standard output (standard error, where the report
    itself goes to standard output)."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.gone: BrokenPipeError | None = None
        self.file = file

    def say(self, *values: object) -> None:
        """:func:`say` to standard output (or ``file``), while its reader is there."""
        if self.gone is not None:
            return
        try:
            say(*values, file=self.file)
        except BrokenPipeError as exc:
            self.gone = exc

    def raise_if_gone(self) -> None:
        """Raise the ``BrokenPipeError`` a line met, if one did."""
        if self.gone is not None:
            raise self.gone


def json_visible(text: str) -> str:
    """JSON ``text`` (of :func:`json.dumps` with ``ensure_ascii=False``) with the control
    characters it leaves as they are (DEL and the 8-bit ones, U+007F to U+009F, CSI among them)
    and the bidi controls written as ``\\u`` escapes: the same JSON to a reader, harmless at a
    terminal. JSON holds them only inside its strings, where the escape stands for the character."""
    return _RAW_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
