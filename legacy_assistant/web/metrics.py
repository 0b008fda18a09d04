"""Prometheus metrics of the web service, and their text exposition for ``GET /metrics``.

Under gunicorn each worker is a process with its own counters. The server runs
``prometheus_client`` in *multiprocess mode*: every worker writes its values to memory-mapped
files in ``PROMETHEUS_MULTIPROC_DIR`` (set by the master before it forks), and whichever worker
answers ``/metrics`` adds up the files of all workers, so counters and histograms are totals
for the whole server. ``legacy_assistant_model_info`` is per worker (a ``pid`` label), which
shows, after a reload, which worker serves which model. Without that variable (dev server,
tests) metrics live in this process's default registry.

A worker's files cannot drop a series (``prometheus_client`` has no removal in multiprocess
mode), so a model replaced is set to 0 there, and :func:`exposition` leaves those 0s out: each
worker shows the models it serves now, not one series more per reload for as long as it runs.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from legacy_assistant.serving import metrics_folder

MULTIPROCESS_ENV = metrics_folder.METRICS_ENV
SCRAPE_TRIES = 3
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

REQUESTS = Counter(
    "legacy_assistant_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "legacy_assistant_http_request_duration_seconds",
    "Time from request to response, by route template",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter(
    "legacy_assistant_predictions",
    "Answers by intent (the dialogue's choice for chat turns, the top intent for parse and classic requests)",
    ["intent"],
)
FALLBACKS = Counter("legacy_assistant_fallbacks", "Chat turns answered with the fallback")
# Counted by each worker for each reload it runs: one POST /admin/reload to a server of N workers
# adds N to "reloaded" (each worker loads the new model once) and 1 to "unchanged" (the worker
# that answered reloads again on the SIGHUP it sends the master, and finds its models on disk).
RELOADS = Counter(
    "legacy_assistant_model_reloads",
    "Model reloads run by the workers, by outcome (reloaded: new models swapped in; unchanged: the models "
    "on disk were those in service, nothing loaded; refused)",
    ["outcome"],
)
RELOAD_OUTCOMES = ("reloaded", "unchanged", "refused")
# Each outcome is exposed, at 0, from the start: a series that first appears at 1 is one that
# increase() and rate() cannot see go up, so an alert on refused reloads missed the first one.
for _outcome in RELOAD_OUTCOMES:
    RELOADS.labels(_outcome)
# The gauges that name what a worker serves: 1 for what it serves now, 0 for what it served before.
MODEL_INFO_NAME = "legacy_assistant_model_info"
RESPONDER_INFO_NAME = "legacy_assistant_responder_info"
MODEL_INFO = Gauge(
    MODEL_INFO_NAME,
    "The model in service (value 1; models since replaced are not listed)",
    ["model", "version"],
    multiprocess_mode="liveall",
)
RESPONDER_INFO = Gauge(
    RESPONDER_INFO_NAME,
    "The generative responder in service (value 1; responders since replaced are not listed)",
    ["responder", "version"],
    multiprocess_mode="liveall",
)
GENERATED = Counter(
    "legacy_assistant_generated_replies",
    "Replies the responder generated, by route (chat fallbacks and the cakechat API)",
    ["route"],
)
GENERATED_ROUTES = ("chat", "rasa", "cakechat")
for _route in GENERATED_ROUTES:  # at 0 from the start, as the reload outcomes
    GENERATED.labels(_route)
WORKER_MEMORY = Gauge(
    "legacy_assistant_worker_resident_memory_bytes",
    "Resident memory (RSS) of each worker process, sampled as it answers requests (at most every 10 s)",
    multiprocess_mode="liveall",
)
MEMORY_SAMPLE_S = 10.0
# None where there is no /proc (the gauge then stays empty)
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None
BATCH_SIZES = Histogram(
    "legacy_assistant_batch_size",
    "Requests answered by one batched model call, by model (classifier or responder)",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


# The route of a request the HTTP server refused before the app saw it (a request line or
# header over its limits, a request that is not HTTP): no route, and often no method, is known.
REJECTED_ROUTE = "<rejected>"


def count_rejected(status: int) -> None:
    """Count a request gunicorn answered itself with ``status`` (no latency: it was not timed)."""
    REQUESTS.labels(REJECTED_ROUTE, "other", str(status)).inc()


class RequestMetrics:
    """Per-request recording with the labelled children cached (``labels()`` is not free)."""

    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], Any] = {}
        self._latency: dict[str, Any] = {}
        self._predictions: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._memory_due = 0.0  # time.monotonic() of the next memory sample

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        counter = self._requests.get(key)
        if counter is None:
            with self._lock:
                counter = self._requests.setdefault(key, REQUESTS.labels(route, method, str(status)))
        counter.inc()
        histogram = self._latency.get(route)
        if histogram is None:
            with self._lock:
                histogram = self._latency.setdefault(route, LATENCY.labels(route))
        histogram.observe(seconds)
        now = time.monotonic()
        if now >= self._memory_due:  # two threads may both sample at once: harmless
            self._memory_due = now + MEMORY_SAMPLE_S
            sample_memory()

    def prediction(self, intent: str, fallback: bool = False) -> None:
        counter = self._predictions.get(intent)
        if counter is None:
            with self._lock:
                counter = self._predictions.setdefault(intent, PREDICTIONS.labels(intent))
        counter.inc()
        if fallback:
            FALLBACKS.inc()


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (``/proc/self/statm``), None where unknown."""
    if PAGE_BYTES is None:
        return None
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return None


