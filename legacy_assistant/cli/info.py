"""``legacy-assistant info exported/NAME``: verify a model and show what it holds."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="verify a model directory and print what it holds")
    parser.add_argument("model", help="model directory, e.g. exported/default")
    parser.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    parser.add_argument("--no-load", action="store_true", help="check files only; do not load the SavedModel")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from legacy_assistant.classifier.artifact import verify_artifact

    info = verify_artifact(args.model)
    if not args.no_load:
        from legacy_assistant.classifier.predictor import Predictor

        Predictor.load(args.model, runtime=info.runtime).close()
    manifest = info.manifest
    summary = {
        "path": str(info.path),
        "name": info.name,
        "created": manifest.get("created"),
        "intents": len(manifest["classes"]),
        "classes": manifest["classes"],
        "features": info.featurizer.n_features,
        "feature_settings": manifest["featurizer"]["config"],
        "network": manifest["network"],
        "threshold": manifest["threshold"],
        "oos_label": manifest.get("oos_label"),
        "training": manifest.get("summary", {}),
        "runtime": info.runtime,
        "versions": manifest.get("versions", {}),
        "files": len(manifest["files"]),
        "verified": "checksums ok" + ("" if args.no_load else ", SavedModel loads"),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"model      {summary['name']}  ({summary['path']})")
    print(f"created    {summary['created']}")
    print(f"verified   {summary['verified']} ({summary['files']} files)")
    print(f"intents    {summary['intents']}: {', '.join(summary['classes'])}")
    text = summary["feature_settings"]["text"]
    print(f"features   {summary['features']} ({summary['feature_settings']['weighting']}, "
          f"tokenizer {text['tokenizer']}, stemmer {text['stemmer']})")
    network = summary["network"]
    print(f"network    {network['n_features']} -> {' -> '.join(map(str, network['hidden_units']))} -> "
          f"{network['n_classes']} (dropout {network['dropout']})"
          + (", plus a linear shortcut to the logits" if network.get("linear_shortcut") else ""))
    print(f"threshold  {summary['threshold']}"
          + (f"  (out-of-scope class {summary['oos_label']!r} also falls back)" if summary["oos_label"] else ""))
    training = summary["training"]
    if training:
        print(f"training   {training.get('epochs_run')} epochs, {training.get('examples')} examples, "
              f"{training.get('seconds', 0):.1f}s, train accuracy {training.get('train_accuracy', 0):.3f}")
    print(f"runtime    {summary['runtime']}")
    print("versions   " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()))
    return 0
