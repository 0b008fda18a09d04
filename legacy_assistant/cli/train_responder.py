"""``legacy-assistant train-responder CORPUS... --out exported/NAME``: train and export a
generative responder.

Settings come from the defaults (:class:`ResponderTrainingConfig`), then ``--config FILE``, then
the individual flags. Checkpoints go to ``--checkpoint-dir`` (kept, so the run can be resumed or
continued with more epochs); without it, to a temporary directory that is removed once the
model is exported. Ctrl-C stops after the batch in flight, saves a checkpoint and prints the
command that resumes the run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from legacy_assistant.cli import quiet_what_a_stop_left_unused
from legacy_assistant.cli.arguments import SettingFlag, add_setting_flags, home_path, option_path, path_text
from legacy_assistant.cli.corpus_input import read_dialogues
from legacy_assistant.common.terminal import say

log = logging.getLogger(__name__)

COMMAND = "train-responder"
SKIPPING = "skips such dialogues with a warning"
TEMPORARY_PREFIX = "legacy-assistant-responder-"  # a run's checkpoint folder when --checkpoint-dir is left out
PROGRESS_LOG_SECONDS = 30.0  # off a terminal, a training line this often within an epoch
# Flags that decide what is trained: repeated as given in the resume command.
_VALUE_FLAGS = (
    ("format", "--format"),
    ("config", "--config"),
    ("epochs", "--epochs"),
    ("max_minutes", "--max-minutes"),
    ("vocab_size", "--vocab-size"),
    ("seed", "--seed"),
    ("sampled_softmax", "--sampled-softmax"),
)
_SWITCHES = (
    ("force", "--force"),
    ("skip_bad_dialogues", "--skip-bad-dialogues"),
    ("drop_repeated_dialogues", "--drop-repeated-dialogues"),
    ("no_plot", "--no-plot"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    # Only the layout names are needed here; corpora.py imports no TensorFlow.
    from legacy_assistant.responder.corpora import AUTO, LAYOUTS

    parser = subparsers.add_parser(
        COMMAND,
        help="train a generative responder from dialogue corpora and export it",
        description="Train an emotion-conditioned HRED responder on dialogue corpora (cakechat lines, "
        "Topical-Chat JSON, ChatterBot YAML; files or folders) and export it.",
    )
    parser.add_argument("corpora", nargs="+", metavar="CORPUS", help="corpus file or folder of corpus files")
    parser.add_argument(
        "--out", required=True, type=home_path, help="model directory to write, e.g. exported/responder"
    )
    parser.add_argument(
        "--format",
        choices=(AUTO, *LAYOUTS),
        default=AUTO,
        metavar="LAYOUT",  # the choices in the usage line ran past 80 columns: the help lists them
        help=f"layout of the corpora: {', '.join((AUTO, *LAYOUTS))} (default: detect per file)",
    )
    parser.add_argument(
        "--validation",
        nargs="+",
        type=home_path,
        metavar="CORPUS",
        help="held-out corpora for validation perplexity and early stopping "
        "(default: a share of the training dialogues, held_out_fraction)",
    )
    parser.add_argument(
        "--config", type=home_path, help="JSON file of training settings (keys of ResponderTrainingConfig)"
    )
    # a bad value is the flag's usage error, not an error naming only the setting (as if
    # --config had set it)
    add_setting_flags(
        parser,
        _checked,
        [
            SettingFlag("--epochs", "epochs", int, "most epochs"),
            SettingFlag(
                "--max-minutes", "max_minutes", float, "time budget of this run's training, in minutes (0: none)"
            ),
            SettingFlag("--vocab-size", "vocab_size", int, "most token ids, the 4 special ones included"),
            SettingFlag("--seed", "seed", int),
            SettingFlag(
                "--sampled-softmax",
                "sampled_softmax",
                int,
                "train with N sampled classes instead of the full softmax (0: full)",
                metavar="N",
            ),
        ],
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --checkpoint-dir")
    parser.add_argument(
        "--checkpoint-dir",
        type=path_text,
        help="keep checkpoints here (default: a temporary directory, removed after the export)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing model directory of the same kind")
    parser.add_argument(
        "--skip-bad-dialogues",
        action="store_true",
        help="skip malformed dialogues with a warning instead of refusing the corpus",
    )
    parser.add_argument(
        "--drop-repeated-dialogues",
        action="store_true",
        help="train (and validate) on one copy of a dialogue that the corpora hold more than once "
        "(default: every copy; the config key drop_repeated_dialogues)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip history.png")
    parser.set_defaults(run=run)


def _checked(**setting: Any) -> Any:
    """The default training settings with ``setting`` (a flag's value) over them: ConfigError if
    it is not one."""
    from legacy_assistant.responder.config import ResponderTrainingConfig

    return ResponderTrainingConfig(**setting)


def config_from_args(args: argparse.Namespace) -> Any:
    """The defaults, then ``--config``, then the individual flags, each over the one before."""
    from legacy_assistant.responder.config import ResponderTrainingConfig, load_responder_config

    config = load_responder_config(args.config) if args.config else ResponderTrainingConfig()
    return config.with_overrides(
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        vocab_size=args.vocab_size,
        seed=args.seed,
        sampled_softmax=args.sampled_softmax,
        drop_repeated_dialogues=True if args.drop_repeated_dialogues else None,
    )


def resume_command(args: argparse.Namespace, checkpoint_dir: str | Path, exported: bool = False) -> str:
    """The command line that resumes this run from ``checkpoint_dir``; with ``exported``,
    ``--out`` holds a model already (this run's, or another run's written there meanwhile), which
    the resumed run replaces (``--force``)."""
    # the options' paths as they read them back: ./~/run, not ~/run (the home folder's)
    argv = ["legacy-assistant", COMMAND, *args.corpora, "--out", option_path(args.out)]
    if args.validation:
        argv += ["--validation", *map(option_path, args.validation)]
    for name, flag in _VALUE_FLAGS:
        value = getattr(args, name)
        if value is not None and not (name == "format" and value == "auto"):
            argv += [flag, option_path(value) if name == "config" else str(value)]
    argv += [flag for name, flag in _SWITCHES if getattr(args, name) or (name == "force" and exported)]
    argv += ["--checkpoint-dir", option_path(checkpoint_dir), "--resume"]
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    from legacy_assistant.artifacts.directory import RESPONDER_MANIFEST, check_destination, overlaps, refuse_other_kind
    from legacy_assistant.common.optional import require_plots
    from legacy_assistant.errors import ArtifactError, ConfigError

    config = config_from_args(args)
    if args.resume and not args.checkpoint_dir:
        raise ConfigError("--resume needs --checkpoint-dir, the directory of the run to continue")
    if not args.out.strip():  # Path("") is ".", the working directory
        raise ConfigError("--out is an empty path: name a directory")
    out = Path(args.out)
    if args.checkpoint_dir and overlaps(out, args.checkpoint_dir):
        # the export replaces --out: it would take the checkpoints with it
        raise ConfigError(f"--out {out} and --checkpoint-dir {args.checkpoint_dir} must not be one inside the other")
    refuse_other_kind(out, RESPONDER_MANIFEST)  # before "already exists": --force would not help
    if out.is_dir() and not args.force:  # (a file is refused by check_destination, --force or not)
        raise ArtifactError(f"{out} already exists (use --force to replace it)")
    inputs = [*args.corpora, *(args.validation or ()), *([args.config] if args.config else [])]
    check_destination(out, args.force, inputs, writes=RESPONDER_MANIFEST)  # before training, not after
    if not args.no_plot:  # before training, not after
        require_plots("history.png (--no-plot leaves it out)")
    if args.checkpoint_dir:  # before the corpora are read (minutes, for the shipped recipe)
        from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir, mark_temporary
        from legacy_assistant.responder.training import check_checkpoint_dir

        if not Path(args.checkpoint_dir).is_dir():  # refused before the lock makes it (a mistyped --resume)
            check_checkpoint_dir(args.checkpoint_dir, config, args.resume)
        # held to the export's end: a second run is refused (before its corpora are read) by name,
        # not told that the folder "already holds a run", and the printed resume command finds
        # the checkpoints this run left
        with hold_checkpoint_dir(args.checkpoint_dir) as held:
            # named by the user: theirs to keep, whatever made it; a run's folder so even when the
            # command is refused (--resume left out) and tried again, a foreign one left as it is
            if (held / "run.json").is_file():
                mark_temporary(held, False)
            check_checkpoint_dir(args.checkpoint_dir, config, args.resume)
            mark_temporary(held, False)
            return _run(args, config, out)
    return _run(args, config, out)


def _run(args: argparse.Namespace, config: Any, out: Path) -> int:
    strict = not args.skip_bad_dialogues
    dialogues = read_dialogues(args.corpora, args.format, strict, SKIPPING)
    held_out = read_dialogues(args.validation, args.format, strict, SKIPPING) if args.validation else None
    say(
        f"{len(dialogues)} dialogues from {len(args.corpora)} corpus path(s)"
        + (
            f", {len(held_out)} held-out dialogues for validation"
            if held_out is not None
            else f", {config.held_out_fraction:.0%} of them to hold out for validation"
            if config.held_out_fraction
            else ""
        )
    )

    if args.checkpoint_dir is not None:
        return _train_and_export(args, config, out, dialogues, held_out, Path(args.checkpoint_dir), False)
    from legacy_assistant.responder.checkpoint_lock import hold_checkpoint_dir, mark_temporary, remove_abandoned

    # the temporary folder of a run that was killed (kill -9, the out-of-memory killer): nothing
    # else removes it, and the user was never told where it is
    remove_abandoned(Path(tempfile.gettempdir()), TEMPORARY_PREFIX)
    checkpoint_dir = Path(tempfile.mkdtemp(prefix=TEMPORARY_PREFIX))
    # held through the export too, so that no other run takes it for one killed
    with hold_checkpoint_dir(checkpoint_dir):
        mark_temporary(checkpoint_dir, True)
        return _train_and_export(args, config, out, dialogues, held_out, checkpoint_dir, True)


def _train_and_export(
    args: argparse.Namespace,
    config: Any,
    out: Path,
    dialogues: Sequence[Any],
    held_out: Sequence[Any] | None,
    checkpoint_dir: Path,
    temporary: bool,
) -> int:
    """Train into ``checkpoint_dir`` (``temporary``: made for this run, removed after the
    export), export to ``out`` and say what was done, or what to run to resume."""
    from legacy_assistant.artifacts.directory import stops_after_writing, written_before_stop
    from legacy_assistant.responder.checkpoint_lock import mark_temporary

    try:
        model = _train(args, config, dialogues, held_out, checkpoint_dir)
    except KeyboardInterrupt as stop:
        quiet_what_a_stop_left_unused()
        signum = getattr(stop, "signum", signal.SIGINT)  # SIGTERM: a supervisor or `kill`
        word = "interrupted" if signum == signal.SIGINT else "terminated"
        if (checkpoint_dir / "run.json").is_file():
            saved = (
                f"the latest checkpoint is in {checkpoint_dir}"
                if (checkpoint_dir / "checkpoint").is_file()
                else f"no checkpoint yet, the run's settings are in {checkpoint_dir} (a resume starts from step 0)"
            )
            mark_temporary(checkpoint_dir, False)  # printed to resume from: kept
            say(
                f"{word}: {saved}; resume with:\n  {resume_command(args, checkpoint_dir)}",
                file=sys.stderr,
            )
        else:
            say(f"{word} before the first checkpoint; nothing to resume", file=sys.stderr)
            if temporary:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
        return 128 + int(signum)
    except BaseException as exc:
        if temporary:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        elif _resumable_failure(exc, checkpoint_dir):
            # a full disk while a checkpoint is written: the one before it is whole and resumable
            say(
                f"the training failed; the latest checkpoint is in {checkpoint_dir}; resume with:\n"
                f"  {resume_command(args, checkpoint_dir)}",
                file=sys.stderr,
            )
        raise

    try:
        from legacy_assistant.responder.artifact import export_responder_artifact

        path = export_responder_artifact(
            model,
            out,
            force=args.force,
            plot=not args.no_plot,
            sources=args.corpora,
            held_out_sources=args.validation or (),
        )
    except BaseException as exc:
        # The training is done and in its checkpoints: a failed export (a full disk) must not
        # take it along. A resume of the finished run exports it without training again.
        if written_before_stop(exc) is not None:  # the stop came after the model was in place
            if temporary:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
        elif (checkpoint_dir / "checkpoint").is_file():
            what = "failed"
            if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, or SIGTERM taken as one
                what = "was interrupted" if getattr(exc, "signum", signal.SIGINT) == signal.SIGINT else "was terminated"
            mark_temporary(checkpoint_dir, False)  # printed to export from: kept
            # --out was refused when it existed already: one there now was written by another run
            # meanwhile, and the command without --force would be refused as "already exists"
            taken = not args.force and os.path.lexists(out)
            how = (
                f"{out} now holds what another run wrote there: export it to another --out, or over that with"
                if taken
                else "export it with"
            )
            say(
                f"the export {what}; the trained run is kept in {checkpoint_dir}; {how}:\n"
                f"  {resume_command(args, checkpoint_dir, exported=taken)}",
                file=sys.stderr,
            )
        elif temporary:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        raise
    with stops_after_writing(path):  # a stop while a full pipe holds the summary back
        if temporary:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        summary = model.summary
        perplexity = summary.get("val_perplexity")
        say(
            f"trained {summary['epochs_run']} epoch(s), {summary['steps']} steps in {summary['seconds']:.1f}s "
            + ("in all, the runs it resumed included " if args.resume else "")
            + f"(stopped: {summary['stopped']}); vocabulary {summary['vocabulary_size']}, "
            f"conditions {', '.join(summary['conditions'])}"
            + (f"; validation perplexity {perplexity:.2f} ({weights_from(summary)})" if perplexity is not None else "")
        )
        if summary["stopped"] == "time budget" and not temporary:
            say(f"time budget used; to train on: {resume_command(args, checkpoint_dir, exported=True)}")
        say(f"exported to {path}")
    return 0


def _resumable_failure(exc: BaseException, checkpoint_dir: Path) -> bool:
    """Whether a run that ``exc`` ended can be resumed from the checkpoint it left: a failure of
    the system (a full disk, a TensorFlow error), not a refusal of the data or settings, which a
    resume would meet again."""
    from legacy_assistant.errors import AssistantError

    return (
        isinstance(exc, Exception)
        and not isinstance(exc, AssistantError)
        and (checkpoint_dir / "run.json").is_file()
        and (checkpoint_dir / "checkpoint").is_file()
    )


def weights_from(summary: dict[str, Any]) -> str:
    """Which weights a training summary's model holds, in words."""
    end = summary.get("budget_end")
    if summary.get("weights") == "time budget end" and end:
        batches = f"{end['batches']} batch" + ("" if end["batches"] == 1 else "es")
        return f"at the time budget's end: step {end['step']}, {batches} into epoch {end['epoch']}"
    return f"epoch {summary['best_epoch']}"


def _train(
    args: argparse.Namespace,
    config: Any,
    dialogues: Sequence[Any],
    held_out: Sequence[Any] | None,
    checkpoint_dir: Path,
) -> Any:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from legacy_assistant.cli.progress import progress_bar
    from legacy_assistant.responder.training import Progress, train_responder

    # The bar is made on the first report, once the epochs and batches per epoch are known.
    bars: list[tqdm] = []
    shown: dict[str, str] = {}
    logged_at = [time.monotonic()]

    def progress(report: Progress) -> None:
        position = (report.epoch - 1) * report.batches + report.batch
        if not bars:
            bars.append(
                progress_bar(total=report.epochs * report.batches, initial=position - 1, unit="batch", desc="training")
            )
        bar = bars[0]
        shown.update(
            epoch=f"{report.epoch}/{report.epochs}", loss=f"{report.loss:.3f}", ppl=f"{_perplexity(report.loss):.1f}"
        )
        if report.epoch_end is not None and "val_perplexity" in report.epoch_end:
            shown["val_ppl"] = f"{report.epoch_end['val_perplexity']:.2f}"
        bar.set_postfix(shown, refresh=False)
        bar.update(max(position - bar.n, 0))
        # off a terminal there is no bar, and an epoch may take many minutes: a line every 30 s
        if bar.disable and report.epoch_end is None and time.monotonic() - logged_at[0] >= PROGRESS_LOG_SECONDS:
            logged_at[0] = time.monotonic()
            log.info(
                "training: epoch %d/%d, batch %d/%d, step %d, loss %.3f, perplexity %.1f",
                report.epoch,
                report.epochs,
                report.batch,
                report.batches,
                report.step,
                report.loss,
                _perplexity(report.loss),
            )

    try:
        with logging_redirect_tqdm():  # log lines above the bar, not through it
            return train_responder(
                dialogues,
                config,
                held_out=held_out,
                checkpoint_dir=checkpoint_dir,
                resume=args.resume,
                progress=progress,
            )
    finally:
        for bar in bars:
            bar.close()


def _perplexity(loss: float) -> float:
    import math

    return math.exp(min(loss, 700.0))
