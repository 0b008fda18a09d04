"""What the app answers without a real server: the page's icon and focus colour, ``/ready``,
``OPTIONS``, and the worker registry ``/ready`` reads under gunicorn."""
import gzip
import json
import re
import struct
import sys
from urllib.parse import urljoin

import pytest

from tests.helpers import ROOT, page_links

CSS = ROOT / "legacy_assistant" / "web" / "static" / "chat.css"


def test_favicon_is_a_public_icon(make_client):
    client = make_client(API_TOKEN="secret")  # public even when the API needs a token
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/x-icon"
    assert response.cache_control.max_age and response.cache_control.public
    data = response.get_data()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind, count) == (0, 1, 1)
    width, height, _, _, planes, bits, size, offset = struct.unpack_from("<BBBBHHII", data, 6)
    assert (width, height, planes, bits) == (16, 16, 1, 32) and offset + size == len(data)
    header_size, bmp_width, bmp_height = struct.unpack_from("<Iii", data, offset)
    assert (header_size, bmp_width, bmp_height) == (40, 16, 32)  # XOR image and AND mask
    alpha = data[offset + 40 + 3:offset + 40 + 16 * 16 * 4:4]
    assert 0 < alpha.count(255) < 256 and set(alpha) == {0, 255}  # a shape on a transparent ground
    page = client.get("/").get_data(as_text=True)
    assert 'rel="icon" href="favicon.ico"' in page


def test_the_page_works_where_a_proxy_mounts_the_server(make_client):
    """Behind a proxy at /assistant/ (gunicorn's SCRIPT_NAME, or a proxy that strips the prefix):
    the page's files and the routes its script calls resolve under the prefix, not the host's root."""
    client = make_client()
    mount = "http://localhost/assistant"
    bare = client.get("", base_url=mount)  # /assistant: the page's relative URLs need the slash
    assert bare.status_code == 308 and bare.headers["Location"].endswith("/assistant/")
    page = client.get("/", base_url=mount)
    assert page.status_code == 200
    links = page_links(page.get_data(as_text=True))
    script = ROOT / "legacy_assistant" / "web" / "static" / "chat.js"
    called = re.findall(r'var (?:ENDPOINT|TRANSCRIPT) = "([^"]+)"', script.read_text())
    assert len(links) >= 3 and len(called) == 2
    for url in links + called:
        resolved = urljoin(mount + "/", url)
        assert resolved.startswith(mount + "/"), f"{url} leaves the mount: {resolved}"
    for url in links:
        assert client.get("/" + url, base_url=mount).status_code == 200, url
    chat = client.post("/" + called[0], base_url=mount, json={"sender": "mounted", "message": "hello"})
    assert chat.status_code == 200 and chat.get_json()["intent"] == "greeting"
    transcript = client.get("/" + called[1] + "mounted", base_url=mount)
    assert [turn["message"] for turn in transcript.get_json()["turns"]] == ["hello"]


def test_the_redirect_to_the_page_names_it_by_its_path_alone(make_client):
    """/assistant (a SCRIPT_NAME prefix without its slash) is redirected to the page at
    /assistant/. The Location was built from the request's Host and the scheme the server saw:
    behind a proxy that ends TLS it sent the browser to http://, behind one on another port to
    the wrong port, and it carried whatever Host a client sent into a permanent redirect."""
    client = make_client()
    for base in ("http://evil.example/assistant", "http://localhost:8000/assistant"):
        bare = client.get("", base_url=base, query_string="lang=en")
        assert bare.status_code == 308 and bare.headers["Location"] == "/assistant/?lang=en", bare.headers
        assert "evil.example" not in bare.get_data(as_text=True)


@pytest.mark.parametrize("method, path", [("GET", "health"), ("POST", "api/v1/parse"), ("OPTIONS", "health"),
                                          ("GET", "x")])
def test_a_path_that_only_begins_with_the_prefixs_text_is_outside_it(make_client, method, path):
    """gunicorn hands "/bothealth" under SCRIPT_NAME "/bot" over as PATH_INFO "health", which
    routing would answer as "/health": it is a 404 instead, as any path outside the prefix is,
    and it needs no token to say so."""
    client = make_client(API_TOKEN="s3cret-api")
    answer = client.open(method=method, environ_overrides={"SCRIPT_NAME": "/bot", "PATH_INFO": path},
                         json={"text": "hello"} if method == "POST" else None)
    assert answer.status_code == 404, answer.get_data(as_text=True)
    assert answer.get_json()["error"] == {
        "code": "not_found", "message": "this server answers only under its prefix, SCRIPT_NAME '/bot'"}
    assert client.get("/health", base_url="http://localhost/bot").status_code == 200


