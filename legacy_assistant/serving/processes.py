"""Which server made a folder, and whether it still runs: the readiness and metrics folders
name their master and its PID namespace, so that a server started later removes the folders of
one that was killed (SIGKILL skips the removal at exit) and never those of one still running."""

from __future__ import annotations

import json
import os
from pathlib import Path


def master_of(folder: Path, state_file: str) -> int | None:
    """The master that made a registry (or metrics) folder, named in its ``state_file``, when it
    was made in this PID namespace (a pid of another means nothing here: its server may be
    alive); None when that cannot be known, which leaves the folder alone (one written by an
    earlier version, or being written)."""
    try:
        state = json.loads((folder / state_file).read_text(encoding="utf-8"))
        namespace = pid_namespace()
        if namespace is None or state.get("pid_ns") != namespace:
            return None
        return int(state["master"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def pid_namespace() -> str | None:
    """This process's PID namespace (``pid:[4026531836]``), or None where it cannot be read."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True
