"""What this process may use: CPUs and memory, narrowed by CPU affinity and cgroup limits.

A container's CPU limit (Docker's ``--cpus``, a Kubernetes ``limits.cpu``) is a cgroup quota: so
much CPU time per period. ``os.cpu_count()`` does not see it and counts the host's CPUs, so a
server that starts one worker per counted CPU starts 64 workers, each loading every model, in a
container limited to 2 CPUs on a 64-CPU node, and the memory limit kills them. The count here
is the smallest of the CPUs online, the CPUs this process may run on (``sched_getaffinity``:
``taskset``, Docker's ``--cpuset-cpus``) and the quota of this process's cgroup and of each of
its ancestors up to the cgroup mount, rounded up to whole CPUs (a 1.5-CPU quota lets two CPUs
run half the time each). Both cgroup versions are read: v2's ``cpu.max``, v1's
``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``. CPU shares and weights are not limits (they
only divide time under contention) and are not counted.

The memory limit is the smallest of v2's ``memory.max`` and v1's ``memory.limit_in_bytes`` on
the same path: what the kernel's OOM killer enforces on the container.

Reading never fails: a file that is missing, unreadable or malformed counts as no limit.
"""

from __future__ import annotations

import logging
import numbers
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from legacy_assistant.errors import ConfigError

log = logging.getLogger(__name__)

