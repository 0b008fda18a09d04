"""The TensorFlow matrix's reading of a cell's JUnit report: a failed test's reason reaches
the printed summary, which may be all a CI log keeps of a cell run in another virtualenv."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tf_matrix():
    spec = importlib.util.spec_from_file_location("tf_matrix", ROOT / "scripts" / "tf_matrix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_a" name="test_passes" time="0.1"/>
<testcase classname="tests.test_a" name="test_same_seed_gives_bit_identical_weights[small]" time="0.1"/>
<testcase classname="tests.test_b" name="test_skips" time="0.0"><skipped message="no redis"/></testcase>
<testcase classname="tests.test_b" name="test_fails" time="0.2"><failure message="AssertionError: [1, 0]">{trace}</failure></testcase>
<testcase classname="tests.test_c" name="test_errs" time="0.2"><error message="fixture broke"/></testcase>
</testsuite></testsuites>
"""


def test_a_report_gives_counts_failures_and_their_reasons(tmp_path):
    tf_matrix = load_tf_matrix()
    trace = "\n".join(f"line {k}" for k in range(100)) + "\nE   AssertionError: [1, 0]"
    junit = tmp_path / "junit.xml"
    junit.write_text(REPORT.format(trace=trace))

    outcome = tf_matrix.read_junit(junit)

    assert (outcome["tests"], outcome["passed"], outcome["skipped"]) == (5, 2, 1)
    assert outcome["failed"] == ["tests.test_b::test_fails", "tests.test_c::test_errs"]
    reason = outcome["reasons"]["tests.test_b::test_fails"].splitlines()
    assert reason[0] == "..." and len(reason) == tf_matrix.FAILURE_LINES + 1  # the end of a long traceback
    assert reason[-1] == "E   AssertionError: [1, 0]"
    assert outcome["reasons"]["tests.test_c::test_errs"] == "fixture broke"  # no text: the message
    assert "test_same_seed_gives_bit_identical_weights" not in outcome["missing_required"]
    assert "test_shipped_model_reproduces_golden" in outcome["missing_required"]


def _cell(tests):
    """A cell whose own checks (golden, responder golden, migration) all passed."""
    return {
        "tests": tests,
        "golden": {"max_abs_delta": 0.0, "mismatches": []},
        "responder_golden": {"max_abs_delta": 0.0, "mismatches": []},
        "tf2_model": "reports/matrix/model-tf2",
    }


def test_the_closing_line_counts_each_failure_once():
    """One failed test in a cell was counted twice in "matrix: N passed, M failed": once as a
    test and again as the cell's failed check; a required test that failed, a third time as
    missing. Each failure counts once; a required test that did not run still counts."""
    tf_matrix = load_tf_matrix()
    required = tf_matrix.REQUIRED_TESTS[0]
    suite = {
        "tests": 10,
        "passed": 9,
        "failed": [f"tests.test_training::{required}[small]"],
        "missing_required": [required],
    }
    clean = {"tests": 10, "passed": 10, "failed": [], "missing_required": []}
    cross = {("a", "b"): {"ok": True, "max_abs_delta": 0.0, "mismatches": []}}

    assert tf_matrix.summary_counts({"a": _cell(suite), "b": _cell(None)}, cross, {}) == (9 + 3, 1)
    assert tf_matrix.summary_counts({"a": _cell(clean), "b": _cell(None)}, cross, {}) == (10 + 3, 0)
    never_ran = {**clean, "passed": 9, "tests": 9, "missing_required": [required]}
    assert tf_matrix.summary_counts({"a": _cell(never_ran)}, {}, {}) == (9 + 1, 1)
    broken = {**_cell(clean), "golden": {"max_abs_delta": 1.0, "mismatches": ["x"]}}
    assert tf_matrix.summary_counts({"a": broken}, {}, {}) == (10, 1)


@pytest.mark.parametrize("spec", ["", " ", "2.12.1,", ","])
def test_an_empty_version_is_refused_not_read_as_every_version(spec):
    """`--versions=` (a variable left unset) ran the whole matrix, a virtualenv of ~300 MB and
    the suite per version; "2.12.1," was refused as the version ''. Both say so in one line."""
    tf_matrix = load_tf_matrix()
    with pytest.raises(SystemExit) as refused:
        tf_matrix.resolve_versions(spec)
    assert "an empty version in the list" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert tf_matrix.resolve_versions(None) == tf_matrix.supported_versions()


