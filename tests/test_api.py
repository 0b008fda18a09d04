"""Every route through Flask's test client, good and malformed requests alike."""
import codecs
import gzip
import json
import re

import pytest


def post(client, url, body=None, data=None, content_type="application/json"):
    if body is not None:
        return client.post(url, json=body)
    return client.post(url, data=data, content_type=content_type)


def assert_error(response, status, code=None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["message"]
    if code:
        assert error["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)


def test_parse_is_rasa_shaped(client, golden):
    case = golden["cases"][0]
    response = post(client, "/api/v1/parse", {"text": case["text"]})
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["text", "intent", "entities", "intent_ranking"]
    assert body["entities"] == []  # Rasa clients read it; this classifier extracts none
    assert body["text"] == case["text"]
    assert body["intent"]["name"] == case["intent"]
    assert abs(body["intent"]["confidence"] - case["probabilities"][case["intent"]]) < 1e-5
    ranking = body["intent_ranking"]
    assert ranking[0] == body["intent"]
    assert len(ranking) == 10
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)


def test_parse_reports_raw_ranking_even_below_threshold(client, golden, default_predictor):
    threshold = default_predictor.manifest["threshold"]
    low = next(c for c in golden["cases"] if max(c["probabilities"].values()) < threshold)
    body = post(client, "/api/v1/parse", {"text": low["text"]}).get_json()
    assert body["intent"]["name"] == low["intent"] != "fallback"


def test_chat_reply_and_context_flow(client):
    def say(message, sender="alice"):
        response = post(client, "/api/v1/chat", {"sender": sender, "message": message})
        assert response.status_code == 200
        body = response.get_json()
        assert list(body) == ["sender", "reply", "intent", "confidence", "reason", "generated", "replayed"]
        assert body["generated"] is False  # no responder in this app
        assert body["sender"] == sender
        return body

    assert say("hello there")["intent"] == "greeting"
    assert say("I'd like to order a coffee please")["intent"] == "order_coffee"
    # "a large one" is only understood inside the coffee flow; outside it the reply says so
    outside = say("a large one", sender="bob")
    assert (outside["intent"], outside["reason"]) == ("fallback", "needs_context")
    assert say("a large one")["intent"] == "coffee_size_large"
    assert say("with oat milk")["intent"] == "milk_yes"
    # classic context: what follows a booking request is its details, unless it clearly asks
    # for something else
    assert say("could I reserve a table for four tonight")["intent"] == "book_table"
    follow_up = say("7pm, four of us")
    assert (follow_up["intent"], follow_up["confidence"], follow_up["reason"]) == ("book_table_time", 1.0, "follow_up")
    assert say("could I reserve a table for four tonight")["intent"] == "book_table"
    assert say("what's on the menu today")["intent"] == "menu"


def test_chat_falls_back_below_threshold_and_on_unknown_words(client, golden, default_predictor):
    threshold = default_predictor.manifest["threshold"]
    low = next(c for c in golden["cases"] if max(c["probabilities"].values()) < threshold)
    body = post(client, "/api/v1/chat", {"sender": "c", "message": low["text"]}).get_json()
    assert body["intent"] == "fallback"
    fallback_responses = default_predictor.manifest["fallback"]["responses"]
    assert body["reply"] in fallback_responses
    body = post(client, "/api/v1/chat", {"sender": "c", "message": "qwerty asdf zxcv"}).get_json()
    assert body["intent"] == "fallback"


def test_classic_route_shape(client):
    response = post(client, "/katana-ml/api/v1.0/assistant", {"sentence": "what are your opening hours"})
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body, list) and body
    assert body[0]["intent"] == "opening_hours"
    assert isinstance(body[0]["probability"], str) and 0.25 < float(body[0]["probability"]) <= 1.0
    assert all(set(item) == {"intent", "probability"} for item in body)


