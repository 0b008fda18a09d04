"""The serving settings: one declaration, read from flags, the environment and defaults in that order."""

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from legacy_assistant.cli import build_parser, main
from legacy_assistant.cli.serve import app_config, server_options
from legacy_assistant.errors import ConfigError
from legacy_assistant.serving import settings
from legacy_assistant.serving.settings import SETTINGS, Choice, Directory, Setting, by_name

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_DOC = ROOT / "docs" / "DEPLOYMENT.md"
TABLE_MARKER = "<!-- printed by: python -m legacy_assistant.serving.settings -->"


def parse(*argv):
    return build_parser().parse_args(["serve", *argv])


@pytest.fixture
def environ(monkeypatch):
    """A clean slate: no LEGACY_ASSISTANT_* variable of the outer environment leaks in."""
    for name in list(os.environ):
        if name.startswith(settings.ENV_PREFIX):
            monkeypatch.delenv(name)

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(settings.ENV_PREFIX + name, value)

    return set_env


def non_default_environment(tmp_path):
    """For every declared setting: (text for its environment variable, the value it must give)."""
    cpus = os.cpu_count() or 1
    return {
        "HOST": ("0.0.0.0", "0.0.0.0"),
        "PORT": ("8123", 8123),
        "MODEL": (str(tmp_path / "elsewhere"), str((tmp_path / "elsewhere").resolve())),
        "RESPONDER": (str(tmp_path / "talker"), str((tmp_path / "talker").resolve())),
        "FALLBACK": ("canned", "canned"),
        "GENERATION_MODE": ("greedy", "greedy"),
        "CONDITION_STRENGTH": ("2.5", 2.5),
        "BATCHING": ("off", False),
        "BATCH_MAX_SIZE": ("8", 8),
        "BATCH_MAX_WAIT_MS": ("5", 5.0),
        "THRESHOLD": ("0.4", 0.4),
        "FOLLOW_UPS": ("classic", "classic"),
        "ESCAPE_CONFIDENCE": ("0.9", 0.9),
        "WORKERS": (str(cpus + 1), cpus + 1),
        "THREADS": ("7", 7),
        "TIMEOUT": ("45", 45),
        "REUSE_PORT": ("off", False),
        "STORE": ("memory", "memory"),
        "CONVERSATION_TTL": ("60", 60.0),
        "MAX_TURNS": ("9", 9),
        "INTRA_OP_THREADS": ("2", 2),
        "INTER_OP_THREADS": ("3", 3),
        "MAX_TEXT_LENGTH": ("500", 500),
        "MAX_BODY_BYTES": ("2048", 2048),
        "ACCESS_LOG": ("no", False),
        "LOG_FORMAT": ("json", "json"),
        "WARM_UP": ("off", False),
        "API_TOKEN": ("api-from\tenv\n", "api-from\tenv"),  # a secrets file's line break is dropped; a tab is header text
        "ADMIN_TOKEN": ("admin-from-env", "admin-from-env"),
        "CORS_ORIGINS": ("HTTPS://A.example:443/", "https://a.example"),  # as browsers send it
        "ALLOWED_HOSTS": ("Chat.Example, .example.com", ".example.com,chat.example"),
    }


def test_every_environment_variable_takes_effect_in_serve(environ, tmp_path):
    table = non_default_environment(tmp_path)
    assert set(table) == set(by_name()), "give every declared setting a non-default value here"
    for name, (text, expected) in table.items():
        assert expected != by_name()[name].default_value(), name
    environ(**{name: text for name, (text, _) in table.items()})

    options = server_options(parse())  # what the gunicorn master gets, and passes to each worker's app
    for s in SETTINGS:
        expected = table[s.name][1]
        got = getattr(options, s.name.lower()) if s.scope == settings.SERVER else options.app_config[s.config_key]
        assert got == expected, s.name
    assert options.app_config == app_config(parse())  # --dev builds its app from the same config


def test_every_environment_variable_takes_effect_in_the_app(environ, tmp_path, make_client):
    table = non_default_environment(tmp_path)
    environ(**{name: text for name, (text, _) in table.items()})
    config = make_client().application.config  # create_app, reading the environment itself
    for s in settings.in_scope(settings.APP):
        expected = table[s.name][1]
        if s.name == "CORS_ORIGINS":
            expected = frozenset({expected})  # the app keeps the list as a set
        if s.name == "ALLOWED_HOSTS":
            expected = frozenset(expected.split(","))
        assert config[s.config_key] == expected, s.name


def test_the_responder_is_turned_off_by_flag_or_environment(environ):
    environ()
    assert app_config(parse())["RESPONDER_DIR"] is not None  # the shipped responder by default
    assert app_config(parse("--no-responder"))["RESPONDER_DIR"] is None
    for word in ("none", "NONE", " none "):
        environ(RESPONDER=word)
        assert app_config(parse())["RESPONDER_DIR"] is None, word
    environ(RESPONDER="none")
    assert app_config(parse("--responder", "elsewhere"))["RESPONDER_DIR"] == str(Path("elsewhere").resolve())


