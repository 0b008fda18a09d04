"""``legacy-assistant import-classic MODEL.h5 --words W --classes C --intents I --out exported/NAME``."""

from __future__ import annotations

import argparse

from legacy_assistant.classifier.config import DEFAULT_THRESHOLD
from legacy_assistant.cli.arguments import fraction_number, home_path
from legacy_assistant.common.terminal import say


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-classic", help="import a classic Keras chatbot (.h5 + words + classes + intents), no pickles"
    )
    parser.add_argument("model", help="Keras HDF5 file, e.g. chatbot_model.h5 (model.save or save_weights)")
    parser.add_argument(
        "--words", required=True, type=home_path, help="words: JSON list or one per line (not a pickle)"
    )
    parser.add_argument(
        "--classes", required=True, type=home_path, help="classes: JSON list or one per line (not a pickle)"
    )
    parser.add_argument(
        "--intents", required=True, type=home_path, help="the intents JSON file the model was trained on"
    )
    parser.add_argument("--out", required=True, type=home_path, help="model directory to write, e.g. exported/classic")
    parser.add_argument(
        "--threshold", type=fraction_number, default=DEFAULT_THRESHOLD, help="fallback below this confidence"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing model directory of the same kind")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from legacy_assistant.artifacts.directory import CLASSIFIER_MANIFEST, check_destination, stops_after_writing
    from legacy_assistant.classifier.classic.importer import import_classic

    check_destination(
        args.out, args.force, [args.model, args.words, args.classes, args.intents], writes=CLASSIFIER_MANIFEST
    )
    path = import_classic(
        args.model, args.words, args.classes, args.intents, args.out, threshold=args.threshold, force=args.force
    )
    with stops_after_writing(path):  # a stop while a full pipe holds the line back
        say(f"imported {args.model} -> {path} (compat runtime; 'legacy-assistant migrate' makes a TF2 copy)")
    return 0
