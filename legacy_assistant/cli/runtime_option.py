"""The ``--runtime`` option shared by the commands that load a model."""

from __future__ import annotations

import argparse

from compat.selection import RUNTIMES
from legacy_assistant.errors import AssistantError

RUNTIME_CHOICES = RUNTIMES


def add_runtime_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        choices=RUNTIME_CHOICES,
        help="TensorFlow runtime: compat (TF1 graph mode, models from 'train') or tf2 (eager, models "
        "from 'migrate'); default compat, or $LEGACY_ASSISTANT_RUNTIME",
    )


def apply_runtime(args: argparse.Namespace) -> None:
    """Fix this process's runtime from ``args.runtime`` before any model is loaded."""
    if getattr(args, "runtime", None) is None:
        return
    from compat.selection import RuntimeConflict, select

    try:
        select(args.runtime)
    except RuntimeConflict as exc:
        raise AssistantError(str(exc)) from None
