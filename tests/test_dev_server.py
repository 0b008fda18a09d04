"""``serve --dev``: Flask's development server in one process; SIGHUP reloads in place, also
while the model loads; one log line per request (the app's access log, not werkzeug's too)."""
import re
import shutil
import signal
import time

import pytest

from tests.helpers import DEFAULT_MODEL
from tests.server_process import ServerProcess


def test_dev_server_serves_and_reloads_on_sighup(tmp_path, tiny_model_dir, free_port):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    with ServerProcess(["--dev", "--model", str(model), "--store", "memory"], port=free_port(),
                       log_path=tmp_path / "dev.log", wait=False) as server:
        # a reload asked for while the model loads (the store opens first) waits for it, and
        # does not end the process
        deadline = time.monotonic() + 60
        while "conversation store:" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.signal(signal.SIGHUP)
        server.wait_ready()
        deadline = time.monotonic() + 30
        while "is unchanged" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert re.search(r"reload \(SIGHUP[^)]*\): model tiny \S+ is unchanged", server.log()), server.log()
        assert server.workers() == []  # one process
        assert server.request("GET", "/health")[1]["model"] == "tiny"
        shutil.rmtree(model)
        shutil.copytree(DEFAULT_MODEL, model)
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while server.request("GET", "/health")[1]["model"] != "default" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.request("GET", "/health")[1]["model"] == "default"
        # the loaded models were frozen for the collector, so the retired one is freed explicitly
        deadline = time.monotonic() + 30
        while "of the retired models" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert re.search(r"freed \d+ objects of the retired models", server.log()), server.log()
        assert server.request("GET", "/ready") == (200, {"status": "ready", "workers": {"ready": 1, "expected": 1}})
        server.request("GET", "/version", headers={"X-Request-ID": "once-only"})
        log = server.log()
        # werkzeug's lines come uncoloured: no escape sequence, raw or shown as text
        assert "\x1b" not in log and "\\x1b[" not in log, log
        assert len(re.findall(r"GET /version\b", log)) == 1, log  # werkzeug's '"GET /version HTTP/1.1" 200' is off
        assert re.search(r"legacy_assistant\.access: GET /version 200 \S+ms id=once-only", log), log
        status, body = server.request("POST", "/api/v1/chat", {"sender": "d", "message": "I'd like to order a coffee"})
        assert status == 200 and body["intent"] == "order_coffee"
        (model / "assistant.json").write_text("{}", encoding="utf-8")
        server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while "reload (SIGHUP) refused" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "reload (SIGHUP) refused" in server.log()
        assert server.request("GET", "/health")[1]["model"] == "default"


def test_ctrl_c_while_a_reload_finishes_ends_the_process_at_once():
    """serve --dev waits, once stopped, for a model reload under way (ending inside TensorFlow's
    C++ code aborted the process); Ctrl-C then ends it at once, exit status 130."""
    import subprocess
    import sys

    script = (
        "import signal, threading, time, types\n"
        # as in a terminal: a test run as a background job hands its children SIGINT ignored
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from legacy_assistant.cli.serve import _finish_reload\n"
        "from legacy_assistant.web.admin import RELOADS_EXTENSION\n"
        "reload = threading.Thread(target=time.sleep, args=(60,), name='model-reload')\n"
        "reload.start()\n"
        "app = types.SimpleNamespace(extensions={RELOADS_EXTENSION: types.SimpleNamespace(thread=reload)})\n"
        "_finish_reload(app)\n"
        "print('not reached')\n"
    )
    waiting = "waiting for the model reload under way to finish (Ctrl-C again stops at once)\n"
    # the Ctrl-C comes once the process says it waits (a timer in it could fire before, on a busy machine)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == waiting
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=50)
    finally:
        process.kill()
    assert process.returncode == 130, (out, err[-2000:])
    assert out == ""  # nothing after the message: not the line after _finish_reload
    assert time.monotonic() - started < 30


