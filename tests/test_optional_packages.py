"""Without an optional package (an extra of pyproject.toml), the part that needs it fails at
once with an error naming what to install, and everything else still works."""
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
