"""``legacy-assistant serve`` options, what it refuses before any worker starts (one line each),
and the rule that the gunicorn master has no TensorFlow."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from legacy_assistant.cli import build_parser
from legacy_assistant.cli.serve import app_config, server_options
from legacy_assistant.errors import AssistantError, ConfigError
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER, ROOT
from tests.server_process import ServerProcess

# A model path that cannot exist on any machine (a path below a file; /nonexistent, the home of
# Debian's nobody, is made by whatever runs with that HOME)
MISSING_MODEL = "/dev/null/model"


def parse(*argv):
    return build_parser().parse_args(["serve", *argv])


def test_serve_options_reach_the_app_config(tmp_path):
    args = parse("--workers", "3", "--threads", "2", "--store", "redis://h:1/2", "--conversation-ttl", "60",
                 "--max-text-length", "500", "--max-body-bytes", "2048", "--no-access-log", "--threshold", "0.4")
    options = server_options(args)
    config = app_config(args)
    assert (options.workers, options.threads) == (3, 2) and options.app_config == config
    assert config["STORE_URL"] == "redis://h:1/2" and config["CONVERSATION_TTL"] == 60.0
    assert config["MAX_TEXT_LENGTH"] == 500 and config["MAX_CONTENT_LENGTH"] == 2048
    assert config["ACCESS_LOG"] is False and config["THRESHOLD"] == 0.4
    assert (config["INTRA_OP_THREADS"], config["INTER_OP_THREADS"]) == (1, -1)
    config = app_config(parse("--intra-op-threads", "2", "--inter-op-threads", "0"))
    assert (config["INTRA_OP_THREADS"], config["INTER_OP_THREADS"]) == (2, 0)
    with pytest.raises(SystemExit):  # a usage error, as any bad flag value
        parse("--intra-op-threads", "-1")


def test_serve_options_from_environment(monkeypatch):
    monkeypatch.setenv("LEGACY_ASSISTANT_WORKERS", "5")
    monkeypatch.setenv("LEGACY_ASSISTANT_STORE", "memory")
    monkeypatch.setenv("LEGACY_ASSISTANT_THRESHOLD", "0.35")
    options = server_options(parse())
    assert options.workers == 5 and options.app_config["STORE_URL"] == "memory"
    assert options.app_config["THRESHOLD"] == 0.35  # no --threshold: the environment's, not None


def test_reuse_port_is_on_unless_switched_off(monkeypatch):
    monkeypatch.delenv("LEGACY_ASSISTANT_REUSE_PORT", raising=False)
    assert server_options(parse()).reuse_port is True
    assert server_options(parse("--no-reuse-port")).reuse_port is False
    monkeypatch.setenv("LEGACY_ASSISTANT_REUSE_PORT", "off")
    assert server_options(parse()).reuse_port is False
    assert server_options(parse("--reuse-port")).reuse_port is True  # the command line wins
    monkeypatch.setenv("LEGACY_ASSISTANT_REUSE_PORT", "maybe")
    with pytest.raises(ConfigError, match="environment variable LEGACY_ASSISTANT_REUSE_PORT must be"):
        server_options(parse())


def test_bad_serve_options_are_clear_errors(monkeypatch, capsys):
    from legacy_assistant.cli.serve import run

    with pytest.raises(SystemExit) as caught:
        parse("--workers", "0")
    assert caught.value.code == 2
    assert "argument --workers: must be an integer from 1 to 1,024, got '0'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"^model directory not found: /dev/null/model$"):
        run(parse("--model", MISSING_MODEL))
    with pytest.raises(AssistantError, match=r"/exported/assistant.json: missing: not a legacy-assistant model directory$"):
        run(parse("--model", str(DEFAULT_MODEL.parent)))
    monkeypatch.setenv("LEGACY_ASSISTANT_MODEL", MISSING_MODEL)
    # a value nobody typed on this command line is traced to where it came from
    with pytest.raises(ConfigError, match=r"directory .*\(set by environment variable LEGACY_ASSISTANT_MODEL\)$"):
        run(parse())


@pytest.mark.parametrize(
    "name, value, expected",
    [
        # what it is and where it goes, not only "no responder.json"
        ("RESPONDER", str(DEFAULT_MODEL), "an intent model (assistant.json), not a responder (no responder.json); "
                                          "load it as an intent model (--model)"),
        ("STORE", "sqlite:////nonexistent/c.db", "the folder /nonexistent does not exist"),
    ],
)
def test_a_refused_value_from_the_environment_names_its_variable(monkeypatch, name, value, expected):
    from legacy_assistant.cli.serve import run

    monkeypatch.setenv(f"LEGACY_ASSISTANT_{name}", value)
    with pytest.raises(ConfigError) as caught:
        run(parse())
    assert expected in str(caught.value)
    assert str(caught.value).endswith(f"(set by environment variable LEGACY_ASSISTANT_{name})")
    flag = "--responder" if name == "RESPONDER" else "--store"
    with pytest.raises(AssistantError) as caught:
        run(parse(flag, value))  # the flag wins over the variable and is what the user typed
    assert expected in str(caught.value) and "set by" not in str(caught.value)


def test_a_damaged_manifest_is_named_as_the_other_commands_name_it(tmp_path):
    """serve said "not a model directory (no assistant.json)" for a manifest replaced by a folder
    or a pipe, where info, chat and golden name the damage."""
    import os

    from legacy_assistant.cli.serve import run

    folder, pipe = tmp_path / "folder", tmp_path / "pipe"
    for model in (folder, pipe):
        shutil.copytree(DEFAULT_MODEL, model)
        (model / "assistant.json").unlink()
    (folder / "assistant.json").mkdir()
    os.mkfifo(pipe / "assistant.json")
    with pytest.raises(AssistantError, match="assistant.json: damaged: is a folder, not a file"):
        run(parse("--model", str(folder), "--no-responder"))
    with pytest.raises(AssistantError, match="assistant.json: damaged: is not a regular file"):
        run(parse("--model", str(pipe), "--no-responder"))
    with pytest.raises(AssistantError, match="a responder .responder.json., not an intent model"):
        run(parse("--model", str(DEFAULT_RESPONDER), "--no-responder"))


def test_a_memory_store_for_many_workers_is_named_as_it_was_given(monkeypatch):
    from legacy_assistant.cli.serve import run

    with pytest.raises(ConfigError, match="^--store memory keeps conversations inside one process"):
        run(parse("--store", "memory", "--workers", "2", "--no-responder"))
    monkeypatch.setenv("LEGACY_ASSISTANT_STORE", "memory")
    with pytest.raises(ConfigError, match="^LEGACY_ASSISTANT_STORE=memory keeps conversations inside one process"):
        run(parse("--workers", "2", "--no-responder"))


def test_gunicorn_flags_are_refused_with_the_development_server(monkeypatch, tmp_path):
    from legacy_assistant.cli.serve import check_dev_flags, run
    from legacy_assistant.serving import settings

    # told before the models are checked: this model directory does not exist
    missing = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="^--workers: not used by the development server"):
        run(parse("--dev", "--workers", "2", "--model", missing))
    with pytest.raises(ConfigError, match="^--threads, --timeout, --no-reuse-port: not used by the development"):
        run(parse("--dev", "--threads", "2", "--timeout", "9", "--no-reuse-port", "--model", missing))
    # the environment holds for serve and serve --dev alike: left alone
    monkeypatch.setenv("LEGACY_ASSISTANT_WORKERS", "3")
    check_dev_flags(settings.flags_of(parse("--dev", "--port", "5001")))


def test_one_token_for_the_api_and_the_admin_routes_is_refused(monkeypatch, make_client):
    """The chat page keeps the API token in every user's browser: with the admin token the same,
    any of them could reload the models."""
    from legacy_assistant.cli.serve import run

    monkeypatch.setenv("LEGACY_ASSISTANT_API_TOKEN", "one-token-for-both-routes")
    monkeypatch.setenv("LEGACY_ASSISTANT_ADMIN_TOKEN", " one-token-for-both-routes\n")  # read as the same token
    with pytest.raises(ConfigError, match="are the same token: every client of the API could call the admin"):
        run(parse("--no-responder", "--model", MISSING_MODEL))  # refused before the model is looked at
    with pytest.raises(ConfigError, match="are the same token"):
        make_client()
    monkeypatch.setenv("LEGACY_ASSISTANT_ADMIN_TOKEN", "another-token-for-admins")
    assert make_client().get("/health").status_code == 200


def test_a_short_token_is_warned_at_start(monkeypatch, caplog):
    from legacy_assistant.cli import serve as serve_cli
    from legacy_assistant.serving.settings import resolve, short_token_warnings

    assert short_token_warnings(resolve({})) == []
    monkeypatch.setenv("LEGACY_ASSISTANT_ADMIN_TOKEN", "change-me")
    monkeypatch.setenv("LEGACY_ASSISTANT_API_TOKEN", "0123456789abcdef")  # 16 characters: long enough
    with caplog.at_level("WARNING", logger="legacy_assistant.cli.serve"), pytest.raises(ConfigError):
        serve_cli.run(parse("--model", MISSING_MODEL))
    warned = [r.getMessage() for r in caplog.records if "token that short" in r.getMessage()]
    assert warned == [
        "LEGACY_ASSISTANT_ADMIN_TOKEN is 9 characters long: a token that short may be guessed; "
        "use a random one, e.g. $(openssl rand -hex 16)"
    ]
    assert "change-me" not in caplog.text  # the token itself is never logged


def test_a_copy_without_the_shipped_models_says_so_and_what_to_give(monkeypatch, tmp_path):
    """An installed copy of the package whose shipped models are missing said only "not a model
    directory (no assistant.json)" about a path inside site-packages."""
    from legacy_assistant import defaults
    from legacy_assistant.cli import model_kind
    from legacy_assistant.cli.serve import check_model, check_responder

    model, responder = tmp_path / "exported" / "default", tmp_path / "exported" / "responder"
    monkeypatch.setattr(defaults, "DEFAULT_MODEL_DIR", model)
    monkeypatch.setattr(defaults, "DEFAULT_RESPONDER_DIR", responder)
    with pytest.raises(ConfigError, match=r"shipped models are not installed .*: give a directory with --model DIR$"):
        check_model(str(model), "compat")
    with pytest.raises(ConfigError, match=r"give a directory with --responder DIR \(or --no-responder\)$"):
        check_responder(str(responder), "compat")
    with pytest.raises(Exception, match="shipped models are not installed"):
        model_kind.is_responder(model)  # chat, info, golden
    with pytest.raises(ConfigError, match=r"^model directory not found: \S+$"):
        check_model(str(tmp_path / "elsewhere"), "compat")  # a path of the user's own: no hint
    assert defaults.not_installed_hint(DEFAULT_MODEL) == ""  # it exists


