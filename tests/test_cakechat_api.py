"""cakechat's route, ``POST /cakechat_api/v1/actions/get_response``, through Flask's test client:
its replies, every one of cakechat's error texts, and the 4xx answers where cakechat said 500."""

import pytest

from legacy_assistant.responder.modes import CAKECHAT_EMOTIONS

ROUTE = "/cakechat_api/v1/actions/get_response"
EMOTION_LIST = "['neutral', 'anger', 'joy', 'fear', 'sadness']"


@pytest.fixture
def client(make_talking_client):
    return make_talking_client()


def refused(response, status, message=None, code=None):
    """The body of an error: cakechat's ``message`` beside this project's ``error`` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"message", "error"}
    assert body["message"] and body["error"]["message"] and body["error"]["code"]
    if message is not None:
        assert body["message"] == message
    if code is not None:
        assert body["error"]["code"] == code
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def test_reply_is_the_responders_own(client, default_responder):
    context = ["Hi there!", "Hello, how are you?", "I am fine. Do you like movies?"]
    for emotion in CAKECHAT_EMOTIONS:
        response = client.post(ROUTE, json={"context": context, "emotion": emotion, "mode": "greedy"})
        assert response.status_code == 200
        assert list(response.get_json()) == ["response"]
        expected = default_responder.respond(context, emotion, "greedy")
        assert response.get_json()["response"] == (expected or "\U0001f64a")


def test_only_the_last_three_turns_count(client):
    turns = ["I hate rain.", "Me too.", "Do you like movies?", "Yes, very much.", "Which one?"]
    full = client.post(ROUTE, json={"context": turns, "mode": "greedy"}).get_json()
    last = client.post(ROUTE, json={"context": turns[-3:], "mode": "greedy"}).get_json()
    assert full == last
    other = client.post(ROUTE, json={"context": ["Totally different start."] + turns[-3:], "mode": "greedy"})
    assert other.get_json() == last


def test_turns_with_no_word_do_not_take_the_place_of_turns_with_words(client):
    """Zero-width spaces hold no token: the route reads the last three turns that hold words."""
    turns = ["Do you like movies?", "Yes, very much.", "Which one?"]
    last = client.post(ROUTE, json={"context": turns, "mode": "greedy"})
    padded = client.post(ROUTE, json={"context": turns + ["\u200b"] * 3, "mode": "greedy"})
    assert padded.status_code == 200 and padded.get_json() == last.get_json()
    alone = client.post(ROUTE, json={"context": ["hello there"] + ["\u200b"] * 3, "mode": "greedy"})
    assert alone.status_code == 200 and alone.get_json()["response"]


@pytest.mark.parametrize("silent", ["", " ... ?!"])
def test_a_reply_that_says_nothing_is_answered_with_cakechats_default_response(
    client, monkeypatch: pytest.MonkeyPatch, silent: str
) -> None:
    """cakechat's API answered its DEFAULT_RESPONSE (a see-no-evil monkey) where the model's
    reply held no word: an empty reply, or one of punctuation only."""
    from legacy_assistant.serving.assistant import Assistant

    monkeypatch.setattr(Assistant, "respond", lambda self, *args, **kwargs: silent)
    response = client.post(ROUTE, json={"context": ["hello there"], "mode": "greedy"})
    assert response.status_code == 200
    assert response.get_json() == {"response": "\U0001f64a"}


def test_a_reply_of_only_emoji_is_answered_as_it_is(client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A responder trained on chat text answers with emoji alone: that reply was replaced by
    the default response, as if it said nothing."""
    from legacy_assistant.serving.assistant import Assistant

    monkeypatch.setattr(Assistant, "respond", lambda self, *args, **kwargs: "\U0001f602\U0001f602")
    response = client.post(ROUTE, json={"context": ["hello there"], "mode": "greedy"})
    assert response.status_code == 200 and response.get_json() == {"response": "\U0001f602\U0001f602"}


def test_emotion_defaults_to_neutral(client):
    context = ["What do you do for fun?"]
    plain = client.post(ROUTE, json={"context": context, "mode": "greedy"}).get_json()
    neutral = client.post(ROUTE, json={"context": context, "emotion": "neutral", "mode": "greedy"}).get_json()
    null = client.post(ROUTE, json={"context": context, "emotion": None, "mode": "greedy"}).get_json()
    assert plain == neutral == null


def test_a_seed_repeats_a_sampled_reply(client):
    body = {"context": ["Tell me about your weekend."], "mode": "sample", "seed": 1234}
    replies = {client.post(ROUTE, json=body).get_json()["response"] for _ in range(3)}
    assert len(replies) == 1
    drawn = {
        client.post(ROUTE, json={**body, "seed": seed}).get_json()["response"] for seed in range(12)
    }
    assert len(drawn) > 1  # the seed is used, not ignored


def test_a_request_may_ask_for_its_own_condition_strength(client, default_responder):
    contexts = [["Do you like football?"], ["I watched a movie last night.", "Which one?"], ["Hello!"]]
    replies = {}
    for strength in (None, 0, 2.5):
        extra = {} if strength is None else {"condition_strength": strength}
        for context in contexts:
            for emotion in ("joy", "sadness"):
                body = {"context": context, "emotion": emotion, "mode": "greedy", **extra}
                response = client.post(ROUTE, json=body)
                assert response.status_code == 200, response.get_data(as_text=True)
                replies[strength, emotion, tuple(context)] = response.get_json()["response"]
                expected = default_responder.respond(context, emotion, "greedy", None, strength)
                assert replies[strength, emotion, tuple(context)] == (expected or "\U0001f64a")
    keys = [(emotion, tuple(c)) for c in contexts for emotion in ("joy", "sadness")]
    # (tuples spelt out: a starred index is Python 3.11 syntax)
    assert [replies[(None, *k)] for k in keys] == [replies[(0, *k)] for k in keys]  # the server's default is 0
    assert [replies[(2.5, *k)] for k in keys] != [replies[(0, *k)] for k in keys]  # the strength is used