def _colours(block: str) -> dict[str, str]:
    return dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", block))


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _hue(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    high, low = max(r, g, b), min(r, g, b)
    if high == low:
        return 0.0
    if high == r:
        return (60 * (g - b) / (high - low)) % 360
    if high == g:
        return 60 * (b - r) / (high - low) + 120
    return 60 * (r - g) / (high - low) + 240


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_ring_is_not_the_error_colour_and_stands_out(scheme):
    """WCAG 2.2 (1.4.11): a focus indicator needs 3:1 against what surrounds it. And a ring in
    the error red reads as "this field is wrong"."""
    text = CSS.read_text(encoding="utf-8")
    light = _colours(text.split("@media (prefers-color-scheme: dark)")[0])
    dark = {**light, **_colours(text.split("@media (prefers-color-scheme: dark)")[1].split("}")[0])}
    colours = light if scheme == "light" else dark
    focus = colours["--focus"].lower()
    errors = {colours[name].lower() for name in colours if name.startswith("--error")} | {"#b3261e"}
    assert focus not in errors
    assert not (_hue(focus) < 20 or _hue(focus) > 340), f"{focus} is a red"
    for ground in ("--bg", "--surface"):
        assert _contrast(focus, colours[ground]) >= 3, (focus, ground, colours[ground])
    assert re.search(r":focus-visible[^{]*\{[^}]*outline:[^;]*var\(--focus\)", text)


def test_ready_without_a_gunicorn_master_is_this_process(make_client):
    response = make_client().get("/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "workers": {"ready": 1, "expected": 1}}


def test_ready_is_503_json_until_every_worker_serves(make_client):
    state = {"ready": False}
    client = make_client(READINESS=lambda: (state["ready"], {"ready": 1, "expected": 3}))
    response = client.get("/ready")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "not_ready"
    # a worker that keeps failing to start (a damaged model on disk) is not said to be starting only
    assert response.get_json()["error"]["message"].startswith(
        "1 of 3 workers serve; the others are starting, or failing to (")
    state["ready"] = True
    assert client.get("/ready").status_code == 200
    assert client.get("/health").status_code == 200  # liveness is not readiness


def test_options_is_json_with_allow(make_client):
    client = make_client()
    response = client.options("/api/v1/parse")
    assert response.status_code == 200 and response.is_json
    assert set(response.get_json()["methods"]) == {"POST", "OPTIONS"}
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    assert "Access-Control-Allow-Origin" not in response.headers
    missing = client.options("/nope")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_worker_registry(tmp_path):
    from legacy_assistant.serving.readiness import WorkerRegistry

    registry = WorkerRegistry(tmp_path)
    reader = WorkerRegistry(tmp_path)  # another process's view: only the files are shared
    assert reader.status() == (False, {"ready": 0, "expected": 0})  # the master has not written yet
    registry.expect(2, [11, 12])
    registry.mark_ready(11)
    assert reader.status() == (False, {"ready": 1, "expected": 2})
    registry.mark_ready(12)
    assert reader.status() == (True, {"ready": 2, "expected": 2})
    registry.forget(12)  # a worker died; the master starts another
    registry.expect(2, [11, 13])
    assert reader.status() == (False, {"ready": 1, "expected": 2})
    registry.mark_ready(13)
    registry.expect(3, [11, 13, 14])  # one more (TTIN): not ready until it serves
    assert reader.status() == (False, {"ready": 2, "expected": 3})
    registry.mark_ready(14)
    assert reader.status() == (True, {"ready": 3, "expected": 3})
    registry.expect(2, [11, 13, 14])  # one fewer (TTOU): ready while the one stopping finishes
    assert reader.status() == (True, {"ready": 3, "expected": 2})
    assert not list(tmp_path.glob(".*.tmp"))  # written by renaming: no half files left
    registry.remove()
    assert reader.status()[0] is False and not tmp_path.exists()


def test_a_registry_folder_made_again_by_someone_else_is_not_written_through(tmp_path, caplog):
    """The registry folder lies in /dev/shm, which every user can write in, under a name any user
    can list. Removed while the server ran (systemd-logind's RemoveIPC), it was made again
    with `exist_ok`, so a folder another user had made at its name first was taken as the
    server's: that user could plant a link at the name the master stages its state under, and
    the master then wrote through it into a file of the server's user, and could forge what
    /ready says. A link at the folder's name was followed the same way."""
    import json
    import os
    import shutil

    from legacy_assistant.serving.readiness import WorkerRegistry

    folder = tmp_path / "registry"
    folder.mkdir(mode=0o700)
    master, worker, reader = WorkerRegistry(folder), WorkerRegistry(folder), WorkerRegistry(folder)
    master.expect(1, [11])
    worker.mark_ready(11)
    assert reader.status() == (True, {"ready": 1, "expected": 1})
    victim = tmp_path / "victim"
    victim.write_text("precious")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    for taken in ("a folder others can write in", "a link to another folder"):
        shutil.rmtree(folder, ignore_errors=True)
        if folder.is_symlink():
            folder.unlink()
        if taken == "a folder others can write in":
            folder.mkdir()
            folder.chmod(0o777)
            planted = folder
        else:
            folder.symlink_to(elsewhere, target_is_directory=True)
            planted = elsewhere
        (planted / f".{WorkerRegistry.STATE}.{os.getpid()}.tmp").symlink_to(victim)
        (planted / f".12.ready.{os.getpid()}.tmp").symlink_to(victim)
        (planted / WorkerRegistry.STATE).write_text(json.dumps({"expected": 1, "pids": [99]}))
        (planted / "99.ready").write_text("")
        with caplog.at_level("ERROR", logger="legacy_assistant.serving.readiness"):
            master.remake_if_removed()
            master.expect(1, [12])  # a new worker: the state changed
            worker.mark_ready(12)
            worker.keep_ready(12)
        assert victim.read_text() == "precious", taken
        assert reader.status() == (False, {"ready": 0, "expected": 0}), taken  # not what was planted
        assert not master.intact()
        assert "not the folder this server made" in caplog.text, taken
        for name in list(os.listdir(planted)):
            os.unlink(planted / name)


def test_the_state_a_failed_write_left_out_is_written_at_the_next_look(tmp_path, monkeypatch, caplog):
    """/dev/shm full for a moment as the master wrote its state: the master's next look (every
    second or so, with the same workers) writes it, rather than /ready answering 503 until a
    worker comes or goes."""
    import os

    from legacy_assistant.serving.readiness import WorkerRegistry

    master, worker, reader = WorkerRegistry(tmp_path), WorkerRegistry(tmp_path), WorkerRegistry(tmp_path)
    replace = os.replace

    def full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with caplog.at_level("INFO", logger="legacy_assistant.serving.readiness"):
        master.expect(1, [11])
        master.expect(1, [11])  # a second later, still full: tried again, not logged again
    assert caplog.text.count("cannot write workers.json") == 1
    monkeypatch.setattr(os, "replace", replace)  # room again
    worker.mark_ready(11)
    assert reader.status() == (False, {"ready": 0, "expected": 0})
    master.expect(1, [11])
    assert reader.status() == (True, {"ready": 1, "expected": 1})
    assert not master.intact()  # a write failed: it decides no early death


def test_the_served_marker_a_failed_write_left_out_is_written_by_the_next_turn(tmp_path, monkeypatch):
    """Without the marker the master takes every later death of a worker for one before any
    served, and stops a serving server after a few."""
    import os

    from legacy_assistant.serving.readiness import WorkerRegistry

    worker = WorkerRegistry(tmp_path)
    replace = os.replace

    def full_for_the_marker(source, target):
        if str(target).endswith(WorkerRegistry.SERVED):
            raise OSError(28, "No space left on device")
        return replace(source, target)

    monkeypatch.setattr(os, "replace", full_for_the_marker)
    worker.mark_ready(11)
    monkeypatch.setattr(os, "replace", replace)  # room again
    assert (tmp_path / "11.ready").exists() and not worker.has_served()
    worker.keep_ready(11)  # the worker's next turn
    assert WorkerRegistry(tmp_path).has_served()


def _worker_loop_turn(registry, pid):
    """One turn of a serving gunicorn worker's loop (its heartbeat), for ``registry``."""
    from types import SimpleNamespace

    from legacy_assistant.serving.server import ModelWorker

    worker = ModelWorker.__new__(ModelWorker)
    worker.tmp, worker.app = SimpleNamespace(notify=lambda: None), SimpleNamespace(registry=registry)
    worker.booted, worker.pid = True, pid
    worker.notify()


def test_a_registry_folder_removed_while_the_server_runs_is_made_again(tmp_path, caplog):
    """systemd-logind removes a user's files in /dev/shm as the user's last session ends
    (RemoveIPC=yes): /ready answered 503 for good after it, though every worker served."""
    import shutil
    from types import SimpleNamespace

    from legacy_assistant.serving.readiness import WorkerRegistry
    from legacy_assistant.serving.server import ReloadingArbiter

    folder = tmp_path / "registry"
    folder.mkdir()
    master, reader = WorkerRegistry(folder), WorkerRegistry(folder)
    workers = {pid: WorkerRegistry(folder) for pid in (11, 12)}  # each process has its own
    arbiter = SimpleNamespace(app=SimpleNamespace(registry=master), num_workers=2, WORKERS={11: None, 12: None})
    ReloadingArbiter._tell_registry(arbiter)
    for pid, registry in workers.items():
        registry.mark_ready(pid)
    assert reader.status() == (True, {"ready": 2, "expected": 2})
    shutil.rmtree(folder)
    assert reader.status()[0] is False
    with caplog.at_level("WARNING", logger="legacy_assistant.serving.readiness"):
        ReloadingArbiter._tell_registry(arbiter)  # the master's loop, every second or so
    assert "was removed while the server ran: made again" in caplog.text
    assert reader.status() == (False, {"ready": 0, "expected": 2})
    for pid, registry in workers.items():
        _worker_loop_turn(registry, pid)
    assert reader.status() == (True, {"ready": 2, "expected": 2})
    assert not master.intact()  # what it said of earlier workers is gone: it decides no early death
    master.remove()
    workers[11]._ready_checked -= WorkerRegistry.KEEP_READY_EVERY_S  # a second later: it looks again
    _worker_loop_turn(workers[11], 11)  # the server ending removes it: no worker makes it again
    assert not folder.exists()


def test_ttou_stops_a_worker_still_loading_before_one_that_serves(tmp_path, monkeypatch):
    """A TTOU soon after a TTIN: gunicorn's own choice, the oldest worker, stopped one that served
    while the new one loaded (and, repeated, every serving worker: nothing listened for 34 s)."""
    import logging
    from types import SimpleNamespace

    from gunicorn.arbiter import Arbiter

    from legacy_assistant.serving.readiness import WorkerRegistry
    from legacy_assistant.serving.server import ReloadingArbiter

    signalled: list[int] = []
    monkeypatch.setattr(Arbiter, "kill_worker", lambda self, pid, sig: signalled.append(pid))
    registry = WorkerRegistry(tmp_path)
    for pid in (11, 12):  # the two serving workers; 13, started by a TTIN, still loads
        WorkerRegistry(tmp_path).mark_ready(pid)
    arbiter = ReloadingArbiter.__new__(ReloadingArbiter)
    arbiter.app, arbiter._num_workers, arbiter.retired = SimpleNamespace(registry=registry), 2, set()
    # what gunicorn's own manage_workers reads beside the workers
    arbiter.log, arbiter.LISTENERS = logging.getLogger("tests.arbiter"), []
    arbiter.cfg, arbiter._last_logged_active_worker_count = SimpleNamespace(enable_backlog_metric=False), None
    arbiter.WORKERS = {pid: SimpleNamespace(age=age) for age, pid in enumerate((11, 12, 13))}
    arbiter.manage_workers()
    assert signalled == [13] and arbiter.retired == {13}
    WorkerRegistry(tmp_path).mark_ready(13)  # it finishes loading before it stops: still the one that goes
    arbiter.manage_workers()  # the master's next turn: asked once, it is not signalled again
    assert signalled == [13]
    del arbiter.WORKERS[13]
    arbiter._num_workers = 1  # with every worker serving, the oldest goes, as in gunicorn
    arbiter.manage_workers()
    assert signalled == [13, 11]


def test_after_a_ttin_ready_counts_the_new_worker_before_it_is_forked(tmp_path, monkeypatch):
    """A TTIN's worker is the master's child (in ps, in /proc) as soon as it is forked, and the
    master wrote the count it wants only after the fork: /ready meanwhile answered 200, "1 of
    1", with the new worker loading."""
    from types import SimpleNamespace

    from gunicorn.arbiter import Arbiter

    from legacy_assistant.serving.readiness import WorkerRegistry
    from legacy_assistant.serving.server import ReloadingArbiter

    registry, reader = WorkerRegistry(tmp_path), WorkerRegistry(tmp_path)
    registry.expect(1, [11])
    WorkerRegistry(tmp_path).mark_ready(11)
    at_the_fork = []

    def fork(self):  # gunicorn's manage_workers: starts the workers num_workers asks for
        at_the_fork.append(reader.status())
        self.WORKERS[12] = SimpleNamespace(age=1)

    monkeypatch.setattr(Arbiter, "manage_workers", fork)
    arbiter = ReloadingArbiter.__new__(ReloadingArbiter)
    arbiter.app, arbiter._num_workers, arbiter.retired = SimpleNamespace(registry=registry), 2, set()
    arbiter.WORKERS = {11: SimpleNamespace(age=0)}
    arbiter.manage_workers()  # gunicorn's TTIN handler has raised num_workers to 2, then calls this
    assert at_the_fork == [(False, {"ready": 1, "expected": 2})]
    assert reader.status() == (False, {"ready": 1, "expected": 2})


def test_ready_is_503_once_the_server_stops(tmp_path, make_client, monkeypatch):
    """The workers finish what they accepted after a SIGTERM, and answer requests that come
    on kept-alive connections meanwhile: /ready among them must not say "ready"."""
    from types import SimpleNamespace

    from gunicorn.arbiter import Arbiter

    from legacy_assistant.serving.readiness import WorkerRegistry
    from legacy_assistant.serving.server import ReloadingArbiter

    monkeypatch.setattr(Arbiter, "stop", lambda self, graceful=True: None)  # no workers to stop here
    registry, reader = WorkerRegistry(tmp_path), WorkerRegistry(tmp_path)
    registry.expect(2, [11, 12])
    registry.mark_ready(11)
    registry.mark_ready(12)
    client = make_client(READINESS=reader.status)
    assert client.get("/ready").status_code == 200
    arbiter = ReloadingArbiter.__new__(ReloadingArbiter)
    arbiter.app, arbiter._num_workers, arbiter.WORKERS = SimpleNamespace(registry=registry), 2, {11: None, 12: None}
    arbiter.stop()
    assert reader.status() == (False, {"ready": 2, "expected": 2, "stopping": True})
    response = client.get("/ready")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert response.get_json()["error"] == {"code": "not_ready", "message": "the server is stopping"}


def test_the_page_template_is_never_served_raw(client):
    assert client.get("/static/index.html").status_code == 404
    page = client.get("/").get_data(as_text=True)
    assert "{{" not in page and "{%" not in page


def test_a_range_past_a_static_files_end_is_416_with_its_length(client):
    """RFC 9110: a 416 says how long the file is (``Content-Range: bytes */N``), so a client can
    ask again; the JSON error keeps that header of werkzeug's answer."""
    size = len(CSS.read_bytes())
    response = client.get("/static/chat.css", headers={"Range": "bytes=999999-"})
    assert response.status_code == 416 and response.mimetype == "application/json"
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert client.get("/static/chat.css", headers={"Range": "bytes=0-9"}).status_code == 206


@pytest.mark.parametrize("suffix", [1, 10**6, 10**20])
def test_a_suffix_range_longer_than_a_static_file_is_the_whole_file_as_a_part(client, suffix):
    """RFC 9110 (14.1.3): a suffix range (``bytes=-N``, the last N bytes) longer than the file
    stands for the whole file, and is satisfiable: Werkzeug answered 416 to one that asked for
    more bytes than the file has (a client reading a log's or a file's tail, resuming a download)."""
    data = CSS.read_bytes()
    suffix = len(data) + suffix
    response = client.get("/static/chat.css", headers={"Range": f"bytes=-{suffix}"})
    assert response.status_code == 206 and response.data == data
    assert response.headers["Content-Range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    part = client.get("/static/chat.css", headers={"Range": "bytes=-10"})  # a suffix within the file
    assert part.status_code == 206 and part.data == data[-10:]


@pytest.mark.parametrize("given", ["items=0-5", "bytes=abc", "pages", "bytes=0-1,5-6"])
def test_a_range_of_another_unit_or_none_at_all_is_ignored(client, given):
    """RFC 9110 (14.2): a server ignores a Range in a unit it does not know, and may ignore an
    invalid one, or one of several ranges (which Werkzeug does not serve): the whole file, not a 416."""
    response = client.get("/static/chat.css", headers={"Range": given})
    assert response.status_code == 200 and response.data == CSS.read_bytes()


def test_an_if_match_a_static_file_fails_is_a_json_412_and_one_it_meets_serves_the_file(client):
    """RFC 9110 (13.1.1): ``If-Match: *`` holds for any file there is (Werkzeug answered 412), an
    etag that is not the file's fails before any Range is served (Werkzeug sent the part, 206),
    and the 412 is the JSON error of every refusal (Werkzeug's carried the whole file as its body);
    If-Unmodified-Since, which Werkzeug ignored, counts where no If-Match is sent."""
    etag = client.get("/static/chat.css").headers["ETag"]
    for given in ("*", etag, f'"other", {etag}'):
        response = client.get("/static/chat.css", headers={"If-Match": given})
        assert response.status_code == 200 and response.data == CSS.read_bytes(), given
    assert client.get("/static/chat.css", headers={"If-Match": "*", "Range": "bytes=0-9"}).status_code == 206
    for headers in ({"If-Match": '"other"'}, {"If-Match": f"W/{etag}"}, {"If-Match": '"other"', "Range": "bytes=0-9"}):
        for method in ("GET", "HEAD"):
            response = client.open("/static/chat.css", method=method, headers=headers)
            assert response.status_code == 412, (method, headers)
            assert response.mimetype == "application/json" and "Content-Range" not in response.headers
            if method == "GET":
                assert response.get_json()["error"]["code"] == "precondition_failed"
    assert client.get("/static/chat.css", headers={"If-Match": "*", "If-None-Match": etag}).status_code == 304
    assert client.get("/static/nope.css", headers={"If-Match": "*"}).status_code == 404
    # If-Unmodified-Since, which Werkzeug ignored: a file changed since the date fails it
    past, future = "Mon, 01 Jan 1990 00:00:00 GMT", "Fri, 01 Jan 2100 00:00:00 GMT"
    response = client.get("/static/chat.css", headers={"If-Unmodified-Since": past})
    assert response.status_code == 412 and response.get_json()["error"]["code"] == "precondition_failed"
    assert client.get("/static/chat.css", headers={"If-Unmodified-Since": future}).status_code == 200
    assert client.get("/static/chat.css", headers={"If-Unmodified-Since": past, "If-Match": etag}).status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_failed_precondition_is_412_before_a_range_past_the_files_end(client, method):
    """RFC 9110 (13.2.2): If-Match and If-Unmodified-Since are evaluated before a Range; Werkzeug
    answered the range past the end 416 before the precondition was looked at."""
    etag = client.get("/static/chat.css").headers["ETag"]
    past = "Mon, 01 Jan 1990 00:00:00 GMT"
    for headers in ({"If-Match": '"other"', "Range": "bytes=999999-"},
                    {"If-Unmodified-Since": past, "Range": "bytes=999999-"},
                    {"If-Match": '"other"', "If-Range": etag, "Range": "bytes=999999-"}):
        response = client.open("/static/chat.css", method=method, headers=headers)
        assert response.status_code == 412, headers
        assert response.mimetype == "application/json" and "Content-Range" not in response.headers
        if method == "GET":
            assert response.get_json()["error"]["code"] == "precondition_failed"


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_static_file_the_client_holds_is_304_whatever_range_it_asks_for(client, method):
    """RFC 9110 (13.2.2): an If-None-Match that matches (else an If-Modified-Since the file is not
    newer than) is 304 before any Range: Werkzeug sent the part (206), or 416 for one past the end."""
    etag = client.get("/static/chat.css").headers["ETag"]
    future = "Fri, 01 Jan 2100 00:00:00 GMT"
    for headers in ({"If-None-Match": etag, "Range": "bytes=0-9"}, {"If-None-Match": "*", "Range": "bytes=0-9"},
                    {"If-None-Match": etag, "Range": "bytes=999999-"},
                    {"If-Modified-Since": future, "Range": "bytes=999999-"}):
        response = client.open("/static/chat.css", method=method, headers=headers)
        assert response.status_code == 304 and not response.data, headers
        assert "Content-Range" not in response.headers
    # a client that does not hold it gets the range, or the 416 of one past the end
    response = client.open("/static/chat.css", method=method, headers={"If-None-Match": '"other"', "Range": "bytes=0-9"})
    assert response.status_code == 206 and response.headers["Content-Range"].startswith("bytes 0-9/")
    response = client.open("/static/chat.css", method=method,
                           headers={"If-None-Match": '"other"', "Range": "bytes=999999-"})
    assert response.status_code == 416


def test_an_if_range_holds_only_for_the_files_strong_etag_or_its_exact_date(client):
    """RFC 9110 (13.1.5): If-Range compares an entity tag strongly (a weak one never holds) and a
    date exactly: Werkzeug served the part for the weak tag and for any date not before the
    file's. Where it does not hold, the whole file comes (200), never a 416."""
    whole = client.get("/static/chat.css")
    etag, modified = whole.headers["ETag"], whole.headers["Last-Modified"]
    for if_range, status in ((etag, 206), (modified, 206), (f"W/{etag}", 200), ('"other"', 200),
                             ("Fri, 01 Jan 2100 00:00:00 GMT", 200), ("Mon, 01 Jan 1990 00:00:00 GMT", 200)):
        response = client.get("/static/chat.css", headers={"If-Range": if_range, "Range": "bytes=0-9"})
        assert response.status_code == status, if_range
        assert response.data == (CSS.read_bytes()[:10] if status == 206 else CSS.read_bytes())
    assert client.get("/static/chat.css", headers={"If-Range": '"other"', "Range": "bytes=999999-"}).status_code == 200


@pytest.mark.parametrize("date", ["Mon, 01 Jan 99999999999 00:00:00 GMT", "Mon, 01 Jan 2020 99999999999:00:00 GMT"])
def test_a_conditional_date_past_what_a_clock_holds_is_ignored_not_a_500(client, date):
    """RFC 9110 (13.1.3, 13.1.4, 13.1.5): a date header that is no valid date is ignored.
    Werkzeug's date parser let an OverflowError out for a year or an hour this large."""
    whole = CSS.read_bytes()
    for headers in ({"If-Modified-Since": date}, {"If-Unmodified-Since": date},
                    {"If-Range": date, "Range": "bytes=0-9"}):
        response = client.get("/static/chat.css", headers=headers)
        assert response.status_code == 200, headers
        assert response.data == whole


def test_a_static_file_named_as_a_folder_is_not_found(client):
    """"chat.js/" is no file: served, the page's relative links in it would point one folder down."""
    response = client.get("/static/chat.js/")
    assert response.status_code == 404 and response.is_json
    assert client.get("/static/chat.js").status_code == 200


def test_a_metrics_folder_keeps_every_file_that_is_not_a_metrics_file(tmp_path):
    """PROMETHEUS_MULTIPROC_DIR may be a folder holding other things, a SQLite conversation
    store among them (``.db`` too): only prometheus_client's files of an earlier run go."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    from legacy_assistant.serving.metrics_folder import clear_stale_metrics

    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has this pid
    # a running server's process (here one whose command line names the project, as a server's
    # does) is another server sharing the folder: its files stay; a pid now used by any other
    # process is a crashed run's, reused: its files would keep that run's counts, so they go
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "legacy_assistant.serving.server"])
    other = subprocess.Popen(["sleep", "60"])
    try:
        # Popen returns once the child's exec closed its descriptors, a moment before the kernel
        # gives the new program its command line (read empty meanwhile, on a busy machine)
        started = time.monotonic()
        while b"legacy_assistant" not in Path(f"/proc/{server.pid}/cmdline").read_bytes():
            assert time.monotonic() - started < 30, "the stand-in server never showed its command line"
            time.sleep(0.01)
        ours = [f"counter_{dead}.db", f"histogram_{dead}.db", f"gauge_livesum_{dead + 1}.db", f"summary_{dead + 2}.db",
                f"counter_{other.pid}.db"]
        running = [f"counter_{server.pid}.db", f"gauge_all_{server.pid}.db"]
        theirs = ["conversations.db", "conversations.db-wal", "precious.db", "counter.db", "notes.txt", *running]
        for name in ours + theirs:
            (tmp_path / name).write_bytes(b"x")
        clear_stale_metrics(str(tmp_path))
    finally:
        server.kill()
        other.kill()
        server.wait()
        other.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)
    clear_stale_metrics(str(tmp_path / "new"))  # made when missing
    assert (tmp_path / "new").is_dir()


def test_an_ended_workers_metrics_files_of_zeros_go_and_files_with_counts_stay(tmp_path):
    """A worker that dies before serving (a damaged model: gunicorn starts another every few
    seconds) left a counter file of zeros each, for as long as the server ran."""
    from prometheus_client.mmap_dict import MmapedDict

    from legacy_assistant.serving.metrics_folder import remove_zero_metrics

    def write(name, **values):
        written = MmapedDict(str(tmp_path / name))
        for key, value in values.items():
            written.write_value(key, value, 0.0)
        written.close()

    write("counter_111.db", fallbacks=0.0, requests=0.0)
    write("histogram_111.db", bucket=0.0)
    write("gauge_livesum_111.db", memory=5.0)  # live gauges are mark_process_dead's
    write("counter_222.db", fallbacks=0.0, requests=3.0)  # served: its counts stay in the totals
    write("histogram_222.db", bucket=0.0)
    (tmp_path / "counter_333.db").write_bytes(b"\x10\x00\x00\x00")  # torn: left to the reader
    assert remove_zero_metrics(str(tmp_path), 111) == 2
    assert remove_zero_metrics(str(tmp_path), 222) == 1
    assert remove_zero_metrics(str(tmp_path), 333) == 0
    assert remove_zero_metrics(str(tmp_path), 444) == 0  # nothing written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_222.db", "counter_333.db", "gauge_livesum_111.db"]


def test_the_metrics_folders_of_killed_servers_are_removed_at_the_next_start(tmp_path, monkeypatch):
    """A server killed with SIGKILL left its own metrics folder in the temporary folder for good
    (77 of them here). The next start removes those whose master has ended, as far as it can
    know: a folder naming its master in this PID namespace, or an older one whose files' pids
    are none of them a running server's."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from legacy_assistant.serving.metrics_folder import METRICS_DIR_OWNER, make_metrics_dir
    from legacy_assistant.serving.processes import pid_namespace

    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    namespace = pid_namespace()

    def folder(name, master=None, pid_ns=namespace, files=()):
        path = tmp_path / f"legacy-assistant-metrics-{name}"
        path.mkdir()
        if master is not None:
            (path / METRICS_DIR_OWNER).write_text(json.dumps({"master": master, "pid_ns": pid_ns}))
        for file in files:
            (path / file).write_bytes(b"x")
        return path

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "legacy_assistant.serving.server"])
    try:
        gone = [folder("killed", master=dead, files=[f"counter_{dead}.db"]),
                folder("older-killed", files=[f"counter_{dead}.db", f"histogram_{dead + 1}.db"])]
        kept = [folder("running", master=os.getpid()),
                folder("other-namespace", master=dead, pid_ns="pid:[1]"),
                folder("older-running", files=[f"counter_{dead}.db", f"counter_{server.pid}.db"]),
                folder("starting"),  # no master named yet, and no files: may be a server's, starting
                tmp_path / "something-else"]
        kept[-1].mkdir()
        unreadable = folder("unreadable", master=dead)  # another user's, mode 0700, in a shared /tmp
        kept.append(unreadable)
        if os.getuid() == 0:  # root judges any user's folder: its master's pid is as plain to it
            theirs = folder("another-users", master=dead)
            os.chown(theirs, 65534, 65534)
            gone.append(theirs)
        real_exists = Path.exists

        def exists(path, *args, **kwargs):
            if unreadable in path.parents:  # what a folder of mode 0700 says to anyone but its owner
                raise PermissionError(13, "Permission denied", str(path))
            return real_exists(path, *args, **kwargs)

        monkeypatch.setattr(Path, "exists", exists)
        made = Path(make_metrics_dir(str(tmp_path)))
        monkeypatch.undo()
    finally:
        server.kill()
        server.wait()
    assert [path.name for path in gone if path.exists()] == []
    assert [path.name for path in kept if not path.exists()] == []  # named, should one ever go
    assert json.loads((made / METRICS_DIR_OWNER).read_text()) == {"master": os.getpid(), "pid_ns": namespace}
    assert made.name.startswith("legacy-assistant-metrics-")


def test_a_metrics_folder_that_cannot_be_one_is_refused_before_gunicorn_starts(tmp_path):
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.serving.metrics_folder import check_metrics_dir

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR=.*a-file is not a folder"):
        check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(a_file)})
    with pytest.raises(ConfigError, match="cannot write in .*a-file"):
        check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(a_file / "below")})
    check_metrics_dir({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "to" / "be" / "made")})  # fine: made at start
    check_metrics_dir({})