@pytest.mark.parametrize("kind", ["model", "responder"])
def test_serve_checks_a_model_replaced_while_it_is_checked_again_rather_than_call_it_damaged(
    tmp_path, monkeypatch, kind
):
    """`serve` started while `train --out DIR --force` swaps DIR: the check before the workers
    start read the old manifest and then the new files, and refused the new, whole model as
    "altered or truncated", where every load checks such a directory again."""
    import importlib

    from legacy_assistant.artifacts.directory import DIGEST_FIELD, manifest_digest
    from legacy_assistant.cli.serve import check_model, check_responder
    from legacy_assistant.errors import ArtifactError

    module = importlib.import_module(f"legacy_assistant.{'classifier' if kind == 'model' else 'responder'}.artifact")
    source, verify_name = (DEFAULT_MODEL, "verify_artifact") if kind == "model" else (DEFAULT_RESPONDER,
                                                                                       "verify_responder")
    folder, newer = tmp_path / "served", tmp_path / "newer"
    shutil.copytree(source, folder)
    shutil.copytree(source, newer)
    manifest = json.loads((newer / module.MANIFEST).read_text(encoding="utf-8"))
    manifest["name"] = "trained meanwhile"
    manifest[DIGEST_FIELD] = manifest_digest(manifest)
    (newer / module.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    verify = getattr(module, verify_name)
    calls = []

    def verify_while_replaced(path, **options):
        calls.append(path)
        if len(calls) == 1:  # the manifest read, then the swap, then the files of the new model
            os.rename(folder, tmp_path / "retired")
            os.rename(newer, folder)
            raise ArtifactError(f"{folder}/saved_model/saved_model.pb: altered or truncated")
        return verify(path, **options)

    monkeypatch.setattr(module, verify_name, verify_while_replaced)
    check = check_model if kind == "model" else check_responder
    check(str(folder), "compat")
    assert len(calls) == 2


@pytest.mark.parametrize("check", ["serve's model", "serve's responder", "chat's, info's, golden's"])
def test_a_model_path_that_cannot_be_looked_at_is_refused_as_unreadable(tmp_path, check):
    """A path the system will not look at (a name over the file system's limit; a folder on the
    way this user may not search) met serve's and info's first look at it, before the model
    directory's checks: ``error: [Errno 36] File name too long: '...'``, the system's own words,
    where the directory's checks say ``PATH: cannot be read (REASON)``."""
    from legacy_assistant.cli import model_kind
    from legacy_assistant.cli.serve import check_model, check_responder
    from legacy_assistant.errors import ArtifactError

    path = str(tmp_path / ("m" * 300))
    look = {"serve's model": lambda: check_model(path, "compat"),
            "serve's responder": lambda: check_responder(path, "compat"),
            "chat's, info's, golden's": lambda: model_kind.is_responder(path)}[check]
    with pytest.raises(ArtifactError, match=r"^\S+: cannot be read \(File name too long\)$") as caught:
        look()
    assert str(caught.value).startswith(path)


def test_the_checkout_s_spelling_of_a_shipped_model_run_from_another_folder_names_where_it_is(monkeypatch, tmp_path,
                                                                                              capsys):
    """serve makes --model exported/default absolute (from the working folder) before checking it,
    so the hint that chat gives for that spelling (where this copy's shipped model is) was never
    given: only "model directory not found: /elsewhere/exported/default"."""
    from legacy_assistant.cli import main

    for name in list(os.environ):
        if name.startswith("LEGACY_ASSISTANT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--model", "exported/default"]) == 1
    err = capsys.readouterr().err
    assert f"model directory not found: {tmp_path}/exported/default (the shipped model of this copy of " \
        f"legacy-assistant is {DEFAULT_MODEL})" in err, err
    monkeypatch.setenv("LEGACY_ASSISTANT_RESPONDER", "exported/responder")
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert f"responder directory not found: {tmp_path}/exported/responder (the shipped responder of this copy " \
        f"of legacy-assistant is {DEFAULT_RESPONDER}) (set by environment variable LEGACY_ASSISTANT_RESPONDER)" in err
    monkeypatch.chdir(tmp_path / "..")
    assert main(["serve", "--model", str(tmp_path / "exported" / "default")]) == 1  # another folder's: no hint
    assert capsys.readouterr().err.strip().endswith(f"model directory not found: {tmp_path}/exported/default")