def test_documented_table_is_the_declaration():
    lines = SETTINGS_DOC.read_text(encoding="utf-8").splitlines()
    assert lines.count(TABLE_MARKER) == 1, f"docs/DEPLOYMENT.md must hold the marker {TABLE_MARKER!r} once"
    start = lines.index(TABLE_MARKER) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    assert "\n".join(lines[start:end]) == settings.markdown_table(), (
        "the settings table in docs/DEPLOYMENT.md is stale: paste the output of 'python -m legacy_assistant.serving.settings'"
    )


def test_flag_beats_environment_and_a_missing_flag_does_not(environ):
    environ(WORKERS="5", THRESHOLD="0.3", REUSE_PORT="off", STORE="memory")
    options = server_options(parse("--workers", "2", "--threshold", "0.6", "--reuse-port"))
    assert (options.workers, options.reuse_port) == (2, True)
    assert options.app_config["THRESHOLD"] == 0.6
    left_out = server_options(parse())
    assert (left_out.workers, left_out.reuse_port) == (5, False)
    assert left_out.app_config["THRESHOLD"] == 0.3 and left_out.app_config["STORE_URL"] == "memory"
    # a flag given means the variable is not read at all, so a bad one does not matter
    environ(PORT="not-a-port")
    assert server_options(parse("--port", "8000")).port == 8000


