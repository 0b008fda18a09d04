"""Check a response against the OpenAPI document the app publishes (used by several tests)."""
from __future__ import annotations

import re

import jsonschema

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")


def template(rule: str) -> str:
    """Flask rule -> OpenAPI path template: ``/static/<path:filename>`` -> ``/static/{filename}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def documented_content(doc: dict, path: str | None, method: str, status: int) -> dict:
    """The media types documented for that response (``{}`` for none); errors on unknown routes
    use any operation's ``default`` (every one documents the same error shape)."""
    if path is None:
        responses = doc["paths"]["/health"]["get"]["responses"]
    else:
        responses = doc["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status), responses.get("default"))
    assert response is not None, f"{method} {path}: status {status} is not documented"
    return response.get("content", {})


def documented_schema(doc: dict, path: str | None, method: str, status: int) -> dict | None:
    """The JSON schema documented for that response, or None when it documents no JSON."""
    content = documented_content(doc, path, method, status)
    if "application/json" not in content:
        return None
    return content["application/json"]["schema"]


def check(app, doc: dict, method: str, url: str, response) -> None:
    """Assert ``response`` (to ``method url``) matches the document."""
    from werkzeug.exceptions import HTTPException

    adapter = app.url_map.bind("localhost")
    try:
        rule, _ = adapter.match(url.split("?")[0], method, return_rule=True)
        path = template(rule.rule)
    except HTTPException:
        path = None
    if method in ("OPTIONS", "HEAD"):
        return
    content = documented_content(doc, path, method, response.status_code)
    if content and response.status_code != 304:
        # an answer of several documented types (the webhook's JSON list or, asked for, its stream)
        # is one of them
        assert response.mimetype in content, f"{method} {url} -> {response.status_code}: {response.mimetype}"
    if "application/json" not in content or not response.is_json:
        return
    schema = content["application/json"]["schema"]
    jsonschema.validate(response.get_json(), {**schema, "components": doc["components"]},
                        cls=jsonschema.Draft202012Validator)
