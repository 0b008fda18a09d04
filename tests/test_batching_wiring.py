"""The server's model calls go through the batchers when BATCHING is on, and straight to the
models when it is off; answers are the same either way."""

import threading

import pytest

from legacy_assistant.web import create_app

SENTENCES = ["hello there", "when do you open?", "I want a coffee", "where are you?", "bye", "qwertyuiop"]


def batch_count(client, model):
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(f'legacy_assistant_batch_size_count{{model="{model}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def clients():
    made = {
        switch: create_app(
            {"TESTING": True, "STORE_URL": "memory", "BATCHING": switch, "GENERATION_MODE": "greedy"}
        )
        for switch in (True, False)
    }
    yield {switch: app.test_client() for switch, app in made.items()}
    for app in made.values():
        app.extensions["legacy_assistant"].close()


def test_batching_on_routes_every_model_call_through_a_batcher(clients):
    on, off = clients[True], clients[False]
    before = {model: batch_count(on, model) for model in ("classifier", "responder")}
    body = {"context": ["Do you like movies?"], "emotion": "joy"}
    results = {}
    for name, client in (("on", on), ("off", off)):
        parses = [client.post("/api/v1/parse", json={"text": s}).get_json() for s in SENTENCES]
        reply = client.post("/cakechat_api/v1/actions/get_response", json=body).get_json()
        results[name] = (parses, reply)
    assert batch_count(on, "classifier") == before["classifier"] + len(SENTENCES)
    assert batch_count(on, "responder") == before["responder"] + 1
    on_parses, off_parses = results["on"][0], results["off"][0]
    for a, b in zip(on_parses, off_parses):
        assert [r["name"] for r in a["intent_ranking"]] == [r["name"] for r in b["intent_ranking"]]
        assert abs(a["intent"]["confidence"] - b["intent"]["confidence"]) < 1e-5
    assert results["on"][1] == results["off"][1]


def test_concurrent_chat_turns_each_get_their_own_answer(clients):
    on, off = clients[True], clients[False]
    expected = {s: off.post("/api/v1/parse", json={"text": s}).get_json()["intent"]["name"] for s in SENTENCES}
    seen, failures = [], []

    def work(k):
        # the test client is not shared between threads: each builds its own
        client = on.application.test_client()
        for i in range(20):
            text = SENTENCES[(k + i) % len(SENTENCES)]
            body = client.post("/api/v1/parse", json={"text": text}).get_json()
            if body["intent"]["name"] != expected[text] or body["text"] != text:
                failures.append((text, body))
            seen.append(text)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(seen) == 160
