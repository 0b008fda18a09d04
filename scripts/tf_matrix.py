"""The TensorFlow version matrix: one virtualenv per supported tensorflow-cpu, the whole test
suite in each, the shipped model's golden predictions on each, and models trained on each
version loaded on every other.

    python3 scripts/tf_matrix.py                            # every version in constraints/
    python3 scripts/tf_matrix.py --versions oldest,pinned --without-suite pinned   # CI, after make test
    python3 scripts/tf_matrix.py --versions 2.15.1
    python3 scripts/tf_matrix.py --versions oldest --prepare   # only build that virtualenv

A version is supported when ``constraints/tf-<version>.txt`` pins its environment (every
package). An older release's virtualenv, ``.venv-tf<version>/``, gets the project's own
requirements (``pyproject.toml`` with the extras the tests need) under that file as constraints,
and is rebuilt when either file changes. The pinned release's environment is the lock files
(``requirements-tf1compat.txt``, ``requirements-dev.txt``): it reuses ``.venv/`` (``--pinned-venv``,
which make sets to its ``VENV``) when ``make venv`` has built it. ``--without-suite`` leaves
out a version's test suite (``make test`` runs the pinned one) but still trains and migrates
its model for the cross-version loads. Results go
to ``reports/matrix/`` (``matrix.md``, ``matrix.json``, JUnit XML and the pytest log per
version); the table is printed. Every cell runs the suite in the same random order (``--seed``,
printed; pytest-randomly). Exit status 1 when any cell fails: a failed
or missing test, golden drift over 1e-5 or another top-1 intent, a shipped-responder golden
reply with other tokens (or its log-probability moved over 1e-4), or a model trained on one
version answering differently on another.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints"
REPORTS = ROOT / "reports" / "matrix"
TOLERANCE = 1e-5
RESPONDER_TOLERANCE = 1e-4  # nats, on a golden reply's summed log-probability; its tokens must be equal
# Tests that must have run and passed in every cell, not merely "no failures".
REQUIRED_TESTS = (
    "test_same_seed_gives_bit_identical_weights",
    "test_shipped_model_reproduces_golden",
    "test_shipped_model_parity_on_golden_and_generated_sentences",
    "test_model_trained_in_this_run_has_parity",
    "test_real_keras_files_import_exactly",
    "test_shipped_responder_reproduces_golden",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def supported_versions() -> list[str]:
    found = [p.name[len("tf-") : -len(".txt")] for p in CONSTRAINTS.glob("tf-*.txt")]
    return sorted(found, key=version_key)


def pinned_version() -> str:
    match = re.search(r"^tensorflow-cpu==(\S+)", (ROOT / "requirements-tf1compat.txt").read_text(), re.M)
    if not match:
        sys.exit("requirements-tf1compat.txt pins no tensorflow-cpu")
    return match.group(1)


def resolve_versions(spec: str | None) -> list[str]:
    """Versions named in ``spec`` (comma-separated; ``oldest``, ``newest`` and ``pinned`` allowed),
    all supported ones when it is None. An empty spec or item (``--versions=``, ``"2.12.1,"``)
    is an error rather than every version: a variable left unset must not start the whole matrix."""
    supported = supported_versions()
    if spec is None:
        return supported
    chosen = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            sys.exit(f"{spec!r}: an empty version in the list; supported: {', '.join(supported)}")
        version = {"oldest": supported[0], "newest": supported[-1], "pinned": pinned_version()}.get(item, item)
        if version not in supported:
            sys.exit(f"{version}: not supported (no constraints/tf-{version}.txt); supported: {', '.join(supported)}")
        if version not in chosen:
            chosen.append(version)
    return sorted(chosen, key=version_key)


LOCK_FILES = (ROOT / "requirements-tf1compat.txt", ROOT / "requirements-dev.txt")
# The extras an older release's cell installs: everything the test suite imports.
TEST_EXTRAS = "redis,plots,classic,test"


def _files_digest(paths: list[Path]) -> str:
    """sha256 of files and of the requirements files they include with ``-r`` or ``-c``."""
    digest = hashlib.sha256()
    pending = list(reversed(paths))
    while pending:
        current = pending.pop()
        text = current.read_text()
        digest.update(text.encode())
        pending += [(current.parent / m).resolve() for m in re.findall(r"^-[rc]\s+(\S+)", text, re.M)]
    return digest.hexdigest()


def _installer(venv: Path) -> list[str]:
    """uv's installer when it is on PATH (``$UV``, as the Makefile's; the same pins in well under
    half of pip's time, compiled to bytecode as pip does), else the virtualenv's pip.

    ``$UV`` may hold arguments, as the Makefile allows (``uv --offline``, ``python3 -m uv``): its
    first word is looked for and the rest kept, rather than the whole looked for as one name."""
    words = shlex.split(os.environ.get("UV", "uv"))
    uv = shutil.which(words[0]) if words else None
    if uv:
        python = str(venv / "bin" / "python")
        return [uv, *words[1:], "pip", "install", "--python", python, "--compile-bytecode", "-q"]
    return [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]


def _pip_install(venv: Path, version: str, *args: str) -> None:
    install = subprocess.run(
        [*_installer(venv), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if install.returncode != 0:
        sys.exit(install_failure(version, install.returncode, install.stdout[-3000:] + "\n" + install.stderr[-3000:]))


# What pip and uv print when the package index cannot be reached (no network, no DNS, a proxy
# that refuses): pip retries, then ends on a misleading "conflicting dependencies".
UNREACHABLE = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution"
    r"|Name or service not known|Network is unreachable|Connection refused|ConnectTimeoutError"
    r"|ProxyError|dns error|error sending request|Could not connect",
    re.I,
)


def install_failure(version: str, status: int, output: str) -> str:
    """The message of a failed install: the installer's output, then one closing line that says
    what failed (the package index out of reach, when the installer's own lines say so).

    A package build's output, which pip and uv print indented under their own lines (six
    spaces), is not read for that: a build that failed saying "Connection refused" or "Could
    not connect to the X server" is a failed build, not an index out of reach."""
    own = "\n".join(line for line in output.splitlines() if len(line) - len(line.lstrip(" ")) < 4)
    cause = "the package index could not be reached (no network?)" if UNREACHABLE.search(own) else "see above"
    return f"{output.strip()}\n[{version}] install failed (installer exit status {status}): {cause}"


