import os
import stat
from pathlib import Path

import pytest

from legacy_assistant.common.files import sticky_keeps, write_atomically, write_text_atomically, write_together


def test_a_new_file_is_written_whole_with_the_usual_permissions(tmp_path):
    path = write_text_atomically(tmp_path / "report.json", '{"ok": true}\n')
    assert path.read_text(encoding="utf-8") == '{"ok": true}\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "golden.json"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o640)
    write_text_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "new" and stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "golden.json"
    path.write_text("good", encoding="utf-8")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomically(path, "half")
    assert path.read_text(encoding="utf-8") == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["golden.json"]


def test_a_pipe_or_a_link_to_one_is_written_in_place_not_replaced(tmp_path):
    """``evaluate --out /dev/stdout`` (a link to the process's pipe or terminal) and ``golden
    --report`` to a FIFO: the text goes to the reader, and the link and the pipe stay what they
    were; a rename over them put a regular file in their place (as root, over /dev/stdout)."""
    fifo, link = tmp_path / "pipe", tmp_path / "stdout"
    os.mkfifo(fifo)
    link.symlink_to(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader waits: the write does not block
    try:
        assert write_text_atomically(link, '{"ok": true}\n') == link
        write_atomically(fifo, lambda stream: stream.write(b"more\n"))
        assert os.read(reader, 1000) == b'{"ok": true}\nmore\n'
    finally:
        os.close(reader)
    assert link.is_symlink() and os.readlink(link) == str(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "stdout"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd on this system")
def test_dev_stdout_redirected_to_a_file_is_written_through_the_redirection(tmp_path):
    """``evaluate --out /dev/stdout > report.txt``: /dev/stdout then leads to a regular file, and
    the report replaced the link with a file of its own (as root, in /dev, with the figures
    beside it) instead of reaching report.txt; it goes after what the command printed there."""
    from legacy_assistant.cli.evaluate import report_files
    from legacy_assistant.common.files import is_device_or_pipe

    redirected = tmp_path / "report.txt"
    folder = tmp_path / "dev"
    folder.mkdir()
    with open(redirected, "wb") as stdout:
        link = folder / "stdout"
        link.symlink_to(f"/proc/self/fd/{stdout.fileno()}")
        os.write(stdout.fileno(), b"summary\n")
        assert is_device_or_pipe(link) and report_files(link, "-confusion.png") == [link]
        assert write_text_atomically(link, '{"ok": true}\n') == link
        write_together([(link, lambda path: write_text_atomically(path, "more\n"))])
        os.write(stdout.fileno(), b"wrote it\n")
    assert redirected.read_bytes() == b'summary\n{"ok": true}\nmore\nwrote it\n'
    assert link.is_symlink() and [p.name for p in folder.iterdir()] == ["stdout"]
    # ``--out /dev/stdout >&-``: the figures were written beside the link, and the report failed
    # with "Bad file descriptor" after them; refused before any work instead
    from legacy_assistant.artifacts.directory import check_written_files
    from legacy_assistant.errors import ArtifactError

    (tmp_path / "model").mkdir()
    refused = r"stdout cannot be written: it names file descriptor \d+, which is closed or open for reading only"
    with pytest.raises(ArtifactError, match=refused):
        check_written_files([link], tmp_path / "model")
    with open(redirected, "rb") as stdin:  # /dev/stdin of a file, given as --out
        link.unlink()
        link.symlink_to(f"/proc/self/fd/{stdin.fileno()}")
        with pytest.raises(ArtifactError, match=refused):
            check_written_files([link], tmp_path / "model")
    assert [p.name for p in folder.iterdir()] == ["stdout"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd on this system")
def test_a_descriptor_on_the_file_standard_output_goes_to_gets_the_report_after_what_was_printed(tmp_path, monkeypatch):
    """``evaluate --out /dev/stderr > log 2>&1``: the summary printed to standard output was still
    in its buffer when the report went through standard error's descriptor to the same file, and
    came after the report."""
    import sys

    log = tmp_path / "log"
    with open(log, "wb") as opened:
        other = os.dup(opened.fileno())  # 2>&1: a second descriptor of the same open file
        try:
            with open(opened.fileno(), "w", closefd=False) as stdout:  # block-buffered, as to a file
                monkeypatch.setattr(sys, "stdout", stdout)
                print("summary")
                write_text_atomically(f"/proc/self/fd/{other}", "report\n")
                print("wrote it")
        finally:
            os.close(other)
    assert log.read_text() == "summary\nreport\nwrote it\n"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_model_is_on_the_disk_before_it_replaces_the_old_one(tiny_trained, tiny_intents, tmp_path, monkeypatch):
    """A rename can reach the disk before the data it names: after a power cut the swapped-in
    folder held empty files the checksums refuse, and the old model was deleted."""
    from legacy_assistant.classifier.artifact import export_artifact

    target = tmp_path / "model"
    export_artifact(tiny_trained, tiny_intents, target, plot=False)
    synced, swapped = [], []
    real_fsync = os.fsync

    def fsync(descriptor):
        synced.append((os.readlink(f"/proc/self/fd/{descriptor}"), bool(swapped)))
        return real_fsync(descriptor)

    import legacy_assistant.artifacts.directory as directory

    real_replace = directory._replace_dir

    def replace(staging, to):
        swapped.append(staging)
        return real_replace(staging, to)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(directory, "_replace_dir", replace)
    export_artifact(tiny_trained, tiny_intents, target, plot=False, force=True)
    staging = str(swapped[0])
    before = {path for path, after in synced if not after}
    files = {str(staging / path.relative_to(target)) for path in target.rglob("*") if path.is_file()}
    folders = {str(staging / path.relative_to(target)) for path in target.rglob("*") if path.is_dir()}
    assert files and files | folders | {staging} <= before  # every file and folder, before the swap
    assert [path for path, after in synced if after] == [str(tmp_path)]  # then the rename itself


def test_a_full_disk_names_the_file_it_could_not_write():
    """A write or close that hits a full disk raises ENOSPC without a file name: the command
    said only "error: [Errno 28] No space left on device"."""
    import errno

    from legacy_assistant.artifacts.directory import write_json
    from legacy_assistant.common.files import naming
    from legacy_assistant.common.plots import plot_history

    full = "/dev/full"  # every write to it fails with ENOSPC, as on a full disk
    if not os.path.exists(full):
        pytest.skip("no /dev/full here")
    with pytest.raises(OSError) as raised:
        write_json(Path(full), {"a": 1})
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, full)
    assert str(raised.value) == f"[Errno 28] No space left on device: '{full}'"
    with pytest.raises(OSError) as raised:
        plot_history([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}], full)
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, full)
    with pytest.raises(OSError) as raised, naming("/elsewhere"):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/where/it/was")
    assert raised.value.filename == "/where/it/was"  # a name it has already is kept


