"""What the benchmarks compute and refuse: the figures they print are measured the way their
docs say, and a bad input is one error line (the benchmarks themselves are not run here)."""
import contextlib
import subprocess
import sys

import pytest

from tests.helpers import ROOT, TEST_DATA, load_benchmark


def _run(script, *args):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_the_accuracy_latency_is_measured_with_the_threads_the_server_gives_a_model(monkeypatch):
    """accuracy.py said it loads each model "as the server does", but loaded it with TensorFlow's
    default thread pools: its latency column was about twice what a served request pays."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.serving.settings import DEFAULT_INTER_OP_THREADS, DEFAULT_INTRA_OP_THREADS

    bench = load_benchmark("accuracy")
    loaded = []
    real_load = Predictor.load.__func__

    def recording_load(cls, path, intra_op_threads=0, inter_op_threads=0, runtime=None):
        loaded.append((intra_op_threads, inter_op_threads))
        return real_load(cls, path, intra_op_threads, inter_op_threads, runtime)

    monkeypatch.setattr(Predictor, "load", classmethod(recording_load))
    row = bench.run_one(TEST_DATA / "tiny_clinc.json", "ngrams", calls=3, seed=1)
    assert loaded == [(DEFAULT_INTRA_OP_THREADS, DEFAULT_INTER_OP_THREADS)] == [(1, -1)]
    assert row["test_in_scope"] == 8 and row["test_oos"] == 3 and row["latency_ms"] > 0


def test_the_as_served_distinct_2_row_reads_replies_without_a_bigram_as_n_a():
    """Replies of one token or none have no bigram (distinct-2 None): the rows at the library's
    decoding said n/a, the as-served row divided None and ended the run after its minutes."""
    bench = load_benchmark("responder")
    replies = {"human": {"distinct_2": 0.8}, "sample": {"distinct_2": 0.4}, "greedy": {"distinct_2": None}}
    served = {"sample": {"distinct_2": None}, "greedy": {"distinct_2": 0.2}, "penalty": 10.0}
    rows = bench.distinct_rows(replies, served)
    assert rows == [
        "| distinct-2 sample / human | 0.50 (0.400 / 0.800) | >= 0.5 | yes |",
        "| distinct-2 greedy / human | n/a (n/a / 0.800) | (no target) | n/a |",
        "| distinct-2 sample / human, repetition penalty 10 (as served) | n/a (n/a / 0.800); greedy 0.200 "
        "| >= 0.5 | n/a |",
    ]
    served["sample"]["distinct_2"] = 0.36
    assert bench.distinct_rows(replies, served)[2].startswith(
        "| distinct-2 sample / human, repetition penalty 10 (as served) | 0.45 (0.360 / 0.800); greedy 0.200 "
        "| >= 0.5 | NO |"
    )


def test_serving_contexts_that_are_not_utf_8_are_one_error_line(tmp_path):
    serve = load_benchmark("serve")
    contexts = tmp_path / "contexts.txt"
    contexts.write_bytes("caf\xe9 au lait? | oui\n".encode("latin-1"))
    with pytest.raises(SystemExit) as stopped:
        serve.read_contexts(contexts, 10)
    assert str(stopped.value.code).startswith(f"{contexts}: cannot read contexts (not UTF-8")
    contexts.write_text("café au lait? | oui\n", encoding="utf-8")
    assert serve.read_contexts(contexts, 10) == [["café au lait?", "oui"]]


def test_a_clinc_file_of_another_layout_is_one_error_line(tmp_path):
    """classic_fidelity.py --clinc given CLINC150's domains.json (beside data_full.json) ended in a
    KeyError traceback."""
    wrong = tmp_path / "domains.json"
    wrong.write_text('{"banking": ["transfer", "balance"]}', encoding="utf-8")
    result = _run("classic_fidelity.py", "--data", "clinc", "--clinc", str(wrong), "--epochs", "1")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"{wrong}: not CLINC150's layout")


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("accuracy.py", ["--variants", ","], "accuracy.py: error: no variant given"),
        ("classic_fidelity.py", ["--data", ","], "classic_fidelity.py: error: no data set given"),
    ],
)
def test_an_empty_list_of_what_to_measure_is_a_usage_error(script, args, message):
    """Both printed an empty table (or none) and exited 0, as if they had measured something."""
    result = _run(script, *args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr[-2000:]


def test_a_ratio_of_rounds_is_the_median_of_each_rounds_own_ratio():
    serve = load_benchmark("serve")
    on = {"rounds": [{"rps": 10.0}, {"rps": 30.0}, {"rps": 20.0}]}
    off = {"rounds": [{"rps": 5.0}, {"rps": 10.0}, {"rps": 0.0}]}  # a round that answered nothing has no ratio
    assert serve.ratio_of_rounds(on, off) == (2.5, 2.0, 3.0)
    assert serve.ratio_text(serve.ratio_of_rounds(on, off)) == "2.50x (2.00-3.00)"
    three = {"rounds": [{"rps": 4.0}, {"rps": 8.0}, {"rps": 5.0}]}
    assert serve.ratio_of_rounds(on, three) == (3.75, 2.5, 4.0)  # 2.5, 3.75, 4.0: the median is a round's


def test_a_baseline_that_answered_nothing_in_any_round_gives_no_ratio_rather_than_a_traceback():
    """Every request of the baseline failed or timed out in every round (0 req/s): the report
    ended in statistics' error after the whole run, its tables lost."""
    serve = load_benchmark("serve")
    on = {"rounds": [{"rps": 10.0}, {"rps": 30.0}]}
    off = {"rounds": [{"rps": 0.0}, {"rps": 0.0}]}
    assert serve.ratio_text(serve.ratio_of_rounds(on, off)) == "n/a"


