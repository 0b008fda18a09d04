"""Without an optional package (an extra of pyproject.toml), the part that needs it fails at
once with an error naming what to install, and everything else still works."""
import json
import logging
import sys

import pytest

from legacy_assistant.cli import main
from legacy_assistant.common.optional import MissingPackageError, require
from legacy_assistant.stores.base import open_store
from tests.helpers import TEST_DATA, TINY_INTENTS


def uninstalled(monkeypatch, *modules):
    """Make ``import module`` fail as it does when the package is not installed."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_train_without_matplotlib_stops_before_training_unless_told_not_to_plot(monkeypatch, tmp_path, capsys):
    uninstalled(monkeypatch, "matplotlib")
    out = tmp_path / "bot"
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(out), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'legacy-assistant[plots]'" in err and "--no-plot" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["-q", "train", str(TINY_INTENTS), "--out", str(out), "--epochs", "1", "--no-plot"]) == 0
    assert (out / "assistant.json").is_file() and not (out / "history.png").exists()


def test_evaluate_report_figures_without_matplotlib(monkeypatch, tmp_path, tiny_model_dir, capsys):
    uninstalled(monkeypatch, "matplotlib")
    report = tmp_path / "report.json"
    assert main(["evaluate", str(tiny_model_dir), str(TINY_INTENTS), "--out", str(report)]) == 1
    assert "pip install 'legacy-assistant[plots]'" in capsys.readouterr().err
    assert not report.exists()
    assert main(["evaluate", str(tiny_model_dir), str(TINY_INTENTS)]) == 0  # printed figures need no plots


def unimportable(monkeypatch, module, error):
    """Make ``import module`` (and its submodules) raise ``error``, as matplotlib's import does
    where it finds no folder it can write its config in."""

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name == module or name.startswith(module + "."):
                raise error
            return None

    for name in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Refuse(), *sys.meta_path])


def test_evaluate_writes_its_report_where_matplotlib_cannot_be_imported(monkeypatch, tmp_path, tiny_model_dir,
                                                                         caplog, capsys):
    """Installed but failing at its import (HOME, the XDG folders and the temporary folder all
    unwritable): not "not installed", and no reason to lose the report; each figure is named in
    a warning."""
    unimportable(monkeypatch, "matplotlib", OSError("Matplotlib requires access to a writable cache directory"))
    report = tmp_path / "report.json"
    with caplog.at_level(logging.WARNING):
        assert main(["-q", "evaluate", str(tiny_model_dir), str(TINY_INTENTS), "--out", str(report)]) == 0
    assert json.loads(report.read_text())["examples"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.levelno == logging.WARNING] == [
        "report-confusion.png not drawn",
        "report-thresholds.png not drawn",
    ]
    assert "Traceback" not in capsys.readouterr().err


def test_import_classic_without_h5py(monkeypatch, tmp_path, capsys):
    uninstalled(monkeypatch, "h5py")
    classic = TEST_DATA / "classic"
    argv = ["-q", "import-classic", str(classic / "keras2_chatbot_model.h5"), "--words", str(classic / "words.json"),
            "--classes", str(classic / "classes.txt"), "--intents", str(classic / "intents.json"),
            "--out", str(tmp_path / "bot")]
    assert main(argv) == 1
    assert "pip install 'legacy-assistant[classic]'" in capsys.readouterr().err
    assert not (tmp_path / "bot").exists()


def test_redis_store_without_redis(monkeypatch):
    uninstalled(monkeypatch, "redis")
    with pytest.raises(MissingPackageError, match=r"Redis conversation store .* pip install 'legacy-assistant\[redis\]'"):
        open_store("redis://127.0.0.1:6379/0")
    assert open_store("memory").load("a").turns == 0  # the other stores need nothing extra


def test_a_broken_installed_package_is_not_reported_as_missing(monkeypatch, tmp_path):
    """Only the package itself missing is "not installed"; a missing dependency of an installed
    package surfaces as it is."""
    package = tmp_path / "half_installed"
    package.mkdir()
    (package / "__init__.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        require("half_installed", "plots", "this")
    with pytest.raises(MissingPackageError, match="'not_installed_at_all'"):
        require("not_installed_at_all", "plots", "this")
