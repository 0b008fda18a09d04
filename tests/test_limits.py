"""The CPUs a process may use: cgroup CPU quotas (v1 and v2, from /proc/self's cgroup and
mountinfo) and CPU affinity narrow the machine's count, and the server's default worker count
follows them."""
import os
import subprocess
import sys
import uuid
from fractions import Fraction
from pathlib import Path

import pytest

from legacy_assistant.common import limits
from legacy_assistant.common.limits import CpuBudget, cgroup_cpu_quota, usable_cpus
from tests.helpers import ROOT

MOUNTINFO_BASE = "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"


def fake_proc(tmp_path, cgroup: str, mounts: list[str]) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(MOUNTINFO_BASE + "".join(mounts))
    return proc


def v2_mount(root: str, mount_point: Path) -> str:
    return f"30 22 0:26 {root} {mount_point} rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


def v1_mount(root: str, mount_point: Path, controllers: str = "cpu,cpuacct") -> str:
    return f"31 22 0:27 {root} {mount_point} rw,nosuid shared:5 - cgroup cgroup rw,{controllers}\n"


def write(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text + "\n")


def budget(proc, online=16, allowed=16) -> CpuBudget:
    return usable_cpus(proc, cpu_count=lambda: online, affinity=lambda: allowed)


def test_a_v2_quota_of_an_ancestor_limits_the_process(tmp_path):
    """Kubernetes sets the pod's limit on the pod's cgroup, above the container's own."""
    mount = tmp_path / "sys/fs/cgroup"
    write(mount / "kubepods/pod1", cpu__max="150000 100000")
    write(mount / "kubepods/pod1/ctr", cpu__max="max 100000")
    proc = fake_proc(tmp_path, "0::/kubepods/pod1/ctr\n", [v2_mount("/", mount)])
    assert cgroup_cpu_quota(proc) == Fraction(3, 2)
    found = budget(proc)
    assert found.count == 2 and found.quota == Fraction(3, 2)  # 1.5 CPUs' time: two CPUs at half time
    assert found.describe() == "a CPU quota of 1.5 (16 CPUs online)"


def test_the_tightest_quota_on_the_way_up_wins(tmp_path):
    mount = tmp_path / "cg"
    write(mount / "a", cpu__max="400000 100000")
    write(mount / "a/b", cpu__max="50000 100000")
    write(mount / "a/b/c", cpu__max="300000 100000")
    proc = fake_proc(tmp_path, "0::/a/b/c\n", [v2_mount("/", mount)])
    assert cgroup_cpu_quota(proc) == Fraction(1, 2)
    assert budget(proc).count == 1  # half a CPU still runs one worker


def test_a_v1_quota_in_a_container_without_a_cgroup_namespace(tmp_path):
    """Docker on cgroup v1 mounts the container's own cgroup as the root of the cpu hierarchy, and
    /proc/self/cgroup names its host path: the mount's root says where that path is mounted."""
    mount = tmp_path / "sys/fs/cgroup/cpu,cpuacct"
    write(mount, cpu__cfs_quota_us="200000", cpu__cfs_period_us="100000")
    cgroup = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/docker/abc\n"
    proc = fake_proc(tmp_path, cgroup, [v1_mount("/docker/abc", mount)])
    assert cgroup_cpu_quota(proc) == 2 and budget(proc, online=64, allowed=64).count == 2


def test_a_cgroup_outside_the_mounts_root_reads_the_mount_point(tmp_path):
    mount = tmp_path / "cpu"
    write(mount, cpu__cfs_quota_us="300000", cpu__cfs_period_us="100000")
    proc = fake_proc(tmp_path, "4:cpu:/elsewhere/ctr\n", [v1_mount("/docker/abc", mount, "cpu")])
    assert cgroup_cpu_quota(proc) == 3


def test_a_cgroup_whose_name_only_begins_as_the_mounts_root_lies_outside_it(tmp_path: Path) -> None:
    """/docker/abcdef is no cgroup under a mount of /docker/abc: its quota is the mount point's,
    not that of a folder named after the rest of its name ("def")."""
    mount = tmp_path / "cpu"
    write(mount, cpu__cfs_quota_us="300000", cpu__cfs_period_us="100000")
    write(mount / "def", cpu__cfs_quota_us="100000", cpu__cfs_period_us="100000")
    proc = fake_proc(tmp_path, "4:cpu:/docker/abcdef\n", [v1_mount("/docker/abc", mount, "cpu")])
    assert cgroup_cpu_quota(proc) == 3


