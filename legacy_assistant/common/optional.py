"""Optional packages: the extras of ``pyproject.toml`` (``redis``, ``plots``, ``classic``, ``playground``).

The shipped environment (``requirements-tf1compat.txt``) has them all; an install without one
works until the part that needs it is used, which then fails with an error that says what to
install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from legacy_assistant.errors import AssistantError


class MissingPackageError(AssistantError):
    """An optional package that the requested work needs is not installed."""


def require(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingPackageError` naming the extra to install.

    Args:
        module: the top-level module, e.g. ``"matplotlib"``.
        extra: the project's extra that brings it, e.g. ``"plots"``.
        needed_for: what needs it, for the message, e.g. ``"the training history figure"``.
    """
    if module == "matplotlib":
        # matplotlib picks its config and font-cache folder once, at its first import: the
        # fallback for a home this user cannot write must be in place before this import
        from legacy_assistant.common.plots import use_writable_matplotlib_dir

        use_writable_matplotlib_dir()
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # the package is there but something it imports is not
            raise
        raise MissingPackageError(
            f"{needed_for} needs the Python package '{module}', which is not installed: "
            f"pip install 'legacy-assistant[{extra}]' (or pip install {module})"
        ) from None


def require_plots(needed_for: str) -> None:
    """Before work whose output has figures: raise :class:`MissingPackageError` where matplotlib
    is not installed. An installed matplotlib that fails as it is imported (no folder it can
    write its config in) is let through: each figure is then left out with a warning as it is
    drawn, and the report or model it illustrates is written all the same."""
    try:
        require("matplotlib", "plots", needed_for)
    except MissingPackageError:
        raise
    except Exception:  # noqa: BLE001 - said once per figure, where it is not drawn
        pass
