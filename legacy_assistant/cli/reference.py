"""Every command's ``--help``, as docs/CLI.md holds it: ``python -m legacy_assistant.cli.reference``
prints the page, and a test keeps the file equal to it."""

from __future__ import annotations

import argparse
import functools

from legacy_assistant.cli import build_parser

# A fixed width: the page must not depend on the terminal that printed it.
WIDTH = 100

HEADER = """# Command-line reference

Every `legacy-assistant` command and its options, as `legacy-assistant COMMAND --help` prints
them (also `python -m legacy_assistant COMMAND --help`). The guides say when to use which:
[README](../README.md#usage), [CLASSIFIER.md](CLASSIFIER.md), [RESPONDER.md](RESPONDER.md),
[MIGRATION.md](MIGRATION.md), [DEPLOYMENT.md](DEPLOYMENT.md).

<!-- printed by: python -m legacy_assistant.cli.reference -->
"""


def _fixed_width(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = functools.partial(parser.formatter_class, width=WIDTH)  # type: ignore[call-arg]
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public way to list subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def markdown_reference() -> str:
    """The page: the top-level help, then each command's, in the order ``--help`` lists them."""
    parser = _fixed_width(build_parser())
    sections = [HEADER, "## legacy-assistant\n", "```text\n" + parser.format_help().rstrip() + "\n```\n"]
    for name, command in _subcommands(parser).items():
        text = _fixed_width(command).format_help().rstrip()
        sections.append(f"## {name}\n\n```text\n{text}\n```\n")
    return "\n".join(sections)


if __name__ == "__main__":
    argparse.ArgumentParser(description="Print docs/CLI.md: every command's --help.").parse_args()
    print(markdown_reference(), end="")