def test_a_second_quit_signal_during_the_first_does_not_deadlock_the_worker():
    """SIGINT from the terminal, then SIGQUIT from the master, handled inside the first: the
    thread pool's shutdown lock is not taken twice."""
    import threading
    from types import SimpleNamespace

    from legacy_assistant.serving.server import ModelWorker

    worker = ModelWorker.__new__(ModelWorker)
    worker.alive = True
    worker.cfg = SimpleNamespace(worker_int=lambda w: None)
    lock = threading.Lock()  # as ThreadPoolExecutor's shutdown lock: not re-entrant

    def shutdown(wait=True):
        with lock:
            worker.handle_quit(3, None)  # the second signal, arriving while the first is handled

    worker.tpool = SimpleNamespace(shutdown=shutdown)
    outcome = []

    def quit_once():
        try:
            worker.handle_quit(2, None)
        except SystemExit as exc:
            outcome.append(exc.code)

    thread = threading.Thread(target=quit_once, daemon=True)
    thread.start()
    thread.join(5)
    assert outcome == [0] and not thread.is_alive()


def _post_with_input(client, stream, **environ) -> tuple[str, dict]:
    """POST /api/v1/parse straight through the WSGI app with ``stream`` as the body: (status, JSON)."""
    statuses: list[str] = []
    body = b"".join(client.application(
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/parse", "SERVER_NAME": "t", "SERVER_PORT": "80",
         "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_TYPE": "application/json", "wsgi.url_scheme": "http",
         "wsgi.input": stream, "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
         "wsgi.run_once": False, "REMOTE_ADDR": "127.0.0.1", **environ},
        lambda status, headers, exc_info=None: statuses.append(status),
    ))
    return statuses[-1], json.loads(body)


