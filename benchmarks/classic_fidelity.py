"""Does ``--preset classic`` train like the classic Keras chatbot recipe? Both, side by side.

The recipe (Keras 2): a binary bag of Lancaster-stemmed words -> Dense 128 relu -> Dropout 0.5
-> Dense 64 relu -> Dropout 0.5 -> Dense softmax (glorot-uniform kernels, zero biases);
``SGD(lr=0.01, decay=1e-6, momentum=0.9, nesterov=True)``, categorical cross-entropy,
``fit(epochs=200, batch_size=5)`` (shuffled every epoch). This script trains that model with
the real tf-keras and the project's classic preset on the same sentences, with the same epochs
and seed, and prints both test accuracies and both per-epoch training-loss curves.

Data sets (``--data``, default both):

* ``intents``: the patterns of data/intents.json in 5-fold stratified cross-validation (every
  intent has at least 8 patterns, so each fold tests every intent and trains on at least 6 of
  its patterns). The recipe trains on every pattern and keeps no test set; cross-validation
  tests every pattern once, so one sentence is 0.3 points instead of 1.5 on a 20% split.
  Accuracy is pooled over the folds; the loss curves are the folds' mean.
* ``clinc``: CLINC150 full (``--clinc``, default ../shared/datasets/clinc150/data_full.json
  beside the checkout), in-scope ``train`` (15,000) and ``test`` (4,500): the recipe has no
  out-of-scope class or threshold tuning, so out-of-scope sentences are left out.
  ``--limit N`` keeps the first N intents (alphabetically). 200 epochs of batch 5 are 600,000
  steps. Measured with a core each: the classic preset 1.0 ms a step (3 s an epoch), Keras
  about 2.5 ms (0.25 s for an epoch of 100 steps), so about 30 minutes for 200 epochs when the
  machine is free; on a busy two-core machine Keras took 17 s an epoch (an hour). Measure an
  epoch or two first (``--epochs 2``); both sides run at once, one core each.

The Keras side runs in a child process (this file with ``--keras-child``), so no process of the
project ever imports Keras. It needs tf-keras of TensorFlow's minor release (Keras 2 behaviour
on TF 2.16+): by default pip installs it once, without dependencies, into
build/classic-fidelity/tf-keras (``--keras-dir``); ``--keras-python`` runs the child with
another interpreter (a virtualenv with TensorFlow and tf-keras) instead. It featurizes the
tutorial's way (``--keras-features tutorial``: ``nltk.word_tokenize``, here without the punkt
data as Punkt's untrained split plus Treebank tokens; '?' and '!' ignored; every other token
lower-cased, Lancaster-stemmed, kept), so the comparison covers the bag of words too;
``--keras-features project`` feeds Keras the classic preset's own vectors instead, which
isolates the training.

How the curves are compared (``agree in shape``): the epoch loss is the mean training loss of
the epoch, dropout on, as Keras's ``history["loss"]``. Three figures, all three required:

* r: Pearson correlation of the two log-loss curves over all epochs, at least 0.95;
* trend: the least-squares change of log-loss over the second half of the epochs, which must
  differ by at most 0.1 between the two (a loss that turns upward while the other stays flat or
  falls differs by more);
* end: the mean loss of the last tenth of the epochs, their ratio within exp(+-0.15) (16%).

Accuracy target: within 1.5 points. ``--lr-decay`` sets SGD's decay on both sides (0 shows what
the recipe does without it).

    python benchmarks/classic_fidelity.py [--data intents,clinc] [--epochs 200] [--limit N]
        [--seed 1] [--every 10] [--lr-decay 1e-6] [--keras-features tutorial|project]
        [--keras-dir DIR | --keras-python PY] [--json out.json]

CI never runs this: it downloads tf-keras and trains for the better part of an hour.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # timing.py, beside this script
from timing import once, output_file, positive_int, run_main  # noqa: E402

DEFAULT_CLINC = ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json"
DEFAULT_KERAS_DIR = ROOT / "build" / "classic-fidelity" / "tf-keras"
INTENTS = ROOT / "data" / "intents.json"
FOLDS = 5
BATCH_SIZE = 5
TUTORIAL_IGNORE = ("?", "!")
ACCURACY_TARGET = 1.5  # points
MIN_CORRELATION = 0.95
MAX_TREND_GAP = 0.1  # log-loss change over the second half
MAX_END_GAP = 0.15  # |log| of the ratio of the last tenth's mean losses


# --- the Keras child (runs in its own process; the only code here that imports Keras) -------


def tutorial_bags(train_texts: list[str], test_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The tutorial's bag of words: float32 ``[n, words]`` for both lists, words from training."""
    from nltk.stem.lancaster import LancasterStemmer
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    stemmer, sentences, words = LancasterStemmer(), PunktSentenceTokenizer(), NLTKWordTokenizer()

    def tokens(text: str) -> set[str]:
        found = [w for s in sentences.tokenize(text) for w in words.tokenize(s)]
        return {stemmer.stem(w.lower()) for w in found if w not in TUTORIAL_IGNORE}

    train_tokens = [tokens(t) for t in train_texts]
    vocabulary = sorted(set().union(*train_tokens))
    column = {w: i for i, w in enumerate(vocabulary)}

    def bags(token_sets: list[set[str]]) -> np.ndarray:
        x = np.zeros((len(token_sets), len(vocabulary)), dtype=np.float32)
        for row, found in enumerate(token_sets):
            x[row, [column[w] for w in found if w in column]] = 1.0
        return x

    return bags(train_tokens), bags([tokens(t) for t in test_texts])


