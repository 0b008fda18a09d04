"""Reading dialogue corpora for a command: one error line for a corpus that cannot be used."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

SKIP_SWITCH = "--skip-bad-dialogues"


def read_dialogues(paths: Sequence[str], layout: str, strict: bool, skipping: str) -> list[Any]:
    """The dialogues of ``paths`` (:func:`legacy_assistant.responder.corpora.read_corpora`).

    A corpus that cannot be used raises :class:`AssistantError` with one line: its first
    problem (with its line or conversation), how many more there are, and, when reading it with
    :data:`SKIP_SWITCH` would succeed, ``skipping`` (what the switch does for this command). A
    missing or unreadable file, or one given twice, gets no such hint: skipping dialogues cannot
    help it.
    """
    from legacy_assistant.errors import AssistantError, DataError
    from legacy_assistant.responder.corpora import RepeatedCorpusError, read_corpora

    try:
        return read_corpora(paths, layout, strict)
    except DataError as exc:
        message = corpus_error_line(exc)
        # a file given twice reads fine on its own: the hint would send the user the wrong way
        if strict and not isinstance(exc, RepeatedCorpusError) and _readable_when_skipping(exc.source, layout):
            message += f"; {SKIP_SWITCH} {skipping}"
        raise AssistantError(message) from None


def corpus_error_line(exc: Any) -> str:
    """A corpus's :class:`~legacy_assistant.errors.DataError` as one line: the file, its first
    problem (with its line or conversation) and how many more there are."""
    problems = exc.problems or ["cannot be used"]
    message = f"{exc.source}: {problems[0]}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    return message


def _readable_when_skipping(source: str, layout: str) -> bool:
    from legacy_assistant.errors import DataError
    from legacy_assistant.responder.corpora import read_corpus

    logging.disable(logging.WARNING)  # the skips were reported above as the error itself
    try:
        read_corpus(source, layout, strict=False)
    except DataError:
        return False
    finally:
        logging.disable(logging.NOTSET)
    return True
