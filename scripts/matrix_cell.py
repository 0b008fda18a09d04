"""One cell of the TensorFlow matrix: run inside the virtualenv of one TensorFlow version.

Prints one JSON object: the versions, the shipped model's golden comparison, the shipped
responder's greedy golden replies compared (``exported/responder/golden.json``), the time to train
``data/intents.json`` with the default preset (as the shipped model), and where that freshly trained model was written
(with its own golden file, over the golden sentences and generated probes) together with its
TF2 migration, for the other versions to load. Called by ``scripts/tf_matrix.py``.

    python scripts/matrix_cell.py --out reports/matrix/tf-2.12.1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PROBES = 300


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--out", required=True, help="folder for this cell's model and files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from compat.runtime import versions
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.golden import compare_golden, read_golden, read_sentences, write_golden
    from legacy_assistant.classifier.intents import load_intents
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.classifier.presets import DEFAULT_PRESET, preset
    from legacy_assistant.classifier.probes import probe_sentences
    from legacy_assistant.classifier.training import train

    shipped = ROOT / "exported" / "default"
    predictor = Predictor.load(shipped)
    golden = compare_golden(predictor, read_golden(shipped / "golden.json"))
    predictor.close()

    responder_golden = check_responder_golden(ROOT / "exported" / "responder")

    intents = load_intents(ROOT / "data" / "intents.json")
    texts, tags = intents.examples()
    started = time.perf_counter()
    model = train(texts, tags, preset(DEFAULT_PRESET))
    train_seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for name in sorted(model.weights):
        digest.update(name.encode() + model.weights[name].tobytes())

    model_dir = export_artifact(model, intents, out / "model", force=True, plot=False)
    sentences = read_sentences(ROOT / "data" / "golden_sentences.txt")
    n_golden = len(sentences)
    sentences += probe_sentences(sentences, model.featurizer.vocabulary, PROBES, seed=2)
    trained = Predictor.load(model_dir)
    write_golden(trained, sentences, model_dir / "golden.json")
    trained.close()

    tf2_dir = out / "model-tf2"
    migrated = subprocess.run(
        [
            sys.executable,
            "-m",
            "legacy_assistant",
            "-q",
            "migrate",
            str(model_dir),
            "--out",
            str(tf2_dir),
            "--force",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    print(
        json.dumps(
            {
                "versions": versions(),
                "golden": golden,
                "responder_golden": responder_golden,
                "train_seconds": train_seconds,
                "weights_sha256": digest.hexdigest(),
                "model": str(model_dir),
                "golden_cases": len(sentences),
                "golden_sentences": n_golden,  # the first cases; the rest are generated probes
                "tf2_model": str(tf2_dir) if migrated.returncode == 0 else None,
                "migrate": json.loads(migrated.stdout) if migrated.returncode == 0 else migrated.stderr.strip()[-2000:],
            }
        )
    )


def check_responder_golden(responder_dir: Path) -> dict:
    """The shipped responder's greedy replies against its golden.json: same tokens for every
    case, and the largest difference of a reply's log-probability."""
    from legacy_assistant.responder.golden import compare_golden, read_golden
    from legacy_assistant.responder.responder import Responder

    try:
        golden = read_golden(responder_dir / "golden.json")
        with Responder.load(responder_dir) as responder:
            return compare_golden(responder, golden)
    except Exception as exc:  # reported in the cell, which then fails
        return {"error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    main()
