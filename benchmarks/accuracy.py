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
* latency ms: median time of ``Predictor.rank_one`` for one test sentence.

Published figures (Larson et al. 2019) follow as cited rows, and, where scikit-learn is
installed, a TF-IDF + LinearSVC reference measured in the same run.

    python benchmarks/accuracy.py [--data-dir DIR] [--variants full,small,imbalanced]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# CLINC150 (CC BY 3.0, clinc/oos-eval) is never copied into the repository; by default it is
# looked for beside the checkout, in ../shared/datasets/clinc150/.
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "datasets" / "clinc150"
VARIANTS = ("full", "small", "imbalanced")
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


def run_one(path: Path, preset_name: str, calls: int, seed: int | None) -> dict:
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.datasets import load_data, synthesized_intents
    from legacy_assistant.classifier.evaluation import evaluate_predictor
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.classifier.presets import preset
    from legacy_assistant.classifier.training import train

    config = preset(preset_name)
    if seed is not None:
        config = config.with_overrides(seed=seed)
    data = load_data(path, "clinc", OOS)
    training, validation, test = data.split("train"), data.split("val"), data.split("test")
    started = time.perf_counter()
    model = train(
        training.texts, training.labels, config, validation=(validation.texts, validation.labels), oos_label=OOS
    )
    train_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        out = export_artifact(
            model, synthesized_intents(training.labels, OOS, str(path)), Path(tmp) / "model", plot=False
        )
        size = directory_bytes(out)
        predictor = Predictor.load(out)
        try:
            report = evaluate_predictor(predictor, test.texts, test.labels)
            in_scope = [t for t, label in zip(test.texts, test.labels) if label != OOS]
            latency = median_latency_ms(predictor, in_scope, calls)
        finally:
            predictor.close()
    at = report["at_threshold"]
    return {
        "variant": path.stem.removeprefix("data_"),
        "preset": preset_name,
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


def print_table(rows: list[dict], references: list[dict]) -> None:
    print(
        "| data | model | in-scope acc | @thr in-scope | @thr OOS recall | @thr joint | threshold "
        "| train s | size MB | latency ms |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['variant']} | legacy-assistant `{r['preset']}` (measured) | {pct(r['in_scope_accuracy'])} "
            f"| {pct(r['threshold_in_scope_accuracy'])} | {pct(r['threshold_oos_recall'])} "
            f"| {pct(r['threshold_joint_accuracy'])} | {r['threshold']:.2f} | {r['train_seconds']:.1f} "
            f"| {r['model_bytes'] / 1e6:.1f} | {r['latency_ms']:.2f} |"
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=f"CLINC150 folder (default {DEFAULT_DATA_DIR})"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: full, small, imbalanced")
    parser.add_argument("--presets", default="ngrams,classic", help="comma-separated preset names")
    parser.add_argument("--seed", type=int, help="override the presets' seed")
    parser.add_argument("--calls", type=int, default=500, help="latency samples per model")
    parser.add_argument("--no-reference", action="store_true", help="skip the scikit-learn reference rows")
    parser.add_argument("--json", type=Path, help="also write the measured rows here")
    args = parser.parse_args()

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    paths = [args.data_dir / f"data_{v}.json" for v in variants]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"not found: {', '.join(missing)} (pass --data-dir)")

    import logging

    logging.basicConfig(level=logging.WARNING)
    rows, references = [], []
    for path in paths:
        for name in [p.strip() for p in args.presets.split(",") if p.strip()]:
            print(f"training {name} on {path.name} ...", file=sys.stderr, flush=True)
            rows.append(run_one(path, name, args.calls, args.seed))
        if not args.no_reference:
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
    main()
