"""What the app answers without a real server: ``/ready``, ``OPTIONS``, and the worker registry
``/ready`` reads under gunicorn."""


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
    assert "1 of 3 workers" in response.get_json()["error"]["message"]
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
    from legacy_assistant.serving.server import WorkerRegistry

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