def test_failed_requests_are_not_counted_as_throughput_nor_as_a_latency_of_0_ms(monkeypatch, tmp_path, capsys):
    """A server that answered every request 503 was shown at wrk's full request rate, and one
    that closed every connection unanswered with a p50/p99 of 0.00 ms (wrk's percentiles of an
    empty histogram): "p99 <= 30 ms: 0.00 ms -> met". The RESULT lines are those wrk printed,
    with the benchmark's script, against such servers; a stand-in wrk prints them here."""
    import argparse
    import json
    import math
    import os

    serve = load_benchmark("serve")
    fake = tmp_path / "wrk"
    fake.write_text("#!/bin/sh\necho \"RESULT $BENCH_FAKE_RESULT\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def measured(printed):
        monkeypatch.setenv("BENCH_FAKE_RESULT", json.dumps(printed))
        return serve.wrk(1, serve.ROUTES["parse"], 4, 1, tmp_path / "post.lua", tmp_path / "bodies.jsonl", {})

    closed = measured({"requests": 0, "seconds": 1.003331, "p50": 0.0, "p90": 0.0, "p99": 0.0,
                       "errors": 12679, "non2xx": 0, "mismatch": 0})
    assert closed["rps"] == 0 and all(math.isnan(closed[key]) for key in ("p50", "p90", "p99"))
    unavailable = measured({"requests": 88, "seconds": 1.011307, "p50": 47.618, "p90": 49.471,
                            "p99": 51.936, "errors": 0, "non2xx": 88, "mismatch": 0})
    assert unavailable["rps"] == 0 and unavailable["p99"] == 51.936
    some = measured({"requests": 100, "seconds": 2.0, "p50": 1.0, "p90": 2.0, "p99": 3.0,
                     "errors": 0, "non2xx": 10, "mismatch": 0})
    assert some["rps"] == 45.0

    answered = {"requests": 500, "seconds": 1.0, "p50": 1.0, "p90": 2.0, "p99": 4.0, "errors": 0, "non2xx": 0,
                "mismatch": 0}
    # one round answered, one not: the latency is the answered round's, not a median with 0 ms
    parse = serve.combine([measured(answered), closed])
    assert parse["p99"] == 4.0
    cakechat = serve.combine([closed, closed])
    assert math.isnan(cakechat["p99"])
    hello = serve.combine([measured({**answered, "requests": 1000}), measured(answered)])
    results = {("on", "parse", 16): parse, ("off", "parse", 16): parse, ("hello", "hello", 16): hello,
               ("on", "cakechat", 16): cakechat, ("off", "cakechat", 16): cakechat}
    args = argparse.Namespace(generation_mode=None, workers=1, threads=1, rounds=2, duration=1, senders=1,
                              concurrency=[16], markdown=False, dev=False)
    serve.report(args, [serve.ROUTES["parse"], serve.ROUTES["cakechat"]], results, {}, {})
    out = capsys.readouterr().out
    assert "cakechat greedy, batching on: p99 <= 150 ms: n/a ms -> NOT met" in out
    cakechat_row = next(line for line in out.splitlines() if line.startswith("cakechat"))
    assert cakechat_row.split()[2:7] == ["0.0", "n/a", "n/a", "n/a", "25358"], cakechat_row
    assert "nan" not in out


def test_a_server_that_fails_every_request_fast_misses_the_latency_targets(capsys):
    """The latencies wrk measures are those of every answer, a 503's too: a server that answered
    every request 503 in a few ms had "p99 <= 150 ms: 5.00 ms -> met" beside its 0 req/s."""
    import argparse

    serve = load_benchmark("serve")
    failed = serve.wrk_result({"requests": 3000, "seconds": 1.0, "p50": 2.0, "p90": 3.0, "p99": 5.0,
                               "errors": 0, "non2xx": 3000, "mismatch": 0})
    answered = serve.wrk_result({"requests": 300, "seconds": 1.0, "p50": 20.0, "p90": 30.0, "p99": 50.0,
                                 "errors": 0, "non2xx": 0, "mismatch": 0})
    results = {("on", "parse", 16): serve.combine([failed, failed]), ("on", "cakechat", 16): serve.combine([failed]),
               ("off", "cakechat", 16): serve.combine([answered])}
    args = argparse.Namespace(generation_mode=None, workers=1, threads=1, rounds=2, duration=1, senders=1,
                              concurrency=[16], markdown=False, dev=False)
    serve.report(args, [serve.ROUTES["parse"], serve.ROUTES["cakechat"]], results, {}, {})
    out = capsys.readouterr().out
    no_answer = "5.00 ms (no answer below status 400) -> NOT met"
    assert f"parse, batching on: p99 <= 30 ms: {no_answer}" in out, out
    assert f"cakechat greedy, batching on: p99 <= 150 ms: {no_answer}" in out, out
    results[("on", "cakechat", 16)] = serve.combine([answered])  # answered: its p99 decides
    serve.report(args, [serve.ROUTES["cakechat"]], results, {}, {})
    assert "cakechat greedy, batching on: p99 <= 150 ms: 50.00 ms -> met" in capsys.readouterr().out


def test_a_round_that_failed_every_request_fast_does_not_lower_a_row_s_latency(capsys):
    """A row's latency is the median of its rounds that answered below status 400: a round whose
    every request got a 503 in a few ms (workers restarting) halved the p99 of a row whose
    other round answered at 200 ms, and "p99 <= 150 ms: 101.00 ms -> met" was printed."""
    import argparse

    serve = load_benchmark("serve")
    failed = serve.wrk_result({"requests": 3000, "seconds": 1.0, "p50": 1.0, "p90": 1.5, "p99": 2.0,
                               "errors": 0, "non2xx": 3000, "mismatch": 0})
    slow = serve.wrk_result({"requests": 300, "seconds": 1.0, "p50": 100.0, "p90": 150.0, "p99": 200.0,
                             "errors": 0, "non2xx": 0, "mismatch": 0})
    row = serve.combine([failed, slow])
    assert (row["p50"], row["p90"], row["p99"]) == (100.0, 150.0, 200.0)
    assert row["rps"] == 150.0 and row["non2xx"] == 3000  # req/s and errors count every round still
    args = argparse.Namespace(generation_mode=None, workers=1, threads=1, rounds=2, duration=1, senders=1,
                              concurrency=[16], markdown=False, dev=False)
    serve.report(args, [serve.ROUTES["cakechat"]], {("on", "cakechat", 16): row}, {}, {})
    assert "cakechat greedy, batching on: p99 <= 150 ms: 200.00 ms -> NOT met" in capsys.readouterr().out


def test_a_server_that_ignores_sigterm_is_killed_not_left_running():
    """predictor.py asked its dev server to stop and waited 10 s: one stuck in its shutdown ended
    the run with a TimeoutExpired traceback and stayed running after it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from timing import stop_process
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                               "print('ready', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert stubborn.stdout.readline() == "ready\n"
        stop_process(stubborn, grace_seconds=0.5)
        assert stubborn.returncode == -9  # SIGTERM ignored, then killed
    finally:
        stubborn.kill()
        stubborn.wait()
    assert "stop_process(server)" in (ROOT / "benchmarks" / "predictor.py").read_text()


def test_the_servers_a_benchmark_starts_are_asked_directly_not_through_a_proxy(tmp_path):
    """With http_proxy set and 127.0.0.1 not in no_proxy (many machines behind a company proxy),
    urllib sent the benchmarks' requests to their own local servers to the proxy: every one
    failed. Run in a fresh process: urllib reads the proxies once, with its first request."""
    import os
    import socket

    with socket.socket() as dead:  # a proxy address where nothing listens
        dead.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"
    script = (
        "import http.server, importlib.util, sys, threading\n"
        "class Answer(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Length', '9'); self.end_headers()\n"
        "        self.wfile.write(b'{\"ok\": 1}')\n"
        "    def log_message(self, *args): pass\n"
        "server = http.server.HTTPServer(('127.0.0.1', 0), Answer)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r})\n"
        f"spec = importlib.util.spec_from_file_location('serve_benchmark', {str(ROOT / 'benchmarks' / 'serve.py')!r})\n"
        "serve = importlib.util.module_from_spec(spec); sys.modules[spec.name] = serve; spec.loader.exec_module(serve)\n"
        "print(serve.get(server.server_address[1], '/health'))\n"
    )
    env = {name: value for name, value in os.environ.items() if "proxy" not in name.lower()}
    env.update(http_proxy=proxy, HTTP_PROXY=proxy)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(200, {'ok': 1})"


def test_more_bodies_than_there_is_made_up_small_talk_for_give_fewer_contexts_not_a_traceback():
    """serve.py --texts 1000 ended in a StopIteration traceback before any server started: the
    made-up contexts ran out of lines. It now makes as many as there are lines for, each line
    used once, and the report's body counts say how many."""
    import random

    serve = load_benchmark("serve")
    contexts, messages = serve.small_talk(5000, None, random.Random(0))
    assert 600 < len(contexts) < 5000  # the shipped contexts and 856 made-up lines, some two a context
    assert len({tuple(context) for context in contexts}) == len(contexts)
    assert all(1 <= len(context) <= 3 for context in contexts)
    assert len(messages) == len(set(messages)) <= 5000
    # the default size is drawn as before: the same seed gives the same bodies
    assert serve.small_talk(300, None, random.Random(0)) == serve.small_talk(300, None, random.Random(0))
    assert len(serve.small_talk(300, None, random.Random(0))[0]) == 300


def _timing():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import timing
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return timing


def test_the_servers_of_one_run_are_given_different_ports():
    """serve.py picked each server's port on its own, closing the probe before the next pick and
    before any server listened: two servers of a run could get the same one (4 picks: about one
    run in 3,000), and the hello app's --reuse-port would have shared it with a model server."""
    ports = _timing().server_ports(400)
    assert len(set(ports)) == 400
    assert all(0 < port < 65536 for port in ports)


def test_a_first_port_gives_the_ports_after_it_and_refuses_one_that_is_taken():
    import socket

    def unused(port):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    timing = _timing()
    with contextlib.ExitStack() as stack:
        for _ in range(50):  # a port whose two before it are free: other tests' servers take ports too
            taken = stack.enter_context(socket.socket())
            # held as a SO_REUSEPORT server holds it: another such socket could still share it
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            taken.bind(("127.0.0.1", 0))
            port = taken.getsockname()[1]
            if port > 2 and unused(port - 2) and unused(port - 1):
                break
        taken.listen()
        with pytest.raises(SystemExit) as refused:
            timing.server_ports(3, port - 2)  # the third is taken
        assert str(refused.value.code).startswith(f"cannot listen on 127.0.0.1:{port}: ")
        result = _run("predictor.py", "--port", str(port))  # refused before minutes of measuring
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"cannot listen on 127.0.0.1:{port}: ")
    free = timing.server_ports(1)[0]
    assert timing.server_ports(1, free) == [free]
    with pytest.raises(SystemExit, match="go past 65535"):
        timing.server_ports(3, 65534)
    assert _run("serve.py", "--port", "0").stderr.strip().splitlines()[-1].endswith(
        "argument --port: expected a port number (1-65535), got '0'"
    )


