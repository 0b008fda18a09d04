"""Accuracy on CLINC150: train and evaluate each preset on each variant, print one table.

For every (variant, preset): train on ``train`` + ``oos_train`` with ``val`` + ``oos_val`` as
validation (threshold tuning, never the test split), export the model, load it as the server
does, and evaluate on ``test`` + ``oos_test``. Columns:

* in-scope acc: top intent over the in-scope test sentences, no threshold;
* @thr in-scope / OOS recall / joint: with the validation-tuned threshold, the in-scope sentences
  answered with their own intent, the out-of-scope sentences sent to the fallback, and accuracy
  over all test sentences with out-of-scope as one more class;
* train s: wall time of training (featurizing included, export excluded);
* size MB: bytes of the exported model directory;
* latency ms: median time of ``Predictor.rank_one`` for one test sentence, the session run with
  ``serve``'s thread settings.

Published figures (Larson et al. 2019) follow as cited rows, and, where scikit-learn is
installed, a TF-IDF + LinearSVC reference measured in the same run.

A variant name may end in ``-no-oos`` or ``-no-oos-no-val`` (e.g. ``full-no-oos``): the model is
then trained without any out-of-scope sentence, as most intent data comes, and its threshold is
calibrated on in-scope sentences only (``TrainingConfig.threshold_from`` "auto"): on the
in-scope ``val`` sentences, or, with ``-no-oos-no-val``, on a hold-out of ``train``. The test
split keeps its out-of-scope sentences, so the table shows what recall such a threshold gets;
a second row shows the same model at the fixed threshold 0.25.

    python benchmarks/accuracy.py [--data-dir DIR] [--variants full,small,imbalanced,full-no-oos]
                                  [--presets ngrams,classic] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legacy_assistant.classifier.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import once, output_file, positive_int, run_main  # noqa: E402

# CLINC150 (CC BY 3.0, clinc/oos-eval) is never copied into the repository; by default it is
# looked for beside the checkout, in ../shared/datasets/clinc150/.
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "datasets" / "clinc150"
VARIANTS = ("full", "small", "imbalanced")
# suffix -> (train with out-of-scope sentences, use the val split); checked longest first
MODES = {"-no-oos-no-val": (False, False), "-no-oos": (False, True), "": (True, True)}
FIXED_THRESHOLD = 0.25  # the comparison row of in-scope-only variants: the threshold they used to keep
OOS = "oos"
# Larson et al. 2019, "An Evaluation Dataset for Intent Classification and Out-of-Scope
# Prediction", Table 2: in-scope accuracy on the full variant.
CITED = (
    ("FastText", 89.0),
    ("SVM", 91.0),
    ("Rasa", 91.5),
    ("DialogFlow", 91.7),
    ("MLP on USE embeddings", 93.5),
    ("BERT", 96.9),
)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def median_latency_ms(predictor, sentences: list[str], calls: int) -> float:
    for sentence in sentences[:20]:
        predictor.rank_one(sentence)
    samples = []
    for i in range(calls):
        sentence = sentences[i % len(sentences)]
        start = time.perf_counter()
        predictor.rank_one(sentence)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


def load_as_served(path: Path) -> Predictor:
    """The exported model at ``path``, loaded with the thread settings ``serve`` gives its
    sessions (one intra-op thread, ops in the calling thread), so that the latency column is
    what a served request pays: TensorFlow's default pools took about twice as long a call."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.serving.settings import DEFAULT_INTER_OP_THREADS, DEFAULT_INTRA_OP_THREADS

    return Predictor.load(path, DEFAULT_INTRA_OP_THREADS, DEFAULT_INTER_OP_THREADS)


def parse_variant(name: str) -> tuple[str, bool, bool]:
    """``full-no-oos`` -> (``full``, with out-of-scope sentences, with the val split)."""
    for suffix, (with_oos, with_val) in MODES.items():
        if suffix and name.endswith(suffix):
            return name[: -len(suffix)], with_oos, with_val
    return name, True, True


def in_scope_only(texts: list[str], labels: list[str]) -> tuple[list[str], list[str]]:
    kept = [i for i, label in enumerate(labels) if label != OOS]
    return [texts[i] for i in kept], [labels[i] for i in kept]


