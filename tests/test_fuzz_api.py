"""Property: whatever arrives — any body, any unicode, huge or deeply nested values, odd
headers, any method — every route answers with a documented JSON error or a documented
success, never a 500 and never a stack trace: the intent model's routes, and with the shipped
responder loaded the cakechat route, generated chat replies and conversations by sender."""
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.openapi_check import check

ROUTES = ["/api/v1/parse", "/api/v1/chat", "/katana-ml/api/v1.0/assistant", "/webhooks/rest/webhook",
          "/admin/reload", "/health", "/version", "/metrics", "/openapi.json", "/", "/static/chat.js",
          "/static/../../etc/passwd", "/nope", "/api/v1/parse/extra"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
FIELDS = ["text", "message", "sentence", "sender"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=60),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
field_values = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=990, max_size=1010),
    st.sampled_from(["", " ", "\t\n", "\x00", "\ud800", "a" * 1001, "🚀" * 500, "hello there", "a large one"]),
    json_values,
)
# The responder's routes and fields: cakechat's, the chat's extensions, a conversation by sender.
RESPONDER_ROUTES = ["/cakechat_api/v1/actions/get_response", "/cakechat_api/v1/actions/nothing",
                    "/cakechat_api/v1/actions/get_response/", "/api/v1/chat", "/webhooks/rest/webhook",
                    "/api/v1/conversations/web-1", "/api/v1/conversations/", "/api/v1/conversations/a%2Fb%0Ac",
                    "/api/v1/conversations/%FF%FE", "/api/v1/conversations/" + "x" * 300]
# Per field: values a client sends (twice as likely) or nearly sends.
EMOTIONS = ["neutral", "anger", "joy", "fear", "sadness"]


def valid_or_near(valid, near):
    return st.one_of(valid, valid, near)


plausible = {
    "context": valid_or_near(
        st.lists(st.sampled_from(["hi", "how are you?", "blorp fnord", "🚀" * 300]) | st.text(min_size=1, max_size=40),
                 min_size=1, max_size=5),
        st.lists(st.sampled_from(["", " ", "\x00"]) | st.text(max_size=3), max_size=5)),
    "emotion": valid_or_near(st.sampled_from(EMOTIONS), st.sampled_from(["JOY", "rage", "", None])),
    "mode": valid_or_near(st.sampled_from(["greedy", "beam", "sample", "sample_rerank"]),
                          st.sampled_from(["beam_search", "", None])),
    "seed": valid_or_near(st.integers(0, 2**31 - 1), st.sampled_from([-1, 2**31, 2**64, 2.5, True, "1", None])),
    "condition_strength": valid_or_near(st.floats(0, 10), st.sampled_from([10.5, -1, True, "1", float("nan"),
                                                                           float("inf")])),
    "sender": valid_or_near(st.sampled_from(["u1", "web-1", "a/b\nc"]), st.sampled_from(["", "x" * 300])),
    "message": valid_or_near(st.sampled_from(["hello", "I'd like to order a coffee", "blorp fnord zibble"]),
                             st.sampled_from(["", " ", "a" * 1001])),
}


def objects_with(values):
    """JSON objects with any of ``values``' fields (name -> strategy), or with any keys at all."""
    return st.fixed_dictionaries({}, optional=values) | st.dictionaries(st.text(max_size=10), json_values, max_size=5)


def encode(value):
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def bodies_of(objects):
    return st.one_of(
        objects.map(encode),
        json_values.map(encode),
        st.binary(max_size=200),
        st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=1, max_value=3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.integers(min_value=60000, max_value=70000).map(lambda n: b'{"text": "' + b"x" * n + b'"}'),
        st.just(b""),
    )


bodies = bodies_of(objects_with({name: field_values for name in FIELDS}))
extensions = {name: plausible[name] for name in ("emotion", "mode", "seed", "condition_strength")}
cakechat_requests = st.fixed_dictionaries({"context": plausible["context"]}, optional=extensions)
chat_requests = st.fixed_dictionaries({"sender": plausible["sender"], "message": plausible["message"]},
                                      optional=extensions)