def test_a_run_stopped_while_it_waits_for_the_keras_child_stops_the_child(monkeypatch, tmp_path):
    """classic_fidelity.py killed the Keras child when it was stopped while training its own side,
    but not while it waited for the child afterwards: SIGTERM then left the child training on,
    for up to an hour."""
    import argparse

    bench = load_benchmark("classic_fidelity")
    children = []

    class Child(subprocess.Popen):
        waited = 0

        def wait(self, timeout=None):
            self.waited += 1
            if self.waited == 1:  # the stop arrives as the run waits for the child
                raise KeyboardInterrupt
            return super().wait(timeout)

    def start_keras(runs, args, work, arrays):
        children.append(Child([sys.executable, "-c", "import time; time.sleep(60)"]))
        return children[-1]

    monkeypatch.setattr(bench, "start_keras", start_keras)
    monkeypatch.setattr(bench, "train_classic", lambda run, config, every, label: {})
    args = argparse.Namespace(epochs=1, seed=1, lr_decay=0.0, keras_features="tutorial", every=1)
    try:
        with pytest.raises(KeyboardInterrupt):
            bench.compare("intents", "title", [{}], args)
        assert children[0].poll() is not None  # stopped with the run, not left training
    finally:
        children[0].kill()
        children[0].wait()


