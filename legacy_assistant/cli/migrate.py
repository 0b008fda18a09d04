"""``legacy-assistant migrate exported/NAME --out exported/NAME-tf2``: a TF2-native copy of a model.

Runs on the TF2 runtime only (it never imports the TF1 graph-mode runtime): see
:mod:`legacy_assistant.classifier.migration`, and :mod:`legacy_assistant.responder.migration` for
a responder directory (one that holds ``responder.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import TYPE_CHECKING

from legacy_assistant.cli.arguments import home_path, non_negative_number, option_path, whole_number
from legacy_assistant.common.terminal import say
from legacy_assistant.errors import AssistantError

if TYPE_CHECKING:
    from legacy_assistant.classifier.migration import MigrationReport

MAX_PROBES = 1_000_000  # generated sentences; each is a prediction on both runtimes
DEFAULT_PROBES = 500
MAX_CONTEXTS = 1_000_000  # held-out contexts; each is decoded by both runtimes in every checked mode
DEFAULT_CONTEXTS = 200  # legacy_assistant.responder.migration.DEFAULT_CONTEXTS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("migrate", help="write a TF2-native copy of a compat model, checked for parity")
    parser.add_argument("model", help="compat model directory, e.g. exported/default")
    parser.add_argument("--out", required=True, type=home_path, help="directory to write, e.g. exported/default-tf2")
    parser.add_argument("--force", action="store_true", help="replace an existing model directory of the same kind")
    parser.add_argument(
        "--probes",
        type=whole_number(0, MAX_PROBES),
        metavar="N",
        help=f"an intent model: generated sentences checked besides the golden ones (default {DEFAULT_PROBES})",
    )
    parser.add_argument(
        "--tolerance",
        type=non_negative_number,
        default=1e-5,
        help="max |Δp| allowed against the source (a responder: max |Δ log p|)",
    )
    parser.add_argument(
        "--contexts",
        type=whole_number(1, MAX_CONTEXTS),
        metavar="N",
        help=f"a responder: how many held-out contexts both models decode (default {DEFAULT_CONTEXTS})",
    )
    parser.add_argument(
        "--corpus",
        metavar="PATH",
        type=home_path,
        help="a responder: take the contexts from this corpus (default: generated)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from compat.selection import RuntimeConflict
    from legacy_assistant.artifacts.directory import stops_after_writing
    from legacy_assistant.classifier.migration import migrate_artifact
    from legacy_assistant.cli.model_kind import is_responder

    if is_responder(args.model):
        if args.probes is not None:
            raise AssistantError(
                f"{args.model} is a responder: --probes is for an intent model (use --contexts or --corpus)"
            )
        return _run_responder(args)
    for given, option in ((args.corpus, "--corpus"), (args.contexts, "--contexts")):
        if given is not None:
            raise AssistantError(f"{args.model} is an intent model: {option} is for a responder (its parity contexts)")
    probes = DEFAULT_PROBES if args.probes is None else args.probes
    try:
        report = migrate_artifact(args.model, args.out, force=args.force, probes=probes, tolerance=args.tolerance)
    except RuntimeConflict as exc:
        raise AssistantError(str(exc)) from None
    with stops_after_writing(report.target):  # a stop while a full pipe holds the report back
        _print_report(report, args.json)
    return 0


def _run_responder(args: argparse.Namespace) -> int:
    from compat.selection import RuntimeConflict
    from legacy_assistant.artifacts.directory import stops_after_writing
    from legacy_assistant.cli.corpus_input import corpus_error_line
    from legacy_assistant.errors import DataError
    from legacy_assistant.responder.migration import migrate_responder

    try:
        report = migrate_responder(
            args.model,
            args.out,
            force=args.force,
            contexts=DEFAULT_CONTEXTS if args.contexts is None else args.contexts,
            corpus=args.corpus,
            tolerance=args.tolerance,
        )
    except RuntimeConflict as exc:
        raise AssistantError(str(exc)) from None
    except DataError as exc:  # the --corpus: one line, as train-responder and evaluate-responder say it
        raise AssistantError(corpus_error_line(exc)) from None
    with stops_after_writing(report.target):  # a stop while a full pipe holds the report back
        say(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return 0


def _print_report(report: MigrationReport, as_json: bool) -> None:
    """An intent model's migration report, as JSON or for a terminal."""
    if as_json:
        say(json.dumps(report.to_dict(), indent=2))
        return
    say(
        f"migrated {report.source} -> {report.target} (TF2 SavedModel, tensorflow {report.tensorflow}, "
        f"{report.seconds:.1f}s)"
    )
    say(f"  variables: {', '.join(f'{k} {v}' for k, v in report.variables.items())}")
    ref = report.reference
    say(
        f"  vs numpy forward pass: {ref['sentences']} sentences, max |Δp| {ref['max_abs_delta']:.3g}, "
        f"top-1 agreement {ref['top1_agreement']:.0%}"
    )
    if report.golden is not None:
        say(
            f"  vs source golden.json: {report.golden['cases']} cases, max |Δp| {report.golden['max_abs_delta']:.3g}, "
            f"top-1 agreement {report.golden['top1_agreement']:.0%}"
        )
    else:
        say("  source has no golden.json: checked against the numpy forward pass only")
    served = shlex.quote(option_path(report.target))  # ./~/m: a folder named ~, not the home folder
    say(
        f"serve it with: legacy-assistant serve --runtime tf2 --model {served} --no-responder "
        "(or --responder with a migrated responder)"
    )