PIP_OFFLINE = (
    "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError("
    "'Failed to establish a new connection: [Errno 111] Connection refused')': /simple/tensorflow-cpu/\n"
    "ERROR: Cannot install legacy-assistant because these package versions have conflicting dependencies.\n"
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/"
)

UV_OFFLINE = (
    "error: Request failed after 3 retries\n"
    "  Caused by: Failed to fetch: `https://pypi.org/simple/tensorflow-cpu/`\n"
    "  Caused by: error sending request for url (https://pypi.org/simple/tensorflow-cpu/)\n"
    "  Caused by: dns error: failed to lookup address information: Temporary failure in name resolution"
)
# a package built from source whose own output names a connection: the build failed, not the index
PIP_BUILD_FAILED = (
    "  error: subprocess-exited-with-error\n"
    "  \u00d7 Getting requirements to build wheel did not run successfully.\n"
    "  \u2570\u2500> [3 lines of output]\n"
    "      Could not connect to the X server: Connection refused\n"
    "      RuntimeError: no display\n"
    "      [end of output]\n"
    "error: subprocess-exited-with-error"
)


@pytest.mark.parametrize(
    ("output", "cause"),
    [
        (PIP_OFFLINE, "the package index could not be reached"),
        (UV_OFFLINE, "the package index could not be reached"),
        ("ERROR: No matching distribution", "see above"),
        (PIP_BUILD_FAILED, "see above"),
    ],
    ids=["pip offline", "uv offline", "no such version", "a build that failed"],
)
def test_a_failed_install_ends_on_one_line_that_says_why(tmp_path, monkeypatch, output, cause):
    """Without network a cell's install ended on pip's "ResolutionImpossible ... conflicting
    dependencies", which sends one looking for a conflict in the pins. The installer's output is
    kept, and a closing line names the version and, when the index was out of reach, says so."""
    tf_matrix = load_tf_matrix()
    script = tmp_path / "installer"
    script.write_text(f"#!/bin/sh\ncat >&2 <<'END'\n{output}\nEND\nexit 1\n")
    script.chmod(0o755)
    monkeypatch.setattr(tf_matrix, "_installer", lambda venv: [str(script)])
    with pytest.raises(SystemExit) as failed:
        tf_matrix._pip_install(tmp_path / "venv", "2.15.1", "-r", "requirements.txt")
    message = str(failed.value)
    assert output.splitlines()[-1] in message
    assert message.splitlines()[-1].startswith(f"[2.15.1] install failed (installer exit status 1): {cause}")


def test_the_pinned_cell_uses_the_virtualenv_make_built_where_make_was_told(tmp_path):
    """`make matrix VENV=DIR` built DIR for its prerequisite, then the script looked only at
    .venv/ and built .venv-tf<pinned> all over again (~300 MB). make passes its VENV on, and
    the pinned release's cell uses it while its install is up to date."""
    tf_matrix = load_tf_matrix()
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".installed").touch()  # newer than the lock files: up to date
    assert tf_matrix.venv_for(tf_matrix.pinned_version(), venv) == venv
    if shutil.which("make") is not None:
        planned = subprocess.run(["make", "-n", "matrix", f"VENV={venv}"], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60, check=True)
        assert f"scripts/tf_matrix.py --pinned-venv '{venv}'" in planned.stdout, planned


