"""``legacy-assistant``: train, inspect, chat with and serve intent models and generative responders.

Each subcommand lives in its own module with ``register(subparsers)`` and a ``run(args)`` that
returns the exit status. Errors this package raises on purpose are printed as one clear message
(exit status 1), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from compat.selection import UnknownRuntime
from legacy_assistant import __version__
from legacy_assistant.errors import AssistantError

COMMANDS = (
    "train",
    "evaluate",
    "info",
    "chat",
    "serve",
    "golden",
    "migrate",
    "import-classic",
    "train-responder",
    "evaluate-responder",
    "playground",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="legacy-assistant", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"legacy_assistant.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path that cannot be read or written: the system's reason, one line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except UnknownRuntime as exc:  # LEGACY_ASSISTANT_RUNTIME, read when the first model loads
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
