"""``legacy-assistant evaluate-responder MODEL CORPUS...``: held-out perplexity against two
baselines, the diversity of the replies, how the condition steers them, and latency.

The baselines are fitted on the model's training corpora: ``--train-corpus``, or by default the
files the manifest names (found by name and sha256 near the evaluated corpora; see
:func:`legacy_assistant.responder.evaluation.find_training_corpora`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legacy_assistant.classifier.config import MAX_SEED
from legacy_assistant.cli.arguments import condition_strength_number, home_path, report_path, whole_number
from legacy_assistant.cli.corpus_input import corpus_error_line, read_dialogues
from legacy_assistant.cli.model_kind import refuse_other_kind, written_for
from legacy_assistant.common.terminal import SaidBeforeWriting, say

if TYPE_CHECKING:
    from legacy_assistant.responder.corpora import Dialogue
    from legacy_assistant.responder.evaluation import EvaluationSettings
    from legacy_assistant.responder.responder import Responder

COMMAND = "evaluate-responder"


def register(subparsers: argparse._SubParsersAction) -> None:
    # Only the layout names are needed here; corpora.py imports no TensorFlow.
    from legacy_assistant.responder.corpora import AUTO, LAYOUTS

    parser = subparsers.add_parser(
        COMMAND,
        help="measure a responder on held-out dialogues",
        description="Measure a responder on held-out dialogue corpora: perplexity next to unigram and bigram "
        "baselines, distinct-1/2 and length of its replies next to the human ones, how often a condition "
        "classifier hears the condition asked for, and latency per decoding mode.",
    )
    parser.add_argument("model", help="responder model directory")
    parser.add_argument("corpora", nargs="+", metavar="CORPUS", help="held-out corpus file or folder")
    parser.add_argument(
        "--format",
        choices=(AUTO, *LAYOUTS),
        default=AUTO,
        metavar="LAYOUT",  # the choices in the usage line ran past 80 columns: the help lists them
        help=f"layout of the corpora: {', '.join((AUTO, *LAYOUTS))} (default: detect per file)",
    )
    parser.add_argument(
        "--out",
        type=report_path,
        help="write the JSON report here, and PNGs next to it (- is standard output: the report alone)",
    )
    parser.add_argument(
        "--train-corpus",
        nargs="+",
        type=home_path,
        metavar="CORPUS",
        help="the model's training corpora, to fit the baselines (default: the files its manifest names, if found)",
    )
    parser.add_argument(
        "--train-format",
        choices=(AUTO, *LAYOUTS),
        default=AUTO,
        metavar="LAYOUT",
        help="layout of the training corpora, as --format's (default: detect per file; --format names the "
        "held-out corpora's)",
    )
    parser.add_argument(
        "--samples",
        type=whole_number(1),
        default=200,
        help="contexts answered for distinct-n and per condition (default 200)",
    )
    parser.add_argument("--max-dialogues", type=whole_number(1), help="use at most this many of the corpus's dialogues")
    parser.add_argument(
        "--seed",
        type=whole_number(0, MAX_SEED),
        default=1,
        help="chooses dialogues and contexts, seeds sampling (default 1)",
    )
    parser.add_argument(
        "--conditions",
        nargs="+",
        metavar="NAME",
        help="conditions to request (default: the conditions the model was trained on); the model's default "
        "condition is decoded too, for the ratios against it",
    )
    parser.add_argument(
        "--latency-replies",
        type=whole_number(0),
        default=50,
        help="timed replies per decoding mode at batch 1 (0: none; default 50)",
    )
    parser.add_argument(
        "--classifier-steps",
        type=whole_number(1),
        default=1500,
        help="optimizer steps of the condition classifier (default 1500, the ngrams preset's)",
    )
    parser.add_argument(
        "--classifier-max-turns",
        type=whole_number(4),
        metavar="N",
        default=50_000,
        help="the condition classifier trains on at most this many of the corpus's turns, a seeded sample, "
        "and is measured on a quarter as many (default 50000; every turn of a large corpus takes gigabytes)",
    )
    parser.add_argument(
        "--condition-strength",
        type=condition_strength_number,
        default=0.0,
        metavar="S",
        help="decode every reply with this condition guidance, 0 (off, the default) to 10",
    )
    parser.add_argument(
        "--skip-bad-dialogues", action="store_true", help="skip malformed dialogues with a warning instead of refusing"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from legacy_assistant.artifacts.directory import RESPONDER_MANIFEST, load_consistently
    from legacy_assistant.errors import AssistantError, ConfigError, DataError
    from legacy_assistant.responder.artifact import verify_responder
    from legacy_assistant.responder.evaluation import (
        EvaluationSettings,
        corpus_role,
        evaluated_dialogues,
        find_training_corpora,
        read_training_corpora,
        summary_lines,
    )
    from legacy_assistant.responder.pairs import dialogue_key
    from legacy_assistant.responder.responder import DecodingOptions, Responder

    refuse_other_kind(args.model, responder=True, instead=f"legacy-assistant evaluate {shlex.quote(args.model)} DATA")
    runtime = written_for(args.model)
    if runtime != "compat":
        # the condition classifier trains in TF1 graph mode, which cannot share a process with TF2
        raise AssistantError(
            f"{args.model}: a responder for the {runtime!r} runtime; evaluate-responder also trains a "
            "condition classifier in TF1 graph mode, so it evaluates compat responders: evaluate the "
            "original ('migrate' checked that this copy decodes the same)"
        )
    # the model's conditions, checked before the corpora are read (a minute on large ones); a
    # responder replaced while it is checked (train-responder --force) is checked again
    model_conditions = load_consistently(
        args.model, lambda: verify_responder(args.model), manifest_name=RESPONDER_MANIFEST
    ).conditions
    cased = [c for c in model_conditions if c != c.strip().lower()]
    if cased:
        # corpora's conditions are read stripped and in lower case: this model's own spelling
        # would never be met, and its turns would be scored under another condition
        raise ConfigError(
            f"{args.model}: condition(s) {', '.join(map(repr, cased))} are not in lower case: the model was "
            "trained before corpus conditions were read in lower case, so its corpora's turns would now be "
            "scored under other conditions; train it again to evaluate it"
        )
    requested = _requested_conditions(args.conditions, model_conditions) if args.conditions else None
    settings = EvaluationSettings(
        samples=args.samples,
        max_dialogues=args.max_dialogues,
        seed=args.seed,
        conditions=requested,
        latency_replies=args.latency_replies,
        classifier_steps=args.classifier_steps,
        classifier_max_turns=args.classifier_max_turns,
    )
    if args.out:  # the report's figures; found missing before the evaluation, not after
        from legacy_assistant.artifacts.directory import check_written_files
        from legacy_assistant.cli.evaluate import report_files
        from legacy_assistant.common.optional import require_plots

        require_plots("the figures written next to --out's report")
        report_paths = report_files(Path(args.out), "-quality.png", "-conditions.png")
        check_written_files(report_paths, args.model, [*args.corpora, *(args.train_corpus or ())])
    dialogues = read_dialogues(
        args.corpora, args.format, not args.skip_bad_dialogues, "evaluates on the other dialogues"
    )
    options = DecodingOptions(condition_strength=args.condition_strength)
    with Responder.load(args.model, options=options) as responder:
        manifest = responder.info.manifest
        missing: list[str] = []
        if args.train_corpus:
            train_paths = [Path(p) for p in args.train_corpus]
        else:
            train_paths, missing = find_training_corpora(manifest, args.corpora)
        if missing:
            say(
                f"warning: {len(missing)} of the model's training file(s) not found near the corpora "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                "the baselines are fitted on the rest" + ("" if train_paths else ": none, so no baselines"),
                file=sys.stderr,
            )
        try:
            train_dialogues = read_training_corpora(train_paths, args.train_format) if train_paths else None
        except DataError as exc:
            unknown_layout = args.train_format == "auto" and any("layout" in problem for problem in exc.problems[:1])
            hint = " (name the training corpora's layout with --train-format)" if unknown_layout else ""
            raise AssistantError(f"training corpus {corpus_error_line(exc)}{hint}") from None
        roles = corpus_role(manifest, args.corpora)
        if roles["training"]:
            say(
                f"warning: {', '.join(roles['training'])} is the model's training data (same sha256): "
                "the figures measure memorisation, not held-out quality",
                file=sys.stderr,
            )
        elif train_dialogues:
            trained_keys = {dialogue_key(d) for d in train_dialogues}
            # the ones --max-dialogues keeps, not the whole corpus: only those are measured
            evaluated = evaluated_dialogues(dialogues, settings)
            shared = sum(1 for d in evaluated if dialogue_key(d) in trained_keys)
            if shared:
                say(
                    f"warning: {shared} of the {len(evaluated)} evaluated dialogue(s) also occur in the model's "
                    "training corpora: the model may have trained on them (the baselines are fitted without "
                    "them), so its figures partly measure memorisation",
                    file=sys.stderr,
                )
        if roles["validation"]:
            say(
                f"note: {', '.join(roles['validation'])} is the model's validation data: it chose the best epoch "
                "(early stopping), so the perplexity is slightly optimistic",
                file=sys.stderr,
            )
        try:
            report = _evaluate_with_bar(responder, dialogues, settings, train_dialogues)
        except DataError as exc:  # a dialogue the model cannot be scored on: one line naming it
            raise AssistantError(f"{exc.source}: {exc.problems[0] if exc.problems else exc}") from None
    report["data"].update(
        corpora=[str(p) for p in args.corpora],
        format=args.format,
        training_files=[str(p) for p in train_paths],
        training_files_missing=missing,
        is_training_data=roles["training"],
        is_validation_data=roles["validation"],
    )
    from legacy_assistant.common.files import names_standard_output

    # a reader that goes away (`... | head`) takes the rest of the summary, not the report;
    # --out /dev/stdout has the report alone there (`| jq`), and the summary on standard error
    said_to = sys.stderr if args.out and names_standard_output(args.out) else None
    summary = SaidBeforeWriting(said_to)
    summary.say(f"{report['model']} on {', '.join(map(str, args.corpora))}")
    for line in summary_lines(report):
        summary.say(line)
    if args.out:
        from legacy_assistant.common.files import is_device_or_pipe, write_text_atomically, write_together
        from legacy_assistant.common.plots import figure_write, plot_responder_conditions, plot_responder_quality

        out = Path(args.out)  # write_together makes its folder, and removes it if stopped
        quality_png = out.with_name(out.stem + "-quality.png")
        conditions_png = out.with_name(out.stem + "-conditions.png")
        text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
        writes: list[tuple[Path, Callable[[Path], object]]] = [
            (quality_png, figure_write(quality_png, lambda path: plot_responder_quality(report, path)))
        ]
        if is_device_or_pipe(out):  # /dev/stdout: the report alone, no figures in /dev
            writes = []
        elif "modes" in report["conditions"]:
            writes.append(
                (conditions_png, figure_write(conditions_png, lambda path: plot_responder_conditions(report, path)))
            )
        else:  # no condition figure this run: one of an earlier run beside the report is removed
            writes.append((conditions_png, _not_drawn))
        # the report last, and nothing new at all where the figures' drawing is interrupted; a
        # figure matplotlib cannot draw is left out with a warning
        written = write_together([*writes, (out, lambda path: write_text_atomically(path, text))])
        summary.raise_if_gone()
        say(f"wrote {', '.join([out.name, *(path.name for path in written[:-1])])} in {out.parent}", file=said_to)
    summary.raise_if_gone()
    return 0


def _evaluate_with_bar(
    responder: Responder,
    dialogues: Sequence[Dialogue],
    settings: EvaluationSettings,
    train_dialogues: Sequence[Dialogue] | None,
) -> dict[str, Any]:
    """:func:`evaluate_responder` with a bar of its parts on a terminal: each part takes from
    seconds to minutes, and under -q nothing else said that the command was at work."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from legacy_assistant.cli.progress import progress_bar
    from legacy_assistant.responder.evaluation import evaluate_responder

    parts = 4 if settings.latency_replies and settings.latency_modes else 3  # perplexity, replies, conditions
    bar = progress_bar(total=parts, unit="part", desc="evaluating")
    begun: list[str] = []

    def stage(name: str) -> None:
        if begun:  # the part before this one is done
            bar.update(1)
        begun.append(name)
        bar.set_description(f"evaluating {name}")

    try:
        with logging_redirect_tqdm():  # the parts' log lines above the bar, not through it
            report = evaluate_responder(responder, dialogues, settings, train_dialogues, stage=stage)
        bar.update(parts - bar.n)
        return report
    finally:
        bar.close()


def _not_drawn(path: Path) -> None:
    """The write of a figure this report has nothing for: :func:`write_together` leaves it out
    and removes an older file of its name."""
    from legacy_assistant.common.files import NotWritten

    raise NotWritten(str(path))


def _requested_conditions(names: list[str], known: tuple[str, ...]) -> tuple[str, ...]:
    """``--conditions`` as the model names them (" Joy" asks for joy, as in every other command),
    each once, in the order given; an unknown one is a :class:`ConfigError`."""
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.responder.modes import known_condition

    chosen: list[str] = []
    unknown: list[str] = []
    for name in names:
        condition = known_condition(name, known)
        if condition is None:
            unknown.append(name)
        elif condition not in chosen:
            chosen.append(condition)
    if unknown:
        raise ConfigError(f"--conditions: unknown {', '.join(unknown)}; the model knows {', '.join(known)}")
    return tuple(chosen)
