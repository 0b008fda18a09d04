"""Admin routes (bearer ``ADMIN_TOKEN``; off when none is set): ``POST /admin/reload``.

A reload loads the model directory again beside the model in service, checks it answers, and
swaps it in; requests already running finish on the old model. A model that cannot be loaded
is refused with 422 and the old one keeps serving. This process reloads before answering;
``ON_RELOADED`` then tells the other processes (under gunicorn it sends SIGHUP to the master,
which passes it to every worker, and each worker reloads in the same way).
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from flask import Flask, current_app, jsonify

from legacy_assistant.common.request_context import request_id_suffix
from legacy_assistant.serving.hotswap import AssistantSlot, ReloadError, ReloadResult
from legacy_assistant.web.context import EXTENSION, current_slot, slot_of
from legacy_assistant.web.errors import ApiError
from legacy_assistant.web.metrics import model_changed, reload_outcome
from legacy_assistant.web.security import Access, GuardedBlueprint

log = logging.getLogger(__name__)

blueprint = GuardedBlueprint("admin", __name__, access=Access.ADMIN, url_prefix="/admin")


def reload_model(slot: AssistantSlot, reason: str) -> ReloadResult:
    """Reload ``slot``, count and log the outcome; raises :class:`ReloadError` when refused."""
    try:
        result = slot.reload(on_swap=model_changed)
    except ReloadError as exc:
        reload_outcome("refused")
        # a reload the admin route asked for names its request, as the access line does
        log.error("reload (%s) refused: %s%s", reason, exc, request_id_suffix())
        raise
    reload_outcome("reloaded" if result.changed else "unchanged")
    if not result.changed:
        log.info(
            "reload (%s): model %s %s is unchanged%s",
            reason,
            result.model["name"],
            result.model["version"],
            request_id_suffix(),
        )
    return result


class ReloadRun:
    """A background reload asked for (with the one more run that asks arriving while it runs
    make): ``is_alive`` until it ends, ``join`` waits for that, as for a thread."""

    def __init__(self) -> None:
        self._done = threading.Event()

    def is_alive(self) -> bool:
        return not self._done.is_set()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def end(self) -> None:
        self._done.set()


class _BackgroundReloads:
    """One reload at a time per app; asks that arrive while one runs make one more run after it,
    not one each (a burst of SIGHUPs must not queue a model load per signal).

    Every reload of the app runs on the same thread, started by the first ask and kept: each
    thread that loads a model leaves TensorFlow's per-thread state of its eager context behind
    when it ends (a Python list that nothing frees), so a thread per reload kept one object more
    alive per reload for as long as the worker ran. The thread is a daemon waiting for the next
    ask; at exit :meth:`finish` waits for a reload under way (a daemon thread stopped inside
    TensorFlow's C++ code as the process ended, SIGTERM during a reload, aborted it).

    ``ask`` may be called from a signal handler (``serve --dev``), which Python runs on the main
    thread between two of its steps, also inside an ``ask`` that holds the lock (a burst of
    SIGHUPs): the lock is re-entrant, and an ask inside another only marks one more run (with a
    plain lock the main thread waited for itself, and the server stopped answering).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._asking = False  # an ask holds the lock: one nested in it (a signal handler) marks a run more
        self._asked = threading.Condition(self._lock)
        self._next: tuple[AssistantSlot, str, ReloadRun] | None = None  # asked for, not started
        self._running = False
        self._again = False
        self._finished = False
        self._thread: threading.Thread | None = None
        self.thread: ReloadRun | None = None  # the latest run asked for

    def ask(self, slot: AssistantSlot, reason: str) -> ReloadRun | None:
        with self._lock:
            if self._asking:  # a signal handler interrupted an ask of this thread
                self._again = True
                return None
            self._asking = True
            try:
                return self._ask(slot, reason)
            finally:
                self._asking = False

    def _ask(self, slot: AssistantSlot, reason: str) -> ReloadRun | None:
        if self._finished:
            return None  # the process is ending
        if self._running:
            self._again = True  # the running one may have read the directory already: run once more
            return None
        self._running = True
        run = ReloadRun()
        self.thread = run
        self._next = (slot, reason, run)
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="model-reload", daemon=True)
            self._thread.start()
            atexit.register(self.finish)
        self._asked.notify()
        return run

    def finish(self) -> None:
        """Wait for a reload under way, and start no other (as the process ends)."""
        with self._lock:
            self._finished = True
            run = self.thread if self._running else None
        if run is not None:
            run.join()

    def _serve(self) -> None:
        while True:
            with self._lock:
                while self._next is None:
                    self._asked.wait()
                slot, reason, run = self._next
                self._next = None
            self._run(slot, reason, run)
            del slot, run  # kept by nothing while the thread waits

    def _run(self, slot: AssistantSlot, reason: str, run: ReloadRun) -> None:
        while True:
            try:
                reload_model(slot, reason)
            except ReloadError:
                pass  # logged by reload_model; the old model keeps serving
            except BaseException:  # a thread's exception would only reach stderr: log it, keep serving
                # (SystemExit too: it ended the thread with the run never ended, no later reload, and
                # the process waiting for ever as it exited)
                log.exception("reload (%s) failed", reason)
            with self._lock:
                if not self._again or self._finished:
                    self._again = False
                    self._running = False
                    run.end()
                    return
                self._again = False


RELOADS_EXTENSION = "legacy_assistant.reloads"  # app.extensions key of the _BackgroundReloads


class SlotReload:
    """A reload of ``slot`` that is no background run (``POST /admin/reload`` runs it on the
    request's thread), seen as one: ``is_alive`` while it runs, ``join`` waits for it."""

    def __init__(self, slot: AssistantSlot) -> None:
        self._slot = slot

    def is_alive(self) -> bool:
        return self._slot.reloading

    def join(self, timeout: float | None = None) -> None:
        self._slot.wait_for_reload(timeout)


def reload_under_way(app: Flask) -> ReloadRun | SlotReload | None:
    """``app``'s background reload while one runs, else its model's reload on another thread
    (the admin route's) while one runs, else None."""
    reloads = app.extensions.get(RELOADS_EXTENSION)
    thread = reloads.thread if reloads is not None else None
    if thread is not None and thread.is_alive():
        return thread
    slot = app.extensions.get(EXTENSION)
    return SlotReload(slot) if slot is not None and slot.reloading else None


def reload_in_background(app: Flask, reason: str) -> ReloadRun | None:
    """Reload ``app``'s model on its reload thread (from a signal handler); the outcome is
    logged. Returns the run, or None when a reload already running will run once more."""
    reloads = app.extensions.setdefault(RELOADS_EXTENSION, _BackgroundReloads())
    return reloads.ask(slot_of(app), reason)


@blueprint.post("/reload")
def reload() -> Any:
    """Reload the model from its directory; ``{"status": "reloaded" | "unchanged", "model", "previous"}``."""
    try:
        result = reload_model(current_slot(), "admin route")
    except ReloadError as exc:
        raise ApiError(422, "reload_refused", str(exc)) from None
    notify = current_app.config["ON_RELOADED"]
    notified = False
    if notify is not None:
        try:
            notify()
            notified = True
        except Exception:  # this worker did reload; the answer says the others were not told
            log.exception("reloaded here, but telling the other workers failed%s", request_id_suffix())
    return jsonify(
        {
            "status": "reloaded" if result.changed else "unchanged",
            "model": result.model,
            "previous": result.previous,
            "other_workers_notified": notified,
        }
    )
