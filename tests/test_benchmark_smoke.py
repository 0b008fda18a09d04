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