def test_a_body_shorter_than_its_length_is_408_and_a_bad_chunk_400(client):
    """The development server reports both as ClientDisconnected: a chunked body it cannot read
    is invalid HTTP (400, as gunicorn answers it), a body that stops before its Content-Length
    is a client that stopped sending (408)."""
    import io

    from werkzeug.exceptions import ClientDisconnected

    class Unreadable(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise ClientDisconnected()

    status, body = _post_with_input(client, Unreadable(), HTTP_TRANSFER_ENCODING="chunked",
                                    **{"wsgi.input_terminated": True})
    assert status.startswith("400") and body["error"]["code"] == "bad_request", body
    status, body = _post_with_input(client, io.BytesIO(b'{"text": "h'), CONTENT_LENGTH="100")
    assert status.startswith("408") and body["error"]["code"] == "request_timeout", body


def test_under_gunicorn_a_short_body_is_408_a_stalled_chunk_408_and_a_compressed_one_415(client):
    """gunicorn (``wsgi.input_terminated``) hands over what came before the client closed its side
    as if it were the whole body; a chunked body whose next bytes did not come in time fails the
    read with the socket's timeout; a body sent "gzip, chunked" comes through still compressed."""
    import io

    status, body = _post_with_input(client, io.BytesIO(b'{"text": "hi"}'), CONTENT_LENGTH="100",
                                    **{"wsgi.input_terminated": True})
    assert status.startswith("408") and body["error"]["code"] == "request_timeout", body

    class Stalled(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, buffer):
            raise BlockingIOError(11, "Resource temporarily unavailable")  # SO_RCVTIMEO ran out

    status, body = _post_with_input(client, Stalled(), HTTP_TRANSFER_ENCODING="chunked",
                                    **{"wsgi.input_terminated": True})
    assert status.startswith("408") and body["error"]["code"] == "request_timeout", body
    compressed = gzip.compress(b'{"text": "hi"}')
    for coding in ("gzip, chunked", "deflate,chunked", "x-gzip , chunked"):
        status, body = _post_with_input(client, io.BytesIO(compressed), HTTP_TRANSFER_ENCODING=coding,
                                        **{"wsgi.input_terminated": True})
        assert status.startswith("415") and body["error"]["code"] == "unsupported_media_type", (coding, body)
        assert "uncompressed" in body["error"]["message"]
    status, body = _post_with_input(client, io.BytesIO(b'{"text": "hi"}'), HTTP_TRANSFER_ENCODING="chunked",
                                    **{"wsgi.input_terminated": True})
    assert status.startswith("200"), body


def test_errors_gunicorn_answers_are_json_on_releases_without_its_newer_error_classes(monkeypatch):
    """gunicorn before 25 has no ``ExpectationFailed``: naming it in the error handler made every
    error gunicorn answers (400, 414, 431, 501) a reset connection with no answer."""

    from gunicorn.config import Config
    from gunicorn.glogging import Logger
    from gunicorn.http import errors as gunicorn_errors

    from legacy_assistant.serving.server import ModelWorker

    unsupported = gunicorn_errors.UnsupportedTransferCoding
    monkeypatch.delattr(gunicorn_errors, "ExpectationFailed")
    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()
    worker.log = Logger(worker.cfg)
    for exc, status in ((gunicorn_errors.LimitRequestLine(9000, 4094), 414), (unsupported("br, chunked"), 501)):
        answer = _handled_error(worker, exc)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:100]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]


