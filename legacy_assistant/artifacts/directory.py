"""A model directory on disk: written atomically, verified fully before use.

Both model families export the same kind of directory: a ``saved_model/`` folder, a JSON
manifest that records the sha256 of every file (and its own digest), and whatever else the
family writes (training history, plots). This module knows nothing of what the manifest
describes; :mod:`legacy_assistant.classifier.artifact` and the responder's artifact module add
their own fields and checks on top.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from legacy_assistant.errors import ArtifactError

log = logging.getLogger(__name__)

SAVED_MODEL_DIR = "saved_model"
DIGEST_FIELD = "manifest_sha256"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON, without its own digest field."""
    body = {k: v for k, v in manifest.items() if k != DIGEST_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON with a final newline."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_artifact(
    out_dir: str | Path,
    fill: Callable[[Path], dict[str, Any]],
    *,
    manifest_name: str,
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
        manifest[DIGEST_FIELD] = manifest_digest(manifest)
        write_json(staging / manifest_name, manifest)
        if check is not None:
            check(staging)
        _replace_dir(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("exported %s", target)
    return target


def _replace_dir(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(retired)
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def verify_directory(path: str | Path, *, manifest_name: str, formats: tuple[str, ...]) -> dict[str, Any]:
    """Check that ``path`` is a complete, unaltered model directory; return its manifest.

    Raises :class:`ArtifactError` naming the file at fault: a missing or non-JSON manifest, a
    format not in ``formats``, a manifest whose digest does not match, a listed file missing or
    altered, or a file in ``saved_model/`` that the manifest does not list.
    """
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"model directory not found: {root}")
    manifest_path = root / manifest_name
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path}: missing: not a legacy-assistant model directory")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{manifest_path}: damaged: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in formats:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        expected = formats[0] if len(formats) == 1 else formats
        raise ArtifactError(f"{manifest_path}: unsupported format {found!r}, expected {expected!r}")
    if manifest.get(DIGEST_FIELD) != manifest_digest(manifest):
        raise ArtifactError(f"{manifest_path}: altered: its content does not match its recorded checksum")

    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{manifest_path}: lists no files")
    for relative, expected_sha in sorted(files.items()):
        file_path = root / relative
        if not file_path.is_file():
            raise ArtifactError(f"{file_path}: missing from the model directory")
        if sha256_file(file_path) != expected_sha:
            raise ArtifactError(f"{file_path}: altered or truncated: sha256 does not match {manifest_name}")
    saved_model = root / SAVED_MODEL_DIR
    present = sorted(
        p.relative_to(root).as_posix() for p in saved_model.rglob("*") if p.is_file()
    ) if saved_model.is_dir() else []
    unexpected = [p for p in present if p not in files]
    if unexpected:
        raise ArtifactError(f"{root / unexpected[0]}: unexpected file in the SavedModel, not listed in {manifest_name}")
    return manifest