def test_the_classic_route_lists_no_intent_where_chat_answers_with_the_fallback(client):
    """The out-of-scope class came back as an intent (a classic client looks its answers up in
    the intents file, where it has none), and a message of no known word got the network's
    biases alone as intents."""
    for sentence, reason in (("did you see the match on tv", "out_of_scope"), ("Привет, как дела?", "not_understood")):
        chat = post(client, "/api/v1/chat", {"sender": f"classic-{reason}", "message": sentence}).get_json()
        assert chat["reason"] == reason, chat
        response = post(client, "/katana-ml/api/v1.0/assistant", {"sentence": sentence})
        assert response.status_code == 200 and response.get_json() == [], (sentence, response.get_json())


def test_health_and_index(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    assert health.get_json()["model"] == "default"
    page = client.get("/")
    assert page.status_code == 200 and b"<html" in page.data
    assert b'src="static/chat.js"' in page.data
    assert client.get("/static/chat.js").status_code == 200
    assert b"https://" not in page.data  # no CDN


ROUTES = [("/api/v1/parse", "text"), ("/api/v1/chat", "message"), ("/katana-ml/api/v1.0/assistant", "sentence")]


def full_body(url, field, value):
    body = {field: value}
    if url.endswith("/chat"):
        body["sender"] = "x"
    return body


@pytest.mark.parametrize("url, field", ROUTES)
def test_malformed_bodies_get_json_400(client, url, field):
    assert_error(post(client, url, data="{not json"), 400, "invalid_json")
    assert_error(post(client, url, data="[1, 2]"), 400, "invalid_body")
    assert_error(post(client, url, data='"text"'), 400, "invalid_body")
    assert_error(post(client, url, {}), 400, "missing_field")
    assert_error(post(client, url, full_body(url, field, 42)), 400, "invalid_field")
    assert_error(post(client, url, full_body(url, field, None)), 400, "invalid_field")
    assert_error(post(client, url, full_body(url, field, "   ")), 400, "empty_field")
    assert_error(post(client, url, full_body(url, field, "a" * 1001)), 400, "field_too_long")
    assert_error(post(client, url, data="text=hi", content_type="application/x-www-form-urlencoded"), 415)
    plain_body = json.dumps(full_body(url, field, "hello"))
    assert_error(post(client, url, data=plain_body, content_type="text/json"), 415)
    # a structured-syntax JSON type is JSON, as API.md says (RFC 6839)
    assert post(client, url, data=plain_body, content_type="application/vnd.api+json").status_code == 200
    assert_error(post(client, url, data=b"\xff\xfe", content_type="application/json"), 400)
    utf16 = json.dumps(full_body(url, field, "hello")).encode("utf-16")  # with its byte order mark
    assert_error(post(client, url, data=utf16, content_type="application/json"), 400, "invalid_json")
    assert_error(post(client, url, data=utf16[2:], content_type="application/json"), 400, "invalid_json")
    with_bom = codecs.BOM_UTF8 + json.dumps(full_body(url, field, "hello")).encode("utf-8")
    assert post(client, url, data=with_bom, content_type="application/json").status_code == 200
    plain = json.dumps(full_body(url, field, "hello")).encode("utf-8")
    gzipped = client.post(url, data=gzip.compress(plain), content_type="application/json",
                          headers={"Content-Encoding": "gzip"})
    assert_error(gzipped, 415, "unsupported_media_type")
    assert "Content-Encoding 'gzip'" in gzipped.get_json()["error"]["message"]
    identity = client.post(url, data=plain, content_type="application/json", headers={"Content-Encoding": "identity"})
    assert identity.status_code == 200
    huge = ('{"%s": ' % field) + "9" * 5000 + "}"  # valid JSON, an integer Python will not read
    response = post(client, url, data=huge)
    assert_error(response, 400, "invalid_json")
    message = response.get_json()["error"]["message"]
    assert "cannot read (more than 4,300 digits)" in message and "sys." not in message  # not Python's advice


@pytest.mark.parametrize("url, field", ROUTES)
def test_json_that_python_reads_but_json_does_not_have_is_400(client, url, field):
    """NaN and Infinity are not JSON; a key named twice would silently take its last value
    (a webhook ``sender`` of NaN was the conversation "nan")."""
    body = json.dumps(full_body(url, field, "hello"))
    for constant in ("NaN", "Infinity", "-Infinity"):
        response = post(client, url, data=body[:-1] + f', "extra": {constant}}}')
        assert_error(response, 400, "invalid_json")
        assert f"{constant} is not a JSON value" in response.get_json()["error"]["message"]
    twice = post(client, url, data=body[:-1] + f', "{field}": "again"}}')
    assert_error(twice, 400, "invalid_json")
    assert f"names {field!r} twice" in twice.get_json()["error"]["message"]
    nested = post(client, url, data=body[:-1] + ', "extra": {"a": 1, "a": 2}}')
    assert_error(nested, 400, "invalid_json")
    assert post(client, url, data=body[:-1] + ', "extra": {"a": 1, "b": [1e308, -0.0]}}').status_code == 200


def test_chat_sender_is_validated(client):
    assert_error(post(client, "/api/v1/chat", {"message": "hi"}), 400, "missing_field")
    assert_error(post(client, "/api/v1/chat", {"sender": ["x"], "message": "hi"}), 400, "invalid_field")


def test_unknown_route_wrong_method_and_huge_body_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/api/v1/parse"), 405, "method_not_allowed")
    assert_error(post(client, "/api/v1/parse", data='{"text": "' + "a" * 70000 + '"}'), 413)


def test_doubled_slashes_are_a_json_404_not_a_redirect(client):
    assert_error(post(client, "/api//v1/chat", {"sender": "s", "message": "hi"}), 404, "not_found")
    assert_error(client.get("/static//chat.js"), 404, "not_found")


def test_a_missing_static_file_is_not_called_a_missing_route(client):
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404 and missing.get_json()["error"]["message"] == "nothing at '/static/nope.js'"
    assert client.get("/nope").get_json()["error"]["message"].startswith("no route '/nope'")


def test_405_keeps_its_allow_header(client):
    response = client.get("/api/v1/chat")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("url, field", ROUTES)
def test_deep_nesting_and_invalid_unicode_are_400(client, url, field):
    deep = "[" * 20000 + "]" * 20000
    assert_error(post(client, url, data=deep), 400, "invalid_json")
    # 12,000 deep (60,001 bytes, under the body limit): Python 3.13's parser takes 9,000, where
    # 3.10-3.12 gave up before 5,000
    assert_error(post(client, url, data='{"":' * 12000 + "1" + "}" * 12000), 400, "invalid_json")
    body = '{"text": "\\ud800", "message": "\\ud800", "sentence": "\\ud800", "sender": "x"}'
    assert_error(post(client, url, data=body), 400, "invalid_field")


def test_text_cap_is_configurable(default_predictor):
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0),
                          MemoryStore())
    client = create_app({"TESTING": True, "MAX_TEXT_LENGTH": 20, "MAX_CONTENT_LENGTH": 1000},
                        assistant=assistant).test_client()
    assert post(client, "/api/v1/parse", {"text": "a" * 20}).status_code == 200
    response = post(client, "/api/v1/parse", {"text": "a" * 21})
    assert_error(response, 400, "field_too_long")
    assert "20 characters" in response.get_json()["error"]["message"]
    assert_error(post(client, "/api/v1/parse", data='{"text": "' + "a" * 1200 + '"}'), 413, "request_entity_too_large")


