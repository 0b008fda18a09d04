"""Write a responder directory's SavedModel again from its own weights, with this version's graph.

    python scripts/reexport_responder.py exported/responder

A responder exported before condition guidance existed decodes as before but refuses
``condition_strength`` above 0; exported again it gains the guided signatures. The weights, the
vocabulary and every unguided reply stay the same; the manifest records the re-export under
``reexported``. The directory is replaced atomically.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("directory", help="a responder directory, e.g. exported/responder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from legacy_assistant.errors import AssistantError
    from legacy_assistant.responder.artifact import reexport_responder_artifact

    try:
        path = reexport_responder_artifact(args.directory)
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logging.info("re-exported %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
