"""``legacy-assistant train DATA --out exported/NAME``."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from legacy_assistant.config import TrainingConfig, load_config
from legacy_assistant.errors import ConfigError
from legacy_assistant.features import FeatureConfig
from legacy_assistant.intents import load_intents
from legacy_assistant.text import STEMMERS, TOKENIZERS, TextConfig

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model from an intents file and export it")
    parser.add_argument("data", help="intents JSON file")
    parser.add_argument("--out", required=True, help="model directory to write, e.g. exported/mybot")
    parser.add_argument("--config", help="JSON file of training settings (see TrainingConfig)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--validation-split", type=float, help="fraction of patterns held out, e.g. 0.2")
    parser.add_argument("--patience", type=int, help="early stopping: epochs without validation improvement")
    parser.add_argument("--threshold", type=float, help="fallback below this confidence (stored in the model)")
    parser.add_argument("--stemmer", choices=STEMMERS)
    parser.add_argument("--tokenizer", choices=TOKENIZERS)
    parser.add_argument("--force", action="store_true", help="replace an existing model directory")
    parser.add_argument("--no-plot", action="store_true", help="skip history.png")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainingConfig:
    config = load_config(args.config) if args.config else TrainingConfig()
    if args.stemmer or args.tokenizer:
        text = config.features.text
        text = TextConfig(args.tokenizer or text.tokenizer, args.stemmer or text.stemmer, text.lowercase)
        config = config.with_overrides(features=FeatureConfig(**{**config.features.__dict__, "text": text}))
    try:
        return config.with_overrides(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            validation_split=args.validation_split,
            early_stopping_patience=args.patience,
            threshold=args.threshold,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from legacy_assistant.artifact import export_artifact, sha256_file
    from legacy_assistant.errors import ArtifactError
    from legacy_assistant.training import train

    config = config_from_args(args)
    intents = load_intents(args.data)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ArtifactError(f"{out} already exists (use --force to replace it)")
    texts, tags = intents.examples()
    print(f"{args.data}: {len(intents)} intents, {len(texts)} patterns")

    with tqdm(total=config.epochs, unit="epoch", desc="training", dynamic_ncols=True) as bar:

        def on_epoch(row: dict) -> None:
            shown = {k: f"{v:.4f}" for k, v in row.items() if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
            bar.set_postfix(shown, refresh=False)
            bar.update(1)

        model = train(texts, tags, config, on_epoch=on_epoch)
    source = {"intents": str(args.data), "sha256": sha256_file(Path(args.data))}
    path = export_artifact(model, intents, out, force=args.force, plot=not args.no_plot, source=source)
    summary = model.summary
    print(
        f"trained {summary['epochs_run']} epochs in {summary['seconds']:.1f}s: "
        f"train accuracy {summary['train_accuracy']:.3f}"
        + (f", validation accuracy {summary['val_accuracy']:.3f}" if "val_accuracy" in summary else "")
    )
    print(f"exported to {path}")
    log.debug("summary: %s", json.dumps(summary))
    return 0
