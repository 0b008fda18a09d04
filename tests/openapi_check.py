"""Check a response against the OpenAPI document the app publishes (used by several tests)."""
from __future__ import annotations

import re

import jsonschema

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")


def template(rule: str) -> str:
    """Flask rule -> OpenAPI path template: ``/static/<path:filename>`` -> ``/static/{filename}``."""
    return _CONVERTER.sub(r"{\1}", rule)


def documented_schema(doc: dict, path: str | None, method: str, status: int) -> dict | None:
    """The JSON schema documented for that response; errors on unknown routes use any
    operation's ``default`` (every one documents the same error shape)."""
    if path is None:
        responses = doc["paths"]["/health"]["get"]["responses"]
    else:
        responses = doc["paths"][path][method.lower()]["responses"]
    response = responses.get(str(status), responses.get("default"))
    assert response is not None, f"{method} {path}: status {status} is not documented"
    content = response.get("content", {})
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
    schema = documented_schema(doc, path, method, response.status_code)
    if schema is None:
        return
    assert response.is_json, f"{method} {url} -> {response.status_code} is documented as JSON"
    jsonschema.validate(response.get_json(), {**schema, "components": doc["components"]},
                        cls=jsonschema.Draft202012Validator)