def keras_child(request_path: str, result_path: str) -> None:
    """Train every run of the request with tf-keras and write the histories and predictions."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # One thread each, as the project's sessions run; read by TensorFlow's runtime when tf_keras
    # loads it (this benchmark imports Keras, never TensorFlow itself).
    os.environ["TF_NUM_INTRAOP_THREADS"] = "1"
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    import tf_keras as keras

    arrays = np.load(request["arrays"]) if request.get("arrays") else None
    results = []
    for index, run in enumerate(request["runs"]):
        if arrays is not None:
            x, x_test = arrays[f"x{index}"], arrays[f"x_test{index}"]
        else:
            x, x_test = tutorial_bags(run["train_texts"], run["test_texts"])
        classes = run["classes"]
        y = keras.utils.to_categorical(run["train_labels"], len(classes))
        keras.utils.set_random_seed(request["seed"])
        model = keras.Sequential(
            [
                keras.layers.Dense(128, input_shape=(x.shape[1],), activation="relu"),
                keras.layers.Dropout(0.5),
                keras.layers.Dense(64, activation="relu"),
                keras.layers.Dropout(0.5),
                keras.layers.Dense(len(classes), activation="softmax"),
            ]
        )
        sgd = keras.optimizers.legacy.SGD(learning_rate=0.01, decay=request["decay"], momentum=0.9, nesterov=True)
        model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
        seconds: list[float] = []
        started = [time.perf_counter()]

        def epoch_end(
            epoch: int, logs: dict, seconds: list[float] = seconds, started: list[float] = started, run: int = index
        ) -> None:
            now = time.perf_counter()
            seconds.append(now - started[0])
            started[0] = now
            if (epoch + 1) % request["every"] == 0 or epoch == 0:
                print(f"keras run {run + 1}: epoch {epoch + 1} loss {logs['loss']:.4f}", file=sys.stderr, flush=True)

        history = model.fit(
            x,
            y,
            epochs=request["epochs"],
            batch_size=BATCH_SIZE,
            shuffle=True,
            verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=epoch_end)],
        )
        predicted = model.predict(x_test, batch_size=256, verbose=0).argmax(axis=1)
        results.append(
            {
                "loss": [float(v) for v in history.history["loss"]],
                "accuracy": [float(v) for v in history.history["accuracy"]],
                "seconds": seconds,
                "predicted": [int(p) for p in predicted],
                "features": int(x.shape[1]),
            }
        )
    versions = {"tensorflow": tensorflow_version(), "tf_keras": keras.__version__}
    Path(result_path).write_text(json.dumps({"runs": results, "versions": versions}), encoding="utf-8")


# --- the parent: data, the classic preset, the comparison ------------------------------------


def load_intents_folds(seed: int) -> tuple[str, list[dict]]:
    """data/intents.json's patterns as ``FOLDS`` stratified folds: per intent, the patterns in a
    seeded random order are dealt to the folds in turn."""
    from legacy_assistant.classifier.intents import load_intents

    texts, tags = load_intents(INTENTS).examples()
    rng = np.random.RandomState(seed)
    fold_of = np.zeros(len(texts), dtype=int)
    for tag in sorted(set(tags)):
        rows = np.flatnonzero(np.asarray(tags) == tag)
        rng.shuffle(rows)
        fold_of[rows] = np.arange(len(rows)) % FOLDS
    runs = []
    for fold in range(FOLDS):
        train_rows, test_rows = np.flatnonzero(fold_of != fold), np.flatnonzero(fold_of == fold)
        runs.append(split(texts, tags, train_rows, test_rows))
    title = f"data/intents.json, {len(set(tags))} intents, {len(texts)} patterns, {FOLDS}-fold cross-validation"
    return title, runs


def load_clinc(path: Path, limit: int | None) -> tuple[str, list[dict]]:
    """CLINC150's in-scope train and test sentences, of the first ``limit`` intents if given."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        intents = sorted({label for _, label in data["train"]})[:limit]
        keep = set(intents)
        train = [(t, label) for t, label in data["train"] if label in keep]
        test = [(t, label) for t, label in data["test"] if label in keep]
    except (ValueError, KeyError, TypeError) as exc:  # not JSON, or not [sentence, intent] pairs under train and test
        raise SystemExit(
            f"{path}: not CLINC150's layout (a JSON object whose train and test hold [sentence, intent] pairs; "
            f"{type(exc).__name__}: {exc})"
        ) from None
    texts = [t for t, _ in train] + [t for t, _ in test]
    tags = [label for _, label in train] + [label for _, label in test]
    run = split(texts, tags, np.arange(len(train)), np.arange(len(train), len(texts)))
    title = f"{path.name}, in scope, {len(intents)} intents: {len(train)} train / {len(test)} test"
    return title, [run]


