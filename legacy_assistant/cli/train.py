"""``legacy-assistant train DATA --out exported/NAME``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

from legacy_assistant.classifier.config import THRESHOLD_FROM, TrainingConfig, load_config
from legacy_assistant.classifier.datasets import DEFAULT_OOS_LABEL, FORMATS
from legacy_assistant.classifier.features import FeatureConfig
from legacy_assistant.classifier.intents import IntentSet
from legacy_assistant.classifier.presets import DEFAULT_PRESET, PRESETS, preset
from legacy_assistant.cli.arguments import SettingFlag, add_setting_flags, fraction_number, home_path
from legacy_assistant.common.fields import threshold_text
from legacy_assistant.common.optional import require_plots
from legacy_assistant.common.terminal import say
from legacy_assistant.errors import AssistantError, ConfigError, IntentsError, TrainingError
from legacy_assistant.text.processing import STEMMERS, TOKENIZERS, TextConfig

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model from an intents file, a CSV or a CLINC150-style file and export it"
    )
    parser.add_argument("data", help="intents JSON, CSV (text,label header) or CLINC150-layout JSON")
    parser.add_argument("--out", required=True, type=home_path, help="model directory to write, e.g. exported/mybot")
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto", help="layout of DATA (default: detect)")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help=f"training recipe (default {DEFAULT_PRESET}; 'classic' is the classic TF1 recipe)",
    )
    parser.add_argument("--config", type=home_path, help="JSON file of training settings applied over the preset")
    parser.add_argument(
        "--validation-data", type=home_path, help="held-out examples (any layout) for early stopping and the threshold"
    )
    parser.add_argument(
        "--validation-format",
        choices=("auto", *FORMATS),
        default="auto",
        help="layout of --validation-data (default: detect)",
    )
    parser.add_argument(
        "--oos-label", default=DEFAULT_OOS_LABEL, help=f"label of out-of-scope examples (default {DEFAULT_OOS_LABEL!r})"
    )
    parser.add_argument(
        "--no-oos-class",
        action="store_true",
        help="do not learn out-of-scope training examples as a class (leave them out)",
    )
    # a bad value is the flag's usage error, not an error naming only the setting (as if
    # --config had set it)
    add_setting_flags(
        parser,
        TrainingConfig,
        [
            SettingFlag("--epochs", "epochs", int, "train exactly this many epochs (sets min_steps to 0)"),
            SettingFlag("--batch-size", "batch_size", int),
            SettingFlag("--learning-rate", "learning_rate", float),
            SettingFlag("--seed", "seed", int),
            SettingFlag(
                "--validation-split", "validation_split", float, "fraction of training examples held out, e.g. 0.2"
            ),
            SettingFlag(
                "--patience", "early_stopping_patience", int, "early stopping: epochs without validation improvement"
            ),
        ],
    )
    parser.add_argument(
        "--threshold",
        type=fraction_number,
        help="fallback below this confidence (stored in the model; no tuning or calibration)",
    )
    parser.add_argument(
        "--threshold-from",
        choices=THRESHOLD_FROM,
        metavar="HOW",  # the choices in the usage line ran past 80 columns: the help lists them
        help=f"how the threshold is chosen: {', '.join(THRESHOLD_FROM)} (default auto: out-of-scope validation "
        "data, else in-scope calibration, else the fixed threshold)",
    )
    parser.add_argument(
        "--stemmer",
        choices=STEMMERS,
        help="stem words by English rules (snowball is English Snowball), or not at all: none (default: the "
        "preset's, ngrams none, classic lancaster); for patterns in other languages, none",
    )
    parser.add_argument(
        "--tokenizer",
        choices=TOKENIZERS,
        metavar="NAME",
        help=f"how text is split into words: {', '.join(TOKENIZERS)} (default treebank); unicode also splits off "
        "punctuation outside ASCII and makes each Chinese or Japanese character a word",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing model directory of the same kind")
    parser.add_argument("--no-plot", action="store_true", help="skip history.png")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    """The preset, then ``--config``, then the individual flags, each over the one before."""
    base = preset(getattr(args, "preset", None) or DEFAULT_PRESET)
    config = load_config(args.config, base) if args.config else base
    if args.stemmer or args.tokenizer:
        text = config.features.text
        text = TextConfig(args.tokenizer or text.tokenizer, args.stemmer or text.stemmer, text.lowercase)
        config = config.with_overrides(features=FeatureConfig(**{**config.features.__dict__, "text": text}))
    threshold_from = getattr(args, "threshold_from", None)
    if args.threshold is not None and threshold_from not in (None, "fixed"):
        # --threshold fixes the threshold: a method of choosing it as well would be ignored
        raise ConfigError(
            f"--threshold {args.threshold:g} fixes the threshold and --threshold-from {threshold_from} chooses it: "
            "give one of them"
        )
    try:
        return config.with_overrides(
            epochs=args.epochs,
            min_steps=0 if args.epochs is not None else None,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            validation_split=args.validation_split,
            early_stopping_patience=args.patience,
            threshold=args.threshold,
            threshold_from="fixed" if args.threshold is not None else threshold_from,
            oos_class=False if getattr(args, "no_oos_class", False) else None,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def threshold_line(threshold: float, summary: dict) -> str:
    """How the model's fallback threshold was chosen, in one line."""
    tuning = summary.get("threshold_tuning")
    if tuning:
        return (
            f"threshold {threshold_text(threshold)}, tuned on validation: in-scope accuracy "
            f"{tuning['in_scope_accuracy']:.3f}, out-of-scope recall {tuning['oos_recall']:.3f}"
        )
    chosen = summary.get("threshold_calibration") or {}
    if chosen.get("method") in ("in_scope_validation", "in_scope_holdout"):
        where = (
            f"a {chosen['holdout']:.0%} hold-out of the training data"
            if chosen["method"] == "in_scope_holdout"
            else "the validation data"
        )
        return (
            f"threshold {threshold_text(threshold)}, calibrated on {chosen['sentences']} in-scope sentences of "
            f"{where}: "
            f"{chosen['fallback_share']:.1%} of them fall back (target at most {chosen['fallback_rate']:.1%}), "
            f"accuracy {chosen['accuracy']:.3f} -> {chosen['accuracy_at_threshold']:.3f}"
        )
    if chosen.get("reason"):
        return f"threshold {threshold_text(threshold)}, fixed: {chosen['reason']}"
    return f"threshold {threshold_text(threshold)}"