PROC_SELF = Path("/proc/self")


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs this process may use.

    ``count`` is the whole number to plan for (at least 1); ``online`` what ``os.cpu_count()``
    says; ``affinity`` how many CPUs the process may run on (None where the system cannot say);
    ``quota`` the tightest cgroup quota in CPUs (None when there is none).
    """

    count: int
    online: int
    affinity: int | None = None
    quota: Fraction | None = None

    def describe(self) -> str:
        """Why ``count`` is what it is: ``2 CPUs``, ``a CPU quota of 1.5 (16 CPUs online)``,
        ``4 of 16 CPUs allowed by affinity``."""
        reasons = []
        if self.quota is not None and _whole_cpus(self.quota) < min(self.online, self.affinity or self.online):
            reasons.append(f"a CPU quota of {float(self.quota):g}")
        if self.affinity is not None and self.affinity < self.online:
            reasons.append(f"{self.affinity} of {self.online} CPUs allowed by affinity")
        elif reasons:
            reasons[-1] += f" ({self.online} CPUs online)"
        if not reasons:
            return f"{self.count} CPU{'s' if self.count != 1 else ''}"
        return " and ".join(reasons)


def usable_cpus(
    proc: Path = PROC_SELF,
    cpu_count: Callable[[], int | None] = os.cpu_count,
    affinity: Callable[[], int | None] | None = None,
) -> CpuBudget:
    """The CPUs this process may use (see the module's docstring).

    ``proc`` is the ``/proc/<pid>`` folder whose ``cgroup`` and ``mountinfo`` are read;
    ``cpu_count`` and ``affinity`` count CPUs online and allowed (by default the system's).
    """
    online = max(1, cpu_count() or 1)
    allowed = (affinity or _affinity)()
    quota = cgroup_cpu_quota(proc)
    count = min(online, allowed or online)
    if quota is not None:
        count = min(count, _whole_cpus(quota))
    return CpuBudget(count=max(1, count), online=online, affinity=allowed, quota=quota)


def tensorflow_threads(requested: int, budget: CpuBudget | None = None) -> int:
    """The size to give one of TensorFlow's thread pools when ``requested`` was asked for.

    0 asks for TensorFlow's choice, one thread per CPU the process may run on, which does not
    see a cgroup CPU quota: in a container limited to 2 CPUs on a 64-CPU node each pool gets 64
    threads, and the quota throttles them all at once. Where a quota narrows ``budget`` (by
    default :func:`usable_cpus`) below the CPUs the process may run on, 0 becomes the budget's
    count; anything else, and 0 where no quota narrows, is returned as it is.
    """
    if requested != 0:
        return requested
    budget = budget or usable_cpus()
    if budget.quota is not None and budget.count < (budget.affinity or budget.online):
        return budget.count
    return 0


MAX_THREADS = 1024  # a pool of more is a mistyped number (10**9 crashed TensorFlow)


def tensorflow_thread_pools(intra_op: int, inter_op: int, runtime: str = "compat") -> tuple[int, int]:
    """:func:`tensorflow_threads` of both pools, reading this process's limits once (and not at
    all when neither asks for TensorFlow's choice).

    On the ``tf2`` runtime an inter-op size of -1 is taken as 0: eager TensorFlow has no
    caller-thread mode, it runs a function's ops on an inter-op pool and sizes a negative one
    as TensorFlow's choice (one thread per CPU it sees, blind to a CPU quota), so -1 gets 0's
    narrowing to a container's CPU limit.

    Raises:
        ConfigError: a size that is not a whole number from 0 (-1 for ``inter_op``: every op in
            the calling thread) to :data:`MAX_THREADS`. TensorFlow aborted the whole process
            on a negative intra-op size, and crashed on a huge one.
    """
    for name, value, lowest in (("intra_op_threads", intra_op, 0), ("inter_op_threads", inter_op, -1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lowest <= value <= MAX_THREADS:
            raise ConfigError(f"{name} must be a whole number from {lowest} to {MAX_THREADS}, got {value!r}")
    intra_op, inter_op = int(intra_op), int(inter_op)
    if runtime == "tf2" and inter_op == -1:
        inter_op = 0
    budget = usable_cpus() if 0 in (intra_op, inter_op) else None
    return tensorflow_threads(intra_op, budget), tensorflow_threads(inter_op, budget)


def _whole_cpus(quota: Fraction) -> int:
    return max(1, -(-quota.numerator // quota.denominator))


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0)) or None
    except (AttributeError, OSError):  # not on every system (macOS has no sched_getaffinity)
        return None


def cgroup_cpu_quota(proc: Path = PROC_SELF) -> Fraction | None:
    """The tightest CPU quota, in CPUs, over this process's cgroups (v1 and v2) and their
    ancestors up to each cgroup mount; None when none is set or none can be read."""
    return _tightest(proc, "cpu", _v1_quota, _v2_quota)


def memory_limit_bytes(proc: Path = PROC_SELF) -> int | None:
    """The tightest memory limit, in bytes, over this process's cgroups (v1 and v2) and their
    ancestors; None when none is set (v1 writes "no limit" as a number near 2**63)."""
    return _tightest(proc, "memory", _v1_memory, _v2_memory)


# Address space TensorFlow maps as it loads (its libraries, each thread's stack reserved whole):
# the shipped models and the responder loaded in 1.6 GiB on 2 CPUs, and more CPUs start more
# threads. Below this a limit is worth a word before TensorFlow fails under it.
ADDRESS_SPACE_WARN_BYTES = 4 * 2**30


def address_space_limit() -> int | None:
    """This process's address-space limit in bytes (``ulimit -v``, ``RLIMIT_AS``), None when unlimited."""
    try:
        import resource
    except ImportError:  # not on every system
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def address_space_note(limit: int | None = None) -> str | None:
    """A warning where the address-space limit (``limit``, read when None) is below
    :data:`ADDRESS_SPACE_WARN_BYTES`, else None. Under a tight one TensorFlow ends the process
    with its own words, which name no limit: ``failed to map segment from shared object`` or
    ``pthread_create() failed``, then ``Aborted``."""
    limit = address_space_limit() if limit is None else limit
    if limit is None or limit >= ADDRESS_SPACE_WARN_BYTES:
        return None
    return (
        f"this process may map at most {limit / 2**20:,.0f} MiB of address space (ulimit -v); TensorFlow "
        "maps far more than it uses (1.6 GiB for the shipped models on 2 CPUs, more with more CPUs) and "
        "under a tight limit fails to load ('failed to map segment', 'pthread_create() failed'): lift it "
        "(ulimit -v unlimited) and limit memory with a cgroup instead (docker run --memory, MemoryMax=)"
    )


def _tightest(proc: Path, controller: str, v1: Callable[[Path], Any], v2: Callable[[Path], Any]) -> Any:
    limits = [
        limit
        for folder, version in _cgroup_folders(proc, controller)
        if (limit := (v1 if version == 1 else v2)(folder)) is not None
    ]
    return min(limits, default=None)


def _cgroup_folders(proc: Path, controller: str) -> Iterator[tuple[Path, int]]:
    """Each cgroup folder (and its cgroup version) whose ``controller`` limits this process."""
    try:
        # a path's bytes that are no UTF-8 (another mount's point, a USB stick named in Latin-1)
        # are kept as the file system has them: reading stopped at them, and no limit was read
        memberships = (proc / "cgroup").read_text(encoding="utf-8", errors="surrogateescape").splitlines()
        mountinfo = (proc / "mountinfo").read_text(encoding="utf-8", errors="surrogateescape")
        mounts = [_mount_fields(line) for line in mountinfo.splitlines()]
    except OSError as exc:
        log.debug("no cgroup limits read: %s", exc)
        return
    for membership in memberships:
        parts = membership.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            version = 2
        elif controller in controllers.split(","):
            version = 1
        else:
            continue
        for root, mount_point, fs, options in (m for m in mounts if m is not None):
            if (fs == "cgroup2") if version == 2 else (fs == "cgroup" and controller in options):
                for folder in _folders_up_to_mount(path, root, Path(mount_point)):
                    yield folder, version
                break


def _mount_fields(line: str) -> tuple[str, str, str, set[str]] | None:
    """(root, mount point, file system type, super options) of one ``mountinfo`` line."""
    left, sep, right = line.partition(" - ")
    fields, tail = left.split(), right.split()
    if not sep or len(fields) < 5 or len(tail) < 3:
        return None
    return _unescape(fields[3]), _unescape(fields[4]), tail[0], set(tail[2].split(","))


# The kernel escapes a space, tab, line break and backslash of a mountinfo path as 3 octal digits
# (``\\040``); any other character, one past Latin-1 included, is written as it is.
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """A ``mountinfo`` path with its octal escapes (``\\040`` for a space) undone."""
    if "\\" not in field:
        return field
    return _OCTAL_ESCAPE.sub(lambda found: chr(int(found.group(1), 8)), field)


def _folders_up_to_mount(path: str, root: str, mount_point: Path) -> Iterator[Path]:
    """The folder of cgroup ``path`` under a mount of cgroup ``root``, then each parent up to
    the mount point. Inside a container the process's cgroup is often the mount's root, or
    lies outside it (no cgroup namespace): then the mount point is its folder."""
    root = root.rstrip("/")
    if path == root or path.startswith(root + "/"):
        relative = path[len(root) :].strip("/")
    else:
        relative = ""
    folder = mount_point / relative if relative else mount_point
    while True:
        yield folder
        if folder == mount_point or mount_point not in folder.parents:
            return
        folder = folder.parent


def _v2_quota(folder: Path) -> Fraction | None:
    """``cpu.max``: ``max 100000`` (none) or ``QUOTA PERIOD`` in microseconds."""
    text = _read(folder / "cpu.max")
    if text is None:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _quota(fields[0], fields[1], folder / "cpu.max")


def _v1_quota(folder: Path) -> Fraction | None:
    """``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``."""
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if quota is None or period is None or quota.strip() == "-1":
        return None
    return _quota(quota, period, folder / "cpu.cfs_quota_us")


# cgroup v1 writes "no limit" as the largest page-aligned 63-bit number; anything from 2**60 up is none
_NO_MEMORY_LIMIT = 1 << 60


def _v2_memory(folder: Path) -> int | None:
    return _bytes(_read(folder / "memory.max"))


def _v1_memory(folder: Path) -> int | None:
    return _bytes(_read(folder / "memory.limit_in_bytes"))


def _bytes(text: str | None) -> int | None:
    if text is None or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _NO_MEMORY_LIMIT else None


def _quota(quota: str, period: str, where: Path) -> Fraction | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        log.debug("%s: not a CPU quota: %r / %r", where, quota, period)
        return None
    return Fraction(q, p) if q > 0 and p > 0 else None


def _read(file: Path) -> str | None:
    try:
        return file.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
