"""Readiness across a server's processes: the master and its workers share a small folder
(:class:`WorkerRegistry`) that says how many workers the master wants and which of them serve,
so that any worker can answer ``/ready`` for the whole server."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from legacy_assistant.common.files import private_folder
from legacy_assistant.serving.processes import alive, master_of, pid_namespace

log = logging.getLogger(__name__)

SHARED_MEMORY = "/dev/shm"


def shared_memory_dir() -> str | None:
    """``/dev/shm`` where this user can make files there (a container may have none, or one it
    cannot write), else None."""
    return SHARED_MEMORY if os.path.isdir(SHARED_MEMORY) and os.access(SHARED_MEMORY, os.W_OK | os.X_OK) else None


class WorkerRegistry:
    """Which workers serve, in a folder the master and its workers share (``/ready``).

    The master writes ``workers.json`` (how many workers it wants, the pids it started) whenever
    that changes; a worker writes ``<pid>.ready`` once its app, and every model the app serves,
    is built; the master deletes that file when the worker exits. Any worker can then tell
    whether the whole server serves from a few small reads, without asking the master. Files are
    written to a temporary name and renamed into place, so a reader never sees half of one.
    """

    STATE = "workers.json"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._written: tuple[int, tuple[int, ...], bool] | None = None
        self.write_failed = False  # a write of this process's failed (a full /dev/shm, the folder gone)
        self._failing: set[str] = set()  # the files whose latest write failed (logged once)
        self.remade = False  # (master) the folder was removed while the server ran, and made again
        self.stopping = False  # (master) the server stops: /ready says so
        self._ready_checked = 0.0  # (worker) time.monotonic() of keep_ready's latest look
        self._refused_told = False  # (master) a folder not its own at the name was logged

    def intact(self) -> bool:
        """Whether the folder is there, was never removed meanwhile (what it said of earlier
        workers is gone), and every write of this process has succeeded."""
        return not self.write_failed and not self.remade and private_folder(self.directory)

    PREFIX = "legacy-assistant-workers-"

    @classmethod
    def create(cls, parent: str | None = None) -> WorkerRegistry:
        """A fresh folder in ``parent``, else in memory (``/dev/shm``) where this user can write
        there, else in the temporary folder; first, the folders of servers that were killed."""
        parent = parent or shared_memory_dir()
        cls.remove_stale(parent or tempfile.gettempdir())
        return cls(tempfile.mkdtemp(prefix=cls.PREFIX, dir=parent))

    @classmethod
    def remove_stale(cls, parent: str) -> None:
        """Remove the registry folders in ``parent`` whose master has ended (a server killed
        with SIGKILL leaves its folder; in ``/dev/shm`` they would pile up in memory)."""
        for folder in Path(parent).glob(f"{cls.PREFIX}*"):
            master = master_of(folder, cls.STATE)
            if master is not None and not alive(master):
                shutil.rmtree(folder, ignore_errors=True)

    def _write(self, name: str, text: str) -> bool:
        """Write ``name``; whether it was written (a failure is logged, not raised)."""
        staging = self.directory / f".{name}.{os.getpid()}.tmp"
        try:
            # never through a folder made (or linked) at its name by someone else: links planted
            # there would take the write into another file
            if os.path.lexists(self.directory) and not private_folder(self.directory):
                raise OSError(self._not_ours())
            staging.write_text(text, encoding="utf-8")
            os.replace(staging, self.directory / name)
        except OSError as exc:  # /dev/shm full, say: /ready says "not ready" rather than the master dying
            self.write_failed = True
            if name not in self._failing:  # once, not at each try of the master's loop
                self._failing.add(name)
                log.error("cannot write %s in %s (/ready may answer 503 until it can): %s", name, self.directory, exc)
            with contextlib.suppress(OSError):
                staging.unlink()
            return False
        if name in self._failing:
            self._failing.discard(name)
            log.info("wrote %s in %s again", name, self.directory)
        return True

    def expect(self, count: int, pids: Iterable[int]) -> None:
        """(master) ``count`` workers wanted; ``pids`` started (booting, serving or stopping)."""
        state = (int(count), tuple(sorted(pids)), self.stopping)
        if state != self._written:
            entry: dict[str, Any] = {"expected": state[0], "pids": list(state[1])}
            if self.stopping:
                entry["stopping"] = True
            # remembered only once written: a failed write is tried again at the next call
            if self._write(self.STATE, json.dumps({**entry, "master": os.getpid(), "pid_ns": pid_namespace()})):
                self._written = state

    def remake_if_removed(self) -> None:
        """(master) Make the folder again where it is gone while the server runs (``systemd-logind``
        removes a user's files in ``/dev/shm`` as the user's last session ends, ``RemoveIPC=yes``;
        a cleaner, a person): without it ``/ready`` answered 503 for good, every worker serving.
        The next :meth:`expect` writes the state again, and each worker its file
        (:meth:`keep_ready`). Something else at its name (a link, a folder another user made
        first: ``/dev/shm`` is everyone's) is refused, logged once, and nothing is written there."""
        if private_folder(self.directory):
            return
        if os.path.lexists(self.directory):  # made, or linked, at its name by someone else meanwhile
            if not self._refused_told:
                log.error("%s (/ready answers 503 while it is there)", self._not_ours())
                self._refused_told = True
            self.write_failed = True
            return
        try:
            os.makedirs(self.directory, mode=0o700)  # not exist_ok: a folder made meanwhile is not ours
            if not private_folder(self.directory):
                raise OSError(self._not_ours())
        except OSError as exc:
            if not self.write_failed:
                log.error("cannot make %s again (/ready answers 503 until it can): %s", self.directory, exc)
            self.write_failed = True
            return
        self._written = None
        self.remade = True
        log.warning("the worker registry folder %s was removed while the server ran: made again", self.directory)

    KEEP_READY_EVERY_S = 1.0

    def keep_ready(self, pid: int) -> None:
        """(worker, once it serves; called often) Write ``pid``'s file (and the served marker)
        again where it is gone but the folder is there (made again by the master,
        :meth:`remake_if_removed`); at most every :data:`KEEP_READY_EVERY_S` seconds. Never makes
        the folder: the master removes it as the server ends."""
        now = time.monotonic()
        if now < self._ready_checked + self.KEEP_READY_EVERY_S:
            return
        self._ready_checked = now
        # the served marker too: one a failed write left out would have the master take every
        # later death of a worker for one before any served
        missing = not (self.directory / f"{pid}.ready").exists() or not self.has_served()
        if missing and private_folder(self.directory):
            self.mark_ready(pid)

    SERVED = "served"

    def mark_ready(self, pid: int) -> None:
        """(worker) ``pid`` serves: its app is built."""
        self._write(f"{pid}.ready", "")
        if not self.has_served():
            self._write(self.SERVED, "")

    def stop(self) -> None:
        """(master) The server stops: from now on :meth:`status` says not ready."""
        self.stopping = True
        self._written = None  # the next expect writes it

    def has_served(self) -> bool:
        """(any process) Whether a worker of this server has ever served (the marker stays)."""
        return (self.directory / self.SERVED).exists()

    def serves(self, pid: int) -> bool:
        """(any process) Whether worker ``pid`` has said it serves (its app is built)."""
        return (self.directory / f"{pid}.ready").exists()

    def forget(self, pid: int) -> None:
        """(master) ``pid`` has exited."""
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{pid}.ready").unlink()

    def status(self) -> tuple[bool, dict[str, int]]:
        """(any process) Whether as many started workers serve as the master wants, and the counts."""
        if not private_folder(self.directory):  # gone, or not the server's: what it says is no one's word
            return False, {"ready": 0, "expected": 0}
        try:
            state = json.loads((self.directory / self.STATE).read_text(encoding="utf-8"))
            expected, pids = int(state["expected"]), [int(pid) for pid in state["pids"]]
        except (OSError, ValueError, KeyError, TypeError):  # not written yet, or the server is stopping
            return False, {"ready": 0, "expected": 0}
        ready = sum(1 for pid in pids if (self.directory / f"{pid}.ready").exists())
        if state.get("stopping"):
            return False, {"ready": ready, "expected": expected, "stopping": True}
        return expected > 0 and ready >= expected, {"ready": ready, "expected": expected}

    def _not_ours(self) -> str:
        return (
            f"{self.directory} is not the folder this server made: a link, or a folder another user made "
            "(or others can write in) at its name after it was removed; it is not used"
        )

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