def venv_for(version: str, project_venv: Path = ROOT / ".venv") -> Path:
    """The virtualenv of ``version``, created or refreshed from its constraints (an older
    release) or from the lock files (the pinned release, as ``make venv`` does: its virtualenv,
    ``project_venv``, serves when its install is up to date)."""
    constraints = CONSTRAINTS / f"tf-{version}.txt"
    pinned = version == pinned_version()
    project_venv = ROOT / project_venv  # a relative path is the checkout's
    stamp = project_venv / ".installed"
    if pinned and stamp.exists():
        newest_input = max(p.stat().st_mtime for p in (*LOCK_FILES, ROOT / "pyproject.toml"))
        if stamp.stat().st_mtime >= newest_input:
            return project_venv
    venv = ROOT / f".venv-tf{version}"
    marker = venv / ".matrix-installed"
    wanted = _files_digest([constraints, ROOT / "pyproject.toml"])
    if marker.exists() and marker.read_text().strip() == wanted:
        return venv
    source = "the lock files" if pinned else f"pyproject.toml under {constraints.relative_to(ROOT)}"
    log(f"[{version}] creating {venv.name} from {source}")
    started = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if pinned:
        _pip_install(venv, version, *(arg for path in LOCK_FILES for arg in ("-r", str(path))))
        _pip_install(venv, version, "--no-deps", "-e", str(ROOT))
    else:
        _pip_install(venv, version, "-c", str(constraints), "-e", f"{ROOT}[{TEST_EXTRAS}]")
    marker.write_text(wanted + "\n")
    log(f"[{version}] installed in {time.perf_counter() - started:.0f}s")
    return venv


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.pop("LEGACY_ASSISTANT_RUNTIME", None)
    return env


