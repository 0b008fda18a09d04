"""Hot reload in one process: load beside, swap atomically, close the old model only when its
last request is done, refuse a broken model and keep serving the old one."""
import os
import re
import shutil
import threading

import pytest

from legacy_assistant.serving.assistant import Assistant
from legacy_assistant.errors import ArtifactError
from legacy_assistant.serving.hotswap import AssistantSlot, ReloadError, describe, describe_on_disk
from legacy_assistant.stores.base import MemoryStore
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER


class Switchable:
    """A model directory whose contents the test replaces between reloads."""

    def __init__(self, path, source):
        self.path = path
        self.put(source)

    def put(self, source):
        shutil.rmtree(self.path, ignore_errors=True)
        shutil.copytree(source, self.path)

    def damage(self):
        variables = next((self.path / "saved_model" / "variables").glob("variables.data-*"))
        variables.write_bytes(variables.read_bytes()[:100])


@pytest.fixture
def served(tmp_path, tiny_model_dir):
    model = Switchable(tmp_path / "model", tiny_model_dir)
    store = MemoryStore()
    slot = AssistantSlot(Assistant.load(model.path, store=store, seed=0),
                         lambda: Assistant.load(model.path, store=store, seed=0))
    yield model, slot
    slot.close()


def closed(assistant):
    from legacy_assistant.errors import ModelClosed

    try:
        return assistant.predictor._classifier.graph_session._closed
    except ModelClosed:  # close() closed the session and let go of it
        return True


def test_reload_swaps_in_the_new_model_and_keeps_the_store(served, caplog):
    model, slot = served
    old = slot.current
    old.chat("alice", "hello")
    model.put(DEFAULT_MODEL)
    with caplog.at_level("INFO", logger="legacy_assistant.serving.hotswap"):
        result = slot.reload()
    assert (f"now serving model default {result.model['version']}, no responder "
            f"(was model tiny {result.previous['version']}, no responder)") in caplog.text
    assert result.changed and (result.previous["name"], result.model["name"]) == ("tiny", "default")
    assert result.model["version"] != result.previous["version"]
    assert slot.current is not old and slot.current.store is old.store
    assert slot.current.predictor.classes != old.predictor.classes
    assert closed(old)  # no lease was out: closed at once
    assert len(slot.current.store.history("alice")) == 1


def test_the_reload_log_line_shows_a_change_of_the_responder_alone():
    from legacy_assistant.serving.hotswap import models_line

    before = {"name": "default", "version": "a7d8b2ac0acd", "responder": {"name": "responder", "version": "9b13c24849ab"}}
    after = {**before, "responder": {"name": "responder", "version": "76a6b7e59cbe"}}
    assert models_line(before) == "model default a7d8b2ac0acd, responder responder 9b13c24849ab"
    assert models_line(after) != models_line(before)
    assert models_line({**before, "responder": None}) == "model default a7d8b2ac0acd, no responder"


def test_a_reload_that_changes_only_the_responder_swaps_it_in(tmp_path, tiny_model_dir):
    """The same intent model with another responder is a change, not "unchanged"."""
    store = MemoryStore()
    loaded = []

    def loader():
        loaded.append(Assistant.load(tiny_model_dir, store=store, seed=0, responder_dir=DEFAULT_RESPONDER))
        return loaded[-1]

    slot = AssistantSlot(Assistant.load(tiny_model_dir, store=store, seed=0), loader)
    old = slot.current
    try:
        result = slot.reload()
        assert result.changed and result.previous["responder"] is None
        assert (result.model["name"], result.model["version"]) == (result.previous["name"], result.previous["version"])
        assert result.model["responder"]["name"] == describe(loaded[0])["responder"]["name"]
        assert slot.current is loaded[0] and not closed(loaded[0])
        assert closed(old)
    finally:
        slot.close()


def test_unchanged_model_is_not_swapped(served):
    _, slot = served
    before = slot.current
    result = slot.reload()
    assert not result.changed and slot.current is before and not closed(before)


def test_in_flight_request_keeps_its_model_open(served):
    model, slot = served
    with slot.lease() as old:
        model.put(DEFAULT_MODEL)
        slot.reload()
        assert slot.current is not old
        assert not closed(old)
        assert old.parse("hello")["intent"]["name"]  # still answers on the old session
    assert closed(old)


