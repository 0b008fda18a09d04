"""``GET /metrics``: Prometheus text with request, latency, intent, fallback and model metrics."""
from prometheus_client.parser import text_string_to_metric_families

CONVERSATION_ROUTE = "/api/v1/conversations/<sender:sender>"


def samples(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_requests_latency_intents_and_fallbacks(client, default_predictor):
    before = samples(client)
    for _ in range(3):
        client.post("/api/v1/parse", json={"text": "when do you open?"})
    client.post("/api/v1/parse", json={})
    client.post("/api/v1/chat", json={"sender": "m", "message": "qwerty asdf zxcv"})
    client.get("/no/such/route")
    for verb in ("XRANDOM1", "XRANDOM2"):  # made-up methods share one label value
        client.open("/api/v1/parse", method=verb)
    client.get("/api/v1/parse")  # a wrong method counts under the route it was sent to
    client.put("/api/v1/conversations/m")
    after = samples(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "legacy_assistant_http_requests_total"
    assert delta(requests, route="/api/v1/parse", method="POST", status="200") == 3
    assert delta(requests, route="/api/v1/parse", method="POST", status="400") == 1
    assert delta(requests, route="<unmatched>", method="GET", status="404") == 1
    assert delta(requests, route="/api/v1/parse", method="other", status="405") == 2
    assert delta(requests, route="/api/v1/parse", method="GET", status="405") == 1
    assert delta(requests, route=CONVERSATION_ROUTE, method="PUT", status="405") == 1
    assert delta(requests, route="<unmatched>", method="other", status="405") == 0
    assert not any("XRANDOM" in str(key) for key in after)
    latency = "legacy_assistant_http_request_duration_seconds"
    assert delta(latency + "_count", route="/api/v1/parse") == 7  # 200s, the 400 and the 405s
    assert delta(latency + "_sum", route="/api/v1/parse") > 0
    assert delta(latency + "_bucket", route="/api/v1/parse", le="+Inf") == 7
    assert delta("legacy_assistant_predictions_total", intent="opening_hours") == 3
    assert delta("legacy_assistant_predictions_total", intent="fallback") == 1
    assert delta("legacy_assistant_fallbacks_total") == 1
    version = default_predictor.manifest["manifest_sha256"][:12]
    assert value(after, "legacy_assistant_model_info", model="default", version=version) == 1


def test_a_websocket_handshake_counts_under_the_route_it_was_sent_to(client):
    """The 400 a WebSocket handshake gets on a route the server has is that route's, as a 405 is:
    not <unmatched>, which the deployment guide keeps for unknown paths."""
    handshake = {"Upgrade": "websocket", "Connection": "Upgrade"}
    before = samples(client)
    assert client.get("/health", headers=handshake).status_code == 400
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers=handshake).status_code == 400
    assert client.get("/no/such/route", headers=handshake).status_code == 404
    assert client.get("/api/v1/parse", headers=handshake).status_code == 405  # and a wrong method
    after = samples(client)

    def delta(**labels):
        name = "legacy_assistant_http_requests_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(route="/health", method="GET", status="400") == 1
    assert delta(route="/api/v1/parse", method="POST", status="400") == 1
    assert delta(route="<unmatched>", method="GET", status="404") == 1
    assert delta(route="<unmatched>", method="GET", status="400") == 0
    assert delta(route="/api/v1/parse", method="GET", status="405") == 1
    assert delta(route="<unmatched>", method="GET", status="405") == 0


def test_each_worker_reports_its_resident_memory(client, monkeypatch):
    """The figure the worker memory target is about, without shell access to the host."""
    from legacy_assistant.web import metrics

    monkeypatch.setattr(metrics, "MEMORY_SAMPLE_S", 0.0)
    client.get("/health")  # any answered request samples it, when due
    reported = value(samples(client), "legacy_assistant_worker_resident_memory_bytes")
    with open("/proc/self/statm", "rb") as statm:
        rss = int(statm.read().split()[1]) * metrics.PAGE_BYTES
    assert 0.5 * rss < reported <= 1.5 * rss  # this process, TensorFlow and the model loaded: hundreds of MiB
    assert reported > 100 * 2**20


def test_a_worker_reports_its_memory_before_it_answers_anything(make_client):
    """A worker just started (at start-up, or in place of one killed) listed 0 bytes until it
    first answered a request, which on a quiet server could be long after it loaded its model."""
    from prometheus_client import REGISTRY

    from legacy_assistant.web import metrics

    metrics.WORKER_MEMORY.set(0)  # as the gauge starts in a new process
    make_client()  # the app is built: the model is loaded, nothing answered yet
    assert REGISTRY.get_sample_value("legacy_assistant_worker_resident_memory_bytes") > 100 * 2**20


def test_a_removed_metrics_folder_is_made_again_private(tmp_path):
    """The folder made again holds what workers count: as private (0o700) as the first, whatever the umask."""
    import os
    import stat

    from legacy_assistant.serving.metrics_folder import METRICS_ENV, remake_if_removed

    folder = tmp_path / "metrics"  # named in the environment, then removed
    old = os.umask(0o022)
    try:
        remake_if_removed({METRICS_ENV: str(folder)})
    finally:
        os.umask(old)
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_every_reload_outcome_and_generating_route_is_exposed_from_the_start():
    """A counter's series that first appears at 1 is an increase that increase() and rate()
    cannot see: an alert on refused reloads would miss the first one of a server's life."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = (
        "from prometheus_client import REGISTRY, generate_latest\n"
        "import legacy_assistant.web.metrics\n"
        "print(generate_latest(REGISTRY).decode())"
    )
    text = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    def series(name, label):
        return {
            sample.labels[label]: sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        }

    assert series("legacy_assistant_model_reloads_total", "outcome") == {
        "reloaded": 0.0, "unchanged": 0.0, "refused": 0.0
    }
    assert series("legacy_assistant_generated_replies_total", "route") == {"chat": 0.0, "rasa": 0.0, "cakechat": 0.0}


def test_the_deployment_guide_names_every_metric_the_server_exposes():
    from tests.helpers import ROOT

    guide = (ROOT / "docs" / "DEPLOYMENT.md").read_text(encoding="utf-8")
    section = guide.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    import legacy_assistant.web.metrics as metrics

    names = set()
    for value in vars(metrics).values():
        describe = getattr(value, "describe", None)
        if callable(describe) and hasattr(value, "_name"):
            names.update(family.name for family in describe())
    assert names, "no metric found in legacy_assistant.web.metrics"
    missing = sorted(name for name in names if name not in section)
    assert missing == []


def test_a_replaced_model_is_not_listed_any_more(client):
    """One series per replaced version, per worker, for as long as it ran: a worker's files keep
    every series it set (prometheus_client cannot remove one in multiprocess mode), so /metrics
    leaves out the models at 0."""
    from legacy_assistant.web.metrics import model_changed

    def model(version):
        responder = {"name": "test-responder", "version": "r" + version}
        return {"name": "test-model", "version": version, "responder": responder}

    try:
        model_changed(model("v1"))
        model_changed(model("v2"), model("v1"))
        found = samples(client)
        listed = {
            (name, dict(labels)["version"]): value
            for (name, labels), value in found.items()
            if name in ("legacy_assistant_model_info", "legacy_assistant_responder_info")
            and dict(labels).get("model", dict(labels).get("responder", "")).startswith("test-")
        }
        assert listed == {("legacy_assistant_model_info", "v2"): 1.0, ("legacy_assistant_responder_info", "rv2"): 1.0}
    finally:  # what the other tests see: none of these at 1
        from legacy_assistant.web.metrics import MODEL_INFO, RESPONDER_INFO

        MODEL_INFO.labels("test-model", "v2").set(0)
        RESPONDER_INFO.labels("test-responder", "rv2").set(0)


def test_a_workers_replaced_models_are_not_listed_in_multiprocess_mode(tmp_path):
    """As a gunicorn worker writes them: each reload to a new version left one more series."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    code = (
        "from legacy_assistant.web import metrics\n"
        "previous = None\n"
        "for version in ('v1', 'v2', 'v3'):\n"
        "    model = {'name': 'm', 'version': version, 'responder': {'name': 'r', 'version': 'r' + version}}\n"
        "    metrics.model_changed(model, previous)\n"
        "    previous = model\n"
        "print(metrics.exposition()[0].decode())\n"
    )
    environ = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    text = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True,
                          check=True).stdout
    listed = sorted(
        (sample.name, sample.labels["version"], sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("legacy_assistant_model_info", "legacy_assistant_responder_info")
    )
    assert listed == [("legacy_assistant_model_info", "v3", 1.0), ("legacy_assistant_responder_info", "rv3", 1.0)]
    assert "pid" in text.split("legacy_assistant_model_info{", 1)[1].split("}", 1)[0]  # still per worker
