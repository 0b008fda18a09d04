"""The real gunicorn server at its edges: start-up, and requests the app never sees.

* A worker that starts while reloads arrive (the master passes SIGHUP on at any time) is not
  killed: it reloads once it serves. ``/ready`` answers 503 until every worker serves.
* What gunicorn answers itself, before the app (a request line or a header over its limits, a
  request that is not HTTP), is JSON like every other error; so are ``OPTIONS`` and a chunked
  body over the size limit.
* The log names the address the server listens at.

One server (one worker at first) for the whole module; requests go over raw sockets where a
client library would refuse to send them.
"""
import json
import re
import signal
import socket
import threading
import time

import pytest
from gunicorn.http import parser as gunicorn_parser

from legacy_assistant.serving import server as server_module
from tests.helpers import page_links
from tests.server_process import ServerProcess, model_info, wait_for

MAX_BODY = 65536


@pytest.fixture(scope="module")
def server(tmp_path_factory, free_port):
    base = tmp_path_factory.mktemp("edges")
    process = ServerProcess(
        ["--workers", "1", "--threads", "4", "--store", "memory", "--max-body-bytes", str(MAX_BODY)],
        port=free_port(), log_path=base / "server.log",
    )
    try:
        yield process
    finally:
        process.stop()


def exchange(server, data: bytes, timeout: float = 10.0):
    """Send ``data`` as it is; (status, headers with lower-case names, body) of the response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = (line.partition(":") for line in lines[1:])
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


def json_error(status_headers_body, status, code):
    actual, headers, body = status_headers_body
    assert actual == status, body[:300]
    assert headers["content-type"].startswith("application/json"), (headers, body[:300])
    assert int(headers["content-length"]) == len(body)
    assert headers.get("x-request-id")
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"], error
    return error


def chunked(body: bytes, size: int = 8192) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def chat_body(length: int) -> bytes:
    """A valid JSON chat request of exactly ``length`` bytes (padded with spaces)."""
    body = json.dumps({"sender": "edge", "message": "hello"}).encode()
    return body[:-1] + b" " * (length - len(body)) + b"}"


def post_chunked(server, body: bytes):
    return exchange(server, b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n" + chunked(body))


@pytest.fixture
def shared_store_server(tmp_path, free_port):
    """A one-worker server on a store the workers share (SQLite): SIGTTIN adds no worker to a
    server on the memory store."""
    process = ServerProcess(
        ["--workers", "1", "--threads", "4", "--store", f"sqlite:///{tmp_path / 'conversations.db'}"],
        port=free_port(), log_path=tmp_path / "server.log",
    )
    try:
        yield process
    finally:
        process.stop()


def test_a_reload_while_a_worker_starts_waits_for_it_and_ready_waits_for_every_worker(shared_store_server):
    server = shared_store_server
    first = server.workers()
    assert len(first) == 1
    assert server.request("GET", "/ready") == (200, {"status": "ready", "workers": {"ready": 1, "expected": 1}})
    server.signal(signal.SIGTTIN)  # one worker more: it loads the model while the first one serves
    new = wait_for(lambda: sorted(set(server.workers()) - set(first)))
    assert len(new) == 1, server.log()
    booting = new[0]
    answers, reloads = [], 0
    while str(booting) not in model_info(server.request("GET", "/metrics")[1]) and reloads < 5:
        server.signal(signal.SIGHUP)  # the master passes it on to every worker, the starting one too
        reloads += 1
        answers.append(server.request("GET", "/ready"))
        time.sleep(0.5)
    assert reloads >= 2, "the new worker started too fast to test a reload during its start"
    for status, body in answers[:-1]:  # (the last may have come once the new worker served)
        assert status == 503 and body["error"]["code"] == "not_ready", body
        assert "1 of 2 workers" in body["error"]["message"]
    assert wait_for(lambda: server.request("GET", "/ready")[0] == 200, timeout=90), server.log()
    assert server.request("GET", "/ready")[1] == {"status": "ready", "workers": {"ready": 2, "expected": 2}}
    assert sorted(server.workers()) == sorted(first + new)  # nobody was killed or restarted
    log = server.log()
    assert "was sent SIGHUP" not in log and "Booting worker" not in log.split(f"with pid: {booting}", 1)[1]
    # the reload that arrived while it started ran once it served: same model, "unchanged"
    assert wait_for(lambda: re.search(rf"\[{booting}\] .*reload \(SIGHUP[^)]*\): model .* is unchanged",
                                      server.log())), server.log()
    server.signal(signal.SIGTTOU)  # back to one worker
    assert wait_for(lambda: len(server.workers()) == 1, timeout=30)
    assert wait_for(lambda: server.request("GET", "/ready")[0] == 200, timeout=30)


def test_errors_gunicorn_answers_itself_are_json(server):
    json_error(exchange(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
               414, "request_uri_too_long")
    json_error(exchange(server, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 20000
                        + b"\r\nConnection: close\r\n\r\n"), 431, "request_header_fields_too_large")
    # gunicorn counts a header with its CRLF: one of 8,189 bytes is refused, and the message says so
    header = b"X-Big: " + b"b" * (8189 - len(b"X-Big: "))
    error = json_error(exchange(server, b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + header
                                + b"\r\nConnection: close\r\n\r\n"), 431, "request_header_fields_too_large")
    assert "with its line end" in error["message"] and "8190 bytes" in error["message"], error
    json_error(exchange(server, b"\x01\x02 garbage \xff\r\n\r\n"), 400, "bad_request")
    assert server.request("GET", "/health")[0] == 200  # the worker is fine
    _, headers, _ = exchange(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_a_request_gunicorn_refuses_has_its_id_in_the_log(server):
    """Its JSON answer carried an X-Request-ID that no log line had: the access log now has a
    line for it, as for every request the app answers, and gunicorn's line on why ends with it."""
    refused = [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "Request Line is too large"),
        (b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n", 431,
         "limit request headers fields size"),
        (b"\x01\x02 garbage \xff\r\n\r\n", 400, "Invalid HTTP method"),
    ]
    for data, status, why in refused:
        actual, headers, _ = exchange(server, data)
        request_id = headers["x-request-id"]
        assert actual == status and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", request_id), headers
        def carrying(request_id=request_id):
            return [line for line in server.log().splitlines() if f"id={request_id}" in line]

        wait_for(lambda: len(carrying()) >= 2, timeout=10)
        lines = carrying()
        assert len(lines) == 2, lines
        assert any(f"legacy_assistant.access: - - {status} " in line for line in lines), lines
        assert any("Invalid request from ip=127.0.0.1" in line and why in line for line in lines), lines


