"""Argument types shared by the subcommands: argparse turns their ``ArgumentTypeError`` into a
usage line and exit status 2, never a traceback."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from legacy_assistant.errors import ConfigError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def whole_number(low: int | None = None, high: int | None = None, bounds: str = "") -> Callable[[str], int]:
    """An argparse ``type`` for an integer in ``[low, high]`` (either end open when ``None``);
    ``bounds`` words the range in the error (default: "at least LOW" / "at most HIGH")."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        for outside, words in (
            (low is not None and value < low, f"at least {low}"),
            (high is not None and value > high, f"at most {high}"),
        ):
            if outside:
                raise argparse.ArgumentTypeError(f"must be {bounds or words}, got {value}")
        return value

    return parse


def seed_number() -> Callable[[str], int]:
    """An argparse ``type`` for a seed: any 64-bit signed integer."""
    return whole_number(INT64_MIN, INT64_MAX, bounds="a 64-bit integer")


def non_negative_number(text: str) -> float:
    """An argparse ``type`` for a finite number >= 0 (a tolerance: NaN would pass every check)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def fraction_number(text: str) -> float:
    """An argparse ``type`` for a confidence threshold: a number from 0 to 1 (refused before any
    model or data is read; NaN would be below every confidence)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


def condition_strength_number(text: str) -> float:
    """An argparse ``type`` for a condition strength: a finite number from 0 to the most the
    responder takes (:data:`legacy_assistant.responder.modes.MAX_CONDITION_STRENGTH`)."""
    from legacy_assistant.responder.modes import MAX_CONDITION_STRENGTH

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= MAX_CONDITION_STRENGTH:  # NaN too
        raise argparse.ArgumentTypeError(f"must be a number from 0 to {MAX_CONDITION_STRENGTH:g}, got {text}")
    return value


def path_text(text: str) -> str:
    """A path that is not blank: an empty ``--out ''`` would otherwise mean "no report" (or the
    working directory) without a word. ``~`` is the home folder, as :func:`home_path` reads it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is an empty path: name a file or a folder")
    return home_path(text)


def report_path(text: str) -> str:
    """A report's ``--out`` (:func:`path_text`), where ``-`` is standard output, as
    ``/dev/stdout`` is: it wrote a file named ``-`` in the working folder, beside figures named
    ``--confusion.png`` that ``rm`` then reads as an option. ``./-`` still names such a file."""
    if text != "-":
        return path_text(text)
    if os.name == "nt":  # no /dev/stdout to write the report to
        raise argparse.ArgumentTypeError("- (standard output) is not available on Windows: name a file")
    return "/dev/stdout"


def home_path(text: str) -> str:
    """An argparse ``type`` for a path whose leading ``~`` (or ``~USER``) is a home folder, as
    serve's settings read one: the shell leaves it alone in ``--out=~/bots/x`` (after an ``=``)
    and in quotes, and ``train`` wrote a folder named ``~`` in the working folder."""
    return os.path.expanduser(text)


def option_path(path: str | Path) -> str:
    """``path`` as an option that reads ``~`` (:func:`home_path`) takes it back, in a command
    line printed for the user: a path that still starts with ``~`` is a relative one (a folder
    named ``~``, given as ``./~/run``, which :class:`~pathlib.Path` shortens to ``~/run``), led
    by ``./`` so that it is not read as the home folder. Not quoted for a shell."""
    text = str(path)
    return f"./{text}" if text.startswith("~") else text


def sender_id(text: str) -> str:
    """An argparse ``type`` for a conversation id that a store can keep: not blank, and valid
    Unicode (no lone surrogate, as bytes that are not UTF-8 become). The chat refused one only at
    its first message, after the model had loaded and the person had typed it. The error never
    repeats the id: it is the key to a transcript."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be blank")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise argparse.ArgumentTypeError("is not valid Unicode text (bytes that are not UTF-8?)") from None
    return text


def setting_flag(field: str, number: Callable[[str], Any], check: Callable[..., Any]) -> Callable[[str], Any]:
    """An argparse ``type`` for a flag that sets the training setting ``field``: the text read by
    ``number`` (``int`` or ``float``), then checked by ``check(field=value)`` (building a config
    with it), whose refusal becomes the flag's usage error (exit status 2, naming the flag) rather
    than an error line naming only the setting, as though a ``--config`` file had set it."""

    def parse(text: str) -> Any:
        try:
            value = number(text)
        except ValueError:
            kind = "a whole number" if number is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        try:
            check(**{field: value})
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return parse


class SettingFlag(NamedTuple):
    """A flag that sets a training setting: ``--epochs`` sets ``epochs``, read by ``number``."""

    flag: str
    field: str
    number: Callable[[str], Any]
    help: str | None = None
    metavar: str | None = None


def add_setting_flags(parser: argparse.ArgumentParser, check: Callable[..., Any], flags: Sequence[SettingFlag]) -> None:
    """Add ``flags`` to ``parser``, each checked as the setting it sets (by ``check``, see
    :func:`setting_flag`) as the command line is read."""
    for flag in flags:
        parser.add_argument(
            flag.flag, type=setting_flag(flag.field, flag.number, check), help=flag.help, metavar=flag.metavar
        )
