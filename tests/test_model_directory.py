"""The model directory as other processes see it: permissions, replacement, loading during it."""
from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from legacy_assistant.artifacts import directory
from legacy_assistant.artifacts.directory import verify_directory, write_artifact
from legacy_assistant.errors import ArtifactError

MANIFEST = "model.json"
FORMAT = "test/1"


def _fill(payload: str):
    def fill(staging: Path) -> dict:
        (staging / "saved_model").mkdir()
        (staging / "saved_model" / "weights.bin").write_text(payload)
        return {"format": FORMAT, "payload": payload}

    return fill


@pytest.fixture
def usual_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_written_model_is_readable_by_other_users(tmp_path, usual_umask):
    target = write_artifact(tmp_path / "m", _fill("a"), manifest_name=MANIFEST)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    for path in target.rglob("*"):
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


@pytest.mark.parametrize("umask", [0o002, 0o022, 0o077])
def test_the_folders_of_a_written_model_have_the_umask_s_permissions_as_its_files_do(tmp_path, umask):
    """TensorFlow makes its folders 0755 whatever the umask (as made here): under umask 002 the
    model's files were 0664 and its own folder 0775, but saved_model/ and variables/ 0755."""

    def fill(staging: Path) -> dict:
        os.makedirs(staging / "saved_model" / "variables", mode=0o755)
        (staging / "saved_model" / "variables" / "weights.bin").write_text("w")
        return {"format": FORMAT}

    previous = os.umask(umask)
    try:
        target = write_artifact(tmp_path / "m", fill, manifest_name=MANIFEST)
    finally:
        os.umask(previous)
    modes = {path.relative_to(target).as_posix(): stat.S_IMODE(path.stat().st_mode) for path in target.rglob("*")}
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask
    assert modes == {
        "saved_model": 0o777 & ~umask,
        "saved_model/variables": 0o777 & ~umask,
        "saved_model/variables/weights.bin": 0o666 & ~umask,
        MANIFEST: 0o666 & ~umask,
    }


def test_a_model_written_in_a_set_group_id_folder_belongs_to_its_group(tmp_path):
    """A folder shared by a group (``chgrp deploy; chmod g+s``) hands its group, and the bit, to
    what is made in it, as ``mkdir`` keeps it; the model's folder lost the bit when it was given
    its permissions, and every file written into it then got the writer's own group."""
    import grp

    groups = [gid for gid in os.getgroups() if gid != os.getegid()]
    if os.geteuid() == 0:
        groups = [group.gr_gid for group in grp.getgrall() if group.gr_gid != os.getegid()][:1]
    if not groups:
        pytest.skip("this user is in no group besides its own")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, -1, groups[0])
    os.chmod(shared, 0o2775)

    def fill(staging: Path) -> dict:
        os.makedirs(staging / "saved_model" / "variables", mode=0o755)
        (staging / "saved_model" / "variables" / "weights.bin").write_text("w")
        return {"format": FORMAT}

    target = write_artifact(shared / "m", fill, manifest_name=MANIFEST)
    for path in [target, *target.rglob("*")]:
        assert path.stat().st_gid == groups[0], path
        if path.is_dir():
            assert path.stat().st_mode & stat.S_ISGID, path


def test_a_model_written_again_in_a_set_group_id_folder_belongs_to_its_group(tmp_path):
    """A model an earlier release wrote in a folder shared by a group lost the set-group-ID bit
    (it was cleared as the folder got its permissions): written again, it kept that mode from
    the start, and every file written into it got the writer's own group, for good."""
    import grp

    groups = [gid for gid in os.getgroups() if gid != os.getegid()]
    if os.geteuid() == 0:
        groups = [group.gr_gid for group in grp.getgrall() if group.gr_gid != os.getegid()][:1]
    if not groups:
        pytest.skip("this user is in no group besides its own")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, -1, groups[0])
    os.chmod(shared, 0o2775)
    target = write_artifact(shared / "m", _fill("old"), manifest_name=MANIFEST)
    os.chmod(target, 0o755)  # as an earlier release left it
    write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755  # the replaced folder's permissions, kept
    for path in [target, *target.rglob("*")]:
        assert path.stat().st_gid == groups[0], path