def test_the_predictor_benchmarks_server_log_is_named_when_kept_and_removed_otherwise(monkeypatch, tmp_path):
    """predictor.py kept its dev server's log in the temporary folder whenever the run did not
    finish: named by the error when the server never answered, but left there unnamed when a
    request failed, and after Ctrl-C or SIGTERM."""
    import tempfile
    import urllib.error

    bench = load_benchmark("predictor")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = str(ROOT / "exported" / "default")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "wait_for_health", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench.serving_memory(model, 1)
    assert not list(tmp_path.glob("predictor-bench-*.log"))

    def refused(*args, **kwargs):
        raise urllib.error.URLError("connection refused")

    monkeypatch.setattr(bench, "wait_for_health", lambda *args: None)
    monkeypatch.setattr(bench, "open_local", refused)
    with pytest.raises(SystemExit) as failed:
        bench.serving_memory(model, 1)
    [log] = tmp_path.glob("predictor-bench-*.log")
    assert str(failed.value.code) == (
        f"a request to the dev server failed (<urlopen error connection refused>); see {log}"
    )


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("accuracy.py", ["--variants", "full", "--presets", "ngrams", "--calls", "1", "--no-reference"]),
        ("classic_fidelity.py", ["--data", "intents", "--epochs", "1", "--keras-python", "/nonexistent-python"]),
    ],
)
def test_a_json_output_that_cannot_be_written_is_a_usage_error_before_the_measuring(script, args, tmp_path):
    """--json into a folder that does not exist was found out when the file was written, after
    the whole run (an hour of training for either), the figures written nowhere."""
    (tmp_path / "data_full.json").write_text((TEST_DATA / "tiny_clinc.json").read_text())
    if script == "accuracy.py":
        args = [*args, "--data-dir", str(tmp_path)]
    out = tmp_path / "missing" / "out.json"
    result = _run(script, *args, "--json", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        f"{script}: error: argument --json: {out}: no folder {out.parent}"
    )
    assert "training" not in result.stderr
    result = _run(script, "--json", str(tmp_path))
    assert result.stderr.strip().splitlines()[-1] == (
        f"{script}: error: argument --json: {tmp_path} is a folder, not a file"
    )