responder_objects = st.one_of(
    cakechat_requests, chat_requests, objects_with({name: values | field_values for name, values in plausible.items()})
)
# (route, body) of requests made for the route they are sent to
generating_requests = st.one_of(
    st.tuples(st.just("/cakechat_api/v1/actions/get_response"), cakechat_requests),
    st.tuples(st.sampled_from(["/api/v1/chat", "/webhooks/rest/webhook"]), chat_requests),
)
# mostly JSON objects POSTed as JSON, so that most examples reach the models and the store
responder_bodies = st.one_of(responder_objects.map(encode), bodies_of(responder_objects))
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "application/vnd.api+json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
    "", "application/json; boundary=\x7f", "json",
])
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
headers = st.fixed_dictionaries({}, optional={
    "Authorization": st.sampled_from(["Bearer", "Bearer ", "Basic x", "bearer t", "Bearer " + "x" * 500]) | header_values,
    "Origin": st.sampled_from(["https://a.example", "null", ""]) | header_values,
    "X-Request-ID": header_values,
    "Accept": header_values,
    "Access-Control-Request-Method": st.sampled_from(["POST", "GET", "DELETE"]),
})


@pytest.fixture(scope="module")
def fuzz_app(default_predictor):
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0),
                          MemoryStore())
    app = create_app({"TESTING": True, "ACCESS_LOG": False, "ADMIN_TOKEN": "adm",
                      "CORS_ORIGINS": "https://a.example"}, assistant=assistant)
    return app


@pytest.fixture(scope="module")
def fuzz_talking_app(responder_assistant):
    from legacy_assistant.web import create_app

    return create_app({"TESTING": True, "ACCESS_LOG": False, "ADMIN_TOKEN": "adm",
                       "CORS_ORIGINS": "https://a.example"}, assistant=responder_assistant)


FUZZ_SETTINGS = settings(max_examples=400, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ_SETTINGS
@given(method=st.sampled_from(METHODS), route=st.sampled_from(ROUTES), body=bodies, content_type=content_types,
       extra=headers)
def test_no_input_gets_a_500_or_a_stack_trace(fuzz_app, method, route, body, content_type, extra):
    answers_as_documented(fuzz_app, method, route, body, content_type, extra)


@FUZZ_SETTINGS
@given(method=st.sampled_from(METHODS), route=st.sampled_from(RESPONDER_ROUTES), body=responder_bodies,
       content_type=content_types, extra=headers)
def test_no_input_to_the_responders_routes_gets_a_500_or_a_stack_trace(
        fuzz_talking_app, method, route, body, content_type, extra):
    answers_as_documented(fuzz_talking_app, method, route, body, content_type, extra)


@FUZZ_SETTINGS
@given(request=generating_requests)
def test_requests_that_reach_the_responder_get_a_reply_or_a_documented_error(fuzz_talking_app, request):
    route, body = request
    status = answers_as_documented(fuzz_talking_app, "POST", route, encode(body), "application/json", {})
    event(f"{route}: {status}")  # --hypothesis-show-statistics: how many got a reply


def answers_as_documented(app, method, route, body, content_type, extra):
    """A documented JSON error or a documented success; never a 500, never a stack trace.
    Returns the status."""
    client = app.test_client()
    response = client.open(route, method=method, data=body, content_type=content_type or None, headers=extra)
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert "Traceback" not in text and 'File "' not in text
    if method == "HEAD":  # no body to look at
        return response.status_code
    if response.status_code >= 400:
        assert response.is_json
        error = response.get_json()["error"]
        assert error["code"] and error["message"]
    doc = client.get("/openapi.json").get_json()
    check(app, doc, method, route, response)
    return response.status_code