def test_rasa_rest_webhook(client):
    def say(message, sender="rasa-user"):
        response = post(client, "/webhooks/rest/webhook", {"sender": sender, "message": message})
        assert response.status_code == 200
        return response.get_json()

    first = say("I'd like to order a coffee")
    assert isinstance(first, list) and len(first) == 1
    assert first[0]["recipient_id"] == "rasa-user" and first[0]["text"]
    assert set(first[0]) == {"recipient_id", "text"}
    # the conversation is shared with /api/v1/chat: the same sender continues the flow there
    follow = post(client, "/api/v1/chat", {"sender": "rasa-user", "message": "a large one"}).get_json()
    assert follow["intent"] == "coffee_size_large"
    health = client.get("/webhooks/rest/")  # Rasa's health check of the channel
    assert health.status_code == 200 and health.get_json() == {"status": "ok"}
    anonymous = post(client, "/webhooks/rest/webhook", {"message": "hello"}).get_json()
    assert anonymous[0]["recipient_id"] == "default"
    assert_error(post(client, "/webhooks/rest/webhook", {"sender": "x"}), 400, "missing_field")
    # as Rasa's UserMessage reads it: null is the default conversation, a number its decimal text
    assert post(client, "/webhooks/rest/webhook", {"sender": None, "message": "hi"}).get_json()[0][
        "recipient_id"] == "default"
    assert post(client, "/webhooks/rest/webhook", {"sender": 12345, "message": "hi"}).get_json()[0][
        "recipient_id"] == "12345"
    assert post(client, "/webhooks/rest/webhook", {"sender": 1e20, "message": "hi"}).get_json()[0][
        "recipient_id"] == "1e+20"
    huge = client.post("/webhooks/rest/webhook", data='{"sender": 1e400, "message": "hi"}', content_type="application/json")
    assert_error(huge, 400, "invalid_field")
    for sender in (True, ["x"], {"id": 1}, "  "):
        assert post(client, "/webhooks/rest/webhook", {"sender": sender, "message": "hi"}).status_code == 400, sender