def test_the_responder_benchmark_says_when_its_baselines_miss_training_files_or_it_scores_training_data(
    tmp_path, capsys
):
    """responder.py fitted the perplexity baselines on whichever of the model's training files it
    found, none at all included, without a word, and scored a training corpus as held out, where
    evaluate-responder warns of both: its "perplexity / bigram's" row then read against another
    baseline than it says."""
    import hashlib

    bench = load_benchmark("responder")
    trained = tmp_path / "valid_freq.json"
    trained.write_text('{"t1": {"content": []}}', encoding="utf-8")
    held_out = tmp_path / "test_rare.json"
    held_out.write_text('{"t2": {"content": []}}', encoding="utf-8")
    manifest = {"source": {"corpora": [
        {"name": "valid_freq.json", "sha256": hashlib.sha256(trained.read_bytes()).hexdigest()},
        {"name": "gone.json", "sha256": "0" * 64},
    ]}}
    assert bench.baseline_corpora(manifest, None, [str(held_out)]) == [trained]
    assert capsys.readouterr().err == (
        "warning: 1 of the model's training file(s) not found near the corpora (gone.json); the baselines are "
        "fitted on the rest (pass --train-corpus)\n"
    )
    assert bench.baseline_corpora(manifest, ["given.json"], [str(trained)]) == ["given.json"]
    assert capsys.readouterr().err == (
        f"warning: {trained} is the model's training data (same sha256): the figures measure memorisation, "
        "not held-out quality\n"
    )
    trained.unlink()
    assert bench.baseline_corpora(manifest, None, [str(held_out)]) == []
    assert "; none found, so no baselines (pass --train-corpus)" in capsys.readouterr().err


def test_a_concurrency_given_twice_is_measured_once_with_a_note(capsys):
    """serve.py --concurrency 8 16 8 measured 8 connections twice in every round, pooled both
    runs into one row's median and printed that row twice; each value is now measured once."""
    serve = load_benchmark("serve")
    args = serve.parse_arguments(["--concurrency", "8", "16", "8", "1", "1"])
    assert args.concurrency == [8, 16, 1]
    assert capsys.readouterr().err == (
        "note: --concurrency 8, 1 given more than once; each is measured once\n"
    )
    assert serve.parse_arguments(["--concurrency", "4", "16"]).concurrency == [4, 16]
    assert capsys.readouterr().err == ""


def test_quick_keeps_the_rounds_and_the_duration_given():
    """serve.py --quick --rounds 3 measured one round, and --quick --duration 10 two seconds a row,
    without a word; what an option gives now wins over --quick's values."""
    serve = load_benchmark("serve")
    given = serve.parse_arguments(["--quick", "--rounds", "3", "--duration", "10"])
    assert (given.rounds, given.duration, given.concurrency) == (3, 10, [1, 16])
    quick = serve.parse_arguments(["--quick"])
    assert (quick.rounds, quick.duration, quick.concurrency) == (1, 2, [1, 16])
    plain = serve.parse_arguments([])
    assert (plain.rounds, plain.duration, plain.concurrency) == (3, 5, [1, 8, 16])


def test_the_tokenizer_variants_take_turns_rather_than_the_shipped_one_always_going_first(monkeypatch, capsys):
    """tokenizer_threads.py timed NLTK's tokenizer as shipped, then the one holding the GIL, for
    every row: the second always ran on a machine the first had warmed. The two now take turns
    in rounds, each going first in half of them, and each row's figures are over all its rounds."""
    bench = load_benchmark("tokenizer_threads")
    timed = []

    class Tokenizer:
        kind = "shipped"

        def tokenize(self, text):
            return self.kind

    def holding(tokenizer):
        tokenizer.kind = "holding"
        return tokenizer

    def elapsed(fn, threads, calls):
        kind = fn()
        timed.append((kind, threads, calls))
        return threads * calls * (2e-6 if kind == "shipped" else 1e-6)  # 2 and 1 µs a sentence

    monkeypatch.setattr(bench, "NLTKWordTokenizer", Tokenizer)
    monkeypatch.setattr(bench, "ToktokTokenizer", Tokenizer)
    monkeypatch.setattr(bench, "hold_gil_while_matching", holding)
    monkeypatch.setattr(bench, "threads_elapsed", elapsed)
    monkeypatch.setattr(sys, "argv", ["tokenizer_threads.py", "--sentences", "10", "--threads", "1", "4"])
    bench.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| treebank") or
            line.startswith("| toktok")]
    assert rows == ["| treebank | 1 | 2.0 | 1.0 | 2.00× |", "| treebank | 4 | 2.0 | 1.0 | 2.00× |",
                    "| toktok | 1 | 2.0 | 1.0 | 2.00× |", "| toktok | 4 | 2.0 | 1.0 | 2.00× |"]
    rounds = [t for t in timed if t[2] != 200]  # not the warm-up
    assert [kind for kind, _, _ in rounds[:8]] == ["shipped", "holding", "holding", "shipped"] * 2
    for threads in (1, 4):
        for kind in ("shipped", "holding"):
            assert sum(c for k, t, c in rounds[:16] if (k, t) == (kind, threads)) == 10


