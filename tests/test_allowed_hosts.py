"""The host names the API answers to: a page of another site that reaches a local server
through its own name (DNS rebinding) sends that name in ``Host``, and is refused."""
import pytest

from legacy_assistant.common.hosts import default_allowed_hosts, host_allowed, normalize_host, parse_hosts
from legacy_assistant.common.origins import normalize_origin
from legacy_assistant.errors import ConfigError

LOCAL = default_allowed_hosts("127.0.0.1")


@pytest.mark.parametrize("header", ["localhost:5000", "LOCALHOST", "localhost.", "app.localhost:5000",
                                    "127.0.0.1:5000", "127.0.0.1", "[::1]:5000", "[0:0::1]"])
def test_a_loopback_server_answers_the_names_this_machine_reaches_it_by(header):
    assert host_allowed(header, LOCAL)


@pytest.mark.parametrize("header", ["evil.example:5000", "rebind.attacker.example", "127.0.0.1.evil.example",
                                    "xlocalhost", "localhost.evil", "", None, "[::1", "[::1]x", "a:b:c",
                                    "localhost:port", "10.0.0.5:5000", "localhost..", "localhost..:5000",
                                    "'localhost'", "local,host"])
def test_other_names_are_refused(header):
    assert not host_allowed(header, LOCAL)


def test_entries_are_compared_in_one_form():
    allowed = parse_hosts("Chat.Example., .Example.COM, bücher.example, ::1")
    assert allowed == {"chat.example", ".example.com", "xn--bcher-kva.example", "[::1]"}
    assert host_allowed("chat.example:443", allowed) and host_allowed("CHAT.EXAMPLE", allowed)
    assert host_allowed("example.com", allowed) and host_allowed("eu.api.example.com:8000", allowed)
    assert host_allowed("xn--bcher-kva.example", allowed)  # as a browser sends the name
    # not as raw bytes: a 0xAA byte, read as Latin-1 "ª", came out of IDNA's mapping as "a"
    assert not host_allowed("ch\xaat.example", allowed) and not host_allowed("bücher.example", allowed)
    assert not host_allowed("badexample.com", allowed) and not host_allowed("chat.example.net", allowed)
    assert host_allowed("anything.example", parse_hosts("*")) and host_allowed("x", frozenset())


@pytest.mark.parametrize("name", ["stra\u00dfe.example", "Stra\u00dfe.example", "www.fu\u00dfball.de", "\u00df\u00df.example",
                                  "\u1f40\u03b4\u03c5\u03c3\u03c3\u03b5\u03cd\u03c2.example"])
def test_a_name_browsers_and_python_write_differently_is_refused_with_the_form_browsers_send(name):
    """Python's IDNA codec (2003) maps ß to "ss" and ς to "σ"; browsers (IDNA 2008) keep them,
    so the name listed would never be the one requests carry: refused, with the name to list."""
    idna = pytest.importorskip("idna")
    sent = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    with pytest.raises(ValueError, match="written one way by browsers") as refused:
        parse_hosts(f"chat.example, {name}")
    assert str(refused.value).endswith(f"here {sent!r}")
    assert host_allowed(sent, parse_hosts(sent))  # and listed that way, it is answered
    with pytest.raises(ValueError, match=f"here {sent!r}"):
        normalize_origin(f"https://{name}")
    # a joiner is valid only in a few scripts' contexts: refused, with no form offered
    with pytest.raises(ValueError, match=r"zero-width joiner .*browsers send$"):
        parse_hosts("a\u200db.example")


@pytest.mark.parametrize("name", ["\u039a\u0391\u03a6\u0395\u03a3-1.example", "\u039a\u039f\u03a3\u039c\u039f\u03a3",
                                  "\u03cc\u03a3\u0937.example", "\u039f\u0394\u039f\u03a3-stra\u00dfe.example"])
def test_a_capital_sigma_ending_a_word_is_no_final_sigma(name):
    """str.lower() writes a capital Σ that ends a word (before a digit, a hyphen, the end) as ς,
    which browsers and Python's codec both write σ: the name is compared as browsers send it,
    not refused as one holding ς (and a name refused for its ß is offered with σ)."""
    idna = pytest.importorskip("idna")
    sent = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    if "\u00df" in name:
        with pytest.raises(ValueError, match=f"here {sent!r}"):
            parse_hosts(name)
        with pytest.raises(ValueError, match=f"here {sent!r}"):
            normalize_origin(f"https://{name}")
    else:
        assert parse_hosts(name) == {sent}
        assert normalize_origin(f"https://{name}") == f"https://{sent}"
    # a ς written as such is still refused; with a Σ that lower case also made ς, no form is offered
    with pytest.raises(ValueError, match=r"final sigma .*browsers send$"):
        parse_hosts("\u03c3\u03b1\u03c2-\u039f\u03a31.example")


