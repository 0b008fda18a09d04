"""Which kind of model directory a command was given: an intent model or a responder."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from legacy_assistant.artifacts.directory import CLASSIFIER_MANIFEST, RESPONDER_MANIFEST, refused_if_unreadable
from legacy_assistant.common.input_files import read_input_bytes
from legacy_assistant.defaults import not_installed_hint
from legacy_assistant.errors import ArtifactError

__all__ = ["CLASSIFIER_MANIFEST", "RESPONDER_MANIFEST", "is_responder", "refuse_other_kind", "written_for"]


def is_responder(path: str | Path, role: str = "model") -> bool:
    """Whether ``path`` holds a responder (its manifest), else an intent model. A directory
    with neither manifest is refused here, naming both, rather than later as a classifier
    whose ``assistant.json`` is missing; ``role`` names what the path was given as when it
    does not exist (``"responder"``: "responder directory not found")."""
    with refused_if_unreadable(path):  # a folder on the way this user may not search, a name too long
        return _is_responder(Path(path), role)


def _is_responder(root: Path, role: str) -> bool:
    """:func:`is_responder`, whose :class:`OSError` it lets through."""
    if (root / RESPONDER_MANIFEST).is_file():
        return True
    if (root / CLASSIFIER_MANIFEST).is_file():
        return False
    # a manifest that is a folder, a pipe or a broken link still says which kind this is
    # (loading then names what is wrong with it), when the other kind's is no file either
    if os.path.lexists(root / RESPONDER_MANIFEST):
        return True
    if os.path.lexists(root / CLASSIFIER_MANIFEST):
        return False
    if root.exists() and not root.is_dir():
        raise ArtifactError(f"{root}: a file, not a model directory")
    if not root.is_dir():
        raise ArtifactError(f"{role} directory not found: {root}{not_installed_hint(root)}")
    raise ArtifactError(
        f"{root}: neither {CLASSIFIER_MANIFEST} (an intent model) nor {RESPONDER_MANIFEST} (a responder): "
        "not a legacy-assistant model directory"
    )


def refuse_other_kind(path: str | Path, *, responder: bool, instead: str) -> None:
    """Refuse ``path`` when it holds the other kind of model than a command takes (``responder``:
    whether the command takes a responder), naming ``instead``, the command line for that kind:
    the loader's own message names an option (``--model``, ``--responder``) that commands taking
    one kind of model only do not have."""
    if is_responder(path) == responder:
        return
    kinds = {True: ("a responder", RESPONDER_MANIFEST), False: ("an intent model", CLASSIFIER_MANIFEST)}
    (found, manifest), wanted = kinds[not responder], kinds[responder][0]
    raise ArtifactError(f"{path}: {found} ({manifest}), not {wanted}: use '{instead}'")


def written_for(path: str | Path, role: str = "model") -> str:
    """The TensorFlow runtime a model directory's manifest names (``compat`` when it names none,
    or cannot be read: loading it then says what is wrong); ``role`` as :func:`is_responder`
    takes it."""
    manifest = Path(path) / (RESPONDER_MANIFEST if is_responder(path, role) else CLASSIFIER_MANIFEST)
    try:
        runtime = json.loads(read_input_bytes(manifest).decode("utf-8")).get("runtime", "compat")
    except (OSError, ValueError, AttributeError, RecursionError):  # UnicodeDecodeError is a ValueError
        return "compat"
    return runtime if isinstance(runtime, str) else "compat"


def mixed_runtimes(model: str, responder: str, *, command: str, both_copies: str, alone: str) -> str | None:
    """Why an intent model and a responder written for different runtimes cannot run together
    in one ``command`` (one process runs one runtime, so no ``--runtime`` loads both), with the
    way out; None when they are for the same runtime. ``both_copies``: what to do with two
    migrated copies ("chat with both copies"); ``alone``: the other way out ("--no-responder").
    Reads the manifests only."""
    model_runtime, responder_runtime = written_for(model), written_for(responder, role="responder")
    if model_runtime == responder_runtime:
        return None
    # migrate makes 'tf2' copies of compat models only: the way out depends on which is which
    if model_runtime == "tf2":
        way_out = (
            f"migrate the responder too (legacy-assistant migrate {shlex.quote(responder)} --out DIR) "
            "and give that copy with --responder DIR"
        )
    else:
        way_out = (
            f"give a {model_runtime!r} responder with --responder DIR (the one the copy was migrated from), "
            f"or migrate the intent model too (legacy-assistant migrate {shlex.quote(model)} --out DIR) "
            f"and {both_copies}"
        )
    return (
        f"{model} is an intent model for the {model_runtime!r} runtime and {responder} a responder for the "
        f"{responder_runtime!r} runtime; one {command} runs one runtime: {way_out}, or {alone}"
    )