class _Lines:
    """A worker's log that keeps each line it is given, formatted."""

    def __init__(self):
        self.lines = []

    def warning(self, msg, *args, **kwargs):
        self.lines.append(msg % args if args else msg)

    debug = info = exception = warning

    def access(self, *args, **kwargs):
        pass


def _handled_error(worker, error):
    """The answer ``worker.handle_error`` writes for ``error`` to a client of a socket pair."""
    import socket

    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker.handle_error(None, ours, ("127.0.0.1", 1), error)
        ours.shutdown(socket.SHUT_WR)
        return theirs.recv(65536)


def test_gunicorns_line_on_a_request_it_refuses_names_no_sender():
    """gunicorn's warning on why it refused a request quoted the request line it could not read
    (a tab sent as it is in a sender id), or the path outside SCRIPT_NAME (a client that left the
    prefix out): a conversation's sender id in full, the only key to its transcript, which every
    other log line writes as a digest."""
    import socket as socket_module

    from gunicorn.config import Config
    from gunicorn.http import errors as gunicorn_errors
    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving.server import ModelWorker
    from legacy_assistant.stores.base import sender_digest

    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()
    digest = sender_digest("alice\tsecret-id")  # the sender the access log names by this digest
    hidden = f"/api/v1/conversations/<sender-sha256:{digest}>"
    outside = next(RequestParser(worker.cfg, iter([b"GET /api/v1/conversations/alice%09secret-id HTTP/1.1\r\n"
                                                   b"Host: localhost\r\n\r\n"]), ("127.0.0.1", 1)))
    for req, exc, logged in (
        (None, gunicorn_errors.InvalidRequestLine("GET /api/v1/conversations/alice\tsecret-id HTTP/1.1"),
         f"Invalid HTTP request line: 'GET {hidden} HTTP/1.1'"),
        (None, gunicorn_errors.InvalidRequestLine("GET /api/v1/conversations/alice%09secret-id?x\t HTTP/1.1"),
         f"Invalid HTTP request line: 'GET {hidden} HTTP/1.1'"),
        # the app reads the path decoded: a prefix sent percent-encoded is a conversation's too
        (None, gunicorn_errors.InvalidRequestLine("GET /api/v1/%63onversations%2Falice\tsecret-id HTTP/1.1"),
         f"Invalid HTTP request line: 'GET {hidden} HTTP/1.1'"),
        (None, gunicorn_errors.InvalidRequestLine("GET /health\t HTTP/1.1"),
         "Invalid HTTP request line: 'GET /health\\t HTTP/1.1'"),  # no sender: as it came
        (outside, gunicorn_errors.ConfigurationProblem(
            "Request path '/api/v1/conversations/alice%09secret-id' does not start with SCRIPT_NAME '/bot'"),
         f"Configuration problem: Request path '{hidden}' does not start with SCRIPT_NAME '/bot'"),
    ):
        worker.log = _Lines()
        ours, theirs = socket_module.socketpair()
        with ours, theirs:
            worker.handle_error(req, ours, ("127.0.0.1", 1), exc)
            ours.shutdown(socket_module.SHUT_WR)
            answer = theirs.recv(65536)
        assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
        assert not [shown for shown in worker.log.lines if "secret-id" in shown], worker.log.lines
        assert f"Invalid request from ip=127.0.0.1: {logged}" in worker.log.lines, worker.log.lines


