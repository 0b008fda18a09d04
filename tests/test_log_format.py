"""``serve --log-format json``: every line the server logs is one JSON object (serve's own,
gunicorn's, the app's and the access log), for log collectors; ``text`` stays the default."""
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from legacy_assistant.serving.log_format import JsonFormatter, formatter
from tests.helpers import ROOT


def record(message, *args, exc_info=None):
    return logging.LogRecord("legacy_assistant.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_record_is_one_json_line():
    line = JsonFormatter().format(record("two\nlines: %s, %d", "café ☕", 3))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "two\nlines: café ☕, 3" and entry["level"] == "WARNING"
    assert entry["logger"] == "legacy_assistant.test" and entry["pid"] == os.getpid()
    assert entry["time"].endswith("Z") and len(entry["time"]) == len("2026-12-04T00:09:06.150Z")
    assert "exception" not in entry


def test_an_exception_travels_in_its_own_field():
    try:
        raise ValueError("broken")
    except ValueError:
        entry = json.loads(JsonFormatter().format(record("failed", exc_info=sys.exc_info())))
    assert entry["message"] == "failed" and entry["exception"].splitlines()[-1] == "ValueError: broken"


def test_text_stays_the_format_it_was():
    assert formatter("text")._fmt == "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
    with pytest.raises(ValueError, match="one of text, json"):
        formatter("xml")


# a zone with a half-hour offset, given by rule (no zone database needed): UTC+05:30 all year
TEXT_TIMES_UNDER_TZ = r'''
import logging, sys
from legacy_assistant.cli import main
from legacy_assistant.serving.log_format import formatter

line = logging.LogRecord("legacy_assistant.test", logging.INFO, "", 0, "served", None, None)
line.created, line.msecs = 1796538476.123, 123.0  # 2026-12-06 06:27:56.123 UTC
print(formatter("text").format(line))
main(["-q", "info", sys.argv[1]])  # configures the command's logging as every command does
logging.getLogger("legacy_assistant.test").handle(line)
'''


def test_text_lines_carry_their_utc_offset_as_gunicorns_do():
    """Under a TZ set in a container the app's lines were local time with no zone, beside
    gunicorn's ``[2026-12-06 06:27:56 +0000]``: serve's lines and a command's both say it."""
    from tests.helpers import DEFAULT_MODEL

    run = subprocess.run([sys.executable, "-c", TEXT_TIMES_UNDER_TZ, str(DEFAULT_MODEL)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "TZ": "IST-5:30", "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    serve_line = r"2026-12-06 11:57:56,123 \+0530 \[\d+\] INFO legacy_assistant\.test: served"
    assert re.fullmatch(serve_line, run.stdout.splitlines()[0]), run.stdout
    assert run.stderr.splitlines()[-1] == "2026-12-06 11:57:56,123 +0530 INFO legacy_assistant.test: served"


def test_serves_own_text_lines_carry_its_process_id_as_the_workers_do():
    """The master's own lines (and those of the development server, one process) were written in
    a command's shape, without the process id the workers' lines carry: one log, two shapes."""
    run = subprocess.run([sys.executable, "-m", "legacy_assistant", "serve", "--max-text-length", "10000",
                          "--model", str(ROOT / "no-such-model"), "--log-format", "text"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    warning, error = run.stderr.splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [+-]\d{4} \[\d+\] WARNING legacy_assistant\.cli\.serve: "
                        r"--max-text-length 10000 characters .*", warning), warning
    assert error.startswith("error: model directory not found: ")  # a refusal stays one plain line


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serves_address_space_warning_is_written_in_its_log_format(log_format):
    """Under ``ulimit -v`` below 4 GiB every command warns at start; serve's warning was written
    before serve set its log format up: a text line without the process id, in a JSON log too."""
    import resource

    def limited():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))

    run = subprocess.run([sys.executable, "-m", "legacy_assistant", "serve", "--model", str(ROOT / "no-such-model"),
                          "--log-format", log_format], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         preexec_fn=limited)
    assert run.returncode == 1, run.stderr
    warning, error = run.stderr.splitlines()
    if log_format == "json":
        entry = json.loads(warning)
        assert entry["level"] == "WARNING" and "(ulimit -v)" in entry["message"], entry
    else:
        assert re.fullmatch(r"\S+ \S+ [+-]\d{4} \[\d+\] WARNING legacy_assistant\.cli\.serve: this process may map "
                            r"at most 3,072 MiB of address space \(ulimit -v\).*", warning), warning
    assert error.startswith("error: model directory not found: ")


def test_serves_process_id_leaves_a_callers_own_text_format_as_it_is(monkeypatch):
    """Every handler with a TextFormatter was given serve's format, a caller's own in a format of
    its choosing too; only those writing a command's lines are to take the process id."""
    from legacy_assistant.serving.log_format import CLI_TEXT_FORMAT, TextFormatter, text_lines_with_process_id

    commands, callers = logging.StreamHandler(), logging.StreamHandler()
    commands.setFormatter(TextFormatter(CLI_TEXT_FORMAT))
    own = TextFormatter("%(levelname)s %(message)s")
    callers.setFormatter(own)
    monkeypatch.setattr(logging.getLogger(), "handlers", [commands, callers])
    text_lines_with_process_id()
    assert callers.formatter is own
    assert commands.formatter.format(record("x")).split()[3] == f"[{os.getpid()}]"


def test_a_bad_format_is_refused_in_one_line():
    run = subprocess.run([sys.executable, "-m", "legacy_assistant", "serve", "--log-format", "xml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "argument --log-format: must be one of text, json, got 'xml'" in run.stderr
    run = subprocess.run([sys.executable, "-m", "legacy_assistant", "serve"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "LEGACY_ASSISTANT_LOG_FORMAT": "yaml"})
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "error: environment variable LEGACY_ASSISTANT_LOG_FORMAT must be one of text, json, got 'yaml'"
    )


def serve_until_healthy(command, port, stdout, stderr, env, log_path) -> int:
    """Start the server ``command`` (``env`` over this process's), wait until ``/health`` on
    ``port`` answers 200 (its log at ``log_path`` shown if it ends first), stop it with SIGTERM;
    returns its exit status."""
    import urllib.request

    process = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr, start_new_session=True,
                               env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        return process.wait(60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_every_line_a_json_server_writes_is_json(tmp_path, free_port):
    port = free_port()
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "legacy_assistant", "serve", "--port", str(port), "--workers", "1",
               "--store", "memory", "--no-responder"]
    with open(log_path, "wb") as log:
        status = serve_until_healthy(command, port, log, log, {"LEGACY_ASSISTANT_LOG_FORMAT": "json"}, log_path)
    assert status == 0
    lines = log_path.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    loggers = {entry["logger"] for entry in entries}
    assert {"legacy_assistant.cli.serve", "gunicorn.error", "legacy_assistant.web.app",
            "legacy_assistant.access"} <= loggers
    assert any(e["message"] == "GET /health 200" or e["message"].startswith("GET /health 200 ") for e in entries)
    assert {"Handling signal: term", "Shutting down: Master"} <= {e["message"] for e in entries}
    assert len({e["pid"] for e in entries}) == 2  # the master (serve, then gunicorn) and its worker


def test_every_line_the_json_development_server_writes_is_json(tmp_path, free_port):
    """What TensorFlow's C++ writes to stderr while ``serve --dev`` loads (with
    TF_CPP_MIN_LOG_LEVEL=0 here, as 2.18 writes two lines whatever it says) came out as it was,
    among the JSON records: a gunicorn worker's load turned it into records, the dev server's did
    not."""
    port = free_port()
    err_path = tmp_path / "stderr"
    command = [sys.executable, "-m", "legacy_assistant", "serve", "--dev", "--port", str(port), "--store", "memory",
               "--no-responder", "--no-warm-up", "--log-format", "json"]
    with open(err_path, "wb") as err:
        serve_until_healthy(command, port, subprocess.DEVNULL, err, {"TF_CPP_MIN_LOG_LEVEL": "0"}, err_path)
    entries = [json.loads(line) for line in err_path.read_text().splitlines()]  # fails on a line that is not JSON
    assert any(e["logger"] == "native" for e in entries), entries  # TensorFlow wrote to stderr as it loaded
    assert any(e["logger"] == "legacy_assistant.web.app" for e in entries)


def stderr_lines_of(script: str, tmp_path) -> list[str]:
    """The lines ``python -c script`` writes to its stderr, a file (as a server's log is)."""
    err = tmp_path / "stderr"
    with open(err, "wb") as sink:
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, stderr=sink, check=True, timeout=60)
    return err.read_text(encoding="utf-8").splitlines()


def test_lines_compiled_code_writes_to_stderr_become_json_records(tmp_path):
    """TensorFlow 2.18's C++ writes "WARNING: All log messages before absl::InitializeLog() ..."
    and "I0000 ... MLIR V1 optimization pass is not enabled" to stderr itself, whatever
    TF_CPP_MIN_LOG_LEVEL says: in a child process (its fd 2 a file), such writes made inside the
    scope come out as records of the logger "native", a JSON object's line passes as it is (a
    line that only starts with a brace, or holds some other JSON value, is wrapped too), and
    stderr is the process's own again afterwards."""
    script = (
        "import os, sys\n"
        "from legacy_assistant.serving.log_format import native_lines_as_json\n"
        "with native_lines_as_json():\n"
        "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "    os.write(2, b'I0000 00:00:1796387292.035005   14351 mlir_graph_optimization_pass.cc:401] MLIR V1\\n')\n"
        "    os.write(2, b'E1204 12:00:00.000000   1 x.cc:1] part')\n"
        "    os.write(2, b'ly written\\n\\n')\n"
        "    sys.stderr.write('{\"logger\": \"python\"}\\n')\n"
        "    os.write(2, b'{ shape: [1, 30] } from C++\\n')\n"
        "    os.write(2, b'{\"a\": 1} trailing\\n')\n"
        "    os.write(2, b'[1, 2]\\n')\n"
        "    os.write(2, b'no newline at the end')\n"
        "os.write(2, b'after\\n')\n"
    )
    lines = stderr_lines_of(script, tmp_path)
    assert lines[-1] == "after"
    entries = [json.loads(line) for line in lines[:-1]]
    assert [(e.get("logger"), e.get("level")) for e in entries] == [
        ("native", "WARNING"), ("native", "INFO"), ("native", "ERROR"), ("python", None),
        ("native", "WARNING"), ("native", "WARNING"), ("native", "WARNING"), ("native", "WARNING")]
    assert entries[1]["message"].endswith("mlir_graph_optimization_pass.cc:401] MLIR V1")
    assert entries[2]["message"] == "E1204 12:00:00.000000   1 x.cc:1] partly written"
    assert [e["message"] for e in entries[4:]] == [
        "{ shape: [1, 30] } from C++", '{"a": 1} trailing', "[1, 2]", "no newline at the end"]
    assert all(isinstance(e["pid"], int) for e in entries if e["logger"] == "native")


def test_a_child_that_outlives_the_scope_keeps_writing_to_stderr_not_to_another_file(tmp_path):
    """A process started inside the scope holds the pipe: the scope does not wait on it for
    long, and its later lines still reach stderr as records, never a file opened after the
    scope (which may take the number of a descriptor the forwarder writes to)."""
    script = (
        "import os, subprocess, sys, time\n"
        "from legacy_assistant.serving.log_format import native_lines_as_json\n"
        "started = time.monotonic()\n"
        "with native_lines_as_json():\n"
        "    child = subprocess.Popen(['sh', '-c', 'sleep 3; echo \"E0000 child line\" >&2'])\n"
        "left = time.monotonic() - started\n"
        "with open(sys.argv[1], 'wb') as other:\n"
        "    child.wait(); time.sleep(0.5)\n"
        "os.write(2, ('left after %.1f s\\n' % left).encode())\n"
    )
    err, other = tmp_path / "stderr", tmp_path / "other.bin"
    with open(err, "wb") as sink:
        subprocess.run([sys.executable, "-c", script, str(other)], cwd=ROOT, stderr=sink, check=True, timeout=60)
    lines = err.read_text(encoding="utf-8").splitlines()
    assert other.read_bytes() == b""
    assert json.loads(lines[0])["message"] == "E0000 child line", lines
    assert float(lines[-1].split()[2]) < 3.0, lines


def test_with_stderr_closed_the_scope_changes_nothing(tmp_path):
    script = (
        "import os, sys\n"
        "from legacy_assistant.serving.log_format import native_lines_as_json\n"
        "with native_lines_as_json():\n"
        "    pass\n"
        "open(sys.argv[1], 'w').write('ran')\n"
    )
    done = tmp_path / "done"
    subprocess.run(["sh", "-c", f'exec "{sys.executable}" -c "$0" "$1" 2>&-', script, str(done)], cwd=ROOT,
                   check=True, timeout=60)
    assert done.read_text() == "ran"


@pytest.mark.parametrize("argv, environment, as_json", [
    (["serve", "--log-format", "json"], None, True),
    (["-q", "serve", "--log-format=json"], None, True),
    (["serve"], "json", True),
    (["serve", "--log-format", "text"], "json", False),  # the flag beats the environment
    (["serve", "--log-format=json", "--log-format", "text"], None, False),  # the last one, as argparse
    (["serve", "--log-f", "json"], None, True),  # a prefix argparse takes
    (["serve", "--log", "json"], None, True),  # shorter ones too: no other option of serve's starts so
    (["serve", "--l=json"], None, True),
    (["chat", "--model", "serve"], "json", False),
    (["serve"], None, False),
    (["chat"], "json", False),  # the variable is the server's setting
])
def test_a_server_stopped_before_it_serves_says_so_in_its_log_format(capsys, monkeypatch, argv, environment, as_json):
    """SIGTERM while serve still starts (importing, checking settings) ended a JSON log with a
    bare "terminated" line."""
    from legacy_assistant.cli import say_stopped

    if environment is None:
        monkeypatch.delenv("LEGACY_ASSISTANT_LOG_FORMAT", raising=False)
    else:
        monkeypatch.setenv("LEGACY_ASSISTANT_LOG_FORMAT", environment)
    say_stopped("terminated", argv)
    said = capsys.readouterr().err
    if as_json:
        entry = json.loads(said)
        assert entry["message"] == "terminated" and entry["level"] == "INFO" and entry["logger"] == "legacy_assistant.cli"
    else:
        assert said == "terminated\n"


def test_a_line_nested_deeper_than_json_reads_is_wrapped_and_stderr_lives_on(tmp_path):
    """json.loads raises RecursionError (no ValueError) for a line nested past its limit: the
    forwarder died of it, and every later line on stderr was lost."""
    script = (
        "import os\n"
        "from legacy_assistant.serving.log_format import native_lines_as_json\n"
        "with native_lines_as_json():\n"
        "    os.write(2, b'{\"a\":' * 100000 + b'\\n')\n"
        "    os.write(2, b'I0000 after the deep line\\n')\n"
        "os.write(2, b'after\\n')\n"
    )
    lines = stderr_lines_of(script, tmp_path)
    assert len(lines) == 3 and lines[-1] == "after", lines[-2:]
    deep, later = json.loads(lines[0]), json.loads(lines[1])
    assert deep["logger"] == "native" and deep["message"].startswith('{"a":{"a":')
    assert later["level"] == "INFO" and later["message"] == "I0000 after the deep line"



def test_a_record_that_carries_its_exception_as_text_keeps_it():
    """A record rebuilt from a dict (a socket or queue handler's) has exc_text and no exc_info."""
    made = logging.makeLogRecord({"msg": "failed", "exc_text": "Traceback (most recent call last):\nValueError: x"})
    entry = json.loads(JsonFormatter().format(made))
    assert entry["message"] == "failed"
    assert entry["exception"] == "Traceback (most recent call last):\nValueError: x"


def test_json_lines_stay_json_on_a_stderr_that_is_not_utf8():
    """Under LANG=C with UTF-8 mode off stderr is ASCII, and the CLI writes what it cannot encode as
    backslash escapes: "café" came out as "caf\\xe9", an escape no JSON reader takes."""
    snippet = (
        "import logging, sys\n"
        "sys.stderr.reconfigure(errors='backslashreplace')  # as legacy_assistant.cli.main does\n"
        "from legacy_assistant.serving.log_format import configure\n"
        "configure('json', logging.INFO)\n"
        "logging.getLogger('legacy_assistant.test').info('serving model %s', 'caf\\u00e9 \\u2615')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_")}
    env.update(LANG="C", LC_ALL="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0", PYTHONIOENCODING="",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stderr.decode("ascii").splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["serving model café ☕"], lines


def test_log_format_is_the_only_serve_option_that_starts_with_its_first_letter():
    """A stop before the parser is built reads --log-format from any prefix from "--l" on, as
    argparse does: right only while no other option of serve's starts so."""
    from legacy_assistant.cli import build_parser

    serve = next(action for action in build_parser()._actions if action.dest == "command").choices["serve"]
    assert [option for option in serve._option_string_actions if option.startswith("--l")] == ["--log-format"]