@pytest.mark.parametrize("letter", ["\u13f8", "\u10fc", "\u2c7c", "\uab70"])
def test_no_form_is_offered_that_browsers_would_not_send(letter):
    """Python's IDNA mapping knows the Unicode of 2002: a letter added since, which browsers map
    (a small Cherokee letter to its capital, ⱼ to j), looked unmapped, and the form offered for
    a name holding ß was one no browser sends."""
    idna = pytest.importorskip("idna")
    name = f"stra\u00dfe{letter}.example"
    sent = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    with pytest.raises(ValueError, match="written one way by browsers") as refused:
        parse_hosts(name)
    assert "here" not in str(refused.value) or str(refused.value).endswith(f"here {sent!r}")


@pytest.mark.parametrize("entry, reason", [("host:80", "without a port"), ("http://chat.example", "not a host name"),
                                           ("a b", "not a host name"), ("user@host", "not a host name"),
                                           (".", "not a host name"), ("*.example.com", "write .example.com"),
                                           ("chat*", r"or \* alone for any"),
                                           # an --env-file keeps quotes: every request would be refused
                                           ("'chat.example'", "a host name is dot-separated labels"),
                                           ('"chat.example"', "a host name is dot-separated labels"),
                                           ("a..b", "a host name is dot-separated labels"),
                                           ("chat.example..", "a host name is dot-separated labels"),
                                           ("x" * 64, "labels of 1 to 63")])
def test_an_entry_that_names_no_host_is_refused(entry, reason):
    with pytest.raises(ValueError, match=reason):
        normalize_host(entry)


def test_only_a_loopback_address_gets_a_default_list():
    assert default_allowed_hosts("0.0.0.0") == frozenset() and default_allowed_hosts("192.168.1.4") == frozenset()
    assert default_allowed_hosts("localhost") == LOCAL
    assert default_allowed_hosts("::1") == LOCAL and "127.0.0.2" in default_allowed_hosts("127.0.0.2")