def test_rasa_webhook_takes_a_trailing_slash_as_rasas_server_does(client):
    """Rasa's server (Sanic, not strict about trailing slashes) answers the channel at
    ``/webhooks/rest/webhook/`` too; a client configured with that URL got a 404 here."""
    answer = post(client, "/webhooks/rest/webhook/", {"sender": "slash", "message": "I'd like to order a coffee"})
    assert answer.status_code == 200
    assert answer.get_json()[0]["recipient_id"] == "slash"
    # the same channel and conversation: the flow goes on through the path without the slash
    follow = post(client, "/api/v1/chat", {"sender": "slash", "message": "a large one"}).get_json()
    assert follow["intent"] == "coffee_size_large"
    assert_error(client.get("/webhooks/rest/webhook/"), 405, "method_not_allowed")


HOURS = "Our hours:\n\nWeekdays 7 to 18.\nWeekends 8 to 17.\n"


def hours_client(predictor):
    """A test client whose every message gets the reply ``HOURS`` (two paragraphs)."""
    from legacy_assistant.classifier.predictor import Prediction
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy, IntentRule
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    policy = DialoguePolicy([IntentRule("hours", (HOURS,))], ["Sorry?"], 0.25)
    assistant = Assistant(predictor, policy, MemoryStore(), classify=lambda _: Prediction([("hours", 0.9)], 1))
    return create_app({"TESTING": True}, assistant=assistant).test_client()


def test_rasa_webhook_sends_a_reply_of_several_paragraphs_as_rasa_does(default_predictor):
    """Rasa's REST channel sends a text as one message per part between blank lines (its
    CollectingOutputChannel strips the text and splits it at "\\n\\n"); /api/v1/chat keeps it whole."""
    text = HOURS
    client = hours_client(default_predictor)
    answer = post(client, "/webhooks/rest/webhook", {"sender": "rasa-user", "message": "when do you open?"})
    assert answer.status_code == 200
    assert answer.get_json() == [
        {"recipient_id": "rasa-user", "text": "Our hours:"},
        {"recipient_id": "rasa-user", "text": "Weekdays 7 to 18.\nWeekends 8 to 17."},
    ]
    chat = post(client, "/api/v1/chat", {"sender": "rasa-user", "message": "when do you open?"}).get_json()
    assert chat["reply"] == text


def test_rasa_webhook_streams_one_json_line_a_message_with_stream_true(default_predictor):
    """Rasa's channel answers ``?stream=true`` with each bot message as a line of JSON (its
    clients, rasa's own console among them, read the lines and parse each into one message);
    a list on one line was parsed as a list, which has no ``text`` or ``recipient_id``."""
    client = hours_client(default_predictor)
    for flag in ("true", "True"):  # as Rasa reads the flag: "true" in any case
        answer = post(client, f"/webhooks/rest/webhook?stream={flag}", {"sender": "streamer", "message": "hours?"})
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "text/event-stream"  # as Rasa sends it
        body = answer.get_data(as_text=True)
        assert body.endswith("\n")
        assert [json.loads(line) for line in body.split("\n")[:-1]] == [
            {"recipient_id": "streamer", "text": "Our hours:"},
            {"recipient_id": "streamer", "text": "Weekdays 7 to 18.\nWeekends 8 to 17."},
        ]
    for other in ("false", "1", "yes", ""):  # only "true" streams
        listed = post(client, f"/webhooks/rest/webhook?stream={other}", {"sender": "streamer", "message": "hours?"})
        assert listed.is_json and len(listed.get_json()) == 2, other
    # a refused message is the JSON error, streamed or not
    assert_error(post(client, "/webhooks/rest/webhook?stream=true", {"sender": "streamer"}), 400, "missing_field")


