"""``legacy-assistant golden MODEL``: write or check a model's golden predictions."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.errors import AssistantError

DEFAULT_TOLERANCE = 1e-5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("golden", help="write or check golden predictions of a model")
    parser.add_argument("model", help="model directory")
    parser.add_argument("--sentences", help="text file, one sentence per line (write mode)")
    parser.add_argument("--check", action="store_true", help="compare the model with its golden.json instead")
    parser.add_argument("--golden", help="golden file (default: MODEL/golden.json)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE, help="max |Δp| allowed by --check")
    parser.add_argument("--report", help="with --check: also write the comparison as JSON to this file")
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    apply_runtime(args)
    from legacy_assistant.classifier.golden import GOLDEN_FILE, compare_golden, read_golden, read_sentences, write_golden
    from legacy_assistant.classifier.predictor import Predictor

    golden_path = Path(args.golden or Path(args.model) / GOLDEN_FILE)
    predictor = Predictor.load(args.model)
    if args.check:
        if not golden_path.is_file():
            raise AssistantError(f"{golden_path}: golden file not found")
        report = compare_golden(predictor, read_golden(golden_path))
        print(json.dumps(report, indent=2))
        ok = report["max_abs_delta"] <= args.tolerance and not report["mismatches"]
        if args.report:
            Path(args.report).write_text(json.dumps({**report, "ok": ok}, indent=2) + "\n", encoding="utf-8")
        print("golden: OK" if ok else f"golden: FAILED (tolerance {args.tolerance})")
        return 0 if ok else 1
    if not args.sentences:
        raise AssistantError("--sentences is required to write golden predictions")
    sentences = read_sentences(args.sentences)
    write_golden(predictor, sentences, golden_path)
    print(f"wrote {len(sentences)} golden cases to {golden_path}")
    return 0