# Test modules that run in the pinned release's cell only:
# * the browser, OpenAPI and playground tests need tools an old release's environment cannot hold
#   (selenium and openapi-spec-validator need typing-extensions >= 4.6, gradio needs pydantic 2,
#   which needs the same; TensorFlow 2.12 caps it below);
# * tests of the HTTP layer and the conversation stores, whose model calls are the Predictor and
#   Responder calls the model tests check in every cell (the real gunicorn server, the API
#   routes, hot swap and batched decoding still run in every cell; the dev server and the web
#   benchmark's smoke test do not): they keep the matrix, and CI's oldest-release cell, to what
#   a TensorFlow release can change;
# * for the same reason, the tests of the command line's option, output and data-file handling
#   and of the library's argument checks (their training and model calls are the ones above);
# * and the tests of where the commands run (Windows' missing names simulated, containers'
#   read-only roots and memory limits, a Unix socket), the stores' differential test and the
#   benchmarks' arithmetic: the project's own code paths around model calls checked above.
# Single tests of the same kind in other modules carry the ``pinned_only`` marker (the
# training run's budget and resume bookkeeping, the migration's tampering check, its
# interruption while it copies the golden file, a source replaced while it is migrated and its
# messages about golden files, the metrics folder removed under a running server, the command
# line's messages): the TensorFlow calls they make are checked in every cell by their neighbours.
PINNED_ONLY_TESTS = (
    "tests/test_chat_page.py",
    "tests/test_openapi.py",
    "tests/test_playground.py",
    "tests/test_batching_wiring.py",
    "tests/test_cakechat_api.py",
    "tests/test_conversations.py",
    "tests/test_durability.py",
    "tests/test_fuzz_api.py",
    "tests/test_generated_fallback.py",
    "tests/test_metrics.py",
    "tests/test_security.py",
    "tests/test_server_edges.py",
    "tests/test_server_pages.py",
    "tests/test_settings.py",
    "tests/test_store.py",
    "tests/test_store_contract.py",
    "tests/test_web_wiring.py",
    "tests/test_dev_server.py",
    "tests/test_benchmark_smoke.py",
    # the command line's option, output and data-file handling, and the library's argument checks
    "tests/test_serve_cli.py",
    "tests/test_cli_output.py",
    "tests/test_data_file_checks.py",
    "tests/test_library_api_checks.py",
    # where the commands run, the stores' differential test, the benchmarks' arithmetic
    "tests/test_posix_only_names.py",
    "tests/test_container_start.py",
    "tests/test_unix_socket.py",
    "tests/test_store_differential.py",
    "tests/test_benchmark_figures.py",
)


FAILURE_LINES = 30  # of a failed test's traceback, printed at the end of the run


def _tail(text: str, lines: int) -> str:
    kept = text.rstrip().splitlines()
    return "\n".join((["..."] if len(kept) > lines else []) + kept[-lines:])


def run_tests(venv: Path, version: str, out: Path, seed: int, workers: int = 0) -> dict:
    """The whole suite in ``venv``, in the random order of ``seed`` (pytest-randomly), in
    ``workers`` processes taking whole test files (pytest-xdist; 0: pytest's own process)."""
    junit = out / "junit.xml"
    started = time.perf_counter()
    pinned = version == pinned_version()
    ignored = [] if pinned else [*(f"--ignore={path}" for path in PINNED_ONLY_TESTS), "-m", "not pinned_only"]
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "randomly",
            f"--randomly-seed={seed}",
            f"--junitxml={junit}",
            "-n",
            str(workers),
            "--dist",
            "loadfile",
            *ignored,
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
    )
    (out / "pytest.log").write_text(result.stdout + result.stderr)
    outcome: dict[str, Any] = {"seconds": time.perf_counter() - started, "exit": result.returncode, "seed": seed}
    if not junit.exists():
        failed = [f"pytest wrote no report (exit {result.returncode})"]
        empty = {"tests": 0, "passed": 0, "failed": failed, "skipped": 0, "missing_required": [], "reasons": {}}
        return {**outcome, **empty}
    report = read_junit(junit)
    if result.returncode != 0 and not report["failed"]:
        # interrupted (2), an internal error (3), no tests (5): the report holds the tests that
        # ran, all passed, and is not the whole suite
        report["failed"].append(f"pytest exited with status {result.returncode}, no failed test in its report")
    return {**outcome, **report}