def rejected_count(server, status: int) -> float:
    _, text = server.request("GET", "/metrics")
    found = re.search(r'legacy_assistant_http_requests_total\{[^}]*route="<rejected>"[^}]*status="%d"[^}]*\} (\S+)'
                      % status, text)
    return float(found.group(1)) if found else 0.0


def test_requests_gunicorn_refuses_are_counted_in_the_request_totals(server):
    """They were only gunicorn's log lines: a 4xx rate alert never saw them."""
    before = {status: rejected_count(server, status) for status in (400, 414, 431)}
    for _ in range(3):
        exchange(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    for _ in range(2):
        exchange(server, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n")
    exchange(server, b"\x01\x02 garbage \xff\r\n\r\n")
    after = {status: rejected_count(server, status) for status in (400, 414, 431)}
    assert {status: after[status] - before[status] for status in after} == {400: 1, 414: 3, 431: 2}


def status_line(server, data: bytes) -> str:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        return sock.makefile("rb").readline().decode("latin-1").strip()


def test_a_transfer_coding_or_expectation_gunicorn_refuses_is_named_in_json(server):
    """gunicorn's 501 kept "Bad Request" as its reason and its message; 417 said nothing more."""
    te = b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: br, chunked\r\n\r\n0\r\n\r\n"
    error = json_error(exchange(server, te), 501, "not_implemented")
    assert "Unsupported transfer coding" in error["message"] and "chunked alone" in error["message"], error
    assert status_line(server, te) == "HTTP/1.1 501 Not Implemented"
    expect = b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}"
    error = json_error(exchange(server, expect), 417, "expectation_failed")
    assert "'foo'" in error["message"] and "100-continue" in error["message"], error


@pytest.mark.parametrize("refused", [
    b"POST /api/v1/parse HTTP/1.1\r\nHost: x\r\nX-Request-ID: sent-1\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /api/v1/parse HTTP/1.1\r\nHost: x\r\nX-Request-ID: sent-1\r\nTransfer-Encoding: br, chunked\r\n\r\n",
    b"POST /api/v1/parse HTTP/1.1\r\nHost: x\r\nX-Request-ID: sent-1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
], ids=["417", "501", "400"])
def test_a_request_gunicorn_refuses_after_reading_its_headers_keeps_the_clients_request_id(refused):
    """gunicorn refuses an Expect it does not meet, a Transfer-Encoding it cannot read and a
    header it cannot take while it builds the request, after it read the X-Request-ID sent
    before them: the answer, the access line and gunicorn's own line carry that id (they
    carried a new one, so the client's id found nothing in the logs)."""
    from gunicorn.config import Config

    from legacy_assistant.serving.server import _headers_read
    from legacy_assistant.web.observability import RequestIds, refused_request_id

    config = Config()
    config.set("http_parser", "python")
    with pytest.raises(Exception) as refusal:
        next(gunicorn_parser.RequestParser(config, iter([refused]), ("127.0.0.1", 1)))
    assert refused_request_id(_headers_read(None, refusal.value), RequestIds()) == "sent-1"
    with pytest.raises(Exception) as refusal:  # a header line it cannot read: none read before it
        next(gunicorn_parser.RequestParser(config, iter([b"GET / HTTP/1.1\r\nBad\x01: 1\r\n\r\n"]), ("::1", 1)))
    assert _headers_read(None, refusal.value) is None


def test_the_headers_of_a_refused_request_are_read_from_gunicorns_frames_alone():
    """Looking for them read the locals of every frame of the traceback: the worker's handle(),
    whose ``except ... as e`` holds the error, then kept that error in a snapshot of its locals,
    a cycle that held the refused request and its frames until the collector ran; and any
    other frame named parse_headers was taken at its word."""
    import gc
    import weakref

    from gunicorn.config import Config

    from legacy_assistant.serving.server import _headers_read

    config = Config()
    config.set("http_parser", "python")
    refused = b"POST /p HTTP/1.1\r\nHost: x\r\nX-Request-ID: sent-1\r\nExpect: foo\r\nContent-Length: 2\r\n\r\n{}"
    seen = []

    def handle():  # as gunicorn's worker catches what the parser raises
        try:
            next(gunicorn_parser.RequestParser(config, iter([refused]), ("127.0.0.1", 1)))
        except Exception as e:
            seen.append((weakref.ref(e), _headers_read(None, e)))

    def parse_headers():  # not gunicorn's
        headers = ["X-Request-ID: other"]
        raise ValueError(headers)

    enabled = gc.isenabled()
    gc.disable()
    try:
        handle()
        freed = seen[0][0]() is None  # as handle() returned, not left to the collector
    finally:
        if enabled:
            gc.enable()
    assert freed
    assert ("X-REQUEST-ID", "sent-1") in seen[0][1]
    with pytest.raises(ValueError) as other:
        parse_headers()
    assert _headers_read(None, other.value) is None


def send_then_close(server, data: bytes) -> bytes:
    """Send ``data``, close this side (the client has nothing more), and read the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_cut_short_by_the_client_is_not_taken_for_the_whole(server):
    """A client that closes its side after part of its Content-Length gets 408: gunicorn hands
    the app what came, and the chat turn used to be stored and answered 200."""
    body = b'{"sender": "cut-short", "message": "I would like to order a coffee"}'
    head = b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    answer = send_then_close(server, head + b"Content-Length: %d\r\n\r\n%s" % (len(body) + 40, body))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"\r\nConnection: close\r\n" in head, head  # nothing more is read on it: not keep-alive
    assert json.loads(payload)["error"]["code"] == "request_timeout"
    status, transcript = server.request("GET", "/api/v1/conversations/cut-short")
    assert status == 200 and transcript["turns"] == []
    # the same cut inside a chunk of a chunked body: gunicorn's NoMoreData, 408 too (it was 400)
    chunked = b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s" % (len(body) + 40, body)
    answer = send_then_close(server, b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\n"
                             b"Content-Type: application/json\r\n" + chunked)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    # cut right after a chunk's data, before (or inside) its line end: gunicorn's
    # ChunkMissingTerminator, which named a malformed body (400) though nothing sent was wrong
    for end in (b"", b"\r"):
        chunked = b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s%s" % (len(body), body, end)
        answer = send_then_close(server, b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\n"
                                 b"Content-Type: application/json\r\n" + chunked)
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, (end, answer[:300])


def test_a_server_under_a_script_name_prefix_serves_its_page_there_and_404s_outside(tmp_path, free_port):
    """gunicorn's SCRIPT_NAME: a proxy passes /bot/... unchanged and the server answers under it.
    A path outside the prefix is a JSON 404 (gunicorn itself answers 500), and the page's files
    and calls resolve under the prefix."""
    import urllib.request
    from urllib.parse import urljoin

    with ServerProcess(["--workers", "1", "--store", "memory"], port=free_port(), log_path=tmp_path / "server.log",
                       env={"SCRIPT_NAME": "/bot"}, health_path="/bot/health") as prefixed:
        status, page = prefixed.request("GET", "/bot/")
        assert status == 200
        links = page_links(page)
        assert len(links) >= 3
        for url in links:
            path = urljoin("/bot/", url)
            with urllib.request.urlopen(prefixed.url + path, timeout=10) as response:  # raises unless 2xx
                assert path.startswith("/bot/") and response.status == 200 and response.read(), url
        status, body = prefixed.request("POST", "/bot/api/v1/chat", {"sender": "s", "message": "hello"})
        assert status == 200 and body["intent"] == "greeting"
        status, body = prefixed.request("GET", "/health")
        assert status == 404 and body["error"]["code"] == "not_found", body
        assert "SCRIPT_NAME '/bot'" in body["error"]["message"]
        for method, path in (("GET", "/bothealth"), ("POST", "/botapi/v1/parse")):  # gunicorn's "under" the prefix
            status, body = prefixed.request(method, path, {"text": "hello"} if method == "POST" else None)
            assert status == 404 and "SCRIPT_NAME '/bot'" in body["error"]["message"], (path, body)
        status, body = prefixed.request("GET", "/bot/nothing")  # the paths the client sees
        assert (status, body["error"]["message"]) == (404, "no route '/bot/nothing'; see /bot/openapi.json for the routes")
        # the prefix is the environment's: a SCRIPT_NAME header (from this machine, which gunicorn
        # trusts as a proxy by default) does not move it
        status, body = prefixed.request("GET", "/x/health", headers={"SCRIPT_NAME": "/x"})
        assert status == 404 and "SCRIPT_NAME '/bot'" in body["error"]["message"], body
        status, body = prefixed.request("GET", "/bot/version", headers={"SCRIPT_NAME": "/bot/version"})
        assert status == 200 and body["service"] == "legacy-assistant", body  # /version: the header made it no root
        assert prefixed.request("GET", "/bot/health")[0] == 200  # the worker is fine


@pytest.mark.parametrize("script_name, under", [("/bot/", "/bot"), ("/", "")])
def test_a_script_name_ending_in_a_slash_is_taken_without_it(tmp_path, free_port, script_name, under):
    """gunicorn cut the prefix, its slash included, off each path: under SCRIPT_NAME=/bot/,
    /bot/health reached the app as "health" and was refused as outside the prefix, and /bot/
    redirected to itself; under SCRIPT_NAME=/ every path was refused."""
    with ServerProcess(["--workers", "1", "--store", "memory", "--no-responder"], port=free_port(),
                       log_path=tmp_path / "server.log", env={"SCRIPT_NAME": script_name},
                       health_path=f"{under}/health") as server:
        assert server.request("GET", f"{under}/version")[0] == 200
        assert server.request("GET", f"{under}/")[0] == 200
        log = server.log()
    assert f"SCRIPT_NAME={script_name} is taken as {under or 'none (the root)'}: a prefix ends in no slash" in log


def test_a_server_on_a_loopback_address_refuses_a_foreign_host(server):
    """The loopback names filled in by serve reach the workers: a page that reached the server
    through a name of its own (DNS rebinding) is refused, before any token is looked at."""
    body = b'{"text": "hello"}'
    request = (b"POST /api/v1/parse HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n%s")
    json_error(exchange(server, request % (b"rebind.attacker.example:%d" % server.port, len(body), body)),
               400, "host_not_allowed")
    for host in (b"localhost:%d" % server.port, b"127.0.0.1:%d" % server.port):
        status, _, answer = exchange(server, request % (host, len(body), body))
        assert status == 200, answer[:300]


def test_options_is_answered_by_the_app_as_json(server):
    status, headers, body = exchange(server, b"OPTIONS /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert set(json.loads(body)["methods"]) == {"POST", "OPTIONS"}
    assert set(headers["allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    assert headers.get("x-request-id")
    json_error(exchange(server, b"OPTIONS /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"), 404, "not_found")


def _two_requests_on_one_connection(server, first: bytes):
    """Send ``first``, read its answer, then ask for /health on the same connection:
    (status, headers of the first answer, what the second got: its status or "closed")."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        sock.sendall(first)
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        stream.read(int(headers["content-length"]))
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            line = stream.readline()
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        return status, headers, int(line.split()[1]) if line else "closed"


def _declared(method: str, path: str, body: bytes) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("request_bytes, status", [
    (_declared("POST", "/api/v1/chat", chat_body(2 * MAX_BODY)), 413),  # over the limit: never read
    (_declared("POST", "/no-such-route", chat_body(2 * MAX_BODY)), 404),
    (_declared("GET", "/health", chat_body(MAX_BODY)), 200),  # within the limit, on a route that reads none
    (b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n" + chunked(chat_body(3 * MAX_BODY)), 413),  # streamed, cut at the limit
], ids=["over-limit", "no-route", "unread-within-limit", "chunked-over-limit"])
def test_a_body_left_unread_past_what_gunicorn_discards_is_answered_with_connection_close(
        server, request_bytes, status):
    """Gunicorn discards at most 64 KiB of an unread body before the next request and otherwise
    closes the connection, which the answer used to call keep-alive: the client's next request
    on it then failed with no response."""
    got, headers, after = _two_requests_on_one_connection(server, request_bytes)
    assert got == status
    if getattr(gunicorn_parser, "_DRAIN_MAX_BYTES", None) is None:  # before 27: any unread body is discarded
        assert (headers["connection"], after) == ("keep-alive", 200)
    else:
        assert (headers["connection"], after) == ("close", "closed")


@pytest.mark.parametrize("request_bytes", [
    _declared("POST", "/api/v1/chat", chat_body(MAX_BODY)),
    b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n" + chunked(chat_body(MAX_BODY // 2)),
], ids=["declared", "chunked"])
def test_a_large_body_the_route_reads_keeps_the_connection(server, request_bytes):
    got, headers, after = _two_requests_on_one_connection(server, request_bytes)
    assert (got, headers["connection"], after) == (200, "keep-alive", 200)


def test_a_refused_body_the_server_can_discard_keeps_the_connection(server):
    first = b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    got, headers, after = _two_requests_on_one_connection(server, first)
    assert (got, headers["connection"], after) == (415, "keep-alive", 200)


def test_a_chunked_body_over_the_limit_is_413(server):
    json_error(post_chunked(server, chat_body(100 * 1024)), 413, "request_entity_too_large")
    json_error(post_chunked(server, chat_body(MAX_BODY + 1)), 413, "request_entity_too_large")
    status, _, body = post_chunked(server, chat_body(MAX_BODY))  # exactly the limit is allowed
    assert status == 200, body
    status, _, body = post_chunked(server, chat_body(300))
    assert status == 200 and json.loads(body)["sender"] == "edge"


@pytest.mark.parametrize(
    "chunks, what",
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", "InvalidChunkSize"),
        (b"2\r\n{}XX0\r\n\r\n", "ChunkMissingTerminator"),
        (b"2\r\n{}\r\n0\r\nTrailer: x\r\n\r\n", "InvalidHeaderName"),
    ],
)
def test_a_malformed_chunked_body_is_a_400_not_an_unhandled_error(server, chunks, what):
    """gunicorn parses a chunked body only as the app reads it, so its refusal reaches the app:
    a 400 like any request that is not HTTP, with no traceback in the error log."""
    before = server.log()
    error = json_error(exchange(server, b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks),
                       400, "bad_request")
    assert "chunked" in error["message"]
    added = server.log()[len(before):]
    assert "unhandled error" not in added and "Traceback" not in added, added
    assert server.request("GET", "/health")[0] == 200


def test_clients_that_read_none_of_their_answers_do_not_stall_the_worker(server):
    """Clients that send requests (pipelined, on one connection each) and read none of the
    answers: once the answers fill the buffers, the write gives up after
    CLIENT_WRITE_TIMEOUT_SECONDS. Before, each held a request thread for good (a file under
    /static/ went by sendfile, which waits with no limit), and four of them stopped the worker
    answering anyone."""
    from legacy_assistant.serving.server import CLIENT_WRITE_TIMEOUT_SECONDS

    before = server.log()
    pipelined = b"GET /static/chat.js HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2000
    silent = []
    try:
        for _ in range(4):  # the worker's request threads
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            silent.append(sock)
            sock.settimeout(2.0)
            try:
                sock.sendall(pipelined)
            except TimeoutError:  # the server stopped reading them: its answers are not taken
                pass
        time.sleep(0.5)
        started = time.monotonic()
        # a send that moved a part of the answer before the buffers filled waits once more
        status, _ = server.request("GET", "/health", timeout=2 * CLIENT_WRITE_TIMEOUT_SECONDS + 15)
        assert status == 200
        assert time.monotonic() - started < 2 * CLIENT_WRITE_TIMEOUT_SECONDS + 10
        # /health may come before every client's buffers have filled: their writes give up later
        assert wait_for(lambda: "closed a connection that took none of its answer" in server.log()[len(before):],
                        timeout=2 * CLIENT_WRITE_TIMEOUT_SECONDS + 10)
    finally:
        for sock in silent:
            sock.close()
    added = server.log()[len(before):]
    assert "Traceback" not in added and "Socket error processing request" not in added, added[-3000:]
    assert server.request("GET", "/static/chat.js")[0] == 200


def test_idle_and_half_sent_connections_do_not_stall_the_worker(server):
    """Connections that send nothing go back to the poller at once, and a request that stops
    arriving is cut off after CLIENT_READ_TIMEOUT_SECONDS: they cannot hold the worker's four
    request threads (gunicorn alone held a thread 5 s per idle connection, and for ever per
    half-sent request)."""
    from legacy_assistant.serving.server import CLIENT_READ_TIMEOUT_SECONDS

    before = server.log()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    body = b'{"sender": "slow", "message": "hel'
    for sock in half[:2]:
        sock.sendall(b"POST /api/v1/parse HTTP/1.1\r\nHost: localhost\r\n")  # headers that never end
    for sock in half[2:]:
        sock.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 200\r\n\r\n" + body)  # a body that stops
    try:
        time.sleep(0.5)
        started = time.monotonic()
        status, _ = server.request("GET", "/health", timeout=CLIENT_READ_TIMEOUT_SECONDS + 15)
        assert status == 200
        assert time.monotonic() - started < CLIENT_READ_TIMEOUT_SECONDS + 5
        half[2].settimeout(CLIENT_READ_TIMEOUT_SECONDS + 10)
        answer = b""  # the app's answer to the body that stopped
        while b"request_timeout" not in answer:
            chunk = half[2].recv(65536)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer[:300]
        # the server closes the connection after it: its answer said keep-alive, and a next
        # request sent on it got no response
        assert b"\r\nConnection: close\r\n" in answer.partition(b"\r\n\r\n")[0], answer[:300]
        # While the headers that never end are still open: closed first, the server would read
        # their end instead of timing out, if its read of them began after the body's.
        assert wait_for(lambda: "closed a connection whose request stopped arriving" in server.log()[len(before):],
                        timeout=CLIENT_READ_TIMEOUT_SECONDS + 10)
    finally:
        for sock in idle + half:
            sock.close()
    added = server.log()[len(before):]
    assert "Traceback" not in added and "Socket error processing request" not in added, added[-3000:]


def test_a_quick_stop_cuts_off_a_request_still_arriving_instead_of_waiting_to_be_killed(tmp_path, free_port):
    """SIGINT (gunicorn's quick stop) while a client trickles its body: the worker ended only
    once its request threads had, so it read on until the master killed it at the graceful
    timeout (30 s, "SIGKILL! Perhaps out of memory?"), and the client got no answer."""
    import threading

    process = ServerProcess(["--workers", "1", "--no-responder", "--store", "memory"], port=free_port(),
                            log_path=tmp_path / "server.log")
    stopped = threading.Event()
    try:
        sock = socket.create_connection(("127.0.0.1", process.port), timeout=60)
        sock.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 300\r\n\r\n{")
        trickle(sock, stopped)
        time.sleep(1.5)
        process.signal(signal.SIGINT)
        assert process.process.wait(60) == 0
        answer = sock.recv(65536)
    finally:
        stopped.set()
        process.stop()
    log = (tmp_path / "server.log").read_text()
    # not 408, which blames the client: the server is stopping, and the client may send it again
    assert answer.startswith(b"HTTP/1.1 503") and b'"shutting_down"' in answer, (answer[:200], log[-2000:])
    assert "SIGKILL" not in log, log[-2000:]


def received_until_closed(sock) -> bytes:
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def test_a_graceful_stop_answers_a_request_still_arriving_and_lets_those_that_arrived_finish(tmp_path, free_port):
    """SIGTERM while one client trickles its body and another's body is on its way: the
    worker read on until the master killed it at the graceful timeout (30 s), and the first
    client got no answer. The request that has arrived is answered; the one still arriving
    gets 503 shutting_down (send it again) and the worker ends."""
    import threading

    process = ServerProcess(["--workers", "1", "--no-responder", "--store", "memory"], port=free_port(),
                            log_path=tmp_path / "server.log")
    stopped = threading.Event()
    head = (b"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n")
    try:
        slow = socket.create_connection(("127.0.0.1", process.port), timeout=60)
        slow.sendall(head % 300 + b"{")
        trickle(slow, stopped)
        body = chat_body(200)
        prompt = socket.create_connection(("127.0.0.1", process.port), timeout=60)
        prompt.sendall(head % len(body) + body[:50])
        time.sleep(1.5)
        process.signal(signal.SIGTERM)
        prompt.sendall(body[50:])  # the rest of a body on its way as the stop comes
        assert process.process.wait(60) == 0
        slow_answer, prompt_answer = received_until_closed(slow), received_until_closed(prompt)
    finally:
        stopped.set()
        process.stop()
    log = (tmp_path / "server.log").read_text()
    assert prompt_answer.startswith(b"HTTP/1.1 200"), (prompt_answer[:300], log[-2000:])
    assert slow_answer.startswith(b"HTTP/1.1 503"), (slow_answer[:300], log[-2000:])
    slow_head, _, slow_body = slow_answer.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close\r\n" in slow_head and b"\r\nRetry-After: 1\r\n" in slow_head, slow_head
    assert json.loads(slow_body)["error"]["code"] == "shutting_down"
    assert "SIGKILL" not in log and "Traceback" not in log, log[-2000:]


def test_a_client_that_keeps_its_socket_open_after_connection_close_holds_up_no_other(server):
    """gunicorn closes a connection gracefully: it half-closes it, then waits up to 2 s for the
    client to close its side. It waited on the worker's main thread, so while a client kept its
    socket open after a ``Connection: close`` answer, the worker took no other request: each of
    these came 2 s late."""
    request = (b"POST /katana-ml/api/v1.0/assistant HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: 17\r\nConnection: close\r\n\r\n" b'{"sentence":"hi"}')
    held = []
    try:
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            held.append(sock)  # kept open, not closed
            started = time.monotonic()
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):  # the whole answer, up to the server's half-close
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200") and answer.rstrip().endswith(b"]"), answer[:300]
            # the stall was 2 s; 1.5 leaves a busy machine room
            assert time.monotonic() - started < 1.5
    finally:
        for sock in held:
            sock.close()