def test_v1_and_v2_together_count_whichever_is_set(tmp_path):
    """A hybrid host: the v1 cpu controller has the quota, the unified v2 mount has no cpu.max."""
    v1, v2 = tmp_path / "cpu", tmp_path / "unified"
    write(v1 / "svc", cpu__cfs_quota_us="100000", cpu__cfs_period_us="100000")
    write(v2 / "svc", **{"cgroup.procs": ""})
    proc = fake_proc(tmp_path, "4:cpu,cpuacct:/svc\n0::/svc\n", [v1_mount("/", v1), v2_mount("/", v2)])
    assert cgroup_cpu_quota(proc) == 1
    assert budget(proc, online=8, allowed=8).describe() == "a CPU quota of 1 (8 CPUs online)"


def test_no_quota_leaves_the_cpus_online_and_allowed(tmp_path):
    v1, v2 = tmp_path / "cpu", tmp_path / "unified"
    write(v1, cpu__cfs_quota_us="-1", cpu__cfs_period_us="100000")
    write(v2, cpu__max="max 100000")
    proc = fake_proc(tmp_path, "4:cpu:/\n0::/\n", [v1_mount("/", v1, "cpu"), v2_mount("/", v2)])
    assert cgroup_cpu_quota(proc) is None
    assert budget(proc, online=16, allowed=16) == CpuBudget(count=16, online=16, affinity=16, quota=None)
    assert budget(proc, online=16, allowed=16).describe() == "16 CPUs"
    narrowed = budget(proc, online=16, allowed=4)
    assert narrowed.count == 4 and narrowed.describe() == "4 of 16 CPUs allowed by affinity"


def test_a_quota_above_the_cpus_changes_nothing(tmp_path):
    mount = tmp_path / "cg"
    write(mount, cpu__max="800000 100000")
    proc = fake_proc(tmp_path, "0::/\n", [v2_mount("/", mount)])
    found = budget(proc, online=4, allowed=4)
    assert found.count == 4 and found.quota == 8 and found.describe() == "4 CPUs"


@pytest.mark.parametrize(
    "files",
    [
        {"cpu__max": "lots 100000"},
        {"cpu__max": "100000"},
        {"cpu__max": "0 100000"},
        {"cpu__max": "100000 0"},
        {"cpu__max": "-5 100000"},
        {},
    ],
)
def test_an_unreadable_quota_counts_as_none(tmp_path, files):
    mount = tmp_path / "cg"
    write(mount, **files)
    proc = fake_proc(tmp_path, "0::/\n", [v2_mount("/", mount)])
    assert cgroup_cpu_quota(proc) is None and budget(proc, online=3, allowed=3).count == 3


def test_no_proc_files_or_garbage_in_them_counts_as_no_quota(tmp_path):
    assert cgroup_cpu_quota(tmp_path / "nowhere") is None
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text("garbage\n4:cpu\n::\n")
    (proc / "mountinfo").write_text("short line\n1 2 3 - x\n")
    assert cgroup_cpu_quota(proc) is None
    (proc / "mountinfo").write_bytes(b"\xff\xfe")
    assert cgroup_cpu_quota(proc) is None
    assert usable_cpus(proc, cpu_count=lambda: None, affinity=lambda: None) == CpuBudget(1, 1, None, None)


def test_a_mount_point_with_a_space_is_unescaped(tmp_path):
    mount = tmp_path / "cgroup root"
    write(mount / "svc", cpu__max="200000 100000")
    escaped = str(mount).replace(" ", "\\040")
    proc = fake_proc(tmp_path, "0::/svc\n", [f"30 22 0:26 / {escaped} rw - cgroup2 cgroup2 rw\n"])
    assert cgroup_cpu_quota(proc) == 2