def test_gunicorns_line_on_a_path_with_a_space_in_it_names_no_part_of_the_sender():
    """A raw space in a conversation's path split the request line where gunicorn did not expect:
    it refused the rest as the HTTP version (``def HTTP/1.1`` for ``abc def``) or the path as the
    method, and its warning quoted a piece of the sender id. It quotes the request line refused,
    the sender id (all of it, as the client meant it) as the digest the logs write."""

    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving.server import ModelWorker
    from legacy_assistant.stores.base import sender_digest

    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()
    hidden = f"/api/v1/conversations/<sender-sha256:{sender_digest('alice secret-id')}>"
    for sent, logged in (
        (b"GET /api/v1/conversations/alice secret-id HTTP/1.1", f"Invalid HTTP request line: 'GET {hidden} HTTP/1.1'"),
        (b"GET /api/v1/conversations/alice secret-id", f"Invalid HTTP request line: 'GET {hidden}'"),
        (b"/api/v1/conversations/alice secret-id HTTP/1.1", f"Invalid HTTP request line: '{hidden} HTTP/1.1'"),
        (b"GET /health secret-id HTTP/1.1", "Invalid HTTP Version: 'secret-id HTTP/1.1'"),  # no sender: as it came
    ):
        with pytest.raises(Exception) as raised:
            next(RequestParser(worker.cfg, iter([sent + b"\r\nHost: localhost\r\n\r\n"]), ("127.0.0.1", 1)))
        worker.log = _Lines()
        answer = _handled_error(worker, raised.value)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        assert f"Invalid request from ip=127.0.0.1: {logged}" in worker.log.lines, worker.log.lines
        if b"conversations" in sent:
            assert not [shown for shown in worker.log.lines if "secret-id" in shown], worker.log.lines