def split(texts: list[str], tags: list[str], train_rows: np.ndarray, test_rows: np.ndarray) -> dict:
    classes = sorted({tags[i] for i in train_rows})
    index = {tag: i for i, tag in enumerate(classes)}
    return {
        "classes": classes,
        "train_texts": [texts[i] for i in train_rows],
        "train_labels": [index[tags[i]] for i in train_rows],
        "test_texts": [texts[i] for i in test_rows],
        "test_labels": [index[tags[i]] for i in test_rows],
    }


def classic_config(epochs: int, seed: int, decay: float):
    from legacy_assistant.classifier.presets import preset

    # tune_threshold off: the recipe has no threshold, and no hold-out network is trained for one
    return preset("classic").with_overrides(epochs=epochs, seed=seed, lr_decay=decay, tune_threshold=False)


def project_arrays(runs: list[dict], config) -> dict[str, np.ndarray]:
    """The classic preset's bag-of-words vectors of every run, dense, for ``--keras-features project``."""
    from legacy_assistant.classifier.features import Featurizer

    arrays = {}
    for index, run in enumerate(runs):
        featurizer, rows = Featurizer.fit_encode(run["train_texts"], config.features)
        arrays[f"x{index}"] = rows.to_dense(featurizer.n_features)
        arrays[f"x_test{index}"] = featurizer.encode(run["test_texts"]).to_dense(featurizer.n_features)
    return arrays