@pytest.mark.parametrize("form", ["{uv} --offline", "sh {uv}"])
def test_a_uv_given_with_arguments_installs_the_cells(tmp_path, monkeypatch, form):
    """UV="uv --offline" or UV="python3 -m uv" (make venv and make lock run either, and make
    passes UV on to the script) was looked for whole, as one command name: the matrix's
    virtualenvs were installed with pip instead, which went to the network that --offline
    keeps away from. The first word is looked for, and the rest of UV is kept."""
    tf_matrix = load_tf_matrix()
    calls = tmp_path / "calls"
    uv = tmp_path / "uv"
    uv.write_text(f"#!/bin/sh\necho \"$@\" >> '{calls}'\n")
    uv.chmod(0o755)
    monkeypatch.setenv("UV", form.format(uv=uv))
    tf_matrix._pip_install(tmp_path / "venv", "2.15.1", "-r", "requirements.txt")
    ran = calls.read_text().split()
    assert ran[: ran.index("-r")] == [
        *(["--offline"] if "--offline" in form else []),
        "pip",
        "install",
        "--python",
        str(tmp_path / "venv" / "bin" / "python"),
        "--compile-bytecode",
        "-q",
    ], ran


@pytest.mark.parametrize("uv", ["", "no-such-uv --offline"])
def test_without_uv_the_cells_install_with_pip(tmp_path, monkeypatch, uv):
    """`UV=` (make venv's way to ask for pip), or a UV whose command is not there, installs with
    the virtualenv's own pip, as make venv does."""
    tf_matrix = load_tf_matrix()
    monkeypatch.setenv("UV", uv)
    assert tf_matrix._installer(tmp_path / "venv")[:3] == [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip"]


def _passing_suite(tf_matrix, tmp_path: Path, then: str) -> tuple[Path, Path]:
    """A virtualenv whose python, run as pytest, writes a JUnit report of the required tests,
    all passed, then runs the shell lines ``then``; and an empty folder for the cell's files."""
    cases = "".join(f'<testcase classname="tests.t" name="{name}" time="0.1"/>' for name in tf_matrix.REQUIRED_TESTS)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(
        "#!/bin/sh\nfor arg; do case \"$arg\" in --junitxml=*) report=\"${arg#--junitxml=}\";; esac; done\n"
        f"echo '<testsuites><testsuite>{cases}</testsuite></testsuites>' > \"$report\"\n{then}"
    )
    (venv / "bin" / "python").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    return venv, out


@pytest.mark.parametrize(("status", "cell_passes"), [(0, True), (2, False), (3, False), (1, False)])
def test_a_suite_that_ends_badly_with_no_failed_test_in_its_report_fails_the_cell(tmp_path, status, cell_passes):
    """pytest interrupted (exit 2) or stopped by an internal error (exit 3) still writes its
    JUnit report, of the tests that ran: with the required ones among them and none failed, the
    cell passed, on part of its suite. A non-zero exit with no failed test in the report now
    fails the cell, and says how pytest ended."""
    tf_matrix = load_tf_matrix()
    venv, out = _passing_suite(tf_matrix, tmp_path, f"exit {status}\n")

    tests = tf_matrix.run_tests(venv, "2.15.1", out, seed=1)

    assert tests["exit"] == status and tests["passed"] == len(tf_matrix.REQUIRED_TESTS)
    cell = {**_cell(tests), "tests": tests}
    assert tf_matrix.cell_ok(cell) is cell_passes, tests
    if not cell_passes:
        assert tests["failed"] == [f"pytest exited with status {status}, no failed test in its report"], tests
        assert tf_matrix.summary_counts({"2.15.1": cell}, {}, {})[1] == 1


@pytest.mark.parametrize("workers", [0, 3])
def test_a_cells_suite_runs_in_the_processes_asked_for_taking_whole_files(tmp_path, workers):
    """A cell's suite runs in ``--workers`` pytest-xdist processes, each taking whole test files
    (a file's module fixtures, a trained model among them, made once); 0 is pytest's own."""
    tf_matrix = load_tf_matrix()
    venv, out = _passing_suite(tf_matrix, tmp_path, f"printf '%s\\n' \"$@\" > '{tmp_path / 'args'}'\n")

    tests = tf_matrix.run_tests(venv, "2.15.1", out, seed=1, workers=workers)

    assert tests["exit"] == 0 and tests["passed"] == len(tf_matrix.REQUIRED_TESTS), tests
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("-n") + 1] == str(workers) and args[args.index("--dist") + 1] == "loadfile", args


def test_a_negative_number_of_workers_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "scripts" / "tf_matrix.py"), "--workers", "-1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "--workers: -1 is below 0" in result.stderr, result.stderr