def test_a_model_written_again_keeps_the_permissions_and_group_of_the_folder_it_replaces(tmp_path, usual_umask):
    """An operator makes the model private to the service's group (chmod 750, chgrp): written
    again (train --force, reexport-responder) it was 0755 and the writer's group, readable by
    every user, as a file written over another is not (it keeps its mode)."""
    import grp

    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    others = [group.gr_gid for group in grp.getgrall() if group.gr_gid != target.stat().st_gid]
    group = others[0] if os.geteuid() == 0 and others else target.stat().st_gid
    os.chown(target, -1, group)
    os.chmod(target, 0o750)
    write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"] == "new"
    assert (stat.S_IMODE(target.stat().st_mode), target.stat().st_gid) == (0o750, group)
    fresh = write_artifact(tmp_path / "n", _fill("new"), manifest_name=MANIFEST)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o755  # a new one: the umask's


def test_a_read_only_model_replaced_leaves_no_copy_of_itself_behind(monkeypatch, tmp_path, usual_umask):
    """``chmod -R a-w`` on a model, then ``train --force``: the swap worked, but the old model's
    read-only folders could not be emptied (but by root), and it stayed in a hidden folder."""
    monkeypatch.setattr(directory.shutil, "rmtree", _rmtree_as_a_user(shutil.rmtree))
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    for path in [target, *target.rglob("*")]:
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~0o222)
    write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"] == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o555  # the replaced folder's permissions, kept


@pytest.mark.parametrize("relative", [".", "..", "saved_model/.."])
def test_a_model_directory_named_from_inside_it_is_replaced(tmp_path, monkeypatch, relative):
    """``--out .`` in the model's own folder: "." cannot be renamed (EBUSY, after the whole
    training run) and has no name for its staging sibling; its absolute path can."""
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    monkeypatch.chdir(target if relative != ".." else target / "saved_model")
    written = write_artifact(relative, _fill("new"), manifest_name=MANIFEST, force=True)
    assert written == target
    assert verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "the old directory or the staging folder was left behind"


def test_force_refuses_a_model_directory_holding_what_is_not_part_of_the_model(tmp_path):
    """--force replaces the whole directory: a user's notes, a report or a model put inside it
    would go with it, without a word."""
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    (target / "NOTES.md").write_text("mine")
    nested = write_artifact(target / "inner", _fill("nested"), manifest_name=MANIFEST)
    with pytest.raises(ArtifactError, match=r"m holds NOTES.md, inner/, which are not part of its model: --force"):
        write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert (target / "NOTES.md").read_text() == "mine" and nested.is_dir()
    (target / "NOTES.md").unlink()
    shutil.rmtree(nested)
    (target / "golden.json").write_text("{}")  # written for the model: stale once it is replaced
    write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"] == "new"
    (target / MANIFEST).write_text("{damaged")  # a damaged model may be replaced: its usual files are its own
    (target / "history.json").write_text("[]")
    write_artifact(target, _fill("newer"), manifest_name=MANIFEST, force=True)
    (target / MANIFEST).write_text("{damaged")
    (target / "report.json").write_text("{}")
    with pytest.raises(ArtifactError, match="holds report.json, which is not part of its model"):
        write_artifact(target, _fill("newest"), manifest_name=MANIFEST, force=True)


def test_replacing_a_model_never_leaves_its_path_missing(tmp_path, monkeypatch):
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    missing_after: list[str] = []
    real_rename, real_rmtree = os.rename, directory.shutil.rmtree

    def rename(src, dst):
        real_rename(src, dst)
        if not target.exists():
            missing_after.append(f"rename {src} -> {dst}")

    def rmtree(path, *args, **kwargs):
        real_rmtree(path, *args, **kwargs)
        if not target.exists():
            missing_after.append(f"rmtree {path}")

    monkeypatch.setattr(directory.os, "rename", rename)
    monkeypatch.setattr(directory.shutil, "rmtree", rmtree)
    write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert missing_after == []
    assert verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m"], "the old directory or the staging folder was left behind"


