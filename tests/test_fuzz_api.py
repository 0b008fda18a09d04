"""Property: whatever arrives — any body, any unicode, huge or deeply nested values, odd
headers, any method — every route answers with a documented JSON error or a documented
success, never a 500 and never a stack trace."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
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
objects = st.fixed_dictionaries({}, optional={name: field_values for name in FIELDS}) | st.dictionaries(
    st.text(max_size=10), json_values, max_size=5)


def encode(value):
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    objects.map(encode),
    json_values.map(encode),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(min_value=60000, max_value=70000).map(lambda n: b'{"text": "' + b"x" * n + b'"}'),
    st.just(b""),
)
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


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(method=st.sampled_from(METHODS), route=st.sampled_from(ROUTES), body=bodies, content_type=content_types,
       extra=headers)
def test_no_input_gets_a_500_or_a_stack_trace(fuzz_app, method, route, body, content_type, extra):
    client = fuzz_app.test_client()
    response = client.open(route, method=method, data=body, content_type=content_type or None, headers=extra)
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text
    assert "Traceback" not in text and 'File "' not in text
    if method == "HEAD":  # no body to look at
        return
    if response.status_code >= 400:
        assert response.is_json
        error = response.get_json()["error"]
        assert error["code"] and error["message"]
    doc = client.get("/openapi.json").get_json()
    check(fuzz_app, doc, method, route, response)
