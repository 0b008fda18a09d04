import os
import stat

import pytest

from legacy_assistant.common.files import write_text_atomically


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


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