def test_the_shipped_models_are_found_where_a_wheel_installs_them(monkeypatch, tmp_path):
    from legacy_assistant import defaults

    installed = tmp_path / "share" / "legacy-assistant" / "exported"
    (installed / "default").mkdir(parents=True)
    monkeypatch.setattr(defaults, "REPOSITORY_ROOT", tmp_path / "site-packages")
    monkeypatch.setattr(defaults, "_installed_exports", lambda: [tmp_path / "nowhere", installed])
    assert defaults.shipped("default") == installed / "default"
    assert defaults.shipped("responder") == tmp_path / "site-packages" / "exported" / "responder"  # neither


def _fake_install(site: Path, share: Path, record_prefix: str) -> None:
    """A wheel's install of this package in ``site`` whose data files lie in ``share``, its
    RECORD naming them as ``record_prefix`` + ``share/legacy-assistant/...`` (as pip writes it)."""
    (share / "legacy-assistant" / "exported" / "default").mkdir(parents=True)
    info = site / "legacy_assistant-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: legacy-assistant\nVersion: 0.1.0\n")
    (info / "RECORD").write_text(
        "legacy_assistant/__init__.py,,\n"
        f"{record_prefix}share/legacy-assistant/exported/default/assistant.json,,\n"
        "legacy_assistant-0.1.0.dist-info/RECORD,,\n"
    )