@pytest.mark.parametrize("damage", ["truncate", "remove", "garbage-manifest"])
def test_broken_model_is_refused_and_old_keeps_serving(served, damage):
    model, slot = served
    before = slot.current
    if damage == "truncate":
        model.damage()
    elif damage == "remove":
        shutil.rmtree(model.path)
    else:
        (model.path / "assistant.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReloadError, match="refused, still serving tiny"):
        slot.reload()
    assert slot.current is before and not closed(before)
    assert before.parse("hello")["intent"]["name"]


def test_a_loaded_model_that_fails_to_answer_is_closed_when_refused(tmp_path, tiny_model_dir, monkeypatch):
    """A refused model's session is closed at once, not left open beside the one in service."""
    store = MemoryStore()
    built = []

    def loader():
        fresh = Assistant.load(DEFAULT_MODEL, store=store, seed=0)
        monkeypatch.setattr(fresh, "warm_up", lambda: 1 / 0)  # loads, then fails to answer
        built.append(fresh)
        return fresh

    slot = AssistantSlot(Assistant.load(tiny_model_dir, store=store, seed=0), loader)
    before = slot.current
    try:
        with pytest.raises(ReloadError, match=r"refused \(it failed to answer\), still serving tiny"):
            slot.reload()
        assert len(built) == 1 and closed(built[0])
        assert slot.current is before and not closed(before)
    finally:
        slot.close()


@pytest.fixture
def built_graphs(monkeypatch):
    """Weak references to the graph of every session built from now on (the intent model's and
    the responder's), and the sessions themselves while the test holds them."""
    import weakref

    from compat import graph_session

    built = []
    original = graph_session.GraphSession.__init__

    def recording(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append((weakref.ref(self.graph), weakref.ref(self)))

    monkeypatch.setattr(graph_session.GraphSession, "__init__", recording)
    return built


@pytest.fixture
def frozen_heap(monkeypatch):
    """As a worker runs: its loaded models frozen out of the collector (serving.heap), so that
    a graph's reference cycles are freed only by an explicit collection."""
    import gc

    from legacy_assistant.serving import heap

    monkeypatch.setattr(heap, "_froze", True)
    monkeypatch.setattr(heap, "trim_malloc", lambda: False)
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("failure", ["damaged responder", "fails to answer"])
def test_a_refused_reload_frees_the_model_it_built(tmp_path, tiny_model_dir, built_graphs, frozen_heap, failure):
    """The refused model's session was closed, but its graph stayed: held by the ReloadError (the
    traceback of the load), then left to whenever the collector would look at it, which in a
    worker, its models frozen out of collections, could be long after."""
    store = MemoryStore()
    responder = tmp_path / "responder"
    shutil.copytree(DEFAULT_RESPONDER, responder)

    def loader():
        if failure == "damaged responder":  # the intent model loads, then the responder is refused
            Switchable(responder, DEFAULT_RESPONDER).damage()
            return Assistant.load(DEFAULT_MODEL, store=store, seed=0, responder_dir=responder)
        fresh = Assistant.load(DEFAULT_MODEL, store=store, seed=0)
        fresh.warm_up = lambda: 1 / 0  # loads, then fails to answer
        return fresh

    slot = AssistantSlot(Assistant.load(tiny_model_dir, store=store, seed=0), loader)
    before = len(built_graphs)
    try:
        with pytest.raises(ReloadError, match="refused") as refused:
            slot.reload()
        built = built_graphs[before:]
        assert built, "the refused load built no graph: the test checks nothing"
        # freed by the reload itself, while the error is still held (a log handler may keep it)
        assert [graph for graph, _ in built if graph() is not None] == []
        assert [session for _, session in built if session() is not None] == []
        assert refused.value.__cause__ is None and refused.value.__context__ is None
        assert not closed(slot.current) and slot.current.parse("hello")["intent"]["name"]
    finally:
        slot.close()


def test_fixed_assistant_cannot_reload(default_predictor):
    from legacy_assistant.serving.dialogue import DialoguePolicy

    slot = AssistantSlot(Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest),
                                   MemoryStore()))
    with pytest.raises(ReloadError, match="fixed model"):
        slot.reload()


