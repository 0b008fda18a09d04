"""The in-process web benchmark still runs against the current app (it once answered 500 after
the assistant's model call changed): a few calls, its rows printed, no figures judged."""
import os
import subprocess
import sys

from tests.helpers import ROOT, load_benchmark


def test_web_overhead_benchmark_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "web_overhead.py"), "--calls", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.rstrip().endswith(" us")]
    assert len(rows) == 8, result.stdout
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
        ("responder.py", ["--train", "--train-minutes", "0"], "argument --train-minutes: expected a number above 0"),
    ]
    for script, args, message in cases:
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 2 or message not in result.stderr:
            pytest.fail(f"{script} {args}: exit {result.returncode}\n{result.stderr[-2000:]}")


def test_benchmark_thread_pool_sizes_are_checked_before_anything_loads():
    """A TensorFlow pool size out of range was taken, and refused by the library as the models
    loaded, in words of no option ("intra_op_threads must be ..."): responder.py --train did so
    after minutes of training."""
    import pytest

    cases = [
        ("responder.py", ["--train", "--threads", "-1"], "argument --threads: expected a whole number from 0 to 1024"),
        ("batching.py", ["--intra-op", "-1"], "argument --intra-op: expected a whole number from 0 to 1024, got '-1'"),
        ("batching.py", ["--inter-op", "-2"], "argument --inter-op: expected a whole number from -1 to 1024, got '-2'"),
    ]
    for script, args, message in cases:
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), *args],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 2 or message not in result.stderr:
            pytest.fail(f"{script} {args}: exit {result.returncode}\n{result.stderr[-2000:]}")


def test_responder_benchmark_condition_strength_is_checked_before_training():
    """A strength out of the responder's range was taken, and refused only as the model loaded:
    with --train after minutes of training, in words of no option ("condition_strength must be
    in [0, 10]")."""
    import pytest

    for value in ("11", "-1", "nan"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "responder.py"), "--train", "--condition-strength", value],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        message = f"argument --condition-strength: must be a number from 0 to 10, got {value}"
        if result.returncode != 2 or message not in result.stderr:
            pytest.fail(f"--condition-strength {value}: exit {result.returncode}\n{result.stderr[-2000:]}")


def test_responder_benchmark_seed_is_checked_before_training():
    """A seed out of the evaluation's range (0 to 2**32 - 2) was taken, and refused only as the
    evaluation began: with --train after minutes of training, as "seed must be a whole number"."""
    import pytest

    cases = [("-1", "must be at least 0, got -1"), ("4294967295", "must be at most 4294967294, got 4294967295")]
    for value, said in cases:
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "responder.py"), "--train", "--seed", value],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 2 or f"argument --seed: {said}" not in result.stderr:
            pytest.fail(f"--seed {value}: exit {result.returncode}\n{result.stderr[-2000:]}")


def test_a_bad_model_path_is_one_error_line():
    for script in ("predictor.py", "gc_pause.py"):
        result = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / script), "--model", "/nonexistent-model"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 1, (script, result.stderr[-2000:])
        assert result.stderr.strip().splitlines()[-1] == "error: model directory not found: /nonexistent-model"
        assert "Traceback" not in result.stderr


def test_a_benchmark_stopped_by_sigterm_or_sighup_cleans_up_as_on_ctrl_c():
    """SIGTERM (timeout, a cancelled CI job) ended the process without its finally blocks: the
    servers a benchmark started, in sessions of their own, were left running."""
    import signal

    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        "from timing import run_main\n"
        "def main():\n"
        "    try:\n"
        "        print('running', flush=True)\n"
        "        time.sleep(60)\n"
        "    finally:\n"
        "        print('cleaned up', flush=True)\n"
        "run_main(main)\n"
    )
    # as from a terminal, where SIGHUP has its default action: a suite run under nohup hands its
    # children SIGHUP ignored, which the benchmark rightly keeps
    terminal = script.replace("run_main(main)", "import signal\nsignal.signal(signal.SIGHUP, signal.SIG_DFL)\nrun_main(main)")
    for stop in (signal.SIGTERM, signal.SIGHUP):
        process = subprocess.Popen([sys.executable, "-c", terminal], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout.readline() == "running\n"
            process.send_signal(stop)
            out, err = process.communicate(timeout=30)
        finally:
            process.kill()
        assert out == "cleaned up\n", (stop, out, err)
        assert process.returncode == 128 + stop and err.strip() == f"stopped by {stop.name}"
    # under nohup SIGHUP is ignored, and stays so: the run goes on when its terminal closes
    nohup = script.replace("run_main(main)", "import signal\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\nrun_main(main)")
    nohup = nohup.replace("time.sleep(60)", "time.sleep(1)")
    process = subprocess.Popen([sys.executable, "-c", nohup], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline() == "running\n"
        process.send_signal(signal.SIGHUP)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert (process.returncode, out) == (0, "cleaned up\n"), err


def test_a_child_process_whose_output_was_captured_has_its_message_shown():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "warm_up.py"), "--responder", "/nonexistent-responder",
         "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: a child process ended with status 1 (its message is above)"
    assert any("/nonexistent-responder" in line for line in lines[:-1]), result.stderr[-2000:]


def test_a_server_that_exits_early_has_the_end_of_its_log_in_the_error(tmp_path):
    """serve.py named the server's log, in its temporary folder, and then removed the folder: the
    reason was gone before anyone could read it. The error now quotes the log's end."""
    import pytest

    serve = load_benchmark("serve")
    command = [sys.executable, "-c", "import sys; print('error: no such store: bogus://', file=sys.stderr); sys.exit(2)"]
    server = serve.Server("on", command, serve.free_port(), tmp_path / "on.log", {})
    try:
        with pytest.raises(SystemExit) as stopped:
            server.wait_ready(hello=False, workers=1, timeout=60)
    finally:
        server.stop()
    assert "on exited early with status 2" in str(stopped.value.code)
    assert "error: no such store: bogus://" in str(stopped.value.code)


def test_a_failed_warm_up_run_over_http_leaves_no_folder_and_quotes_the_server(tmp_path):
    """The folder of the servers' logs stayed behind when a server failed (and on Ctrl-C)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "warm_up.py"), "--http", "--rounds", "1",
         "--responder", "/nonexistent-responder"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "/nonexistent-responder" in result.stderr, result.stderr[-2000:]
    assert not list(tmp_path.glob("warm-up-*"))


def test_a_model_path_relative_to_the_callers_folder_reaches_the_child_processes():
    """runtimes.py ran its children in the checkout with the path as given: a model path relative
    to where the benchmark was started was not found there."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "runtimes.py"), "--calls", "1", "--model", "../exported/default"],
        cwd=ROOT / "tests", capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| tf2 |" in result.stdout, result.stdout


def test_the_serving_report_gives_the_seconds_each_row_ran(capsys):
    """wrk runs whole seconds: --duration 0.5 measured 1 s a row while the report said 0.5."""
    import argparse

    serve = load_benchmark("serve")
    args = argparse.Namespace(generation_mode=None, workers=1, threads=1, rounds=1, duration=0.5, senders=1,
                              concurrency=[16], markdown=False, dev=False)
    serve.report(args, [], {}, {}, {})
    assert "1 round(s) of 1 s per row" in capsys.readouterr().out
