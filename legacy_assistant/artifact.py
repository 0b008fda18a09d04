"""The exported model directory: write it atomically, verify it fully before use.

Layout of ``exported/<name>/``::

    saved_model/          SavedModel, signature "predict": TF1 (v1 builder) for runtime
                          "compat", TF2-native (tf.saved_model.save) for runtime "tf2"
    assistant.json        manifest: vocabulary, text settings, classes, dialogue rules,
                          training config, runtime, versions, sha256 of every file listed
    history.json          per-epoch loss/accuracy
    history.png           the same, plotted

Everything is written into a temporary sibling folder and renamed into place, so a crash leaves
either the old model or the new one, never half of one. Loading recomputes every checksum and
refuses a missing, truncated or altered file by name. Nothing is pickled.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legacy_assistant import __version__
from legacy_assistant.errors import ArtifactError
from legacy_assistant.features import Featurizer
from legacy_assistant.intents import FALLBACK_TAG, IntentSet

if TYPE_CHECKING:  # training imports the TF1 runtime; verifying and serving must not
    from legacy_assistant.training import TrainedModel

log = logging.getLogger(__name__)

FORMAT = "legacy-assistant/1"
MANIFEST = "assistant.json"
SAVED_MODEL_DIR = "saved_model"
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
RUNTIMES = ("compat", "tf2")  # compat.selection.RUNTIMES; the manifest's "runtime", "compat" if absent
DEFAULT_FALLBACK_RESPONSE = "Sorry, I didn't understand that. Could you rephrase it?"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON, without its own digest field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_artifact(
    model: "TrainedModel",
    intents: IntentSet,
    out_dir: str | Path,
    *,
    force: bool = False,
    plot: bool = True,
    source: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (with ``intents``' dialogue rules) to ``out_dir``; returns its path.

    ``out_dir`` must not exist unless ``force``; with ``force`` the old directory is replaced
    only after the new one is complete.
    """
    from compat.classifier import export_saved_model
    from compat.runtime import versions

    target = Path(out_dir)

    def fill(staging: Path) -> dict[str, Any]:
        export_saved_model(model.weights, model.spec, str(staging / SAVED_MODEL_DIR))
        _write_json(staging / HISTORY_JSON, model.history)
        if plot and model.history:
            from legacy_assistant.plots import plot_history

            plot_history(model.history, staging / HISTORY_PNG, title=f"{target.name}: training history")
        return _manifest(model, intents, target.name, versions(), source)

    return write_artifact(target, fill, force=force)


def write_artifact(
    out_dir: str | Path,
    fill: Callable[[Path], dict[str, Any]],
    *,
    force: bool = False,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Write a model directory atomically; returns its path.

    ``fill(staging)`` writes the files into an empty temporary sibling of ``out_dir`` and
    returns the manifest (without ``files``/``manifest_sha256``, which are added here). The
    finished staging folder is then handed to ``check`` (which raises to abort) and renamed into
    place. On any error nothing is left behind and an old ``out_dir`` is untouched.
    """
    target = Path(out_dir)
    if target.exists() and not force:
        raise ArtifactError(f"{target} already exists (pass force=True / --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        manifest = fill(staging)
        manifest["files"] = {
            path.relative_to(staging).as_posix(): sha256_file(path)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        _write_json(staging / MANIFEST, manifest)
        if check is not None:
            check(staging)
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported %s", target)
    return target


def _manifest(
    model: "TrainedModel", intents: IntentSet, name: str, library_versions: dict[str, str], source: dict[str, Any] | None
) -> dict[str, Any]:
    fallback = intents[FALLBACK_TAG] if FALLBACK_TAG in intents else None
    return {
        "format": FORMAT,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "classes": model.classes,
        "featurizer": model.featurizer.to_dict(),
        "network": {
            "n_features": model.spec.n_features,
            "n_classes": model.spec.n_classes,
            "hidden_units": list(model.spec.hidden_units),
            "dropout": model.spec.dropout,
            "linear_shortcut": model.spec.linear_shortcut,
        },
        "threshold": model.threshold,
        "oos_label": model.oos_label,
        "fallback": {
            "tag": FALLBACK_TAG,
            "responses": list(fallback.responses) if fallback else [DEFAULT_FALLBACK_RESPONSE],
        },
        "intents": [intent.rules() for intent in intents.intents],
        "training": model.config.to_dict(),
        "summary": model.summary,
        "source": source or {"intents": intents.source},
        "versions": {**library_versions, "legacy_assistant": __version__},
    }


def _replace_dir(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(retired)
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


@dataclass(frozen=True)
class ArtifactInfo:
    """A verified manifest and the featurizer it describes."""

    path: Path
    manifest: dict[str, Any]
    featurizer: Featurizer

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.name)

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def saved_model_dir(self) -> Path:
        return self.path / SAVED_MODEL_DIR

    @property
    def runtime(self) -> str:
        """Which TensorFlow runtime the SavedModel is for: ``compat`` (TF1) or ``tf2``."""
        return self.manifest.get("runtime", "compat")


def verify_artifact(path: str | Path) -> ArtifactInfo:
    """Check that ``path`` is a complete, unaltered artifact; raise :class:`ArtifactError` if not."""
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"model directory not found: {root}")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path}: missing: not a legacy-assistant model directory")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{manifest_path}: damaged: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ArtifactError(f"{manifest_path}: unsupported format {found!r}, expected {FORMAT!r}")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise ArtifactError(f"{manifest_path}: altered: its content does not match its recorded checksum")

    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{manifest_path}: lists no files")
    for relative, expected in sorted(files.items()):
        file_path = root / relative
        if not file_path.is_file():
            raise ArtifactError(f"{file_path}: missing from the model directory")
        if sha256_file(file_path) != expected:
            raise ArtifactError(f"{file_path}: altered or truncated: sha256 does not match {MANIFEST}")
    saved_model = root / SAVED_MODEL_DIR
    extra = sorted(
        p.relative_to(root).as_posix() for p in saved_model.rglob("*") if p.is_file()
    ) if saved_model.is_dir() else []
    unexpected = [p for p in extra if p not in files]
    if unexpected:
        raise ArtifactError(f"{root / unexpected[0]}: unexpected file in the SavedModel, not listed in {MANIFEST}")

    try:
        featurizer = Featurizer.from_dict(manifest["featurizer"])
        classes = manifest["classes"]
        if len(classes) != manifest["network"]["n_classes"] or featurizer.n_features != manifest["network"]["n_features"]:
            raise ValueError("classes or vocabulary do not match the network's shape")
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{manifest_path}: inconsistent manifest: {exc}") from None
    if manifest.get("runtime", "compat") not in RUNTIMES:
        raise ArtifactError(f"{manifest_path}: unknown runtime {manifest.get('runtime')!r}, expected one of {RUNTIMES}")
    return ArtifactInfo(root, manifest, featurizer)