def test_version_and_request_ids(client, default_predictor):
    response = client.get("/version")
    body = response.get_json()
    assert body["service"] == "legacy-assistant"
    assert body["model"]["name"] == "default"
    assert body["model"]["version"] == default_predictor.manifest["manifest_sha256"][:12]
    assert body["model"]["intents"] == len(default_predictor.classes)
    generated = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", generated)
    assert generated != client.get("/version").headers["X-Request-ID"]
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    odd = client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"}).headers["X-Request-ID"]
    assert odd != "bad id\twith spaces" and re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", odd)


def test_one_access_log_line_per_request(client, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="legacy_assistant.access"):
        post(client, "/api/v1/parse", {"text": "hello"}, )
        client.get("/nope", headers={"X-Request-ID": "req-42"})
    lines = [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.access"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /api/v1/parse 200 ") and "ms id=" in lines[0]
    assert lines[1].startswith("GET /nope 404 ") and lines[1].endswith("id=req-42")


def test_a_path_cannot_forge_an_access_log_line(client, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="legacy_assistant.access"):
        client.get("/x%0Alegacy_assistant.access: POST /admin/reload 200 1.00ms id=forged")
        client.get("/caf%C3%A9 menu")
    lines = [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.access"]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[0].startswith("GET /x%0Alegacy_assistant.access:%20POST%20/admin/reload%20200%201.00ms%20id=forged 404 ")
    assert lines[1].startswith("GET /caf%C3%A9%20menu 404 ")


def test_a_method_cannot_put_escape_sequences_in_the_access_log(client, caplog):
    """The development server takes any run of non-blank characters for a method."""
    import logging

    with caplog.at_level(logging.INFO, logger="legacy_assistant.access"):
        client.open("/x", method="\x1b[2J\x1b[31mGET")
        client.open("/x", method="BREW")
    lines = [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.access"]
    assert len(lines) == 2 and not any("\x1b" in line for line in lines)
    assert lines[0].startswith("%1B%5B2J%1B%5B31MGET /x 404 ")
    assert lines[1].startswith("BREW /x 404 ")  # a made-up verb that is a token stays as sent


def test_the_access_log_does_not_give_away_a_senders_transcript(client, caplog):
    import logging

    post(client, "/api/v1/chat", {"sender": "web-5ec2e7", "message": "my number is 555-0199"})
    with caplog.at_level(logging.INFO, logger="legacy_assistant.access"):
        assert client.get("/api/v1/conversations/web-5ec2e7").status_code == 200
        client.get("/api/v1/conversations/other")
        client.get("/api/v1/conversations/web-5ec2e7")
    lines = [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.access"]
    assert len(lines) == 3 and not any("web-5ec2e7" in line or "other" in line for line in lines)
    paths = [line.split()[1] for line in lines]
    assert paths[0].startswith("/api/v1/conversations/<sender") and lines[0].split()[2] == "200"
    assert paths[0] == paths[2] != paths[1]  # one conversation's lines can still be told apart


def test_store_failure_is_503_json(default_predictor):
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.errors import StoreError
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    class BrokenStore(MemoryStore):
        def save(self, *args):
            raise StoreError("disk on fire")

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest), BrokenStore())
    client = create_app({"TESTING": True}, assistant=assistant).test_client()
    response = post(client, "/api/v1/chat", {"sender": "a", "message": "hi"})
    assert_error(response, 503, "store_unavailable")
    assert "disk on fire" not in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "url, body", [("/api/v1/parse", {"text": "hi"}), ("/api/v1/chat", {"sender": "a", "message": "hi"})]
)
def test_a_closed_batcher_is_503_shutting_down(default_predictor, url, body):
    """A request that meets a model closed at shutdown is told to retry, not given a 500."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.batching import BatchedClassifier
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    classifier = BatchedClassifier(default_predictor, 4, 0)
    classifier.close()  # its batcher now refuses every request, as at shutdown
    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest), MemoryStore(),
                          classify=classifier.predict_one)
    client = create_app({"TESTING": True}, assistant=assistant).test_client()
    response = post(client, url, body)
    assert_error(response, 503, "shutting_down")
    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    "url, body", [("/api/v1/parse", {"text": "hi"}), ("/api/v1/chat", {"sender": "a", "message": "hi"})]
)
def test_a_closed_assistant_is_503_shutting_down(tiny_model_dir, url, body):
    """Without batchers, a closed model's refusal was a 500 where a closed batcher's is a 503."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.web import create_app

    assistant = Assistant.load(tiny_model_dir, seed=0)
    assistant.close()
    client = create_app({"TESTING": True}, assistant=assistant).test_client()
    response = post(client, url, body)
    assert_error(response, 503, "shutting_down")
    assert response.headers["Retry-After"] == "1"


