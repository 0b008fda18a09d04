"""Errors that are part of the interface: each says what is wrong and where."""

from __future__ import annotations

from typing import Any


class AssistantError(Exception):
    """Base class of every error this package raises on purpose."""


# The message lists this many of a file's problems, then how many more (``problems`` keeps them
# all): a generated file with a fault in every entry gave a message of tens of thousands of lines.
MAX_LISTED_PROBLEMS = 20


def _listed(problems: list[str]) -> str:
    """The first :data:`MAX_LISTED_PROBLEMS` of ``problems``, one ``  - `` line each, then a line
    saying how many more there are."""
    listed = problems[:MAX_LISTED_PROBLEMS]
    lines = "\n".join(f"  - {p}" for p in listed)
    more = len(problems) - len(listed)
    return lines + (f"\n  - ... and {more} more" if more else "")


class IntentsError(AssistantError):
    """An intents file cannot be used. ``problems`` lists every problem found, one per line;
    the message, the first :data:`MAX_LISTED_PROBLEMS` of them."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in intents file:\n{_listed(self.problems)}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own rebuilds it from args (the message alone), which __init__ does not take:
        # unpickling failed, and a process pool whose worker raised it broke instead of raising it.
        return type(self), (self.source, self.problems), self.__dict__


class ArtifactError(AssistantError):
    """A model directory is missing, damaged, or not a legacy-assistant artifact."""


class TrainingError(AssistantError):
    """Training cannot start or cannot finish with the given data and settings."""


class ConfigError(AssistantError, ValueError):
    """A configuration value is invalid."""


class StoreError(AssistantError):
    """The conversation store cannot be reached or refused a read or write."""


class ModelClosed(AssistantError, RuntimeError):
    """A loaded model (a :class:`~legacy_assistant.classifier.predictor.Predictor` or a
    :class:`~legacy_assistant.responder.responder.Responder`), or the assistant that serves them,
    was called after its ``close()`` (also by a call that ``close()`` cut short in another thread):
    it answers nothing any more; load the model again. A ``RuntimeError``, as TensorFlow's own
    refusal of a closed session is."""


class ReadingStopped(AssistantError, ConnectionAbortedError):
    """The server, stopping, stopped reading a request whose body had not all arrived: its
    client may send it again (to another instance, or once the server is back)."""


class DataError(AssistantError):
    """A data file (CSV or CLINC150-style JSON) cannot be used. ``problems`` lists what is wrong,
    each naming the line or the entry; the message, the first :data:`MAX_LISTED_PROBLEMS` of them."""

    MAX_LISTED = MAX_LISTED_PROBLEMS  # kept for code that read it here

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in data file:\n{_listed(self.problems)}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own rebuilds it from args (the message alone), which __init__ does not take:
        # unpickling failed, and a process pool whose worker raised it broke instead of raising it.
        return type(self), (self.source, self.problems), self.__dict__


class RequestError(AssistantError, ValueError):
    """A call to a loaded model cannot be answered as asked: an unknown condition or decoding
    mode, an empty context, an option out of range. The caller's mistake, not the model's.

    ``public_message``, when set, is what a client of the HTTP API is told instead of the
    message, which may name what only the server's operator can do."""

    public_message: str | None = None


class MessageIdReused(RequestError):
    """A chat turn's ``message_id`` names a stored turn of another message: a resend carries the
    same message, so this is a different one under an id already taken, neither a replay nor a
    new turn."""


class GuidanceUnavailable(RequestError):
    """A condition guidance strength above 0 asked of a responder whose SavedModel predates
    guidance; the message names the command that adds it."""

    public_message = "condition_strength above 0 is not available: this server's responder has no condition guidance"