def test_graceful_closes_linger_aside_only_up_to_their_cap_then_where_they_are_called():
    """A client that keeps its socket open holds a lingering close for 2 s: past the cap, a close
    lingers on the calling (main) thread, as gunicorn's, not in yet another thread."""
    release = threading.Event()
    closed_on = []

    def close(graceful=False):
        closed_on.append((graceful, threading.current_thread().name))
        if graceful and threading.current_thread() is not threading.main_thread():
            release.wait(10)

    slots = threading.BoundedSemaphore(1)
    closing = server_module._closing_aside(close, slots)
    closing(graceful=True)  # takes the one slot, in a thread of its own, held
    closing(graceful=True)  # no slot free: here
    closing()  # a plain close is always here
    deadline = time.monotonic() + 10
    while len(closed_on) < 3:  # the thread's close may come in any order with the two here
        assert time.monotonic() < deadline, closed_on
        time.sleep(0.01)
    assert sorted(closed_on) == [(False, "MainThread"), (True, "MainThread"), (True, "lingering-close")]
    assert not slots.acquire(blocking=False)  # held while the lingering close waits
    release.set()
    deadline = time.monotonic() + 10
    while not slots.acquire(blocking=False):  # the slot comes back once the lingering close ends
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_worker_that_stops_waits_for_its_lingering_graceful_closes(monkeypatch):
    """gunicorn's stop waits for the connections it counts, and a close lingering in a thread of
    its own is no longer counted: the worker ended with it under way, and its exit reset the
    connection of a client still sending what the close was draining (a body refused with 413)."""
    from gunicorn.workers.gthread import ThreadWorker

    monkeypatch.setattr(ThreadWorker, "run", lambda self: None)  # gunicorn's loop, ended at once
    worker = object.__new__(server_module.ModelWorker)
    worker._lingering = threading.BoundedSemaphore(server_module.LINGERING_CLOSES_MAX)
    done = []

    def close(graceful=False):
        time.sleep(0.3)  # draining what the client still sends
        done.append(graceful)

    server_module._closing_aside(close, worker._lingering)(graceful=True)
    worker.run()
    assert done == [True]  # ended before the worker did
    assert worker._lingering.acquire(blocking=False)  # and its slot given back