def train_classic(run: dict, config, every: int, label: str) -> dict:
    """The classic preset on one run: per-epoch history and test predictions (class ids)."""
    from compat.classifier.reference import forward_numpy
    from legacy_assistant.classifier.training import train

    def on_epoch(row: dict) -> None:
        if row["epoch"] % every == 0 or row["epoch"] == 1:
            print(f"classic {label}: epoch {row['epoch']} loss {row['loss']:.4f}", file=sys.stderr, flush=True)

    tags = [run["classes"][i] for i in run["train_labels"]]
    model = train(run["train_texts"], tags, config, on_epoch=on_epoch)
    assert model.classes == run["classes"]
    rows = model.featurizer.encode(run["test_texts"])
    _, probabilities = forward_numpy(model.spec, model.weights, rows.ids, rows.weights)
    return {
        "loss": [row["loss"] for row in model.history],
        "accuracy": [row["accuracy"] for row in model.history],
        "seconds": [row["seconds"] for row in model.history],
        "predicted": [int(p) for p in probabilities.argmax(axis=1)],
        "features": model.featurizer.n_features,
    }


def tensorflow_version() -> str:
    """The installed TensorFlow's version, read from its package metadata (no import)."""
    for distribution in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise SystemExit("TensorFlow is not installed in this interpreter")


def ensure_tf_keras(directory: Path) -> None:
    """pip-install tf-keras of the installed TensorFlow's minor release into ``directory``,
    without dependencies (TensorFlow is already there), unless it holds tf_keras already."""
    if (directory / "tf_keras").is_dir():
        return
    release = ".".join(tensorflow_version().split(".")[:2])
    print(f"installing tf-keras=={release}.* into {directory} ...", file=sys.stderr, flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(directory),
            f"tf-keras=={release}.*",
        ],
        check=True,
    )


def start_keras(runs: list[dict], args: argparse.Namespace, work: Path, arrays: dict | None) -> subprocess.Popen:
    request = {"epochs": args.epochs, "seed": args.seed, "decay": args.lr_decay, "every": args.every, "runs": runs}
    if arrays is not None:
        np.savez(work / "arrays.npz", **arrays)
        request["arrays"] = str(work / "arrays.npz")
    (work / "request.json").write_text(json.dumps(request), encoding="utf-8")
    env = dict(os.environ)
    python = args.keras_python or sys.executable
    if not args.keras_python:
        ensure_tf_keras(args.keras_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.keras_dir), env.get("PYTHONPATH")]))
    command = [
        python,
        str(Path(__file__).resolve()),
        "--keras-child",
        str(work / "request.json"),
        str(work / "result.json"),
    ]
    return subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr)


def mean_curve(runs: list[dict], key: str) -> np.ndarray:
    return np.mean([np.asarray(r[key], dtype=np.float64) for r in runs], axis=0)


