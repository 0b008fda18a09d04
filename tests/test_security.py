"""Bearer tokens for the API and admin routes, and the CORS allow-list."""
import pytest

API = [("/api/v1/parse", {"text": "hello"}), ("/api/v1/chat", {"sender": "s", "message": "hello"}),
       ("/katana-ml/api/v1.0/assistant", {"sentence": "hello"}), ("/webhooks/rest/webhook", {"message": "hello"})]
PUBLIC = ["/", "/health", "/version", "/metrics", "/openapi.json", "/static/chat.js"]


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_401(response, invalid):
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == ("invalid_token" if invalid else "unauthorized")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="legacy-assistant"')
    assert ('error="invalid_token"' in challenge) == invalid


@pytest.mark.parametrize("url, body", API)
def test_api_token_guards_every_api_route(make_client, url, body):
    client = make_client(API_TOKEN="s3cret-api")
    assert_401(client.post(url, json=body), invalid=False)
    assert_401(client.post(url, json=body, headers=bearer("wrong")), invalid=True)
    assert_401(client.post(url, json=body, headers={"Authorization": "Basic czNjcmV0LWFwaQ=="}), invalid=False)
    assert_401(client.post(url, json=body, headers=bearer("s3cret-admin")), invalid=True)
    assert client.post(url, json=body, headers=bearer("s3cret-api")).status_code == 200
    assert client.post(url, json=body, headers={"Authorization": "bearer  s3cret-api "}).status_code == 200


def test_a_non_ascii_token_sent_as_utf8_matches(make_client):
    # create_app's config refuses such a token, as the variable does; set on the app afterwards,
    # it still matches what a client sends as UTF-8
    client = make_client(API_TOKEN="placeholder-token")
    client.application.config["API_TOKEN"] = "clé-sécrète"
    on_the_wire = "clé-sécrète".encode("utf-8").decode("latin-1")  # what WSGI makes of the header's bytes
    assert client.post(API[0][0], json=API[0][1], headers=bearer(on_the_wire)).status_code == 200
    assert_401(client.post(API[0][0], json=API[0][1], headers=bearer("cle-secrete")), invalid=True)


def test_without_api_token_the_api_is_open(make_client):
    client = make_client()
    for url, body in API:
        assert client.post(url, json=body).status_code == 200


def test_public_routes_need_no_token(make_client):
    client = make_client(API_TOKEN="a", ADMIN_TOKEN="b")
    for url in PUBLIC:
        assert client.get(url).status_code == 200, url


def test_admin_routes_are_off_without_admin_token(make_client):
    client = make_client(API_TOKEN="api")
    response = client.post("/admin/reload", headers=bearer("api"))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "admin_disabled"


def test_admin_token_is_separate_from_api_token(make_client):
    client = make_client(API_TOKEN="api", ADMIN_TOKEN="adm")
    assert_401(client.post("/admin/reload"), invalid=False)
    assert_401(client.post("/admin/reload", headers=bearer("api")), invalid=True)
    # accepted, then refused for a reason of its own: a test app has no model directory to reload
    response = client.post("/admin/reload", headers=bearer("adm"))
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "reload_refused"


def test_a_refused_reload_through_the_admin_route_is_logged_with_the_request_id(make_client, caplog):
    """The ERROR line of a reload the admin route asked for names the request's id, as its
    access line and its answer's X-Request-ID do: several workers may refuse at once."""
    client = make_client(ADMIN_TOKEN="adm")
    with caplog.at_level("INFO"):
        response = client.post("/admin/reload", headers={**bearer("adm"), "X-Request-ID": "reload-7"})
    assert response.status_code == 422 and response.headers["X-Request-ID"] == "reload-7"
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith("reload (admin route) refused: ") and line.endswith(" id=reload-7"), line


def test_tokens_from_environment(monkeypatch, make_client):
    monkeypatch.setenv("LEGACY_ASSISTANT_API_TOKEN", "from-env")
    client = make_client()
    assert client.post("/api/v1/parse", json={"text": "hi"}).status_code == 401
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers=bearer("from-env")).status_code == 200


