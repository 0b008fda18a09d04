"""What a migrated model directory's manifest says: its source's, re-labelled for the TF2 runtime.

The classifier and the responder migrate the same way (:mod:`legacy_assistant.classifier.migration`,
:mod:`legacy_assistant.responder.migration`): the new directory keeps everything its source's
manifest says about the model (featurisation or vocabulary, classes or conditions, training
record) and records where it came from.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from legacy_assistant.artifacts.directory import DIGEST_FIELD, SAVED_MODEL_DIR, digest_on_disk
from legacy_assistant.artifacts.versions import recorded_versions
from legacy_assistant.common.files import readable_path
from legacy_assistant.errors import ArtifactError


def tf2_manifest(
    source: dict[str, Any], name: str, library_versions: dict[str, str], source_path: Path
) -> dict[str, Any]:
    """``source`` (a verified manifest) without its file list and digest, named ``name``, for
    ``runtime: tf2``, with ``migrated_from`` (the source's path, name, digest, SavedModel files
    and versions) and the migrating process's ``versions``."""
    manifest = {k: v for k, v in source.items() if k not in ("files", DIGEST_FIELD)}
    manifest.update(
        name=name,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        runtime="tf2",
        migrated_from={
            "path": readable_path(source_path),
            "name": source.get("name"),
            DIGEST_FIELD: source.get(DIGEST_FIELD),
            "saved_model_files": {k: v for k, v in source["files"].items() if k.startswith(SAVED_MODEL_DIR + "/")},
            "versions": source.get("versions", {}),
        },
        versions=recorded_versions(library_versions),
    )
    return manifest


def refuse_if_source_replaced(source: Path, manifest: dict[str, Any], manifest_name: str) -> None:
    """Refuse (:class:`ArtifactError`), before the copy is put in place, a migration whose source
    folder no longer holds the model whose verified ``manifest`` it began with: replaced meanwhile
    (``train --force``), its weights, history or golden file may have been read from the new
    model, and the copy would pair them with the old one's manifest and ``migrated_from``."""
    if digest_on_disk(source, manifest_name) != manifest.get(DIGEST_FIELD):
        raise ArtifactError(
            f"{source} was replaced by another model while it was migrated: nothing was written; "
            "run migrate again for the model now there"
        )