def _batching_with_fake_throughput(monkeypatch, batch_sizes, batched_rate):
    """batching.py with its throughput measured by a stand-in: unbatched calls make 100 req/s,
    batched ones ``batched_rate``; each timed (not warm-up) measurement is appended to the list
    returned, as (the batched call's wait in s or None, threads)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its timing.py, found beside it when run
    bench = load_benchmark("batching")
    timed = []

    def unbatched(item):
        return item

    def batched(wait_s):
        def call(item):
            return item

        call.wait_s = wait_s
        return call, batch_sizes, lambda: None

    def throughput(call, inputs, threads, calls):
        if calls * threads >= 96:  # not a warm-up (those make 20 calls in all)
            timed.append((getattr(call, "wait_s", None), threads))
        return 100.0 if call is unbatched else batched_rate

    monkeypatch.setattr(bench, "throughput", throughput)
    return bench, unbatched, batched, timed


def test_the_batching_rows_take_turns_rather_than_the_unbatched_ones_always_going_first(monkeypatch, capsys):
    """batching.py measured its rows in the same order every round: the unbatched baseline of
    each ratio always ran before the batched rows it is compared with. Every other round now
    runs them in reverse order; the ratios are still each round's own."""
    bench, unbatched, batched, timed = _batching_with_fake_throughput(monkeypatch, [2, 4], 150.0)
    bench.compare("model", unbatched, batched, ["a", "b"], 4, 100, [0.0, 2.0], 2)
    rows = [(None, 1), (0.002, 1), (None, 4), (0.0, 4), (0.002, 4)]
    assert timed == rows + rows[::-1]
    out = capsys.readouterr().out
    assert "4 threads, batched (wait 2 ms)" in out and " 1.50 " in out


def test_batching_with_one_thread_measures_each_row_once(monkeypatch, capsys):
    """With --threads 1 the lone caller's rows were measured again as the "N threads" rows: the
    unbatched call and the longest wait twice each, printed as "1 thread, ..." and "1 threads,
    ..." rows of the same thing. Each is now measured and printed once."""
    bench, unbatched, batched, timed = _batching_with_fake_throughput(monkeypatch, [1], 90.0)
    bench.compare("model", unbatched, batched, ["a", "b"], 1, 100, [0.0, 3.0], 1)
    assert timed == [(None, 1), (0.0, 1), (0.003, 1)]
    labels = [line.split("  ")[1].strip() for line in capsys.readouterr().out.splitlines() if "thread" in line]
    assert labels == ["1 thread, unbatched", "1 thread, batched (wait 0 ms)", "1 thread, batched (wait 3 ms)"]


def test_the_responders_network_call_and_respond_take_turns_at_going_first(monkeypatch):
    """responder.py timed the network call alone and then Responder.respond on each context: the
    second always found what the first had left warm. The first of the two now alternates, each
    call's time still in its own column."""
    bench = load_benchmark("responder")
    calls, clock = [], [0.0]

    class Responder:
        max_length = bench.MAX_LENGTH

        def decode_batch(self, batch, mode, seed):
            calls.append(("network", batch, seed))
            clock[0] += 0.001  # 1 ms

        def respond(self, context, condition, mode, seed=None):
            calls.append(("respond", context[0], seed))
            clock[0] += 0.003  # 3 ms

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    contexts = [(["c0"], "joy"), (["c1"], "joy"), (["c2"], "joy")]
    network, whole = bench.paired_latency(Responder(), ["b0", "b1", "b2"], contexts, "greedy", 5)
    timed = calls[6:]  # after the warm-up's three pairs
    assert timed == [("network", "b0", 5), ("respond", "c0", 5), ("respond", "c1", 6), ("network", "b1", 6),
                     ("network", "b2", 7), ("respond", "c2", 7)]
    assert network["p50_ms"] == pytest.approx(1.0) and network["p95_ms"] == pytest.approx(1.0)
    assert whole["p50_ms"] == pytest.approx(3.0) and whole["p95_ms"] == pytest.approx(3.0)