def unlearnable_error(tags: list[str], intents: IntentSet | None, training_name: str) -> AssistantError:
    """The refusal of intents no pattern of which holds a word the classifier keeps, naming the
    file and, for an intents file, each intent's index and tag and the field, like every other
    intents-file problem; for a CSV or CLINC150 file, the file and the labels."""
    from legacy_assistant.classifier.training import UNLEARNABLE

    index = {tag: i for i, tag in enumerate(intents.tags)} if intents is not None else {}
    if intents is None or not all(tag in index for tag in tags):
        return TrainingError(
            f"{training_name}: label(s) {', '.join(map(repr, tags))}: no example holds a word the classifier "
            "keeps (only punctuation or emoji, or words too rare for min_count); give them examples with words"
        )
    problems = [
        f"intent #{index[tag]} ({tag!r}): field 'patterns': " + UNLEARNABLE.format(them="it")
        for tag in sorted(tags, key=index.__getitem__)
    ]
    return IntentsError(intents.source, problems)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from legacy_assistant.artifacts.directory import (
        CLASSIFIER_MANIFEST,
        check_destination,
        file_record,
        refuse_other_kind,
        stops_after_writing,
    )
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.datasets import (
        load_data,
        oos_label_problem,
        synthesized_intents,
        unseen_label_problems,
    )
    from legacy_assistant.classifier.training import UnlearnableIntentsError, train
    from legacy_assistant.cli.progress import progress_bar
    from legacy_assistant.errors import ArtifactError, DataError

    problem = oos_label_problem(args.oos_label)
    if problem:  # the model would hold a class no load accepts
        raise ConfigError(problem)
    config = config_from_args(args)
    if not args.no_plot:  # before hours of training, not after
        require_plots("history.png (--no-plot leaves it out)")
    if not args.out.strip():  # Path("") is ".", the working directory
        raise ArtifactError("--out is an empty path: name a directory")
    out = Path(args.out)
    refuse_other_kind(out, CLASSIFIER_MANIFEST)  # before "already exists": --force would not help
    if out.is_dir() and not args.force:  # (a file is refused by check_destination, --force or not)
        raise ArtifactError(f"{out} already exists (use --force to replace it)")
    inputs = [
        args.data,
        *([args.validation_data] if args.validation_data else []),
        *([args.config] if args.config else []),
    ]
    check_destination(out, args.force, inputs, writes=CLASSIFIER_MANIFEST)  # before training, not after
    data = load_data(args.data, args.format, args.oos_label)
    training = data.split("train")
    training_name = f"split 'train' of {args.data}" if data.format == "clinc" else str(args.data)
    validation = None
    validation_name = "the validation data"
    if args.validation_data:
        held = load_data(
            args.validation_data, getattr(args, "validation_format", "auto"), args.oos_label, held_out=True
        )
        validation = held.split("val")
        validation_name = (
            f"split 'val' of {args.validation_data}" if held.format == "clinc" else str(args.validation_data)
        )
    elif data.format == "clinc" and "val" in data.splits:
        validation = data.split("val")
        validation_name = f"split 'val' of {args.data}"
    if validation is not None:  # named by file and row here; training would only list the labels
        held_path = args.validation_data or args.data
        unseen = unseen_label_problems(validation, sorted(set(training.labels)), args.oos_label, training_name)
        if unseen:
            raise DataError(str(held_path), unseen)
    intents = data.intents or synthesized_intents(training.labels, args.oos_label, data.path)
    n_oos = sum(label == args.oos_label for label in training.labels)
    if n_oos and not config.oos_class:  # left out of training (oos_class off): not what it trains on
        kept = [label for label in training.labels if label != args.oos_label]
        counts = f"{len(set(kept))} labels, {len(kept)} training examples ({n_oos} out of scope left out)"
    else:
        counts = f"{len(set(training.labels))} labels, {len(training)} training examples" + (
            f" ({n_oos} out of scope)" if n_oos else ""
        )
    say(
        f"{args.data} ({data.format}): {counts}"
        + (f", {len(validation)} validation examples" if validation is not None else "")
    )

    # The bar is made once training knows how many epochs it will run: a bar made before that
    # would print a stray "0/1" line first.
    bars: list[tqdm] = []
    stage = ["training"]  # a hold-out network for the threshold may come first

    def on_stage(name: str) -> None:
        stage[0] = name

    def on_start(epochs: int) -> None:
        bars.append(progress_bar(total=epochs, unit="epoch", desc=stage[0]))

    logged_at = [time.monotonic()]

    def on_epoch(row: dict) -> None:
        shown = {k: f"{v:.4f}" for k, v in row.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
        bar = bars[-1]
        bar.set_postfix(shown, refresh=False)
        bar.update(1)
        # off a terminal there is no bar (a disabled one counts nothing): the figures go to the
        # log, every 10 s and at the last epoch
        if bar.disable and (row["epoch"] >= (bar.total or 0) or time.monotonic() - logged_at[0] >= 10):
            logged_at[0] = time.monotonic()
            figures = ", ".join(f"{k} {v}" for k, v in shown.items())
            log.info("%s: epoch %d/%d: %s", stage[0], row["epoch"], bar.total or 0, figures)

    try:
        model = train(
            training.texts,
            training.labels,
            config,
            on_epoch=on_epoch,
            validation=(validation.texts, validation.labels) if validation is not None else None,
            on_start=on_start,
            oos_label=args.oos_label,
            on_stage=on_stage,
            names=(training_name, validation_name),
            places=training.places,
        )
    except UnlearnableIntentsError as exc:
        raise unlearnable_error(exc.tags, data.intents, training_name) from None
    finally:
        for bar in bars:
            bar.close()
    source: dict[str, object] = {"data": file_record(args.data), "format": data.format}
    if args.validation_data:
        source["validation"] = file_record(args.validation_data)
    if not args.force and os.path.lexists(out):  # refused above when it was there: made while this one trained
        raise ArtifactError(
            f"{out} appeared while the model was being trained (another run writing there?): nothing was "
            "written; choose another --out (or --force to replace what is there now)"
        )
    path = export_artifact(model, intents, out, force=args.force, plot=not args.no_plot, source=source)
    with stops_after_writing(path):  # a stop while a full pipe holds the summary back
        summary = model.summary
        say(
            f"trained {summary['epochs_run']} epochs in {summary['seconds']:.1f}s: "
            f"train accuracy {summary['train_accuracy']:.3f}"
            + (f", validation accuracy {summary['val_accuracy']:.3f}" if "val_accuracy" in summary else "")
        )
        say(threshold_line(config.threshold if model.threshold is None else model.threshold, summary))
        say(f"exported to {path}")
        log.debug("summary: %s", json.dumps(summary))
    return 0
