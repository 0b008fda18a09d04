"""Reading a file a person named (data, word lists, sentences): regular files only.

A named pipe given as a data file would block ``open`` until some other process writes to it,
so ``train data.fifo`` would wait for ever; ``/dev/zero`` would never end. Both are refused at
once, by what the opened file *is*, not by a check before the open that could see another file.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path

NOT_REGULAR_FILE = "not a regular file (a device, pipe or socket)"


# Byte order marks of the encodings a file saved by an editor may be in instead of UTF-8
# (UTF-32 LE first: it starts with UTF-16 LE's).
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


class NotRegularFileError(OSError):
    """The path names a device, a pipe or a socket: nothing that reads as a whole file."""


class NotUtf8Error(ValueError):
    """A file's bytes are not UTF-8 text; the message is the one problem line to show."""


def read_input_bytes(path: str | Path) -> bytes:
    """The whole content of the regular file at ``path``.

    Raises:
        FileNotFoundError: nothing there (or a symbolic link to nothing).
        IsADirectoryError: a folder.
        NotRegularFileError: a device, a named pipe or a socket.
        OSError: any other failure (no permission, a read error).
    """
    # O_NONBLOCK: opening a pipe that no process writes to returns at once instead of waiting;
    # it changes nothing for a regular file. Windows has neither it nor O_CLOEXEC (its
    # descriptors are not inherited anyway), and needs O_BINARY: a descriptor os.open gives
    # there is in text mode, whose reads turn CRLF into LF and end at a Ctrl-Z byte.
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(errno.EINVAL, NOT_REGULAR_FILE, str(path))
        if nonblocking:
            os.set_blocking(descriptor, True)
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = -1  # the handle closes it now
            return handle.read()
    finally:
        if descriptor >= 0:
            os.close(descriptor)


def absent_file_problem(path: str | Path) -> str:
    """What to say of a ``path`` that is no readable regular file: a folder, a device, a pipe or
    a socket is named as such."""
    path = Path(path)
    if path.is_dir():
        return "is a folder, not a file"
    return f"is {NOT_REGULAR_FILE}" if path.exists() else "file not found"


def read_problem(path: str | Path, exc: OSError) -> str:
    """One line for an ``OSError`` of :func:`read_input_bytes`."""
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotRegularFileError)):
        return absent_file_problem(path)
    return f"cannot read file: {exc}"


def wide_encoding_problem(raw: bytes) -> str | None:
    """The problem of a file that starts with a UTF-16 or UTF-32 byte order mark (read as UTF-8,
    its first byte would be "invalid start byte", which names no cause), or with a NUL byte among
    its first four (such text without one); ``None`` otherwise."""
    wide = next((name for bom, name in _WIDE_BOMS if raw.startswith(bom)), None)
    if wide is not None:
        return f"not UTF-8 text: it starts with a {wide} byte order mark (save it as UTF-8)"
    if b"\x00" in raw.removeprefix(codecs.BOM_UTF8)[:4]:
        # ASCII text in UTF-16 or UTF-32 without a byte order mark is valid UTF-8 with NULs
        # between the characters: JSON read so was "Expecting property name" at column 2, a
        # CSV header had no 'text' column, a words file's words held NULs. No text file starts
        # so (the API's JSON rule too).
        return (
            "not UTF-8 text: a NUL byte among its first characters, as UTF-16 or UTF-32 text saved "
            "without a byte order mark has (save it as UTF-8)"
        )
    return None


def input_text(raw: bytes) -> str:
    """``raw`` as UTF-8 text, a UTF-8 byte order mark dropped.

    Raises:
        NotUtf8Error: a UTF-16 or UTF-32 byte order mark, a NUL byte in the first four (UTF-16 or
            UTF-32 without one; :func:`wide_encoding_problem`), or a byte that is not UTF-8 (named
            by its line).
    """
    wide = wide_encoding_problem(raw)
    if wide is not None:
        raise NotUtf8Error(wide)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise NotUtf8Error(f"line {line}: not UTF-8 text ({exc.reason})") from None