def read_junit(junit: Path) -> dict[str, Any]:
    """Counts of a JUnit XML report, failed tests' names with the end of their tracebacks
    (``reasons``), and the required tests that did not pass."""
    outcome: dict[str, Any] = {"tests": 0, "passed": 0, "failed": [], "skipped": 0, "reasons": {}}
    passed_names = set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome["tests"] += 1
        name = f"{case.get('classname')}::{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            outcome["failed"].append(name)
            outcome["reasons"][name] = _tail(problem.text or problem.get("message") or "", FAILURE_LINES)
        elif case.find("skipped") is not None:
            outcome["skipped"] += 1
        else:
            outcome["passed"] += 1
            passed_names.add(str(case.get("name")).split("[")[0])
    outcome["missing_required"] = [t for t in REQUIRED_TESTS if t not in passed_names]
    return outcome


def run_cell(venv: Path, out: Path) -> dict:
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(ROOT / "scripts" / "matrix_cell.py"), "--out", str(out)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {"error": result.stderr.strip()[-3000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_golden(venv: Path, model: str, runtime: str, report: Path) -> dict:
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "legacy_assistant",
            "-q",
            "golden",
            model,
            "--check",
            "--runtime",
            runtime,
            "--report",
            str(report),
        ],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
    )
    if report.exists():
        return json.loads(report.read_text())
    return {"ok": False, "error": (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]}


def responder_golden_ok(cell: dict) -> bool:
    report = cell.get("responder_golden") or {}
    return (
        "error" not in report
        and report.get("max_abs_delta", 1.0) <= RESPONDER_TOLERANCE
        and not report.get("mismatches", [1])
    )


def cell_ok(cell: dict) -> bool:
    """Tests (when run here), golden (the model's and the responder's) and the TF2 migration all passed."""
    tests, golden = cell["tests"], cell.get("golden") or {}
    suite_ok = tests is None or (tests["tests"] > 0 and not tests["failed"] and not tests["missing_required"])
    return (
        suite_ok
        and "error" not in cell
        and golden.get("max_abs_delta", 1.0) <= TOLERANCE
        and not golden.get("mismatches", [1])
        and cell.get("tf2_model") is not None
        and responder_golden_ok(cell)
    )


def cross_ok(report: dict) -> bool:
    return bool(report.get("ok")) and report.get("max_abs_delta", 1.0) <= TOLERANCE and not report.get("mismatches")


def fmt_cross(report: dict) -> str:
    if "max_abs_delta" not in report:
        return "FAIL: " + " ".join(report.get("error", ["no report"]))[:60]
    top1 = f"{report['top1_agreement']:.0%}"
    return f"{report['max_abs_delta']:.1e}, top-1 {top1}" + ("" if cross_ok(report) else " FAIL")


def retrain_vs(cells: dict[str, dict], reference: str) -> dict[str, str]:
    """How each version's same-seed retrain compares with ``reference``'s, on the golden sentences."""
    base = cells.get(reference, {})
    if "model" not in base:
        return {}
    base_cases = json.loads((Path(base["model"]) / "golden.json").read_text())["cases"][: base["golden_sentences"]]
    out = {}
    for version, cell in cells.items():
        if "model" not in cell:
            continue
        if cell["weights_sha256"] == base["weights_sha256"]:
            out[version] = "identical weights"
            continue
        cases = json.loads((Path(cell["model"]) / "golden.json").read_text())["cases"][: len(base_cases)]
        delta = max(
            abs(a["probabilities"][t] - b["probabilities"][t])
            for a, b in zip(base_cases, cases)
            for t in a["probabilities"]
        )
        same = sum(a["intent"] == b["intent"] for a, b in zip(base_cases, cases))
        out[version] = f"other weights: top-1 {same}/{len(cases)}, max \\|Δp\\| {delta:.1e}"
    return out