def test_a_failed_replacement_keeps_the_old_model(tmp_path):
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)

    def broken(staging: Path) -> dict:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(target, broken, manifest_name=MANIFEST, force=True)
    assert verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_a_failed_export_leaves_none_of_the_folders_it_made_for_the_model(tmp_path):
    """``train --out runs/2026/bot`` whose export fails (a parity check of ``migrate``, a full
    disk, Ctrl-C) left ``runs/2026/``, empty; a folder that already held something stays."""

    def broken(staging: Path) -> dict:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path / "runs" / "2026" / "bot", broken, manifest_name=MANIFEST)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "notes.txt").write_text("kept", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        write_artifact(tmp_path / "runs" / "2026" / "bot", _interrupted, manifest_name=MANIFEST)
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["notes.txt"]
    write_artifact(tmp_path / "runs" / "2026" / "bot", _fill("whole"), manifest_name=MANIFEST)
    assert verify_directory(tmp_path / "runs" / "2026" / "bot", manifest_name=MANIFEST, formats=(FORMAT,))


def _interrupted(staging: Path) -> dict:
    raise KeyboardInterrupt


def test_a_pipe_in_a_model_folder_is_refused_as_an_output_and_dev_stdout_is_taken(model_copy, capsys):
    """``golden DIR`` where ``DIR/golden.json`` is a pipe: written in place, as every pipe is, the
    write waited for a reader for ever; the check before any work refuses it. A pipe outside
    the model (``--out /dev/stdout``) is written."""
    from legacy_assistant.artifacts.directory import check_written_files
    from legacy_assistant.cli import main

    golden = model_copy / "golden.json"
    os.mkfifo(golden)
    with pytest.raises(ArtifactError, match=r"golden.json is not a regular file \(a device, pipe or socket\) in a"):
        check_written_files([golden], model_copy, allowed=["golden.json"])
    sentences = model_copy.parent / "sentences.txt"
    sentences.write_text("hi\n", encoding="utf-8")
    assert main(["-q", "golden", str(model_copy), "--sentences", str(sentences)]) == 1
    assert "remove it; write it elsewhere with --golden PATH" in capsys.readouterr().err
    check_written_files([os.devnull], model_copy)


def test_a_file_is_not_called_a_missing_directory(tmp_path):
    path = tmp_path / "intents.json"
    path.write_text("{}")
    with pytest.raises(ArtifactError, match="a file, not a model directory"):
        verify_directory(path, manifest_name=MANIFEST, formats=(FORMAT,))


@pytest.mark.parametrize("content", [b"{", b"\xff", b"[" * 100000 + b"]" * 100000, b"[1]"])
def test_the_digest_on_disk_of_a_manifest_that_cannot_be_read_is_none(tmp_path, content):
    """What a command compares before it replaces a model: a manifest nested too deeply was a
    RecursionError instead of "no digest there"."""
    (tmp_path / MANIFEST).write_bytes(content)
    assert directory.digest_on_disk(tmp_path, MANIFEST) is None


@pytest.mark.parametrize("content", [b"{", b"\xff", b"[" * 100000 + b"]" * 100000])
def test_a_model_directory_whose_manifest_cannot_be_read_owns_the_usual_names(tmp_path, content):
    """Replacing a model (--force) or writing a report beside one reads which files its manifest
    lists: one nested too deeply was a RecursionError, not a damaged manifest's usual names."""
    from legacy_assistant.artifacts.directory import CLASSIFIER_MANIFEST, check_destination, check_written_files

    model, other = tmp_path / "m", tmp_path / "other"
    model.mkdir()
    other.mkdir()
    (model / CLASSIFIER_MANIFEST).write_bytes(content)
    check_destination(model, force=True)
    with pytest.raises(ArtifactError, match=f"{CLASSIFIER_MANIFEST} is a file of another model"):
        check_written_files([model / CLASSIFIER_MANIFEST], other)
    check_written_files([model / "report.json"], other)
    (model / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ArtifactError, match="holds notes.txt, which is not part of its model"):
        check_destination(model, force=True)


def test_load_consistently_retries_a_load_that_a_replacement_overlapped(tmp_path):
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    discarded, calls = [], []

    def load():
        calls.append(1)
        seen = verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"]
        if len(calls) == 1:  # a writer replaces the model while this first load runs
            write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
        return seen

    loaded = directory.load_consistently(target, load, manifest_name=MANIFEST, discard=discarded.append)
    assert (loaded, discarded, len(calls)) == ("new", ["old"], 2)


class _FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_load_consistently_waits_out_a_writer_that_replaces_the_model_many_times(tmp_path):
    """How many replacements a load overlaps depends on the machine's speed: a loaded machine
    overlapped more than any fixed count, so the limit is a time."""
    target = write_artifact(tmp_path / "m", _fill("v0"), manifest_name=MANIFEST)
    fake, calls = _FakeTime(), []

    def load():
        calls.append(1)
        seen = verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))["payload"]
        if len(calls) <= 9:  # the writer replaced it again during each of the first nine loads
            write_artifact(target, _fill(f"v{len(calls)}"), manifest_name=MANIFEST, force=True)
        return seen

    loaded = directory.load_consistently(
        target, load, manifest_name=MANIFEST, patience_s=30, clock=fake.clock, sleep=fake.sleep
    )
    assert (loaded, len(calls)) == ("v9", 10)
    assert fake.pauses == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0]