def test_a_slot_nothing_holds_is_collected_and_its_wait_at_exit_goes_with_it():
    """A process waits at exit for each slot's reload under way; that wait must not keep a slot
    alive, nor outlive it: a process whose slots are gone ends without waiting on them."""
    import subprocess
    import sys

    script = (
        "import gc, sys, types, weakref\n"
        "from legacy_assistant.serving.hotswap import AssistantSlot\n"
        "predictor = types.SimpleNamespace(name='m', manifest={}, classes=['a'])\n"
        "slot = AssistantSlot(types.SimpleNamespace(predictor=predictor, responder=None))\n"
        "lock, gone = slot._reload_lock, weakref.ref(slot)\n"
        "lock.acquire()\n"  # a wait left behind at exit would wait on it for ever
        "del slot\n"
        "gc.collect()\n"
        "print('collected' if gone() is None else 'kept alive', flush=True)\n"
        "sys.exit(0)\n"
    )
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ended.returncode == 0 and ended.stdout.strip() == "collected", (ended.stdout, ended.stderr[-3000:])


def test_no_request_fails_across_many_reloads(served, tiny_model_dir):
    """Eight threads answer through leases while the model flips back and forth: every call
    succeeds (no closed session, no half-swapped model), and every retired model is closed."""
    model, slot = served
    errors, answered, retired = [], [0], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                with slot.lease() as assistant:
                    assert assistant.parse("hello there")["intent"]["name"]
                answered[0] += 1
            except Exception as exc:  # recorded, the test fails below
                errors.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            retired.append(slot.current)
            model.put(DEFAULT_MODEL if i % 2 == 0 else tiny_model_dir)
            assert slot.reload().changed
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert answered[0] > 50
    assert all(closed(a) for a in retired)


@pytest.fixture
def probed(tmp_path, tiny_model_dir):
    """A slot that checks the directory before loading, and counts its loads."""
    model = Switchable(tmp_path / "model", tiny_model_dir)
    store = MemoryStore()
    loads = []

    def loader():
        loads.append(1)
        return Assistant.load(model.path, store=store, seed=0)

    slot = AssistantSlot(Assistant.load(model.path, store=store, seed=0), loader,
                         lambda: describe_on_disk(model.path, None))
    yield model, slot, loads
    slot.close()


def test_a_reload_that_finds_the_models_in_service_loads_nothing(probed):
    model, slot, loads = probed
    before = slot.current
    assert describe_on_disk(model.path, None) == describe(before)
    for _ in range(3):
        result = slot.reload()
        assert not result.changed and slot.current is before
    assert loads == []
    model.put(DEFAULT_MODEL)
    result = slot.reload()
    assert result.changed and result.model["name"] == "default" and len(loads) == 1
    assert describe(slot.current) == describe_on_disk(model.path, None)


@pytest.mark.parametrize("damage", ["truncate", "remove"])
def test_a_damaged_directory_is_refused_before_anything_loads(probed, damage):
    """The manifest is the one in service, the files are not: refused, not "unchanged"."""
    model, slot, loads = probed
    before = slot.current
    if damage == "truncate":
        model.damage()
    else:
        shutil.rmtree(model.path)
    with pytest.raises(ReloadError, match="refused, still serving tiny"):
        slot.reload()
    assert loads == [] and slot.current is before and not closed(before)


def test_a_directory_refused_by_its_check_costs_no_collection(probed, monkeypatch):
    """A refusal before anything loaded has nothing to free: the collection after a refused load
    (0.2-1 s with a worker's models frozen, every request thread waiting) is skipped; a refused
    load still gets it."""
    from legacy_assistant.serving import heap

    model, slot, loads = probed
    collections = []
    monkeypatch.setattr(heap, "release_refused", lambda: collections.append(1))
    model.damage()
    with pytest.raises(ReloadError, match="refused, still serving tiny"):
        slot.reload()
    assert loads == [] and collections == []
    monkeypatch.setattr(slot, "_probe", None)  # now the load itself meets the damage
    with pytest.raises(ReloadError, match="refused, still serving tiny"):
        slot.reload()
    assert loads == [1] and collections == [1]



