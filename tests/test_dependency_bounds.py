"""The oldest TensorFlow cell (constraints/tf-2.12.1.txt) pins every direct dependency at the
lower bound pyproject.toml states, so that the suite run there proves those bounds."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
OLDEST = ROOT / "constraints" / "tf-2.12.1.txt"
# The cell installs tensorflow-cpu (Linux x86-64), not the tensorflow build other platforms get;
# the playground (gradio) and the test tools are not installed at their lower bounds there.
NOT_AT_LOWER_BOUND = {"tensorflow"}
EXTRAS = ("redis", "plots", "classic")


def _direct_requirements() -> list[Requirement]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own dependency, tomli, is the same parser
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in EXTRAS:
        texts += project["optional-dependencies"][extra]
    requirements = [Requirement(text) for text in texts]
    return [r for r in requirements if canonicalize_name(r.name) not in NOT_AT_LOWER_BOUND]


def _pins() -> dict[str, str]:
    pins = {}
    for line in OLDEST.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_direct_dependency_states_a_lower_bound():
    unbounded = [str(r) for r in _direct_requirements() if not any(s.operator == ">=" for s in r.specifier)]
    assert unbounded == []


def test_the_oldest_cell_pins_each_direct_dependency_at_its_lower_bound():
    pins = _pins()
    wrong = {}
    for requirement in _direct_requirements():
        name = canonicalize_name(requirement.name)
        bound = next((s.version for s in requirement.specifier if s.operator == ">="), None)
        # "flask>=2.3" is met first by 2.3.0: compared as versions, not strings
        if bound is None or name not in pins or Version(pins[name]) != Version(bound):
            wrong[name] = (f">={bound}", pins.get(name))
    assert wrong == {}


def test_both_tensorflow_builds_have_the_same_bound():
    """The CPU build (the cell's) and the one other platforms get start at the same release."""
    try:
        import tomllib
    except ModuleNotFoundError:
        import tomli as tomllib
    texts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = {
        canonicalize_name(r.name): str(r.specifier)
        for r in map(Requirement, texts)
        if canonicalize_name(r.name) in ("tensorflow", "tensorflow-cpu")
    }
    assert len(bounds) == 2 and len(set(bounds.values())) == 1, bounds
