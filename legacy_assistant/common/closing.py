"""Calls on a closed model: refused with :class:`~legacy_assistant.errors.ModelClosed`.

A model's session, once closed, refuses a run with TensorFlow's ``RuntimeError("Attempted to use a
closed Session.")``, which names neither the model nor what to do. :class:`Closing` refuses a
call made after ``close()`` before anything runs, and turns the ``RuntimeError`` of a call that a
``close()`` in another thread cut short into the same error: a caller sees one refusal, whichever
thread closed the model and when.

:class:`ClosedAtExit` gives an object with a ``close()`` the ``with`` block that closes it at the
block's end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

from legacy_assistant.errors import ModelClosed

_Self = TypeVar("_Self", bound="ClosedAtExit")


class ClosedAtExit:
    """``with obj:`` closes ``obj`` as the block ends (its own :meth:`close`, called with no
    arguments)."""

    def close(self) -> None:  # each class's own
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Closing:
    """Whether an object was closed, and the error its calls then raise.

    Args:
        what: names the object in the error (``Responder exported/responder``).
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.closed = False

    def error(self) -> ModelClosed:
        return ModelClosed(f"{self.what}: it is closed (close() was called); load it again to use it")

    def released(self) -> Any:
        """What a closed object keeps in place of a part it let go of (its graph and session, so
        they can be collected while the object itself is still referenced): a call that reads the
        part after :meth:`check` passed, as ``close()`` ran in another thread, raises
        :class:`ModelClosed` too; its ``close()`` does nothing."""
        return _Released(self)

    def check(self) -> None:
        """Raise :class:`ModelClosed` once the object is closed."""
        if self.closed:
            raise self.error()

    @contextlib.contextmanager
    def call(self) -> Iterator[None]:
        """:meth:`check`, then the block; a ``RuntimeError`` the block raises once the object is
        closed (its session closed while the call ran) becomes :class:`ModelClosed`."""
        self.check()
        try:
            yield
        except ModelClosed:
            raise
        except RuntimeError:
            if not self.closed:
                raise
            raise self.error() from None


class _Released:
    """A closed object's stand-in for a part it let go of: see :meth:`Closing.released`."""

    def __init__(self, closing: Closing) -> None:
        self._closing = closing

    def close(self) -> None:
        pass  # closed already

    def __getattr__(self, name: str) -> Any:
        raise self._closing.error()