def sample_memory() -> None:
    """Set ``legacy_assistant_worker_resident_memory_bytes`` to this process's resident memory."""
    rss = resident_bytes()
    if rss is not None:
        WORKER_MEMORY.set(rss)


def model_changed(model: dict[str, Any], previous: dict[str, Any] | None = None) -> None:
    """Point ``legacy_assistant_model_info`` (and ``legacy_assistant_responder_info``) at ``model``
    (a :func:`legacy_assistant.serving.hotswap.describe`)."""
    if previous is not None:
        MODEL_INFO.labels(previous["name"], previous["version"]).set(0)
        if previous.get("responder"):
            RESPONDER_INFO.labels(previous["responder"]["name"], previous["responder"]["version"]).set(0)
    MODEL_INFO.labels(model["name"], model["version"]).set(1)
    if model.get("responder"):
        RESPONDER_INFO.labels(model["responder"]["name"], model["responder"]["version"]).set(1)


def generated(route: str) -> None:
    GENERATED.labels(route).inc()


def batch_observer(model: str) -> Any:
    """A callable recording the size of each batched call of ``model``."""
    histogram = BATCH_SIZES.labels(model)
    return histogram.observe


def reload_outcome(outcome: str) -> None:
    RELOADS.labels(outcome).inc()


SERVING_INFO = frozenset({MODEL_INFO_NAME, RESPONDER_INFO_NAME})


class _InService:
    """``collector``'s metrics without the samples of :data:`SERVING_INFO` at 0: the models a
    worker no longer serves (its file keeps them, as it keeps every series it ever set)."""

    def __init__(self, collector: Any) -> None:
        self._collector = collector

    def collect(self) -> Any:
        for metric in self._collector.collect():
            if metric.name in SERVING_INFO:
                metric.samples = [sample for sample in metric.samples if sample.value != 0]
            yield metric


def exposition() -> tuple[bytes, str]:
    """The metrics of the whole server in Prometheus text format, and its content type."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client.multiprocess import MultiProcessCollector

        metrics_folder.remake_if_removed()
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        for _ in range(SCRAPE_TRIES - 1):
            try:
                return generate_latest(_InService(registry)), CONTENT_TYPE_LATEST
            except FileNotFoundError:
                # the master removed an ended worker's files of zeros between the listing and
                # the read (prometheus_client forgives that only for live gauges): list again
                continue
        return generate_latest(_InService(registry)), CONTENT_TYPE_LATEST
    return generate_latest(_InService(REGISTRY)), CONTENT_TYPE_LATEST