@pytest.mark.parametrize("kind", ["model", "responder"])
def test_a_directory_of_the_other_runtime_is_refused_before_anything_loads(probed, tmp_path, monkeypatch, kind):
    """A worker runs one runtime: a model migrated for 'tf2' put where a 'compat' server reloads
    from was loaded, to be refused with the advice of a --runtime the server was not started
    with, and its collection paused every request thread; the check refuses it, naming the way."""
    import json

    from legacy_assistant.artifacts.directory import manifest_digest
    from legacy_assistant.serving import heap

    model, slot, loads = probed
    before = slot.current
    collections = []
    monkeypatch.setattr(heap, "release_refused", lambda: collections.append(1))
    source, manifest_name = (model.path, "assistant.json") if kind == "model" else (DEFAULT_RESPONDER, "responder.json")
    marked = tmp_path / f"{kind}-tf2"
    shutil.copytree(source, marked)
    manifest = json.loads((marked / manifest_name).read_text())
    manifest["runtime"] = "tf2"
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (marked / manifest_name).write_text(json.dumps(manifest))
    if kind == "model":
        model.put(marked)
    else:
        monkeypatch.setattr(slot, "_probe", lambda: describe_on_disk(model.path, marked))
    with pytest.raises(ReloadError) as refused:
        slot.reload()
    message = str(refused.value)
    assert "refused, still serving tiny" in message
    assert "for the 'tf2' runtime, and this server runs 'compat'" in message
    assert "the 'compat' model it was migrated from" in message and "restart the server with --runtime tf2" in message
    assert loads == [] and collections == [] and slot.current is before and not closed(before)

