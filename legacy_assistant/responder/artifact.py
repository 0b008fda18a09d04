"""The responder's model directory: its manifest, written and verified.

Layout of ``exported/<name>/``::

    saved_model/     TF1 SavedModel with the signatures greedy, beam, sample (and their guided
                     twins), score
                     (:func:`compat.responder.saved_model.export_responder`)
    responder.json   manifest: format, vocabulary (tokens and text settings), conditions, spec,
                     training settings, summary, the corpora's file names and sha256, versions,
                     the sha256 of every file listed
    history.json     per-epoch loss and perplexity, training and validation
    history.png      the same, plotted

Writing, checksums and the file checks are :mod:`legacy_assistant.artifacts.directory`'s, shared
with the classifier; this module adds what the responder's manifest holds and its consistency.
Verifying imports no TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compat.selection import RUNTIMES
from legacy_assistant.artifacts.directory import (
    DIGEST_FIELD,
    RESPONDER_MANIFEST,
    SAVED_MODEL_DIR,
    file_record,
    output_dir,
    verify_directory,
    write_artifact,
    write_json,
)
from legacy_assistant.artifacts.versions import recorded_environment, recorded_versions
from legacy_assistant.common.optional import require_plots
from legacy_assistant.errors import ArtifactError, ConfigError
from legacy_assistant.responder.corpora import corpus_files
from legacy_assistant.responder.vocabulary import Vocabulary

if TYPE_CHECKING:  # training imports the TF1 runtime; verifying must not
    from compat.responder.spec import ResponderSpec
    from legacy_assistant.responder.training import TrainedResponder

FORMAT = "legacy-assistant-responder/1"
MANIFEST = RESPONDER_MANIFEST
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
HISTORY_METRICS = ("loss", "perplexity")


def export_responder_artifact(
    model: TrainedResponder,
    out_dir: str | Path,
    *,
    force: bool = False,
    plot: bool = True,
    sources: Sequence[str | Path] = (),
    held_out_sources: Sequence[str | Path] = (),
) -> Path:
    """Write ``model`` to ``out_dir``; returns its path.

    ``sources`` and ``held_out_sources`` are the corpus files or folders it was trained and
    validated on: the manifest records each file's name and sha256 (never its path). ``out_dir``
    must not exist unless ``force``; with ``force`` the old directory is replaced only after the
    new one is complete.
    """
    from compat.responder.saved_model import export_responder
    from compat.runtime import versions

    target = output_dir(out_dir)
    if plot and model.history:  # before anything is written
        require_plots("the responder's training history figure (history.png)")
    source = {"corpora": _records(sources), "held_out": _records(held_out_sources)}

    def fill(staging: Path) -> dict[str, Any]:
        export_responder(model.weights, model.spec, str(staging / SAVED_MODEL_DIR))
        write_json(staging / HISTORY_JSON, model.history)
        if plot and model.history:
            from legacy_assistant.common.plots import drawn, plot_history

            # a model is never lost for its figure: history.json holds the same numbers
            drawn(
                staging / HISTORY_PNG,
                lambda path: plot_history(
                    model.history, path, title=f"{target.name}: training history", metrics=HISTORY_METRICS
                ),
                "the model is written without it (history.json holds the same numbers)",
            )
        return {
            "format": FORMAT,
            "name": target.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "vocabulary": model.vocabulary.to_dict(),
            "conditions": list(model.conditions),
            "spec": model.spec.to_dict(),
            "training": model.config.to_dict(),
            "summary": model.summary,
            "source": source,
            "versions": recorded_versions(versions()),
            "environment": recorded_environment(),
        }

    return write_artifact(target, fill, manifest_name=MANIFEST, force=force, check=_check_staging)


def reexport_responder_artifact(directory: str | Path) -> Path:
    """Write ``directory``'s SavedModel again from its own weights with this version's graph
    (condition guidance included), in place and atomically; every other file is kept, and the
    manifest gains ``reexported`` (when, and the versions that wrote the new graph). The replies
    stay the same: the weights do not change. The new graph samples with this version's draw
    (``spec.sample_draw``, recorded in the manifest's spec): seeded samples may differ from the
    old graph's; greedy and beam replies do not."""
    import dataclasses
    import shutil

    from compat.responder.saved_model import export_responder
    from compat.responder.spec import GUMBEL_DRAW
    from compat.responder.stepwise import read_saved_model_weights
    from compat.runtime import versions

    info = verify_responder(directory)
    weights = read_saved_model_weights(str(info.path / SAVED_MODEL_DIR), info.spec)
    spec = dataclasses.replace(info.spec, sample_draw=GUMBEL_DRAW)
    listed = [name for name in info.manifest["files"] if not name.startswith(SAVED_MODEL_DIR + "/")]
    # What the manifest does not list (golden.json, written after the export; a report of one's
    # own) is carried over as it is, and stays unlisted.
    tops = {name.split("/", 1)[0] for name in info.manifest["files"]}
    unlisted = [
        path.name + ("/" if path.is_dir() else "")  # as check_destination names them
        for path in sorted(info.path.iterdir())
        if path.name not in (MANIFEST, SAVED_MODEL_DIR) and path.name not in tops
    ]

    def fill(staging: Path) -> dict[str, Any]:
        export_responder(weights, spec, str(staging / SAVED_MODEL_DIR))
        for name in listed:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(info.path / name, staging / name)
        manifest = {k: v for k, v in info.manifest.items() if k not in ("files", "manifest_sha256")}
        manifest["spec"] = spec.to_dict()
        manifest["reexported"] = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": recorded_versions(versions()),
        }
        return manifest

    return write_artifact(
        info.path,
        fill,
        manifest_name=MANIFEST,
        force=True,
        check=_check_staging,
        keep=unlisted,
        replaces=info.manifest[DIGEST_FIELD],
    )