def test_defaults_when_neither_flag_nor_environment(environ):
    environ(THRESHOLD="")  # empty counts as unset
    options = server_options(parse())
    assert (options.host, options.port, options.threads, options.reuse_port) == ("127.0.0.1", 5000, 4, True)
    assert options.workers == (os.cpu_count() or 1)
    config = options.app_config
    assert config["THRESHOLD"] is None and config["STORE_URL"] is None and config["ACCESS_LOG"] is True
    assert (config["INTRA_OP_THREADS"], config["INTER_OP_THREADS"]) == (1, -1)
    assert config["MAX_CONTENT_LENGTH"] == 65536 and config["MAX_TEXT_LENGTH"] == 1000


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("WORKERS", "many", "environment variable LEGACY_ASSISTANT_WORKERS must be an integer from 1 to 1,024, got 'many'"),
        ("PORT", "70000", "environment variable LEGACY_ASSISTANT_PORT must be an integer from 0 to 65,535, got '70000'"),
        ("THRESHOLD", "1.5", "environment variable LEGACY_ASSISTANT_THRESHOLD must be a number from 0 to 1, got '1.5'"),
        # past what SQLite, Redis and TensorFlow take: refused at start, not a 500 on every turn
        ("MAX_TURNS", str(2**63),
         f"environment variable LEGACY_ASSISTANT_MAX_TURNS must be an integer from 1 to 1,000,000, got '{2**63}'"),
        ("CONVERSATION_TTL", "1e17",
         "environment variable LEGACY_ASSISTANT_CONVERSATION_TTL must be a number from 0 to 315,360,000, got '1e17'"),
        ("INTRA_OP_THREADS", str(2**31),
         f"environment variable LEGACY_ASSISTANT_INTRA_OP_THREADS must be an integer from 0 to 1,024, got '{2**31}'"),
        # a token a client could never present (it is read without surrounding whitespace)
        ("ADMIN_TOKEN", " \t\n",
         "environment variable LEGACY_ASSISTANT_ADMIN_TOKEN must be a token (surrounding whitespace is dropped; "
         "it may not be empty or only whitespace): it is empty or only whitespace (unset it to run without a token)"),
        # set but empty (a secrets template, $(cat missing-file)): not taken for no token, which left the API open
        ("API_TOKEN", "",
         "environment variable LEGACY_ASSISTANT_API_TOKEN must be a token (surrounding whitespace is dropped; "
         "it may not be empty or only whitespace): it is empty or only whitespace (unset it to run without a token)"),
        # browsers send Latin-1, curl UTF-8: some clients would get in and others not
        ("ADMIN_TOKEN", "p\u00e4sswort-1234567890",
         "environment variable LEGACY_ASSISTANT_ADMIN_TOKEN must be a token (surrounding whitespace is dropped; "
         "it may not be empty or only whitespace): it holds a character outside ASCII, which HTTP clients send in "
         "different encodings (browsers in Latin-1, others in UTF-8): use ASCII only, as `openssl rand -hex 16` makes"),
        # no client can send a line break in a header: every request would be a 401; the value
        # itself is a secret, so the message does not repeat it
        ("API_TOKEN", "first-half\nsecond-half",
         "environment variable LEGACY_ASSISTANT_API_TOKEN must be a token (surrounding whitespace is dropped; "
         "it may not be empty or only whitespace): it holds a control character (a line break?), which no Authorization "
         "header can carry"),
        # origins that could never equal what a browser sends: CORS would stay off without a word
        ("CORS_ORIGINS", "*",
         "environment variable LEGACY_ASSISTANT_CORS_ORIGINS must be origins such as https://shop.example, "
         "comma-separated, got '*': '*' is not supported: list each origin whose "
         "pages may call the API"),
        ("CORS_ORIGINS", "https://a.example, shop.example",
         "environment variable LEGACY_ASSISTANT_CORS_ORIGINS must be origins such as https://shop.example, "
         "comma-separated, got 'https://a.example, shop.example': 'shop.example' "
         "is not an origin: write it as http://host[:port] or https://host[:port]"),
        (
            "ACCESS_LOG",
            "maybe",
            "environment variable LEGACY_ASSISTANT_ACCESS_LOG must be on (1/true/yes/on) or off "
            "(0/false/no/off), got 'maybe'",
        ),
        # Python's int() and float() take these; no other reader of the same file would
        ("THREADS", "1_0",
         "environment variable LEGACY_ASSISTANT_THREADS must be an integer from 1 to 1,024, got '1_0': "
         "write it without '_' between the digits"),
        ("MAX_BODY_BYTES", "\u0661\u0660\u0662\u0664",  # Arabic-Indic 1024
         "environment variable LEGACY_ASSISTANT_MAX_BODY_BYTES must be an integer from 1 to 1,073,741,824, got "
         "'\u0661\u0660\u0662\u0664': write it with the digits 0-9 (it holds a character outside ASCII)"),
        ("CONVERSATION_TTL", "\uff16\uff10",  # full-width 60
         "environment variable LEGACY_ASSISTANT_CONVERSATION_TTL must be a number from 0 to 315,360,000, got "
         "'\uff16\uff10': write it with the digits 0-9 (it holds a character outside ASCII)"),
        ("BATCH_MAX_WAIT_MS", "1_0.5",
         "environment variable LEGACY_ASSISTANT_BATCH_MAX_WAIT_MS must be a number from 0 to 1,000, got '1_0.5': "
         "write it without '_' between the digits"),
        # set but empty (a template's unset variable): taken for unset, a server listening beyond
        # loopback answered any host name
        ("ALLOWED_HOSTS", "",
         "environment variable LEGACY_ASSISTANT_ALLOWED_HOSTS must be host names such as chat.example, .example.com "
         "(it and every name below), 127.0.0.1, or * (any), got '': it names no host: list the names the server is "
         "reached by, or * for any (leave it unset for the default)"),
    ],
)
def test_bad_environment_value_is_one_clear_error(environ, capsys, name, text, message):
    environ(**{name: text})
    with pytest.raises(ConfigError) as caught:
        server_options(parse())
    assert str(caught.value) == message
    # the command says the same, before anything starts, and exits 1 without a traceback
    assert main(["serve"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-body-bytes", "0"], "argument --max-body-bytes: must be an integer from 1 to 1,073,741,824, got '0'"),
        (["--conversation-ttl", "nan"], "argument --conversation-ttl: must be a number from 0 to 315,360,000, got 'nan'"),
        (["--port", "x"], "argument --port: must be an integer from 0 to 65,535, got 'x'"),
        # a blank flag (an unset variable in a template) is no value: "" would listen everywhere,
        # or open the default store over the environment's, or take the working directory for a model
        (["--host", ""], "argument --host: must be an address or host name (IPv6 with or without brackets), "
                         "or unix:PATH, got '': blank"),
        (["--store", " "], "argument --store: must be text, not blank, got ' ': blank"),
        (["--model", ""], "argument --model: must be a directory, got '': blank"),
        (["--responder", ""], "argument --responder: must be a directory, or none, got '': blank"),
        (["--workers", "1_000"],
         "argument --workers: must be an integer from 1 to 1,024, got '1_000': write it without '_' between the digits"),
        (["--port", "\u0665\u0660\u0660\u0660"],  # Arabic-Indic 5000
         "argument --port: must be an integer from 0 to 65,535, got '\u0665\u0660\u0660\u0660': write it with the "
         "digits 0-9 (it holds a character outside ASCII)"),
        (["--threshold", "0.\u0665"],
         "argument --threshold: must be a number from 0 to 1, got '0.\u0665': write it with the digits 0-9 (it holds "
         "a character outside ASCII)"),
    ],
)
def test_bad_flag_value_is_a_usage_error_naming_the_flag(environ, capsys, argv, message):
    with pytest.raises(SystemExit) as caught:
        parse(*argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err.strip().endswith(f"error: {message}")


def test_a_worker_timeout_within_the_workers_one_second_heartbeat_is_refused(environ, capsys):
    """An idle worker notes that it is alive a little more than a second apart: at --timeout 1 the
    master killed idle workers as silent, and each replacement loaded the models again."""
    with pytest.raises(SystemExit):
        parse("--timeout", "1")
    assert capsys.readouterr().err.strip().endswith("argument --timeout: must be an integer from 2 to 86,400, got '1'")
    environ(TIMEOUT="1")
    with pytest.raises(ConfigError, match="^environment variable LEGACY_ASSISTANT_TIMEOUT must be an integer from 2 "):
        server_options(parse())
    environ(TIMEOUT="2")
    assert server_options(parse()).timeout == 2


def test_a_variable_of_the_prefix_that_is_no_setting_is_refused_naming_the_closest(environ, capsys):
    """A misspelt token variable served the API open without a word."""
    environ(API_TOKNE="abcdefghijklmnopqrstu")
    message = (
        "environment variable(s) LEGACY_ASSISTANT_API_TOKNE (did you mean LEGACY_ASSISTANT_API_TOKEN?): not a "
        "setting of legacy-assistant; correct or unset them ('legacy-assistant serve --help' lists every setting)"
    )
    with pytest.raises(ConfigError) as caught:
        server_options(parse())
    assert str(caught.value) == message
    assert main(["serve"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {message}"
    environ(ZZZ_UNRELATED="1")
    with pytest.raises(ConfigError, match=r"^environment variable\(s\) LEGACY_ASSISTANT_API_TOKNE \(did you mean "
                       r"LEGACY_ASSISTANT_API_TOKEN\?\), LEGACY_ASSISTANT_ZZZ_UNRELATED: not a setting"):
        server_options(parse())


def test_a_misspelt_runtime_variable_is_refused_naming_the_runtime_variable(environ):
    """``--runtime``'s variable is one a person sets too: its typo was refused with no name to correct it to."""
    environ(RUNTIM="tf2")
    with pytest.raises(ConfigError, match=r"^environment variable\(s\) LEGACY_ASSISTANT_RUNTIM \(did you mean "
                       r"LEGACY_ASSISTANT_RUNTIME\?\): not a setting"):
        server_options(parse())


def test_an_app_a_wsgi_server_builds_itself_refuses_a_misspelt_variable_too(environ):
    """``gunicorn 'legacy_assistant.web:create_app()'`` runs no ``serve``: a misspelt token
    variable served that app's API open without a word."""
    from legacy_assistant.web import create_app

    environ(API_TOKNE="abcdefghijklmnopqrstu")
    with pytest.raises(ConfigError, match=r"^environment variable\(s\) LEGACY_ASSISTANT_API_TOKNE \(did you mean "):
        create_app({"TESTING": True, "WARM_UP": False, "RESPONDER_DIR": None, "BATCHING": False})


def test_an_empty_admin_token_variable_is_unset_and_leaves_the_admin_routes_off(environ):
    """Unlike the API token's (unset, the API is open), an unset admin token fails closed: a
    compose file's ADMIN_TOKEN=${ADMIN_TOKEN:-} keeps starting."""
    environ(ADMIN_TOKEN="")
    assert app_config(parse())["ADMIN_TOKEN"] is None


def test_the_prefixed_variables_that_are_no_settings_are_the_ones_the_code_reads(environ):
    from compat import selection
    from legacy_assistant.responder.migration import PARENT_ENV
    from legacy_assistant.serving.server import PRIVATE_ENV

    assert settings.OTHER_VARIABLES == {selection.ENV_VAR, PRIVATE_ENV, PARENT_ENV}
    environ(RUNTIME="compat", SERVER_PRIVATE="{}")
    assert server_options(parse()).port == 5000  # accepted: not settings, but the project's own


def test_app_reports_a_bad_environment_value_unless_its_config_overrides_it(environ, make_client):
    environ(MAX_TEXT_LENGTH="long")
    with pytest.raises(ConfigError, match="LEGACY_ASSISTANT_MAX_TEXT_LENGTH must be an integer"):
        make_client()
    assert make_client(MAX_TEXT_LENGTH=20).application.config["MAX_TEXT_LENGTH"] == 20


def test_create_app_reads_a_setting_given_as_text_as_its_variable_would_be(environ, make_client):
    """Unread, "30" failed every request with a 500 and "off" (a true value) turned nothing off."""
    environ()
    client = make_client(MAX_TEXT_LENGTH=" 30 ", ACCESS_LOG="off", CORS_ORIGINS=None)
    config = client.application.config
    assert (config["MAX_TEXT_LENGTH"], config["ACCESS_LOG"], config["CORS_ORIGINS"]) == (30, False, frozenset())
    answer = client.post("/api/v1/parse", json={"text": "x" * 31})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "field_too_long"
    assert client.post("/api/v1/parse", json={"text": "x" * 30}).status_code == 200


def test_create_app_refuses_a_setting_under_its_variable_name_where_the_config_key_differs(environ, make_client):
    """MAX_BODY_BYTES (the variable's name) was taken for a key of Flask's own and ignored."""
    environ()
    with pytest.raises(ConfigError) as caught:
        make_client(MAX_BODY_BYTES=100)
    assert str(caught.value) == (
        "create_app config key MAX_BODY_BYTES: not a key of the app's config; the setting of "
        "LEGACY_ASSISTANT_MAX_BODY_BYTES is the key MAX_CONTENT_LENGTH"
    )
    assert make_client(MAX_CONTENT_LENGTH=100).application.config["MAX_CONTENT_LENGTH"] == 100


TOKEN_RULE = "a token (surrounding whitespace is dropped; it may not be empty or only whitespace)"


@pytest.mark.parametrize(
    "key, value, message",
    [
        # accepted before: every text was refused as "longer than -1 characters"
        ("MAX_TEXT_LENGTH", -1, "must be an integer from 1 to 1,073,741,824, got -1"),
        ("MAX_CONTENT_LENGTH", True, "must be an integer from 1 to 1,073,741,824, got True"),
        ("MAX_TURNS", 2.5, "must be an integer from 1 to 1,000,000, got 2.5"),
        ("BATCH_MAX_WAIT_MS", float("nan"), "must be a number from 0 to 1,000, got nan"),
        ("ACCESS_LOG", 1, "must be on (1/true/yes/on) or off (0/false/no/off), got 1"),
        ("FALLBACK", None, "must be one of generate, canned, got None"),
        # as the variable set but empty: the API was served open
        ("API_TOKEN", "", f"must be {TOKEN_RULE}: it is empty or only whitespace (unset it to run without a token)"),
        ("ADMIN_TOKEN", 12345678901234567890, f"must be {TOKEN_RULE}"),
        ("ALLOWED_HOSTS", "", "must be host names such as chat.example, .example.com (it and every name below), "
                              "127.0.0.1, or * (any), got '': it names no host: list the names the server is reached "
                              "by, or * for any (leave it unset for the default)"),
    ],
)
def test_create_app_refuses_a_setting_it_cannot_use_naming_the_key(environ, make_client, key, value, message):
    environ()
    with pytest.raises(ConfigError) as caught:
        make_client(**{key: value})
    assert str(caught.value) == f"create_app config key {key} {message}"


HOSTS_RULE = "must be host names such as chat.example, .example.com (it and every name below), 127.0.0.1, or * (any)"


@pytest.mark.parametrize(
    "key, value, message",
    [
        # an empty text split, refused as that text is: it answered any host name
        ("ALLOWED_HOSTS", [""], f"{HOSTS_RULE}, got ['']: it names no host"),
        ("ALLOWED_HOSTS", (" ", ""), f"{HOSTS_RULE}, got (' ', ''): it names no host"),
        ("ALLOWED_HOSTS", ["chat example"], f"{HOSTS_RULE}, got ['chat example']: "),
        # a TypeError from the list's parser, not naming the key
        ("ALLOWED_HOSTS", True, f"{HOSTS_RULE}, got True"),
        ("CORS_ORIGINS", 1, "must be origins such as https://shop.example, comma-separated, got 1"),
        ("CORS_ORIGINS", ("https://a.example", "shop.example"),
         "must be origins such as https://shop.example, comma-separated, got ('https://a.example', 'shop.example'): "),
    ],
)
def test_create_app_checks_a_list_of_hosts_or_origins_as_their_text(environ, make_client, key, value, message):
    environ()
    with pytest.raises(ConfigError) as caught:
        make_client(**{key: value})
    assert str(caught.value).startswith(f"create_app config key {key} {message}")


def test_create_app_takes_a_list_of_hosts_or_origins(environ, make_client):
    environ()
    config = make_client(ALLOWED_HOSTS=["Chat.Example"], CORS_ORIGINS=("https://A.example",)).application.config
    assert (config["ALLOWED_HOSTS"], config["CORS_ORIGINS"]) == ({"chat.example"}, {"https://a.example"})
    # no items, as None: a built app's own config (frozensets) builds another app
    config = make_client(**{key: config[key] for key in ("ALLOWED_HOSTS", "CORS_ORIGINS")}).application.config
    assert (config["ALLOWED_HOSTS"], config["CORS_ORIGINS"]) == ({"chat.example"}, {"https://a.example"})
    config = make_client(ALLOWED_HOSTS=frozenset(), CORS_ORIGINS=[]).application.config
    assert (config["ALLOWED_HOSTS"], config["CORS_ORIGINS"]) == (frozenset(), frozenset())


def test_declarations_are_consistent():
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    keys = [s.config_key for s in settings.in_scope(settings.APP)]
    assert len(keys) == len(set(keys))
    for s in SETTINGS:
        assert s.name.isupper() and s.help, s.name
        value = s.default_value()
        if value is None:
            assert s.shown_default, f"{s.name}: say what no value means"
        elif not isinstance(value, bool):
            assert s.kind(str(value)) == value, f"{s.name}: the default is not a value its kind accepts"


def test_a_new_setting_is_one_declaration(environ, tmp_path, capsys):
    """Room for more: a directory that can also be switched off, and a choice."""
    extra = (
        Setting("RESPONDER", Directory(), None, "responder model directory", shown_default="none", negatable=True),
        Setting("FALLBACK", Choice("generate", "canned"), "canned", "how fallback turns are answered"),
    )
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, extra)

    def resolve(*argv):
        return settings.resolve(settings.flags_of(parser.parse_args(argv), extra), settings=extra)

    assert resolve() == {"RESPONDER": None, "FALLBACK": "canned"}
    environ(RESPONDER=str(tmp_path), FALLBACK="generate")
    assert resolve() == {"RESPONDER": str(tmp_path.resolve()), "FALLBACK": "generate"}
    assert resolve("--no-responder", "--fallback", "canned") == {"RESPONDER": None, "FALLBACK": "canned"}
    with pytest.raises(SystemExit):
        resolve("--fallback", "rude")
    assert capsys.readouterr().err.strip().endswith("argument --fallback: must be one of generate, canned, got 'rude'")
    assert settings.app_config(resolve(), extra) == {"RESPONDER": str(tmp_path.resolve()), "FALLBACK": "generate"}
    rows = settings.markdown_table(extra).splitlines()[2:]
    assert rows == [
        "| `LEGACY_ASSISTANT_RESPONDER` | `--responder DIR`, `--no-responder` | none | a directory "
        "| responder model directory |",
        "| `LEGACY_ASSISTANT_FALLBACK` | `--fallback {generate,canned}` | canned | one of generate, canned "
        "| how fallback turns are answered |",
    ]


def test_follow_up_settings_reach_the_dialogue_policy(environ):
    """The app loads the model itself here (no assistant handed in), as a worker does."""
    from legacy_assistant.web import create_app
    from legacy_assistant.web.context import slot_of

    environ(FOLLOW_UPS="classic", ESCAPE_CONFIDENCE="0.6", STORE="memory")
    app = create_app({"TESTING": True})
    policy = slot_of(app).current.policy
    assert (policy.follow_ups, policy.escape_confidence) == ("classic", 0.6)
    slot_of(app).current.close()


def test_a_model_directory_given_as_a_link_stays_a_link(environ, tmp_path, monkeypatch):
    """A deploy that switches ``current -> releases/v2`` reloads what the link points to then:
    a path resolved once at start would pin the first release and report every reload unchanged."""
    releases = tmp_path / "releases"
    (releases / "v1").mkdir(parents=True)
    (releases / "v2").mkdir()
    current = tmp_path / "current"
    current.symlink_to(releases / "v1")
    monkeypatch.chdir(tmp_path)
    assert Directory()("current") == str(current)  # made absolute, not resolved
    assert settings.resolve(settings.flags_of(parse("--model", "current")))["MODEL"] == str(current)
    environ(RESPONDER="current")
    assert settings.resolve()["RESPONDER"] == str(current)


def test_an_ipv6_host_in_brackets_is_the_address_inside(environ, capsys):
    """``--host [::1]`` (as a URL writes it) listens on ::1: the brackets went to the socket
    layer as part of a host name, which no resolver knows."""
    assert server_options(parse("--host", "[::1]")).host == "::1"
    assert server_options(parse("--host", " [::] ")).host == "::"
    environ(HOST="[::1]")
    assert server_options(parse()).host == "::1"
    assert server_options(parse("--host", "::1")).host == "::1"

    assert server_options(parse("--host", "unix:/run/a[1].sock")).host == "unix:/run/a[1].sock"
    for wrong in ("[localhost]", "[::1", "::1]", "[[::1]]"):  # each was a traceback from the allowed hosts
        with pytest.raises(SystemExit):
            parse("--host", wrong)
        assert f"got '{wrong}': brackets go around an IPv6 address only, as in [::1]" in capsys.readouterr().err


def test_a_host_with_a_port_or_a_colon_is_refused_as_a_flag_error(environ, capsys):
    """``--host 0.0.0.0:8000`` (a bind address as gunicorn writes it) went to the socket layer
    as an IPv6 address in brackets: "cannot listen on [0.0.0.0:8000]:5000: Name or service not
    known"; ``[::1]:8000`` was called brackets misplaced. No host name holds a colon."""
    for wrong in ("0.0.0.0:8000", "localhost:8000", "[::1]:8000", " 127.0.0.1:0 "):
        with pytest.raises(SystemExit):
            parse("--host", wrong)
        err = capsys.readouterr().err
        assert f"got '{wrong}': give the port with --port (LEGACY_ASSISTANT_PORT), not in the address" in err
    environ(HOST="0.0.0.0:8000")
    with pytest.raises(ConfigError, match="LEGACY_ASSISTANT_HOST .*give the port with --port"):
        server_options(parse())
    with pytest.raises(SystemExit):
        parse("--host", "1::2::3")
    assert "got '1::2::3': not an IPv6 address, nor a host name" in capsys.readouterr().err
    # an IPv6 address, with or without its zone, is still one
    assert server_options(parse("--host", "::1:80")).host == "::1:80"
    assert server_options(parse("--host", "fe80::1%lo")).host == "fe80::1%lo"


def test_a_host_padded_by_hand_or_from_a_file_is_the_address(environ):
    """Every other kind reads its value without surrounding whitespace: "0.0.0.0 " from an env
    file went to the resolver as a host name ("cannot listen on 0.0.0.0 :5000: Name or service
    not known", naming --host), and " unix:PATH" was taken for a host name, not a socket."""
    environ(HOST="0.0.0.0 \n")
    assert server_options(parse()).host == "0.0.0.0"
    assert server_options(parse("--host", "\t::1 ")).host == "::1"
    assert server_options(parse("--host", " unix:/run/a.sock ")).host == "unix:/run/a.sock"


def test_a_store_or_directory_with_a_line_break_from_a_file_is_the_value_without_it(environ, tmp_path):
    """The store URL and the directories were read with the whitespace around them, as no other
    kind is: "sqlite:///PATH/c.db\n" (a Kubernetes "|" block, a file written by echo) served a
    SQLite file named "c.db\n", and "DIR\n" was a directory not found, its error split over two
    lines."""
    environ(STORE=f"sqlite:///{tmp_path}/c.db\n", MODEL=f" {tmp_path}/model\n", RESPONDER=f"{tmp_path}/talker\n")
    config = app_config(parse())
    assert config["STORE_URL"] == f"sqlite:///{tmp_path}/c.db"
    assert (config["MODEL_DIR"], config["RESPONDER_DIR"]) == (f"{tmp_path}/model", f"{tmp_path}/talker")
    environ(STORE=" memory\n")
    assert app_config(parse())["STORE_URL"] == "memory"
    assert app_config(parse("--store", "memory "))["STORE_URL"] == "memory"
    assert app_config(parse("--model", f"{tmp_path}/model "))["MODEL_DIR"] == f"{tmp_path}/model"


def test_a_home_folder_of_no_user_is_refused_naming_the_setting(environ, capsys):
    """``~NAME/...`` of no user on this machine was a traceback (pathlib's RuntimeError) from
    the command line's parsing, or from the environment's."""
    message = "must be a directory, got '~no-such-user-here/model': ~no-such-user-here names no home folder"
    with pytest.raises(SystemExit) as caught:
        parse("--model", "~no-such-user-here/model")
    assert caught.value.code == 2
    assert f"error: argument --model: {message}" in capsys.readouterr().err
    environ(RESPONDER="~no-such-user-here/model")
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error: environment variable LEGACY_ASSISTANT_RESPONDER must be a directory, or " \
        "none, got '~no-such-user-here/model': ~no-such-user-here names no home folder on this machine" in err, err


def test_a_switch_read_from_a_file_or_padded_by_hand_still_reads(environ):
    """A switch word with spaces or a secrets file's line break around it is the word, not an error."""
    environ(BATCHING=" off\n", ACCESS_LOG="\tNo ", WARM_UP=" yes\n")
    values = settings.resolve()
    assert (values["BATCHING"], values["ACCESS_LOG"], values["WARM_UP"]) == (False, False, True)


def test_the_text_cap_warning_starts_one_byte_past_what_the_longest_message_needs():
    """A body limit exactly as large as the longest message can take is enough: no warning."""
    needed = 1000 * settings.BYTES_PER_CHARACTER + settings.REQUEST_OVERHEAD_BYTES
    assert settings.text_cap_warning({"MAX_TEXT_LENGTH": 1000, "MAX_BODY_BYTES": needed}) is None
    warning = settings.text_cap_warning({"MAX_TEXT_LENGTH": 1000, "MAX_BODY_BYTES": needed - 1})
    assert warning is not None and f"raise --max-body-bytes to {needed}" in warning


def _make_command(target, tmp_path, *variables, environ=None):
    """The command ``make -n TARGET`` would run, with a virtualenv that needs no install."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / ".installed").touch()  # newer than the lock files: nothing to install
    # a make of its own, also when the tests run under one (make test): no "Leaving directory" line
    env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(environ or {})
    made = subprocess.run(["make", "-n", "--no-print-directory", target, f"VENV={venv}", *variables], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made
    return made.stdout.strip().splitlines()[-1].split()


def test_make_run_leaves_the_address_to_the_environment_unless_make_is_given_one(tmp_path):
    """make run passed --host 127.0.0.1 --port 5000 always: LEGACY_ASSISTANT_HOST and
    LEGACY_ASSISTANT_PORT were overridden without a word, and LEGACY_ASSISTANT_HOST=unix:PATH was
    refused for the port it was given."""
    environ = {"LEGACY_ASSISTANT_HOST": "unix:/tmp/x.sock", "LEGACY_ASSISTANT_PORT": "8123"}
    assert _make_command("run", tmp_path, environ=environ)[1:] == ["serve"]
    assert _make_command("run", tmp_path, "HOST=0.0.0.0", "PORT=8080")[1:] == [
        "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert _make_command("run", tmp_path, "PORT=8080")[1:] == ["serve", "--port", "8080"]
    assert _make_command("playground", tmp_path)[1:] == ["playground", "--port", "7860"]
    assert _make_command("playground", tmp_path, "HOST=::1")[1:] == ["playground", "--host", "::1", "--port", "7860"]


def test_make_playground_takes_port_as_it_takes_host(tmp_path):
    """make playground HOST=::1 PORT=8080 listened on ::1, but on port 7860: PORT was left
    unread without a word. PLAYGROUND_PORT, the more particular name, still comes first."""
    assert _make_command("playground", tmp_path, "PORT=8080")[1:] == ["playground", "--port", "8080"]
    assert _make_command("playground", tmp_path, "HOST=::1", "PORT=8080")[1:] == [
        "playground", "--host", "::1", "--port", "8080"]
    assert _make_command("playground", tmp_path, "PORT=8080", "PLAYGROUND_PORT=9000")[1:] == [
        "playground", "--port", "9000"]
    assert _make_command("playground", tmp_path, "PLAYGROUND_PORT=9000")[1:] == ["playground", "--port", "9000"]


def test_make_run_reads_no_host_or_port_from_the_environment(tmp_path):
    """tcsh exports HOST as the machine's name (and other setups export PORT): make run served
    on that name's address, over LEGACY_ASSISTANT_HOST, and make playground too."""
    environ = {"HOST": "devbox", "PORT": "3000", "LEGACY_ASSISTANT_HOST": "unix:/tmp/x.sock"}
    assert _make_command("run", tmp_path, environ=environ)[1:] == ["serve"]
    assert _make_command("playground", tmp_path, environ=environ)[1:] == ["playground", "--port", "7860"]
    assert _make_command("run", tmp_path, "HOST=::1", environ=environ)[1:] == ["serve", "--host", "::1"]


def test_the_text_cap_warning_never_advises_a_text_cap_the_server_refuses():
    """A body limit too small for even one character's worth gets the advice to raise it only:
    --max-text-length 0, which the server refuses, is not offered as the other way out."""
    small = settings.REQUEST_OVERHEAD_BYTES + settings.BYTES_PER_CHARACTER - 1
    warning = settings.text_cap_warning({"MAX_TEXT_LENGTH": 1000, "MAX_BODY_BYTES": small})
    needed = 1000 * settings.BYTES_PER_CHARACTER + settings.REQUEST_OVERHEAD_BYTES
    assert warning is not None and warning.endswith(f"raise --max-body-bytes to {needed}")
    assert "--max-text-length to 0" not in warning
    # one character's worth more: lowering the cap to 1 is a way out again
    warning = settings.text_cap_warning({"MAX_TEXT_LENGTH": 1000, "MAX_BODY_BYTES": small + 1})
    assert warning.endswith(f"raise --max-body-bytes to {needed} or lower --max-text-length to 1")


def test_the_text_cap_warning_never_advises_a_body_limit_the_server_refuses():
    """A text cap whose longest message needs more than --max-body-bytes may be (2**30) was told
    to raise --max-body-bytes past that, a value the server refuses: the text cap must come down."""
    most = (settings.MAX_BODY_LIMIT - settings.REQUEST_OVERHEAD_BYTES) // settings.BYTES_PER_CHARACTER
    body = 64 * 1024
    fits = (body - settings.REQUEST_OVERHEAD_BYTES) // settings.BYTES_PER_CHARACTER
    warning = settings.text_cap_warning({"MAX_TEXT_LENGTH": most + 1, "MAX_BODY_BYTES": body})
    assert warning.endswith(f"; lower --max-text-length to {fits}, or raise --max-body-bytes to "
                            f"{settings.MAX_BODY_LIMIT} (its largest) and lower --max-text-length to {most}"), warning
    warning = settings.text_cap_warning({"MAX_TEXT_LENGTH": settings.MAX_BODY_LIMIT, "MAX_BODY_BYTES": 1})
    assert warning.endswith(f"; raise --max-body-bytes to {settings.MAX_BODY_LIMIT} (its largest) and lower "
                            f"--max-text-length to {most}"), warning
    # the largest text cap that fits the largest body limit is still told to raise the limit
    needed = most * settings.BYTES_PER_CHARACTER + settings.REQUEST_OVERHEAD_BYTES
    assert settings.text_cap_warning({"MAX_TEXT_LENGTH": most, "MAX_BODY_BYTES": body}).endswith(
        f"raise --max-body-bytes to {needed} or lower --max-text-length to {fits}")
