"""Freezing a worker's loaded models for the garbage collector, and freeing them after a reload.

``gc.freeze`` is process-wide, so each case runs in a fresh Python process of its own."""

import json
import shutil

import pytest

from tests.helpers import DEFAULT_MODEL
from tests.subprocesses import run_python

RELOAD = """
import gc, json, shutil, sys, time, weakref
from legacy_assistant.serving import heap
from legacy_assistant.serving.assistant import Assistant
from legacy_assistant.serving.hotswap import AssistantSlot
from legacy_assistant.stores.base import MemoryStore

model_dir, other_model, release = sys.argv[1], sys.argv[2], sys.argv[3] == "release"
if not release:
    heap.release_retired = lambda: None  # the control: what a worker without it would keep
store = MemoryStore()
load = lambda: Assistant.load(model_dir, store=store, seed=0)
slot = AssistantSlot(load(), load)
old_graph = weakref.ref(slot.current.predictor._classifier.graph_session.graph)
frozen = heap.freeze_loaded()
shutil.rmtree(model_dir)
shutil.copytree(other_model, model_dir)
swapped = slot.reload().changed
deadline = time.monotonic() + (10 if release else 1)  # freed on a thread, a moment later
# until frozen again (on Python 3.12 the count is not 0 between the release's unfreeze and freeze)
while (old_graph() is not None or gc.get_freeze_count() < frozen // 2) and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps({
    "frozen": frozen,
    "swapped": swapped,
    "old_graph_alive": old_graph() is not None,
    "still_frozen": gc.get_freeze_count(),
    "answers": slot.current.parse("hello")["intent"]["name"],
}))
"""


def run_reload(tmp_path, tiny_model_dir, release: bool) -> dict:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    script = tmp_path / "reload.py"
    script.write_text(RELOAD)
    result = run_python([str(script), str(model_dir), str(DEFAULT_MODEL), "release" if release else "keep"])
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("release", [True, False], ids=["released", "control-without-release"])
def test_retired_model_is_freed_after_a_reload_in_a_frozen_process(tmp_path, tiny_model_dir, release):
    report = run_reload(tmp_path, tiny_model_dir, release)
    assert report["frozen"] > 10_000  # a loaded model's graph objects, at least
    assert report["swapped"] and report["answers"]
    # The permanent generation holds the retired graph until the collector is let at it again.
    assert report["old_graph_alive"] is not release
    assert report["still_frozen"] > 10_000  # frozen again, the new model with it


def test_a_release_gives_the_freed_memory_back_to_the_system(monkeypatch):
    """glibc kept the retired models' memory in its arenas: a worker's resident memory rose
    about 140 MiB over its first reloads. The release ends with malloc_trim."""
    import gc
    import platform

    from legacy_assistant.serving import heap

    if platform.libc_ver()[0] == "glibc":
        assert heap._malloc_trim() is not None and heap.trim_malloc() is True
    calls = []
    monkeypatch.setattr(heap, "_MALLOC_TRIM", lambda pad: calls.append(pad) or 1)
    monkeypatch.setattr(heap, "_froze", True)  # as in a worker that froze its models
    for name in ("unfreeze", "freeze"):
        monkeypatch.setattr(gc, name, lambda: None)
    monkeypatch.setattr(gc, "collect", lambda: 0)
    heap.release_retired()
    assert calls == [0]
    monkeypatch.setattr(heap, "_MALLOC_TRIM", None)  # off glibc: nothing to call, nothing fails
    heap.release_retired()
    assert heap.trim_malloc() is False


def test_a_process_that_froze_nothing_is_left_alone():
    """No release where nothing was frozen, whatever gc.get_freeze_count() says (on Python 3.12
    it is above 0 after any collection: immortal objects are moved to the frozen generation)."""
    script = """
import gc, json
from legacy_assistant.serving import heap
calls = []
gc.freeze = lambda: calls.append("freeze")
gc.get_freeze_count = lambda: 375  # as Python 3.12 reports in a process that froze nothing
heap.release_retired()
heap.release_retired_soon()
print(json.dumps(calls))
"""
    result = run_python(["-c", script])
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


BACKGROUND_RELOADS = """
import gc, json, shutil, sys
from legacy_assistant.web import create_app
from legacy_assistant.web.admin import reload_in_background
from legacy_assistant.web.context import slot_of

model_dir, sources, reloads = sys.argv[1], sys.argv[2:4], int(sys.argv[4])
app = create_app({"MODEL_DIR": model_dir, "RESPONDER_DIR": None, "STORE_URL": "memory"})
counts = []
for n in range(1, reloads + 1):
    shutil.rmtree(model_dir)
    shutil.copytree(sources[n % 2], model_dir)
    reload_in_background(app, "SIGHUP").join(120)
    if n % 2 == 0:  # the first model in service again
        gc.collect()
        counts.append(len(gc.get_objects()))
print(json.dumps({"counts": counts, "serving": slot_of(app).model["name"]}))
"""


def test_background_reloads_keep_no_object_alive_per_reload(tmp_path, tiny_model_dir):
    """A reload on SIGHUP (or after POST /admin/reload) ran on a thread of its own, and each
    thread that loaded a model left an object of TensorFlow's alive as it ended: one object
    more per reload, for as long as the worker ran. The reloads now share one thread."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    script = tmp_path / "reloads.py"
    script.write_text(BACKGROUND_RELOADS)
    result = run_python([str(script), str(model_dir), str(tiny_model_dir), str(DEFAULT_MODEL), "8"])
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["serving"] == "tiny"
    counts = report["counts"]
    assert len(counts) == 4 and counts[-1] <= counts[0], counts