def test_the_log_names_the_address_it_listens_at(server):
    log = server.log()
    assert f"Listening at: http://127.0.0.1:{server.port} " in log, log[:2000]
    assert "Listening at:  (" not in log


def _expect_continue(length: int, content_type: str = "application/json") -> bytes:
    return (f"POST /api/v1/chat HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n"
            f"Expect: 100-continue\r\nContent-Length: {length}\r\n\r\n").encode()


def test_a_body_over_the_limit_is_refused_before_100_continue_asks_for_it(server):
    """gunicorn sent ``100 Continue`` before the app saw the request: the client was told to
    send a body the app then refused unread (and the connection closed under it)."""
    answer = exchange(server, _expect_continue(10 * MAX_BODY))  # the body is never sent
    json_error(answer, 413, "request_entity_too_large")
    assert answer[1]["connection"] == "close"  # the client may not send the body: nothing to read on
    # a body the route refuses unread (not JSON) is not asked for either
    answer = exchange(server, _expect_continue(5, "text/plain"))
    json_error(answer, 415, "unsupported_media_type")
    assert answer[1]["connection"] == "close"


def test_100_continue_comes_when_the_route_reads_the_body(server):
    body = chat_body(300)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        sock.sendall(_expect_continue(len(body)))
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n" and stream.readline() == b"\r\n"
        sock.sendall(body)
        assert stream.readline().startswith(b"HTTP/1.1 200")
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["connection"] == "keep-alive"
        assert json.loads(stream.read(int(headers["content-length"])))["sender"] == "edge"
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")  # the connection goes on
        assert stream.readline().startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("path", [b"/health", b"/no-such-route"])