def test_the_responder_directory_is_checked_file_by_file_too(tmp_path, tiny_model_dir):
    responder = tmp_path / "responder"
    shutil.copytree(DEFAULT_RESPONDER, responder)
    described = describe_on_disk(tiny_model_dir, responder)["responder"]
    assert described["emotions"] == ["neutral", "anger", "joy", "fear", "sadness"]
    variables = next((responder / "saved_model" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes()[:64])
    with pytest.raises(ArtifactError, match="variables.data-.*altered or truncated"):
        describe_on_disk(tiny_model_dir, responder)


def test_a_refused_reload_names_the_responder_that_keeps_serving(tmp_path, tiny_model_dir):
    """A damaged responder refused a reload with "still serving tiny VERSION": the responder in
    service, the one the operator needs to know is unchanged, went unnamed."""
    responder = Switchable(tmp_path / "responder", DEFAULT_RESPONDER)
    store = MemoryStore()
    slot = AssistantSlot(
        Assistant.load(tiny_model_dir, store=store, seed=0, responder_dir=responder.path),
        lambda: Assistant.load(tiny_model_dir, store=store, seed=0, responder_dir=responder.path),
        lambda: describe_on_disk(tiny_model_dir, responder.path),
    )
    try:
        served = describe(slot.current)
        responder.damage()
        with pytest.raises(ReloadError) as refused:
            slot.reload()
        message = str(refused.value)
        assert (f"refused, still serving tiny {served['version']} and responder "
                f"{served['responder']['name']} {served['responder']['version']}: ") in message
        assert "variables.data-" in message and "altered or truncated" in message
    finally:
        slot.close()


def test_a_directory_replaced_while_it_is_checked_is_checked_again(probed, monkeypatch):
    """A deploy that swaps the directory while a reload reads it: no false refusal."""
    from legacy_assistant.serving import hotswap

    model, slot, loads = probed
    real, seen = hotswap.verify_artifact, []

    def replaced_midway(path, **options):
        if not seen:  # the first read sees the old manifest, then the files change under it
            seen.append(path)
            model.put(DEFAULT_MODEL)
            raise ArtifactError(f"{path}: altered or truncated: sha256 does not match assistant.json")
        return real(path, **options)

    monkeypatch.setattr(hotswap, "verify_artifact", replaced_midway)
    result = slot.reload()
    assert seen and result.changed and result.model["name"] == "default" and len(loads) == 1


def test_a_reload_that_finishes_after_shutdown_installs_nothing(tmp_path, tiny_model_dir):
    """A reload still loading when the server closes must not install a model nobody closes."""
    model = Switchable(tmp_path / "model", tiny_model_dir)
    store = MemoryStore()
    loaded = []
    slot = None

    def loader():
        fresh = Assistant.load(DEFAULT_MODEL, store=store, seed=0)
        loaded.append(fresh)
        slot.close()  # the shutdown arrives while this reload loads
        return fresh

    slot = AssistantSlot(Assistant.load(model.path, store=store, seed=0), loader)
    with pytest.raises(ReloadError, match="shutting down"):
        slot.reload()
    assert closed(loaded[0])


def test_a_reload_after_shutdown_loads_nothing(served):
    """A reload asked of a closed slot (a SIGHUP as the worker stops) loaded and warmed a model,
    only to close it again."""
    model, slot = served
    slot.close()
    loads = []
    slot._loader = lambda: loads.append(1)
    with pytest.raises(ReloadError, match="^the server is shutting down \\(its model is closed\\); nothing was loaded$"):
        slot.reload()
    assert loads == [] and closed(slot.current)


def test_admin_reload_answers_even_when_telling_the_other_workers_fails(tmp_path, tiny_model_dir, caplog):
    from legacy_assistant.web import create_app

    model = Switchable(tmp_path / "model", tiny_model_dir)

    def master_gone():
        raise ProcessLookupError("no such process")

    app = create_app({"TESTING": True, "MODEL_DIR": str(model.path), "RESPONDER_DIR": None, "ADMIN_TOKEN": "adm",
                      "ON_RELOADED": master_gone, "STORE_URL": "memory"})
    try:
        model.put(DEFAULT_MODEL)
        with caplog.at_level("INFO"):
            response = app.test_client().post(
                "/admin/reload", headers={"Authorization": "Bearer adm", "X-Request-ID": "reload-9"})
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["status"] == "reloaded" and body["other_workers_notified"] is False
        # the reload's lines name the request that asked for it, as its access line does
        lines = [r.getMessage() for r in caplog.records if r.name != "legacy_assistant.access"]
        assert any(line.startswith("now serving ") and line.endswith(" id=reload-9") for line in lines), lines
        assert "reloaded here, but telling the other workers failed id=reload-9" in lines, lines
    finally:
        app.extensions["legacy_assistant"].close()


def test_a_process_that_ends_during_a_background_reload_waits_for_it(tmp_path, tiny_model_dir):
    """SIGTERM to a worker, or Ctrl-C to ``serve --dev``, while a SIGHUP reload loads: the process
    ended with the reload thread inside TensorFlow's C++ code, which aborted it (SIGABRT, a core
    dump where they are kept). The reload now finishes first."""
    import subprocess
    import sys

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, model)
    script = (
        "import logging, shutil, sys, time\n"
        "from legacy_assistant.web import create_app\n"
        "from legacy_assistant.web.admin import reload_in_background\n"
        "model, other = sys.argv[1:3]\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "app = create_app({'MODEL_DIR': model, 'RESPONDER_DIR': None, 'STORE_URL': 'memory'})\n"
        "shutil.rmtree(model)\n"
        "shutil.copytree(other, model)\n"
        "reload_in_background(app, 'SIGHUP')\n"
        "time.sleep(0.02)\n"  # the reload is loading the new model as the process ends
        "sys.exit(0)\n"
    )
    ended = subprocess.run([sys.executable, "-c", script, str(model), str(tiny_model_dir)],
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode == 0, ended.stderr[-3000:]
    assert re.search(r"now serving model tiny \S+, no responder \(was model default ", ended.stderr), ended.stderr[-3000:]


def test_a_process_that_ends_during_an_admin_reload_waits_for_it(tmp_path, tiny_model_dir):
    """POST /admin/reload reloads on the request's own thread, a daemon thread under the
    development server: Ctrl-C while it loaded ended the process inside TensorFlow's C++ code,
    which aborted it (exit status 134). The process now waits for it at exit, as for a reload a
    SIGHUP started."""
    import subprocess
    import sys

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, model)
    script = (
        "import logging, shutil, sys, threading, time\n"
        "from legacy_assistant.web import create_app\n"
        "model, other = sys.argv[1:3]\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "token = 'an-admin-token-for-the-test'\n"
        "app = create_app({'MODEL_DIR': model, 'RESPONDER_DIR': None, 'STORE_URL': 'memory', 'ADMIN_TOKEN': token})\n"
        "shutil.rmtree(model)\n"
        "shutil.copytree(other, model)\n"
        "client = app.test_client()\n"
        "post = lambda: client.post('/admin/reload', headers={'Authorization': 'Bearer ' + token})\n"
        "threading.Thread(target=post, daemon=True).start()\n"
        "slot = app.extensions['legacy_assistant']\n"
        "while not slot._reload_lock.locked():\n"
        "    time.sleep(0.001)\n"
        "time.sleep(0.02)\n"  # the reload is loading the new model as the process ends
        "sys.exit(0)\n"
    )
    ended = subprocess.run([sys.executable, "-c", script, str(model), str(tiny_model_dir)],
                           capture_output=True, text=True, timeout=120)
    assert ended.returncode == 0, ended.stderr[-3000:]
    swapped = re.search(r"now serving model tiny \S+, no responder \(was model default ", ended.stderr)
    assert swapped, ended.stderr[-3000:]


