"""Migrate a compat-mode model (TF1 SavedModel) to a TF2-native one, and prove they agree.

``migrate_artifact`` runs in a process on the TF2 runtime: it reads the TF1 variables with
``tf.train.load_checkpoint`` (no graph, no session), rebuilds the network from the stored
``network`` spec as a ``tf.Module`` (:mod:`compat.tf2.network`), writes a TF2 SavedModel next to
a copy of the manifest (same vocabulary, text settings, classes and dialogue rules: the same
featurisation contract) marked ``"runtime": "tf2"``, and checks the staged result before it is
renamed into place:

* against a float32 numpy forward pass of the same weights, on the golden and probe sentences;
* against the source's ``golden.json`` (probabilities the TF1 model computed), when present.

Both must agree on every top-1 intent and within ``tolerance`` on every probability, or nothing
is written. The TF1 side is never run here: this process cannot host both runtimes
(:mod:`compat.selection`); ``golden.json`` carries the TF1 answers across.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compat.classifier.reference import forward_numpy
from compat.classifier.schema import NetworkSpec, UnsupportedNetwork
from legacy_assistant.artifacts.directory import check_destination, output_dir, overlaps, write_artifact
from legacy_assistant.artifacts.migration import refuse_if_source_replaced, tf2_manifest
from legacy_assistant.classifier.artifact import (
    HISTORY_JSON,
    HISTORY_PNG,
    MANIFEST,
    SAVED_MODEL_DIR,
    verify_artifact,
)
from legacy_assistant.classifier.golden import GOLDEN_FILE, compare_golden, read_golden
from legacy_assistant.classifier.probes import probe_sentences
from legacy_assistant.errors import ArtifactError

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 1e-5
DEFAULT_PROBES = 500


@dataclass
class MigrationReport:
    """What :func:`migrate_artifact` wrote and how closely it agrees with its source."""

    source: Path
    target: Path
    variables: dict[str, list[int]]
    reference: dict[str, Any]
    golden: dict[str, Any] | None = None
    seconds: float = 0.0
    tensorflow: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "intent",  # a responder's report says "responder"
            "source": str(self.source),
            "target": str(self.target),
            "tensorflow": self.tensorflow,
            "variables": self.variables,
            "numpy_reference": self.reference,
            "source_golden": self.golden,
            "seconds": round(self.seconds, 3),
        }


def migrate_artifact(
    source: str | Path,
    out_dir: str | Path,
    *,
    force: bool = False,
    probes: int = DEFAULT_PROBES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> MigrationReport:
    """Write the TF2-native twin of the compat model ``source`` to ``out_dir``.

    Raises:
        ArtifactError: the source is damaged or not a compat model, its network spec or weights
            are not understood, or the migrated model disagrees with its source.
        compat.selection.RuntimeConflict: this process already runs the TF1 runtime.
    """
    from compat import selection

    started = time.perf_counter()
    # what needs no TensorFlow is checked before its import (seconds), so a refusal is immediate
    info = verify_artifact(source)
    if info.runtime != "compat":
        raise ArtifactError(f"{info.path}: already a {info.runtime!r} model; only compat models are migrated")
    target = output_dir(out_dir)
    if overlaps(target, info.path):
        raise ArtifactError(f"{target}: the migrated model needs a directory of its own, outside {info.path}")
    check_destination(target, force, [info.path], writes=MANIFEST)  # before any work, not after the checks
    try:
        spec = NetworkSpec.from_dict(info.manifest["network"], where=f"{info.path / MANIFEST}: network")
    except UnsupportedNetwork as exc:
        raise ArtifactError(str(exc)) from None
    golden_path = info.path / GOLDEN_FILE
    golden = read_golden(golden_path) if golden_path.is_file() else None
    seed_texts = [case["text"] for case in golden["cases"]] if golden else []
    sentences = seed_texts + probe_sentences(seed_texts, info.featurizer.vocabulary, probes, seed=0)
    if not sentences:  # a check of nothing would pass, and say "top-1 agreement 100%"
        raise ArtifactError(
            f"{info.path}: nothing to check the migrated model on: the source has no {GOLDEN_FILE}, and no "
            f"probe sentences were asked for ({probes}); ask for some (--probes)"
        )
    selection.select("tf2")
    from compat.interface import SavedModelError
    from compat.tf2.checkpoint import read_v1_weights
    from compat.tf2.runtime import versions
    from compat.tf2.saved_model import export_tf2_saved_model

    try:
        weights = read_v1_weights(str(info.saved_model_dir))
        spec.check_weights(weights, where=f"{info.saved_model_dir}")
    except (UnsupportedNetwork, SavedModelError) as exc:
        raise ArtifactError(str(exc)) from None

    report = MigrationReport(info.path, target, {k: list(v.shape) for k, v in sorted(weights.items())}, {})
    report.tensorflow = versions()["tensorflow"]

    def fill(staging: Path) -> dict[str, Any]:
        export_tf2_saved_model(spec, weights, str(staging / SAVED_MODEL_DIR))
        for name in (HISTORY_JSON, HISTORY_PNG):
            if (info.path / name).is_file():
                shutil.copy2(info.path / name, staging / name)
        return tf2_manifest(info.manifest, target.name, versions(), info.path)

    def check(staging: Path) -> None:
        report.reference = _check_against_numpy(staging, spec, weights, sentences, tolerance)
        if golden is not None:
            report.golden = _check_against_golden(staging, golden, golden_path, tolerance, spec, weights)
            # swapped in with the model, not copied after it: a stop in between left the new
            # model with no golden file, or half of one
            shutil.copy2(golden_path, staging / GOLDEN_FILE)
        refuse_if_source_replaced(info.path, info.manifest, MANIFEST)  # last: after every read of it

    write_artifact(target, fill, manifest_name=MANIFEST, force=force, check=check)
    report.seconds = time.perf_counter() - started
    return report


def _load_staged(staging: Path):
    from legacy_assistant.classifier.predictor import Predictor

    return Predictor.load(staging, runtime="tf2")


def _check_against_numpy(
    staging: Path, spec: NetworkSpec, weights: dict[str, np.ndarray], sentences: list[str], tolerance: float
) -> dict[str, Any]:
    predictor = _load_staged(staging)
    try:
        features = predictor.info.featurizer.encode(sentences)
        got = predictor.predict_proba(sentences)
    finally:
        predictor.close()
    _, expected = forward_numpy(spec, weights, features.ids, features.weights)
    delta = float(np.abs(got - expected).max()) if len(sentences) else 0.0
    top1 = float(np.mean(got.argmax(1) == expected.argmax(1))) if len(sentences) else 1.0
    result = {"sentences": len(sentences), "max_abs_delta": delta, "top1_agreement": top1}
    if delta > tolerance or top1 < 1.0:
        raise ArtifactError(f"migrated model disagrees with a numpy forward pass of its weights: {json.dumps(result)}")
    return result


def _check_against_golden(
    staging: Path,
    golden: dict[str, Any],
    golden_path: Path,
    tolerance: float,
    spec: NetworkSpec,
    weights: dict[str, np.ndarray],
) -> dict[str, Any]:
    predictor = _load_staged(staging)
    try:
        report = compare_golden(predictor, golden, golden_path)
        if report["max_abs_delta"] <= tolerance and not report["mismatches"]:
            return report
        texts = [case["text"] for case in golden["cases"]]
        features = predictor.info.featurizer.encode(texts)
        classes = list(predictor.classes)
    finally:
        predictor.close()
    # which of the two is off: the copy, or the golden file (written for another model, or for
    # this one before it was trained again), told by the source's own weights
    _, source = forward_numpy(spec, weights, features.ids, features.weights)
    stale = max(
        abs(probability - source[row, classes.index(tag)])
        for row, case in enumerate(golden["cases"])
        for tag, probability in case["probabilities"].items()
    )
    if stale > tolerance:
        raise ArtifactError(
            f"the source's {GOLDEN_FILE} does not match the source's own weights (a numpy forward pass of them "
            f"differs from it by up to {stale:.3g}): it was written for another model, or for this one before it "
            f"was trained again; write it again ('legacy-assistant golden SOURCE --sentences FILE') or remove it, "
            f"then migrate: {json.dumps(report)}"
        )
    raise ArtifactError(f"migrated model does not reproduce the source's {GOLDEN_FILE}: {json.dumps(report)}")