def run_one(path: Path, preset_name: str, calls: int, seed: int | None, variant: str | None = None) -> dict:
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.datasets import load_data, synthesized_intents
    from legacy_assistant.classifier.evaluation import evaluate_predictor
    from legacy_assistant.classifier.presets import preset
    from legacy_assistant.classifier.training import train

    config = preset(preset_name)
    if seed is not None:
        config = config.with_overrides(seed=seed)
    variant = variant or path.stem.removeprefix("data_")
    _, with_oos, with_val = parse_variant(variant)
    data = load_data(path, "clinc", OOS)
    training, validation, test = data.split("train"), data.split("val"), data.split("test")
    train_texts, train_labels = list(training.texts), list(training.labels)
    val: tuple[list[str], list[str]] | None = (list(validation.texts), list(validation.labels))
    if not with_oos:
        train_texts, train_labels = in_scope_only(train_texts, train_labels)
        val = in_scope_only(*val) if with_val and val is not None else None
    started = time.perf_counter()
    model = train(train_texts, train_labels, config, validation=val, oos_label=OOS)
    train_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        out = export_artifact(
            model, synthesized_intents(training.labels, OOS, str(path)), Path(tmp) / "model", plot=False
        )
        size = directory_bytes(out)
        predictor = load_as_served(out)
        try:
            report = evaluate_predictor(predictor, test.texts, test.labels, oos_label=OOS)
            in_scope = [t for t, label in zip(test.texts, test.labels) if label != OOS]
            latency = median_latency_ms(predictor, in_scope, calls)
        finally:
            predictor.close()
    at = report["at_threshold"]
    fixed = next(p for p in report["threshold_curve"] if round(p["threshold"], 2) == FIXED_THRESHOLD)
    return {
        "variant": variant,
        "preset": preset_name,
        "threshold_method": model.summary["threshold_calibration"]["method"],
        "threshold_calibration": model.summary["threshold_calibration"],
        "fixed_threshold": {
            "threshold": FIXED_THRESHOLD,
            "in_scope_accuracy": fixed["in_scope_accuracy"],
            "oos_recall": fixed["oos_recall"],
            "joint_accuracy": fixed["joint_accuracy"],
        },
        "in_scope_accuracy": report["accuracy"],
        "threshold": report["threshold"],
        "threshold_in_scope_accuracy": at["in_scope_accuracy"],
        "threshold_oos_recall": at.get("oos_recall"),
        "threshold_joint_accuracy": at.get("joint_accuracy"),
        "train_seconds": train_seconds,
        "epochs": model.summary["epochs_run"],
        "features": model.summary["features"],
        "model_bytes": size,
        "latency_ms": latency,
        "test_in_scope": report["in_scope_examples"],
        "test_oos": report["oos_examples"],
    }