def test_the_shipped_models_are_found_after_pip_install_prefix(monkeypatch, tmp_path):
    """``pip install --prefix P`` run from P's site-packages (PYTHONPATH): the data files are in
    P/share, not under the interpreter's prefix; only the install's RECORD knows where."""
    from legacy_assistant import defaults

    site = tmp_path / "prefix" / "lib" / "python3.11" / "site-packages"
    _fake_install(site, tmp_path / "prefix" / "share", "../../../")
    monkeypatch.setattr(defaults, "REPOSITORY_ROOT", site)
    assert defaults.shipped("default") == tmp_path / "prefix" / "share" / "legacy-assistant" / "exported" / "default"


def test_the_shipped_models_are_found_after_pip_install_target(monkeypatch, tmp_path):
    """``pip install --target DIR`` moves the data files to DIR/share, beside the package,
    leaving RECORD's ``../../share/...`` paths pointing elsewhere."""
    from legacy_assistant import defaults

    target = tmp_path / "target"
    _fake_install(target, target / "share", "../../")
    monkeypatch.setattr(defaults, "REPOSITORY_ROOT", target)
    assert defaults.shipped("default") == target / "share" / "legacy-assistant" / "exported" / "default"


@pytest.mark.parametrize(
    "record",
    [b"legacy_assistant/__init__.py,,\n\xff\xfe,,\n", b"legacy_assistant/__init__.py,a,b,c,d\n"],
    ids=["not-utf8", "five-fields"],
)
def test_a_damaged_install_record_does_not_stop_every_command(monkeypatch, tmp_path, record):
    """RECORD is read lazily (``dist.files``), after the distributions are listed: a damaged one
    raised out of the import of legacy_assistant.defaults, so even ``--help`` failed."""
    from legacy_assistant import defaults

    site = tmp_path / "site-packages"
    _fake_install(site, site / "share", "")
    (site / "legacy_assistant-0.1.0.dist-info" / "RECORD").write_bytes(record)
    monkeypatch.setattr(defaults, "REPOSITORY_ROOT", site)
    assert defaults._recorded_exports() == []
    assert defaults.shipped("default") == site / "share" / "legacy-assistant" / "exported" / "default"  # beside


def test_a_checkout_does_not_import_importlib_metadata_for_the_shipped_models():
    """Only an installed copy reads its install record; the import is not paid by every command."""
    code = "import sys, legacy_assistant.defaults; print('importlib.metadata' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"


def test_the_checkouts_name_of_a_shipped_model_says_where_this_copy_has_it(monkeypatch, tmp_path):
    """``--help`` and the README write the shipped models as exported/default and
    exported/responder; an installed copy has them under <prefix>/share, and said only
    "model directory not found: exported/default"."""
    from legacy_assistant import defaults
    from legacy_assistant.cli import model_kind
    from legacy_assistant.cli.serve import check_model, check_responder

    installed = tmp_path / "share" / "legacy-assistant" / "exported"
    for name in ("default", "responder"):
        (installed / name).mkdir(parents=True)
    monkeypatch.setattr(defaults, "DEFAULT_MODEL_DIR", installed / "default")
    monkeypatch.setattr(defaults, "DEFAULT_RESPONDER_DIR", installed / "responder")
    monkeypatch.chdir(tmp_path / "share")  # a folder without exported/ of its own
    model = re.escape(str(installed / "default"))
    with pytest.raises(ConfigError, match=rf"^model directory not found: exported/default \(the shipped model of "
                                          rf"this copy of legacy-assistant is {model}\)$"):
        check_model("exported/default", "compat")
    with pytest.raises(ConfigError, match=rf"shipped responder of .* is {re.escape(str(installed / 'responder'))}"):
        check_responder("exported/responder", "compat")
    with pytest.raises(AssistantError, match=rf"not found: exported/default .* is {model}\)$"):
        model_kind.is_responder(Path("exported/default"))  # chat, info, golden, migrate
    with pytest.raises(ConfigError, match=r"^model directory not found: exported/mybot$"):
        check_model("exported/mybot", "compat")  # not a shipped name: no hint
    elsewhere = tmp_path / "data" / "exported" / "default"  # a folder of the user's that is missing
    with pytest.raises(ConfigError, match=rf"^model directory not found: {re.escape(str(elsewhere))}$"):
        check_model(str(elsewhere), "compat")