def test_a_figure_replaces_the_old_file_whole_and_never_rewrites_it_in_place(tmp_path, monkeypatch):
    """Two evaluations writing one report's figures at once, or a reader (an image viewer, a web
    page) opening one meanwhile, found half a PNG: the file was truncated and written in place.
    A link to the old file keeps the old bytes; a failed write leaves the old file and no debris."""
    from legacy_assistant.common.plots import plot_history

    path = tmp_path / "history.png"
    path.write_bytes(b"old figure")
    reader = tmp_path / "opened-meanwhile.png"
    os.link(path, reader)  # what a reader holding the old file sees
    plot_history([{"epoch": 1, "loss": 1.0, "accuracy": 0.5}], path)
    assert reader.read_bytes() == b"old figure"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png", "opened-meanwhile.png"]

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        plot_history([{"epoch": 1, "loss": 2.0, "accuracy": 0.5}], reader)
    assert reader.read_bytes() == b"old figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.png", "opened-meanwhile.png"]


def test_a_tree_is_flushed_under_windows_rules_for_fsync_and_folders(tmp_path, monkeypatch):
    """Windows flushes a file only through a handle that may write it (FlushFileBuffers: fsync
    of a read-only descriptor fails with EBADF) and cannot open a folder as a file (EACCES).
    Those rules, mimicked on Linux: under them a read-only descriptor stopped every model export
    with "[Errno 9] Bad file descriptor"."""
    import errno
    import fcntl
    import types

    from legacy_assistant.common import files
    from legacy_assistant.common.files import sync_folder, sync_tree

    (tmp_path / "saved_model" / "variables").mkdir(parents=True)
    for name in ("assistant.json", "saved_model/saved_model.pb", "saved_model/variables/data"):
        (tmp_path / name).write_bytes(b"x")
    real_open, real_fsync = os.open, os.fsync
    flushed = []

    def windows_open(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    def windows_fsync(descriptor):
        if fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        flushed.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        return real_fsync(descriptor)

    # the module's own view of os only: pathlib and pytest read os.name too
    windows = types.ModuleType("os")
    windows.__dict__.update(vars(os), name="nt", open=windows_open, fsync=windows_fsync)
    monkeypatch.setattr(files, "os", windows)
    sync_tree(tmp_path)
    sync_folder(tmp_path)
    assert sorted(flushed) == sorted(str(path) for path in tmp_path.rglob("*") if path.is_file())


def test_an_interrupted_write_leaves_the_old_file_and_no_debris(tmp_path: Path) -> None:
    """Ctrl-C in the middle of a write (a ``KeyboardInterrupt``, no ``Exception``) leaves the
    old file as it was and no temporary file beside it."""
    path = tmp_path / "golden.json"
    path.write_text("good", encoding="utf-8")

    def interrupted(stream: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, interrupted)
    assert path.read_text(encoding="utf-8") == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["golden.json"]


def test_files_written_together_are_all_new_or_all_old_with_the_usual_permissions(tmp_path: Path) -> None:
    """A stop while the second of three files is written leaves the three old files; written
    whole, the new ones have the permissions a file made here gets, or the one each replaced had."""
    report, figure, fifo = tmp_path / "report.json", tmp_path / "report.png", tmp_path / "pipe"
    report.write_text("old report", encoding="utf-8")
    os.chmod(report, 0o640)
    os.mkfifo(fifo)

    def interrupted(path: Path) -> None:
        path.write_text("half a figure", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_together([(figure, lambda path: path.write_text("figure")), (report, interrupted)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "report.json"]
    assert report.read_text(encoding="utf-8") == "old report"
    write_together([(figure, lambda path: path.write_text("figure")), (report, lambda path: path.write_text("new"))])
    assert (figure.read_text(), report.read_text()) == ("figure", "new")
    assert stat.S_IMODE(os.stat(figure).st_mode) == 0o666 & ~_current_umask()
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o640
    written = []
    write_together([(fifo, lambda path: written.append(path))])  # a pipe is written, not replaced
    assert written == [fifo] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_files_written_together_into_new_folders_leave_none_of_them_when_stopped(tmp_path: Path) -> None:
    """``evaluate --out runs/2026/report.json``: the folders are made for the files, and a stop
    while a figure is drawn leaves none of them; a folder that already held a file stays."""
    report = tmp_path / "runs" / "2026" / "report.json"

    def interrupted(path: Path) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_together([(report.with_name("report.png"), interrupted), (report, lambda path: path.write_text("r"))])
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "kept.txt").write_text("kept", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        write_together([(report, interrupted)])
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["kept.txt"]
    write_together([(report, lambda path: path.write_text("whole", encoding="utf-8"))])
    assert report.read_text(encoding="utf-8") == "whole"
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(FileExistsError):  # a file where a folder should be, as mkdir -p says
        write_together([(tmp_path / "file" / "sub" / "report.json", lambda path: path.write_text("r"))])


def _sticky_folder(owner: int) -> os.stat_result:
    """What ``os.stat`` says of a sticky, world-writable folder (``/tmp``) that ``owner`` owns."""
    return os.stat_result((stat.S_IFDIR | stat.S_ISVTX | 0o777, 0, 0, 2, owner, 0, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("user", "keeps"),
    [(0, False), (1000, False), (1001, False), (1002, True)],
    ids=["root", "the file's owner", "the folder's owner", "another user"],
)
def test_a_sticky_folder_keeps_a_file_from_all_but_its_owner_the_folders_and_root(
    monkeypatch: pytest.MonkeyPatch, user: int, keeps: bool
) -> None:
    """In a sticky folder only the file's owner (1000 here), the folder's owner (1001) and root
    may remove a file; a plain world-writable folder lets anyone who can write there."""
    monkeypatch.setattr(os, "geteuid", lambda: user)
    assert sticky_keeps(1000, _sticky_folder(1001)) is keeps
    plain = os.stat_result((stat.S_IFDIR | 0o777, 0, 0, 2, 1001, 0, 0, 0, 0, 0))
    assert sticky_keeps(1000, plain) is False


def test_a_write_left_out_of_files_written_together_leaves_a_device_in_its_place(tmp_path: Path) -> None:
    """A figure that cannot be drawn is left out (NotWritten) and the report beside it written;
    where the figure's path is a device (/dev/null), written in its turn rather than replaced,
    the refusal was taken for a failure of the whole, and nothing was written."""
    from legacy_assistant.common.files import NotWritten, write_together

    def not_drawn(path: Path) -> None:
        raise NotWritten(str(path))

    report = tmp_path / "report.json"
    written = write_together([(os.devnull, not_drawn), (report, lambda path: path.write_text("{}"))])
    assert written == [report] and report.read_text() == "{}"
    assert Path(os.devnull).exists() and not Path(os.devnull).is_file()


def test_a_full_disk_while_files_are_written_together_names_the_file_not_its_temporary_copy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each file is written to a temporary sibling first; a full disk there said
    "No space left on device: '.../.eval.json.k2x9.tmp'", a file removed by then, where the
    operator looks for eval.json (evaluate --out on a full disk, the report and its figures)."""
    import errno
    import logging

    from legacy_assistant.common.files import naming
    from legacy_assistant.common.plots import figure_write

    def full(path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    report, figure = tmp_path / "eval.json", tmp_path / "eval-confusion.png"
    with pytest.raises(OSError) as raised:
        write_together([(report, full)])
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(report))
    assert sorted(tmp_path.iterdir()) == []
    with caplog.at_level(logging.WARNING, logger="legacy_assistant.common.plots"):
        written = write_together([(figure, figure_write(figure, full)), (report, lambda path: path.write_text("{}"))])
    assert written == [report]
    assert f"No space left on device: '{figure}'" in caplog.text
    assert ".tmp" not in caplog.text
    with pytest.raises(OSError) as raised:  # a rename from the temporary file names both: kept
        with naming(report, instead_of="/t"):
            raise OSError(errno.EXDEV, "Invalid cross-device link", "/t", None, str(report))
    assert (raised.value.filename, raised.value.filename2) == ("/t", str(report))
