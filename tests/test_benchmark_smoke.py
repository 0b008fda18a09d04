"""The in-process web benchmark still runs against the current app (it once answered 500 after
the assistant's model call changed): a few calls, its rows printed, no figures judged."""
import subprocess
import sys

from tests.helpers import ROOT


def test_web_overhead_benchmark_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "web_overhead.py"), "--calls", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith(" us")]
    assert len(rows) == 7, result.stdout
    assert any(row.strip().startswith("same through a FixedRun") for row in rows)
    assert any(row.startswith("/api/v1/parse, model stubbed") for row in rows)


def test_benchmark_counts_and_durations_must_be_positive():
    """A count of 0 or below used to hang (a thread barrier of -1), divide by zero, or print a
    table of negative microseconds; now it is a usage error naming the option."""
    import pytest

    cases = [
        ("batching.py", ["--threads", "-2"], "argument --threads: expected a whole number >= 1, got '-2'"),
        ("serve.py", ["--duration", "0"], "argument --duration: expected a number above 0, got '0'"),
        ("tokenizer_threads.py", ["--sentences", "-5"], "argument --sentences: expected a whole number >= 1"),
        ("predictor.py", ["--calls", "0"], "argument --calls: expected a whole number >= 1, got '0'"),
    ]
    for script, args, message in cases:
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 2 or message not in result.stderr:
            pytest.fail(f"{script} {args}: exit {result.returncode}\n{result.stderr[-2000:]}")


def test_a_bad_model_path_is_one_error_line():
    for script in ("predictor.py", "gc_pause.py"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), "--model", "/nonexistent-model"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 1, (script, result.stderr[-2000:])
        assert result.stderr.strip().splitlines()[-1] == "error: model directory not found: /nonexistent-model"
        assert "Traceback" not in result.stderr
