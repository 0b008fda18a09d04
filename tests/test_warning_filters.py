"""The suite's warning filters (pyproject.toml): a deprecation that the project's own code causes
fails the test, one raised inside third-party code is ignored.

Python's filters match a warning by the module name of the code that warns (``__name__``, for a
deprecation the caller of the deprecated API): the code below warns as a module of each name.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

# The project's packages, and the names the tests import benchmarks/ and scripts/ files under.
OWN = [
    "legacy_assistant",
    "legacy_assistant.web.app",
    "compat",
    "compat.classifier.saved_model",
    "benchmarks.serve",
    "scripts.tf_matrix",
    "serve_benchmark",
    "classic_fidelity_benchmark",
    "timing",
    "tf_matrix",
]
THIRD_PARTY = [
    "numpy",
    "tensorflow.python.debug.cli.debugger_cli_common",
    "gradio.queueing",
    "flask.app",
    "legacy_assistant_plugin",
    "compatibility",
    "timings",
    "pytest_benchmark.fixture",
    "google_benchmark",
]


def warn_as(module: str, category: type[Warning]) -> None:
    """``warnings.warn`` called by code of the module named ``module``."""
    code = compile("import warnings\nwarnings.warn('this will go away', category)\n", f"<{module}>", "exec")
    exec(code, {"__name__": module, "category": category})


@pytest.fixture(autouse=True)
def _filters_applied(request):
    if not request.config.pluginmanager.has_plugin("warnings"):
        pytest.skip("run with -p no:warnings: the configured filters are not applied")


@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
@pytest.mark.parametrize("module", OWN)
def test_a_deprecation_the_projects_own_code_causes_fails_the_test(module, category):
    with pytest.raises(category, match="this will go away"):
        warn_as(module, category)


@pytest.mark.parametrize("module", THIRD_PARTY)
def test_a_deprecation_raised_inside_third_party_code_is_ignored(module):
    with warnings.catch_warnings(record=True) as caught:
        warn_as(module, DeprecationWarning)
    assert caught == []


BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize("module", sorted(f"{path.stem}_benchmark" for path in BENCHMARKS.glob("*.py")))
def test_each_benchmark_file_loaded_under_its_own_name_is_the_projects(module):
    """tests.helpers.load_benchmark imports ``benchmarks/NAME.py`` as ``NAME_benchmark``; the
    filters list each NAME (a new file must be added there)."""
    with pytest.raises(DeprecationWarning, match="this will go away"):
        warn_as(module, DeprecationWarning)