def shape_agreement(ours: np.ndarray, keras: np.ndarray) -> dict:
    """The three figures of the module docstring for two loss curves of equal length."""
    a, b = np.log(ours), np.log(keras)
    n = len(a)
    r = float(np.corrcoef(a, b)[0, 1]) if n >= 3 else float("nan")
    half = np.arange(n // 2, n)

    def trend(curve: np.ndarray) -> float:
        if len(half) < 2:
            return 0.0
        slope = np.polyfit(half, curve[half], 1)[0]
        return float(slope * (len(half) - 1))

    tail = max(1, n // 10)
    end_ours, end_keras = float(ours[-tail:].mean()), float(keras[-tail:].mean())
    trend_ours, trend_keras = trend(a), trend(b)
    figures: dict[str, float | bool | None] = {
        "correlation_log_loss": r,
        "trend_classic": trend_ours,
        "trend_keras": trend_keras,
        "end_loss_classic": end_ours,
        "end_loss_keras": end_keras,
        "end_epochs": tail,
    }
    # a correlation needs 3 epochs: with fewer the shape is not judged (None), rather than failed
    figures["agree"] = (
        None
        if n < 3
        else bool(
            r >= MIN_CORRELATION
            and abs(trend_ours - trend_keras) <= MAX_TREND_GAP
            and abs(math.log(end_ours / end_keras)) <= MAX_END_GAP
        )
    )
    return figures


def pooled_accuracy(runs: list[dict], results: list[dict]) -> tuple[float, int]:
    """Pooled accuracy over the runs' test sentences, and how many (run, intent) pairs with
    test sentences were never predicted."""
    hits = total = never = 0
    for run, result in zip(runs, results):
        truth, predicted = np.asarray(run["test_labels"]), np.asarray(result["predicted"])
        hits += int((truth == predicted).sum())
        total += len(truth)
        never += len(set(truth.tolist()) - set(predicted.tolist()))
    return hits / total, never


def compare(name: str, title: str, runs: list[dict], args: argparse.Namespace) -> dict:
    config = classic_config(args.epochs, args.seed, args.lr_decay)
    with tempfile.TemporaryDirectory() as tmp:
        arrays = project_arrays(runs, config) if args.keras_features == "project" else None
        child = start_keras(runs, args, Path(tmp), arrays)
        try:
            ours = [train_classic(run, config, args.every, f"{name} run {i + 1}") for i, run in enumerate(runs)]
            if child.wait() != 0:
                raise SystemExit(f"the Keras child failed with exit status {child.returncode} (its output is above)")
        finally:
            # however this ends, the child with it: stopped (SIGTERM, Ctrl-C) while waiting for the
            # child, as while training, the run left it training on for up to an hour
            if child.poll() is None:
                child.kill()
                child.wait()
        keras_output = json.loads((Path(tmp) / "result.json").read_text(encoding="utf-8"))
    keras = keras_output["runs"]
    acc_ours, never_ours = pooled_accuracy(runs, ours)
    acc_keras, never_keras = pooled_accuracy(runs, keras)
    loss_ours, loss_keras = mean_curve(ours, "loss"), mean_curve(keras, "loss")
    shape = shape_agreement(loss_ours, loss_keras)
    report = {
        "data": name,
        "title": title,
        "epochs": args.epochs,
        "seed": args.seed,
        "lr_decay": args.lr_decay,
        "keras_features": args.keras_features,
        "versions": keras_output["versions"],
        "features": {"classic": [r["features"] for r in ours], "keras": [r["features"] for r in keras]},
        "test_accuracy": {"classic": acc_ours, "keras": acc_keras},
        "never_predicted": {"classic": never_ours, "keras": never_keras},
        "loss": {"classic": loss_ours.tolist(), "keras": loss_keras.tolist()},
        "train_accuracy": {
            "classic": mean_curve(ours, "accuracy").tolist(),
            "keras": mean_curve(keras, "accuracy").tolist(),
        },
        "seconds_per_epoch": {
            "classic": float(np.mean([np.mean(r["seconds"]) for r in ours])),
            "keras": float(np.mean([np.mean(r["seconds"]) for r in keras])),
        },
        "shape": shape,
    }
    print_report(report, args.every)
    return report


def print_report(report: dict, every: int) -> None:
    loss, accuracy = report["loss"], report["train_accuracy"]
    print(
        f"\n== {report['data']}: {report['title']}; {report['epochs']} epochs, seed {report['seed']}, "
        f"SGD decay {report['lr_decay']:g}, Keras features: {report['keras_features']} =="
    )
    print(
        f"tensorflow {report['versions']['tensorflow']}, tf-keras {report['versions']['tf_keras']}; features "
        f"classic {report['features']['classic'][0]}, keras {report['features']['keras'][0]}"
        + (" (first run)" if len(report["features"]["classic"]) > 1 else "")
    )
    print("| epoch | loss classic | loss keras | train acc classic | train acc keras |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    epochs = len(loss["classic"])
    for epoch in range(1, epochs + 1):
        if epoch == 1 or epoch % every == 0 or epoch == epochs:
            i = epoch - 1
            print(
                f"| {epoch} | {loss['classic'][i]:.4f} | {loss['keras'][i]:.4f} | "
                f"{accuracy['classic'][i]:.4f} | {accuracy['keras'][i]:.4f} |"
            )
    acc = report["test_accuracy"]
    gap = 100 * (acc["classic"] - acc["keras"])
    verdict = "within" if abs(gap) <= ACCURACY_TARGET else "OUTSIDE"
    print(
        f"test accuracy: classic {100 * acc['classic']:.1f}%, keras {100 * acc['keras']:.1f}% "
        f"({gap:+.1f} points, {verdict} the {ACCURACY_TARGET} target)"
    )
    never = report["never_predicted"]
    folds = " (summed over the folds)" if len(report["features"]["classic"]) > 1 else ""
    print(f"intents never predicted on the test sentences{folds}: classic {never['classic']}, keras {never['keras']}")
    shape = report["shape"]
    print(
        f"loss curves: r(log loss) {shape['correlation_log_loss']:.3f} (>= {MIN_CORRELATION}); "
        f"second-half change of log loss classic {shape['trend_classic']:+.3f}, keras {shape['trend_keras']:+.3f} "
        f"(gap <= {MAX_TREND_GAP}); last {shape['end_epochs']} epochs' mean loss classic "
        f"{shape['end_loss_classic']:.4f}, keras {shape['end_loss_keras']:.4f} -> "
        + {True: "agree in shape", False: "DO NOT agree in shape"}.get(
            shape["agree"], "not judged (the shape needs 3 or more epochs)"
        )
    )
    seconds = report["seconds_per_epoch"]
    print(f"seconds per epoch: classic {seconds['classic']:.2f}, keras {seconds['keras']:.2f}")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--keras-child":
        keras_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--data", default="intents,clinc", help="comma-separated: intents, clinc")
    parser.add_argument("--clinc", type=Path, default=DEFAULT_CLINC, help="CLINC150 data_full.json")
    parser.add_argument("--limit", type=positive_int, help="CLINC150: only the first N intents (alphabetically)")
    parser.add_argument("--epochs", type=positive_int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=positive_int, default=10, help="print the loss curves every N epochs")
    parser.add_argument("--lr-decay", type=float, default=1e-6, help="SGD's decay on both sides (the recipe's: 1e-6)")
    parser.add_argument("--keras-features", choices=("tutorial", "project"), default="tutorial")
    parser.add_argument("--keras-dir", type=Path, default=DEFAULT_KERAS_DIR, help="where tf-keras is (or goes)")
    parser.add_argument("--keras-python", help="run Keras with this interpreter (TensorFlow and tf-keras installed)")
    parser.add_argument("--json", type=output_file, help="write every figure and curve here")
    args = parser.parse_args()
    names = once("--data", [n.strip() for n in args.data.split(",") if n.strip()])
    if not names:
        parser.error("no data set given; choose from intents, clinc")
    unknown = sorted(set(names) - {"intents", "clinc"})
    if unknown:
        parser.error(f"unknown data set(s) {', '.join(unknown)}; choose from intents, clinc")
    if args.epochs < 1 or args.every < 1 or (args.limit is not None and args.limit < 2):
        parser.error("--epochs and --every must be at least 1, --limit at least 2")
    if "clinc" in names and not args.clinc.is_file():
        parser.error(f"not found: {args.clinc} (pass --clinc)")

    import logging

    logging.basicConfig(level=logging.WARNING)
    reports = []
    for name in names:
        title, runs = load_intents_folds(args.seed) if name == "intents" else load_clinc(args.clinc, args.limit)
        sizes = Counter(len(r["train_texts"]) for r in runs)
        print(f"{name}: {title}; training sets of {dict(sizes)} sentences", file=sys.stderr, flush=True)
        reports.append(compare(name, title, runs, args))
    print(f"\nmachine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    run_main(main)