def test_gunicorns_line_on_a_request_that_failed_past_the_app_names_no_sender():
    """A request that fails outside the app (gunicorn answers 500) is logged by gunicorn with its
    path as sent: a conversation's sender id is the digest the access log writes."""
    import logging
    import socket as socket_module

    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving.server import ModelWorker, ServerLog
    from legacy_assistant.stores.base import sender_digest

    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()
    worker.log = ServerLog(worker.cfg)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    worker.log.error_log.addHandler(handler)
    req = next(RequestParser(worker.cfg, iter([b"GET /api/v1/conversations/alice%09secret-id?x=1 HTTP/1.1\r\n"
                                               b"Host: localhost\r\n\r\n"]), ("127.0.0.1", 1)))
    ours, theirs = socket_module.socketpair()
    with ours, theirs:
        try:
            raise RuntimeError("the response could not be sent")
        except RuntimeError as exc:
            worker.handle_error(req, ours, ("127.0.0.1", 1), exc)
        ours.shutdown(socket_module.SHUT_WR)
        assert theirs.recv(65536).startswith(b"HTTP/1.1 500 ")
    lines = [record.getMessage() for record in records]
    hidden = f"/api/v1/conversations/<sender-sha256:{sender_digest('alice' + chr(9) + 'secret-id')}>"
    assert [line for line in lines if line.startswith(f"Error handling request GET {hidden}")], lines
    assert not [line for line in lines if "secret-id" in line], lines


@pytest.mark.parametrize("sent", [b"GET /api/v1/conversations/alice%09secret-id HTT",
                                  b"GET /health HTTP/1.1\r\nAuthorization: Bearer secret-id\r\n"])
def test_gunicorns_debug_line_on_a_client_gone_mid_request_quotes_nothing_it_sent(sent):
    """A client that closed in the middle of its request line or headers: gunicorn's DEBUG line
    quoted all that had come, a conversation's sender id or an API token with it. It says how
    many bytes came."""
    import logging
    import socket as socket_module

    from gunicorn.config import Config
    from gunicorn.workers import gthread

    from legacy_assistant.serving.server import ModelWorker, ServerLog

    worker = ModelWorker.__new__(ModelWorker)  # handle() needs its settings, log and connection tables
    worker.cfg = Config()
    worker.cfg.set("loglevel", "debug")
    worker.log = ServerLog(worker.cfg)
    worker._in_flight, worker._bodies = {}, {}
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    worker.log.error_log.addHandler(handler)
    ours, theirs = socket_module.socketpair()
    with ours, theirs:
        ours.sendall(sent)
        ours.shutdown(socket_module.SHUT_WR)
        conn = gthread.TConn(worker.cfg, theirs, ("127.0.0.1", 1), ("127.0.0.1", 8000))
        conn.data_ready = True
        worker.handle(conn)
    lines = [record.getMessage() for record in records]
    assert [line for line in lines if line.startswith("Ignored premature client disconnection")], lines
    assert not [line for line in lines if "secret-id" in line], lines