def test_load_consistently_gives_up_on_a_directory_that_never_settles(tmp_path):
    target = write_artifact(tmp_path / "m", _fill("v0"), manifest_name=MANIFEST)
    fake, calls = _FakeTime(), []

    def load():
        calls.append(1)
        write_artifact(target, _fill(f"v{len(calls)}"), manifest_name=MANIFEST, force=True)
        raise ArtifactError("saved_model/weights.bin: altered")  # what a reader of a half-swapped directory sees

    with pytest.raises(ArtifactError, match=r"replaced while it was being loaded, \d+ times in 5 s"):
        directory.load_consistently(target, load, manifest_name=MANIFEST, patience_s=5, clock=fake.clock, sleep=fake.sleep)
    assert 5 <= fake.now < 6 and len(calls) == len(fake.pauses) + 1


def test_load_consistently_raises_a_real_error_at_once(tmp_path):
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    (target / "saved_model" / "weights.bin").write_text("altered")
    calls = []

    def load():
        calls.append(1)
        return verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))

    with pytest.raises(ArtifactError, match="altered"):
        directory.load_consistently(target, load, manifest_name=MANIFEST)
    assert len(calls) == 1


def test_a_predictor_loads_while_train_force_replaces_the_model(tmp_path, tiny_trained, tiny_intents):
    """A server reloading while ``train --force`` writes the same directory gets one whole model."""
    from legacy_assistant.classifier.artifact import export_artifact
    from legacy_assistant.classifier.predictor import Predictor

    target = export_artifact(tiny_trained, tiny_intents, tmp_path / "m", plot=False, source={"version": 0})
    stop = threading.Event()
    written: list[int] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for version in range(1, 7):
                export_artifact(tiny_trained, tiny_intents, target, plot=False, force=True, source={"version": version})
                written.append(version)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    versions = []
    while not stop.is_set():
        predictor = Predictor.load(target)
        versions.append(predictor.manifest["source"]["version"])
        assert predictor.rank_one("hello")[0][0] in predictor.classes
        predictor.close()
    thread.join()
    assert errors == [] and written == [1, 2, 3, 4, 5, 6]
    # Each load gave one whole model, and never an older one than the load before it.
    assert versions and versions == sorted(versions) and all(v in range(7) for v in versions)
    manifest = json.loads((target / "assistant.json").read_text(encoding="utf-8"))
    assert manifest["source"] == {"version": 6}


def test_the_manifest_names_its_training_file_without_its_location(tmp_path):
    """A model moved to another machine should not carry the trainer's home directory."""
    from legacy_assistant.artifacts.directory import sha256_file
    from legacy_assistant.cli import main

    data = Path(__file__).resolve().parent / "data" / "tiny_intents.json"
    out = tmp_path / "m"
    assert main(["-q", "train", str(data), "--out", str(out), "--epochs", "2", "--no-plot"]) == 0
    text = (out / "assistant.json").read_text(encoding="utf-8")
    assert str(data.parent) not in text
    assert json.loads(text)["source"]["data"] == {"name": data.name, "sha256": sha256_file(data)}