def test_a_name_that_resolves_to_loopback_only_gets_the_default_list(monkeypatch):
    """``--host`` naming this machine where its name resolves to a loopback address (Debian's
    /etc/hosts puts the machine's name on 127.0.1.1) listens on loopback: a page of any site
    could reach it by DNS rebinding as it reaches 127.0.0.1."""
    import socket

    resolved = {"box": ["127.0.1.1", "::1"], "lan-box": ["127.0.1.1", "192.168.1.4"]}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in resolved:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))
                for address in resolved[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert default_allowed_hosts("box") == LOCAL | {"box", "127.0.1.1"}
    assert not host_allowed("rebind.attacker.example", default_allowed_hosts("box"))
    assert default_allowed_hosts("lan-box") == frozenset()  # reached from other machines too: any name
    assert default_allowed_hosts("no-such-name") == frozenset()
    assert default_allowed_hosts("localhost.") == LOCAL
    assert "[::ffff:7f00:1]" in default_allowed_hosts("::ffff:127.0.0.1")  # IPv4 loopback, IPv6-mapped


def test_a_name_that_resolves_to_loopback_answers_the_address_it_listens_on(monkeypatch, make_client):
    """``--host box`` listens on the address the name resolves to (127.0.1.1): a client on this
    machine that names the server by that address (``curl http://127.0.1.1:5000``), answered
    before the name counted as loopback, is answered still; no page of another site sends it."""
    import socket

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "box":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.1.1", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    allowed = default_allowed_hosts("box")
    assert host_allowed("127.0.1.1:5000", allowed) and host_allowed("box:5000", allowed)
    assert not host_allowed("rebind.attacker.example:5000", allowed)
    client = make_client(ALLOWED_HOSTS=",".join(sorted(allowed)))
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": "127.0.1.1:5000"}).status_code == 200


def test_the_api_and_admin_routes_refuse_a_host_not_listed(make_client):
    client = make_client(ALLOWED_HOSTS="chat.example", ADMIN_TOKEN="an-admin-token-for-the-test")
    refused = client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": "rebind.attacker.example:5000"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "host_not_allowed"
    assert "LEGACY_ASSISTANT_ALLOWED_HOSTS" in refused.get_json()["error"]["message"]
    assert "rebind" not in refused.get_data(as_text=True)
    admin = client.post("/admin/reload", headers={"Host": "rebind.attacker.example"})
    assert admin.status_code == 400  # refused before the token is looked at: 401 would confirm the route
    transcript = client.get("/api/v1/conversations/some-sender-id", headers={"Host": "evil.example"})
    assert transcript.status_code == 400
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": "chat.example:8000"}).status_code == 200
    for public in ("/", "/health", "/static/chat.js"):  # nothing private: probes and the page answer any name
        assert client.get(public, headers={"Host": "10.1.2.3:5000"}).status_code == 200, public


@pytest.mark.parametrize("host", ["localhost..", "a..b", ".", "x" * 64, "chat.example.."])
def test_a_host_header_that_is_no_host_name_is_refused_as_a_host_not_allowed(make_client, host):
    """Werkzeug refused it before routing, with its generic bad_request, on every route."""
    client = make_client(ALLOWED_HOSTS="chat.example,localhost")
    refused = client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": host})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "host_not_allowed"
    assert client.get("/health", headers={"Host": host}).status_code == 200  # probes answer any name
    # OPTIONS lists the path's methods through a routing of its own, which Werkzeug refused too
    options = client.options("/api/v1/parse", headers={"Host": host})
    assert options.status_code == 200 and options.headers["Allow"] == "OPTIONS, POST"
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": "chat.example."}).status_code == 200


def test_underscores_are_host_names_as_container_names_carry_them(make_client):
    client = make_client(ALLOWED_HOSTS="legacy_assistant")
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": "legacy_assistant:5000"}).status_code == 200


def test_a_request_that_names_no_host_is_told_so(make_client):
    """HTTP/1.0 allows a request without a Host header: it was told that the server "does not
    answer to the host name this request was sent to", which it never named."""
    client = make_client(ALLOWED_HOSTS="chat.example")
    refused = client.post("/api/v1/parse", json={"text": "hi"}, environ_overrides={"HTTP_HOST": ""})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "host_not_allowed"
    assert refused.get_json()["error"]["message"].startswith("this request names no host (no Host header")


def test_without_a_list_any_host_is_answered(make_client):
    client = make_client()
    assert client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": "whatever.example"}).status_code == 200


def test_a_bad_list_is_a_config_error(make_client):
    with pytest.raises(ConfigError, match="^create_app config key ALLOWED_HOSTS must be host names .*, "
                       "got 'chat.example:80': 'chat.example:80': give a host name without a port"):
        make_client(ALLOWED_HOSTS="chat.example:80")


def test_serve_fills_in_the_loopback_names_for_a_loopback_address(monkeypatch):
    from legacy_assistant.cli import build_parser
    from legacy_assistant.cli.serve import app_config, server_options
    from legacy_assistant.serving.settings import check_config

    def config(*argv):
        return app_config(build_parser().parse_args(["serve", *argv]))

    assert config()["ALLOWED_HOSTS"] == ".localhost,127.0.0.1,[::1]"  # the default --host 127.0.0.1
    assert config("--host", "0.0.0.0")["ALLOWED_HOSTS"] == "*"  # any: a deployment names its own
    assert check_config(config("--host", "0.0.0.0"))["ALLOWED_HOSTS"] == "*"  # as create_app takes it
    assert config("--allowed-hosts", "*")["ALLOWED_HOSTS"] == "*"  # a proxy here passing the public name
    assert config("--allowed-hosts", "Chat.Example")["ALLOWED_HOSTS"] == "chat.example"
    monkeypatch.setenv("LEGACY_ASSISTANT_ALLOWED_HOSTS", "chat.example, .example.com")
    assert config("--host", "0.0.0.0")["ALLOWED_HOSTS"] == ".example.com,chat.example"
    options = server_options(build_parser().parse_args(["serve"]))
    assert options.app_config["ALLOWED_HOSTS"] == ".example.com,chat.example"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--allowed-hosts", "http://chat.example"])
    for nothing in ("", ",", " , "):  # would have turned the check off: "*" says so
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--allowed-hosts", nothing])


def test_an_absolute_form_request_target_names_the_host_in_place_of_the_host_header(make_client):
    """``POST http://evil.example/api/v1/parse`` with ``Host: chat.example`` was answered under
    gunicorn, which passes the target and the header as sent: the header was checked, though the
    target's host is the request's (RFC 9112, 3.2.2), as the development server takes it."""
    client = make_client(ALLOWED_HOSTS="chat.example")

    def parse(target, host="chat.example"):
        return client.post("/api/v1/parse", json={"text": "hi"}, headers={"Host": host},
                           environ_overrides={"RAW_URI": target})

    refused = parse("http://evil.example/api/v1/parse")
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "host_not_allowed"
    assert parse("HTTP://user@evil.example:80/api/v1/parse").status_code == 400
    assert parse("http:///api/v1/parse").status_code == 400  # names no host
    assert parse("http://chat.example:8000/api/v1/parse", host="evil.example").status_code == 200
    assert parse("https://Chat.Example/api/v1/parse?next=http://evil.example").status_code == 200
    # an origin-form target leaves the Host header the request's host, whatever its query holds
    assert parse("/api/v1/parse?next=http://evil.example/").status_code == 200
    assert parse("/api/v1/parse", host="evil.example").status_code == 400
