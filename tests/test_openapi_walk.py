"""The published document, walked: every operation it lists is called with requests built from
its own request schema (a valid body, then each field missing, null, of another JSON type, and
at and past each documented bound), every answer must be one the document gives for that status,
and the server must take exactly the bodies the schema takes. A field or limit added to the
server and not to the document (or the other way round) fails here without a hand-written case.

What a JSON Schema cannot say is not generated: free text for a field the server checks
against its models (``emotion``), a number with a zero fraction for ``seed`` (``1.0``; the
document says "without a decimal point"), lone surrogates."""
import re

import jsonschema
import pytest

from tests.openapi_check import check

# values of another JSON type than most fields take; null is tried apart
OTHER_TYPES = [True, 7, 1.5, [], {}]
TOKENS = {"Authorization": "Bearer a"}


def resolve(doc, schema):
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def sample(doc, schema):
    """A value ``schema`` takes, and one the server answers with 200 (text a model reads)."""
    schema = resolve(doc, schema)
    if "anyOf" in schema:
        return sample(doc, schema["anyOf"][0])
    if "enum" in schema:
        return next(value for value in schema["enum"] if value is not None)
    kind = schema["type"]
    kind = next(k for k in kind if k != "null") if isinstance(kind, list) else kind
    if kind == "string":
        return "hello"
    if kind in ("number", "integer"):
        return schema.get("minimum", 0)
    if kind == "array":
        return [sample(doc, schema["items"])] * max(1, schema.get("minItems", 1))
    if kind == "object":
        return {name: sample(doc, schema["properties"][name]) for name in schema.get("required", [])}
    raise AssertionError(f"no sample for {schema}")


def edge_values(doc, schema):
    """Values at and past the bounds ``schema`` documents (lengths, ranges, enums)."""
    schema = resolve(doc, schema)
    branches = schema.get("anyOf", [schema])
    values = []
    for branch in branches:
        if "maxLength" in branch:
            values += ["a" * branch["maxLength"], "a" * (branch["maxLength"] + 1), " " * branch.get("minLength", 1)]
        if "minimum" in branch:
            values += [branch["minimum"], branch["minimum"] - 1]
        if "maximum" in branch:
            values += [branch["maximum"], branch["maximum"] + 1]
        if "enum" in branch:
            values += [value for value in branch["enum"] if value is not None] + ["not-" + str(branch["enum"][0])]
        if "minItems" in branch:
            values += [[]]
            values += [[value] for value in edge_values(doc, branch["items"]) if isinstance(value, str)]
    return values


def bodies(doc, schema):
    """(label, body) pairs: the valid sample, then each field varied on its own."""
    schema = resolve(doc, schema)
    base = sample(doc, schema)
    yield "valid", base
    for name, field in schema["properties"].items():
        if name in schema.get("required", []):
            yield f"no {name}", {key: value for key, value in base.items() if key != name}
        for value in [None, *OTHER_TYPES, *edge_values(doc, field)]:
            yield f"{name}={str(value)[:12]!s}", {**base, name: value}
    yield "an extra field", {**base, "extra": 1}


def operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def url_of(doc, path, operation):
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", sample(doc, parameter["schema"]))
    return path


# the shipped limits, and others: the document follows the settings
@pytest.fixture(params=[{}, {"MAX_TEXT_LENGTH": 12, "MAX_SENDER_LENGTH": 9}], ids=["default-limits", "small-limits"])
def walked(make_talking_client, request):
    client = make_talking_client(ADMIN_TOKEN="a", **request.param)
    return client, client.get("/openapi.json").get_json()


def test_every_operation_answers_as_documented(walked):
    client, doc = walked
    app = client.application
    answered = {}
    for path, method, operation in operations(doc):
        if "requestBody" in operation:
            continue
        url = url_of(doc, path, operation)
        response = client.open(url, method=method.upper(), headers=TOKENS)
        check(app, doc, method.upper(), url, response)
        answered[(path, method)] = response.status_code
    # the file named "hello" does not exist; the test app has no model directory to reload
    assert {key: status for key, status in answered.items() if status != 200} == {
        ("/static/{filename}", "get"): 404, ("/admin/reload", "post"): 422
    }
    assert set(answered) | {(path, method) for path, method, op in operations(doc) if "requestBody" in op} == {
        (path, method) for path, method, _ in operations(doc)
    }


def body_operations():
    # the routes are fixed; their schemas are read from the document in the test
    return ["/api/v1/parse", "/api/v1/chat", "/katana-ml/api/v1.0/assistant", "/webhooks/rest/webhook",
            "/webhooks/rest/webhook/", "/cakechat_api/v1/actions/get_response"]


def test_every_operation_with_a_body_is_walked(walked):
    _, doc = walked
    assert {path for path, _, operation in operations(doc) if "requestBody" in operation} == set(body_operations())


@pytest.mark.parametrize("path", body_operations())
def test_the_server_takes_exactly_the_bodies_the_document_takes(walked, path):
    client, doc = walked
    app = client.application
    operation = doc["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]})
    disagree, statuses = [], set()
    for number, (label, body) in enumerate(bodies(doc, schema)):
        if body.get("sender") == "hello":  # the sample sender: a fresh conversation each
            body = {**body, "sender": f"w{number}"}
        response = client.post(path, json=body, headers=TOKENS)
        check(app, doc, "POST", path, response)
        statuses.add(response.status_code)
        taken, valid = response.status_code == 200, validator.is_valid(body)
        if taken != valid:
            disagree.append((label, response.status_code, valid, re.sub(r"a{20,}", "a...", str(response.get_json()))))
    assert disagree == []
    assert statuses == {200, 400}


def test_the_server_takes_exactly_the_path_parameters_the_document_takes(walked):
    from urllib.parse import quote

    client, doc = walked
    app = client.application
    disagree, tried = [], 0
    for path, method, operation in operations(doc):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path" or "maxLength" not in parameter["schema"]:
                continue
            validator = jsonschema.Draft202012Validator(parameter["schema"])
            for value in [sample(doc, parameter["schema"]), *edge_values(doc, parameter["schema"]), "\u3000", "a/b"]:
                url = path.replace("{" + parameter["name"] + "}", quote(value, safe=""))
                response = client.open(url, method=method.upper(), headers=TOKENS)
                check(app, doc, method.upper(), url, response)
                tried += 1
                if (response.status_code == 200) != validator.is_valid(value):
                    disagree.append((method, path, value[:12], response.status_code))
    assert tried >= 10  # the conversation routes' sender
    assert disagree == []
