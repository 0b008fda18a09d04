"""Starting and stopping the server the way containers run it: a read-only root file system, no
writable /tmp or /dev/shm, the server as PID 1 (no --init), a memory limit that kills workers
while they load. Each is refused or handled in one line instead of a traceback, a lost signal or
an endless restart loop. The real cases need root and Linux namespaces or cgroups (as on the CI
machine) and are skipped elsewhere; the unit cases run everywhere."""
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from legacy_assistant.errors import ConfigError
from legacy_assistant.serving import metrics_folder, readiness, server
from legacy_assistant.serving.metrics_folder import check_metrics_dir
from legacy_assistant.serving.readiness import WorkerRegistry
from legacy_assistant.serving.server import early_deaths_reason
from legacy_assistant.stores.base import check_store_url
from tests.helpers import ROOT

PYTHON = sys.executable


def _can_unshare(*flags: str) -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", *flags, "true"], capture_output=True).returncode == 0


needs_mount_namespace = pytest.mark.skipif(not _can_unshare("-m"), reason="needs root and mount namespaces")
needs_pid_namespace = pytest.mark.skipif(
    not _can_unshare("-p", "-f", "--mount-proc"), reason="needs root and PID namespaces"
)


# -- the conversation store and temporary folders


def test_a_default_store_this_user_cannot_write_is_refused(monkeypatch, tmp_path):
    from legacy_assistant.stores import base

    instance = tmp_path / "var" / "legacy_assistant.web-instance"  # not made yet: its parent decides
    check_store_url(None, default_dir=instance)
    monkeypatch.setattr(base.os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(ConfigError) as refused:
        check_store_url(None, default_dir=instance)
    assert str(refused.value) == (
        f"the default conversation store {instance}/conversations.sqlite3: this user cannot write in "
        f"{tmp_path}; give --store sqlite:///PATH in a folder this user can write, redis://HOST:PORT/DB, "
        "or memory (with --workers 1)"
    )
    db = tmp_path / "c.db"
    with pytest.raises(ConfigError, match=f"this user cannot write in {tmp_path}$"):
        check_store_url(f"sqlite:///{db}")
    db.write_text("")
    monkeypatch.setattr(base.os, "access", lambda path, mode: Path(path) != db)
    with pytest.raises(ConfigError, match=f"this user cannot write {db}$"):
        check_store_url(f"sqlite:///{db}")
    check_store_url("memory")  # nothing on disk to check


def test_a_store_file_this_user_cannot_write_is_refused_where_os_has_no_statvfs(monkeypatch, tmp_path):
    """Windows has no os.statvfs: the refusal of a read-only database file was an AttributeError
    there, raised while it asked whether the file system is read-only."""
    from legacy_assistant.stores import base

    db = tmp_path / "c.db"
    db.write_text("")
    monkeypatch.setattr(base.os, "access", lambda path, mode: Path(path) != db)
    monkeypatch.delattr(base.os, "statvfs")
    with pytest.raises(ConfigError, match=f"this user cannot write {db}$"):
        check_store_url(f"sqlite:///{db}")


def test_the_default_store_folder_is_the_apps_instance_folder(make_client):
    from legacy_assistant.defaults import instance_folder

    assert instance_folder() == make_client().application.instance_path


def test_no_temporary_folder_is_refused_in_one_line(monkeypatch, tmp_path):
    def none_usable():
        raise FileNotFoundError(2, "No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/']")

    monkeypatch.setattr(metrics_folder.tempfile, "gettempdir", none_usable)
    with pytest.raises(ConfigError, match="^no folder for temporary files: .*mount a tmpfs at /tmp, or set TMPDIR"):
        check_metrics_dir({})
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})  # the server makes no folder of its own then