def test_a_stopped_dev_server_waits_for_a_reload_the_admin_route_runs(tmp_path, tiny_model_dir, capsys):
    """Once stopped, serve --dev waits for a reload POST /admin/reload runs on its request thread
    too, not only for one a SIGHUP started, and says so; it went on to close the store and end."""
    import threading

    from legacy_assistant.cli.serve import _finish_reload
    from legacy_assistant.web import create_app

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    token = "an-admin-token-for-the-test"
    app = create_app({"TESTING": True, "MODEL_DIR": str(model), "RESPONDER_DIR": None, "STORE_URL": "memory",
                      "ADMIN_TOKEN": token, "WARM_UP": False})
    slot = app.extensions["legacy_assistant"]
    loader, go_on = slot._loader, threading.Event()
    slot._loader = lambda: go_on.wait(30) and loader()
    shutil.rmtree(model)
    shutil.copytree(DEFAULT_MODEL, model)
    client = app.test_client()
    asking = threading.Thread(target=client.post, args=("/admin/reload",),
                              kwargs={"headers": {"Authorization": f"Bearer {token}"}}, daemon=True)
    try:
        asking.start()
        deadline = time.monotonic() + 30
        while not slot.reloading and time.monotonic() < deadline:
            time.sleep(0.005)
        threading.Timer(0.2, go_on.set).start()
        _finish_reload(app)
        assert slot.model["name"] == "default"  # returned once the reload was done
        assert "waiting for the model reload under way to finish" in capsys.readouterr().out
    finally:
        go_on.set()
        asking.join(30)
        slot.close()


class _Server:
    """What the development server's request handler reads of Werkzeug's server."""

    ssl_context = None
    multithread = multiprocess = passthrough_errors = shutdown_signal = False
    server_address = ("127.0.0.1", 1)

    @staticmethod
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]