@pytest.mark.parametrize("wrong", [
    "s3cret-apX",  # same length, differs only in the last character
    "x3cret-api",  # same length, differs only in the first character
    "s3cret-ap",  # a prefix of the token
    "s3cret-api-and-more",  # the token with more after it
    "s3cret-\u00e4pi",  # not ASCII
])
def test_wrong_token_gets_401_invalid_token(make_client, wrong):
    client = make_client(API_TOKEN="s3cret-api", ADMIN_TOKEN="s3cret-adm")
    for url, body in [("/api/v1/parse", {"text": "hi"}), ("/admin/reload", None)]:
        response = client.post(url, json=body, headers=bearer(wrong))
        assert_401(response, invalid=True)
        error = response.get_json()["error"]
        assert set(error) == {"code", "message"} and "not valid" in error["message"]
        assert wrong not in response.get_data(as_text=True)  # the presented token is never echoed


def test_every_route_declares_its_access_class(app):
    from legacy_assistant.web.security import Access

    undeclared = []
    for rule in app.url_map.iter_rules():
        blueprint_name = rule.endpoint.rpartition(".")[0]
        blueprint = app.blueprints.get(blueprint_name)
        if not isinstance(getattr(blueprint, "access", None), Access):
            undeclared.append(f"{rule.rule} ({rule.endpoint})")
    assert not undeclared, f"routes whose blueprint declares no access class: {undeclared}"
    declared = {rule.rule: app.blueprints[rule.endpoint.rpartition(".")[0]].access for rule in app.url_map.iter_rules()}
    assert declared["/static/<path:filename>"] is Access.PUBLIC
    assert declared["/api/v1/parse"] is Access.API and declared["/admin/reload"] is Access.ADMIN