def test_a_metrics_folder_holding_another_users_files_is_refused_before_gunicorn(monkeypatch, tmp_path, caplog):
    """A PROMETHEUS_MULTIPROC_DIR in a sticky folder (/tmp) that another user's server used: the
    master could not remove that user's files and stopped with a PermissionError traceback as
    gunicorn started (and their counts would have been served as this server's)."""
    (tmp_path / "counter_4242.db").write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")  # not a metrics file: anyone's
    os.chmod(tmp_path, 0o1777)  # sticky, as /tmp
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})  # this user's own files
    real_uid = os.geteuid()
    # every file, and the sticky folder, is now another user's: this one may not remove the files
    for name in ("getuid", "geteuid"):
        monkeypatch.setattr(metrics_folder.os, name, lambda: real_uid + 1)
    with pytest.raises(ConfigError, match=rf"^PROMETHEUS_MULTIPROC_DIR={tmp_path} holds counter_4242.db of another "
                                          rf"user \(uid {real_uid}\): give each server's user a metrics folder"):
        check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "new")})  # made at start: nothing in it

    def sticky(path):  # /tmp: a file of another user's cannot be removed
        raise PermissionError(1, "Operation not permitted", path)

    monkeypatch.setattr(metrics_folder.os, "unlink", sticky)
    with caplog.at_level(logging.WARNING, logger=metrics_folder.log.name):
        metrics_folder.clear_stale_metrics(str(tmp_path))  # were the check skipped: a warning, no traceback
    assert "cannot remove counter_4242.db" in caplog.text


def test_another_users_metrics_files_this_user_may_remove_do_not_stop_serve(monkeypatch, tmp_path):
    """In a folder that is not sticky, a user who writes in it removes any file in it: a container
    run under a new uid (OpenShift) on the metrics volume of the last one clears the stale files at
    start, as before, instead of being refused."""
    (tmp_path / "counter_4194399.db").write_bytes(b"")  # above Linux's largest pid: no server runs
    os.chmod(tmp_path, 0o777)
    real_uid = os.geteuid()
    for name in ("getuid", "geteuid"):  # every file is another user's
        monkeypatch.setattr(metrics_folder.os, name, lambda: real_uid + 1)
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    metrics_folder.clear_stale_metrics(str(tmp_path))
    assert not (tmp_path / "counter_4194399.db").exists()