def test_a_destination_that_cannot_take_a_model_is_refused_before_any_work(tmp_path):
    from legacy_assistant.artifacts.directory import check_destination

    existing = tmp_path / "m"
    existing.mkdir()
    with pytest.raises(ArtifactError, match="already exists"):
        check_destination(existing, force=False)
    check_destination(existing, force=True)
    check_destination(tmp_path / "new" / "deeper" / "m", force=False)  # missing folders are made later
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine", encoding="utf-8")
    with pytest.raises(ArtifactError, match="is a file, not a model directory"):
        check_destination(a_file, force=True)
    with pytest.raises(ArtifactError, match="is a file, not a model directory"):  # not "pass --force"
        check_destination(a_file, force=False)
    # a link, to a model or to nothing: the swap that writes the model would replace the link itself
    (tmp_path / "link").symlink_to(existing)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for link in ("link", "dangling"):
        for force in (False, True):
            with pytest.raises(ArtifactError, match="is a symbolic link"):
                check_destination(tmp_path / link, force=force)
    (tmp_path / "link").unlink()
    (tmp_path / "dangling").unlink()
    with pytest.raises(ArtifactError, match="cannot write there"):
        check_destination(a_file / "m", force=False)
    if Path("/proc/self").exists():  # a file system nobody may write, root included
        with pytest.raises(ArtifactError, match="cannot write there"):
            check_destination("/proc/legacy-assistant-model", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "notes.txt"]  # the probes left nothing


def test_a_cli_path_the_system_refuses_is_one_error_line(tmp_path, capsys):
    from legacy_assistant.cli import main

    data = Path(__file__).resolve().parent / "data" / "tiny_intents.json"
    argv = ["-q", "train", str(data), "--out", str(tmp_path / "notes.txt" / "m"), "--epochs", "1", "--no-plot"]
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cannot write there" in err[0]
    model = tmp_path / "model"
    assert main(["-q", "train", str(data), "--out", str(model), "--epochs", "1", "--no-plot"]) == 0
    capsys.readouterr()
    assert main(["-q", "evaluate", str(model), str(data), "--out", str(tmp_path)]) == 1  # a folder, not a file
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: ") and "is a folder" in err
    if Path("/proc/self").exists():  # refused before the evaluation, naming the report, not a temporary file
        for argv in (["evaluate", str(model), str(data), "--out", "/proc/report.json"],
                     ["golden", str(model), "--check", "--report", "/proc/report.json"]):
            assert main(["-q", *argv]) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: /proc/report.json cannot be written (/proc: "), err


def test_a_folder_that_takes_no_new_entry_is_not_said_to_be_missing(tmp_path, monkeypatch):
    """/proc answers a new entry with ENOENT: the refusal said "(/proc: No such file or
    directory)", which reads as /proc missing; the folder is there and takes nothing new."""
    from legacy_assistant.artifacts import directory

    def refused(*args, **kwargs):  # what mkdir in /proc raises
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "x"))

    monkeypatch.setattr(directory.tempfile, "mkdtemp", refused)
    with pytest.raises(ArtifactError) as raised:
        directory.check_writable_place(tmp_path / "m", "m: cannot write there")
    assert str(raised.value) == (
        f"m: cannot write there ({tmp_path}: a folder that takes no new files or folders (a special file "
        "system, such as /proc))"
    )
    monkeypatch.undo()
    if Path("/proc/self").exists():
        with pytest.raises(ArtifactError, match=r"\(/proc: a folder that takes no new files or folders"):
            directory.check_destination("/proc/legacy-assistant-model", force=False)


def test_a_destination_that_is_an_input_file_is_named_as_that_file(tmp_path):
    """``--out corpus.jsonl --force``: the destination *is* the input, it does not hold it."""
    from legacy_assistant.artifacts.directory import check_destination

    corpus = tmp_path / "dlg.jsonl"
    corpus.write_text("[]\n")
    with pytest.raises(ArtifactError, match=f"^{corpus} is {corpus}, an input of this command"):
        check_destination(corpus, True, [corpus])
    with pytest.raises(ArtifactError, match=f"^{tmp_path} holds {corpus}, an input of this command"):
        check_destination(tmp_path, True, [corpus])