def test_a_swaps_callback_runs_before_another_reload_can_start(tiny_model_dir):
    """The gauges naming the model in service are set by the callback: run after the reload lock
    was let go, two reloads close together set them in the wrong order (both models at 1)."""
    import itertools
    import time

    store = MemoryStore()
    sources = itertools.cycle([DEFAULT_MODEL, tiny_model_dir])
    loads = []

    def loader():
        loads.append(time.monotonic())
        return Assistant.load(next(sources), store=store, seed=0)

    slot = AssistantSlot(Assistant.load(tiny_model_dir, store=store, seed=0), loader)
    swaps = []
    second = threading.Thread(target=lambda: slot.reload(on_swap=lambda model, previous: swaps.append(model["name"])))

    def first_swap(model, previous):
        second.start()
        time.sleep(0.5)  # time for the second reload to load, were it not held back
        assert len(loads) == 1, "a second reload ran while the first one's callback was setting the gauges"
        swaps.append(model["name"])

    try:
        assert slot.reload(on_swap=first_swap).changed
        second.join(timeout=120)
        assert swaps == ["default", "tiny"] and describe(slot.current)["name"] == "tiny"
    finally:
        slot.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads and descriptors in /proc (Linux)")
def test_reloads_with_a_responder_leave_no_session_thread_or_descriptor_behind(tiny_model_dir):
    """A server reloads for weeks: each reload must close and free both retired sessions (the
    intent model's and the responder's, batched as the server runs them) and start no thread
    and open no file it keeps (measured in a served worker: 40 reloads left its threads and
    descriptors where they were). A retired responder left open failed none of the other reload
    tests; so would a thread or a descriptor per load, or a reference kept to a retired model."""
    import gc
    import itertools
    import weakref

    store = MemoryStore()
    sources = itertools.cycle([DEFAULT_MODEL, tiny_model_dir])

    def load():  # as the server loads (its thread settings, batching on)
        return Assistant.load(next(sources), store=store, seed=0, responder_dir=DEFAULT_RESPONDER,
                              intra_op_threads=1, inter_op_threads=-1).enable_batching(32, 0.003)

    def sessions(assistant):
        return [assistant.predictor._classifier.graph_session, assistant.responder.model.graph_session]

    def answer():
        with slot.lease() as assistant:
            assert assistant.parse("hello")["intent"]["name"]
            assert isinstance(assistant.respond(["hello"], mode="greedy"), str)

    slot = AssistantSlot(load(), load)
    try:
        assert slot.reload().changed  # whatever a first reload starts once, it starts here
        answer()
        threads, descriptors = set(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))
        graphs = []
        for _ in range(4):
            old = sessions(slot.current)  # close() lets go of them
            assert slot.reload().changed
            assert [s.closed for s in old] == [True, True]  # no request held it: closed at once
            graphs += [weakref.ref(s.graph) for s in old]
            del old
            answer()
        gc.collect()
        assert [g for g in graphs if g() is not None] == []
        assert set(os.listdir("/proc/self/task")) - threads == set()
        assert len(os.listdir("/proc/self/fd")) <= descriptors
        assert [s.closed for s in sessions(slot.current)] == [False, False]
    finally:
        slot.close()


def test_reloads_asked_for_while_one_runs_make_one_more_run_not_one_each(caplog):
    """A burst of SIGHUPs while a reload loads: one more reload after it (the running one may
    have read the directory already), not a model load per signal. A reload that fails in an
    unexpected way is logged, and the next ask starts one again."""
    from legacy_assistant.serving.hotswap import ReloadResult
    from legacy_assistant.web.admin import _BackgroundReloads

    started, release = threading.Event(), threading.Event()
    calls = []

    class Slot:
        def reload(self, on_swap=None):
            calls.append(len(calls) + 1)
            if len(calls) == 1:
                started.set()
                assert release.wait(30)
            if len(calls) == 3:
                raise RuntimeError("the disk went away")
            return ReloadResult(True, {"name": "m", "version": str(len(calls))}, {"name": "m", "version": "0"})

    slot, reloads = Slot(), _BackgroundReloads()
    first = reloads.ask(slot, "SIGHUP")
    assert first is not None and started.wait(30)
    assert [reloads.ask(slot, "SIGHUP") for _ in range(3)] == [None, None, None]
    release.set()
    first.join(30)
    assert not first.is_alive() and calls == [1, 2]
    with caplog.at_level("ERROR", logger="legacy_assistant.web.admin"):
        failed = reloads.ask(slot, "SIGHUP")
        assert failed is not None
        failed.join(30)
    assert calls == [1, 2, 3] and "reload (SIGHUP) failed" in caplog.text and "the disk went away" in caplog.text
    after = reloads.ask(slot, "SIGHUP")
    assert after is not None
    after.join(30)
    assert calls == [1, 2, 3, 4]