def test_the_in_graph_decode_and_both_loops_take_turns_at_going_first(monkeypatch):
    """responder.py timed the in-graph decode, then the per-step loop, then the compiled loop on
    each context: always in that order, the later ones finding what the earlier had left warm.
    Which goes first now turns from context to context; each time stays in its own column."""
    import types
    from types import SimpleNamespace

    import numpy as np

    bench = load_benchmark("responder")
    calls, clock = [], [0.0]

    def decoded(name, context_ids, ms):
        calls.append((name, context_ids))
        clock[0] += ms / 1000
        return SimpleNamespace(ids=np.zeros((1, 1, 3)), lengths=np.array([[3]]))

    class Loop:
        def __init__(self, spec, weights, intra, inter, compiled=False):
            self.name, self.ms = ("compiled", 4) if compiled else ("loop", 8)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def greedy(self, context_ids, condition_ids, max_length):
            return decoded(self.name, context_ids, self.ms)

    stepwise = types.ModuleType("compat.responder.stepwise")
    stepwise.StepwiseDecoder = Loop
    stepwise.read_saved_model_weights = lambda path, spec: {}
    monkeypatch.setitem(sys.modules, "compat.responder.stepwise", stepwise)  # no TensorFlow
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    model = SimpleNamespace(decode=lambda context_ids, condition_ids, **options: decoded("graph", context_ids, 2))
    responder = SimpleNamespace(info=SimpleNamespace(saved_model_dir="model"), spec=None, model=model)
    batches = [SimpleNamespace(context_ids=f"c{i}", condition_ids=None) for i in range(3)]
    result = bench.stepwise_comparison(responder, batches, (1, 1))
    timed = calls[9:]  # after the warm-up
    assert timed == [("graph", "c0"), ("loop", "c0"), ("compiled", "c0"),
                     ("loop", "c1"), ("compiled", "c1"), ("graph", "c1"),
                     ("compiled", "c2"), ("graph", "c2"), ("loop", "c2")]
    assert [result[key]["p50_ms"] for key in ("in_graph", "stepwise", "stepwise_compiled")] == pytest.approx([2, 8, 4])
    assert (result["speedup_p50"], result["compiled_speedup_p50"]) == pytest.approx((4, 2))
    assert result["equal"] == result["replies"] == 3