class _Echo(_Server):
    """A server whose app answers 200 with the request's body as read."""

    @staticmethod
    def app(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _exchange(sent, server=None):
    """The development server's answer to ``sent`` over a socket pair (the bytes it wrote until
    it closed); ``sent`` is written while the handler reads, so a long one cannot fill the
    pair's buffer first."""
    import socket
    import threading

    from legacy_assistant.cli.serve import _quiet_request_handler

    ours, theirs = socket.socketpair()
    with ours, theirs:
        sending = threading.Thread(target=ours.sendall, args=(sent,))
        sending.start()
        _quiet_request_handler()(theirs, ("127.0.0.1", 1), server if server is not None else _Server())
        theirs.shutdown(socket.SHUT_WR)
        sending.join()
        answer = b""
        while chunk := ours.recv(65536):
            answer += chunk
    return answer


def test_a_request_line_the_dev_server_refuses_is_logged_without_the_sender(caplog):
    """The development server (http.server underneath) logs why it refused a request line,
    quoting the line or a piece of it: a raw space in a conversation's path wrote the sender id
    ("Bad request syntax"), or a piece of it as the version ("Bad request version ('secret-id')").
    The logs write it as the digest every other line does."""
    import socket

    from legacy_assistant.cli.serve import _quiet_request_handler
    from legacy_assistant.stores.base import sender_digest

    handler = _quiet_request_handler()
    hidden = f"/api/v1/conversations/<sender-sha256:{sender_digest('alice secret-id')}>"
    for sent, logged in (
        (b"GET /api/v1/conversations/alice secret-id HTTP/1.1", f"Bad request syntax ('GET {hidden} HTTP/1.1')"),
        (b"GET /api/v1/conversations/alice secret-id", f"Bad request version ('GET {hidden}')"),
        (b"GET /health secret-id HTTP/1.1", "Bad request syntax ('GET /health secret-id HTTP/1.1')"),  # as it came
        # a bracket in the sender id: the quoted line was taken to start there, and "alice" stayed
        (b"GET /api/v1/conversations/alice (secret-id HTTP/1.1",
         "Bad request syntax ('GET /api/v1/conversations/<sender-sha256:"
         + sender_digest("alice (secret-id") + "> HTTP/1.1')"),
    ):
        caplog.clear()
        ours, theirs = socket.socketpair()
        with ours, theirs, caplog.at_level("INFO", logger="werkzeug"):
            ours.sendall(sent + b"\r\nHost: localhost\r\n\r\n")
            ours.shutdown(socket.SHUT_WR)
            handler(theirs, ("127.0.0.1", 1), _Server())
            assert b"400" in ours.recv(65536)  # the answer (no status line to a line without a version)
        lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
        assert [line for line in lines if line.endswith(logged)], lines
        if b"conversations" in sent:
            assert not [line for line in lines if "secret-id" in line or "alice" in line], lines


def test_both_servers_give_a_refused_request_its_id_and_access_line_by_one_rule(caplog):
    """The development server and gunicorn's worker each worked out a refused request's id and
    access line in code of its own, and took a client's X-Request-ID differently: given twice, the
    first not a token, the development server made an id where gunicorn took the second."""
    import io
    from http.client import parse_headers

    from legacy_assistant.web.observability import RequestIds, refused_access_line, refused_request_id

    ids = RequestIds()
    sent = b"X-Request-ID: not a token\r\nx-request-id: given-1\r\n\r\n"
    as_http_server_reads_them = parse_headers(io.BytesIO(sent)).items()
    as_gunicorn_reads_them = [("X-REQUEST-ID", "not a token"), ("X-REQUEST-ID", "given-1")]
    assert refused_request_id(as_http_server_reads_them, ids) == "given-1"
    assert refused_request_id(as_gunicorn_reads_them, ids) == "given-1"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", refused_request_id(None, ids))  # the headers were not read
    assert refused_request_id([("X-Request-ID", "a b")], ids) != "a b"
    with caplog.at_level("INFO", logger="legacy_assistant.access"):
        refused_access_line({"ACCESS_LOG": True}, None, None, 400, 0.00125, "r-1")  # the development server's
        refused_access_line(None, "GET", "/health", 431, 0.002, "r-2")  # gunicorn read the request line
        refused_access_line({"ACCESS_LOG": False}, "GET", "/health", 431, 0.002, "r-3")  # --no-access-log
    lines = [record.getMessage() for record in caplog.records if record.name == "legacy_assistant.access"]
    assert lines == ["- - 400 1.25ms id=r-1", "GET /health 431 2.00ms id=r-2"]


def test_a_request_the_dev_server_refuses_is_answered_with_the_json_error():
    """A request http.server refuses before the app sees it was answered with its HTML page,
    whose status line and text repeated the request line (a conversation's sender id), and,
    to a line whose version it could not read, with no status line at all. The answer is the
    app's JSON error, as serve answers gunicorn's refusals, with an X-Request-ID."""
    import json

    too_many_headers = b"".join(b"X-%d: 1\r\n" % n for n in range(101))
    for sent, status, code in (
        (b"GET /api/v1/conversations/alice secret-id HTTP/1.1\r\nHost: localhost\r\n", 400, "bad_request"),
        (b"GET /api/v1/conversations/alice secret-id\r\nHost: localhost\r\n", 400, "bad_request"),
        (b"GET /api/v1/conversations/alice-secret-id HTTP/2.0\r\nHost: localhost\r\n", 505,
         "http_version_not_supported"),
        (b"POST /api/v1/conversations/alice-secret-id\r\n", 400, "bad_request"),  # HTTP/0.9 knows only GET
        # raw UTF-8, not percent-encoded, as gunicorn refuses it: Werkzeug took it for Latin-1 and
        # routed the conversation of "bÃ¼cher-secret-id"
        (b"GET /api/v1/conversations/b\xc3\xbccher-secret-id HTTP/1.1\r\nHost: localhost\r\n", 400, "bad_request"),
        (b"DELETE /api/v1/conversations/alice-secret-id?b\xc3\xbccher HTTP/1.1\r\nHost: localhost\r\n", 400,
         "bad_request"),
        (b"GET /api/v1/conversations/alice-secret-id" + b"x" * 65536 + b" HTTP/1.1\r\n", 414,
         "request_uri_too_long"),
        (b"GET /api/v1/conversations/alice-secret-id HTTP/1.1\r\n" + too_many_headers, 431,
         "request_header_fields_too_large"),
    ):
        # a long line fills the pair's buffer: it is sent while the handler reads
        answer = _exchange(sent + b"\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith(f"HTTP/1.1 {status} "), answer[:300]
        headers = dict(line.split(": ", 1) for line in lines[1:])
        assert headers["Content-Type"] == "application/json"
        assert headers["Connection"] == "close"
        assert int(headers["Content-Length"]) == len(body)
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", headers["X-Request-ID"])  # the headers were not read
        error = json.loads(body)["error"]
        assert error["code"] == code and error["message"]
        assert b"alice" not in answer and b"secret" not in answer, answer[:300]


@pytest.mark.parametrize("line_bytes, header_bytes, status", [(65535, 10, 414), (100, 65535, 431)])
def test_the_dev_server_s_line_limits_count_the_line_end_and_say_so(line_bytes, header_bytes, status):
    """http.server reads a line with its CRLF and refuses it over 65,536 bytes: a request line or
    a header of 65,535 bytes is refused, which "longer than 65536 bytes" did not account for."""
    import json

    start = b"GET /health?q="
    line = start + b"a" * (line_bytes - len(start) - len(b" HTTP/1.1")) + b" HTTP/1.1"
    header = b"X-Big: " + b"b" * (header_bytes - len(b"X-Big: "))
    assert (len(line), len(header)) == (line_bytes, header_bytes)
    answer = _exchange(line + b"\r\n" + header + b"\r\n\r\n")
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    message = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]
    assert "with its line end" in message and "65536 bytes" in message, message


def test_the_dev_server_sends_100_continue_once():
    """A request with ``Expect: 100-continue`` (curl's for a large body) got two ``100 Continue``
    from the development server, http.server's and Werkzeug's, where a client that sends its body
    on each ``100 Continue`` it reads looks for one."""
    import socket
    import threading

    from legacy_assistant.cli.serve import _quiet_request_handler

    class Threaded(_quiet_request_handler()):
        protocol_version = "HTTP/1.1"  # as Werkzeug's threaded server sets it (serve --dev runs threaded)

    class Reading(_Server):
        @staticmethod
        def app(environ, start_response):
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]

    def answer_to(version: bytes) -> bytes:
        sent = (b"POST /cakechat_api/v1/actions/get_response " + version + b"\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
                b"Connection: close\r\n\r\n{}")
        ours, theirs = socket.socketpair()
        with ours, theirs:
            sending = threading.Thread(target=ours.sendall, args=(sent,))
            sending.start()
            Threaded(theirs, ("127.0.0.1", 1), Reading())
            theirs.shutdown(socket.SHUT_WR)
            sending.join()
            answer = b""
            while chunk := ours.recv(65536):
                answer += chunk
        assert answer.endswith(b"\r\n\r\n{}"), answer
        return answer

    answer = answer_to(b"HTTP/1.1")
    assert answer.count(b"100 Continue") == 1, answer
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), answer
    # an HTTP/1.0 client's expectation is ignored (RFC 9110): it cannot read an interim answer
    answer = answer_to(b"HTTP/1.0")
    assert b"100 Continue" not in answer and b" 200 OK\r\n" in answer, answer