@pytest.mark.parametrize("appears", ["a folder of notes", "another model", "an empty folder"])
def test_a_destination_that_appears_while_the_model_is_written_is_not_replaced(tmp_path, appears):
    """Checked only before the work, a folder made meanwhile (a second run with the same --out,
    started at the same moment) was swapped out and deleted by the first to finish, without --force."""
    target = tmp_path / "m"

    def fill(staging: Path) -> dict:
        if appears == "another model":
            write_artifact(target, _fill("theirs"), manifest_name=MANIFEST)
        else:
            target.mkdir()
            if appears == "a folder of notes":
                (target / "notes.txt").write_text("precious")
        return _fill("ours")(staging)

    with pytest.raises(ArtifactError, match="appeared while the model was being written"):
        write_artifact(target, fill, manifest_name=MANIFEST)
    if appears == "a folder of notes":
        assert (target / "notes.txt").read_text() == "precious"
    elif appears == "another model":
        assert (target / "saved_model" / "weights.bin").read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no staging folder left either


def test_the_final_rename_refuses_a_folder_made_after_the_last_check(tmp_path):
    staging, target = tmp_path / "staging", tmp_path / "m"
    staging.mkdir()
    target.mkdir()  # empty: a plain rename would have replaced it without a word
    with pytest.raises(ArtifactError, match="appeared while the model was being written"):
        directory._rename_new(staging, target)
    assert staging.is_dir() and target.is_dir()


def test_staging_folders_of_killed_exports_are_removed_by_the_next_export(tmp_path):
    """An export killed (SIGKILL) leaves its staging folder, a model's size, beside --out for
    good: the next export there removes it, and no folder another export is writing (it holds a
    lock on it, also from another container, where a process id would say nothing) or may be
    about to lock (made in the last minute)."""
    import time

    hour_ago = time.time() - 3600
    abandoned = tmp_path / ".m.tmp-k3j2h1"
    written = tmp_path / ".m.tmp-live"  # another export is writing it
    fresh = tmp_path / ".m.tmp-new"  # just made: its export may not have locked it yet
    other = tmp_path / ".other.tmp-xyz"  # another destination's
    for folder in (abandoned, written, fresh, other):
        (folder / "saved_model").mkdir(parents=True)
    for folder in (abandoned, written, other):
        os.utime(folder, (hour_ago, hour_ago))
    held = directory._lock_folder(written)
    assert held is not None
    try:
        write_artifact(tmp_path / "m", _fill("a"), manifest_name=MANIFEST)
    finally:
        os.close(held)
    assert not abandoned.exists()
    assert written.is_dir() and fresh.is_dir() and other.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m.tmp-live", ".m.tmp-new", ".other.tmp-xyz", "m"]


def test_a_killed_exports_folder_that_cannot_be_removed_is_not_said_to_be_removed(monkeypatch, tmp_path, caplog):
    """In a shared folder (sticky, as /tmp) another user's killed export leaves a staging folder
    this user cannot remove: every export said "removing" it, and it stayed."""
    import logging
    import time

    hour_ago = time.time() - 3600
    theirs, ours = tmp_path / ".m.tmp-theirs", tmp_path / ".m.tmp-ours"
    for folder in (theirs, ours):
        (folder / "saved_model").mkdir(parents=True)
        os.utime(folder, (hour_ago, hour_ago))
    real_rmtree = shutil.rmtree

    def sticky(path, *args, **kwargs):  # the files of another user's folder in a sticky folder
        if Path(path) == theirs:
            if kwargs.get("ignore_errors"):
                return None  # nothing removed, nothing said
            raise PermissionError(1, "Operation not permitted", str(theirs / "saved_model"))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(directory.shutil, "rmtree", sticky)
    with caplog.at_level(logging.WARNING, logger=directory.log.name):
        write_artifact(tmp_path / "m", _fill("a"), manifest_name=MANIFEST)
    assert theirs.is_dir() and not ours.exists() and (tmp_path / "m").is_dir()
    lines = {record.getMessage() for record in caplog.records}
    assert f"removed {ours}, left by an export that was killed" in lines
    assert (f"cannot remove {theirs}, left by an export that was killed: [Errno 1] Operation not permitted: "
            f"'{theirs / 'saved_model'}'; its owner can") in lines
    assert not any(str(theirs) in line and "cannot" not in line for line in lines)