def render(cells: dict[str, dict], cross: dict, cross_tf2: dict) -> str:
    versions = list(cells)
    retrain = retrain_vs(cells, versions[-1])
    lines = [
        "| tensorflow-cpu | numpy | tests passed | golden max \\|Δp\\| | top-1 agreement | train time | "
        f"same-seed retrain vs {versions[-1]} | responder golden | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for version, cell in cells.items():
        tests, golden = cell["tests"], cell.get("golden") or {}
        numpy = cell.get("versions", {}).get("numpy", "?")
        agreement = (
            f"{round(golden['top1_agreement'] * golden['cases'])}/{golden['cases']}" if "cases" in golden else "?"
        )
        delta = f"{golden['max_abs_delta']:.1e}" if "max_abs_delta" in golden else "?"
        train = f"{cell['train_seconds']:.1f} s" if "train_seconds" in cell else "?"
        passed = "not run here" if tests is None else f"{tests['passed']}/{tests['tests']}"
        replies = cell.get("responder_golden") or {"error": "not checked"}
        responder = (
            f"{replies['same_replies']}/{replies['cases']} same, \\|Δ log p\\| {replies['max_abs_delta']:.1e}"
            if "error" not in replies
            else "FAIL: " + str(replies["error"])[:60]
        )
        lines.append(
            f"| {version} | {numpy} | {passed} | {delta} | {agreement} | {train} | "
            f"{retrain.get(version, '?')} | {responder} | {'ok' if cell_ok(cell) else 'FAILED'} |"
        )
    if len(versions) > 1:
        for title, table in (("compat model (TF1 SavedModel)", cross), ("migrated model (TF2 SavedModel)", cross_tf2)):
            lines += [
                "",
                f"Trained (and, for TF2, migrated) on the row's version, golden written there, checked on the "
                f"column's version: {title}, max |Δp| and top-1 agreement.",
                "",
                "| trained on \\ loaded on | " + " | ".join(versions) + " |",
                "| --- |" + " --- |" * len(versions),
            ]
            for a in versions:
                row = [("(same)" if a == b else fmt_cross(table.get((a, b), {}))) for b in versions]
                lines.append(f"| {a} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Golden: the shipped `exported/default` against its `golden.json`. Train time: `data/intents.json`, "
        "default preset (as the shipped model). Same-seed retrain: that training's weights against the newest "
        "version's in this run, and their top-1 agreement and max |Δp| on the golden sentences; within one version a "
        "same-seed retrain is always bit-identical (tested in every cell). Responder golden: the shipped "
        "`exported/responder` against its `golden.json`: greedy replies with the same tokens, and the largest "
        "difference of a reply's log-probability.",
    ]
    return "\n".join(lines)


def _test_name(failed: str) -> str:
    """The bare name of a failed test as ``read_junit`` lists it (``module::name[params]``)."""
    return failed.rsplit("::", 1)[-1].split("[")[0]


def summary_counts(cells: dict[str, dict], cross: dict, cross_tf2: dict) -> tuple[int, int]:
    """The closing line's passed and failed counts: the tests run in all cells, plus the matrix's
    own checks (each cell's golden, responder and migration, and each cross-version load).

    Each failure counts once: a cell's suite is counted by its tests, not again as a failed cell
    check, and a required test that failed is not counted again as missing."""
    suites = [cell["tests"] for cell in cells.values() if cell["tests"] is not None]
    checks = [cell_ok({**c, "tests": None}) for c in cells.values()]
    checks += [cross_ok(r) for r in (*cross.values(), *cross_tf2.values())]
    passed = sum(t["passed"] for t in suites) + sum(checks)
    failed = checks.count(False)
    for tests in suites:
        failed_names = {_test_name(name) for name in tests["failed"]}
        failed += len(tests["failed"]) + sum(name not in failed_names for name in tests["missing_required"])
    return passed, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument(
        "--versions", help="comma-separated versions, or 'oldest'/'newest'/'pinned' (default: all supported)"
    )
    parser.add_argument(
        "--without-suite",
        metavar="VERSIONS",
        help="versions whose test suite is not run (already run elsewhere, e.g. 'pinned' after make test); "
        "their models are still trained, checked and loaded across versions",
    )
    parser.add_argument(
        "--seed", type=int, help="pytest-randomly's seed for the test order (default: a random one, printed)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="processes each cell's suite runs in, each taking whole test files (pytest-xdist; default 2; "
        "0: one process)",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="only create or refresh the versions' virtualenvs, then exit (CI installs the oldest "
        "release's while the pinned one's is built and linted)",
    )
    parser.add_argument(
        "--pinned-venv",
        type=Path,
        default=Path(".venv"),
        metavar="DIR",
        help="the virtualenv make venv built (make's VENV; default .venv): the pinned release's cell uses it "
        "when its install is up to date, rather than building .venv-tf<pinned>",
    )
    args = parser.parse_args()
    if args.workers < 0:
        parser.error(f"--workers: {args.workers} is below 0")
    if args.prepare:
        for version in resolve_versions(args.versions):
            log(f"[{version}] virtualenv ready: {venv_for(version, args.pinned_venv).name}")
        return 0
    versions = resolve_versions(args.versions)
    without_suite = set(resolve_versions(args.without_suite)) if args.without_suite is not None else set()
    seed = random.randrange(2**32) if args.seed is None else args.seed
    log(f"test order: --randomly-seed={seed} (rerun one cell's order with --seed {seed})")
    started = time.perf_counter()
    if REPORTS.exists():
        shutil.rmtree(REPORTS)
    cells: dict[str, dict] = {}
    venvs: dict[str, Path] = {}
    for version in versions:
        venvs[version] = venv_for(version, args.pinned_venv)
        out = REPORTS / f"tf-{version}"
        out.mkdir(parents=True, exist_ok=True)
        if version in without_suite:
            tests = None
            log(f"[{version}] test suite not run here; golden, training, migration")
        else:
            log(f"[{version}] test suite ({venvs[version].name})")
            tests = run_tests(venvs[version], version, out, seed, args.workers)
            log(
                f"[{version}] {tests['passed']}/{tests['tests']} passed in {tests['seconds']:.0f}s "
                f"(random order, --randomly-seed={tests['seed']}); golden, training, migration"
            )
        cell = run_cell(venvs[version], out)
        cell["tests"] = tests
        cells[version] = cell
        if "error" in cell:
            log(f"[{version}] cell failed: {cell['error']}")
    cross: dict = {}
    cross_tf2: dict = {}
    for a in versions:
        for b in versions:
            if a == b or "model" not in cells[a]:
                continue
            log(f"[{a} -> {b}] cross-version load")
            cross[(a, b)] = check_golden(venvs[b], cells[a]["model"], "compat", REPORTS / f"tf-{a}" / f"on-{b}.json")
            if cells[a].get("tf2_model"):
                cross_tf2[(a, b)] = check_golden(
                    venvs[b], cells[a]["tf2_model"], "tf2", REPORTS / f"tf-{a}" / f"tf2-on-{b}.json"
                )
    table = render(cells, cross, cross_tf2)
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    footer = (
        f"{len(versions)} version(s), {time.perf_counter() - started:.0f} s in all, on {machine}; "
        f"test order --randomly-seed={seed}."
    )
    (REPORTS / "matrix.md").write_text(table + "\n\n" + footer + "\n")
    (REPORTS / "matrix.json").write_text(
        json.dumps(
            {
                "cells": cells,
                "cross": {f"{a}->{b}": r for (a, b), r in cross.items()},
                "cross_tf2": {f"{a}->{b}": r for (a, b), r in cross_tf2.items()},
            },
            indent=1,
            default=str,
        )
        + "\n"
    )
    print(table)
    print()
    print(footer)
    failures = [v for v, c in cells.items() if not cell_ok(c)]
    failures += [f"{a}->{b}" for (a, b), r in cross.items() if not cross_ok(r)]
    failures += [f"tf2 {a}->{b}" for (a, b), r in cross_tf2.items() if not cross_ok(r)]
    suites = {version: cell["tests"] for version, cell in cells.items() if cell["tests"] is not None}
    for version, tests in suites.items():
        for name in tests["failed"][:10]:
            print(f"FAILED [{version}] {name}")
            reason = tests.get("reasons", {}).get(name)
            if reason:  # the CI log may be all there is of a failure in another virtualenv
                print(textwrap.indent(reason, "    "))
        for name in tests["missing_required"]:
            print(f"MISSING [{version}] required test did not pass: {name}")
    passed, failed = summary_counts(cells, cross, cross_tf2)
    if failures:
        print(f"failed: {', '.join(failures)}")
    # Closing line: tests run in all cells plus the matrix's own checks (per-version and cross-version).
    print(f"matrix: {passed} passed, {failed} failed")
    return 1 if failures or failed else 0


if __name__ == "__main__":
    sys.exit(main())