def test_the_dev_server_lets_go_of_a_client_that_sent_a_body_it_refused(monkeypatch):
    """Werkzeug discards the body an answer left unread (a 413's) with a read that waits for 10 MB
    or the client's close: a client that sent its whole body over the limit and waited, as a
    client reading its answer to the end does, held that request's thread and its connection
    open for as long as it stayed, though the answer said ``Connection: close``. Each read now
    gives up after the client has sent nothing for a while, as serve's do."""
    import socket
    import threading

    from legacy_assistant.cli import serve

    monkeypatch.setattr(serve, "DEV_CLIENT_TIMEOUT_SECONDS", 0.3, raising=False)

    class Threaded(serve._quiet_request_handler()):
        protocol_version = "HTTP/1.1"

    class Refusing(_Server):
        @staticmethod
        def app(environ, start_response):  # answers without reading the body, as a 413 does
            start_response("413 REQUEST ENTITY TOO LARGE", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"no"]

    body = b"a" * 200_000
    sent = (b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)
        sending = threading.Thread(target=ours.sendall, args=(sent,), daemon=True)
        sending.start()
        handling = threading.Thread(target=Threaded, args=(theirs, ("127.0.0.1", 1), Refusing()), daemon=True)
        handling.start()
        sending.join(10)
        handling.join(5)  # the client keeps its side open, waiting for the server to close
        assert not handling.is_alive(), "the server still holds the connection of a refused body"
        theirs.shutdown(socket.SHUT_WR)  # as Werkzeug's server does once the handler returns
        answer = b""
        while chunk := ours.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and answer.endswith(b"\r\n\r\nno"), answer[:300]


