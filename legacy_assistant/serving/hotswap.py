"""Swap a served model for a new one without dropping a request.

:class:`AssistantSlot` holds the assistant that new requests get. A request takes a *lease*
(:meth:`AssistantSlot.lease`) and keeps the assistant it got for its whole life, even if a
reload swaps in another one meanwhile. :meth:`AssistantSlot.reload` loads the new model beside
the old one, checks that it answers (:meth:`Assistant.warm_up`, which also readies it for its
first requests), swaps the reference in one step, and closes the old model's session only when
its last lease is returned: no request ever runs on a closed session.
A model that fails to load or to answer is refused and the old one keeps serving. The intent
model and the responder are one assistant: a reload loads both, and refuses both when either
fails.

A reload whose directories hold the models in service (every file checked against its
manifest, which costs a read of the files: tens of milliseconds) loads nothing: a SIGHUP reaches
every worker, most of them already serving what is on disk, and a load and warm-up that ends in
"unchanged" costs one to four seconds of a worker's CPU while it serves.

A process that ends while a reload loads waits for it (:func:`_finish_reload`, which each slot
registers to run at exit), whichever thread runs it: a daemon thread stopped inside TensorFlow's
C++ code as the process ended aborted it.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import shlex
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from legacy_assistant.artifacts.directory import load_consistently
from legacy_assistant.classifier.artifact import MANIFEST as CLASSIFIER_MANIFEST
from legacy_assistant.classifier.artifact import verify_artifact
from legacy_assistant.common.request_context import request_id_suffix
from legacy_assistant.errors import ArtifactError, AssistantError
from legacy_assistant.responder.artifact import MANIFEST as RESPONDER_MANIFEST
from legacy_assistant.responder.artifact import ResponderInfo, verify_responder
from legacy_assistant.serving import heap
from legacy_assistant.serving.assistant import Assistant

log = logging.getLogger(__name__)


class ReloadError(AssistantError):
    """A new model was refused; the one in service is unchanged."""


class _IntentModel(Protocol):
    """What a description reads of an intent model: a loaded Predictor or a verified directory."""

    @property
    def name(self) -> str: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    @property
    def classes(self) -> list[str]: ...


def describe_models(classifier: _IntentModel, responder: ResponderInfo | None) -> dict[str, Any]:
    """Name, version (first 12 hex digits of the manifest's sha256), creation time, intent count
    of the intent model; ``responder``: the same of the responder, with its emotions, or None."""
    manifest = classifier.manifest
    return {
        "name": classifier.name,
        "version": str(manifest.get("manifest_sha256", ""))[:12],
        "created": manifest.get("created"),
        "intents": len(classifier.classes),
        "responder": None
        if responder is None
        else {
            "name": responder.name,
            "version": str(responder.manifest.get("manifest_sha256", ""))[:12],
            "created": responder.manifest.get("created"),
            "emotions": list(responder.conditions),
        },
    }


def describe(assistant: Assistant) -> dict[str, Any]:
    """:func:`describe_models` of the models ``assistant`` serves."""
    responder = assistant.responder
    return describe_models(assistant.predictor, None if responder is None else responder.info)


def describe_on_disk(model_dir: str | Path, responder_dir: str | Path | None) -> dict[str, Any]:
    """:func:`describe_models` of the model directories, each verified file by file against its
    manifest without loading it; raises :class:`ArtifactError` for a damaged one. A directory
    replaced while it is read is read again, as a load does (:func:`load_consistently`). The
    words an intent model reads otherwise today are not named: the model in service was named
    as it loaded, and a new one is as the reload loads it."""
    classifier = load_consistently(
        model_dir, lambda: verify_artifact(model_dir, name_old_words=False), manifest_name=CLASSIFIER_MANIFEST
    )
    _check_runtime(model_dir, "an intent model", classifier.runtime)
    responder = (
        None
        if responder_dir is None
        else load_consistently(responder_dir, lambda: verify_responder(responder_dir), manifest_name=RESPONDER_MANIFEST)
    )
    if responder is not None and responder_dir is not None:
        _check_runtime(responder_dir, "a responder", str(responder.manifest.get("runtime", "compat")))
    return describe_models(classifier, responder)


def _check_runtime(path: str | Path, kind: str, written_for: str) -> None:
    """Refuse, before it is loaded, a directory written for another runtime than this process
    runs: a worker cannot switch runtimes, and the loader's advice (a ``--runtime``) would name
    a server restart without saying so. Imports no TensorFlow."""
    from compat.selection import selected

    runtime = selected()
    if written_for == runtime:
        return
    if runtime == "tf2":  # migrate makes 'tf2' copies of compat models only
        way = f"put a migrated copy there instead (legacy-assistant migrate {shlex.quote(str(path))} --out DIR)"
    else:
        way = f"put the {runtime!r} model it was migrated from there instead"
    raise ArtifactError(
        f"{path}: {kind} for the {written_for!r} runtime, and this server runs {runtime!r}: {way}, or restart "
        f"the server with --runtime {written_for} and models of that runtime only"
    )


def models_line(model: dict[str, Any]) -> str:
    """``model NAME VERSION, responder NAME VERSION`` (or ``no responder``): how a log line names
    what a worker serves; a reload that changed only the responder shows in it."""
    responder = model.get("responder")
    served = "no responder" if not responder else f"responder {responder['name']} {responder['version']}"
    return f"model {model['name']} {model['version']}, {served}"


def _serving_names(model: dict[str, Any]) -> str:
    """``NAME VERSION`` of the intent model, with ``and responder NAME VERSION`` when there is
    one: a refusal names both models that keep serving, since either may be the damaged one."""
    responder = model.get("responder")
    served = f"{model['name']} {model['version']}"
    return served if not responder else f"{served} and responder {responder['name']} {responder['version']}"


def _same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two descriptions name the same models."""

    def names(model: dict[str, Any]) -> tuple[Any, ...]:
        responder = model.get("responder") or {}
        return model["name"], model["version"], responder.get("name"), responder.get("version")

    return names(one) == names(other)


def _log_cause(exc: BaseException) -> None:
    """Log why a reload was refused, with its traceback, at DEBUG: as text, so that nothing keeps
    the exception (whose traceback holds what the load built) alive."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("reload refused:\n%s", "".join(traceback.format_exception(exc)).rstrip())


def _refused(message: str) -> ReloadError:
    """The error for a refused reload, once what it built is let go: free it (its graphs hold
    reference cycles that only a collection breaks) before it is reported."""
    heap.release_refused()
    return ReloadError(message)


@dataclass
class _Entry:
    assistant: Assistant
    leases: int = 0
    retired: bool = False


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``changed`` is False when the model on disk is the one in service."""

    changed: bool
    model: dict[str, Any]
    previous: dict[str, Any]


class AssistantSlot:
    """The assistant in service, swappable while requests run.

    Args:
        assistant: the assistant to serve first.
        loader: builds a fresh assistant (from the configured model directory) for a reload;
            raises on a missing or damaged model.
        probe: describes (:func:`describe_on_disk`) the models the loader would load, raising
            for a damaged one; a reload that finds the models in service loads nothing. Without
            it every reload loads.
    """

    def __init__(
        self,
        assistant: Assistant,
        loader: Callable[[], Assistant] | None = None,
        probe: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._entry = _Entry(assistant)
        self._loader = loader
        self._probe = probe
        self._lock = threading.Lock()  # guards _entry and lease counts; held for microseconds
        self._reload_lock = threading.Lock()  # one reload at a time
        self._closed = False
        self.model = describe(assistant)
        # waited for at exit; the wait holds the lock, not the slot: a slot nothing holds any more
        # (it has no reload under way: a reload holds its slot) is collected, and its wait dropped
        finish = functools.partial(_finish_reload, self._reload_lock)
        atexit.register(finish)
        weakref.finalize(self, atexit.unregister, finish).atexit = False

    @property
    def reloading(self) -> bool:
        """Whether a reload (on any thread) is under way."""
        return self._reload_lock.locked()

    def wait_for_reload(self, timeout: float | None = None) -> bool:
        """Wait for a reload under way to end, at most ``timeout`` seconds (None: for as long as
        it takes); whether none runs now."""
        if not self._reload_lock.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._reload_lock.release()
        return True

    @property
    def current(self) -> Assistant:
        """The assistant new requests get (for a quick look; a request should :meth:`lease`)."""
        return self._entry.assistant

    @contextlib.contextmanager
    def lease(self) -> Iterator[Assistant]:
        """The assistant in service, kept open until the block ends."""
        with self._lock:
            entry = self._entry
            entry.leases += 1
        try:
            yield entry.assistant
        finally:
            with self._lock:
                entry.leases -= 1
                close = entry.retired and entry.leases == 0
            if close:
                self._close(entry)

    def reload(self, on_swap: Callable[[dict[str, Any], dict[str, Any]], None] | None = None) -> ReloadResult:
        """Load the model again from its directory and swap it in; raises :class:`ReloadError`
        (nothing changed) when it cannot be loaded or does not answer. ``on_swap(model,
        previous)`` runs after a swap, before another reload can start (the gauges naming the
        model in service: two reloads close together must not set them in the wrong order)."""
        loader = self._loader
        if loader is None:
            raise ReloadError("this server was given a fixed model and cannot reload it")
        with self._reload_lock:
            # in a call of its own, whose frame (the retired model's last reference) is gone before
            # the lock is let go: a process that waits at exit for the lock must not end while a
            # daemon thread still frees the model inside TensorFlow, which aborted it
            return self._reload(loader, on_swap)

    def _reload(
        self, loader: Callable[[], Assistant], on_swap: Callable[[dict[str, Any], dict[str, Any]], None] | None
    ) -> ReloadResult:
        """:meth:`reload`'s work, with the reload lock held."""
        if self._closed:  # nothing would serve (or close) what it loaded
            raise ReloadError("the server is shutting down (its model is closed); nothing was loaded")
        previous = self.model
        serving = f"still serving {_serving_names(previous)}"
        refusal: str | None = None
        loading = False  # whether the loader ran: a refusal before it built nothing to free
        try:
            if self._probe is not None and _same(self._probe(), previous):
                log.debug("reload: the models on disk are the ones in service")
                return ReloadResult(False, previous, previous)
            loading = True
            fresh = loader()
        except Exception as exc:  # any failure to load refuses the model, whatever it was
            refusal = f"new model refused, {serving}: {exc}"
            _log_cause(exc)
        if refusal is not None:
            # raised here, not in the handler: the error carries no traceback of the load,
            # whose frames held what it built (closed by the loader as it failed). A
            # directory the check refused built nothing: no collection, whose pause (0.2-1 s
            # with the models frozen in a worker) would stop every request thread for nothing
            raise _refused(refusal) if loading else ReloadError(refusal)
        try:
            fresh.warm_up()  # answers, and its first requests will not wait for TensorFlow
            model = describe(fresh)
        except Exception as exc:
            refusal = f"new model refused (it failed to answer), {serving}: {exc}"
            _log_cause(exc)
        if refusal is not None:
            fresh.close()
            del fresh  # nothing holds it now: the collection frees its graphs
            raise _refused(refusal)
        if _same(model, previous):
            fresh.close()
            del fresh
            heap.release_refused()
            return ReloadResult(False, previous, previous)
        with self._lock:
            closed = self._closed
            if not closed:
                old = self._entry
                # a resend answered by the new one waits for a reply the old one still writes
                fresh.share_writing(old.assistant)
                self._entry = _Entry(fresh)
                self.model = model
                old.retired = True
                close = old.leases == 0
        if closed:  # shut down while this reload loaded: nothing would close it
            fresh.close()
            del fresh
            raise _refused("the server is shutting down; the new model was not installed")
        # Its graphs' reference cycles outlive it: free them once nothing holds it any more.
        weakref.finalize(old.assistant, heap.release_retired_soon)
        if close:
            self._close(old)
        if on_swap is not None:
            on_swap(model, previous)
        # POST /admin/reload reloads on its request's thread: the line names that request
        log.info("now serving %s (was %s)%s", models_line(model), models_line(previous), request_id_suffix())
        return ReloadResult(True, model, previous)

    def _close(self, entry: _Entry) -> None:
        try:
            entry.assistant.close()
        except Exception:  # closing must never fail a request
            log.exception("closing a retired model failed")

    def close(self) -> None:
        """Close the assistant in service (at shutdown)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entry = self._entry
            entry.retired = True
            close = entry.leases == 0
        if close:
            self._close(entry)


def _finish_reload(reload_lock: threading.Lock) -> None:
    """At exit: wait for a slot's reload under way (its ``reload_lock``), and start no other. A
    reload may run on a daemon thread (the request thread of ``POST /admin/reload`` under the
    development server, or a library's own); the process ended with it inside TensorFlow's C++
    code, which aborted it. The lock is kept: a reload asked for later waits on it until the
    process is gone."""
    reload_lock.acquire()