@pytest.mark.skipif(os.name != "posix", reason="sends SIGHUP")
def test_a_sighup_handled_inside_an_ask_does_not_stop_the_process():
    """``serve --dev`` asks for the reload in its SIGHUP handler, which Python runs on the main
    thread between two steps of whatever it was doing, also inside the ask of the SIGHUP before
    (a burst of signals): that ask held the lock, and the nested one waited for it for ever (the
    server answered nothing more). Here a SIGHUP arrives at every line of the first ask, and the
    first reload lasts until every one of them has been handled, so that they all come while a
    reload runs: they make exactly one run more. (With an instant reload, one handled after both
    runs had ended rightly started a third.)"""
    import subprocess
    import sys

    script = (
        "import signal, sys, threading, time\n"
        "from legacy_assistant.serving.hotswap import ReloadResult\n"
        "from legacy_assistant.web.admin import _BackgroundReloads\n"
        "calls, signals_over = [], threading.Event()\n"
        "class Slot:\n"
        "    def reload(self, on_swap=None):\n"
        "        signals_over.wait(30)\n"
        "        calls.append(1)\n"
        "        return ReloadResult(False, {'name': 'm', 'version': '1'}, {'name': 'm', 'version': '1'})\n"
        "reloads, handled = _BackgroundReloads(), []\n"
        "def on_hup(signum, frame):\n"
        "    handled.append(reloads.ask(Slot(), 'SIGHUP'))\n"
        "signal.signal(signal.SIGHUP, on_hup)\n"
        "outer = []\n"
        "def trace(frame, event, arg):\n"
        "    if frame.f_code.co_filename.endswith('admin.py') and not outer:\n"
        "        outer.append(frame)\n"
        "    if outer and frame is not outer[0]:\n"
        "        return None\n"
        "    if event == 'line':\n"
        "        signal.raise_signal(signal.SIGHUP)\n"
        "    return trace\n"
        "sys.settrace(trace)\n"
        "run = reloads.ask(Slot(), 'SIGHUP')\n"
        "sys.settrace(None)\n"
        "time.sleep(0.1)\n"  # a signal raised at the last line is handled
        "signals_over.set()\n"
        "for asked in [run, *handled]:\n"
        "    if asked is not None:\n"
        "        asked.join(30)\n"
        "print(len(handled), len(calls))\n"
    )
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert ended.returncode == 0, ended.stderr[-3000:]
    handled, calls = map(int, ended.stdout.split())
    assert handled > 3 and calls == 2


