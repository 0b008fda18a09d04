"""One training run at a time in a checkpoint directory: :func:`hold_checkpoint_dir` takes an
advisory lock on the folder (``flock``); another run that asks for the folder meanwhile is
refused, naming the folder and the process that holds it. The kernel ends the lock with its
process, so a run killed with ``kill -9`` leaves nothing to clean up before it is resumed."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from legacy_assistant.errors import TrainingError

try:
    import fcntl
except ImportError:  # Windows: no flock, and two runs in one folder are not refused
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

HOLDER_FILE = ".holder"  # who holds the folder's lock: named when another run is refused
# In a checkpoint folder the command made for itself (no --checkpoint-dir given) and removes after
# the export: such a folder found unlocked, its run killed, is removed by a later run. A folder
# kept on purpose (its path printed to resume or export it) loses the note.
TEMPORARY_FILE = ".temporary"
# An unlocked folder this recent may be one whose run has not locked it yet.
ABANDONED_AFTER = 60.0  # seconds

# Folders (device, inode) this process holds, with the thread that holds each and how deep: a
# second flock of the same folder from this process, on another descriptor, would be refused as
# if another run held it. Only the holding thread nests; another thread is another run.
_held: dict[tuple[int, int], tuple[int, int]] = {}
_held_guard = threading.Lock()


@contextmanager
def hold_checkpoint_dir(directory: str | Path) -> Iterator[Path]:
    """Hold ``directory`` (made if missing) for one training run, until the block ends.

    Another run that holds it (another process: a second terminal, an overlapping cron job) is
    refused with a :class:`TrainingError` naming the folder and that process, as is another thread
    of this process; within one thread the hold nests. The lock is the kernel's ``flock`` on the
    folder itself, so it needs no write access (a finished run in a read-only folder still
    exports) and ends with its process: after ``kill -9`` the folder is free at once. A folder
    made here and left empty is removed again.
    """
    directory = Path(directory)
    made = not directory.exists()
    descriptor = _lock_checkpoint_dir(directory)
    if descriptor is None:
        yield directory
        return
    try:
        yield directory
    finally:
        with _held_guard:
            key = _folder_key(descriptor)
            owner, depth = _held[key]
            _held[key] = (owner, depth - 1)
            if depth == 1:
                del _held[key]
                _release(directory, made)
            os.close(descriptor)  # the first descriptor holds the flock: closed last, it ends it


def _folder_key(descriptor: int) -> tuple[int, int]:
    status = os.fstat(descriptor)
    return status.st_dev, status.st_ino


def _lock_checkpoint_dir(directory: Path) -> int | None:
    """A descriptor of ``directory`` that holds its lock (None where the system has no flock)."""
    if fcntl is None:
        return None
    while True:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError as exc:
            raise TrainingError(f"{directory}: cannot open the checkpoint directory ({exc.strerror or exc})") from None
        with _held_guard:
            key = _folder_key(descriptor)
            if key in _held:  # this process holds it already; the lock stays while a descriptor is open
                owner, depth = _held[key]
                if owner != threading.get_ident():  # two runs at once in one process train over each other too
                    os.close(descriptor)
                    raise TrainingError(
                        f"{directory}: another training run in this process (another thread) is using this "
                        "checkpoint directory; wait for it to end, or choose another checkpoint directory"
                    )
                _held[key] = (owner, depth + 1)
                return descriptor
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(descriptor)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # a file system without flock
                    log.warning("%s: the checkpoint directory cannot be locked (%s)", directory, exc)
                    return None
                raise TrainingError(
                    f"{directory}: another training run is using this checkpoint directory ({_holder(directory)}); "
                    "wait for it to end (or stop it), or choose another checkpoint directory"
                ) from None
            try:
                current = os.stat(directory)
            except OSError:
                current = None
            if current is None or (current.st_dev, current.st_ino) != key:
                # the run that held it removed the empty folder it had made: lock the new one
                os.close(descriptor)
                continue
            _held[key] = (threading.get_ident(), 1)
        try:  # for the message of a run refused; the lock works without it (a read-only folder)
            with open(directory / HOLDER_FILE, "w", encoding="utf-8") as note:
                note.write(f"{os.getpid()} {socket.gethostname()}\n")
        except OSError:
            pass
        return descriptor


def _release(directory: Path, made: bool) -> None:
    """Before the lock ends: remove this process's note, and the folder if it made it and no
    run was written there (a run refused, or failed before its first file)."""
    note = directory / HOLDER_FILE
    try:
        if note.read_text(encoding="utf-8").split()[:1] == [str(os.getpid())]:
            note.unlink()
    except (OSError, UnicodeDecodeError):
        pass
    if made:
        try:
            directory.rmdir()
        except OSError:  # not empty: a run, or files of someone else's
            pass


def _holder(directory: Path) -> str:
    """The process that holds ``directory``, in words, as it wrote itself down."""
    try:
        pid, host = (directory / HOLDER_FILE).read_text(encoding="utf-8").split()[:2]
    except (OSError, UnicodeDecodeError, ValueError):
        return "a process that did not say which"
    return f"process {pid} on {host}" if host != socket.gethostname() else f"process {pid}"


def mark_temporary(directory: Path, temporary: bool) -> None:
    """Note in ``directory`` (held by this process) whether it is a temporary checkpoint folder
    that a later run may remove once its run is gone (:func:`remove_abandoned`), or one kept:
    named by the user, or printed to them to resume from. A note that cannot be written or
    removed (a read-only folder) is left as it is."""
    note = directory / TEMPORARY_FILE
    try:
        if temporary:
            note.write_bytes(b"")
        else:
            note.unlink(missing_ok=True)
    except OSError:
        pass


def remove_abandoned(parent: Path, prefix: str) -> None:
    """Remove the temporary checkpoint folders in ``parent`` (named ``prefix...``, holding
    :data:`TEMPORARY_FILE`) whose run was killed (``kill -9``, the out-of-memory killer): nothing
    else would ever remove them, nor tell the user where they are, and each holds the last
    checkpoints of a whole model. A folder locked by its run, changed in the last minute, kept on
    purpose or on a system without ``flock`` is left alone, and so is another user's, and one
    whose run was on another machine (a temporary folder shared between machines, where a lock
    may be seen only by the machine that took it)."""
    if fcntl is None:
        return
    try:
        entries = [entry for entry in os.scandir(parent) if entry.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False) or not os.path.isfile(os.path.join(entry.path, TEMPORARY_FILE)):
                continue
            status = entry.stat(follow_symlinks=False)
            if status.st_uid != os.getuid() or time.time() - status.st_mtime < ABANDONED_AFTER:
                continue
            descriptor = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its run goes on (or the system gives no lock here)
            os.close(descriptor)
            continue
        if not _held_on_this_machine(Path(entry.path)):  # its run may go on there, its lock unseen here
            os.close(descriptor)
            continue
        try:
            shutil.rmtree(entry.path)
        except OSError as exc:  # another user's, in a shared temporary folder
            log.warning("cannot remove %s, left by a training run that was killed: %s", entry.path, exc)
        else:
            log.warning("removed %s, the checkpoints of a training run that was killed", entry.path)
        finally:
            os.close(descriptor)


def _held_on_this_machine(directory: Path) -> bool:
    """Whether the last run that held ``directory`` ran on this machine, as its note says (a
    note that is missing or unreadable says nothing against it)."""
    try:
        host = (directory / HOLDER_FILE).read_text(encoding="utf-8").split()[1]
    except (OSError, UnicodeDecodeError, IndexError):
        return True
    return host == socket.gethostname()