def test_the_dev_server_closes_a_connection_that_sends_nothing_with_an_info_line(monkeypatch, caplog):
    """A connection that sends no request (a browser's spare one, opened ahead) is closed once
    the read timeout passes, with a line of info: http.server's own line was an error's."""
    import logging
    import socket

    from legacy_assistant.cli import serve

    monkeypatch.setattr(serve, "DEV_CLIENT_TIMEOUT_SECONDS", 0.2, raising=False)
    caplog.set_level(logging.INFO)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        started = time.monotonic()
        serve._quiet_request_handler()(theirs, ("127.0.0.1", 1), _Server())
        assert time.monotonic() - started < 5
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "closed a connection whose request did not come within 0.2 s" in caplog.text


@pytest.mark.parametrize("target", [b"?sender=alice-secret-id", b"api/v1/conversations/alice-secret-id", b"health"])
def test_a_request_target_that_is_no_path_is_refused_by_the_dev_server_as_by_gunicorn(target):
    """A request target that does not begin with "/" (nor is a URL, nor OPTIONS's "*") is no
    valid HTTP, and gunicorn answers it 400: the development server routed "health" as
    "/health", and answered "?x=1" with Werkzeug's HTML redirect to the page."""
    import json

    sent = b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    answer = _exchange(sent)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "bad_request"
    assert b"secret" not in answer


@pytest.mark.parametrize("lengths", [[b"abc"], [b"-1"], [b"+13"], [b"13, 13"], [b"5", b"13"]])
def test_a_content_length_that_is_no_number_is_refused_by_the_dev_server_as_by_gunicorn(lengths):
    """A Content-Length that is no decimal number, or two that differ, is no valid HTTP, and
    gunicorn answers it 400 bad_request: the development server read the body as empty, and
    the route answered 400 invalid_json, blaming a body that was valid JSON."""
    import json

    body = b'{"text": "hi"}'
    headers = b"".join(b"Content-Length: " + length + b"\r\n" for length in lengths)
    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + headers
        + b"Connection: close\r\n\r\n"
        + body
    )
    answer = _exchange(sent)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "bad_request"


def test_an_http_1_0_request_with_a_transfer_encoding_is_refused_by_the_dev_server_as_by_gunicorn():
    """HTTP/1.0 has no transfer codings, so a request of that version that sends
    Transfer-Encoding has faulty framing (RFC 9112), and gunicorn answers it 400 bad_request:
    the development server read its body as chunked and answered the route's 200."""
    import json

    sent = (
        b"POST /api/v1/parse HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\ne\r\n" + b'{"text": "hi"}' + b"\r\n0\r\n\r\n"
    )
    answer = _exchange(sent)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "bad_request"


def test_a_request_with_content_length_and_transfer_encoding_is_refused_by_the_dev_server_as_by_gunicorn():
    """A request that frames its body twice, with Content-Length and Transfer-Encoding, is the
    shape of request smuggling, which RFC 9112 says to handle as an error, and gunicorn answers
    it 400 bad_request: the development server read the body as chunked and served the route."""
    import json

    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"e\r\n" + b'{"text": "hi"}' + b"\r\n0\r\n\r\n"
    )
    answer = _exchange(sent)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "bad_request"


@pytest.mark.parametrize("expectation", [b"foo", b"", b"100-continue, foo"])
def test_an_expectation_other_than_100_continue_is_refused_by_the_dev_server_as_by_gunicorn(expectation):
    """An Expect header other than 100-continue names an expectation the server cannot meet,
    and gunicorn answers it 417 expectation_failed: the development server ignored it and
    served the route (200)."""
    import json

    body = b'{"text": "hi"}'
    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: 14\r\nExpect: " + expectation + b"\r\nConnection: close\r\n\r\n" + body
    )
    answer = _exchange(sent)
    assert answer.startswith(b"HTTP/1.1 417 "), answer[:300]
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "expectation_failed" and "100-continue" in error["message"]