def test_shared_memory_this_user_cannot_write_is_not_used(monkeypatch, tmp_path):
    monkeypatch.setattr(readiness, "SHARED_MEMORY", str(tmp_path))
    assert readiness.shared_memory_dir() == str(tmp_path)
    monkeypatch.setattr(readiness, "SHARED_MEMORY", str(tmp_path / "absent"))
    assert readiness.shared_memory_dir() is None
    monkeypatch.setattr(readiness, "SHARED_MEMORY", str(tmp_path))
    monkeypatch.setattr(readiness.os, "access", lambda path, mode: False)
    assert readiness.shared_memory_dir() is None
    monkeypatch.undo()
    monkeypatch.setattr(readiness.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(readiness, "SHARED_MEMORY", str(tmp_path / "absent"))
    assert WorkerRegistry.create().directory.parent == tmp_path  # the temporary folder instead


def test_a_registry_that_cannot_be_written_logs_and_goes_on(tmp_path, caplog):
    registry = WorkerRegistry.create(str(tmp_path))
    registry.expect(2, [11, 12])
    shutil.rmtree(registry.directory)  # as a full /dev/shm fails each write
    with caplog.at_level("ERROR", logger=readiness.log.name):
        registry.expect(2, [11, 13])
        registry.mark_ready(13)
    assert "cannot write workers.json in" in caplog.text and "/ready may answer 503" in caplog.text
    assert registry.status() == (False, {"ready": 0, "expected": 0})
    assert not registry.intact()


def test_registry_folders_of_ended_servers_are_removed(tmp_path):
    """Only those of this PID namespace: a pid of another (a server in a container sharing
    /dev/shm) says nothing here, and an earlier version's folder names no namespace."""
    ended = subprocess.Popen([PYTHON, "-c", "pass"])
    ended.wait()
    here = os.readlink("/proc/self/ns/pid")
    folders = {}
    for name, state in {
        "dead-master": {"expected": 1, "pids": [], "master": ended.pid, "pid_ns": here},
        "live-master": {"expected": 1, "pids": [ended.pid], "master": os.getpid(), "pid_ns": here},
        "other-namespace": {"expected": 1, "pids": [], "master": ended.pid, "pid_ns": "pid:[1]"},
        "old-format": {"expected": 1, "pids": [ended.pid]},
        "unreadable": None,
    }.items():
        folder = tmp_path / f"{WorkerRegistry.PREFIX}{name}"
        folder.mkdir()
        if state is not None:
            (folder / WorkerRegistry.STATE).write_text(json.dumps(state))
        folders[name] = folder
    (tmp_path / "other-folder").mkdir()
    made = WorkerRegistry.create(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [made.directory.name, "other-folder"]
        + [folders[n].name for n in ("live-master", "other-namespace", "old-format", "unreadable")]
    )
    made.expect(1, [])
    assert json.loads((made.directory / WorkerRegistry.STATE).read_text())["pid_ns"] == here


def test_a_master_that_fails_as_it_starts_leaves_no_folders(tmp_path, monkeypatch):
    """gunicorn exits from its start without its on_exit hook when it cannot bind (a port taken
    with --no-reuse-port: "Can't connect to", status 1): the metrics and readiness folders the
    master had made stayed, and the readiness folder, naming no master yet, for good. A worker
    leaves the arbiter's run() the same way, and must not remove the master's folders."""
    monkeypatch.setattr(metrics_folder.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(readiness, "SHARED_MEMORY", str(tmp_path / "absent"))  # both folders in tmp_path
    monkeypatch.setenv(server.METRICS_ENV, "")  # made by the master, and unset again after the test
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)  # an earlier test's: run() refuses it
    made: list[Path] = []

    def start_then_fail(arbiter):
        arbiter.cfg.on_starting(arbiter)  # as gunicorn's start: the folders are made
        made[:] = sorted(tmp_path.iterdir())
        sys.exit(1)  # as gunicorn's create_sockets after its retries

    monkeypatch.setattr(server.ReloadingArbiter, "run", start_then_fail)
    with pytest.raises(SystemExit):
        server.GunicornServer(server.ServerOptions(port=0, workers=1, reuse_port=False)).run()
    assert [p.name.rsplit("-", 1)[0] for p in made] == ["legacy-assistant-metrics", "legacy-assistant-workers"]
    assert list(tmp_path.iterdir()) == []

    def worker_exits(arbiter):
        arbiter.cfg.on_starting(arbiter)
        monkeypatch.setattr(server.os, "getpid", lambda: -1)  # this is now a forked worker
        sys.exit(0)

    monkeypatch.setattr(server.ReloadingArbiter, "run", worker_exits)
    monkeypatch.setenv(server.METRICS_ENV, "")
    with pytest.raises(SystemExit):
        server.GunicornServer(server.ServerOptions(port=0, workers=1, reuse_port=False)).run()
    assert len(list(tmp_path.iterdir())) == 2


# -- workers that die before any serves


def test_workers_dying_before_any_serves_stop_the_server_after_three(tmp_path, monkeypatch):
    from gunicorn.errors import HaltServer
    from prometheus_client import multiprocess

    monkeypatch.setattr(multiprocess, "mark_process_dead", lambda pid: None)  # no metrics folder here

    app = server.GunicornServer.__new__(server.GunicornServer)
    app.registry = WorkerRegistry.create(str(tmp_path))

    def arbiter(workers=2, stopping=False):
        return SimpleNamespace(stopping=stopping, early_deaths=0, num_workers=workers, retired=set())

    one = arbiter()
    app._child_exit(one, SimpleNamespace(pid=101))
    app._child_exit(one, SimpleNamespace(pid=102))
    with pytest.raises(HaltServer) as halted:
        app._child_exit(one, SimpleNamespace(pid=103))
    assert halted.value.exit_status == 3 and halted.value.reason.startswith("3 workers ended before any served")
    many = arbiter(workers=8)  # each died once and one twice: 9
    for pid in range(8):
        app._child_exit(many, SimpleNamespace(pid=110 + pid))
    with pytest.raises(HaltServer):
        app._child_exit(many, SimpleNamespace(pid=120))
    stopping = arbiter(stopping=True)  # workers ending as the server stops
    for pid in range(5):
        app._child_exit(stopping, SimpleNamespace(pid=200 + pid))
    assert stopping.early_deaths == 0
    fewer = arbiter()  # TTOU, or fewer workers wanted: the master ended them
    fewer.retired.update({210, 211, 212, 213})
    for pid in (210, 211, 212, 213):
        app._child_exit(fewer, SimpleNamespace(pid=pid))
    assert fewer.early_deaths == 0 and fewer.retired == set()
    app.registry.mark_ready(300)  # once one has served, a worker that dies is replaced as ever
    served = arbiter()
    for pid in range(5):
        app._child_exit(served, SimpleNamespace(pid=400 + pid))
    assert served.early_deaths == 0


def test_more_workers_that_failed_to_boot_do_not_break_the_halt(monkeypatch):
    """Two workers that fail to boot at once: the master halts for the first (status 3), and the
    second, reaped during that halt, may not raise out of it (a traceback and status 1)."""
    import logging

    from gunicorn.errors import HaltServer

    def arbiter(stopping):
        master = server.ReloadingArbiter.__new__(server.ReloadingArbiter)
        master.stopping, master.reexec_pid, master.dirty_arbiter_pid = stopping, 0, 0
        master.log = logging.getLogger("tests.arbiter")
        master.cfg = SimpleNamespace(child_exit=lambda arbiter, worker: reaped.append(worker.pid))
        master.WORKERS = {pid: SimpleNamespace(pid=pid, tmp=SimpleNamespace(close=lambda: None)) for pid in (11, 12, 13)}
        return master

    boot_error = server.Arbiter.WORKER_BOOT_ERROR << 8  # as waitpid reports an exit status
    reaped: list[int] = []
    statuses = [(11, boot_error), (12, boot_error), (13, 0), (0, 0)]
    monkeypatch.setattr(server.os, "waitpid", lambda pid, options: statuses.pop(0))
    halting = arbiter(stopping=True)
    halting.reap_workers()
    assert halting.WORKERS == {} and reaped == [13] and statuses == []
    # not stopping: the first is what halts the server, as in gunicorn
    statuses[:] = [(11, boot_error), (0, 0)]
    with pytest.raises(HaltServer) as halted:
        arbiter(stopping=False).reap_workers()
    assert halted.value.exit_status == server.Arbiter.WORKER_BOOT_ERROR


def test_a_registry_that_cannot_say_whether_any_served_stops_nothing(tmp_path, monkeypatch):
    """A full /dev/shm (or a folder removed) loses the "served" marker: deaths days later must
    not stop a server that served all along."""
    from prometheus_client import multiprocess

    monkeypatch.setattr(multiprocess, "mark_process_dead", lambda pid: None)
    app = server.GunicornServer.__new__(server.GunicornServer)
    app.registry = WorkerRegistry.create(str(tmp_path))
    shutil.rmtree(app.registry.directory)
    app.registry.mark_ready(1)  # fails, logged
    lost = SimpleNamespace(stopping=False, early_deaths=0, num_workers=1, retired=set())
    for pid in range(5):
        app._child_exit(lost, SimpleNamespace(pid=500 + pid))
    assert lost.early_deaths == 0


def test_the_reason_names_the_memory_limit():
    assert "this cgroup's is 400 MiB" in early_deaths_reason(3, 400 * 2**20)
    assert "no cgroup limit was found" in early_deaths_reason(3, 0)
    assert "raise it, or lower --workers" in early_deaths_reason(3, 0) and "--timeout" in early_deaths_reason(3, 0)


MEMORY_V1 = Path("/sys/fs/cgroup/memory")


def test_a_memory_limit_that_kills_every_worker_stops_the_server(tmp_path, free_port):
    """Before, gunicorn started a new worker every few seconds for ever, and nothing listened."""
    if os.geteuid() != 0 or not (MEMORY_V1 / "cgroup.procs").exists():
        pytest.skip("needs root and a writable cgroup v1 memory hierarchy")
    group = MEMORY_V1 / f"legacy-assistant-test-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
        (group / "memory.limit_in_bytes").write_text(str(160 * 2**20))
    except OSError as exc:
        pytest.skip(f"cannot make a memory cgroup: {exc}")
    try:
        command = [PYTHON, "-m", "legacy_assistant", "serve", "--port", str(free_port()), "--workers", "1",
                   "--store", "memory", "--no-responder"]
        started = time.monotonic()
        run = subprocess.run(["sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec "$@"', "sh", *command],
                             cwd=ROOT, capture_output=True, text=True, timeout=240)
        took = time.monotonic() - started
    finally:
        group.rmdir()
    assert run.returncode == 3, run.stderr[-3000:]
    assert run.stderr.count("was sent SIGKILL! Perhaps out of memory?") == 3
    assert "Reason: 3 workers ended before any served" in run.stderr
    assert "this cgroup's is 160 MiB" in run.stderr
    assert took < 200


# -- stop signals while the server starts


def start_serve(port, log, *extra, prefix=()):
    command = [*prefix, PYTHON, "-m", "legacy_assistant", "serve", "--port", str(port), "--workers", "1",
               "--store", "memory", "--no-responder", *extra]
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(path: Path, text: str, process, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert process.poll() is None, path.read_text(errors="replace")
        assert time.monotonic() < deadline, path.read_text(errors="replace")
        time.sleep(0.02)


def test_a_stop_sent_as_the_server_starts_stops_it_cleanly(tmp_path, free_port):
    """SIGTERM between serve's checks and gunicorn's handlers used to kill the master at once
    (nothing cleaned up; as PID 1 the signal was lost). Now it waits, blocked, for gunicorn."""
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = start_serve(free_port(), log)
        try:
            wait_for(log_path, "with 1 worker(s)", process)  # written just before the exec
            process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            assert process.wait(60) == 0
            # well within gunicorn's 30 s graceful timeout: a worker that missed the master's
            # SIGTERM (sent while it was forked) would be waited for that long
            assert time.monotonic() - sent < 20, log_path.read_text()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    text = log_path.read_text()
    assert "Handling signal: term" in text and "Shutting down: Master" in text


EXEC_PROBE = """
import os, sys
def report(path, argv):  # in place of the exec: what each thread of the process blocks then
    masks = [int(line.split()[1], 16) for task in os.listdir("/proc/self/task")
             for line in open(f"/proc/self/task/{task}/status") if line.startswith("SigBlk:")]
    print(*masks)
    raise SystemExit(0)
os.execv = report
from legacy_assistant.cli import main
main(sys.argv[1:])
"""


def test_no_thread_can_take_a_stop_signal_as_serve_execs_the_server(free_port):
    """The main thread blocks the stop signals just before the exec, so that one sent then waits
    for gunicorn's handlers. numpy's BLAS thread, started unblocked as the CLI imported numpy,
    could still take one: Python's record of it went with the exec, and the server, told to
    stop, served on (a stop sent as the log said "with 1 worker(s)" waited 60 s, once in many)."""
    run = subprocess.run([PYTHON, "-c", EXEC_PROBE, "serve", "--port", str(free_port()), "--workers", "1",
                          "--store", "memory", "--no-responder"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENBLAS_NUM_THREADS": "2"})  # a pool thread on any machine
    assert run.returncode == 0, run.stderr
    masks = [int(mask) for mask in run.stdout.split()]
    assert len(masks) >= 2, run.stdout  # the main thread and numpy's
    stop = sum(1 << (number - 1) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT))
    assert all(mask & stop == stop for mask in masks), [hex(mask) for mask in masks]


def handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` has a handler for SIGTERM (its ``SigCgt`` mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@needs_pid_namespace
@pytest.mark.parametrize("when", ["the command handles SIGTERM", "the command execs the server"])
def test_the_server_as_pid_1_stops_on_sigterm_while_it_starts(tmp_path, free_port, when):
    """``docker run`` without ``--init``: the kernel drops a signal PID 1 has no handler for, so
    a SIGTERM sent while the command imported its modules, or while the server it execs started,
    was lost, and the container waited out its grace period."""
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        wrapper = start_serve(free_port(), log, prefix=("unshare", "-p", "-f", "--mount-proc"))
        try:
            deadline = time.monotonic() + 60
            init = None
            while init is None or not handles_sigterm(init):
                assert time.monotonic() < deadline and wrapper.poll() is None, log_path.read_text()
                children = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
                init = int(children[0]) if children else None
                time.sleep(0.005)
            if when == "the command execs the server":
                wait_for(log_path, "with 1 worker(s)", wrapper)  # written just before the exec
                time.sleep(0.05)  # into the new interpreter's start, before gunicorn has handlers
            os.kill(init, signal.SIGTERM)  # the namespace's PID 1
            wrapper.wait(20)  # well within gunicorn's 30 s graceful timeout
        finally:
            if wrapper.poll() is None:
                os.killpg(wrapper.pid, signal.SIGKILL)
                wrapper.wait(30)
                pytest.fail(f"PID 1 did not stop within 20 s of SIGTERM:\n{log_path.read_text()}")
    text = log_path.read_text()
    assert text.strip().endswith("terminated") or "Shutting down: Master" in text, text


# -- a read-only root file system


@needs_mount_namespace
def test_a_read_only_root_is_one_line_per_problem_then_serves_with_what_it_is_given(tmp_path, free_port):
    """As ``docker run --read-only``: the default store and the temporary folder are refused
    before gunicorn starts; with a writable tmpfs as the temporary folder (``--tmpfs``) and a
    store in it, the server serves, and /dev/shm mounted read-only is passed over. (The tmpfs
    is not put over /tmp, which may hold this checkout and its venv.)"""
    port = free_port()
    url = f"http://127.0.0.1:{port}/health"
    scratch = tmp_path / "tmpfs"
    scratch.mkdir()
    script = f"""
set -e
mount -t tmpfs -o size=16m tmpfs "{scratch}"
mount -o remount,bind,ro /
if mountpoint -q /tmp; then mount -o remount,bind,ro /tmp; fi
cd /
serve() {{ "{PYTHON}" -m legacy_assistant serve --port {port} --workers 1 --no-responder "$@"; }}
export PYTHONPATH="{ROOT}" TMPDIR=
echo "== default"; serve || echo "rc=$?"
echo "== memory"; serve --store memory || echo "rc=$?"
mount -t tmpfs -o ro,size=1m tmpfs /dev/shm
export TMPDIR="{scratch}"
echo "== tmpfs"
"{PYTHON}" -m legacy_assistant serve --port {port} --workers 1 --no-responder --store "sqlite:///{scratch}/c.db" \
    > "{scratch}/serve.log" 2>&1 &
SERVER=$!
for i in $(seq 1 300); do
  "{PYTHON}" -c "import urllib.request; urllib.request.urlopen('{url}', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
"{PYTHON}" -c "import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).status)"
kill -TERM $SERVER; wait $SERVER || true
grep -c "Shutting down: Master" "{scratch}/serve.log"
"""
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=240,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    out = run.stdout
    default, memory, tmpfs = out.split("== default")[1].split("== memory")[0], *out.split("== memory")[1].split("== tmpfs")
    assert "error: the default conversation store" in default and "(a read-only file system)" in default
    assert "Starting gunicorn" not in default and "rc=1" in default
    assert "error: no folder for temporary files" in memory and "rc=1" in memory and "Traceback" not in memory
    assert tmpfs.split() == ["200", "1"], out


# -- matplotlib without a writable home


def test_matplotlib_gets_a_folder_of_this_users_where_home_cannot_be_written(monkeypatch, tmp_path):
    """Training as an arbitrary user with no home: matplotlib warned twice and built its font
    cache again in every run."""
    from legacy_assistant.common import plots

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setattr(plots.tempfile, "gettempdir", lambda: str(tmp_path))
    given = {"MPLCONFIGDIR": "/somewhere", "HOME": str(home)}
    plots._writable_matplotlib_dir(given)
    assert given["MPLCONFIGDIR"] == "/somewhere"
    writable = {"HOME": str(home)}
    plots._writable_matplotlib_dir(writable)
    assert "MPLCONFIGDIR" not in writable  # matplotlib makes ~/.config/matplotlib itself
    monkeypatch.setattr(plots.os, "access", lambda path, mode: not str(path).startswith(str(home)))
    read_only = {"HOME": str(home)}
    plots._writable_matplotlib_dir(read_only)
    folder = tmp_path / f"legacy-assistant-matplotlib-{os.getuid()}"
    assert read_only["MPLCONFIGDIR"] == str(folder) and (folder.stat().st_mode & 0o777) == 0o700
    nowhere = {"HOME": "/nonexistent/home"}  # its nearest existing folder, /, is not writable
    monkeypatch.setattr(plots.os, "access", lambda path, mode: str(path) != "/")
    plots._writable_matplotlib_dir(nowhere)
    assert nowhere["MPLCONFIGDIR"] == str(folder)  # the same folder again: the font cache is kept


def test_train_points_matplotlib_at_the_users_folder_before_importing_it(tmp_path):
    """The commands check that matplotlib is installed (an import) before the figure is drawn:
    that import came before the fallback folder was set, so matplotlib warned twice and built
    its font cache again in a new temporary folder in every run of train and evaluate."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("XDG_", "MPLCONFIGDIR"))}
    env.update(HOME="/dev/null", TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    # a missing intents file: refused after the check for matplotlib, before any training
    run = subprocess.run([PYTHON, "-m", "legacy_assistant", "train", str(tmp_path / "missing.json"), "--out",
                          str(tmp_path / "model")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "missing.json" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert "Matplotlib created a temporary" not in run.stderr and "mkdir -p failed" not in run.stderr, run.stderr
    assert (tmp_path / f"legacy-assistant-matplotlib-{os.getuid()}").is_dir()
    assert not list(tmp_path.glob("matplotlib-*")), list(tmp_path.iterdir())


def test_a_failed_exec_leaves_no_signal_blocked(tmp_path):
    options = server.ServerOptions(port=1)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    try:
        with pytest.raises(OSError):
            server.exec_server(options, python=str(tmp_path / "no-python"))
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        os.environ.pop(server.PRIVATE_ENV, None)


@pytest.mark.parametrize("name", ["x" * 300, "/proc/no-such-metrics-folder"])
def test_a_metrics_folder_that_cannot_be_made_is_refused_before_gunicorn(tmp_path, name):
    """A folder above that looks writable, where the folder itself cannot be made (a name too
    long; /proc, where root may write but no folder can be made): the master stopped with a
    traceback as gunicorn started."""
    directory = tmp_path / name if not name.startswith("/") else Path(name)
    with pytest.raises(ConfigError, match=rf"^PROMETHEUS_MULTIPROC_DIR={re.escape(str(directory))}: "):
        check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert not os.path.exists(directory)


def test_the_metrics_folder_check_leaves_no_folder_of_its_making_behind(tmp_path):
    """The check made the folder, and its missing parents, to see that it could be: a refusal
    after it (a port in use) left them behind, a mistyped name's too. The master makes it."""
    directory = tmp_path / "not" / "yet" / "metrics"
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(directory)})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "there").mkdir()
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "there")})  # one that was there stays
    assert [p.name for p in tmp_path.iterdir()] == ["there"]


@pytest.mark.parametrize("store", ["memory", "sqlite:///var/db/c.db", None])
def test_ttin_adds_no_worker_to_a_server_whose_conversations_live_in_its_one_process(store, caplog):
    """serve refuses --store memory with more than one worker (each would keep its own
    conversations); TTIN added one anyway, and a sender's turns went to either."""
    master = server.ReloadingArbiter.__new__(server.ReloadingArbiter)
    master.app = SimpleNamespace(options=server.ServerOptions(app_config={"STORE_URL": store}))
    master.log = logging.getLogger("tests.arbiter")
    master.cfg = SimpleNamespace(nworkers_changed=lambda arbiter, new, old: None)
    master._num_workers = 1  # gunicorn's num_workers property reads and writes it
    managed: list[int] = []
    master.manage_workers = lambda: managed.append(master.num_workers)
    with caplog.at_level("WARNING", logger="tests.arbiter"):
        master.handle_ttin()
    if store == "memory":
        assert (master.num_workers, managed) == (1, [])
        assert "SIGTTIN ignored: the memory store keeps conversations inside one process" in caplog.text
    else:
        assert (master.num_workers, managed) == (2, [2])
        assert "SIGTTIN" not in caplog.text