@pytest.mark.parametrize(
    ("script", "args", "notes", "error"),
    [
        ("accuracy.py", ["--variants", "small,full,small", "--presets", "ngrams,ngrams", "--data-dir", "/nonexistent"],
         ["note: --variants small given more than once; each is measured once",
          "note: --presets ngrams given more than once; each is measured once"],
         "accuracy.py: error: not found: /nonexistent/data_small.json, /nonexistent/data_full.json (pass --data-dir)"),
        ("classic_fidelity.py", ["--data", "clinc,clinc", "--clinc", "/nonexistent/data_full.json"],
         ["note: --data clinc given more than once; each is measured once"],
         "classic_fidelity.py: error: not found: /nonexistent/data_full.json (pass --clinc)"),
    ],
)
def test_what_to_measure_given_twice_is_measured_once_with_a_note(script, args, notes, error):
    """accuracy.py --variants small,small trained and measured the variant twice, printing two
    rows of one name (and classic_fidelity.py --data intents,intents ran the comparison twice, up
    to an hour each); each is now measured once, with a note (the run below stops at the data)."""
    result = _run(script, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert [line for line in lines if line.startswith("note: ")] == notes
    assert lines[-1] == error


def test_the_predictor_benchmarks_numpy_baseline_runs_the_served_models_own_network(default_predictor):
    """predictor.py's numpy baseline ran a model it had trained on --data, not the served one: for
    a model trained on other data (--model exported/clinc with the default --data) the
    "x the numpy baseline" ratio compared networks of different sizes. It now runs the served
    model's weights with its featurizer, and gives the served model's probabilities."""
    import numpy as np

    bench = load_benchmark("predictor")
    for sentence in ("hi, what time do you open on sundays?", "can I pay by card?"):
        forward = bench.numpy_forward_of(default_predictor, sentence)
        expected = default_predictor.predict_proba([sentence])
        np.testing.assert_allclose(forward(), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("script", "argv", "option", "values", "note"),
    [
        ("tokenizer_threads", ["--threads", "2", "2", "4", "2"], "threads", [2, 4],
         "note: --threads 2 given more than once; each is measured once"),
        ("batching", ["--waits-ms", "0,0.5,0.0,2"], "waits_ms", [0.0, 0.5, 2.0],
         "note: --waits-ms 0 given more than once; each is measured once"),
        ("serve", ["--routes", "parse", "chat", "parse"], "routes", ["parse", "chat"],
         "note: --routes parse given more than once; each is measured once"),
    ],
)
def test_a_row_value_given_twice_is_measured_once_with_a_note(monkeypatch, capsys, script, argv, option, values, note):
    """tokenizer_threads.py --threads 2 2 and batching.py --waits-ms 0,0 measured the value twice
    and printed two rows of one name (serve.py --routes parse parse dropped the repeat without a
    word); each is now measured once, with a note."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # its timing.py, found beside it when run
    args = load_benchmark(script).parse_arguments(argv)
    assert getattr(args, option) == values
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")] == [note]


def test_a_corpus_given_twice_is_read_once_with_a_note():
    """responder.py --corpus a.json a.json read and scored every dialogue of the file twice."""
    result = _run("responder.py", "--corpus", "/nonexistent/a.json", "/nonexistent/a.json",
                  "--train-corpus", "/nonexistent/t.json", "/nonexistent/t.json")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert [line for line in lines if line.startswith("note: ")] == [
        "note: --corpus /nonexistent/a.json given more than once; each is measured once",
        "note: --train-corpus /nonexistent/t.json given more than once; each is measured once",
    ]
    assert lines[-1] == ("responder.py: error: not found: /nonexistent/a.json, /nonexistent/t.json "
                         "(pass --corpus / --train-corpus)")


def test_train_without_its_default_corpus_is_a_usage_error_naming_the_option(monkeypatch, capsys, tmp_path):
    """responder.py --train, with no --train-corpus and the default training corpus missing (no
    ../shared/datasets beside the checkout), passed the check of the files it reads and then
    stopped with a data-file error of exit status 1 that named no option."""
    bench = load_benchmark("responder")
    missing = tmp_path / "topical_chat" / "valid_freq.json"
    corpus = tmp_path / "held_out.json"
    corpus.write_text("{}", encoding="utf-8")
    monkeypatch.setattr(bench, "DATASETS", tmp_path)  # no topical_chat/ in it
    monkeypatch.setattr(sys, "argv", ["responder.py", "--train", "--corpus", str(corpus)])
    with pytest.raises(SystemExit) as stopped:
        bench.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"responder.py: error: not found: {missing} (pass --corpus / --train-corpus)"
    )


def test_a_serving_run_without_16_connections_says_its_targets_are_not_checked(capsys):
    """serve.py --concurrency 1 8 printed "targets at 16 connections" followed by the memory
    target alone: the throughput and latency targets were left out without a word."""
    import argparse

    serve = load_benchmark("serve")
    answered = serve.wrk_result({"requests": 300, "seconds": 1.0, "p50": 20.0, "p90": 30.0, "p99": 50.0,
                                 "errors": 0, "non2xx": 0, "mismatch": 0})
    results = {(name, "parse", 8): serve.combine([answered]) for name in ("on", "off")}
    args = argparse.Namespace(generation_mode=None, workers=1, threads=1, rounds=1, duration=1, senders=1,
                              concurrency=[1, 8], markdown=False, dev=False)
    serve.report(args, [serve.ROUTES["parse"]], results, {"on": [500.0]}, {"parse": 10})
    out = capsys.readouterr().out
    targets = out[out.index("targets at 16 connections"):].splitlines()
    assert targets[1] == ("  no row at 16 connections (--concurrency): the throughput and latency targets are "
                          "not checked"), out
    assert targets[2] == "  worker RSS <= 750 MiB: max 500 MiB -> met", out


def test_a_relative_sqlite_store_is_the_callers_not_the_checkouts(monkeypatch, tmp_path):
    """serve.py's servers run in the checkout: --store sqlite:bench.db, given from another folder,
    made the conversation database in the checkout, not where the caller was."""
    serve = load_benchmark("serve")
    monkeypatch.chdir(tmp_path)
    assert serve.parse_arguments(["--store", "sqlite:bench.db"]).store == f"sqlite://{tmp_path}/bench.db"
    assert serve.parse_arguments(["--store", "sqlite:runs/b.db?synchronous=normal"]).store == (
        f"sqlite://{tmp_path}/runs/b.db?synchronous=normal")
    for kept in ("sqlite:///var/tmp/b.db", "sqlite:~/b.db", "memory", "redis://127.0.0.1:6379/7"):
        assert serve.parse_arguments(["--store", kept]).store == kept
    assert serve.parse_arguments([]).store is None  # a fresh file per server, in the run's own folder


def test_the_serving_report_names_a_generation_mode_the_servers_inherit(monkeypatch, capsys):
    """The servers inherit the caller's environment: with LEGACY_ASSISTANT_GENERATION_MODE=greedy
    set there and no --generation-mode, they decoded greedily while the report said "generated
    chat with the server's default" (sample_rerank)."""
    import argparse

    serve = load_benchmark("serve")
    args = argparse.Namespace(generation_mode=None, workers=1, threads=1, rounds=1, duration=1, senders=1,
                              concurrency=[16], markdown=False, dev=False)
    monkeypatch.delenv("LEGACY_ASSISTANT_GENERATION_MODE", raising=False)
    serve.report(args, [], {}, {}, {})
    assert "generated chat with the server's default\n" in capsys.readouterr().out
    monkeypatch.setenv("LEGACY_ASSISTANT_GENERATION_MODE", "greedy")
    serve.report(args, [], {}, {}, {})
    assert "generated chat with greedy (LEGACY_ASSISTANT_GENERATION_MODE)\n" in capsys.readouterr().out
    args.generation_mode = "beam"  # --generation-mode: what the servers are given
    serve.report(args, [], {}, {}, {})
    assert "generated chat with beam\n" in capsys.readouterr().out