def sklearn_reference(path: Path) -> dict | None:
    """TF-IDF (word 1-2-grams + character 2-5-grams) + LinearSVC, in-scope only; None without sklearn."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_union
        from sklearn.svm import LinearSVC
    except ImportError:
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    texts, labels = zip(*data["train"])
    test_texts, test_labels = zip(*data["test"])
    started = time.perf_counter()
    vectorizer = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )
    classifier = LinearSVC(C=1.0).fit(vectorizer.fit_transform(texts), labels)
    seconds = time.perf_counter() - started
    predicted = classifier.predict(vectorizer.transform(test_texts))
    accuracy = sum(p == t for p, t in zip(predicted, test_labels)) / len(test_labels)
    return {"variant": path.stem.removeprefix("data_"), "in_scope_accuracy": accuracy, "train_seconds": seconds}


def pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


METHOD_WORDS = {
    "in_scope_validation": "calibrated on in-scope val",
    "in_scope_holdout": "calibrated on a hold-out of train",
    "oos_validation": "tuned on out-of-scope val",
    "fixed": "fixed",
}


def print_table(rows: list[dict], references: list[dict]) -> None:
    print(
        "| data | model | in-scope acc | @thr in-scope | @thr OOS recall | @thr joint | threshold "
        "| train s | size MB | latency ms |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        _, with_oos, _ = parse_variant(r["variant"])
        how = "" if with_oos else f", threshold {METHOD_WORDS.get(r.get('threshold_method', ''), 'as trained')}"
        print(
            f"| {r['variant']} | legacy-assistant `{r['preset']}`{how} (measured) | {pct(r['in_scope_accuracy'])} "
            f"| {pct(r['threshold_in_scope_accuracy'])} | {pct(r['threshold_oos_recall'])} "
            f"| {pct(r['threshold_joint_accuracy'])} | {r['threshold']:.2f} | {r['train_seconds']:.1f} "
            f"| {r['model_bytes'] / 1e6:.1f} | {r['latency_ms']:.2f} |"
        )
        if not with_oos and "fixed_threshold" in r:
            f = r["fixed_threshold"]
            print(
                f"| {r['variant']} | legacy-assistant `{r['preset']}`, fixed threshold (measured, same model) "
                f"| {pct(r['in_scope_accuracy'])} | {pct(f['in_scope_accuracy'])} | {pct(f['oos_recall'])} "
                f"| {pct(f['joint_accuracy'])} | {f['threshold']:.2f} | | | |"
            )
    for r in references:
        print(
            f"| {r['variant']} | TF-IDF + LinearSVC, scikit-learn (measured, reference only) "
            f"| {pct(r['in_scope_accuracy'])} | | | | | {r['train_seconds']:.1f} | | |"
        )
    print("| | **cited, not measured here:** | | | | | | | | |")
    for name, accuracy in CITED:
        print(f"| full | {name} (Larson et al. 2019, Table 2) | {accuracy:.1f} | | | | | | | |")


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"CLINC150 folder (default {DEFAULT_DATA_DIR})"
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated: full, small, imbalanced, each optionally ending in -no-oos or -no-oos-no-val",
    )
    parser.add_argument("--presets", default="ngrams,classic", help="comma-separated preset names")
    parser.add_argument("--seed", type=int, help="override the presets' seed")
    parser.add_argument("--calls", type=positive_int, default=500, help="latency samples per model")
    parser.add_argument("--no-reference", action="store_true", help="skip the scikit-learn reference rows")
    parser.add_argument("--json", type=output_file, help="also write the measured rows here")
    args = parser.parse_args()

    variants = once("--variants", [v.strip() for v in args.variants.split(",") if v.strip()])
    if not variants:
        parser.error(f"no variant given; choose from {', '.join(VARIANTS)}")
    unknown = sorted(v for v in variants if parse_variant(v)[0] not in VARIANTS)
    if unknown:
        parser.error(
            f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}, "
            "each optionally ending in -no-oos or -no-oos-no-val"
        )
    from legacy_assistant.classifier.presets import PRESETS

    presets = once("--presets", [p.strip() for p in args.presets.split(",") if p.strip()])
    unknown = [p for p in presets if p not in PRESETS]
    if unknown or not presets:  # before minutes of training, not after
        parser.error(f"unknown preset(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(PRESETS)}")
    paths = [args.data_dir / f"data_{parse_variant(v)[0]}.json" for v in variants]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(missing)} (pass --data-dir)")

    import logging

    logging.basicConfig(level=logging.WARNING)
    rows, references = [], []
    for variant, path in zip(variants, paths):
        for name in presets:
            print(f"training {name} on {variant} ...", file=sys.stderr, flush=True)
            rows.append(run_one(path, name, args.calls, args.seed, variant))
        if not args.no_reference and parse_variant(variant)[1:] == (True, True):  # in-scope only anyway
            reference = sklearn_reference(path)
            if reference is not None:
                references.append(reference)
    print_table(rows, references)
    print(
        f"\nmachine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; test sets: "
        + ", ".join(
            f"{r['variant']} {r['test_in_scope']} in scope + {r['test_oos']} out of scope"
            for r in rows
            if r["preset"] == rows[0]["preset"]
        )
    )
    if args.json:
        args.json.write_text(json.dumps({"measured": rows, "reference": references}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    run_main(main)
