"""Every route through Flask's test client, good and malformed requests alike."""
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
    assert list(body) == ["text", "intent", "intent_ranking"]
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
        assert list(body) == ["sender", "reply", "intent", "confidence"]
        assert body["sender"] == sender
        return body

    assert say("hello there")["intent"] == "greeting"
    assert say("I'd like to order a coffee please")["intent"] == "order_coffee"
    # "a large one" is only understood inside the coffee flow
    assert say("a large one", sender="bob")["intent"] != "coffee_size_large"
    assert say("a large one")["intent"] == "coffee_size_large"
    assert say("with oat milk")["intent"] == "milk_yes"
    # classic context: whatever follows a booking request is its details
    assert say("could I reserve a table for four tonight")["intent"] == "book_table"
    follow_up = say("7pm, four of us")
    assert (follow_up["intent"], follow_up["confidence"]) == ("book_table_time", 1.0)


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


def test_health_and_index(client):
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    assert health.get_json()["model"] == "default"
    page = client.get("/")
    assert page.status_code == 200 and b"<html" in page.data
    assert b"/static/chat.js" in page.data
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
    assert_error(post(client, url, data=b"\xff\xfe", content_type="application/json"), 400)


def test_chat_sender_is_validated(client):
    assert_error(post(client, "/api/v1/chat", {"message": "hi"}), 400, "missing_field")
    assert_error(post(client, "/api/v1/chat", {"sender": ["x"], "message": "hi"}), 400, "invalid_field")


def test_unknown_route_wrong_method_and_huge_body_are_json(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/api/v1/parse"), 405, "method_not_allowed")
    assert_error(post(client, "/api/v1/parse", data='{"text": "' + "a" * 70000 + '"}'), 413)