def test_100_continue_never_follows_the_answer_to_a_body_left_unread(server, path):
    """A client that sent its body without waiting, to a route that does not read it: the
    answer is all it gets (a ``100 Continue`` sent while the unread body was discarded, after
    the answer, would be read as the answer to its next request), and the connection closes."""
    body = chat_body(300)
    first = (b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n%s" % (path, len(body), body))
    status, headers, after = _two_requests_on_one_connection(server, first)
    assert (status, headers["connection"], after) == (405 if path == b"/health" else 404, "close", "closed")


@pytest.mark.parametrize("connection", [b"TE, close", b"close, TE", b"Upgrade, close", b"TE, Close"])
def test_close_among_other_connection_options_closes(server, connection):
    """gunicorn heeds ``close`` only as the whole ``Connection`` value: it answered
    ``keep-alive`` to ``Connection: TE, close`` (libwww-perl's) and kept the connection open."""
    status, headers, after = _two_requests_on_one_connection(
        server, b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: %s\r\n\r\n" % connection)
    assert (status, headers["connection"], after) == (200, "close", "closed")


class _ClientSocket:
    """Stands in for a client's socket: keeps what the server sends it."""

    def __init__(self) -> None:
        self.sent = b""

    def sendall(self, data: bytes) -> None:
        self.sent += data


def test_the_body_reader_asks_for_the_body_once_and_never_once_the_answer_has_begun() -> None:
    """``100 Continue`` goes out before the first read of the body, once; a body first read after
    the answer began (the client never told to send it) gets none: the client would take it
    for the answer to its next request."""
    import io

    from legacy_assistant.serving.server import _ContinueOnRead

    client = _ClientSocket()
    reader = _ContinueOnRead(io.BytesIO(b"{\"a\": 1}"), client)
    assert reader.read(4) == b"{\"a\""
    assert reader.read(10) == b": 1}"
    assert client.sent == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert reader.mark_answered() is False  # the client was told to send its body

    late = _ClientSocket()
    unasked = _ContinueOnRead(io.BytesIO(b"{}"), late)
    assert unasked.mark_answered() is True  # never told to send it: the connection must close
    assert unasked.read(2) == b"{}"
    assert late.sent == b""


def test_a_body_the_stopping_worker_stopped_reading_fails_to_read_and_is_never_taken_whole() -> None:
    """A body still arriving when the worker stops reading it (its client's side shut, as the
    stop does) fails with ReadingStopped, declared length or chunked, rather than handing over
    what came as if it were all; not stopped, a body cut short reads as before."""
    from gunicorn.http.body import ChunkedReader, LengthReader
    from gunicorn.http.unreader import SocketUnreader

    from legacy_assistant.errors import ReadingStopped
    from legacy_assistant.serving.server import _StoppableReader

    def cut_off(sent: bytes) -> SocketUnreader:
        server_side, client_side = socket.socketpair()
        client_side.sendall(sent)
        client_side.close()
        return SocketUnreader(server_side)

    for stopped in (False, True):
        length = _StoppableReader(LengthReader(cut_off(b'{"a": '), 300))
        chunks = _StoppableReader(ChunkedReader(None, cut_off(b'6\r\n{"a": ')))
        for body in (length, chunks):
            assert not body.complete()
            body.stopped = stopped
        if stopped:
            with pytest.raises(ReadingStopped):
                length.read(300)
            with pytest.raises(ReadingStopped):
                chunks.read(300)
        else:
            assert length.read(300) == b'{"a": '  # the app sees a body shorter than declared: 408
            with pytest.raises(Exception) as raised:  # gunicorn's own error for a chunk cut off
                chunks.read(300)
            assert not isinstance(raised.value, ReadingStopped)
    whole = _StoppableReader(LengthReader(cut_off(b"{}"), 2))
    whole.stopped = True
    assert whole.read(2) == b"{}" and whole.complete()


def test_a_body_whose_request_began_as_the_stop_cut_off_the_arriving_ones_fails_to_read(monkeypatch) -> None:
    """The graceful stop's cut (its timer thread) landing while a request thread was taking its
    request: it shut the connection's reading side, found no body to mark yet, and the body was
    then registered unmarked: what came read as if it were all (a 408 for a short body, not 503
    shutting_down)."""
    from types import SimpleNamespace

    from gunicorn.http.body import LengthReader
    from gunicorn.http.unreader import SocketUnreader
    from gunicorn.workers.gthread import ThreadWorker

    from legacy_assistant.errors import ReadingStopped
    from legacy_assistant.serving.server import ModelWorker

    server_side, client_side = socket.socketpair()
    client_side.sendall(b'{"a": ')  # the rest never comes; the client stays
    worker = object.__new__(ModelWorker)
    conn = SimpleNamespace(sock=server_side)
    worker._in_flight = {id(conn): conn}

    class CutWhileRegistering(dict):
        def __setitem__(self, key, value):
            worker._cut_arriving()  # the timer fires as the request thread registers the body
            super().__setitem__(key, value)

    worker._bodies = CutWhileRegistering()
    req = SimpleNamespace(body=SimpleNamespace(reader=LengthReader(SocketUnreader(server_side), 300)))
    monkeypatch.setattr(ThreadWorker, "handle_request", lambda self, req, conn: req.body.reader)
    try:
        reader = worker.handle_request(req, conn)
        with pytest.raises(ReadingStopped):
            reader.read(300)
    finally:
        server_side.close()
        client_side.close()


def test_gunicorn_logs_no_line_of_its_own_per_request_with_the_sender_id() -> None:
    """gunicorn's own ``pre_request`` hook logged every request's path at DEBUG (``-v``): a
    conversation's sender id in full, the one key to its transcript. The access log's line, which
    names it by a digest, is the line per request."""
    from types import SimpleNamespace
    from unittest import mock

    from legacy_assistant.serving import server as serving

    gunicorn_app = serving.GunicornServer(serving.ServerOptions(port=0, workers=1, reuse_port=False))
    worker = SimpleNamespace(log=mock.Mock())
    request = SimpleNamespace(method="GET", path="/api/v1/conversations/alice-private-id",
                              uri="/api/v1/conversations/alice-private-id")
    gunicorn_app.cfg.pre_request(worker, request)
    assert worker.log.mock_calls == []


@pytest.mark.parametrize(
    "headers",
    [
        "X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n",
        "X-Forwarded-Proto: http\r\nX-Forwarded-Protocol: ssl\r\n",
    ],
)
@pytest.mark.parametrize("peer", [("127.0.0.1", 40000), ""])  # a proxy on this machine; a Unix socket's
def test_scheme_headers_that_disagree_do_not_make_gunicorn_refuse_the_request(headers, peer) -> None:
    """gunicorn took the scheme from X-Forwarded-Proto, X-Forwarded-Protocol and X-Forwarded-Ssl
    when they came from a trusted address (127.0.0.1, any peer of a Unix socket), and refused a
    request whose headers disagreed with 400: a proxy passes a client's own such header on beside
    the one it sets. Nothing in the app reads the scheme, so no header sets it."""
    import io

    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving import server as serving

    gunicorn_app = serving.GunicornServer(serving.ServerOptions(port=0, workers=1, reuse_port=False))
    raw = f"GET /health HTTP/1.1\r\nHost: chat.example\r\n{headers}\r\n".encode()
    request = next(RequestParser(gunicorn_app.cfg, io.BytesIO(raw), peer))
    assert (request.method, request.path) == ("GET", "/health")


def trickle(sock, stopped) -> None:
    """Send a byte a second on ``sock`` until ``stopped`` is set (or the connection fails), from
    a thread of its own: each of the server's reads succeeds, the request never ends."""
    import threading

    def send():
        while not stopped.wait(1.0):
            try:
                sock.sendall(b" ")
            except OSError:
                return

    threading.Thread(target=send, daemon=True).start()


def test_gunicorn_parses_requests_in_python_even_where_its_c_parser_is_installed() -> None:
    """gunicorn's ``auto`` parser is gunicorn_h1c where ``gunicorn[fast]`` is installed; its
    refusals do not hold the request line that the logs read to hide a conversation's sender
    id (``_hide_sender``), so a piece of it would be logged. The pure-Python parser is chosen."""
    from legacy_assistant.serving import server as serving

    gunicorn_app = serving.GunicornServer(serving.ServerOptions(port=0, workers=1, reuse_port=False))
    assert gunicorn_app.cfg.settings["http_parser"].get() == "python"


def test_a_worker_out_of_file_descriptors_keeps_its_connections_and_waits_for_one_to_close(caplog) -> None:
    """``ulimit -n`` reached as a burst of clients arrived: gunicorn's ``accept`` let ``EMFILE``
    end the worker, and every connection it held went with it. Now it takes no new one until one
    of its own closes; with none held there is nothing to wait for, and the error stands."""
    import errno
    import logging

    from legacy_assistant.serving.server import ModelWorker

    class FullListener:
        def accept(self):
            raise OSError(errno.EMFILE, "Too many open files")

    worker = object.__new__(ModelWorker)
    worker.sockets, worker._accepting = [], True
    worker.nr_conns, worker.worker_connections = 5, 1000
    with caplog.at_level(logging.WARNING, logger="legacy_assistant.serving.server"):
        worker.accept(FullListener())
    assert (worker.worker_connections, worker.nr_conns, worker._accepting) == (5, 5, False)
    assert "out of file descriptors" in caplog.text and "ulimit -n" in caplog.text

    worker.nr_conns = 0
    with pytest.raises(OSError) as raised:
        worker.accept(FullListener())
    assert raised.value.errno == errno.EMFILE


def test_a_cap_lowered_by_emfile_comes_back_one_connection_at_a_time(monkeypatch, caplog) -> None:
    """Once file descriptors ran out, the worker's cap stayed at the connections it held then for
    the rest of its life, though they were long back. Each connection it accepts now raises the
    cap by one, back to what it was; running out again lowers it again, warned about once each time."""
    import errno
    import logging

    from gunicorn.workers.gthread import ThreadWorker

    from legacy_assistant.serving.server import ModelWorker

    def gunicorns_accept(self, listener):
        if listener == "full":
            raise OSError(errno.EMFILE, "Too many open files")
        if listener == "a connection":
            self.nr_conns += 1  # (none waiting: gunicorn's returns having accepted nothing)

    monkeypatch.setattr(ThreadWorker, "accept", gunicorns_accept)
    worker = object.__new__(ModelWorker)
    worker.sockets, worker._accepting = [], True
    worker.nr_conns, worker.worker_connections = 5, 8

    def cap_after(listener: str, closed: int = 0) -> tuple[int, int]:
        worker.nr_conns -= closed
        worker.accept(listener)
        return worker.worker_connections, worker.nr_conns

    with caplog.at_level(logging.INFO, logger="legacy_assistant.serving.server"):
        assert cap_after("full") == (5, 5)
        assert cap_after("a connection", closed=2) == (6, 4)  # two closed, one more taken: room for one more
        assert cap_after("none waiting") == (6, 4)
        assert cap_after("a connection") == (7, 5)
        assert cap_after("full") == (5, 5)  # out again: back to what it holds
        assert cap_after("a connection", closed=1) == (6, 5)
        assert cap_after("a connection") == (7, 6)
        assert cap_after("a connection") == (8, 7)  # where it was
        assert cap_after("a connection") == (8, 8)  # and no higher
        assert cap_after("full", closed=1) == (7, 7)
    said = [record.getMessage() for record in caplog.records if record.name == "legacy_assistant.serving.server"]
    assert [line.split(":")[0] for line in said] == [
        "out of file descriptors (Too many open files) with 5 connections open",
        "file descriptors are back",
        "out of file descriptors (Too many open files) with 7 connections open",
    ], said
    assert "takes at most 5 at once, then one more with each it accepts, back up to 8" in said[0]


def test_a_new_connection_out_of_file_descriptors_is_read_at_once_not_reset(monkeypatch) -> None:
    """The wait for a new connection's first bytes makes a selector, a file descriptor: with
    ``ulimit -n`` reached its ``EMFILE`` escaped the request thread, and gunicorn closed the
    connection unanswered, with no line in the log. Now the request is read at once."""
    import errno
    from types import SimpleNamespace

    from gunicorn.workers.gthread import ThreadWorker

    from legacy_assistant.serving.server import ModelWorker

    def no_descriptor_left(timeout):
        raise OSError(errno.EMFILE, "Too many open files")

    server_side, client_side = socket.socketpair()
    conn = SimpleNamespace(sock=server_side, initialized=False, data_ready=False, wait_for_data=no_descriptor_left)
    worker = object.__new__(ModelWorker)
    worker._in_flight, worker._bodies = {}, {}
    monkeypatch.setattr(ThreadWorker, "handle", lambda self, conn: "read by gunicorn")
    try:
        assert worker.handle(conn) == "read by gunicorn"
        assert conn.data_ready  # gunicorn's own handle does not wait (and fail) again
    finally:
        server_side.close()
        client_side.close()