@pytest.mark.parametrize(
    ("body", "message", "code"),
    [
        ({}, "Malformed request, no \"'context'\" param was found", "missing_field"),
        ({"emotion": "joy"}, "Malformed request, no \"'context'\" param was found", "missing_field"),
        ({"context": []}, "Malformed request: `context` should be non-empty list of unicode strings", "invalid_field"),
        ({"context": "hi"}, "Malformed request: `context` should be non-empty list of unicode strings", "invalid_field"),
        ({"context": None}, "Malformed request: `context` should be non-empty list of unicode strings", "invalid_field"),
        ({"context": ["hi", 3]}, "Malformed request: `context` should be non-empty list of unicode strings",
         "invalid_field"),
        ({"context": {"a": "b"}}, "Malformed request: `context` should be non-empty list of unicode strings",
         "invalid_field"),
        ({"context": ["hi", ""]}, "Malformed request: `context` should not contain empty strings", "empty_field"),
        ({"context": ["  "]}, "Malformed request: `context` should not contain empty strings", "empty_field"),
        ({"context": ["hi"], "emotion": "happiness"},
         f'Malformed request, emotion param "happiness" is not in emotion list {EMOTION_LIST}', "invalid_field"),
        ({"context": ["hi"], "emotion": ""},
         f'Malformed request, emotion param "" is not in emotion list {EMOTION_LIST}', "invalid_field"),
        ({"context": ["hi"], "emotion": 3},
         f'Malformed request, emotion param "3" is not in emotion list {EMOTION_LIST}', "invalid_field"),
    ],
)
def test_cakechats_own_error_texts(client, body, message, code):
    refused(client.post(ROUTE, json=body), 400, message, code)


@pytest.mark.parametrize(
    "body",
    [
        {"context": ["hi"], "mode": "beamsearch"},
        {"context": ["hi"], "mode": "Sample"},  # matched exactly, as the OpenAPI enum lists the modes
        {"context": ["hi"], "mode": 1},
        {"context": ["hi"], "seed": "7"},
        {"context": ["hi"], "seed": True},
        {"context": ["hi"], "seed": 2**64},
        {"context": ["hi"], "condition_strength": -1},
        {"context": ["hi"], "condition_strength": 10.5},
        {"context": ["hi"], "condition_strength": "2"},
        {"context": ["hi"], "condition_strength": True},
        {"context": ["hi"], "condition_strength": 10**400},  # beyond float's range: no OverflowError (500)
        {"context": ["hi"], "condition_strength": -(10**400)},
        {"context": ["x" * 1001]},
        {"context": ["\ud800"]},
    ],
)
def test_bad_extensions_and_limits_are_400(client, body):
    refused(client.post(ROUTE, json=body), 400)


def test_where_cakechat_answered_500_the_fitting_4xx(client):
    refused(client.get(ROUTE), 405, code="method_not_allowed")
    refused(client.post("/cakechat_api/v1/actions/nothing", json={"context": ["hi"]}), 404, code="not_found")
    refused(client.post(ROUTE, data="context=hi", content_type="application/x-www-form-urlencoded"), 415)
    refused(client.post(ROUTE, data="{not json", content_type="application/json"), 400, code="invalid_json")
    refused(client.post(ROUTE, json=["hi"]), 400, code="invalid_body")
    big = {"context": ["word " * 150] * 100}
    refused(client.post(ROUTE, json=big), 413)


def test_other_routes_errors_keep_their_shape(client):
    body = client.post("/api/v1/parse", json={}).get_json()
    assert list(body) == ["error"]  # the top-level "message" is for cakechat's clients only


def test_without_a_responder_the_route_says_so(client_without_responder):
    body = refused(client_without_responder.post(ROUTE, json={"context": ["hi"]}), 503, code="no_responder")
    assert "responder" in body["message"]


@pytest.fixture
def client_without_responder(make_client):
    return make_client()


def test_the_api_token_guards_it(make_talking_client):
    client = make_talking_client(API_TOKEN="secret")
    response = client.post(ROUTE, json={"context": ["hi"]})
    assert response.status_code == 401
    authorised = client.post(ROUTE, json={"context": ["hi"]}, headers={"Authorization": "Bearer secret"})
    assert authorised.status_code == 200


def test_replies_are_counted_in_the_metrics(client):
    def count():
        for line in client.get("/metrics").get_data(as_text=True).splitlines():
            if line.startswith('legacy_assistant_generated_replies_total{route="cakechat"}'):
                return float(line.split()[-1])
        return 0.0

    before = count()
    client.post(ROUTE, json={"context": ["hi"]})
    client.post(ROUTE, json={"context": []})  # refused: not counted
    assert count() == before + 1


def test_cors_as_on_the_other_api_routes(make_talking_client):
    client = make_talking_client(CORS_ORIGINS="https://chat.example")
    preflight = client.options(ROUTE, headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://chat.example"
    answer = client.post(ROUTE, json={"context": ["hi"]}, headers={"Origin": "https://chat.example"})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "https://chat.example"
    other = client.post(ROUTE, json={"context": ["hi"]}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
