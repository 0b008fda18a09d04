"""``legacy-assistant info exported/NAME``: verify a model (an intent model or a responder) and
show what it holds."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from legacy_assistant.cli.model_kind import CLASSIFIER_MANIFEST, RESPONDER_MANIFEST, is_responder
from legacy_assistant.common.terminal import visible
from legacy_assistant.errors import ArtifactError, AssistantError

INTENTS_NAMED = 60  # intents named on the intents line; --json gives every one


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="verify a model directory and print what it holds")
    parser.add_argument("model", help="model or responder directory, e.g. exported/default, exported/responder")
    parser.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    parser.add_argument("--no-load", action="store_true", help="check files only; do not load the SavedModel")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    responder = is_responder(args.model)
    show = run_responder if responder else run_classifier
    report = io.StringIO()  # printed only whole: a field that fails halfway must not leave half a report
    try:
        with contextlib.redirect_stdout(report):
            status = show(args)
    except AssistantError:
        raise  # the loaders' own errors say what is wrong already (some are ValueErrors too)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a manifest whose checksum holds but whose descriptive fields were edited into other types
        manifest = RESPONDER_MANIFEST if responder else CLASSIFIER_MANIFEST
        raise ArtifactError(
            f"{Path(args.model) / manifest}: a field does not hold what it should ({type(exc).__name__}: {exc})"
        ) from None
    if sys.stdout is not None:  # None when standard output is closed (`>&-`)
        # outside the manifest's errors: the terminal's are its own. A manifest's text (a name edited
        # by hand, its checksum made again) shows its control characters as escapes; --json's
        # output is JSON, which escapes them itself
        text = report.getvalue()
        sys.stdout.write(text if args.json else visible(text))
    return status


def run_classifier(args: argparse.Namespace) -> int:
    """What an intent model directory holds: intents, features, network, training."""
    from legacy_assistant.artifacts.directory import load_consistently
    from legacy_assistant.classifier.artifact import verify_artifact
    from legacy_assistant.classifier.intents import format_character_problem

    # verified again if it was being replaced meanwhile, as a load is; the load that follows
    # names the words the model reads otherwise today, which this check would name a second time
    info = load_consistently(
        args.model,
        lambda: verify_artifact(args.model, name_old_words=args.no_load),
        manifest_name=CLASSIFIER_MANIFEST,
    )
    if not args.no_load:
        from legacy_assistant.classifier.predictor import Predictor

        Predictor.load(args.model, runtime=info.runtime).close()
    manifest = info.manifest
    summary = {
        "path": str(info.path),
        "name": info.name,
        "kind": "intent",  # a responder's says "responder"
        "created": manifest.get("created"),
        "intents": len(manifest["classes"]),
        "classes": manifest["classes"],
        "features": info.featurizer.n_features,
        "feature_settings": manifest["featurizer"]["config"],
        "network": manifest["network"],
        "threshold": manifest["threshold"],
        "oos_label": manifest.get("oos_label"),
        "training_config": manifest.get("training", {}),  # the settings a rerun needs, the seed included
        "training": manifest.get("summary", {}),
        "source": manifest.get("source", {}),  # the data's file names and sha256
        "runtime": info.runtime,
        "versions": manifest.get("versions", {}),
        "environment": manifest.get("environment", {}),  # what set the kernels it was trained with
        "files": len(manifest["files"]),
        "verified": "checksums ok" + ("" if args.no_load else ", SavedModel loads"),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"model      {summary['name']}  ({summary['path']})")
    print(f"created    {summary['created']}")
    print(f"verified   {summary['verified']} ({summary['files']} files)")
    classes = summary["classes"]
    # a name trained before an invisible character at its end was refused ("greet\u200b") is
    # shown escaped: printed, it looked like the name it does not equal
    named = ", ".join(ascii(name) if format_character_problem(name) else name for name in classes[:INTENTS_NAMED])
    if len(classes) > INTENTS_NAMED:  # a model of a thousand intents made one line of 20,000 characters
        named += f", ... and {len(classes) - INTENTS_NAMED} more (--json lists them all)"
    print(f"intents    {summary['intents']}: {named}")
    text = summary["feature_settings"]["text"]
    print(
        f"features   {summary['features']} ({summary['feature_settings']['weighting']}, "
        f"tokenizer {text['tokenizer']}, stemmer {text['stemmer']})"
    )
    network = summary["network"]
    print(
        f"network    {network['n_features']} -> {' -> '.join(map(str, network['hidden_units']))} -> "
        f"{network['n_classes']} (dropout {network['dropout']})"
        + (", plus a linear shortcut to the logits" if network.get("linear_shortcut") else "")
    )
    print(
        f"threshold  {summary['threshold']}"
        + (f"  (out-of-scope class {summary['oos_label']!r} also falls back)" if summary["oos_label"] else "")
    )
    training = summary["training"]
    if training.get("imported_from"):  # not trained here: no epochs or accuracy to report
        keras = f", Keras {training['keras_version']}" if training.get("keras_version") else ""
        print(f"imported   from a classic model ({training['imported_from']}{keras}); not trained here")
    elif training:
        print(
            f"training   {training.get('epochs_run')} epochs, {training.get('examples')} examples, "
            f"{training.get('seconds', 0):.1f}s, train accuracy {training.get('train_accuracy', 0):.3f}"
            + _seed_part(summary["training_config"], ", ")
        )
        data_line = _data_line(summary["source"])
        if data_line:
            print(f"data       {data_line}")
    print(f"runtime    {summary['runtime']}")
    print("versions   " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()))
    _print_kernels(summary["environment"])
    return 0


def run_responder(args: argparse.Namespace) -> int:
    """What a responder directory holds: vocabulary, conditions, network, training, perplexity."""
    from legacy_assistant.artifacts.directory import load_consistently
    from legacy_assistant.responder.artifact import recorded_condition_pairs, verify_responder

    info = load_consistently(args.model, lambda: verify_responder(args.model), manifest_name=RESPONDER_MANIFEST)
    guided = None  # known once the SavedModel is loaded: whether it has the guided signatures
    if not args.no_load:
        from legacy_assistant.responder.responder import Responder

        with Responder.load(args.model, runtime=info.runtime) as responder:
            guided = responder.guided
    manifest = info.manifest
    training: dict[str, Any] = manifest.get("summary", {})
    summary = {
        "path": str(info.path),
        "name": info.name,
        "kind": "responder",
        "created": manifest.get("created"),
        # reexport-responder rewrote the SavedModel after training: when, and with which versions
        "reexported": manifest.get("reexported"),
        "vocabulary_size": len(info.vocabulary),
        "conditions": list(info.conditions),
        "condition_pairs": recorded_condition_pairs(manifest, info.conditions),
        "spec": info.spec.to_dict(),
        "condition_guidance": guided,
        "training_config": manifest.get("training", {}),
        "training": training,
        "val_perplexity": training.get("val_perplexity"),
        "source": manifest.get("source", {}),
        "runtime": info.runtime,  # what loads it, as an intent model's says: a migrated copy needs tf2
        "versions": manifest.get("versions", {}),
        "environment": manifest.get("environment", {}),
        "files": len(manifest["files"]),
        "verified": "checksums ok" + ("" if args.no_load else ", SavedModel loads"),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    spec = info.spec
    print(f"responder  {summary['name']}  ({summary['path']})")
    print(f"created    {summary['created']}")
    _print_reexported(summary["reexported"])
    print(f"verified   {summary['verified']} ({summary['files']} files)")
    print(f"vocabulary {summary['vocabulary_size']} tokens (4 special)")
    print(f"conditions {_conditions_line(summary['conditions'], summary['condition_pairs'])}")
    print(
        f"network    embedding {spec.embedding_size}, utterance encoder 2x{spec.encoder_units} GRU, "
        f"context {spec.context_units} GRU, decoder {spec.decoder_units} GRU, condition {spec.condition_size}"
    )
    print(
        f"limits     {spec.max_context_turns} context turns of {spec.max_turn_tokens} tokens, "
        f"replies of {spec.max_reply_tokens} tokens (END included)"
    )
    if guided is not None:
        from legacy_assistant.responder.responder import guidance_help

        print(
            "guidance   "
            + ("yes (condition_strength above 0)" if guided else f"none: {guidance_help(info.path, info.runtime)}")
        )
    if training:
        print(
            f"training   {training.get('epochs_run')} epoch(s), {training.get('steps')} steps, "
            f"{training.get('seconds', 0):.1f}s, stopped: {training.get('stopped')}; "
            f"{training.get('train_pairs')} training pairs, {training.get('held_out_pairs')} held out"
            + _seed_part(summary["training_config"], "; ")
        )
    perplexity = summary["val_perplexity"]
    if perplexity is not None:
        from legacy_assistant.cli.train_responder import weights_from

        print(f"perplexity {perplexity:.2f} on the held-out pairs ({weights_from(training)})")
    corpora = summary["source"].get("corpora", [])
    held_out = summary["source"].get("held_out", [])
    if corpora:
        print(f"corpora    {len(corpora)} file(s) for training" + (f", {len(held_out)} held out" if held_out else ""))
    print(f"runtime    {summary['runtime']}")
    print("versions   " + ", ".join(f"{k} {v}" for k, v in summary["versions"].items()))
    _print_kernels(summary["environment"])
    return 0


def _print_reexported(reexported: Any) -> None:
    """A ``reexported`` line where the SavedModel was written again after training: the training
    versions the ``versions`` line shows did not write its graph."""
    if not isinstance(reexported, dict) or not isinstance(reexported.get("at"), str):
        return
    versions = reexported.get("versions")
    written = ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else ""
    print(f"reexported {reexported['at']} (the SavedModel" + (f", with {written})" if written else ")"))


def _print_kernels(environment: Any) -> None:
    """A ``kernels`` line where the model was trained with oneDNN's kernels, which a rerun under
    the default (Eigen's) does not reproduce bit for bit."""
    value = environment.get("TF_ENABLE_ONEDNN_OPTS") if isinstance(environment, dict) else None
    if isinstance(value, str) and value.strip().lower() not in ("", "0", "false"):
        print(f"kernels    trained with TF_ENABLE_ONEDNN_OPTS={value} (oneDNN): a rerun needs it too")


def _seed_part(config: Any, separator: str) -> str:
    """``separator`` and the training seed a manifest's settings record, else nothing."""
    seed = config.get("seed") if isinstance(config, dict) else None
    return f"{separator}seed {seed}" if isinstance(seed, int) and not isinstance(seed, bool) else ""


def _data_line(source: Any) -> str:
    """The training data (and validation data) an intent model's manifest records: each file's
    name and sha256, which tell whether a file at hand is the one the model was trained on."""
    if not isinstance(source, dict):
        return ""
    parts = []
    for key, label in (("data", ""), ("validation", "validation ")):
        record = source.get(key)
        if isinstance(record, dict) and isinstance(record.get("name"), str) and isinstance(record.get("sha256"), str):
            layout = f" ({source['format']})" if key == "data" and isinstance(source.get("format"), str) else ""
            parts.append(f"{label}{record['name']}{layout}, sha256 {record['sha256']}")
    return "; ".join(parts)


def _conditions_line(conditions: list[str], pairs: Any) -> str:
    """The conditions, each with its training replies where the manifest records them; an
    untrained one (cakechat's five are in every model) says so."""
    if not isinstance(pairs, dict):
        return ", ".join(conditions)
    shown = []
    for name in conditions:
        count = pairs.get(name)
        if not isinstance(count, int):
            shown.append(name)
        elif count == 0:
            shown.append(f"{name} (untrained)")
        else:
            shown.append(f"{name} ({count:,})")
    return ", ".join(shown) + " (training replies)"
