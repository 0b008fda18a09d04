"""A model directory on disk: written atomically, verified fully before use.

Both model families export the same kind of directory: a ``saved_model/`` folder, a JSON
manifest that records the sha256 of every file (and its own digest), and whatever else the
family writes (training history, plots). This module knows nothing of what the manifest
describes; :mod:`legacy_assistant.classifier.artifact` and the responder's artifact module add
their own fields and checks on top.

Everything is written into a temporary sibling folder and moved into place, so a crash leaves
either the old model or the new one, never half of one. Replacing an existing directory swaps the
two in one step where the system can (Linux ``renameat2(RENAME_EXCHANGE)``), so a reader never
finds the path missing; :func:`load_consistently` lets a reader that loads while a directory is
replaced retry instead of failing on a mix of old and new files. Loading recomputes every
checksum and refuses a missing, truncated or altered file by name. Nothing is pickled.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from compat.selection import UnknownRuntime, active, check_runtime_argument
from legacy_assistant import __version__
from legacy_assistant.common.fields import json_kind
from legacy_assistant.common.files import (
    blocking_file,
    is_device_or_pipe,
    make_parents,
    naming,
    open_for_writing,
    own_descriptor,
    readable_path,
    sync_folder,
    sync_tree,
)
from legacy_assistant.common.input_files import absent_file_problem, read_input_bytes
from legacy_assistant.common.jsonfile import loads_unique
from legacy_assistant.defaults import not_installed_hint
from legacy_assistant.errors import ArtifactError, RequestError

try:
    import fcntl
except ImportError:  # Windows: no lock tells a staging folder being written from an abandoned one
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

T = TypeVar("T")

SAVED_MODEL_DIR = "saved_model"
DIGEST_FIELD = "manifest_sha256"
# How long a load keeps retrying a directory that is being replaced again and again.
LOAD_PATIENCE_S = 60.0
_FIRST_PAUSE_S = 0.05
_LAST_PAUSE_S = 1.0


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | Path) -> dict[str, str]:
    """How a manifest names an input file: its name and sha256, never where it lay on disk."""
    path = Path(path)
    return {"name": readable_path(path.name), "sha256": sha256_file(path)}


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON, without its own digest field."""
    body = {k: v for k, v in manifest.items() if k != DIGEST_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON with a final newline."""
    with naming(path):
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_artifact(
    out_dir: str | Path,
    fill: Callable[[Path], dict[str, Any]],
    *,
    manifest_name: str,
    force: bool = False,
    check: Callable[[Path], None] | None = None,
    keep: Iterable[str] = (),
    replaces: str | None = None,
) -> Path:
    """Write a model directory atomically; returns its path. ``keep``: entries of an old
    ``out_dir`` (names; a folder's with a trailing ``/``) carried into the new one as they are,
    unlisted, before the swap. ``replaces``: the manifest digest of the model a rewrite of
    ``out_dir`` was made from; a model found there with another one is not replaced.

    ``fill(staging)`` writes the files into an empty temporary sibling of ``out_dir`` and
    returns the manifest (without ``files``/``manifest_sha256``, which are added here). The
    finished staging folder is then handed to ``check`` (which raises to abort, and may add a
    companion file the manifest does not list, a golden file) and renamed into place. On any
    error nothing is left behind and an old ``out_dir`` is untouched.
    """
    manifests = (*MODEL_MANIFESTS, manifest_name)
    check_destination(out_dir, force, manifests=manifests, keep=keep, writes=manifest_name)
    target = output_dir(out_dir)
    made = make_parents(target)  # removed again, when empty, if the export fails
    _remove_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(target), dir=target.parent))
    held = _lock_folder(staging)  # while it is held, no other export takes the folder for abandoned
    manifest: dict[str, Any] = {}
    try:
        # mkdtemp makes the folder private (0700); a model is meant to be served by other users.
        kept_mode = _give_folder_mode(staging, replaced=target)
        manifest = fill(staging)
        _give_folders_mode(staging)
        manifest["files"] = {
            path.relative_to(staging).as_posix(): sha256_file(path)
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        manifest[DIGEST_FIELD] = manifest_digest(manifest)
        write_json(staging / manifest_name, manifest)
        if check is not None:
            check(staging)
        _copy_kept(target, staging, keep)
        if kept_mode is not None:  # last: a read-only folder's (0555) would refuse the writes above
            os.chmod(staging, kept_mode)
        # On the disk before the swap, which deletes the old model: after a power cut the
        # folder holds the old model or the whole new one, never files the checksums refuse.
        sync_tree(staging)
        # Again: the destination may have appeared (another run writing there, a folder made by
        # hand) or changed while the model was written, and the swap must not replace it unasked.
        if not force and os.path.lexists(target):
            raise _appeared(target, "; choose another destination (or --force, force=True in Python)")
        check_destination(out_dir, force, manifests=manifests, keep=keep, writes=manifest_name)
        dropped = [
            name
            for name in MODEL_COMPANIONS
            if name not in set(keep) and (target / name).is_file() and not (staging / name).exists()
        ]
        if replaces is not None and digest_on_disk(target, manifest_name) != replaces:
            # another command (train --force, a migration) wrote a model there meanwhile: swapping
            # the rewrite of the old one in would throw the new one away without a word
            raise ArtifactError(
                f"{target} was replaced by another model while it was being written again: nothing was replaced; "
                "run the command again to rewrite the model now there"
            )
        retired = _replace_dir(staging, target)
    except BaseException as exc:
        # staging holds the old model where the stop came just after the swap: deleted all the
        # same, and the stop says the new one is in place
        with contextlib.suppress(OSError):  # given a read-only folder's permissions: emptied all the same
            os.chmod(staging, 0o700)
        shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(made):  # a folder another writer put something in meanwhile stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        written = manifest.get(DIGEST_FIELD)
        if isinstance(exc, KeyboardInterrupt) and written and digest_on_disk(target, manifest_name) == written:
            with stops_after_writing(target):
                raise
        raise
    finally:
        if held is not None:
            os.close(held)
    # From here the new model is in place, whole: a stop now (deleting a large old model takes
    # a while) says so, where it would otherwise pass for a stop that replaced nothing.
    with stops_after_writing(target):
        if retired is not None:
            _make_removable(retired)
            try:
                shutil.rmtree(retired, ignore_errors=True)
            except BaseException:
                shutil.rmtree(retired, ignore_errors=True)  # the stop came during the deletion: finish it
                raise
        try:  # the swap itself; the model is in place already, so a failure here is no failed export
            sync_folder(target.parent)
        except OSError as exc:
            log.warning(
                "%s: the folder could not be flushed to the disk after the model was swapped in: %s", target, exc
            )
        for name in dropped:  # the old model's predictions: a check against them would fail for nothing
            log.warning("%s: the replaced model's %s was not kept (write it again for this model)", target, name)
        log.info("exported %s", target)
    return target


@contextlib.contextmanager
def stops_after_writing(model_dir: Path) -> Iterator[None]:
    """Mark a stop (Ctrl-C, or SIGTERM taken as one) that comes in the body, once the model in
    ``model_dir`` is written whole, with that folder (:func:`written_before_stop` reads it back):
    the command then says that the new model is in place rather than let the stop pass for
    one that left the old model."""
    try:
        yield
    except KeyboardInterrupt as stop:
        if written_before_stop(stop) is None:
            stop.written = model_dir  # type: ignore[attr-defined]
        raise


def written_before_stop(stop: BaseException) -> Path | None:
    """The model folder a stop came after writing (see :func:`stops_after_writing`), or None."""
    written = getattr(stop, "written", None)
    return written if isinstance(written, Path) else None


def _copy_kept(old: Path, staging: Path, names: Iterable[str]) -> None:
    """Copy the entries ``names`` of the model directory ``old`` into ``staging`` as they are (a
    link as a link): kept across a rewrite of the model, and lost with nothing if it fails."""
    for name in names:
        source, copy = old / name.rstrip("/"), staging / name.rstrip("/")
        if source.is_symlink():
            os.symlink(os.readlink(source), copy)
        elif source.is_dir():
            shutil.copytree(source, copy, symlinks=True)
        elif source.exists():
            shutil.copy2(source, copy)


def _make_removable(root: Path) -> None:
    """Let this user empty the folders under ``root`` (``root`` too) that it owns: a model made
    read-only (``chmod -R a-w``) and then replaced kept its files after the swap, and the old
    model stayed beside the new one in a hidden folder, since no entry of a folder without write
    permission can be deleted (but by root)."""
    _add_owner_rights(root)
    for folder, subfolders, _ in os.walk(root):  # top-down: each is listed after it is given u+rwx
        for name in subfolders:
            _add_owner_rights(os.path.join(folder, name))


def _add_owner_rights(folder: str | Path) -> None:
    with contextlib.suppress(OSError):  # another user's: left as it is (rmtree says nothing either way)
        mode = os.stat(folder, follow_symlinks=False).st_mode
        if stat.S_ISDIR(mode):
            os.chmod(folder, stat.S_IMODE(mode) | stat.S_IRWXU)


def _give_folders_mode(root: Path) -> None:
    """Give the folders under ``root`` what ``mkdir`` gives under the umask: TensorFlow makes its
    own (``saved_model/``, ``variables/``) 0755 whatever the umask, so under umask 002, where its
    files are 0664 for a group that deploys models together, they were the one thing the group
    could not write (a member's ``--force`` could not delete the old model, left beside it)."""
    for path in root.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            _give_folder_mode(path)


def _give_folder_mode(folder: Path, replaced: Path | None = None) -> int | None:
    """Give ``folder`` what ``mkdir`` gives under the umask, keeping the set-group-ID bit it
    inherited from a folder that has it (``chmod g+s``, a folder shared by a group that deploys
    models): cleared, the files written into it got the writer's own group instead of the shared
    one, which the service user, in that group, could not read under umask 027.

    ``replaced``: the model folder ``folder`` will replace; where there is one, its permissions
    and group are kept, as a file written over another keeps its mode: a model an operator made
    private to the service's group (``chmod 750``, ``chgrp``) became readable by every user
    when it was written again (``train --force``, ``reexport-responder``). The group is given
    here, before the folder is filled (its set-group-ID bit hands it on); the permissions are
    returned, to be given once it is (None: no folder replaced)."""
    try:
        old = os.stat(replaced, follow_symlinks=False) if replaced is not None else None
    except OSError:  # none there (a new model)
        old = None
    if old is None or not stat.S_ISDIR(old.st_mode):
        os.chmod(folder, _directory_mode() | (os.stat(folder).st_mode & stat.S_ISGID))
        return None
    inherited = os.stat(folder).st_mode & stat.S_ISGID
    with contextlib.suppress(OSError):  # a group this user is not in: the folder's own stays
        if hasattr(os, "chown"):  # not on Windows, which has no groups of this kind
            os.chown(folder, -1, old.st_gid)
    # the bit inherited from a shared folder is kept too while the folder is filled: a model an
    # earlier release wrote there lost it, and its files got the writer's own group at each rewrite
    os.chmod(folder, _directory_mode() | inherited | (old.st_mode & stat.S_ISGID))
    return stat.S_IMODE(old.st_mode)


def _directory_mode() -> int:
    """0777 less the process's umask: what ``mkdir`` would have given (usually 0755)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o777 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o777 & ~mask


def _appeared(target: Path, advice: str = "") -> ArtifactError:
    """The refusal of a destination made while the model was being written."""
    return ArtifactError(
        f"{target} appeared while the model was being written (another run writing there?): nothing was replaced"
        + advice
    )


def _rename_new(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, which must not exist: one made in the moment since it was
    checked is refused, not replaced (``rename`` would replace an empty folder)."""
    if _renameat2(staging, target, 1):  # RENAME_NOREPLACE
        return
    os.rename(staging, target)  # no renameat2: a folder that appeared is refused unless empty


def _renameat2(first: Path, second: Path, flags: int) -> bool:
    """``renameat2(first, second, flags)``; False where the system cannot (then nothing moved).
    A path that exists where ``flags`` forbid it is an :class:`ArtifactError`."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # glibc before 2.28, musl
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # old kernel, or a file system without it
        return False
    if code == errno.EEXIST:
        raise _appeared(second)
    raise OSError(code, os.strerror(code), str(second))


def _exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step; False where the system cannot (then nothing moved)."""
    return _renameat2(first, second, 2)  # RENAME_EXCHANGE


def overlaps(a: str | Path, b: str | Path) -> bool:
    """Whether one of two folders is, or lies inside, the other (so writing one replaces or
    alters the other)."""
    first, second = Path(a).resolve(), Path(b).resolve()
    return first == second or first in second.parents or second in first.parents


# The manifests that mark a folder as a model directory (an intent model, a responder), which
# ``force`` may replace.
CLASSIFIER_MANIFEST = "assistant.json"
RESPONDER_MANIFEST = "responder.json"
MODEL_MANIFESTS = (CLASSIFIER_MANIFEST, RESPONDER_MANIFEST)
_KIND_OF = {CLASSIFIER_MANIFEST: "an intent model", RESPONDER_MANIFEST: "a responder"}


def output_dir(out_dir: str | Path) -> Path:
    """``out_dir`` as the absolute path a model directory is written to: ``.`` and ``..`` have no
    name to give the model or its staging sibling, and ``.`` cannot be renamed where its absolute
    path can (the working directory, replaced, stays a handle on the old one)."""
    if not str(out_dir).strip():
        raise ArtifactError("the output directory is an empty path: name a directory")
    return Path(os.path.abspath(out_dir))


def check_destination(
    out_dir: str | Path,
    force: bool,
    inputs: Iterable[str | Path] = (),
    manifests: Iterable[str] = MODEL_MANIFESTS,
    keep: Iterable[str] = (),
    writes: str | None = None,
) -> None:
    """Refuse, before any work, a destination a model directory cannot be written to: an
    existing path without ``force``, an existing file (even with ``force``: it is not a model
    directory), a symbolic link (the swap would replace the link), a folder that holds files
    but no model (``force`` replaces models only: it would delete them), a folder that holds
    one of ``inputs`` (the command's own input files, which replacing it would delete), or a
    place whose nearest existing folder is missing or not writable. A folder with one of
    ``manifests`` is a model directory; the names in ``keep`` are carried into the new one by
    the caller, so they are no reason to refuse it. ``writes``, the manifest of the kind of
    model to be written, refuses a directory of the other kind: ``force`` replaces a model with
    a model of its kind, not a responder (hours of training) with an intent model."""
    target = Path(out_dir)
    manifests = tuple(dict.fromkeys(manifests))
    if not str(out_dir).strip():
        raise ArtifactError("the output directory is an empty path: name a directory")
    if target.is_symlink():  # the swap that writes a model would replace the link, not its target
        raise ArtifactError(
            f"{target} is a symbolic link (to {os.readlink(target)}): name the directory itself as the destination"
        )
    for source in inputs:
        try:
            resolved = Path(source).resolve()
        except (RuntimeError, OSError):  # a symbolic link loop: the reader of the input names it
            continue
        if target.resolve() == resolved:
            raise ArtifactError(f"{target} is {source}, an input of this command: choose another destination")
        if target.resolve() in resolved.parents:
            raise ArtifactError(f"{target} holds {source}, an input of this command: choose another destination")
    if target.exists() and not target.is_dir():
        raise ArtifactError(f"{target} is a file, not a model directory: choose another destination")
    if writes is not None:  # before "already exists": --force would not help
        refuse_other_kind(target, writes)
    if target.exists() and not force:
        raise ArtifactError(f"{target} already exists (--force, or force=True in Python, replaces it)")
    if target.is_dir() and any(target.iterdir()) and not any((target / name).is_file() for name in manifests):
        raise ArtifactError(
            f"{target} holds files but no model ({' or '.join(manifests)}): --force replaces a model "
            "directory only, so choose another destination or empty it yourself"
        )
    kept = set(keep)
    foreign = [name for name in _not_of_the_model(target, manifests) if name not in kept] if target.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ArtifactError(
            f"{target} holds {shown}, which {'is' if len(foreign) == 1 else 'are'} not part of its model: "
            "--force replaces the whole directory and would delete them; move them away or choose another destination"
        )
    check_writable_place(target, f"{target}: cannot write there")
    check_tensorflow_path(target)


def check_tensorflow_path(path: str | Path) -> None:
    """Refuse (:class:`ArtifactError`), before any work, a place whose absolute path is not UTF-8:
    TensorFlow writes SavedModels and checkpoints to UTF-8 paths only, and training would end in
    a UnicodeEncodeError at the export."""
    from compat.interface import SavedModelError, tensorflow_path

    absolute = os.path.abspath(path)
    try:
        tensorflow_path(absolute)
    except SavedModelError as exc:
        raise ArtifactError(str(exc)) from None
    if not absolute.isascii() and sys.getfilesystemencoding().lower().replace("-", "") != "utf8":
        # TensorFlow's C++ side opens the UTF-8 name, its Python side (a glob at every save) the
        # name in this encoding: the save fails halfway, or under Latin-1 looks for another file
        raise ArtifactError(
            f"{readable_path(absolute)}: TensorFlow cannot write under a path with non-ASCII characters while "
            f"Python's file system encoding is {sys.getfilesystemencoding()} (a locale that is not UTF-8): set "
            "PYTHONUTF8=1 or a UTF-8 locale such as LC_ALL=C.UTF-8, or choose an ASCII path"
        )


def refuse_other_kind(out_dir: str | Path, writes: str) -> None:
    """Refuse (:class:`ArtifactError`) a directory holding the other kind of model than the one
    whose manifest is ``writes``: ``force`` replaces a model with one of its kind only."""
    target = Path(out_dir)
    if not target.is_dir() or (target / writes).is_file():
        return
    other = next((name for name in MODEL_MANIFESTS if name != writes and (target / name).is_file()), None)
    if other is not None:
        raise ArtifactError(
            f"{target} holds {_KIND_OF[other]} ({other}) and this writes {_KIND_OF.get(writes, writes)}: "
            "--force replaces a model of the same kind only; choose another destination, or remove it yourself"
        )


def check_writable_place(target: Path, refusal: str) -> None:
    """Refuse (:class:`ArtifactError`), with ``refusal`` and the system's reason, a ``target``
    whose nearest existing folder cannot take a new entry (before any work, not when the result
    is written)."""
    parent = target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:  # a folder made and removed again: permissions, read-only or special file systems alike
        os.rmdir(tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=parent))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT and parent.is_dir():
            # /proc's answer to a new entry: "(/proc: No such file or directory)" read as /proc missing
            reason = "a folder that takes no new files or folders (a special file system, such as /proc)"
        raise ArtifactError(f"{refusal} ({parent}: {reason})") from None


# What a model directory holds besides the files its manifest lists: the golden file written
# for it (``golden``, ``make default-model``), which a retrained model makes stale anyway.
MODEL_COMPANIONS = ("golden.json",)
# What a model directory holds when its manifest cannot be read (a damaged model may be replaced).
_USUAL_MODEL_FILES = (SAVED_MODEL_DIR, "history.json", "history.png")


def _not_of_the_model(directory: Path, manifests: Sequence[str]) -> list[str]:
    """The entries of model ``directory`` (names, sorted; folders with a trailing ``/``) that are
    neither a manifest, a file its manifest lists (by top-level name), nor a companion file."""
    own = _owned_names(directory, manifests)
    return sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir() if p.name not in own)


def _owned_names(directory: Path, manifests: Sequence[str]) -> set[str]:
    """The top-level names model ``directory`` owns: its ``manifests``, the files they list, and
    its companion files (the usual names where no manifest can be read)."""
    own = {*manifests, *MODEL_COMPANIONS}
    listed: set[str] = set()
    for name in manifests:
        try:
            files = json.loads(read_input_bytes(directory / name).decode("utf-8")).get("files")
        # absent or damaged (RecursionError: nested too deeply): the usual names
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(files, (dict, list)):  # a damaged manifest's string would list its characters
            listed.update(str(path).split("/", 1)[0] for path in files)
    return own | (listed or set(_USUAL_MODEL_FILES))


def check_written_files(
    paths: Iterable[str | Path], model_dir: str | Path, inputs: Iterable[str | Path] = (), allowed: Iterable[str] = ()
) -> None:
    """Refuse, before any work, to write a report over a file of the model it is about (its
    manifest, weights, history, golden file: anything already in ``model_dir`` except the names
    in ``allowed``) or over one of the command's ``inputs``, onto a folder, or under a file."""
    model = Path(model_dir).resolve()
    sources = {Path(source).resolve() for source in inputs}
    for path in paths:
        if not str(path).strip():  # Path("") is "." and "" would mean "the default" to a caller
            raise ArtifactError("an output file is an empty path: name a file")
        if Path(path).is_dir():
            raise ArtifactError(f"{path} is a folder: name a file to write")
        blocking = blocking_file(path)
        if blocking is not None:
            raise ArtifactError(f"{path} cannot be written: {blocking} is a file, not a folder")
        target = Path(path).resolve()
        if target in sources:
            raise ArtifactError(f"{path} is an input of this command: write somewhere else")
        if model in target.parents and target.exists() and target.relative_to(model).as_posix() not in allowed:
            raise ArtifactError(f"{path} is a file of the model {model_dir}: write somewhere else")
        if model / SAVED_MODEL_DIR in target.parents:  # its every file is listed: a new one damages the model
            raise ArtifactError(f"{path} is inside the SavedModel of {model_dir}: write somewhere else")
        other = _other_model_holding(target, model)
        if other is not None:
            raise ArtifactError(f"{path} is a file of another model, {other}: write somewhere else")
        descriptor = own_descriptor(path)
        if not is_device_or_pipe(path):
            check_writable_place(Path(path), f"{path} cannot be written")
        elif descriptor is not None and not open_for_writing(descriptor):  # /dev/stdout after >&-, /dev/stdin
            raise ArtifactError(
                f"{path} cannot be written: it names file descriptor {descriptor}, which is closed or open for "
                "reading only"
            )
        elif model in target.parents:  # a pipe in a model's folder: a write would wait for a reader for ever
            raise ArtifactError(f"{path} {absent_file_problem(path)} in a model folder: remove it")
        elif not os.access(path, os.W_OK):  # written in place (/dev/stdout): no new file is made in its folder
            raise ArtifactError(f"{path} cannot be written (permission denied)")


def _other_model_holding(target: Path, model: Path) -> Path | None:
    """The model directory other than ``model`` that ``target`` is a file of (a manifest, a file
    its manifest lists, its golden file, anything in its SavedModel), if any: a report written
    over another model's manifest broke it as surely as one over the command's own. Not looked
    for above ``model`` (a responder kept inside a classifier's folder writes its own golden
    file), nor for a file of one's own beside another model (a report written there before)."""
    for folder in target.parents:
        if folder == model:
            return None
        manifests = [name for name in MODEL_MANIFESTS if (folder / name).is_file()]
        if manifests:
            top = target.relative_to(folder).parts[0]
            return folder if top == SAVED_MODEL_DIR or top in _owned_names(folder, manifests) else None
    return None


def _staging_prefix(target: Path) -> str:
    """The start of the names of ``target``'s staging siblings: ``.model.tmp-``."""
    return f".{target.name}.tmp-"


# An unlocked staging folder this recent may be one whose export has not locked it yet.
ABANDONED_AFTER = 60.0  # seconds


def _lock_folder(folder: Path) -> int | None:
    """An exclusive lock on ``folder``, held until the returned descriptor is closed; None when it
    is locked already or the system gives no lock on it (Windows; a file system without flock)."""
    if fcntl is None:
        return None
    try:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        return None
    return descriptor


def _remove_leftovers(target: Path) -> None:
    """Remove the staging folders beside ``target`` that no export writes any more: one killed
    (SIGKILL, a power cut) leaves its folder, a whole model's size, which nothing else would
    ever remove. An export holds a lock on its folder (:func:`_lock_folder`), which ends with
    its process, on this machine or in another container on the same disk; a folder locked,
    made in the last minute, or on a system without such locks is left alone."""
    prefix = _staging_prefix(target)
    try:
        siblings = [entry for entry in os.scandir(target.parent) if entry.name.startswith(prefix)]
    except OSError:
        return
    for entry in siblings:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < ABANDONED_AFTER:
                continue
        except OSError:
            continue
        held = _lock_folder(Path(entry.path))
        if held is None:
            continue
        try:
            # it may hold a read-only model (the replaced one, or a new one given its permissions)
            _make_removable(Path(entry.path))
            shutil.rmtree(entry.path)
        except OSError as exc:  # another user's, in a shared folder: it stays, and each export said "removing" again
            log.warning("cannot remove %s, left by an export that was killed: %s; its owner can", entry.path, exc)
        else:
            log.warning("removed %s, left by an export that was killed", entry.path)
        finally:
            os.close(held)


def _replace_dir(staging: Path, target: Path) -> Path | None:
    """Put ``staging`` in ``target``'s place; returns the folder that now holds the replaced
    model, for the caller to delete (None where there was none)."""
    if not os.path.lexists(target):
        _rename_new(staging, target)
        return None
    if _exchange(staging, target):
        return staging  # staging now holds the old directory
    # Two renames: a reader can find ``target`` missing for that moment.
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(retired)
    os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:  # a stop between the two renames, or a failed second one: the old model back
        os.rename(retired, target)
        raise
    return retired


def digest_on_disk(root: Path, manifest_name: str) -> str | None:
    """The digest the manifest of ``root`` records (None: no readable manifest there)."""
    raw = _manifest_on_disk(root, manifest_name)
    try:
        manifest = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    return manifest.get(DIGEST_FIELD) if isinstance(manifest, dict) else None


def _manifest_on_disk(root: Path, manifest_name: str) -> bytes | None:
    try:
        return read_input_bytes(root / manifest_name)  # a pipe in its place is refused, not waited on
    except OSError:
        return None


class UnknownRuntimeArgument(RequestError, UnknownRuntime):
    """A ``runtime`` argument of a load that names neither runtime: a bad argument, as every
    other is (:class:`~legacy_assistant.errors.RequestError`), and still the
    :class:`compat.selection.UnknownRuntime` it was."""


def check_load_arguments(path: object, runtime: str | None, name: str = "path") -> None:
    """Refuse a model path that is no string or path, and a ``runtime`` that names neither
    runtime (None: the process's choice), before anything is read. ``name``: the path's
    argument, as the caller named it.

    Raises:
        RequestError: naming the argument (:class:`UnknownRuntimeArgument` for ``runtime``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise RequestError(f"{name} must be a string or an os.PathLike, got {type(path).__name__}")
    try:
        check_runtime_argument(runtime)
    except UnknownRuntime as exc:
        raise UnknownRuntimeArgument(str(exc)) from None


def runtime_mismatch(path: str | Path, written_for: str, chosen: str, source: str = "") -> ArtifactError:
    """The refusal of a model written for runtime ``written_for`` asked to load with ``chosen``
    (``source``: :func:`compat.selection.source_note`), saying how to load it. A process whose
    TensorFlow already runs a runtime keeps it: there, loading with the model's runtime raises
    :class:`compat.selection.RuntimeConflict`, so the advice is a process of its own."""
    running = active()
    if running is not None and running != written_for:
        advice = (
            f"this process already runs runtime {running!r} and cannot switch: load it in a process of its own "
            f"with runtime={written_for!r}, or --runtime {written_for} on the command line"
        )
    else:
        advice = f"load it with runtime={written_for!r}, or --runtime {written_for} on the command line"
    return ArtifactError(
        f"{path}: a model for the {written_for!r} runtime cannot be loaded with runtime {chosen!r}{source} ({advice})"
    )


def load_consistently(
    path: str | Path,
    load: Callable[[], T],
    *,
    manifest_name: str,
    discard: Callable[[T], None] = lambda loaded: None,
    patience_s: float = LOAD_PATIENCE_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``load()`` (which verifies and loads ``path``) until no replacement overlapped it.

    A directory replaced while it is read can show a reader the old manifest with new files, or
    files of the old one deleted under it. A load whose manifest changed while it ran is
    ``discard``-ed and tried again after a short pause (doubling from 50 ms to 1 s, so a writer
    that replaces the directory several times in a row can finish); a load that failed while the
    manifest stayed the same is a real error and raised at once. The retries stop, with an
    :class:`ArtifactError`, once the directory has kept changing for ``patience_s`` seconds.
    How many replacements a load can overlap depends on how fast the machine is, so the limit is a
    time and not a count.
    """
    root = Path(path)
    deadline = clock() + patience_s
    pause = _FIRST_PAUSE_S
    overlapped = 0
    while True:
        before = _manifest_on_disk(root, manifest_name)
        try:
            loaded = load()
        except (ArtifactError, OSError):
            if _manifest_on_disk(root, manifest_name) == before:
                raise
        else:
            if _manifest_on_disk(root, manifest_name) == before:
                return loaded
            discard(loaded)
        overlapped += 1
        if clock() >= deadline:
            raise ArtifactError(
                f"{root}: replaced while it was being loaded, {overlapped} times in {patience_s:g} s; "
                "load it again once it is written"
            )
        log.info("%s changed while it was loaded; loading it again", root)
        sleep(pause)
        pause = min(pause * 2, _LAST_PAUSE_S)


def _newer_release(found: object, formats: tuple[str, ...]) -> str:
    """What to do about a manifest whose format is a later version of one this release reads
    (``legacy-assistant/2`` where it reads ``legacy-assistant/1``): a newer release wrote it."""
    if not isinstance(found, str):
        return ""
    name, _, version = found.rpartition("/")
    for known in formats:
        known_name, _, known_version = known.rpartition("/")
        if name == known_name and _version_number(version) > _version_number(known_version) >= 0:
            return f" (a newer release of legacy-assistant wrote it than this one, {__version__}: upgrade to load it)"
    return ""


def _version_number(text: str) -> int:
    """A format's version as a number; -1 where it is none (a short run of ASCII digits only:
    ``int`` also takes other scripts' digits, and refuses thousands of them)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else -1


def verify_directory(path: str | Path, *, manifest_name: str, formats: tuple[str, ...]) -> dict[str, Any]:
    """Check that ``path`` is a complete, unaltered model directory; return its manifest.

    Raises :class:`ArtifactError` naming the file at fault: a missing or non-JSON manifest, a
    format not in ``formats``, a manifest whose digest does not match, a listed file missing or
    altered, or a file in ``saved_model/`` that the manifest does not list; also a directory
    or file this user may not look into (``cannot be read (Permission denied)``), which the
    checks of what a path is met as an :class:`OSError` of their own.
    """
    with refused_if_unreadable(path):  # a folder without search permission: stat() itself is refused
        return _verify_directory(Path(path), manifest_name=manifest_name, formats=formats)


@contextlib.contextmanager
def refused_if_unreadable(path: str | Path) -> Iterator[None]:
    """An :class:`OSError` met looking at the model path ``path`` (no search permission on a
    folder on the way, a name too long, an I/O error) raised as the :class:`ArtifactError`
    ``PATH: cannot be read (REASON)``, in the form of every other refusal of a model directory,
    not the system's own message. One that names no file (``os.getcwd()`` for a relative path:
    the working folder is gone) goes on as it is, for the command's own line that names it."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise
        raise ArtifactError(f"{exc.filename or path}: cannot be read ({exc.strerror or exc})") from None


