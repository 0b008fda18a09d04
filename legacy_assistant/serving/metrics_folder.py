"""The metrics folder (``PROMETHEUS_MULTIPROC_DIR``) of ``prometheus_client``'s multiprocess
mode: checked before the server starts, made (or cleared of an earlier run's files) by the
master, tidied as workers end, and made again when it is removed while the server runs: by a
cleaner of the temporary folder, where the server makes it by default, or by a person. Without
it a scrape of ``/metrics`` failed, and so did the import of the metrics in every worker
started later, which stopped the whole server. This module imports no metrics: importing them
writes to the folder."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

from legacy_assistant.common.files import can_make_or_write_in, nearest_existing, sticky_keeps
from legacy_assistant.errors import ConfigError
from legacy_assistant.serving.processes import alive, master_of, pid_namespace

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger(__name__)


def remake_if_removed(environ: Mapping[str, str] | None = None) -> None:
    """Make the metrics folder named in the environment again where it is gone, and say what
    that costs. Raises OSError where it cannot be made."""
    directory = (os.environ if environ is None else environ).get(METRICS_ENV)
    if not directory or os.path.isdir(directory):
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)  # as private as the one the server makes
    log.warning(
        "the metrics folder %s=%s was removed while the server ran: made again. /metrics counts from "
        "here: what the workers then running had counted is lost, and what they count now stays out "
        "of it until they are restarted (a restart of the server)",
        METRICS_ENV,
        directory,
    )


# The files prometheus_client's multiprocess mode writes (``counter_4711.db``,
# ``gauge_livesum_4711.db``, ...): a folder given in PROMETHEUS_MULTIPROC_DIR may hold other
# files (a SQLite conversation store ends in .db too), which are not ours to delete.
METRICS_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db")


def clear_stale_metrics(directory: str) -> None:
    """Make ``directory`` and delete the metrics files an earlier run left in it: all but those of
    running servers' processes (another server sharing the folder keeps its own); nothing else."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        found = METRICS_FILE.fullmatch(name)
        if found and not _a_running_server(int(found.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:  # another server starting cleared it
                continue
            except PermissionError as exc:  # another user's, in a sticky folder such as /tmp: not ours to clear
                log.warning("cannot remove %s, an earlier run's metrics file (its counts are served): %s", name, exc)


def remove_zero_metrics(directory: str, pid: int) -> int:
    """Delete the counter and histogram files of the ended worker ``pid`` in ``directory`` that
    hold nothing but zeros, and say how many went. A worker that dies before it serves (a
    damaged model, a store that cannot be reached) writes one such file as it imports the app,
    and gunicorn starts another every few seconds: each would stay, read at every scrape, for as
    long as the server runs. A file with any count stays, so that no total goes back."""
    from prometheus_client.mmap_dict import MmapedDict

    removed = 0
    for kind in ("counter", "histogram", "summary"):
        path = os.path.join(directory, f"{kind}_{pid}.db")
        try:
            if any(value != 0 for _, value, _, _ in MmapedDict.read_all_values_from_file(path)):
                continue
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            continue
        except (OSError, RuntimeError, struct.error) as exc:  # unreadable or torn: leave it to the reader
            log.debug("left %s: %s", path, exc)
    return removed


METRICS_DIR_PREFIX = "legacy-assistant-metrics-"
METRICS_DIR_OWNER = "master.json"


def make_metrics_dir(parent: str | None = None) -> str:
    """A fresh metrics folder in ``parent`` (the temporary folder by default) that names its
    master, after removing the folders of servers that were killed (SIGKILL skips the removal
    at exit, and each would stay in the temporary folder for good)."""
    parent = parent or tempfile.gettempdir()
    remove_stale_metrics_dirs(parent)
    directory = tempfile.mkdtemp(prefix=METRICS_DIR_PREFIX, dir=parent)
    owner = {"master": os.getpid(), "pid_ns": pid_namespace()}
    Path(directory, METRICS_DIR_OWNER).write_text(json.dumps(owner), encoding="utf-8")
    return directory


def remove_stale_metrics_dirs(parent: str) -> None:
    """Remove the metrics folders in ``parent`` whose master has ended, as far as that can be
    known: by the master named in the folder, in this PID namespace; for a folder an earlier
    version made (no master named), when it holds metrics files and none of their processes is
    a running server. An empty folder without a master is left: it may be a server's, starting."""
    for folder in Path(parent).glob(f"{METRICS_DIR_PREFIX}*"):
        try:
            if not stat.S_ISDIR(folder.lstat().st_mode):
                continue  # a link: never followed
            if (folder / METRICS_DIR_OWNER).exists():
                master = master_of(folder, METRICS_DIR_OWNER)
                stale = master is not None and not alive(master)
            else:
                names = os.listdir(folder)
                pids = {int(match.group(1)) for name in names if (match := METRICS_FILE.fullmatch(name))}
                stale = bool(pids) and not any(_a_running_server(pid) for pid in pids)
        except OSError:  # gone meanwhile, or unreadable: left alone
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def _a_running_server(pid: int) -> bool:
    """Whether ``pid`` is a process of a running server of this project. A pid is reused: a
    crashed run's worker pid may now be any process, whose file would keep the old counts."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none, or not a pid on this system
        return False
    except PermissionError:  # another user's process: not one this server's user started
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"legacy_assistant" in cmdline.read()
    except FileNotFoundError:  # it ended meanwhile
        return False
    except OSError:  # no /proc (not Linux): a running process is taken for a server
        return True


def check_metrics_dir(environ: Mapping[str, str] | None = None) -> None:
    """Refuse, before gunicorn starts, a ``PROMETHEUS_MULTIPROC_DIR`` that is not a folder the
    server can use (the master would fail making or clearing it, with a traceback), and, without
    one, a system with no temporary folder this user can write (a read-only root file system
    with no tmpfs at /tmp), where the server makes its own."""
    directory = (os.environ if environ is None else environ).get(METRICS_ENV)
    if not directory:
        try:
            tempfile.gettempdir()
        except FileNotFoundError:
            raise ConfigError(
                "no folder for temporary files: this user cannot write in $TMPDIR, /tmp, /var/tmp, /usr/tmp "
                "or the current folder (a read-only file system?); mount a tmpfs at /tmp, or set TMPDIR or "
                "PROMETHEUS_MULTIPROC_DIR to a folder this user can write"
            ) from None
        return
    path = Path(directory)
    if os.path.exists(path) and not os.path.isdir(path):  # os.path's: False for a name too long
        raise ConfigError(f"{METRICS_ENV}={directory} is not a folder")
    existing = nearest_existing(path)  # the folder the server would make it in
    if not can_make_or_write_in(path):
        raise ConfigError(f"{METRICS_ENV}={directory}: this user cannot write in {existing}")
    if not os.path.isdir(path):
        # made here, as the master would make it: where that fails although the folder above
        # looks writable (a name too long; /proc or /sys, which root may write in but where no
        # folder can be made), the master stopped with a traceback as gunicorn started. Removed
        # again: a later refusal (a port in use) left it behind, parents and all, a mistyped
        # name's too; the master makes it as it starts.
        _check_can_make(path, directory)
    foreign = _foreign_metrics_file(path)
    if foreign is not None:
        # another user's server uses the folder, or left it, in a sticky folder: its files cannot
        # be cleared (a traceback as gunicorn started, in /tmp), and its counts would be served
        name, owner = foreign
        raise ConfigError(
            f"{METRICS_ENV}={directory} holds {name} of another user (uid {owner}): "
            "give each server's user a metrics folder of its own (or remove that user's files if no server "
            "of theirs runs)"
        )


def _check_can_make(path: Path, directory: str) -> None:
    """Make the folder ``path`` (``directory`` as set) and the missing folders above it, then
    remove those again; a :class:`ConfigError` where it cannot be made."""
    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{METRICS_ENV}={directory}: cannot make it: {exc.strerror or exc}") from None
    finally:
        for made in missing:  # the deepest first; one something else put a file in meanwhile stays
            with contextlib.suppress(OSError):
                os.rmdir(made)


def _foreign_metrics_file(directory: Path) -> tuple[str, int] | None:
    """The name and owner of a metrics file in ``directory`` that this user may not remove, if any:
    another user's in a sticky folder (``/tmp``) neither of them owns. Elsewhere a folder this user
    writes in lets it remove any file, and the stale ones are cleared at start as this user's are
    (a container run under a new uid on the volume of the last one)."""
    try:
        folder = os.stat(directory)
        with os.scandir(directory) as entries:
            for entry in entries:
                if METRICS_FILE.fullmatch(entry.name):
                    owner = entry.stat(follow_symlinks=False).st_uid
                    if sticky_keeps(owner, folder):
                        return entry.name, owner
    except OSError:  # not there yet (made at start), or gone meanwhile
        return None
    return None
