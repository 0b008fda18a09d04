"""``legacy-assistant evaluate MODEL DATA``: accuracy, F1, confusions and out-of-scope figures."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from legacy_assistant.classifier.datasets import CLINC_SPLITS, FORMATS
from legacy_assistant.cli.arguments import fraction_number, report_path, whole_number
from legacy_assistant.cli.model_kind import refuse_other_kind, written_for
from legacy_assistant.common.terminal import SaidBeforeWriting, visible

DEFAULT_SPLIT = "test"  # of a CLINC150 file


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="measure a model on held-out labelled sentences")
    parser.add_argument("model", help="model directory")
    parser.add_argument("data", help="intents JSON (its patterns), CSV (text,label header) or CLINC150-layout JSON")
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto", help="layout of DATA (default: detect)")
    parser.add_argument(
        "--split",
        help="CLINC150 split to evaluate, with its oos_ list (default test; other layouts are evaluated whole)",
    )
    parser.add_argument(
        "--out",
        type=report_path,
        help="write the JSON report here, and PNGs next to it (- is standard output: the report alone)",
    )
    parser.add_argument("--threshold", type=fraction_number, help="evaluate at this threshold instead of the model's")
    parser.add_argument(
        "--oos-label",
        help="label of DATA's out-of-scope sentences (default: the model's, else 'oos'); the model's own "
        "out-of-scope class always counts as a fallback",
    )
    parser.add_argument(
        "--top", type=whole_number(low=1), default=10, help="confused pairs and weakest intents to print (default 10)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from legacy_assistant.artifacts.directory import sha256_file
    from legacy_assistant.classifier.datasets import (
        DEFAULT_OOS_LABEL,
        as_printed_classes,
        load_data,
        lookalike_label_problems,
        oos_label_problem,
    )
    from legacy_assistant.classifier.evaluation import (
        evaluate_predictor,
        summary_lines,
        training_file_overlap,
        validation_file_overlap,
    )
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.errors import AssistantError, DataError

    problem = oos_label_problem(args.oos_label) if args.oos_label is not None else None
    if problem:
        raise AssistantError(problem)
    if args.out:  # the report's figures; found missing before the evaluation, not after
        from legacy_assistant.artifacts.directory import check_written_files
        from legacy_assistant.common.optional import require_plots

        require_plots("the figures written next to --out's report")
        check_written_files(report_files(Path(args.out), "-confusion.png", "-thresholds.png"), args.model, [args.data])
    refuse_other_kind(
        args.model, responder=False, instead=f"legacy-assistant evaluate-responder {shlex.quote(args.model)} CORPUS"
    )
    predictor = Predictor.load(args.model, runtime=written_for(args.model))  # evaluate a migrated copy too
    try:
        model_oos = predictor.manifest.get("oos_label")
        oos_label = args.oos_label if args.oos_label is not None else model_oos or DEFAULT_OOS_LABEL
        if args.oos_label is not None and args.oos_label != model_oos and args.oos_label in predictor.classes:
            # its sentences would count as out of scope while the model rightly answers them
            raise AssistantError(
                f"--oos-label {args.oos_label!r} is an in-scope intent of {args.model}: name the label DATA gives "
                "its out-of-scope sentences"
            )
        data = load_data(args.data, args.format, oos_label, held_out=True)
        # "--split val" was ignored without a word; "--split test", the default, stays a no-op
        if data.format != "clinc" and args.split not in (None, DEFAULT_SPLIT):
            known = f"not a CLINC150 split ({', '.join(CLINC_SPLITS)}); " if args.split not in CLINC_SPLITS else ""
            raise AssistantError(
                f"--split {args.split!r}: {known}{args.data} is {'an' if data.format == 'intents' else 'a'} "
                f"{data.format} file, evaluated whole: leave out --split"
            )
        split = DEFAULT_SPLIT if args.split is None else args.split
        examples = data.split(split)
        if not len(examples):  # figures of no sentences would read as a score of 0
            where = f"split {split!r} of {args.data}" if data.format == "clinc" else str(args.data)
            raise AssistantError(f"{where} holds no sentences: nothing to evaluate")
        mislabelled = [i for i, label in enumerate(examples.labels) if label == model_oos and model_oos != oos_label]
        if mislabelled:
            # as an in-scope label, the model's rightful fallbacks on them would count as wrong
            # at the threshold while the raw accuracy counted them as right
            raise DataError(
                str(args.data),
                [
                    f"{examples.place(mislabelled[0])}: label {model_oos!r} ({len(mislabelled)} sentence(s)) is the "
                    f"out-of-scope class of {args.model}, but --oos-label names {oos_label!r}: its sentences would "
                    "count as in scope; give DATA's out-of-scope sentences one label"
                ],
            )
        examples = as_printed_classes(examples, predictor.classes)
        lookalikes = lookalike_label_problems(examples, predictor.classes, oos_label, args.model)
        if lookalikes:  # counted as unknown labels, the model's right answers would all score as wrong
            raise DataError(str(args.data), lookalikes)
        from legacy_assistant.cli.progress import progress_bar

        # a bar of sentences on a terminal: tens of thousands took a minute or more without a sign
        bar = progress_bar(total=len(examples), unit="sentence", desc="evaluating")
        try:
            report = evaluate_predictor(
                predictor,
                examples.texts,
                examples.labels,
                args.threshold,
                oos_label,
                top_confusions=args.top,
                progress=lambda done: bar.update(done - bar.n),
            )
        finally:
            bar.close()
    finally:
        predictor.close()
    report["data"] = {
        "path": str(args.data),
        "format": data.format,
        "split": split if data.format == "clinc" else None,
    }
    data_sha256 = sha256_file(Path(args.data))
    overlap = training_file_overlap(predictor.manifest, data_sha256, data.format, split)
    validated = validation_file_overlap(predictor.manifest, data_sha256, data.format, split)
    report["data"]["training_data"] = overlap is not None
    report["data"]["validation_data"] = validated is not None
    for warning in (overlap, validated):
        if warning:
            print(f"warning: {visible(warning)}", file=sys.stderr)
    # the model's name (its manifest's), the file's name, its labels and sentences may hold
    # control characters: shown as escapes, so that they cannot drive the terminal
    from legacy_assistant.common.files import names_standard_output

    # a reader that goes away (`... | head`) takes the rest of the summary, not the report;
    # --out /dev/stdout has the report alone there (`| jq`), and the summary on standard error
    said_to = sys.stderr if args.out and names_standard_output(args.out) else None
    summary = SaidBeforeWriting(said_to)
    summary.say(f"{predictor.name} on {args.data}" + (f" [{split}]" if data.format == "clinc" else ""))
    for line in summary_lines(report, worst=args.top):
        summary.say(line)
    if args.out:
        from legacy_assistant.common.files import is_device_or_pipe, write_text_atomically, write_together
        from legacy_assistant.common.plots import figure_write, plot_confusions, plot_threshold_curve

        out = Path(args.out)  # write_together makes its folder, and removes it if stopped
        confusion_png = out.with_name(out.stem + "-confusion.png")
        threshold_png = out.with_name(out.stem + "-thresholds.png")
        text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
        # all three or none: the figures take a while to draw, and Ctrl-C then left a new report
        # beside no figures or an older run's
        # a figure matplotlib cannot draw is left out with a warning: the report is written
        drawings = [
            (confusion_png, figure_write(confusion_png, lambda path: plot_confusions(report, path))),
            (threshold_png, figure_write(threshold_png, lambda path: plot_threshold_curve(report, path))),
        ]
        written = write_together(
            [
                *([] if is_device_or_pipe(out) else drawings),  # /dev/stdout: the report alone
                (out, lambda path: write_text_atomically(path, text)),
            ]
        )
        figures = [path.name for path in written[:-1]]
        summary.raise_if_gone()
        print(visible(f"wrote {out}" + (f", {' and '.join(figures)}" if figures else " (no figures)")), file=said_to)
    summary.raise_if_gone()
    return 0


def report_files(out: Path, *figure_suffixes: str) -> list[Path]:
    """The report and the figures written beside it: none beside a device or a pipe (``--out
    /dev/stdout``), whose folder is no place for them."""
    from legacy_assistant.common.files import is_device_or_pipe

    if is_device_or_pipe(out):
        return [out]
    return [out, *(out.with_name(out.stem + suffix) for suffix in figure_suffixes)]