def test_a_mount_point_with_a_space_and_a_character_past_latin1_is_unescaped(tmp_path):
    """Another mount's point (a USB stick named "U盘 1", say) holding both an escape and a
    character past Latin-1: reading failed with a UnicodeEncodeError, which stopped serve at start."""
    stick = "/media/me/U\u76d8\\0401"  # as mountinfo writes "/media/me/U盘 1"
    mount = tmp_path / "数据 root"  # the cgroup mount's own point may hold both too
    write(mount / "svc", cpu__max="200000 100000")
    escaped = str(mount).replace(" ", "\\040")
    proc = fake_proc(tmp_path, "0::/svc\n", [f"29 22 8:17 / {stick} rw - vfat /dev/sdb1 rw\n",
                                             f"30 22 0:26 / {escaped} rw - cgroup2 cgroup2 rw\n"])
    assert cgroup_cpu_quota(proc) == 2
    assert limits.memory_limit_bytes(proc) is None
    assert limits._unescape("/media/me/U\u76d8\\0401\\134x") == "/media/me/U\u76d8 1\\x"
    assert limits._unescape("/mnt/caf\u00e9\\040bar") == "/mnt/caf\u00e9 bar"  # was "/mnt/caf\ufffd bar"


def test_a_mount_point_whose_name_is_no_utf8_leaves_the_limits_read(tmp_path):
    """Another mount's point named in Latin-1 (a USB stick "caf\xe9"), which the kernel writes as
    its bytes: reading mountinfo stopped at them, and the server ran with no CPU or memory limit."""
    mount = tmp_path / "cg"
    write(mount / "svc", cpu__max="200000 100000", memory__max="1073741824")
    proc = fake_proc(tmp_path, "0::/svc\n", [v2_mount("/", mount)])
    with open(proc / "mountinfo", "ab") as mountinfo:
        mountinfo.write(b"29 22 8:17 / /media/me/caf\xe9\\040bar rw - vfat /dev/sdb1 rw\n")
    assert cgroup_cpu_quota(proc) == 2
    assert limits.memory_limit_bytes(proc) == 1073741824


def test_the_default_worker_count_and_the_serve_line_follow_the_budget(monkeypatch, caplog):
    from legacy_assistant.cli import build_parser
    from legacy_assistant.cli import serve as serve_cli
    from legacy_assistant.serving import metrics_folder, server, settings

    limited = CpuBudget(count=3, online=64, affinity=64, quota=Fraction(5, 2))
    monkeypatch.setattr(settings, "usable_cpus", lambda: limited)
    monkeypatch.setattr(serve_cli, "usable_cpus", lambda: limited)
    monkeypatch.delenv("LEGACY_ASSISTANT_WORKERS", raising=False)
    started = []

    def exec_server(options):
        started.append(options.workers)
        raise SystemExit(0)

    monkeypatch.setattr(server, "exec_server", exec_server)
    monkeypatch.setattr(metrics_folder, "check_metrics_dir", lambda: None)
    with caplog.at_level("INFO", logger="legacy_assistant.cli.serve"), pytest.raises(SystemExit):
        serve_cli.run(build_parser().parse_args(["serve", "--no-responder", "--store", "sqlite:///tmp/x.db"]))
    assert started == [3]
    assert "with 3 worker(s) (one per usable CPU: a CPU quota of 2.5 (64 CPUs online)) x 4 thread(s)" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="legacy_assistant.cli.serve"), pytest.raises(SystemExit):
        serve_cli.run(build_parser().parse_args(["serve", "--no-responder", "--workers", "5"]))
    assert started == [3, 5] and "with 5 worker(s) x 4 thread(s)" in caplog.text  # given: no reason shown


CPU_V1 = Path("/sys/fs/cgroup/cpu")


def _real_v1_cgroup() -> Path | None:
    """A fresh cgroup under the v1 cpu controller, where this process may make one (root, a
    writable hierarchy, as on Linux machines and VMs that run the tests as root)."""
    if os.geteuid() != 0 or not (CPU_V1 / "cgroup.procs").exists() or (os.cpu_count() or 1) < 2:
        return None
    folder = CPU_V1 / f"legacy-assistant-test-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir()
        (folder / "cpu.cfs_period_us").write_text("100000")
        (folder / "cpu.cfs_quota_us").write_text("100000")
    except OSError:
        if folder.exists():
            folder.rmdir()
        return None
    return folder