def test_a_resend_after_a_reload_waits_for_the_reply_the_replaced_model_is_still_writing(tiny_model_dir):
    """A turn's generated reply is written by the assistant that stored it, even once a reload has
    swapped in another: a resend of that message, answered by the new one, waits for it too."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.serving.dialogue import DialoguePolicy

    store = MemoryStore()
    generating, resend_read, resend_answered = threading.Event(), threading.Event(), threading.Event()

    def generate(context, emotion, mode, seed, condition_strength):
        generating.set()
        assert resend_read.wait(timeout=30)  # the resend has found the turn, stored with its canned reply
        resend_answered.wait(timeout=2)  # a resend that does not wait for this reply has answered by now
        return "a generated reply"

    def load(model_dir):
        predictor = Predictor.load(model_dir)
        policy = DialoguePolicy.from_manifest(predictor.manifest, seed=0)
        return Assistant(predictor, policy, store, None, generate=generate)

    slot = AssistantSlot(load(tiny_model_dir), lambda: load(DEFAULT_MODEL))
    results = {}

    def send(name):
        with slot.lease() as assistant:
            results[name] = assistant.chat("s", "qwertyuiop zxcvbnm", message_id="m")

    first = threading.Thread(target=send, args=("first",))
    first.start()
    assert generating.wait(timeout=30)
    assert slot.reload().changed  # the first copy's assistant is retired while it writes
    real_turn_with_id = store.turn_with_id

    def turn_with_id(sender, message_id):
        turn = real_turn_with_id(sender, message_id)
        if turn is not None and not turn.generated:
            resend_read.set()
        return turn

    store.turn_with_id = turn_with_id
    try:
        send("again")
    finally:
        resend_answered.set()
        first.join(timeout=30)
        slot.close()
    assert results["first"].generated and results["first"].text == "a generated reply"
    again = results["again"]
    assert again.replayed and again.generated and again.text == "a generated reply"
    assert [turn.reply for turn in store.history("s")] == ["a generated reply"]


def test_a_reload_that_raises_system_exit_ends_its_run_and_the_next_ask_reloads(caplog):
    """A loader that calls sys.exit raised SystemExit on the reload thread: the thread ended with
    its run never ended, so no later SIGHUP reloaded, and the exit waited for that run for ever."""
    from legacy_assistant.serving.hotswap import ReloadResult
    from legacy_assistant.web.admin import _BackgroundReloads

    calls = []

    class Slot:
        def reload(self, on_swap=None):
            calls.append(len(calls) + 1)
            if len(calls) == 1:
                raise SystemExit(2)
            return ReloadResult(False, {"name": "m", "version": "1"}, {"name": "m", "version": "1"})

    reloads = _BackgroundReloads()
    with caplog.at_level("ERROR", logger="legacy_assistant.web.admin"):
        failed = reloads.ask(Slot(), "SIGHUP")
        assert failed is not None
        failed.join(30)
    assert not failed.is_alive() and "reload (SIGHUP) failed" in caplog.text
    after = reloads.ask(Slot(), "SIGHUP")
    assert after is not None
    after.join(30)
    assert not after.is_alive() and calls == [1, 2]
    finishing = threading.Thread(target=reloads.finish, daemon=True)
    finishing.start()
    finishing.join(30)
    assert not finishing.is_alive()


def test_background_reloads_all_run_on_one_thread():
    """Each thread that loads a model leaves TensorFlow's per-thread state behind as it ends (one
    object alive per thread): the reloads of an app share one thread, not one each."""
    from legacy_assistant.serving.hotswap import ReloadResult
    from legacy_assistant.web.admin import _BackgroundReloads

    threads = []

    class Slot:
        def reload(self, on_swap=None):
            threads.append(threading.get_ident())
            return ReloadResult(False, {"name": "m", "version": "1"}, {"name": "m", "version": "1"})

    reloads = _BackgroundReloads()
    for _ in range(3):
        run = reloads.ask(Slot(), "SIGHUP")
        assert run is not None
        run.join(30)
        assert not run.is_alive()
    assert len(threads) == 3 and len(set(threads)) == 1 and threads[0] != threading.get_ident()


def test_an_admin_reload_counts_one_load_and_the_echo_of_its_sighup_as_unchanged(tmp_path, tiny_model_dir):
    """The worker that answers POST /admin/reload loads the new models, then reloads again on the
    SIGHUP it has the master send every worker: that second reload loads nothing and is counted
    as ``unchanged``, not as a second ``reloaded`` (docs/DEPLOYMENT.md, Metrics)."""
    from legacy_assistant.web import create_app
    from legacy_assistant.web.admin import reload_in_background, reload_under_way
    from prometheus_client import REGISTRY

    def counts():
        return {outcome: REGISTRY.get_sample_value("legacy_assistant_model_reloads_total", {"outcome": outcome})
                for outcome in ("reloaded", "unchanged", "refused")}

    model = Switchable(tmp_path / "model", tiny_model_dir)
    app = create_app({"TESTING": True, "MODEL_DIR": str(model.path), "RESPONDER_DIR": None, "ADMIN_TOKEN": "adm",
                      "ON_RELOADED": lambda: reload_in_background(app, "SIGHUP"), "STORE_URL": "memory"})
    try:
        before = counts()
        model.put(DEFAULT_MODEL)
        response = app.test_client().post("/admin/reload", headers={"Authorization": "Bearer adm"})
        assert response.status_code == 200 and response.get_json()["status"] == "reloaded"
        echo = reload_under_way(app)
        if echo is not None:
            echo.join(60)
        after = counts()
        assert {k: after[k] - before[k] for k in after} == {"reloaded": 1, "unchanged": 1, "refused": 0}
    finally:
        app.extensions["legacy_assistant"].close()