def _records(paths: Sequence[str | Path]) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    for path in map(Path, paths):
        files = corpus_files(path) if path.is_dir() else [path]
        records.extend(file_record(file) for file in files)
    return records


def _check_staging(staging: Path) -> None:
    verify_responder(staging)


@dataclass(frozen=True)
class ResponderInfo:
    """A verified manifest and what it describes."""

    path: Path
    manifest: dict[str, Any]
    vocabulary: Vocabulary
    conditions: tuple[str, ...]
    spec: ResponderSpec

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.path.name)

    @property
    def saved_model_dir(self) -> Path:
        return self.path / SAVED_MODEL_DIR

    @property
    def runtime(self) -> str:
        """The runtime the SavedModel was written for: ``compat`` or ``tf2``."""
        return self.manifest.get("runtime", "compat")


def verify_responder(path: str | Path) -> ResponderInfo:
    """Check that ``path`` is a complete, unaltered responder directory whose manifest agrees
    with itself; raise :class:`ArtifactError` naming the file and the fault if not."""
    from compat.responder.spec import ResponderSpec

    root = Path(path)
    manifest = verify_directory(root, manifest_name=MANIFEST, formats=(FORMAT,))
    where = root / MANIFEST
    try:
        vocabulary = Vocabulary.from_dict(manifest["vocabulary"])
        spec = ResponderSpec.from_dict(manifest["spec"])
        conditions = manifest["conditions"]
    except KeyError as exc:
        raise ArtifactError(f"{where}: inconsistent manifest: missing {exc}") from None
    except (ConfigError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: inconsistent manifest: {exc}") from None
    if (
        not isinstance(conditions, list)
        or not conditions
        or not all(isinstance(c, str) and c for c in conditions)
        or len(set(conditions)) != len(conditions)
    ):
        raise ArtifactError(f"{where}: inconsistent manifest: conditions must be a list of distinct names")
    if len({c.strip().lower() for c in conditions}) != len(conditions):
        # a request's emotion is stripped and lower-cased: it could not tell such names apart
        raise ArtifactError(f"{where}: inconsistent manifest: conditions differ only in case or spaces")
    if spec.vocab_size != len(vocabulary) or spec.n_conditions != len(conditions):
        raise ArtifactError(
            f"{where}: inconsistent manifest: the spec's vocab_size {spec.vocab_size} and n_conditions "
            f"{spec.n_conditions} do not match the vocabulary ({len(vocabulary)}) and conditions ({len(conditions)})"
        )
    if manifest.get("runtime", "compat") not in RUNTIMES:
        raise ArtifactError(f"{where}: unknown runtime {manifest.get('runtime')!r}, expected one of {RUNTIMES}")
    if not (root / SAVED_MODEL_DIR / "saved_model.pb").is_file():
        raise ArtifactError(f"{root / SAVED_MODEL_DIR}: no saved_model.pb")
    return ResponderInfo(root, manifest, vocabulary, tuple(conditions), spec)


def recorded_condition_pairs(manifest: dict[str, Any], conditions: Sequence[str]) -> dict[str, int] | None:
    """Training replies per condition, as ``manifest`` records them (``summary.condition_pairs``):
    every one of ``conditions``, a name the record leaves out counted 0. None where nothing
    usable is recorded (a model exported before the counts were kept): then every condition
    is taken as trained."""
    summary = manifest.get("summary")
    recorded = summary.get("condition_pairs") if isinstance(summary, dict) else None
    if not isinstance(recorded, dict):
        return None
    counts = {name: recorded.get(name, 0) for name in conditions}
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()):
        return None
    return counts