@pytest.mark.parametrize(
    "chunked",
    [
        b"e;name=value\r\n" + b'{"text": "hi"}' + b"\r\n0\r\n\r\n",
        b"e\r\n" + b'{"text": "hi"}' + b"\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n",
        b"7\r\n" + b'{"text"' + b"\r\n7;a=b;c\r\n" + b': "hi"}' + b"\r\n0;last\r\n\r\n",
    ],
)
def test_the_dev_server_reads_chunk_extensions_and_trailers_as_gunicorn_does(chunked):
    """A chunk extension after a chunk's size and trailer fields after the last chunk are valid
    HTTP/1.1 (RFC 9112), and gunicorn reads such a body: Werkzeug's reader took the extension
    for a bad size, and the trailer for a missing line end, and the route answered 400."""
    import json

    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked
    )
    answer = _exchange(sent, _Echo())
    assert answer.split(b" ", 2)[1] == b"200", answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"text": "hi"}


@pytest.mark.parametrize("codings", [[b"identity, chunked"], [b"identity", b"chunked"], [b"Chunked"]])
def test_a_transfer_encoding_that_ends_in_one_chunked_is_read_by_the_dev_server_as_gunicorn_reads_it(codings):
    """gunicorn reads a body whose Transfer-Encoding is "identity, chunked" as a chunked one. Under
    Werkzeug 2.3 the development server dechunked only a bare "chunked", and read such a body as
    one without end: the client waited for the connection's timeout, then got 408."""
    import json

    headers = b"".join(b"Transfer-Encoding: " + coding + b"\r\n" for coding in codings)
    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + headers + b"Connection: close\r\n\r\ne\r\n" + b'{"text": "hi"}' + b"\r\n0\r\n\r\n"
    )
    answer = _exchange(sent, _Echo())
    assert answer.split(b" ", 2)[1] == b"200", answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {"text": "hi"}


@pytest.mark.parametrize("fields, status", [(100, b"200"), (101, b"400")])
def test_the_dev_server_reads_at_most_100_trailer_fields_of_a_chunked_body(fields, status):
    """The trailer section of a chunked body was read without a bound, as many fields as a
    client sent, past --max-body-bytes (gunicorn bounds it as its headers). The development
    server now reads up to 100 fields, as many as it takes headers; more is a malformed body."""

    class _Reading(_Server):
        @staticmethod
        def app(environ, start_response):
            try:
                body, status = environ["wsgi.input"].read(), "200 OK"
            except OSError:  # the app answers a malformed chunked body 400
                body, status = b"malformed", "400 Bad Request"
            start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]

    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\ne\r\n" + b'{"text": "hi"}'
        + b"\r\n0\r\n" + b"X-Field: 1\r\n" * fields + b"\r\n"
    )
    answer = _exchange(sent, _Reading())
    assert answer.split(b" ", 2)[1] == status, answer[:300]


@pytest.mark.parametrize(
    "codings", [[b"identity"], [b""], [b"chunked, chunked"], [b"chunked", b"chunked"], [b"chunked, gzip"]]
)
def test_a_transfer_encoding_that_does_not_end_in_one_chunked_is_refused_by_the_dev_server(codings):
    """A Transfer-Encoding whose last coding is not chunked leaves the body's length unknown, and
    chunked twice is not allowed: RFC 9112 says 400, and gunicorn refuses both. The development
    server read such a body as empty (the route answered invalid_json) or served it."""
    import json

    headers = b"".join(b"Transfer-Encoding: " + coding + b"\r\n" for coding in codings)
    sent = (
        b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + headers
        + b"Connection: close\r\n\r\ne\r\n"
        + b'{"text": "hi"}'
        + b"\r\n0\r\n\r\n"
    )
    answer = _exchange(sent)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "bad_request"