def test_server_module_does_not_import_tensorflow():
    code = ("import sys, legacy_assistant.serving.server, legacy_assistant.serving.settings, "
            "legacy_assistant.cli.serve; "
            "print(any(m.split('.')[0] == 'tensorflow' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_master_refuses_to_start_with_tensorflow_loaded():
    code = ("import compat.runtime\n"
            "from legacy_assistant.serving.server import GunicornServer, ServerOptions\n"
            "try:\n    GunicornServer(ServerOptions(port=1)).run()\n"
            "except RuntimeError as e:\n    print('refused:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused: TensorFlow is loaded in the gunicorn master")


def serve(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``legacy-assistant serve ARGS`` as a user runs it (default log level), in a fresh process."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LEGACY_ASSISTANT_")}
    return subprocess.run([sys.executable, "-m", "legacy_assistant", "serve", "--host", "127.0.0.1", *args],
                          cwd=ROOT, env={**environ, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def one_error_line(result: subprocess.CompletedProcess, status: int, *words: str) -> str:
    assert result.returncode == status, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert "error: " in lines[0] and all(word in lines[0] for word in words), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def damaged_model(tmp_path_factory):
    target = tmp_path_factory.mktemp("serve-cli") / "damaged"
    shutil.copytree(DEFAULT_MODEL, target)
    variables = next((target / "saved_model" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes()[:64])
    return target


def test_what_the_master_can_check_is_one_line_before_any_worker_starts(damaged_model, free_port):
    port = str(free_port())
    line = one_error_line(serve("--port", port, "--workers", "2", "--model", str(damaged_model)), 1,
                          "variables.data", "sha256")
    assert line.startswith("error: ")
    one_error_line(serve("--port", port, "--runtime", "tf2", "--model", str(DEFAULT_MODEL)), 1,
                   "'compat' runtime", "--runtime compat")
    damaged_responder = damaged_model.parent / "damaged-responder"
    if not damaged_responder.exists():
        shutil.copytree(DEFAULT_RESPONDER, damaged_responder)
        (damaged_responder / "responder.json").write_text("{", encoding="utf-8")
    one_error_line(serve("--port", port, "--responder", str(damaged_responder)), 1, "damaged-responder")
    one_error_line(serve("--port", port, "--responder", str(DEFAULT_MODEL)), 1, "an intent model (assistant.json), "
                   "not a responder (no responder.json); load it as an intent model (--model)")
    # the shipped responder is a compat model: a tf2 server needs a migrated one, or none
    one_error_line(serve("--port", port, "--runtime", "tf2", "--model", str(DEFAULT_MODEL), "--no-responder"), 1,
                   "'compat' runtime", "--runtime compat")
    one_error_line(serve("--port", port, env={"LEGACY_ASSISTANT_RUNTIME": "tf3"}), 1, "LEGACY_ASSISTANT_RUNTIME")
    one_error_line(serve("--port", port, env={"LEGACY_ASSISTANT_WORKERS": "many"}), 1, "LEGACY_ASSISTANT_WORKERS")
    # each worker would keep its own conversations: a sender's context would come and go
    one_error_line(serve("--port", port, "--store", "memory", "--workers", "2", "--no-responder"), 1,
                   "--store memory", "--workers 1")
    # a store every worker would fail to open is said once, not by each worker as gunicorn gives up
    one_error_line(serve("--port", port, "--store", "bogus://x", "--no-responder"), 1, "unknown conversation store")
    folder = damaged_model.parent / "a-folder"
    folder.mkdir(exist_ok=True)
    one_error_line(serve("--port", port, "--store", f"sqlite://{folder}", "--no-responder"), 1,
                   "is a folder, not a database file")
    a_file = damaged_model.parent / "a-file"
    a_file.write_text("")
    one_error_line(serve("--port", port, "--store", f"sqlite://{a_file}/x.db", "--no-responder"), 1,
                   "is a file, not a folder")
    a_file.write_text('{"intents": []}')  # not a database: each worker failed to open it, then gunicorn gave up
    one_error_line(serve("--port", port, "--store", f"sqlite://{a_file}", "--no-responder"), 1,
                   "is not a SQLite database")
    # the master made (and cleared) it in gunicorn's start hook: a traceback there
    one_error_line(serve("--port", port, "--no-responder", env={"PROMETHEUS_MULTIPROC_DIR": str(a_file)}), 1,
                   "PROMETHEUS_MULTIPROC_DIR", "is not a folder")


def test_the_development_server_refuses_an_address_in_use_before_it_loads_anything():
    """As the gunicorn server does: before, --dev loaded both models, printed its banner claiming
    the address, and only then ended with werkzeug's two lines."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--dev", "--port", str(port), "--store", "memory")
    one_error_line(result, 1, f"cannot listen on 127.0.0.1:{port}: Address already in use",
                   "choose another --host or --port")
    assert result.stdout == ""  # no banner


def test_an_address_in_use_names_the_environment_variable_that_chose_it():
    """A port nobody typed (a unit file's or a container's environment) is named as it was set:
    before, the line said "--port" to a person who had set LEGACY_ASSISTANT_PORT."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for extra in (("--workers", "1"), ("--dev",)):
            result = serve(*extra, "--store", "memory", "--no-responder", env={"LEGACY_ASSISTANT_PORT": port})
            one_error_line(result, 1, f"cannot listen on 127.0.0.1:{port}: Address already in use",
                           "(choose another --host or LEGACY_ASSISTANT_PORT)")


def _signal_mask(pid: int, field: str, signum: int) -> bool:
    """Whether ``signum`` is in the process's ``SigIgn`` (ignored) or ``SigCgt`` (caught) set."""
    mask = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
    return bool(int(mask.split()[1], 16) & (1 << (signum - 1)))


def test_a_reload_asked_for_while_serve_starts_does_not_end_it(tmp_path, free_port):
    """SIGHUP's default action ended serve while it imported and checked the models, and the
    server before gunicorn's handler was in: status 129, without a word, for a reload sent as a
    deploy (re)started the service. Reloads sent from then on until it serves are no harm."""
    with ServerProcess(["--workers", "1", "--no-responder", "--store", "memory"], port=free_port(),
                       log_path=tmp_path / "serve.log", wait=False) as server:
        # from the command's first line (it catches SIGTERM there), not the interpreter's own start
        while server.process.poll() is None and not _signal_mask(server.pid, "SigCgt:", signal.SIGTERM):
            time.sleep(0.005)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline and not _signal_mask(server.pid, "SigIgn:", signal.SIGHUP):
            time.sleep(0.005)
        deadline = time.monotonic() + 90
        while server.process.poll() is None and time.monotonic() < deadline:
            server.signal(signal.SIGHUP)
            try:
                if server.request("GET", "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert server.process.poll() is None, server.log()
        server.wait_ready()


def test_a_bad_flag_is_one_usage_line():
    one_error_line(serve("--threshold", "-1"), 2, "argument --threshold", "from 0 to 1", "'-1'")
    one_error_line(serve("--port", "99999"), 2, "argument --port", "'99999'")
    one_error_line(serve("--responder", str(DEFAULT_MODEL), "--no-responder"), 2, "not allowed with argument --responder")


def test_a_worker_that_cannot_start_says_why_in_one_line(free_port):
    """What only a worker finds (here: a Redis store nobody listens for) is a line from each worker, no traceback."""
    closed = free_port()
    result = serve("--port", str(free_port()), "--workers", "1", "--store", f"redis://127.0.0.1:{closed}/0",
                   "--no-responder")
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    reasons = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert len(reasons) == 1 and "cannot reach the Redis conversation store" in reasons[0], result.stderr


def test_the_store_url_and_cors_list_stay_off_the_server_command_line(free_port):
    """Any user of the machine can read a process's command line: a Redis password given in the
    store URL (by flag or environment) and the CORS list were there for the server's whole life."""
    from pathlib import Path

    closed = free_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LEGACY_ASSISTANT_")}
    environ["LEGACY_ASSISTANT_CORS_ORIGINS"] = "https://private-shop.example"
    server = subprocess.Popen(
        [sys.executable, "-m", "legacy_assistant", "serve", "--host", "127.0.0.1", "--port", str(free_port()),
         "--workers", "1", "--no-responder", "--store", f"redis://:hunter2pass@127.0.0.1:{closed}/0"],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    cmdline = ""
    try:
        deadline = time.monotonic() + 60
        while "legacy_assistant.serving.server" not in cmdline and time.monotonic() < deadline:
            cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
            time.sleep(0.02)
        _, err = server.communicate(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert "legacy_assistant.serving.server" in cmdline  # the re-executed server was seen
    assert "hunter2pass" not in cmdline and "private-shop" not in cmdline
    # ... and the worker still got the URL: it tried that store (nobody listens there)
    assert server.returncode == 3 and "cannot reach the Redis conversation store" in err
    assert "hunter2pass" not in err


def test_server_options_keep_tokens_off_the_command_line_and_read_them_back():
    from legacy_assistant.serving.server import ServerOptions

    options = ServerOptions(app_config={"API_TOKEN": "api-s3cret", "ADMIN_TOKEN": "adm-s3cret", "THRESHOLD": 0.3})
    text = options.to_json()
    assert "s3cret" not in text and '"THRESHOLD": 0.3' in text
    environ = {"LEGACY_ASSISTANT_API_TOKEN": "api-s3cret", "LEGACY_ASSISTANT_ADMIN_TOKEN": " adm-s3cret\n"}
    back = ServerOptions.from_json(text, environ)
    assert back.app_config == {"THRESHOLD": 0.3, "API_TOKEN": "api-s3cret", "ADMIN_TOKEN": "adm-s3cret"}
    assert ServerOptions.from_json(text, {}).app_config == {"THRESHOLD": 0.3, "API_TOKEN": None, "ADMIN_TOKEN": None}
    # the store URL and the CORS list go in the environment the server inherits, not in the text
    from legacy_assistant.serving.server import PRIVATE_ENV

    private = {"STORE_URL": "redis://:pw-s3cret@h:1/0", "CORS_ORIGINS": ("https://s3cret.example",)}
    options = ServerOptions(app_config={**private, "THRESHOLD": 0.3})
    text = options.to_json()
    assert "s3cret" not in text
    back = ServerOptions.from_json(text, {PRIVATE_ENV: options.private_json()})
    assert back.app_config["STORE_URL"] == private["STORE_URL"]
    assert list(back.app_config["CORS_ORIGINS"]) == list(private["CORS_ORIGINS"])


def test_a_text_cap_the_body_limit_cannot_carry_is_warned_at_start(monkeypatch, caplog):
    from legacy_assistant.cli import serve as serve_cli
    from legacy_assistant.serving.settings import resolve, text_cap_warning

    assert text_cap_warning(resolve({})) is None  # the defaults: 1,000 characters in 64 KiB
    # an emoji is 12 bytes as requests' json= writes it (escaped): 6,000 of them got 413 under
    # a cap of 10,000 characters, which the warning had counted at 4 bytes each
    assert len(json.dumps({"text": "\U0001F600" * 6000})) > 65536 and len(json.dumps("\U0001F600")) == 2 + 12
    warning = text_cap_warning(resolve({"MAX_TEXT_LENGTH": 10000}))
    assert "--max-text-length 10000" in warning and "--max-body-bytes 65536" in warning
    assert "raise --max-body-bytes to 120512 or lower --max-text-length to 5418" in warning
    assert text_cap_warning(resolve({"MAX_TEXT_LENGTH": 5418})) is None
    assert text_cap_warning(resolve({"MAX_TEXT_LENGTH": 5419})) is not None
    # serve says so before it starts anything (the model check here fails just after)
    with caplog.at_level("WARNING", logger="legacy_assistant.cli.serve"), pytest.raises(ConfigError):
        serve_cli.run(parse("--max-text-length", "20000", "--model", MISSING_MODEL))
    assert [r.getMessage() for r in caplog.records if "--max-text-length 20000" in r.getMessage()]


def test_the_address_serve_announces():
    from legacy_assistant.cli.serve import _address

    assert _address("127.0.0.1", 5000) == "http://127.0.0.1:5000/"
    assert _address("::1", 5000) == "http://[::1]:5000/"
    assert "http://127.0.0.1:0/" not in _address("127.0.0.1", 0)  # it used to name port 0
    assert "a port the system chooses" in _address("127.0.0.1", 0)


def test_the_wheel_carries_every_file_of_the_shipped_models():
    """pyproject.toml's data-files patterns against the files in exported/: a new kind of file
    in a model (an assets/ folder) would otherwise leave the installed copy incomplete, found
    only when serve checks its manifest."""
    import fnmatch

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own dependency, tomli, is the same parser
        import tomli as tomllib

    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    for model in (DEFAULT_MODEL, DEFAULT_RESPONDER):
        files = [path for path in model.rglob("*") if path.is_file()]
        assert len(files) >= 5, model
        for path in files:
            relative = path.relative_to(ROOT).as_posix()
            target = f"share/legacy-assistant/{path.parent.relative_to(ROOT).as_posix()}"
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in data_files.get(target, [])), relative


def test_the_source_distribution_carries_every_page_the_readme_links():
    """MANIFEST.in against the README's and the docs' relative links: the sdist held
    docs/MIGRATION.md alone, while its README (also the package's long description) links
    every page of docs/."""
    from tests.test_distribution_files import _sdist_files
    from tests.test_docs_links import LINK, _outside_code

    shipped = _sdist_files(ROOT) | {"README.md"}  # setuptools adds the readme
    assert "docs/MIGRATION.md" in shipped and "LICENSE" in shipped
    for page in sorted(name for name in shipped if name.endswith(".md")):
        text = _outside_code((ROOT / page).read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            path = target.split("#", 1)[0]
            if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path):
                continue
            linked = os.path.normpath(os.path.join(os.path.dirname(page), path)).replace(os.sep, "/")
            assert linked in shipped, f"{page} links {target}, which the source distribution leaves out"


def test_an_upgrade_in_place_works_with_a_socket_per_worker(tmp_path, free_port):
    """gunicorn's USR2 re-executes the master, naming the sockets it holds in GUNICORN_FD. With
    a socket per worker (reuse-port, the default on Linux) it holds none: the new master got
    GUNICORN_FD="", died on int(''), and the upgrade failed with a traceback."""
    import signal
    import urllib.request

    port = free_port()
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "legacy_assistant", "serve", "--port", str(port), "--workers", "1",
               "--store", "memory", "--no-responder"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def wait_for(condition, what):
            deadline = time.monotonic() + 120
            while not condition():
                assert server.poll() is None and time.monotonic() < deadline, (what, log_path.read_text())
                time.sleep(0.2)

        def healthy():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                    return answer.status == 200
            except OSError:
                return False

        wait_for(healthy, "the first master's worker")
        os.kill(server.pid, signal.SIGUSR2)

        def upgraded():
            text = log_path.read_text()
            if "Handling signal: usr2" not in text:
                return False  # not yet handled: what follows would be the first master's lines
            after = text.split("Handling signal: usr2")[-1]
            assert "Traceback" not in after, text
            return "Booting worker" in after and "serving model" in after

        wait_for(upgraded, "the new master's worker")
        assert healthy()
        server.send_signal(signal.SIGTERM)  # the old master goes; the new one serves on
        assert server.wait(60) == 0
        assert healthy(), log_path.read_text()
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # both masters and their workers
        server.wait(30)


@pytest.mark.parametrize("runtime", ["compat", "tf2"])
def test_a_responder_of_the_other_runtime_gets_advice_that_can_be_followed(tmp_path, runtime):
    """It said "choose --runtime X", which the intent model (checked first, for this runtime)
    would then refuse, and asked for "a responder migrated for compat", which migrate cannot make."""
    from legacy_assistant.artifacts.directory import manifest_digest
    from legacy_assistant.cli.serve import check_responder

    other = "tf2" if runtime == "compat" else "compat"
    responder = tmp_path / "responder"
    shutil.copytree(DEFAULT_RESPONDER, responder)
    manifest = json.loads((responder / "responder.json").read_text(encoding="utf-8"))
    manifest["runtime"] = other
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (responder / "responder.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        check_responder(str(responder), runtime)
    message = str(caught.value)
    assert f"a responder for the '{other}' runtime cannot be served with runtime '{runtime}', the intent model's" in message
    assert "choose --runtime" not in message and "migrated for 'compat'" not in message
    if runtime == "tf2":
        assert f"migrate it (legacy-assistant migrate {responder} --out DIR)" in message
    else:
        assert "give a 'compat' responder with --responder DIR (the one it was migrated from)" in message


def test_a_runtime_from_the_environment_that_the_model_is_not_for_names_the_variable(tmp_path):
    """LEGACY_ASSISTANT_RUNTIME=tf2 left in a shell profile: the refusal said "cannot be served
    with runtime 'tf2'", and nothing on the command line said tf2."""
    line = one_error_line(serve("--port", "0", "--no-responder", env={"LEGACY_ASSISTANT_RUNTIME": "tf2"}), 1)
    assert "a model for the 'compat' runtime cannot be served with runtime 'tf2', set by environment variable " \
        "LEGACY_ASSISTANT_RUNTIME (choose --runtime compat)" in line, line
    line = one_error_line(serve("--port", "0", "--runtime", "tf2", "--no-responder"), 1)
    assert "cannot be served with runtime 'tf2' (choose --runtime compat)" in line, line  # the flag: no note


def test_a_model_loaded_with_the_environment_s_runtime_names_the_variable_when_refused(monkeypatch):
    """chat, golden and playground load with LEGACY_ASSISTANT_RUNTIME when --runtime is left out;
    a model of the other runtime was refused without a word of where 'tf2' came from."""
    from compat import selection
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.responder.responder import Responder

    monkeypatch.setattr(selection, "_claimed", None)  # a process that has loaded no model yet
    monkeypatch.setattr(selection, "_selected", None)
    monkeypatch.setenv("LEGACY_ASSISTANT_RUNTIME", "tf2")
    note = "with runtime 'tf2', set by environment variable LEGACY_ASSISTANT_RUNTIME (load it with runtime='compat'"
    with pytest.raises(AssistantError, match=re.escape(note)):
        Predictor.load(DEFAULT_MODEL)
    with pytest.raises(AssistantError, match=re.escape(note)):
        Responder.load(DEFAULT_RESPONDER)
    with pytest.raises(AssistantError, match=r"with runtime 'tf2' \(load it"):  # asked for by name: no note
        Predictor.load(DEFAULT_MODEL, runtime="tf2")
    selection.select("tf2")  # --runtime tf2
    with pytest.raises(AssistantError, match=r"with runtime 'tf2' \(load it"):
        Predictor.load(DEFAULT_MODEL)


@pytest.mark.parametrize("threads", [1, 4, 999, 1000, 1024])
def test_every_allowed_thread_count_leaves_connections_to_keep_alive(threads):
    """At --threads 1000 and up (1,024 is allowed), gunicorn's 1,000 connections a worker left
    none to keep alive: every answer said Connection: close, and gunicorn warned "No keepalived
    connections can be handled", naming worker_connections, which serve does not set."""
    from gunicorn.workers.gthread import ThreadWorker

    from legacy_assistant.serving.server import GunicornServer, ServerOptions

    cfg = GunicornServer(ServerOptions(port=0, workers=1, threads=threads, reuse_port=False)).cfg
    assert cfg.worker_connections - cfg.threads >= min(threads, 500)
    assert cfg.worker_connections == max(1000, 2 * threads)  # gunicorn's 1,000 up to 500 threads
    warnings = []

    class Log:
        def warning(self, *args):
            warnings.append(args)

    ThreadWorker.check_config(cfg, Log())
    assert warnings == []


def test_serve_starts_with_its_standard_output_closed():
    """``serve >&-`` (a launcher that closes what it does not read) stopped with an
    AttributeError traceback, no sys.stdout to flush. A closed descriptor is /dev/null now."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LEGACY_ASSISTANT_")}
    environ["LEGACY_ASSISTANT_STORE"] = "memory"
    command = (f"exec {sys.executable} -m legacy_assistant serve --host 127.0.0.1 --port 0 --workers 1 "
               "--no-responder --no-warm-up 2>&1 >&-")
    process = subprocess.Popen(["bash", "-c", command], cwd=ROOT, env=environ, stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        for line in process.stdout:  # the log, on stderr: until a worker boots, or the end
            lines.append(line)
            if "Booting worker" in line:
                break
        assert process.poll() is None, "".join(lines)
        assert not any("Traceback" in line for line in lines), "".join(lines)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def test_a_command_with_its_standard_error_closed_keeps_its_errors_out_of_its_output():
    """With descriptor 2 closed Python has no sys.stderr, and print(..., file=sys.stderr) writes
    to standard output: ``info DIR 2>&- > report`` put its 'error: ...' line into the report.
    Standard error is /dev/null then, the Python stream on it as well."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LEGACY_ASSISTANT_")}
    command = f"exec {sys.executable} -m legacy_assistant info /no/such/model/here 2>&-"
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result
    assert result.stdout == "", result.stdout
