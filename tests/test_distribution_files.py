"""What the source distribution and the wheel carry, read from MANIFEST.in and pyproject.toml
against the files of the repository, without building either."""

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency, tomli, is the same parser
    import tomli as tomllib


def _sdist_files(root: Path) -> set[str]:
    """The files MANIFEST.in selects in ``root`` (setuptools' own template reader)."""
    egg_info = pytest.importorskip("setuptools.command.egg_info")
    cwd = os.getcwd()
    os.chdir(root)  # FileList works on paths relative to the current folder
    try:
        files = egg_info.FileList()
        files.findall(".")
        for line in (root / "MANIFEST.in").read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                files.process_template_line(line)
    finally:
        os.chdir(cwd)
    return {Path(name).as_posix() for name in files.files}


def _tracked(*folders: str) -> set[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    listed = subprocess.run(["git", "ls-files", "-z", *folders], cwd=ROOT, capture_output=True, check=True)
    return {name for name in listed.stdout.decode().split("\0") if name}


def test_the_source_distribution_carries_every_shipped_model_and_data_file():
    shipped = _sdist_files(ROOT)
    tracked = _tracked("exported", "data")
    assert tracked and tracked <= shipped, sorted(tracked - shipped)


def test_the_source_distribution_carries_every_benchmark_its_docs_and_makefile_run():
    """docs/MEASURED.md, the README and the Makefile (all in the source distribution) give
    `python benchmarks/NAME.py` and `make bench` as the way to measure the figures again, but
    benchmarks/ was left out: in an unpacked source distribution each was "can't open file"."""
    shipped = _sdist_files(ROOT)
    texts = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md"))]
    assert {path.relative_to(ROOT).as_posix() for path in texts[1:]} <= shipped  # setuptools adds the readme
    named = {name for path in texts for name in re.findall(r"benchmarks/[\w-]+\.py", path.read_text(encoding="utf-8"))}
    assert "benchmarks/predictor.py" in named  # `make bench`
    named.add("benchmarks/timing.py")  # the module every benchmark imports
    assert named <= _tracked("benchmarks"), sorted(named - _tracked("benchmarks"))
    assert named <= shipped, sorted(named - shipped)


def test_the_source_distribution_leaves_out_models_and_data_of_ones_own(tmp_path):
    """MANIFEST.in grafted all of exported/ and data/: a model trained into exported/mybot as the
    README shows, an export's abandoned staging folder, or a data set in data/ went into the
    source distribution of whoever built it in their checkout."""
    shutil.copy(ROOT / "MANIFEST.in", tmp_path / "MANIFEST.in")
    tracked = _tracked("exported", "data")
    own = ["exported/mybot/assistant.json", "exported/.default.tmp-1a2b/assistant.json", "data/my_intents.csv"]
    for name in [*tracked, *own]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    shipped = _sdist_files(tmp_path)
    assert tracked <= shipped
    assert not shipped & set(own), sorted(shipped & set(own))


def test_the_wheel_carries_every_file_of_the_packages_that_is_not_python():
    """package-data against the packages' folders: a template, a static file or the py.typed
    marker left out of the wheel is found only by an installed copy."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in ("legacy_assistant", "compat"):
        assert (ROOT / package / "py.typed").is_file(), package  # its type hints are meant for users too
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT / package).as_posix()
            patterns = package_data.get(package, [])
            assert any(_glob_matches(relative, pattern) for pattern in patterns), f"{package}/{relative}"


def _glob_matches(relative: str, pattern: str) -> bool:
    """As setuptools' glob of package-data: a ``*`` stays within one folder."""
    parts, pattern_parts = relative.split("/"), pattern.split("/")
    return len(parts) == len(pattern_parts) and all(map(fnmatch.fnmatchcase, parts, pattern_parts))


def _unpacked_sdist(tmp_path):
    """A folder laid out as an unpacked source distribution as far as make reads it: the
    Makefile, the project file and the lock files, no tests/ and no scripts/."""
    sdist = tmp_path / "legacy_assistant-0.1.0"
    sdist.mkdir()
    for name in ("Makefile", "pyproject.toml", "requirements-tf1compat.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, sdist / name)
    return sdist


def test_make_test_in_an_unpacked_source_distribution_says_the_tests_are_not_there(tmp_path):
    """The source distribution has no tests/ (MANIFEST.in prunes it): make test made the
    virtualenv, then failed with pytest's "no tests ran" (exit 5). It says why, makes nothing,
    and still fails; in the checkout it runs pytest as before."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    sdist = _unpacked_sdist(tmp_path)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\necho 'the venv python ran:' \"$@\"\nexit 5\n")
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed").touch()  # newer than the copies: nothing to install
    made = subprocess.run(["make", "test", f"VENV={venv}"], cwd=sdist, capture_output=True, text=True, timeout=60)
    assert made.returncode != 0, made
    assert "the tests are not part of the source distribution" in made.stderr, made
    assert "the venv python ran" not in made.stdout + made.stderr, made
    checkout = subprocess.run(["make", "-n", "test", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    assert checkout.returncode == 0 and f"{venv}/bin/python -m pytest" in checkout.stdout, checkout


@pytest.mark.parametrize("target", ["matrix", "test-tf-oldest"])
def test_the_version_matrix_in_an_unpacked_source_distribution_says_the_tests_are_not_there(tmp_path, target):
    """The version matrix runs the suite through scripts/tf_matrix.py, which the source
    distribution leaves out with the tests: make matrix and make test-tf-oldest made the
    virtualenv, then failed with Python's "can't open file". They say why and make nothing; in
    the checkout they run the script as before."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    sdist = _unpacked_sdist(tmp_path)
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'a python ran:' \"$@\"\nexit 2\n")
    python.chmod(0o755)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(python)
    (venv / ".installed").touch()  # newer than the copies: nothing to install
    args = [target, f"VENV={venv}", f"PYTHON={python}"]
    made = subprocess.run(["make", *args], cwd=sdist, capture_output=True, text=True, timeout=60)
    assert made.returncode != 0, made
    assert f"make {target}: the tests are not part of the source distribution" in made.stderr, made
    assert "a python ran" not in made.stdout + made.stderr, made
    checkout = subprocess.run(["make", "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert checkout.returncode == 0 and f"{python} scripts/tf_matrix.py" in checkout.stdout, checkout


def test_make_lint_in_an_unpacked_source_distribution_checks_the_folders_it_has(tmp_path):
    """make lint named scripts/, which the source distribution leaves out, to ruff (an error
    for the missing folder) and left mypy to pyproject.toml's list of folders (the same): it
    names only the folders that are there, to both tools; in the checkout, all four."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    sdist = _unpacked_sdist(tmp_path)
    for folder in ("legacy_assistant", "compat", "benchmarks"):
        (sdist / folder).mkdir()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for tool in ("ruff", "mypy"):
        (venv / "bin" / tool).write_text(f"#!/bin/sh\necho '{tool}' \"$@\"\n")
        (venv / "bin" / tool).chmod(0o755)
    (venv / ".installed").touch()  # newer than the copies: nothing to install
    made = subprocess.run(["make", "lint", f"VENV={venv}"], cwd=sdist, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made
    ran = [line for line in made.stdout.splitlines() if line.startswith(("ruff", "mypy"))]
    expected = "legacy_assistant compat benchmarks"
    assert ran == [f"ruff check {expected}", f"ruff format --check {expected}", f"mypy {expected}"], made
    checkout = subprocess.run(["make", "-n", "lint", f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
    assert f"{venv}/bin/mypy legacy_assistant compat benchmarks scripts" in checkout.stdout, checkout


def test_git_ignores_every_folder_make_clean_removes():
    """make lint left .mypy_cache/ untracked in the checkout (mypy writes no .gitignore into
    it, unlike ruff into its own cache, which is there only once ruff has run): `git add -A`
    after it committed mypy's cache. Every folder make clean removes is one git ignores."""
    if shutil.which("make") is None or shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs make and a git checkout")
    cleaned = subprocess.run(["make", "-n", "clean", "VENV=.venv"], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, check=True)
    removed = next(line.split()[2:] for line in cleaned.stdout.splitlines() if line.startswith("rm -rf "))
    names = [name.replace("*", "x") for name in removed]
    assert ".mypy_cache" in names and ".ruff_cache" in names, names
    for name in names:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{name}/"], cwd=ROOT)
        assert ignored.returncode == 0, f"{name}/ is not ignored by git"


def test_make_venv_finishes_a_virtualenv_whose_making_was_interrupted(tmp_path):
    """Ctrl-C while `python -m venv` installs pip leaves the virtualenv's python without pip:
    make venv saw the python, skipped venv, and every later run failed with "No module named
    pip" until the folder was removed by hand. It runs venv again over such a folder."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # the half-made virtualenv's python: it runs, but has no pip
    (venv / "bin" / "python").write_text("#!/bin/sh\necho 'No module named pip' >&2\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho \"$@\" >> '{calls}'\nexit 3\n")
    python.chmod(0o755)
    made = subprocess.run(["make", "venv", f"VENV={venv}", f"PYTHON={python}", "UV=no-such-uv"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert calls.exists() and calls.read_text().split() == ["-m", "venv", str(venv)], made
    assert made.returncode != 0 and not (venv / ".installed").exists(), made


@pytest.mark.parametrize("uv", ["", "no-such-uv"])
def test_make_lock_without_uv_says_it_needs_uv(uv):
    """`UV=` (which makes make venv use pip) made make lock run `pip compile`, and pip answered
    'unknown command "compile"'; a uv not on PATH gave the shell's "not found". It says that it
    needs uv, before it runs anything, and touches no lock file."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    locks = {name: (ROOT / name).read_bytes() for name in ("requirements-tf1compat.txt", "requirements-dev.txt")}
    made = subprocess.run(["make", "lock", f"UV={uv}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode != 0, made
    assert "make lock needs uv" in made.stderr and "compile" not in made.stderr, made
    assert {name: (ROOT / name).read_bytes() for name in locks} == locks


def test_make_responder_with_a_wrong_datasets_folder_keeps_the_checkpoints(tmp_path):
    """make responder removed the checkpoints an interrupted run had left (the command it
    printed resumes from them) before the train command found that DATASETS named no corpora:
    a mistyped folder cost the training done. It names the missing corpus and removes nothing."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "legacy-assistant").write_text("#!/bin/sh\necho 'the command ran:' \"$@\"\nexit 9\n")
    (venv / "bin" / "legacy-assistant").chmod(0o755)
    (venv / ".installed").touch()  # newer than the lock files: nothing to install
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "epoch-3").mkdir(parents=True)
    made = subprocess.run(["make", "responder", f"VENV={venv}", f"DATASETS={tmp_path / 'no-such'}",
                           f"RESPONDER_CHECKPOINTS={checkpoints}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode != 0, made
    assert f"{tmp_path / 'no-such'}/topical_chat/valid_freq.json not found" in made.stderr, made
    assert "the command ran" not in made.stdout + made.stderr, made
    assert (checkpoints / "epoch-3").is_dir()


@pytest.mark.parametrize("form", ["{uv} --offline", "sh {uv}"])
def test_make_lock_runs_a_uv_given_with_arguments(tmp_path, form):
    """UV="python3 -m uv" or UV="uv --offline" (make venv installs with either) was looked for
    whole, as one command name, and make lock said that it needs uv."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    calls = tmp_path / "calls"
    uv = tmp_path / "uv"
    uv.write_text(f"#!/bin/sh\necho \"$@\" >> '{calls}'\n")
    uv.chmod(0o755)
    made = subprocess.run(["make", "lock", f"UV={form.format(uv=uv)}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert made.returncode == 0 and "make lock needs uv" not in made.stderr, made
    compiled = [line.partition("pip compile ")[2].split()[0] for line in calls.read_text().splitlines()]
    assert compiled == ["requirements-tf1compat.in", "requirements-dev.in"], made


def test_make_venv_with_uv_keeps_a_virtualenv_without_pip(tmp_path):
    """uv installs with no pip in the virtualenv, and `uv venv` makes one without it: make venv
    ran $(PYTHON) -m venv over such a virtualenv, with whatever Python that is."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # a virtualenv uv made: its python runs, and has no pip
    no_pip = "[ \"$1\" = -m ] && { echo 'No module named pip' >&2; exit 1; }"
    (venv / "bin" / "python").write_text(f"#!/bin/sh\n{no_pip}\nexit 0\n")
    (venv / "bin" / "python").chmod(0o755)
    calls = tmp_path / "calls"
    for name in ("python", "uv"):
        (tmp_path / name).write_text(f"#!/bin/sh\necho {name} \"$@\" >> '{calls}'\n")
        (tmp_path / name).chmod(0o755)
    made = subprocess.run(["make", "venv", f"VENV={venv}", f"PYTHON={tmp_path / 'python'}", f"UV={tmp_path / 'uv'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and (venv / ".installed").exists(), made
    ran = calls.read_text().splitlines()
    assert not [line for line in ran if line.startswith("python")], ran
    assert [line.split()[:3] for line in ran] == [["uv", "pip", "install"]] * 2, ran


def test_make_venv_names_a_virtualenv_whose_pip_venv_cannot_mend(tmp_path):
    """A pip broken in place (a file of it removed) is one venv leaves as it is (its ensurepip
    finds that version installed): make venv ran venv, then failed in pip's traceback every time."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\necho 'ImportError: cannot import name' >&2\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 0\n")  # venv ran, and mended nothing
    python.chmod(0o755)
    made = subprocess.run(["make", "venv", f"VENV={venv}", f"PYTHON={python}", "UV=no-such-uv"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode != 0 and not (venv / ".installed").exists(), made
    assert f"make venv: {venv} is broken" in made.stderr and f"rm -rf {venv}" in made.stderr, made
    assert "ImportError" not in made.stderr, made



def _checkout_with_build(tmp_path: Path) -> Path:
    """A folder with the Makefile and a build/ (in a path with a space, as make's own path
    functions would split it)."""
    checkout = tmp_path / "check out"
    checkout.mkdir()
    shutil.copy(ROOT / "Makefile", checkout / "Makefile")
    (checkout / "build" / "run" / "ckpt" / "epoch-3").mkdir(parents=True)
    (checkout / "build" / "other").mkdir()
    (checkout / "build" / "tmp").mkdir()
    (checkout / "build" / "file").touch()
    return checkout


@pytest.mark.parametrize("spelt", ["build/run", "./build/run/", "build/run/ckpt", "{root}/build/run/ckpt",
                                   "{root}/../check out/build/run", "{link}/build/run"])
def test_make_clean_keeps_the_responder_checkpoints_however_their_folder_is_spelt(tmp_path, spelt):
    """make clean keeps the folder of build/ that holds the checkpoints an interrupted make
    responder resumes from; it read RESPONDER_CHECKPOINTS as written, so an absolute path
    ($PWD/build/run, or one through a link to the checkout) kept build/tmp instead, and the
    checkpoints went. The rest of build/ is removed either way."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    checkout = _checkout_with_build(tmp_path)
    (tmp_path / "link").symlink_to(checkout)
    checkpoints = spelt.format(root=checkout, link=tmp_path / "link")
    made = subprocess.run(["make", "clean", "VENV=venv", f"RESPONDER_CHECKPOINTS={checkpoints}"], cwd=checkout,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made
    assert sorted(p.name for p in (checkout / "build").iterdir()) == ["run"], made
    assert (checkout / "build" / "run" / "ckpt" / "epoch-3").is_dir()


@pytest.mark.parametrize(("spelt", "kept"), [("build", ["file", "other", "run", "tmp"]),
                                             ("{root}/build/", ["file", "other", "run", "tmp"]),
                                             ("elsewhere/run", []), ("/nowhere/build/run", []), ("", [])])
def test_make_clean_with_the_checkpoints_in_build_itself_or_outside_it(tmp_path, spelt, kept):
    """Checkpoints written into build/ itself keep all of it (they were removed with the rest);
    elsewhere (or none), nothing there is kept (an absolute path kept build/<its first folder>)."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    checkout = _checkout_with_build(tmp_path)
    (checkout / "elsewhere" / "run").mkdir(parents=True)
    checkpoints = spelt.format(root=checkout)
    made = subprocess.run(["make", "clean", "VENV=venv", f"RESPONDER_CHECKPOINTS={checkpoints}"], cwd=checkout,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made
    assert sorted(p.name for p in (checkout / "build").iterdir()) == kept, made
    assert (checkout / "elsewhere" / "run").is_dir()


def _fresh_venv_python(tmp_path: Path) -> tuple[Path, Path]:
    """A virtualenv folder not made yet and a PYTHON that records being asked to make it."""
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho \"$@\" >> '{calls}'\nexit 3\n")
    python.chmod(0o755)
    return tmp_path / "venv", calls


def test_make_bench_serve_without_wrk_says_so_before_making_the_virtualenv(tmp_path):
    """make bench-serve made the virtualenv (TensorFlow's download and install, on a fresh
    checkout) before it looked for wrk, then said on stdout that it needs it. It looks first, says
    so on stderr, and makes nothing."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv, calls = _fresh_venv_python(tmp_path)
    (tmp_path / "bin").mkdir()  # a PATH without wrk
    made = subprocess.run([shutil.which("make"), "bench-serve", f"VENV={venv}", f"PYTHON={tmp_path / 'python'}",
                           "UV=no-such-uv"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PATH=str(tmp_path / "bin")))
    assert made.returncode != 0, made
    assert "make bench-serve needs wrk: apt-get install wrk" in made.stderr, made
    assert not calls.exists() and not venv.exists(), made


def test_make_responder_names_a_missing_corpus_before_making_the_virtualenv(tmp_path):
    """make responder looked for the corpora only once the virtualenv was made: a wrong
    DATASETS on a fresh checkout cost the install first."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv, calls = _fresh_venv_python(tmp_path)
    made = subprocess.run(["make", "responder", f"VENV={venv}", f"PYTHON={tmp_path / 'python'}", "UV=no-such-uv",
                           f"DATASETS={tmp_path / 'no-such'}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert made.returncode != 0, made
    assert f"{tmp_path / 'no-such'}/topical_chat/valid_freq.json not found" in made.stderr, made
    assert not calls.exists() and not venv.exists(), made