def test_an_unexpected_error_is_a_500_that_gives_nothing_away(default_predictor, caplog):
    """The exception's text (paths, secrets) goes to the log only, never to the client."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    class Broken(Assistant):
        def chat(self, *args, **kwargs):
            raise RuntimeError("secret /path/to/something")

    assistant = Broken(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest), MemoryStore())
    client = create_app({"TESTING": True}, assistant=assistant).test_client()
    with caplog.at_level("ERROR"):
        response = post(client, "/api/v1/chat", {"sender": "a", "message": "hi"})
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "the server failed to handle this request"}
    }
    assert "secret" not in response.get_data(as_text=True)
    assert "secret /path/to/something" in caplog.text  # logged for the operator


def test_an_unexpected_error_is_logged_with_its_request_id(default_predictor, caplog):
    """The error line names the request id the client got (and the access line shows), as
    docs/API.md says: with several requests at once, the id is what ties the two together."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    class Broken(Assistant):
        def chat(self, *args, **kwargs):
            raise RuntimeError("boom")

    assistant = Broken(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest), MemoryStore())
    client = create_app({"TESTING": True}, assistant=assistant).test_client()
    with caplog.at_level("ERROR"):
        body = {"sender": "a", "message": "hi"}
        given = client.post("/api/v1/chat", json=body, headers={"X-Request-ID": "trace-500"})
        generated = client.post("/api/v1/chat", json=body)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.exc_info is not None for r in errors] == [True, True]  # logged once each, with its stack trace
    assert given.headers["X-Request-ID"] == "trace-500" and "id=trace-500" in errors[0].getMessage()
    assert f"id={generated.headers['X-Request-ID']}" in errors[1].getMessage()
    assert errors[0].getMessage().startswith("unhandled error on POST /api/v1/chat ")


def test_a_failure_in_a_response_hook_is_the_same_500_and_its_line_names_no_sender(make_client, caplog):
    """A failure outside a view (an after_request hook) reaches Flask's own handling, which
    answered 500 "internal_server_error" with Werkzeug's text and logged "Exception on PATH
    [METHOD]": the path as sent (a conversation's sender id), without the request's id."""
    client = make_client(PROPAGATE_EXCEPTIONS=False)
    failed = []

    @client.application.after_request
    def fail_once(response):
        if not failed:  # the 500's own answer goes through the hooks as any other
            failed.append(True)
            raise RuntimeError("boom")
        return response

    with caplog.at_level("ERROR"):
        response = client.get("/api/v1/conversations/alice-secret-id", headers={"X-Request-ID": "hook-500"})
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "the server failed to handle this request"}
    }
    assert response.headers["X-Request-ID"] == "hook-500"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert line.startswith("unhandled error on GET /api/v1/conversations/<sender-sha256:") and "id=hook-500" in line
    assert "alice" not in caplog.text