def _verify_directory(root: Path, *, manifest_name: str, formats: tuple[str, ...]) -> dict[str, Any]:
    """:func:`verify_directory`, whose :class:`OSError` it lets through."""
    if root.exists() and not root.is_dir():
        raise ArtifactError(f"{root}: a file, not a model directory (a model is a directory with {manifest_name})")
    if not root.is_dir():
        kind = {RESPONDER_MANIFEST: "responder directory"}.get(manifest_name, "model directory")
        raise ArtifactError(f"{kind} not found: {root}{not_installed_hint(root)}")
    manifest_path = root / manifest_name
    inside = root.resolve()
    if os.path.lexists(manifest_path) and not manifest_path.is_file():  # a folder, a pipe, a broken link
        raise ArtifactError(f"{manifest_path}: damaged: {absent_file_problem(manifest_path)}")
    if manifest_path.is_file() and inside not in manifest_path.resolve().parents:
        # the manifest vouches for every other file: one from elsewhere could vouch for anything
        raise ArtifactError(f"{manifest_path}: a link to a file outside the model directory")
    if not manifest_path.is_file():
        other = next((name for name in MODEL_MANIFESTS if name != manifest_name and (root / name).is_file()), None)
        if other is not None:  # the other kind of model: say which, and where it goes
            kinds = {
                CLASSIFIER_MANIFEST: ("an intent model", "--model"),
                RESPONDER_MANIFEST: ("a responder", "--responder"),
            }
            kind, flag = kinds[other]
            wanted = kinds.get(manifest_name, ("a model of another kind", ""))[0]
            raise ArtifactError(
                f"{root}: {kind} ({other}), not {wanted} (no {manifest_name}); load it as {kind} ({flag})"
            )
        raise ArtifactError(f"{manifest_path}: missing: not a legacy-assistant model directory")
    try:
        # a key given twice would be read as its last value while a person reading the file
        # sees the first; an integer of thousands of digits or very deep nesting is no manifest
        manifest = loads_unique(read_input_bytes(manifest_path).decode("utf-8"), locate=True)
    except OSError as exc:  # no permission; a manifest replaced by a folder or a pipe just now
        raise ArtifactError(f"{manifest_path}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, DuplicateKeyError, the digit limit
        raise ArtifactError(f"{manifest_path}: damaged: not valid JSON ({exc})") from None
    except RecursionError:
        raise ArtifactError(f"{manifest_path}: damaged: not valid JSON (nested too deeply)") from None
    if not isinstance(manifest, dict):  # a list or a string is no manifest of any format
        raise ArtifactError(f"{manifest_path}: damaged: JSON {json_kind(manifest)}, where a manifest is an object")
    if manifest.get("format") not in formats:
        found = manifest.get("format")
        expected = formats[0] if len(formats) == 1 else formats
        raise ArtifactError(
            f"{manifest_path}: unsupported format {found!r}, expected {expected!r}{_newer_release(found, formats)}"
        )
    try:
        own_digest = manifest_digest(manifest)
    except UnicodeEncodeError as exc:  # a lone surrogate escape ("\\ud800"): valid JSON, but no text
        raise ArtifactError(
            f"{manifest_path}: damaged: holds a lone surrogate escape ({ascii(exc.object[exc.start])}), "
            "which is not Unicode text"
        ) from None
    if manifest.get(DIGEST_FIELD) != own_digest:
        raise ArtifactError(f"{manifest_path}: altered: its content does not match its recorded checksum")

    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{manifest_path}: lists no files")
    for relative, expected_sha in sorted(files.items()):
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ArtifactError(f"{manifest_path}: lists {relative!r}, a file outside the model directory")
        file_path = root / relative
        if not file_path.is_file():
            if os.path.lexists(file_path):  # a folder, a pipe or a broken link where the file should be
                raise ArtifactError(
                    f"{file_path}: damaged: {_not_a_file(file_path)}, where {manifest_name} lists a file"
                )
            raise ArtifactError(f"{file_path}: missing from the model directory")
        if inside not in file_path.resolve().parents:  # a link that leads out of the directory
            raise ArtifactError(f"{file_path}: a link to a file outside the model directory")
        try:
            digest = sha256_file(file_path)
        except OSError as exc:
            raise ArtifactError(f"{file_path}: cannot be read ({exc.strerror or exc})") from None
        if digest != expected_sha:
            raise ArtifactError(f"{file_path}: altered or truncated: sha256 does not match {manifest_name}")
    saved_model = root / SAVED_MODEL_DIR
    present = _saved_model_entries(saved_model, root) if saved_model.is_dir() else []
    unexpected = [(name, what) for name, what in present if name not in files]
    if unexpected:
        name, what = unexpected[0]
        raise ArtifactError(f"{root / name}: unexpected {what} in the SavedModel, not listed in {manifest_name}")
    return manifest


def _not_a_file(path: Path) -> str:
    """What is at ``path`` instead of a regular file: a folder, a device or pipe, a broken link."""
    if path.is_symlink() and not path.exists():
        return f"a symbolic link to {os.readlink(path)}, which is not there"
    return absent_file_problem(path)


def _saved_model_entries(saved_model: Path, root: Path) -> list[tuple[str, str]]:
    """Every entry under ``saved_model`` but its real folders, as (path relative to ``root``,
    what it is), sorted: regular files, and also links to folders (which ``Path.rglob`` does not
    enter, so a linked folder of files from elsewhere went unseen), pipes, sockets and broken
    links, which no export writes."""
    entries: list[tuple[str, str]] = []
    for folder, folders, names in os.walk(saved_model):  # links to folders are listed, not entered
        base = Path(folder)
        for name in folders:
            if (base / name).is_symlink():
                entries.append(((base / name).relative_to(root).as_posix(), "link to a folder"))
        for name in names:
            path = base / name
            what = "file" if path.is_file() else "entry (no regular file)"
            entries.append((path.relative_to(root).as_posix(), what))
    return sorted(entries)