def test_the_access_line_of_a_request_gunicorn_refuses_under_script_name_names_no_sender(monkeypatch, caplog):
    """Under SCRIPT_NAME, the access line of a request gunicorn refused (headers over its limits)
    wrote the path with its prefix, which the conversation path's digest did not match: the
    sender id in full. It is the path the app's own lines write, after the prefix."""
    import socket as socket_module

    from gunicorn.config import Config
    from gunicorn.http import errors as gunicorn_errors
    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving.server import ModelWorker
    from legacy_assistant.stores.base import sender_digest

    monkeypatch.setenv("SCRIPT_NAME", "/bot")
    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()

    class Quiet:
        def warning(self, msg, *args, **kwargs):
            pass

        debug = info = exception = access = warning

    worker.log = Quiet()
    hidden = f"/api/v1/conversations/<sender-sha256:{sender_digest('alice' + chr(9) + 'secret-id')}>"
    for target in (b"/bot/api/v1/conversations/alice%09secret-id", b"/bot/api/v1/%63onversations/alice%09secret-id",
                   b"/botapi/v1/conversations/alice%09secret-id",  # the app's path "/api/v1/...", which it 404s
                   b"/%62ot/api/v1/conversations/alice%09secret-id"):  # the prefix itself sent percent-encoded
        req = next(RequestParser(worker.cfg, iter([b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"]),
                                 ("127.0.0.1", 1)))
        caplog.clear()
        ours, theirs = socket_module.socketpair()
        with ours, theirs, caplog.at_level("INFO", logger="legacy_assistant.access"):
            worker.handle_error(req, ours, ("127.0.0.1", 1), gunicorn_errors.LimitRequestHeaders("too many headers"))
        (line,) = [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.access"]
        assert "secret-id" not in line, line
        assert line.startswith(f"GET {hidden} 431 "), line


def test_a_scrape_that_meets_a_metrics_file_just_removed_lists_the_folder_again(tmp_path, monkeypatch):
    """The master removes an ended worker's files of zeros while other workers may be reading
    the folder; prometheus_client forgives a vanished file only for live gauges (a 500 before)."""
    from prometheus_client.mmap_dict import MmapedDict

    from legacy_assistant.web import metrics

    for pid in (111, 222):
        written = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        key = json.dumps(["legacy_assistant_fallbacks", "legacy_assistant_fallbacks_total", {}, "help"])
        written.write_value(key, 0.0 if pid == 111 else 2.0, 0.0)
        written.close()
    monkeypatch.setenv(metrics.MULTIPROCESS_ENV, str(tmp_path))
    reads = []
    original = MmapedDict.read_all_values_from_file

    def read(path):  # the first read finds counter_111.db gone, as the master removed it meanwhile
        reads.append(path)
        if len(reads) == 1:
            (tmp_path / "counter_111.db").unlink()
            raise FileNotFoundError(path)
        return original(path)

    monkeypatch.setattr(MmapedDict, "read_all_values_from_file", staticmethod(read))
    body, _ = metrics.exposition()
    assert b"legacy_assistant_fallbacks_total 2.0" in body


def test_the_connection_handler_works_with_gunicorn_releases_that_do_not_defer(monkeypatch):
    """gunicorn before 25.2 has no deferral of silent connections (no _DEFER, no wait_for_data):
    the worker then reads at once, with the read timeout set, instead of failing every request."""
    import socket as socket_module
    from types import SimpleNamespace

    from gunicorn.workers import gthread

    from legacy_assistant.serving import server

    monkeypatch.delattr(gthread, "_DEFER")
    handled = []
    monkeypatch.setattr(gthread.ThreadWorker, "handle", lambda self, conn: handled.append(conn) or False)
    ours, theirs = socket_module.socketpair()
    try:
        conn = SimpleNamespace(initialized=False, sock=ours)  # a TConn of gunicorn 24: no data_ready
        assert server.ModelWorker.handle(server.ModelWorker.__new__(server.ModelWorker), conn) is False
        assert handled == [conn]
        assert ours.getsockopt(socket_module.SOL_SOCKET, socket_module.SO_RCVTIMEO, 16) != bytes(16)
    finally:
        ours.close()
        theirs.close()


def test_gunicorns_line_on_a_header_line_without_a_colon_quotes_no_token():
    """gunicorn refused a header line with no name before a colon (``Authorization Bearer
    <token>``, the colon forgotten) quoting all of it in its warning: the API token in the log;
    and a name with a space inside (what comes before the first colon) all of it. The warning
    quotes the header name alone; a refusal that names a header stays as it was."""

    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving.server import ModelWorker

    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()
    for sent, logged in (
        (b"Authorization Bearer s3cret-token-value",
         "Invalid HTTP Header: a line with no name before a colon, 'Authorization' and 26 more character(s) left out"
         " (they may hold a credential)"),
        (b"Cookie\tsession=s3cret-token-value",
         "Invalid HTTP Header: a line with no name before a colon, 'Cookie' and 27 more character(s) left out"
         " (they may hold a credential)"),
        (b"S3CRET-TOKEN-VALUE",  # a token's line alone: nothing of it quoted
         "Invalid HTTP Header: a line with no name before a colon, 18 character(s) left out"
         " (they may hold a credential)"),
        (b": Bearer s3cret-token-value",
         "Invalid HTTP Header: a line with no name before a colon, 27 character(s) left out"
         " (they may hold a credential)"),
        # what comes before the first colon is taken for the name: Basic credentials not encoded
        (b"Authorization Basic alice-s3cret:pw",
         "Invalid HTTP header name: 'Authorization' and 19 more character(s) left out (they may hold a credential)"),
        (b"Content-Length: 1\r\nContent-Length: 1", "Invalid HTTP Header: 'CONTENT-LENGTH'"),  # a name: as it was
        (b"Authorization : Bearer s3cret", "Invalid HTTP header name: 'Authorization '"),  # a name: as it was
    ):
        with pytest.raises(Exception) as raised:
            next(RequestParser(worker.cfg, iter([b"GET /api/v1/chat HTTP/1.1\r\nHost: localhost\r\n" + sent
                                                 + b"\r\n\r\n"]), ("127.0.0.1", 1)))
        worker.log = _Lines()
        answer = _handled_error(worker, raised.value)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        assert not [shown for shown in worker.log.lines if "s3cret" in shown.lower()], worker.log.lines
        assert f"Invalid request from ip=127.0.0.1: {logged}" in worker.log.lines, worker.log.lines


def test_gunicorns_own_words_on_a_header_refusal_are_logged_as_they_are():
    """A refusal gunicorn words itself (a head whose lines end in a bare LF) quotes no line of the
    request: its warning reads as gunicorn wrote it, not as a header line with no name whose
    first word is 'bare'."""

    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    from legacy_assistant.serving.server import ModelWorker

    worker = ModelWorker.__new__(ModelWorker)  # the handler needs only its settings and log
    worker.cfg = Config()
    with pytest.raises(Exception) as raised:
        next(RequestParser(worker.cfg, iter([b"GET /api/v1/chat HTTP/1.1\r\nHost: localhost\nX-A: 1\n\n"]),
                           ("127.0.0.1", 1)))
    worker.log = _Lines()
    answer = _handled_error(worker, raised.value)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert "Invalid request from ip=127.0.0.1: Invalid HTTP Header: 'bare LF as line terminator'" in worker.log.lines, (
        worker.log.lines
    )