def test_a_bare_status_is_named_as_the_app_names_its_errors():
    """The HTTP server's own error answers use the app's codes: 500 is internal_error, not werkzeug's name."""
    from legacy_assistant.web.errors import status_code_name

    assert status_code_name(500) == "internal_error"
    assert status_code_name(414) == "request_uri_too_long"
    assert status_code_name(400) == "bad_request"


def test_a_body_in_another_charset_is_told_that_json_is_utf8_only(client):
    """JSON is UTF-8 (RFC 8259): a declared latin-1 body is not read as latin-1, and the 400
    says so rather than only "not UTF-8"."""
    latin1 = '{"text": "café"}'.encode("latin-1")
    response = post(client, "/api/v1/parse", data=latin1, content_type="application/json; charset=latin-1")
    assert_error(response, 400, "invalid_json")
    assert response.get_json()["error"]["message"] == (
        "the request body is not UTF-8: JSON is read as UTF-8 only, not as 'latin-1'"
    )
    ascii_only = post(client, "/api/v1/parse", data=b'{"text": "hello"}', content_type="application/json; charset=latin-1")
    assert ascii_only.status_code == 200  # the same bytes in both: read
    utf8 = post(client, "/api/v1/parse", data=b'{"text": "caf\xc3\xa9"}', content_type="application/json; charset=UTF-8")
    assert utf8.status_code == 200


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_utf16_or_utf32_body_without_byte_order_mark_is_told_it_is_not_utf8(client, encoding):
    """ASCII text in UTF-16 or UTF-32 is valid UTF-8 with NULs between the characters: it is
    still a body that is not UTF-8, and a declared charset is named, as for any other."""
    body = '{"text": "hello"}'.encode(encoding)
    undeclared = post(client, "/api/v1/parse", data=body, content_type="application/json")
    assert_error(undeclared, 400, "invalid_json")
    assert undeclared.get_json()["error"]["message"] == "the request body is not UTF-8"
    charset = encoding[:6]
    declared = post(client, "/api/v1/parse", data=body, content_type=f"application/json; charset={charset}")
    assert_error(declared, 400, "invalid_json")
    assert declared.get_json()["error"]["message"] == (
        f"the request body is not UTF-8: JSON is read as UTF-8 only, not as '{charset}'"
    )


def test_a_websocket_upgrade_is_told_there_is_no_websocket_route(client):
    """Werkzeug refuses a WebSocket handshake on a plain route with a 400 that blamed "the
    browser (or proxy)" for a request "this server could not understand"."""
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    for response in (client.get("/health", headers=upgrade), client.post("/api/v1/parse", json={"text": "hi"},
                                                                         headers=upgrade)):
        assert_error(response, 400, "bad_request")
        message = response.get_json()["error"]["message"]
        assert "no WebSocket route" in message and "Upgrade: websocket" in message, message
    # a route or method the server does not have answers as it would without the header
    assert_error(client.get("/api/v1/parse", headers=upgrade), 405, "method_not_allowed")
    assert_error(client.get("/no/such/route", headers=upgrade), 404, "not_found")


def test_a_websocket_upgrade_on_a_path_of_two_routes_is_told_there_is_no_websocket_route(client):
    """A conversation's path has a GET route and a DELETE route. Werkzeug let the DELETE route's
    method mismatch win over the GET route's WebSocket mismatch: a handshake (a GET) there was
    answered 405 "method GET is not allowed" with `Allow: DELETE, OPTIONS`, which names neither
    GET nor HEAD, the methods the path does take."""
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade"}
    response = client.get("/api/v1/conversations/alice", headers=upgrade)
    assert_error(response, 400, "bad_request")
    assert "no WebSocket route" in response.get_json()["error"]["message"]
    assert "Allow" not in response.headers
    # a method the path does not take is still a 405 that names those it does
    refused = client.put("/api/v1/conversations/alice", headers=upgrade)
    assert_error(refused, 405, "method_not_allowed")
    assert refused.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"
    # and without the header the routes answer as ever
    assert client.get("/api/v1/conversations/alice").status_code == 200