def test_a_real_cgroup_quota_gives_the_server_one_worker():
    """In a cgroup whose quota is one CPU, on a machine with more, a process counts one usable CPU
    and the server's default is one worker."""
    folder = _real_v1_cgroup()
    if folder is None:
        pytest.skip("needs root, a writable cgroup v1 cpu hierarchy and 2+ CPUs")
    try:
        code = (
            "from legacy_assistant.serving import settings; from legacy_assistant.common.limits import usable_cpus; "
            "b = usable_cpus(); print(b.count, b.online, settings.default('WORKERS'), b.describe())"
        )
        out = subprocess.run(
            ["sh", "-c", f'echo $$ > "{folder}/cgroup.procs" && exec "$0" -c "$1"', sys.executable, code],
            capture_output=True, text=True, cwd=ROOT, timeout=120, check=True,
        ).stdout.split(maxsplit=3)
        assert out[0] == "1" and out[2] == "1" and int(out[1]) >= 2
        assert out[3].strip() == f"a CPU quota of 1 ({out[1]} CPUs online)"
        outside = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120, check=True
        ).stdout.split()
        assert outside[0] == str(min(len(os.sched_getaffinity(0)), os.cpu_count()))
    finally:
        folder.rmdir()


def test_the_module_reads_this_systems_files_without_failing():
    found = usable_cpus()
    assert 1 <= found.count <= (os.cpu_count() or 1)
    assert limits.PROC_SELF == Path("/proc/self")


def test_the_memory_limit_is_the_tightest_up_the_hierarchy(tmp_path):
    from legacy_assistant.common.limits import memory_limit_bytes

    v2 = tmp_path / "unified"
    write(v2 / "pod", memory__max=str(512 * 2**20))
    write(v2 / "pod/ctr", memory__max="max")
    assert memory_limit_bytes(fake_proc(tmp_path, "0::/pod/ctr\n", [v2_mount("/", v2)])) == 512 * 2**20


def test_a_memory_limit_of_zero_bytes_counts_as_none(tmp_path: Path) -> None:
    """No process runs under a limit of 0 bytes: a file that says so is not read as the tightest
    limit, and the real one above it holds."""
    from legacy_assistant.common.limits import memory_limit_bytes

    v2 = tmp_path / "unified"
    write(v2 / "pod", memory__max=str(512 * 2**20))
    write(v2 / "pod/ctr", memory__max="0")
    assert memory_limit_bytes(fake_proc(tmp_path, "0::/pod/ctr\n", [v2_mount("/", v2)])) == 512 * 2**20


def test_a_v1_memory_limit_and_v1s_no_limit(tmp_path):
    from legacy_assistant.common.limits import memory_limit_bytes

    mount = tmp_path / "memory"
    write(mount / "svc", memory__limit_in_bytes=str(700 * 2**20))
    write(mount, memory__limit_in_bytes="9223372036854771712")  # v1's "no limit"
    proc = fake_proc(tmp_path, "7:memory:/svc\n4:cpu:/svc\n", [v1_mount("/", mount, "memory")])
    assert memory_limit_bytes(proc) == 700 * 2**20
    write(mount / "svc", memory__limit_in_bytes="9223372036854771712")
    assert memory_limit_bytes(proc) is None
    assert cgroup_cpu_quota(proc) is None  # the cpu line has no mount of its own here


@pytest.mark.parametrize(
    ("requested", "budget", "given"),
    [
        (0, CpuBudget(count=2, online=64, affinity=64, quota=Fraction(2)), 2),  # a container's CPU limit
        (0, CpuBudget(count=3, online=64, affinity=64, quota=Fraction(5, 2)), 3),  # rounded up, as for workers
        (0, CpuBudget(count=2, online=2, affinity=2), 0),  # no quota: TensorFlow's own choice
        (0, CpuBudget(count=4, online=64, affinity=4, quota=Fraction(8)), 0),  # affinity, which TF sees, is tighter
        (0, CpuBudget(count=4, online=4, affinity=4, quota=Fraction(4)), 0),  # a quota of every CPU narrows nothing
        (3, CpuBudget(count=1, online=64, affinity=64, quota=Fraction(1)), 3),  # asked for: kept
        (-1, CpuBudget(count=1, online=64, affinity=64, quota=Fraction(1)), -1),  # inter-op -1: the caller's thread
    ],
)
def test_tensorflows_thread_pools_follow_a_cpu_quota(requested, budget, given):
    assert limits.tensorflow_threads(requested, budget) == given