def test_a_route_without_declared_access_stops_the_app(app):
    from flask import Blueprint

    from legacy_assistant.errors import ConfigError
    from legacy_assistant.web import security

    plain = Blueprint("forgotten", __name__)
    plain.add_url_rule("/forgotten", "view", lambda: "open?")
    app.register_blueprint(plain)
    with pytest.raises(ConfigError, match=r"/forgotten \(endpoint 'forgotten.view'\)"):
        security.seal(app)
    # registered after the app was sealed: refused, not served open
    response = app.test_client().get("/forgotten")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_no_cors_headers_by_default(make_client):
    client = make_client()
    response = client.post("/api/v1/parse", json={"text": "hi"}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    preflight = client.options("/api/v1/parse", headers={"Origin": "https://evil.example",
                                                         "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_cors_allow_list_and_preflight(make_client):
    client = make_client(CORS_ORIGINS="https://shop.example, https://app.example/", API_TOKEN="tok")
    preflight = client.options("/api/v1/chat", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 204  # preflight carries no token and needs none
    assert preflight.data == b"" and "Content-Type" not in preflight.headers  # no body, so no type of one
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert preflight.headers["Access-Control-Allow-Methods"] == "OPTIONS, POST"  # this path's, not every route's
    conversation = client.options("/api/v1/conversations/c", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"})
    assert conversation.headers["Access-Control-Allow-Methods"] == "DELETE, GET, HEAD, OPTIONS"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    assert "Origin" in preflight.headers["Vary"]
    nowhere = client.options("/api/v1/nowhere", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert nowhere.status_code == 404 and nowhere.get_json()["error"]["code"] == "not_found"
    actual = client.post("/api/v1/chat", json={"sender": "c", "message": "hi"},
                         headers={"Origin": "https://shop.example", **bearer("tok")})
    assert actual.status_code == 200
    assert actual.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in actual.headers["Vary"]
    # errors get CORS headers too, so a browser page can read the JSON error
    denied = client.post("/api/v1/chat", json={}, headers={"Origin": "https://shop.example"})
    assert denied.status_code == 401 and denied.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    other = client.post("/api/v1/chat", json={"sender": "c", "message": "hi"},
                        headers={"Origin": "https://evil.example", **bearer("tok")})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = client.options("/api/v1/chat", headers={"Origin": "https://evil.example",
                                                      "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    # the admin routes are for operators, not pages: no preflight, no CORS header, listed origin or not
    client = make_client(CORS_ORIGINS="https://app.example", ADMIN_TOKEN="an-admin-token-for-the-test")
    admin_preflight = client.options("/admin/reload", headers={"Origin": "https://app.example",
                                                              "Access-Control-Request-Method": "POST"})
    assert admin_preflight.status_code == 200 and "Access-Control-Allow-Origin" not in admin_preflight.headers
    admin = client.post("/admin/reload", headers={"Origin": "https://app.example", **bearer("wrong")})
    assert admin.status_code == 401 and "Access-Control-Allow-Origin" not in admin.headers
    # nor when no admin route matched: a wrong method, an unknown path under /admin
    wrong_method = client.patch("/admin/reload", headers={"Origin": "https://app.example"})
    assert wrong_method.status_code == 405 and "Access-Control-Allow-Origin" not in wrong_method.headers
    unknown = client.get("/admin/nope", headers={"Origin": "https://app.example"})
    assert unknown.status_code == 404 and "Access-Control-Allow-Origin" not in unknown.headers
    # while an unknown path elsewhere still gets them (its 404 JSON is readable by the page)
    elsewhere = client.get("/administrator", headers={"Origin": "https://app.example"})
    assert elsewhere.status_code == 404 and elsewhere.headers["Access-Control-Allow-Origin"] == "https://app.example"
    # answers without the header vary by Origin too: a shared cache must not give them to a listed origin
    plain = client.get("/version")
    assert "Access-Control-Allow-Origin" not in plain.headers
    for response in (other, refused, plain):
        assert "Origin" in response.headers.get("Vary", "")


def test_a_listed_origin_can_read_the_headers_the_api_says_its_answers_carry(make_client):
    """A page of a listed origin reads only the response headers CORS exposes to it: beside the
    X-Request-ID, the Retry-After of a 503 to retry and the WWW-Authenticate of a 401, which the
    API's errors carry for the client to act on, were hidden from it (null to fetch's
    ``headers.get``)."""
    client = make_client(
        CORS_ORIGINS="https://shop.example", API_TOKEN="tok", READINESS=lambda: (False, {"ready": 0, "expected": 1})
    )
    origin = {"Origin": "https://shop.example"}

    def exposed(response):
        return {name.strip().lower() for name in response.headers.get("Access-Control-Expose-Headers", "").split(",")}

    starting = client.get("/ready", headers=origin)
    assert starting.status_code == 503 and starting.headers["Retry-After"]
    assert {"retry-after", "x-request-id"} <= exposed(starting)
    denied = client.post("/api/v1/chat", json={}, headers=origin)
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"]
    assert "www-authenticate" in exposed(denied)


def test_allowed_origins_are_compared_in_the_form_browsers_send(make_client):
    """``Https://Shop.Example:443/`` is the origin browsers send as ``https://shop.example``."""
    client = make_client(CORS_ORIGINS="Https://Shop.Example:443/, http://LOCALHOST:8080")
    for origin in ("https://shop.example", "http://localhost:8080", "HTTPS://SHOP.EXAMPLE"):
        preflight = client.options("/api/v1/parse", headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == origin, origin
        actual = client.post("/api/v1/parse", json={"text": "hi"}, headers={"Origin": origin})
        assert actual.headers["Access-Control-Allow-Origin"] == origin
    for origin in ("https://shop.example:8443", "http://shop.example", "null", "https://localhost:8080",
                   "https://sh\xbap.example"):  # raw bytes: Latin-1 "º" came out of IDNA's mapping as "o"
        answer = client.post("/api/v1/parse", json={"text": "hi"}, headers={"Origin": origin})
        assert "Access-Control-Allow-Origin" not in answer.headers, origin


@pytest.mark.parametrize(
    "text, expected",
    [
        ("https://shop.example", "https://shop.example"),
        ("HTTPS://Shop.Example:443/", "https://shop.example"),
        ("http://shop.example:80", "http://shop.example"),
        ("http://shop.example:443", "http://shop.example:443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        (" https://a.example ", "https://a.example"),
        # as browsers write hosts: punycode, canonical IP addresses
        ("http://b\u00fccher.example", "http://xn--bcher-kva.example"),
        ("http://[::0001]:8080", "http://[::1]:8080"),
        ("http://127.1", "http://127.0.0.1"),
        ("http://0x7f.0.0.1", "http://127.0.0.1"),
        # a page at a name with its root's dot sends it in its Origin: kept, not refused
        ("https://shop.example.", "https://shop.example."),
    ],
)
def test_an_origin_is_written_as_browsers_serialise_it(text, expected):
    from legacy_assistant.common.origins import normalize_origin

    assert normalize_origin(text) == expected


@pytest.mark.parametrize(
    "text, reason",
    [
        ("*", "not supported"),
        ("shop.example", "write it as"),
        ("ftp://shop.example", "write it as"),
        ("https://shop.example/app", "no path"),
        ("https://shop.example?x=1", "no path"),
        ("https://user@shop.example", "user name"),
        ("https://", "no host"),
        ("https://shop.example:99999", "not an origin"),
        ("https://shop .example", "space or control"),
        ("http://10.0.0.256", "not an IPv4 address"),
        # still in its quotes (an --env-file keeps them), or no host name at all
        ("https://'shop.example'", "a host name is dot-separated labels"),
        ("https://a..b", "a host name is dot-separated labels"),
        ("https://shop.example..", "a host name is dot-separated labels"),
    ],
)
def test_an_origin_that_no_browser_could_send_is_refused(text, reason):
    from legacy_assistant.common.origins import normalize_origin
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.web.security import parse_origins

    with pytest.raises(ValueError, match=reason):
        normalize_origin(text)
    with pytest.raises(ConfigError, match="^CORS_ORIGINS: "):
        parse_origins(f"https://fine.example, {text}")


@pytest.mark.parametrize("path", ["/webhooks/rest/", "/webhooks/rest"])
def test_the_rasa_channels_health_check_takes_the_api_token(make_client, path):
    client = make_client(API_TOKEN="s3cret-api")
    assert_401(client.get(path), invalid=False)
    assert client.head(path).status_code == 401
    answer = client.get(path, headers=bearer("s3cret-api"))
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}
    options = client.options(path)  # the methods of the path, with or without its slash
    assert options.status_code == 200 and options.get_json() == {"methods": ["GET", "HEAD", "OPTIONS"]}
    assert options.headers["Allow"] == "GET, HEAD, OPTIONS"
    with client.application.test_request_context():
        from flask import url_for

        assert url_for("rasa.health") == "/webhooks/rest/"  # Rasa's own path
    for method in ("POST", "PUT", "DELETE"):  # a known path, a wrong method: 405, not "no route"
        wrong = client.open(path, method=method, headers=bearer("s3cret-api"))
        assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET, HEAD, OPTIONS", (method, wrong.status_code)
        assert wrong.get_json()["error"]["code"] == "method_not_allowed"


def test_no_path_is_answered_with_a_redirect(make_client):
    """A redirect is answered before the token and host checks, in HTML: every route's path,
    with its trailing slash added or taken away, must be a JSON answer instead."""
    client = make_client(API_TOKEN="s3cret-api", ALLOWED_HOSTS="localhost")
    paths = {rule.rule for rule in client.application.url_map.iter_rules() if "<" not in rule.rule}
    assert "/webhooks/rest/" in paths and "/health" in paths
    for path in sorted(paths - {"/"}):
        other = path[:-1] if path.endswith("/") else path + "/"
        for method in ("GET", "HEAD", "OPTIONS", "POST"):
            answer = client.open(other, method=method)
            assert not 300 <= answer.status_code < 400, (method, other, answer.status_code)
            if method != "HEAD":
                assert answer.mimetype == "application/json", (method, other)


def test_every_answer_carries_the_browser_protections(make_client):
    """No framing (a framed, disguised page could be clicked into "New conversation", which
    deletes a conversation), no type sniffing, no Referer; the page loads from this server only."""
    client = make_client(API_TOKEN="api-token-for-the-test")
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "unsafe-inline" not in policy  # the page has no inline script or style
    answers = [page, client.get("/health"), client.get("/static/chat.js"), client.get("/no/such/route"),
               client.post("/api/v1/parse", json={"text": "hi"})]
    for response in answers:
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.request.path
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert client.get("/health").headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_api_answers_are_never_cached(make_client):
    """A transcript or a reply is one client's: no browser or shared cache keeps it."""
    client = make_client()
    sender = "b6f1d0c4e2a94b7f8c1d2e3f4a5b6c7d"
    assert client.post("/api/v1/chat", json={"sender": sender, "message": "hello"}).headers["Cache-Control"] == "no-store"
    assert client.get(f"/api/v1/conversations/{sender}").headers["Cache-Control"] == "no-store"
    assert client.post("/api/v1/parse", json={"text": "hi"}).headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/chat.css").headers.get("Cache-Control", "")  # public files may be


def test_admin_answers_are_never_cached(make_client) -> None:
    """An admin route's answer (a reload's outcome, a refusal of the token) is the operator's:
    no cache keeps it, as no cache keeps an API answer."""
    client = make_client(API_TOKEN="api", ADMIN_TOKEN="adm")
    answers = [client.post("/admin/reload", headers=bearer("adm")), client.post("/admin/reload", headers=bearer("api"))]
    assert [answer.status_code for answer in answers] == [422, 401]
    for answer in answers:
        assert answer.headers["Cache-Control"] == "no-store"


def test_health_readiness_metrics_and_version_are_never_cached(make_client):
    """They describe this moment: a cache between a probe and the server would report a server
    that stopped, or one still starting, as it was."""
    client = make_client()
    for path in ("/health", "/ready", "/metrics", "/version"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")  # the page may be
