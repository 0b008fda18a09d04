"""``legacy-assistant reexport-responder DIR``: write a responder's SavedModel again from its own
weights with this version's graph.

A responder exported before condition guidance existed decodes as before but refuses a
``condition_strength`` above 0; exported again it gains the guided signatures. The weights, the
vocabulary and every unguided reply stay the same; the manifest records the re-export under
``reexported``. The directory is replaced atomically.
"""

from __future__ import annotations

import argparse
import logging

from legacy_assistant.cli.model_kind import is_responder, written_for
from legacy_assistant.common.terminal import say
from legacy_assistant.errors import ArtifactError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reexport-responder",
        help="write a responder's SavedModel again from its own weights (adds condition guidance and "
        "seeded sampling that no thread count changes)",
    )
    parser.add_argument("responder", help="responder directory, e.g. exported/responder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not is_responder(args.responder, role="responder"):
        raise ArtifactError(f"{args.responder}: an intent model; only a responder's SavedModel is exported again")
    if written_for(args.responder) != "compat":
        raise ArtifactError(
            f"{args.responder}: a TF2 copy: re-export the compat responder it was migrated from, "
            "then migrate that again"
        )
    from legacy_assistant.artifacts.directory import stops_after_writing
    from legacy_assistant.responder.artifact import reexport_responder_artifact

    path = reexport_responder_artifact(args.responder)
    with stops_after_writing(path):  # a stop while a full pipe holds the line back
        log.info("re-exported %s", path)
        say(path)
    return 0