def _rmtree_as_a_user(real_rmtree):
    """shutil.rmtree as a user other than root runs it: no entry of a folder without write
    permission for its owner is deleted (root, which runs the suite here, deletes them all)."""

    def rmtree(path, *args, **kwargs):
        for folder in [Path(path), *(p for p in Path(path).rglob("*") if p.is_dir() and not p.is_symlink())]:
            if not folder.stat().st_mode & stat.S_IWUSR and any(folder.iterdir()):
                if kwargs.get("ignore_errors"):
                    return None
                raise PermissionError(13, "Permission denied", str(next(folder.iterdir())))
        return real_rmtree(path, *args, **kwargs)

    return rmtree


def test_a_killed_exports_read_only_folder_is_removed_by_the_next_export(monkeypatch, tmp_path, caplog, usual_umask):
    """A read-only model (chmod -R a-w) replaced by an export killed before it removed it, or a
    new model killed once given that model's read-only permissions, left a staging folder that
    every later export said it could not remove ("its owner can"), and its owner could not."""
    import logging
    import time

    monkeypatch.setattr(directory.shutil, "rmtree", _rmtree_as_a_user(shutil.rmtree))
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    killed = tmp_path / ".m.tmp-killed"
    shutil.copytree(target, killed)
    for path in [killed, *killed.rglob("*")]:
        os.chmod(path, stat.S_IMODE(path.stat().st_mode) & ~0o222)
    hour_ago = time.time() - 3600
    os.utime(killed, (hour_ago, hour_ago))
    with caplog.at_level(logging.WARNING, logger=directory.log.name):
        write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m"]
    assert f"removed {killed}, left by an export that was killed" in {record.getMessage() for record in caplog.records}


def test_an_export_holds_a_lock_on_its_staging_folder_while_it_writes(tmp_path):
    seen = []

    def fill(staging: Path) -> dict:
        seen.append(directory._lock_folder(staging))  # None: locked by the export
        return _fill("a")(staging)

    write_artifact(tmp_path / "m", fill, manifest_name=MANIFEST)
    assert seen == [None]
    again = directory._lock_folder(tmp_path / "m")  # let go once the export is done
    assert again is not None
    os.close(again)


def test_replacing_a_model_says_that_its_golden_file_is_gone(tmp_path, caplog):
    """The golden file holds the old model's predictions, so it goes with it; silently, the next
    ``golden --check`` said only "golden file not found"."""
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    (target / "golden.json").write_text("{}")
    with caplog.at_level("WARNING", logger=directory.__name__):
        write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert not (target / "golden.json").exists()
    assert [r.getMessage() for r in caplog.records] == [
        f"{target}: the replaced model's golden.json was not kept (write it again for this model)"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger=directory.__name__):
        write_artifact(target, _fill("newer"), manifest_name=MANIFEST, force=True)  # none to lose now
    assert caplog.records == []


def test_a_stop_just_after_the_swap_says_the_new_model_is_in_place(tmp_path, monkeypatch):
    """A stop in the moment after the folders were exchanged, before the swap returned: the
    clean-up deleted the old model (then in the staging folder), and the stop passed for one
    that had replaced nothing."""
    from legacy_assistant.artifacts.directory import written_before_stop

    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    exchange = directory._exchange

    def exchanged_then_stopped(first, second):
        assert exchange(first, second)
        raise KeyboardInterrupt

    monkeypatch.setattr(directory, "_exchange", exchanged_then_stopped)
    with pytest.raises(KeyboardInterrupt) as stopped:
        write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    assert written_before_stop(stopped.value) == target
    assert (target / "saved_model" / "weights.bin").read_text() == "new"
    verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # the old model deleted, no staging left