def test_tf2_runtime_narrows_an_inter_op_size_of_minus_one_to_a_cpu_quota(monkeypatch):
    """Eager TensorFlow has no caller-thread mode: on the tf2 runtime the server's default
    ``--inter-op-threads -1`` started an inter-op pool of one thread per CPU TensorFlow sees (64
    in a container limited to 2 CPUs on a 64-CPU node), which 0 is narrowed from; compat keeps -1."""
    monkeypatch.setattr(limits, "usable_cpus", lambda: CpuBudget(count=2, online=64, affinity=64, quota=Fraction(2)))
    assert limits.tensorflow_thread_pools(1, -1, "tf2") == (1, 2)
    assert limits.tensorflow_thread_pools(1, -1, "compat") == (1, -1)
    assert limits.tensorflow_thread_pools(1, -1) == (1, -1)
    monkeypatch.setattr(limits, "usable_cpus", lambda: CpuBudget(count=2, online=2, affinity=2))
    assert limits.tensorflow_thread_pools(1, -1, "tf2") == (1, 0)  # no quota: TensorFlow's own choice


def test_loaded_models_size_their_thread_pools_by_the_quota(monkeypatch):
    """``Predictor.load`` and ``Responder.load`` with the default 0 threads give their sessions
    the quota's count, which TensorFlow would not see; explicit counts stay."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.responder.responder import Responder

    monkeypatch.setattr(limits, "usable_cpus", lambda: CpuBudget(count=1, online=64, affinity=64, quota=Fraction(1)))

    def pools(model) -> tuple[int, int]:
        config = model._gs.session._config
        return config.intra_op_parallelism_threads, config.inter_op_parallelism_threads

    with Predictor.load(ROOT / "exported" / "default") as predictor:
        assert pools(predictor._classifier) == (1, 1)
    with Responder.load(ROOT / "exported" / "responder") as responder:
        assert pools(responder.model) == (1, 1)
    with Predictor.load(ROOT / "exported" / "default", 2, -1) as predictor:
        assert pools(predictor._classifier) == (2, -1)


@pytest.mark.parametrize("load", ["classifier", "responder"])
@pytest.mark.parametrize(("intra", "inter"), [(-1, 0), (10**9, 0), (1.5, 0), (True, 0), ("2", 0), (0, -2), (0, 2000)])
def test_a_thread_count_tensorflow_cannot_take_is_refused_at_load(load, intra, inter):
    """A negative intra-op size aborted the whole process inside TensorFlow (SIGABRT), a huge one
    crashed it, and a float or a string reached ConfigProto's own TypeError."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.responder.responder import Responder
    from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER

    loader, path = (Predictor.load, DEFAULT_MODEL) if load == "classifier" else (Responder.load, DEFAULT_RESPONDER)
    name = "intra_op_threads" if (intra, inter)[1] == 0 else "inter_op_threads"
    with pytest.raises(ConfigError, match=f"^{name} must be a whole number from -?[01] to 1024, got "):
        loader(path, intra_op_threads=intra, inter_op_threads=inter)


def test_thread_counts_of_numpy_integers_are_taken():
    import numpy as np

    assert limits.tensorflow_thread_pools(np.int64(2), np.int32(-1)) == (2, -1)


def test_a_tight_address_space_limit_is_named_before_tensorflow_fails_under_it(caplog):
    """Under ``ulimit -v`` of 1 GB TensorFlow ended every command with its own words
    (``failed to map segment from shared object``, or ``pthread_create() failed`` and
    ``Aborted``), which name no limit. The command now says which limit, and what to do."""
    import resource

    from legacy_assistant.cli import main

    note = limits.address_space_note(1_000_000 * 1024)
    assert "977 MiB" in note and "ulimit -v" in note
    assert limits.address_space_note(64 * 2**30) is None

    def limited(which):
        return (1_000_000 * 1024, resource.RLIM_INFINITY) if which == resource.RLIMIT_AS else original(which)

    original = resource.getrlimit
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resource, "getrlimit", limited)
        with caplog.at_level("WARNING"):
            assert main(["info", "--no-load", str(ROOT / "exported" / "default")]) == 0
    assert "977 MiB of address space (ulimit -v)" in caplog.text


def test_an_unlimited_address_space_says_nothing(monkeypatch):
    import resource

    original = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit", lambda which: (
        (resource.RLIM_INFINITY, resource.RLIM_INFINITY) if which == resource.RLIMIT_AS else original(which)))
    assert limits.address_space_limit() is None and limits.address_space_note() is None
