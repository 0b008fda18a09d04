"""``/openapi.json``: a valid OpenAPI 3.1 document that matches the routes and the responses."""
import pytest
from openapi_spec_validator import validate

from tests.openapi_check import check, documented_schema, template

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def doc(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_document_is_valid_openapi_31(doc):
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_every_route_is_documented_and_every_documented_route_exists(app, doc):
    served = set()
    for rule in app.url_map.iter_rules():
        for method in rule.methods - IGNORED_METHODS:
            served.add((template(rule.rule), method.lower()))
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert served == documented


def test_document_follows_the_settings(make_client):
    client = make_client(MAX_TEXT_LENGTH=77, API_TOKEN="t")
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert schemas["ParseRequest"]["properties"]["text"]["maxLength"] == 77
    assert doc["paths"]["/api/v1/parse"]["post"]["security"] == [{"apiToken": []}]
    assert "401" in doc["paths"]["/api/v1/chat"]["post"]["responses"]
    assert "host_not_allowed" not in str(doc)  # any host name is answered
    listed = make_client(ALLOWED_HOSTS="chat.example").get("/openapi.json").get_json()["paths"]
    assert "host_not_allowed" in listed["/api/v1/chat"]["post"]["responses"]["400"]["description"]
    assert "host_not_allowed" in listed["/admin/reload"]["post"]["responses"]["400"]["description"]
    assert "400" not in doc["paths"]["/admin/reload"]["post"]["responses"]
    assert "401" in doc["paths"]["/webhooks/rest/"]["get"]["responses"]
    assert "host_not_allowed" in listed["/webhooks/rest/"]["get"]["responses"]["400"]["description"]


REQUESTS = [
    ("POST", "/api/v1/parse", {"json": {"text": "when do you open?"}}),
    ("POST", "/api/v1/parse", {"json": {"text": ""}}),
    ("POST", "/api/v1/parse", {"data": "{", "content_type": "application/json"}),
    ("POST", "/api/v1/parse", {"data": "x", "content_type": "text/plain"}),
    ("POST", "/api/v1/parse", {"data": '{"text": "' + "a" * 70000 + '"}', "content_type": "application/json"}),
    ("POST", "/api/v1/chat", {"json": {"sender": "o", "message": "I'd like to order a coffee"}}),
    ("POST", "/api/v1/chat", {"json": {"sender": "o", "message": "qwerty"}}),
    ("POST", "/api/v1/chat", {"json": {"message": "hi"}}),
    ("POST", "/katana-ml/api/v1.0/assistant", {"json": {"sentence": "where are you?"}}),
    ("POST", "/katana-ml/api/v1.0/assistant", {"json": {"sentence": "zzzz"}}),
    ("POST", "/webhooks/rest/webhook", {"json": {"sender": "r", "message": "hello"}}),
    ("POST", "/webhooks/rest/webhook", {"json": {"sender": "r", "message": 5}}),
    ("POST", "/webhooks/rest/webhook?stream=true", {"json": {"sender": "r", "message": "hello"}}),
    ("POST", "/admin/reload", {}),
    ("GET", "/health", {}),
    ("GET", "/version", {}),
    ("GET", "/metrics", {}),
    ("GET", "/openapi.json", {}),
    ("GET", "/", {}),
    ("GET", "/static/chat.css", {}),
    ("GET", "/static/nope.js", {}),
    ("GET", "/static/chat.css", {"headers": {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}}),
    ("GET", "/static/chat.css", {"headers": {"If-Match": '"other"'}}),
    ("GET", "/nowhere", {}),
    ("GET", "/api/v1/parse", {}),
    ("DELETE", "/api/v1/chat", {}),
]


def test_real_responses_match_the_document(app, client, doc):
    statuses = set()
    for method, url, kwargs in REQUESTS:
        response = client.open(url, method=method, **kwargs)
        statuses.add(response.status_code)
        check(app, doc, method, url, response)
    assert {200, 304, 400, 403, 404, 405, 412, 413, 415} <= statuses


def _sent_but_not_required(doc, schema, instance, where="body"):
    """The fields of ``instance`` (an answer's JSON) its documented ``schema`` lists but does not require."""
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    found = []
    if isinstance(instance, dict) and "properties" in schema:
        found += [f"{where}.{name}" for name in instance if name not in schema.get("required", [])]
        for name, value in instance.items():
            if name in schema["properties"]:
                found += _sent_but_not_required(doc, schema["properties"][name], value, f"{where}.{name}")
    elif isinstance(instance, list) and "items" in schema:
        for item in instance:
            found += _sent_but_not_required(doc, schema["items"], item, f"{where}[]")
    return found


def test_every_field_an_answer_always_sends_is_required_in_the_document(make_talking_client):
    """A field the server always sends (null where it has none) is ``required``: a client built
    from the document would otherwise make it optional (the chat reply's reason, generated and
    replayed, the model's responder were)."""
    client = make_talking_client(ADMIN_TOKEN="a")
    doc = client.get("/openapi.json").get_json()
    answers = [
        ("POST", "/api/v1/chat", {"json": {"sender": "q", "message": "qwerty asdf"}}),
        ("POST", "/api/v1/chat", {"json": {"sender": "q", "message": "hello"}}),
        ("GET", "/api/v1/conversations/q", {}),
        ("DELETE", "/api/v1/conversations/q", {}),
        ("POST", "/api/v1/parse", {"json": {"text": "hello"}}),
        ("POST", "/katana-ml/api/v1.0/assistant", {"json": {"sentence": "where are you?"}}),
        ("POST", "/webhooks/rest/webhook", {"json": {"sender": "q", "message": "hello"}}),
        ("GET", "/webhooks/rest/", {}),
        ("POST", CAKECHAT, {"json": {"context": ["hi"]}}),
        ("GET", "/health", {}),
        ("GET", "/ready", {}),
        ("GET", "/version", {}),
    ]
    for method, url, kwargs in answers:
        response = client.open(url, method=method, **kwargs)
        assert response.status_code == 200, (method, url, response.get_json())
        path = url if not url.startswith("/api/v1/conversations/") else "/api/v1/conversations/{sender}"
        schema = doc["paths"][path][method.lower()]["responses"]["200"]["content"]["application/json"]["schema"]
        assert _sent_but_not_required(doc, schema, response.get_json()) == [], (method, url)


CAKECHAT = "/cakechat_api/v1/actions/get_response"
CAKECHAT_REQUESTS = [
    ("POST", CAKECHAT, {"json": {"context": ["hi"], "emotion": "joy"}}),
    ("POST", CAKECHAT, {"json": {"context": ["hi"], "mode": "sample", "seed": 2**63 - 1}}),
    ("POST", CAKECHAT, {"json": {"context": ["hi"], "seed": 2**63}}),
    ("POST", CAKECHAT, {"json": {"emotion": "joy"}}),
    ("POST", CAKECHAT, {"data": "{", "content_type": "application/json"}),
    ("GET", CAKECHAT, {}),
    ("POST", "/cakechat_api/v1/actions/nothing", {"json": {"context": ["hi"]}}),
    ("POST", "/admin/reload", {"data": "not json", "content_type": "text/plain"}),
]


def test_cakechat_and_admin_answers_match_the_document(make_talking_client):
    """Under /cakechat_api/ errors carry cakechat's top-level message too; the reload reads no body."""
    client = make_talking_client(ADMIN_TOKEN="a")
    app = client.application
    doc = client.get("/openapi.json").get_json()
    statuses = []
    for method, url, kwargs in CAKECHAT_REQUESTS:
        headers = {"Authorization": "Bearer a"} if url.startswith("/admin") else {}
        response = client.open(url, method=method, headers=headers, **kwargs)
        statuses.append(response.status_code)
        check(app, doc, method, url, response)
    assert statuses == [200, 200, 400, 400, 400, 405, 404, 422]  # this app has no model directory to reload
    seed = doc["components"]["schemas"]["CakechatRequest"]["properties"]["seed"]
    assert (seed["minimum"], seed["maximum"]) == (-(2**63), 2**63 - 1)


@pytest.mark.parametrize("status", [400, 414, 417, 431, 501])
def test_what_the_http_server_refuses_on_the_cakechat_route_matches_the_document(doc, status):
    """gunicorn's refusals (a bad header, a long request line, an Expect or Transfer-Encoding it
    does not take, too many headers) are answered before the route is known: without cakechat's
    top-level message (docs/API.md), which the document must not then require."""
    import json
    from types import SimpleNamespace

    import jsonschema

    from legacy_assistant.serving.server import ModelWorker

    worker = ModelWorker.__new__(ModelWorker)
    worker.cfg = SimpleNamespace(limit_request_line=4094, limit_request_field_size=8190, limit_request_fields=100)
    answer = worker._json_error(status, "Refused", None, "rid-1")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert "message" not in body
    schema = documented_schema(doc, CAKECHAT, "POST", status)
    jsonschema.validate(body, {**schema, "components": doc["components"]}, cls=jsonschema.Draft202012Validator)


def test_the_schemas_refuse_what_the_server_refuses_and_take_what_it_takes(doc):
    import jsonschema

    schemas = doc["components"]["schemas"]

    def valid(name, body):  # these request schemas hold no $ref
        return jsonschema.Draft202012Validator(schemas[name]).is_valid(body)

    # a turn or message of only whitespace is refused as empty by the server (400 empty_field)
    assert not valid("CakechatRequest", {"context": ["   "]})
    assert not valid("ChatRequest", {"sender": "s", "message": " \t"})
    assert valid("CakechatRequest", {"context": [" hi "]})
    # what is blank is what str.strip() empties: U+001C is, U+FEFF (which ECMA's \\s takes) is not
    assert not valid("ChatRequest", {"sender": "s", "message": "\x1c\x85\u3000"})
    assert valid("ChatRequest", {"sender": "s", "message": "\ufeff"})
    # Rasa's rest channel: null is the default conversation, a number its decimal text
    for sender in (None, 12345, "user-1"):
        assert valid("RasaMessage", {"sender": sender, "message": "hi"}), sender
    assert not valid("RasaMessage", {"sender": True, "message": "hi"})
    # a message id is the server's token: 1 to 64 of letters, digits, ".", "_", "-"
    for message_id in ("m-1", "A.b_C-9", "x" * 64):
        assert valid("ChatRequest", {"sender": "s", "message": "hi", "message_id": message_id}), message_id
    for message_id in ("", "x" * 65, "a b", "é", 7):
        assert not valid("ChatRequest", {"sender": "s", "message": "hi", "message_id": message_id}), message_id
    assert "503" in doc["paths"]["/ready"]["get"]["responses"]


NULLABLE_FIELDS = [
    ("/api/v1/chat", "ChatRequest", {"sender": "n", "message": "hello"},
     ["emotion", "condition_strength", "message_id"]),
    ("/webhooks/rest/webhook", "RasaMessage", {"sender": "n", "message": "hello"}, ["emotion", "condition_strength"]),
    ("/cakechat_api/v1/actions/get_response", "CakechatRequest", {"context": ["hello"]},
     ["emotion", "mode", "seed", "condition_strength"]),
]


@pytest.mark.parametrize("path, schema, body, fields", NULLABLE_FIELDS, ids=[row[0] for row in NULLABLE_FIELDS])
def test_every_optional_field_may_be_null_as_documented(make_talking_client, path, schema, body, fields):
    """null is the same as leaving the field out, in the server and in the document."""
    import jsonschema

    client = make_talking_client()
    schemas = client.get("/openapi.json").get_json()["components"]["schemas"]
    validator = jsonschema.Draft202012Validator(schemas[schema])
    assert set(fields) == set(schemas[schema]["properties"]) - set(body)  # every optional field is here
    for field in fields:
        request = {**body, field: None}
        response = client.post(path, json=request)
        assert response.status_code == 200, (field, response.get_json())
        assert validator.is_valid(request), field
    assert not validator.is_valid({**body, "condition_strength": "2"})  # still typed


def test_the_documents_blank_rule_is_exactly_the_servers():
    """Every character, alone: the document's pattern finds it exactly when the server's
    str.strip() keeps it. Read by Python's re here; its class spells nothing that ECMA-262, the
    dialect of JSON Schema's patterns, reads otherwise (escapes \\t \\r \\xHH \\uHHHH and ranges)."""
    import re
    import sys

    from legacy_assistant.web.errors import NOT_BLANK_PATTERN, STRIPPED_CHARACTERS

    pattern = re.compile(NOT_BLANK_PATTERN)
    differ = [hex(c) for c in range(sys.maxunicode + 1) if (pattern.search(chr(c)) is None) != (not chr(c).strip())]
    assert differ == []
    assert re.fullmatch(r"(\\[tr]|\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|-)+", STRIPPED_CHARACTERS)


def test_every_error_code_the_app_answers_is_in_the_api_docs_tables():
    """docs/API.md says its tables hold every code; a code written in the app's code and missing
    there (``shutting_down`` was) is one a client cannot look up. (The codes named after
    Werkzeug's exceptions, such as 416's, are not written out in the code: not checked here.)"""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = "".join(path.read_text(encoding="utf-8") for path in (root / "legacy_assistant").rglob("*.py"))
    answered = set(re.findall(r'(?:ApiError|error_response)\(\s*\d{3},\s*"([a-z_]+)"', source))
    answered |= set(re.findall(r'_malformed\(\s*"([a-z_]+)"', source))
    assert {"invalid_json", "shutting_down", "no_responder", "host_not_allowed"} <= answered  # the scan works
    tables = [line.split("|")[2] for line in (root / "docs" / "API.md").read_text(encoding="utf-8").splitlines()
              if re.match(r"\| \d{3}(, \d{3})* \| `", line)]
    documented = {code for cell in tables for code in re.findall(r"`([a-z_]+)`", cell)}
    assert answered - documented == set()


# the headers whose meaning a client reads (not Content-Type, Content-Length, Date, Vary, ...)
READ_HEADERS = {"X-Request-ID", "Retry-After", "WWW-Authenticate", "Allow", "ETag", "Last-Modified", "Content-Range"}


def test_the_headers_of_each_answer_are_the_documented_ones(make_client):
    """Every header a client reads off an answer is declared on that answer in the document (the
    document declared none: not X-Request-ID, nor a 503's Retry-After), with its value valid, and
    every header declared required is sent."""
    import jsonschema

    client = make_client(API_TOKEN="t", READINESS=lambda: (False, {"ready": 0, "expected": 1}))
    app = client.application
    doc = client.get("/openapi.json").get_json()
    token = {"Authorization": "Bearer t"}
    requests = [
        (method, url, {**kwargs, "headers": {**token, **kwargs.get("headers", {})}}) for method, url, kwargs in REQUESTS
    ] + [
        ("POST", "/api/v1/chat", {"json": {"sender": "o", "message": "hi"}}),
        ("GET", "/ready", {}),
        ("GET", "/static/chat.css", {"headers": {"Range": "bytes=0-3"}}),
        ("GET", "/static/chat.css", {"headers": {"Range": "bytes=99999999-"}}),
        ("GET", "/static/chat.css", {"headers": {"If-None-Match": "*"}}),
    ]
    seen = set()
    for method, url, kwargs in requests:
        response = client.open(url, method=method, **kwargs)
        try:
            path = template(app.url_map.bind("localhost").match(url, method, return_rule=True)[0].rule)
            responses = doc["paths"][path][method.lower()]["responses"]
        except Exception:  # no such route or method: the default answer of any operation
            responses = doc["paths"]["/health"]["get"]["responses"]
        documented = responses.get(str(response.status_code), responses["default"])
        declared = {}
        for name, header in documented.get("headers", {}).items():
            declared[name] = doc["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
        sent = {name for name in READ_HEADERS if name in response.headers}
        seen |= {(name, response.status_code) for name in sent}
        assert sent <= set(declared), (method, url, response.status_code, sent - set(declared))
        for name, header in declared.items():
            if header.get("required"):
                assert name in response.headers, (method, url, response.status_code, name)
            if name in response.headers:
                value = response.headers[name]
                value = int(value) if header["schema"].get("type") == "integer" else value
                jsonschema.validate(value, header["schema"], cls=jsonschema.Draft202012Validator)
    assert {("Retry-After", 503), ("WWW-Authenticate", 401), ("Allow", 405), ("Content-Range", 416)} <= seen


def test_the_message_id_pattern_is_whole_in_both_dialects(make_client):
    """JSON Schema reads a pattern as ECMA-262, where ``$`` is the text's end; Python's re (the
    jsonschema library's) lets ``$`` match before a last line break too. ``^...$`` took
    ``"m1\\n"`` as a message id in Python's validators while the server refuses it: the document's
    token pattern must end the text in both dialects."""
    import re

    import jsonschema

    client = make_client()
    doc = client.get("/openapi.json").get_json()
    chat = jsonschema.Draft202012Validator(doc["components"]["schemas"]["ChatRequest"])
    request_id = doc["components"]["headers"]["X-Request-ID"]["schema"]
    for value in ("m1\n", "m1\r\n", "\nm1"):
        body = {"sender": "s", "message": "hello", "message_id": value}
        assert client.post("/api/v1/chat", json=body).status_code == 400, repr(value)
        assert not chat.is_valid(body), repr(value)
        assert not jsonschema.Draft202012Validator(request_id).is_valid(value), repr(value)
    for value in ("m1", "x" * 64):
        assert chat.is_valid({"sender": "s", "message": "hello", "message_id": value})
        assert re.search(request_id["pattern"], value)
    assert not chat.is_valid({"sender": "s", "message": "hello", "message_id": "x" * 65})


# Bodies a request schema takes and the server refuses: what JSON Schema cannot say (a number's
# text, what the responder can read, how a number was written), so the field's description says
# it. (route, schema, raw body, the answer's code, the field, what its description must name)
RASA = "/webhooks/rest/webhook"
SAID_IN_WORDS = {
    "rasa-sender-of-129-digits": (RASA, "RasaMessage", '{"sender": 1' + "0" * 128 + ', "message": "hi"}',
                                  "field_too_long", "sender", "128 characters"),
    "rasa-sender-negative": (RASA, "RasaMessage", '{"sender": -1' + "0" * 127 + ', "message": "hi"}',
                             "field_too_long", "sender", "128 characters"),
    "rasa-sender-1e400": (RASA, "RasaMessage", '{"sender": 1e400, "message": "hi"}',
                          "invalid_field", "sender", "beyond a float's range"),
    "cakechat-invisible-context": (CAKECHAT, "CakechatRequest", '{"context": ["\\u200b", "\\u2060"]}',
                                   "invalid_request", "context", "invalid_request"),
    "cakechat-seed-1.0": (CAKECHAT, "CakechatRequest", '{"context": ["hi"], "seed": 1.0}',
                          "invalid_field", "seed", "without a decimal point"),
    "chat-unknown-emotion": ("/api/v1/chat", "ChatRequest", '{"sender": "s", "message": "hi", "emotion": "happy"}',
                             "invalid_field", "emotion", "one of the emotions /health lists"),
}


@pytest.mark.parametrize("path, schema, raw, code, field, words", SAID_IN_WORDS.values(), ids=SAID_IN_WORDS.keys())
def test_what_a_schema_takes_and_the_server_refuses_is_said_in_the_fields_description(
        make_talking_client, path, schema, raw, code, field, words):
    """A client that checks its bodies against the document learns of these refusals only from
    the field's description (a numeric Rasa sender over the sender limit, or beyond a float's
    range, and a cakechat context of only invisible characters were answered 400 without a word
    about them there)."""
    import json

    import jsonschema

    client = make_talking_client()
    app = client.application
    doc = client.get("/openapi.json").get_json()
    described = doc["components"]["schemas"][schema]
    assert jsonschema.Draft202012Validator(described).is_valid(json.loads(raw))
    response = client.post(path, data=raw, content_type="application/json")
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, code), response.get_json()
    check(app, doc, "POST", path, response)
    assert words in described["properties"][field]["description"]