def test_a_stop_between_the_two_renames_puts_the_old_model_back(tmp_path, monkeypatch):
    """Where the system cannot exchange two folders in one step, the old model is renamed away
    and the new one into its place: a stop between the two left no model at the path (the new
    one deleted with the staging folder, the old one in a hidden folder beside it)."""
    target = write_artifact(tmp_path / "m", _fill("old"), manifest_name=MANIFEST)
    monkeypatch.setattr(directory, "_exchange", lambda first, second: False)
    rename = os.rename
    renames = []

    def stopped_at_the_second(source, destination):
        renames.append(destination)
        if len(renames) == 2:
            raise KeyboardInterrupt
        rename(source, destination)

    monkeypatch.setattr(directory.os, "rename", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        write_artifact(target, _fill("new"), manifest_name=MANIFEST, force=True)
    monkeypatch.undo()
    assert (target / "saved_model" / "weights.bin").read_text() == "old"
    verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize(
    ("found", "newer"),
    [("test/2", True), ("test/10", True), ("test/1x", False), ("test/\u0662", False), ("other/2", False),
     ("test/0", False), (2, False), ("test/" + "9" * 5000, False)],
)
def test_a_manifest_of_a_later_format_version_says_a_newer_release_wrote_it(tmp_path, found, newer):
    """"unsupported format 'legacy-assistant/2'" left a user who had trained with a newer
    release guessing whether the directory was damaged; it says to upgrade. Other formats, and
    versions that are no number (Arabic-Indic digits, thousands of digits), get no such advice."""
    target = write_artifact(tmp_path / "m", _fill("a"), manifest_name=MANIFEST)
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["format"] = found
    (target / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unsupported format") as raised:
        verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))
    assert ("a newer release of legacy-assistant wrote it" in str(raised.value)) is newer, str(raised.value)
    assert ("upgrade to load it" in str(raised.value)) is newer


def test_a_model_directory_this_user_may_not_search_is_refused_as_unreadable(tmp_path, monkeypatch):
    """A model folder of mode 000 (or without the search bit) for the server's user: looking at
    its manifest raised the system's PermissionError itself, so that ``serve`` said only
    ``[Errno 13] Permission denied: '.../model.json'`` and a reload's refusal the same, where
    every other damage is an ArtifactError in the ``PATH: problem`` form."""
    import errno

    target = tmp_path / "m"
    write_artifact(target, _fill("a"), manifest_name=MANIFEST)
    real_stat = Path.stat

    def locked(self, *args, **kwargs):  # what stat() of an entry of a folder of mode 000 meets
        if target in Path(self).parents:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", locked)
    with pytest.raises(ArtifactError) as caught:
        verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))
    assert str(caught.value) == f"{target / MANIFEST}: cannot be read (Permission denied)"


@pytest.mark.parametrize(
    ("content", "kind"), [("[1, 2]", "a list"), ('"x"', "a string"), ("3", "a number"), ("null", "null")]
)
def test_a_manifest_that_is_json_but_no_object_is_named_as_such(tmp_path, content, kind):
    """A manifest of valid JSON that is no object (``[1, 2]``): the refusal said ``unsupported
    format None``, as if an object lacked its format, sending an operator to look for a field."""
    target = tmp_path / "m"
    write_artifact(target, _fill("a"), manifest_name=MANIFEST)
    (target / MANIFEST).write_text(content)
    with pytest.raises(ArtifactError) as caught:
        verify_directory(target, manifest_name=MANIFEST, formats=(FORMAT,))
    assert str(caught.value) == f"{target / MANIFEST}: damaged: JSON {kind}, where a manifest is an object"


@pytest.mark.parametrize(
    ("target", "why"), [("releases/v3", "leads nowhere"), ("current", "leads round in a loop")]
)
def test_a_model_link_that_leads_to_no_folder_says_where_it_points(tmp_path, target, why):
    """``--model /srv/current`` with the link pointed at a release not there (a mistyped
    ``ln -sfn releases/v3``, or a loop): the start and every reload said only ``model directory
    not found: /srv/current``, while ``ls`` shows the link there."""
    (tmp_path / "releases").mkdir()
    link = tmp_path / "current"
    link.symlink_to(target)
    with pytest.raises(ArtifactError) as caught:
        verify_directory(link, manifest_name="assistant.json", formats=(FORMAT,))
    assert str(caught.value) == f"model directory not found: {link} (a symbolic link to {target}, which {why})"
