"""``legacy-assistant serve``: the HTTP API and chat page.

By default gunicorn runs ``--workers`` processes of ``--threads`` threads each; every worker
loads the model itself after the fork (see :mod:`legacy_assistant.serving.server`). ``--dev`` runs
Flask's development server in this one process instead.

This module must not import TensorFlow (nor anything that does): under gunicorn it runs in
the master process. The options are those of :mod:`legacy_assistant.serving.settings`.

Whatever can be checked before a worker starts is checked here, once, with one error line:
the settings, the model and responder directories (every checksum, without TensorFlow) and the
runtime their manifests name against ``--runtime``. A bad flag is a one-line usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import os
import re
import shlex
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.common.hosts import ANY_HOST, default_allowed_hosts
from legacy_assistant.common.limits import address_space_note, usable_cpus
from legacy_assistant.common.origins import bracketed
from legacy_assistant.common.terminal import say
from legacy_assistant.defaults import instance_folder, not_installed_hint
from legacy_assistant.errors import AssistantError, ConfigError
from legacy_assistant.serving import log_format, settings, unix_socket
from legacy_assistant.stores.base import check_store_url

if TYPE_CHECKING:
    from legacy_assistant.serving.server import ServerOptions

log = logging.getLogger(__name__)

# as serve runs the model (benchmarks measure with these)
DEFAULT_INTRA_OP = settings.DEFAULT_INTRA_OP_THREADS
DEFAULT_INTER_OP = settings.DEFAULT_INTER_OP_THREADS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the HTTP API and the chat page",
        description="Serve the HTTP API and the chat page. Each setting comes from its flag, else from its "
        "LEGACY_ASSISTANT_* environment variable, else from its default.",
        epilog=settings.environment_only(),
    )
    settings.add_arguments(parser)
    parser.add_argument("--dev", action="store_true", help="Flask's development server, one process")
    add_runtime_option(parser)
    parser.set_defaults(run=run)
    _one_line_usage_errors(parser)


def _one_line_usage_errors(parser: argparse.ArgumentParser) -> None:
    """A bad flag is one line (``legacy-assistant serve: error: argument --port: ...``), exit
    status 2, instead of the usage block and the error: the line says which flag and why."""

    def error(message: str) -> NoReturn:
        parser.exit(2, f"{parser.prog}: error: {message}\n")

    parser.error = error  # type: ignore[method-assign]


def resolved(args: argparse.Namespace) -> dict[str, Any]:
    """Every serving setting's value: the flag's, else the environment's, else the default; a
    variable with the settings' prefix that is no setting is refused first."""
    settings.check_environment()
    return settings.resolve(settings.flags_of(args))


def serving_values(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`resolved`, checked across settings, with the defaults that depend on another
    setting filled in: the host names answered to, from the address listened on."""
    values = resolved(args)
    settings.check_tokens(values["API_TOKEN"], values["ADMIN_TOKEN"])
    if values["ALLOWED_HOSTS"] is None:
        # "*" where any host is answered (an address beyond loopback, a Unix socket): the app's
        # config refuses "", which names no host, as the variable does
        values["ALLOWED_HOSTS"] = ",".join(sorted(default_allowed_hosts(values["HOST"]))) or ANY_HOST
    path = unix_socket.socket_path(values["HOST"])
    if path:  # absolute, as the server and its log name it
        values["HOST"] = unix_socket.PREFIX + path
    return values


def app_config(args: argparse.Namespace) -> dict[str, Any]:
    """What ``create_app`` gets from the command line and the environment."""
    return settings.app_config(serving_values(args))


def server_options(args: argparse.Namespace) -> ServerOptions:
    """What the gunicorn master gets from the command line and the environment."""
    return _server_options(serving_values(args))


def _server_options(values: dict[str, Any]) -> ServerOptions:
    from legacy_assistant.serving.server import ServerOptions

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    return ServerOptions.from_settings(values, log_level=level)


def _there(path: str) -> bool:
    """Whether something is at ``path``; a path that cannot be looked at (a folder on the way
    this user may not search, a name too long) is refused as the model checks refuse one."""
    from legacy_assistant.artifacts.directory import refused_if_unreadable

    with refused_if_unreadable(path):
        return Path(path).exists()


def check_model(model: str, runtime: str, *, name_old_words: bool = True) -> None:
    """Refuse, with one :class:`ConfigError` or :class:`ArtifactError` line, a model directory
    that is not one, is incomplete or altered (its checksums), or is for another runtime.
    Imports no TensorFlow: under gunicorn this runs before the master starts, so that a bad
    model is one line instead of a traceback from every worker. ``name_old_words``: as
    :func:`~legacy_assistant.classifier.artifact.verify_artifact`'s (False where this process
    loads the model next, which names them)."""
    if not _there(model):
        raise ConfigError(f"model directory not found: {model}{not_installed_hint(model)}")
    from legacy_assistant.artifacts.directory import load_consistently
    from legacy_assistant.classifier.artifact import MANIFEST, verify_artifact

    # names what is wrong: no manifest, a folder or a pipe in its place, a responder's directory;
    # a model replaced while it is checked (train --force) is checked again, not called damaged
    info = load_consistently(
        model, lambda: verify_artifact(model, name_old_words=name_old_words), manifest_name=MANIFEST
    )
    if info.runtime != runtime:
        raise ConfigError(
            f"{model}: a model for the {info.runtime!r} runtime cannot be served with runtime "
            f"{runtime!r}{_runtime_source()} (choose --runtime {info.runtime})"
        )


def check_responder(responder: str, runtime: str) -> None:
    """:func:`check_model` for a responder directory (``responder.json``, its checksums, its runtime)."""
    from legacy_assistant.artifacts.directory import load_consistently
    from legacy_assistant.responder.artifact import MANIFEST, verify_responder

    if not _there(responder):
        raise ConfigError(f"responder directory not found: {responder}{not_installed_hint(responder)}")
    # names what is wrong, as verify_artifact does; checked again if replaced meanwhile
    info = load_consistently(responder, lambda: verify_responder(responder), manifest_name=MANIFEST)
    written_for = info.manifest.get("runtime", "compat")
    if written_for != runtime:
        # the intent model, checked first, is for `runtime`; migrate makes 'tf2' copies of compat models only
        if runtime == "tf2":
            way_out = (
                f"migrate it (legacy-assistant migrate {shlex.quote(str(responder))} --out DIR) "
                "and give that copy with --responder DIR"
            )
        else:
            way_out = (
                f"give a {runtime!r} responder with --responder DIR (the one it was migrated from), or serve "
                "migrated copies of both with --runtime tf2"
            )
        raise ConfigError(
            f"{responder}: a responder for the {written_for!r} runtime cannot be served with runtime "
            f"{runtime!r}{_runtime_source()}, the intent model's: {way_out}, or serve without one: --no-responder"
        )


def _runtime_source() -> str:
    """Where the runtime of a mismatch came from, when that was the environment: a variable set
    long ago in a shell profile is otherwise hard to trace (see :func:`compat.selection.source_note`)."""
    from compat.selection import source_note

    return source_note()


@contextmanager
def _naming_environment(name: str, flags: dict[str, Any]) -> Iterator[None]:
    """Add to an error about setting ``name``'s value where it came from, when that was the
    environment: a value nobody typed on this command line is otherwise hard to trace."""
    try:
        yield
    except AssistantError as exc:
        source = settings.source_of(name, flags)
        if source is None or source.startswith("--"):
            raise
        raise ConfigError(f"{exc} (set by {source})") from None


def _runtime() -> str:
    """The runtime the model will be loaded with (``--runtime``, else the environment, else compat)."""
    from compat.selection import selected

    try:
        return selected()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    values = serving_values(args)  # every setting checked before anything starts
    if values["LOG_FORMAT"] != "text":  # this command's own lines too, in the server's format
        log_format.configure(values["LOG_FORMAT"], logging.getLogger().getEffectiveLevel())
    else:  # with the process id the workers' lines carry (the master's and --dev's had none)
        log_format.text_lines_with_process_id()
    for warning in [address_space_note(), settings.text_cap_warning(values), *settings.short_token_warnings(values)]:
        if warning:
            log.warning("%s", warning)
    _prefix_without_a_trailing_slash()
    model = values["MODEL"]
    apply_runtime(args)  # one TensorFlow runtime per process, chosen before any model loads
    runtime = _runtime()
    flags = settings.flags_of(args)
    if args.dev:
        check_dev_flags(flags)  # a usage mistake, told before the models are checked
    else:
        check_gunicorn_runs_here()  # as early: nothing after it would be of use
    with _naming_environment("MODEL", flags):
        check_model(model, runtime, name_old_words=not args.dev)  # --dev loads it in this process
    if values["RESPONDER"] is not None:
        with _naming_environment("RESPONDER", flags):
            check_responder(values["RESPONDER"], runtime)
    if args.runtime:
        # gunicorn workers are fresh interpreters: they learn the choice from the environment
        os.environ["LEGACY_ASSISTANT_RUNTIME"] = args.runtime
    with _naming_environment("STORE", flags):
        # here once, not in every worker as it fails to start
        check_store_url(values["STORE"], default_dir=instance_folder())
    check_unix_socket(values, flags, dev=args.dev)
    if args.dev:
        # before the model loads and the banner claims the address: werkzeug's refusal came after both
        check_address(values["HOST"], values["PORT"], flags)
        return _run_dev(values)
    from legacy_assistant.serving.metrics_folder import check_metrics_dir
    from legacy_assistant.serving.server import exec_server

    check_metrics_dir()
    options = _server_options(values)
    if values["STORE"] == "memory" and options.workers > 1:
        # each worker would keep its own conversations: a sender's turns would land in whichever
        # worker answered, and its context and transcript would come and go
        store = "--store memory"
        if (settings.source_of("STORE", flags) or "").startswith("environment"):
            store = "LEGACY_ASSISTANT_STORE=memory"
        raise ConfigError(
            f"{store} keeps conversations inside one process, and {options.workers} workers would "
            "each keep their own; use --workers 1, or a store the workers share (the default SQLite "
            "file, sqlite:///PATH or redis://HOST:PORT/DB)"
        )
    # here, before "serving ..." is logged: a port in use is one error line, not a claim then
    # a refusal (the server checks again as it starts, for a port taken in between)
    check_address(options.host, options.port, flags)
    log.info(
        "serving %s%s on %s with %d worker(s)%s x %d thread(s)",
        model,
        f" and responder {values['RESPONDER']}" if values["RESPONDER"] else " without a responder",
        _address(options.host, options.port),
        options.workers,
        "" if settings.source_of("WORKERS", flags) else f" (one per usable CPU: {usable_cpus().describe()})",
        options.threads,
    )
    exec_server(options)


def _prefix_without_a_trailing_slash() -> None:
    """Take gunicorn's ``SCRIPT_NAME`` without the slashes it ends in (``/`` as none: the root).
    gunicorn cuts the prefix, slash included, off each path: under ``/bot/``, ``/bot/health``
    reached the app as ``health`` and was refused as outside the prefix, ``/bot/`` redirected to
    itself, and only ``/bot//health`` was answered; under ``/`` every path was refused."""
    script_name = os.environ.get("SCRIPT_NAME", "")
    if not script_name.endswith("/"):
        return
    prefix = script_name.rstrip("/")
    if prefix:
        os.environ["SCRIPT_NAME"] = prefix
    else:
        del os.environ["SCRIPT_NAME"]
    log.warning("SCRIPT_NAME=%s is taken as %s: a prefix ends in no slash", script_name, prefix or "none (the root)")


def check_address(host: str, port: int, flags: dict[str, Any] | None = None) -> None:
    """Refuse a TCP address nothing could listen on now (a port in use, an address not of this
    machine) in one line; port 0 (any free port) and a Unix socket are left alone. The line
    names what to change as it was set (``flags``: the command line's): a flag, or the
    environment variable that gave the value."""
    if unix_socket.socket_path(host) is not None or port == 0:
        return
    from legacy_assistant.serving.ports import listen_problem

    problem = listen_problem(host, port)
    if problem is not None:
        raise ConfigError(f"{problem} (choose another {_set_by('HOST', flags)} or {_set_by('PORT', flags)})")


def _set_by(name: str, flags: dict[str, Any] | None) -> str:
    """Setting ``name``'s environment variable where that gave its value, else its flag."""
    source = settings.source_of(name, flags)
    if source is not None and not source.startswith("--"):
        return source.removeprefix("environment variable ")
    return settings.by_name()[name].option or name  # every listening setting has a flag


def check_unix_socket(values: dict[str, Any], flags: dict[str, Any], dev: bool) -> None:
    """With ``--host unix:PATH``: that the development server is not asked for (it listens on
    TCP only), that no port is given (it would not be used), and that the socket can be made."""
    path = unix_socket.socket_path(values["HOST"])
    if path is None:
        return
    host = settings.source_of("HOST", flags) or "--host"
    if dev:
        raise ConfigError(f"{host} unix:PATH: the development server (--dev) listens on TCP only; leave out --dev")
    port = settings.source_of("PORT", flags)
    if port:
        raise ConfigError(f"{port} is not used with a Unix socket ({host} unix:PATH): leave it out")
    problem = unix_socket.socket_problem(path)
    if problem:
        raise ConfigError(problem)


# gunicorn's own options, which the development server has no use for: it is one process, a
# thread per request, one socket, and it restarts no worker
_GUNICORN_ONLY = ("WORKERS", "THREADS", "TIMEOUT", "REUSE_PORT")


def check_dev_flags(flags: dict[str, Any]) -> None:
    """With ``--dev``: that no flag of gunicorn's alone is given, which would be ignored without a
    word. (The same settings from the environment are left alone: it holds for ``serve`` and
    ``serve --dev`` alike.)"""
    options = {name: str(settings.by_name()[name].option) for name in _GUNICORN_ONLY}
    given = [
        "--no-" + options[name][2:] if flags[name] is False else options[name]
        for name in _GUNICORN_ONLY
        if flags.get(name) is not None
    ]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: not used by the development server (--dev), which serves from one "
            "process with a thread per request; leave out --dev, or the option"
        )


def check_gunicorn_runs_here() -> None:
    """Refuse plain ``serve`` in one line where gunicorn cannot run: it forks its workers, and
    imports ``fcntl``, ``pwd`` and ``grp``, none of which Windows has. The import failed later
    with a traceback."""
    missing = [name for name in ("fcntl", "pwd", "grp") if importlib.util.find_spec(name) is None]
    if not hasattr(os, "fork"):
        missing.insert(0, "os.fork")
    if missing:
        raise ConfigError(
            f"serve runs gunicorn, which needs what this system lacks ({', '.join(missing)}; Windows has "
            "none of them): use 'serve --dev' (Flask's development server, one process), or run serve "
            "under WSL or in a Linux container"
        )


def _address(host: str, port: int) -> str:
    """Where the server listens, as a URL; port 0 is one the system chooses, named by the server's next lines."""
    path = unix_socket.socket_path(host)
    if path is not None:
        return f"unix:{path}"
    if port == 0:
        return f"{host}, on a port the system chooses (the server's 'Listening at' or 'Running on' line names it)"
    return f"http://{bracketed(host)}:{port}/"


# The names prometheus_client reads for its multiprocess mode (the lower-case one deprecated)
_METRICS_FOLDER_ENV = ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")


def _run_dev(values: dict[str, Any]) -> int:
    _single_process_metrics()  # before the metrics are imported: they read it then
    from legacy_assistant.serving import heap
    from legacy_assistant.web import create_app
    from legacy_assistant.web.admin import reload_in_background
    from legacy_assistant.web.app import close_store

    # A reload asked for while the model loads (SIGHUP's default would end the process) runs
    # once the app serves. (Blocking the signal would not do: numpy's threads, started by the
    # model check, would still take it.)
    asked: list[int] = []
    hangup = getattr(signal, "SIGHUP", None)  # Windows has none: POST /admin/reload is the way there
    if hangup is None:
        log.info("this system has no SIGHUP: reload the models with POST /admin/reload (needs an admin token)")
    else:
        signal.signal(hangup, lambda signum, frame: asked.append(signum))
    # TensorFlow's C++ writes to stderr as it is imported and first run: in JSON logs, as records
    # (as a gunicorn worker's load does; here those lines came out as they were, among the JSON)
    native = log_format.native_lines_as_json if values["LOG_FORMAT"] == "json" else contextlib.nullcontext
    with native():
        app = create_app(settings.app_config(values))
    heap.freeze_loaded()  # as a gunicorn worker does: no collection walks the loaded models
    if hangup is not None:
        signal.signal(hangup, lambda signum, frame: reload_in_background(app, "SIGHUP"))
    if asked:
        reload_in_background(app, "SIGHUP while starting")
    host, port = values["HOST"], values["PORT"]
    say(f"serving {values['MODEL']} on {_address(host, port)}  (development server; Ctrl-C to stop)", flush=True)
    _run_flask(app, host, port)
    _finish_reload(app)
    close_store(app)
    return 0


def _single_process_metrics() -> None:
    """Keep the development server's metrics in its own memory, as any single process's: with a
    multiprocess metrics folder inherited from the environment it wrote files there and served
    the sum of every file in it (an earlier run's counts, another server's, the live gauges of
    ended processes), or failed to start where the folder did not exist."""
    for name in _METRICS_FOLDER_ENV:
        if os.environ.pop(name, None) is not None:
            log.warning("%s is ignored: the development server is one process, and /metrics counts its own", name)


# What Flask's and Werkzeug's app.run() read from the environment to hand a server over from a
# reloading parent to its child (the listening socket's descriptor; "this is the child"), and
# what `flask run` sets (app.run() then returns at once). This server runs no reloader and is
# no `flask run`: inherited, they made serve --dev exit at once without serving, or fail with
# a KeyError, or serve on whatever descriptor was named instead of --port.
_HANDOVER_ENV = ("FLASK_RUN_FROM_CLI", "WERKZEUG_RUN_MAIN", "WERKZEUG_SERVER_FD")


def _run_flask(app: Any, host: str, port: int) -> None:
    """Run Flask's development server until it stops, with nothing of Flask's own configuration
    from the environment or the working folder: no debug mode (``FLASK_DEBUG``, whose interactive
    debugger runs any Python code sent to it), no ``.env`` or ``.flaskenv`` file read (Flask reads
    them where python-dotenv is installed, in this folder or any above it), no reloader's
    hand-over (:data:`_HANDOVER_ENV`). Each one set is said to be ignored, as is gunicorn's
    ``SCRIPT_NAME``, which the server ``serve`` starts answers under and this one does not."""
    from flask.helpers import get_debug_flag

    if get_debug_flag():
        log.warning(
            "FLASK_DEBUG is ignored: the development server never runs Flask's debug mode, whose "
            "debugger would run any Python code sent to it"
        )
    for name in _HANDOVER_ENV:
        if os.environ.pop(name, None) is not None:
            log.warning("%s is ignored: it is Flask's or Werkzeug's, set for a server they restart", name)
    if os.environ.get("SCRIPT_NAME"):  # gunicorn's prefix: Werkzeug's server has none
        log.warning(
            "SCRIPT_NAME is ignored: the development server answers at the root (/health, not %s/health); "
            "serve without --dev answers under it",
            os.environ["SCRIPT_NAME"].rstrip("/"),
        )
    # Werkzeug colours its lines with escape sequences, which the log lines would show as text
    # (``\x1b[33m``): they hold a request's data, whose control characters are written as escapes
    import werkzeug.serving

    werkzeug.serving._log_add_style = False
    # threaded=True: every request runs in its own thread against the one shared session.
    app.run(
        host=host,
        port=port,
        debug=False,
        load_dotenv=False,
        threaded=True,
        use_reloader=False,
        use_debugger=False,
        request_handler=_quiet_request_handler(),
    )


def _finish_reload(app: Any) -> None:
    """Wait, once the server has stopped (Ctrl-C), for a model reload under way: the process
    would otherwise end inside TensorFlow's C++ code, which aborts it. A second Ctrl-C ends it
    at once, without the interpreter's teardown that aborted."""
    from legacy_assistant.web.admin import reload_under_way

    thread = reload_under_way(app)
    if thread is None:
        return
    try:  # from the message on: a Ctrl-C must not end the main thread alone, to wait for the reload
        say("waiting for the model reload under way to finish (Ctrl-C again stops at once)", flush=True)
        while thread.is_alive():  # woken often: a signal another thread took is handled here then
            thread.join(0.1)
    except KeyboardInterrupt:
        os._exit(130)


# Seconds each read of a connection (and each write to it) of the development server waits for
# the client, as serve's CLIENT_READ_TIMEOUT_SECONDS (legacy_assistant.serving.server): without
# a limit, a client that sent a body the app left unread (a 413's) and waited for the server to
# close held the connection and its thread for as long as it stayed (Werkzeug discards such a
# body with a read that waits for 10 MB or the close), and one that sent half a request held them for good
DEV_CLIENT_TIMEOUT_SECONDS = 10.0


def _quiet_request_handler() -> type:
    """werkzeug's request handler without its own line per request: the app's access log
    (``legacy_assistant.access``, ``--no-access-log``) already writes one. Each read of a
    connection, and each write to it, gives up after :data:`DEV_CLIENT_TIMEOUT_SECONDS`
    without progress (http.server's ``timeout``): the connection is then closed, and a body
    that stopped arriving is answered 408 ``request_timeout``, as serve answers it."""
    from werkzeug.serving import DechunkedInput, WSGIRequestHandler

    from legacy_assistant.web.logged import logged_refusal
    from legacy_assistant.web.observability import RequestIds, refused_access_line, refused_request_id

    refused_ids = RequestIds()

    class Dechunked(DechunkedInput):
        """Werkzeug's reader of a chunked body, taking what RFC 9112 (7.1) allows and gunicorn
        reads: a chunk extension after the size ("d;name=value"), and trailer fields after
        the last chunk (dropped, as the app reads none). Werkzeug refused both, and the route
        answered a valid body 400 bad_request."""

        def read_chunk_len(self) -> int:
            line = self._rfile.readline(CHUNK_LINE_LIMIT)
            if not line.endswith(b"\n"):
                raise OSError("Invalid chunk header")
            size = line.partition(b";")[0].strip(b" \t\r\n")
            if not _HEXADECIMAL.fullmatch(size):
                raise OSError("Invalid chunk header")
            if (length := int(size, 16)) == 0:
                # the trailer fields, up to the empty line Werkzeug reads as the body's end
                buffered = cast(io.BufferedReader, self._rfile)  # http.server's rfile: buffered
                fields = 0
                while not buffered.peek(2)[:2].startswith((b"\r\n", b"\n", b"\r")):
                    fields += 1
                    # bounded as the headers are: with no bound, a client sending trailer
                    # fields without end held the connection past --max-body-bytes
                    if fields > TRAILER_FIELD_LIMIT:
                        raise OSError("Too many trailer fields")
                    if not self._rfile.readline(CHUNK_LINE_LIMIT).endswith(b"\n"):
                        raise OSError("Invalid trailer field")
            return length

    class QuietRequestHandler(WSGIRequestHandler):
        timeout = DEV_CLIENT_TIMEOUT_SECONDS

        def make_environ(self) -> Any:
            environ = super().make_environ()
            if "Transfer-Encoding" in self.headers:
                # parse_request let through only codings that end in one chunked; Werkzeug 2.3
                # dechunked only a bare "chunked", and read "identity, chunked" (as gunicorn
                # reads it) as a body without end, answered 408 after the client timeout
                environ["wsgi.input_terminated"] = True
                environ["wsgi.input"] = Dechunked(cast(IO[bytes], self.rfile))
            return environ

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

        def handle_expect_100(self) -> bool:
            # Werkzeug's run_wsgi sends its own "100 Continue" to an Expect: 100-continue;
            # http.server's, sent here as it parsed the headers, made two, where a client that
            # sends its body on each "100 Continue" it reads looks for one
            return True

        def parse_request(self) -> bool:
            # A request line holding bytes outside ASCII (a path sent as raw UTF-8, not
            # percent-encoded) is no valid HTTP, and gunicorn refuses it (400). Werkzeug read it
            # as Latin-1 and encoded it as UTF-8 again: "/conversations/bücher" named the
            # conversation of "bÃ¼cher", an empty transcript, and a DELETE forgot nothing.
            if not super().parse_request():
                return False
            if not self.raw_requestline.isascii():
                self.send_error(400, "Request line holds bytes outside ASCII")
                return False
            target = self.path
            if not (
                target.startswith("/")
                or target.lower().startswith(("http://", "https://"))
                or (target == "*" and self.command == "OPTIONS")
            ):
                # a target that is no path ("health", "?x=1"), nor a URL, nor OPTIONS's "*": no
                # valid HTTP, which gunicorn refuses (400); Werkzeug routed it as if it began
                # with "/", or answered it with its HTML redirect to the page
                self.send_error(400, "Request target is not a path")
                return False
            lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
            if lengths and (len(lengths) > 1 or not all(map(_DECIMAL.fullmatch, lengths))):
                # a Content-Length that is no decimal number ("abc", "-1", "+13", "13, 13") or
                # two that differ: no valid HTTP, which gunicorn refuses (400). Werkzeug read the
                # body as empty, and the route blamed the client's JSON (invalid_json)
                self.send_error(400, "Content-Length is not one decimal number")
                return False
            if "Transfer-Encoding" in self.headers and "Content-Length" in self.headers:
                # two framings at once, the shape of request smuggling (RFC 9112 says to handle it
                # as an error), which gunicorn refuses (400); Werkzeug read the body as chunked
                self.send_error(400, "Content-Length and Transfer-Encoding together")
                return False
            codings = [c.strip().lower() for c in ",".join(self.headers.get_all("Transfer-Encoding") or ()).split(",")]
            if "Transfer-Encoding" in self.headers and (codings[-1] != "chunked" or codings.count("chunked") > 1):
                # a body whose length cannot be told (chunked not last, or not there: "identity",
                # an empty value), or chunked twice: RFC 9112 (6.3) says 400, and gunicorn refuses
                # it; Werkzeug read such a body as empty, and the route blamed the JSON
                self.send_error(400, "Transfer-Encoding does not end in one chunked")
                return False
            if self.request_version == "HTTP/1.0" and "Transfer-Encoding" in self.headers:
                # HTTP/1.0 has no transfer codings: such a request's framing is faulty (RFC 9112),
                # and gunicorn refuses it (400); Werkzeug read the body as chunked all the same
                self.send_error(400, "Transfer-Encoding in an HTTP/1.0 request")
                return False
            expectations = self.headers.get_all("Expect") or ()
            if any(value.strip().lower() != "100-continue" for value in expectations):
                # an expectation the server cannot meet, which gunicorn refuses (417, RFC 9110
                # allows it); Werkzeug ignored it and served the route
                self.send_error(417, "Expectation other than 100-continue")
                return False
            if self.request_version == "HTTP/1.0" and "Expect" in self.headers:
                # an HTTP/1.0 client cannot read an interim answer, and an expectation it sends
                # is to be ignored (RFC 9110): Werkzeug's run_wsgi sent it "100 Continue" all the same
                del self.headers["Expect"]
            return True

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # a request http.server refuses before the app sees it (a request line it cannot
            # read, an unsupported version, a line or header over its limits): the app's JSON
            # error, as gunicorn's refusals under serve, instead of an HTML page whose status
            # line and text repeated the request line (a conversation's sender id)
            started = time.perf_counter()
            self.log_error("code %d, message %s", code, message)
            headers = getattr(self, "headers", None)  # set once http.server read them
            request_id = refused_request_id(headers.items() if headers is not None else None, refused_ids)
            from legacy_assistant.web.metrics import count_rejected

            count_rejected(code)  # beside the app's own 4xx, as serve counts gunicorn's refusals
            config = getattr(getattr(self.server, "app", None), "config", None)
            # its method and path were not read: "- - STATUS TIMEms id=ID", as serve writes one
            refused_access_line(config, None, None, code, time.perf_counter() - started, request_id)
            self.close_connection = True
            self.wfile.write(refused_answer(code, request_id))
            self.wfile.flush()

        def log_error(self, format: str, *args: Any) -> None:
            if format.startswith("Request timed out"):
                # http.server's line, at Werkzeug's error level, for a connection whose request
                # line or headers did not come within the timeout: a browser's spare connection,
                # opened ahead and left idle, is no error (serve's line for it is one of info)
                log.info("closed a connection whose request did not come within %g s", DEV_CLIENT_TIMEOUT_SECONDS)
                return
            # why it refused a request line it could not read, quoting the line or a piece of
            # it ("Bad request version ('def')" for a path with a space in it): a conversation's
            # sender id as the logs write it
            if format.startswith("code %d"):  # http.server's send_error: the status, then why
                line = str(getattr(self, "requestline", ""))
                args = tuple(logged_refusal(arg, line) if isinstance(arg, str) else arg for arg in args)
            super().log_error(format, *args)

    return QuietRequestHandler


_DECIMAL = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit takes "²" too
_HEXADECIMAL = re.compile(rb"[0-9A-Fa-f]+")  # a chunk's size: int() took "0x1a", "+1" and "1_0" too
CHUNK_LINE_LIMIT = 8192  # bytes of a chunk's size line or a trailer field, with its extensions
TRAILER_FIELD_LIMIT = 100  # trailer fields of a chunked body: http.server's limit on header fields

# Why the development server (http.server underneath) refuses a request, by status: the text
# of its JSON answer, which names no part of the request (a conversation's sender id)
_DEV_REFUSALS = {
    400: "the request is not valid HTTP",
    # http.server reads each line with its CRLF, and refuses one over 65,536 bytes so counted
    414: "the request line (method, path and query), with its line end, is longer than 65536 bytes",
    417: "the only expectation this server meets is Expect: 100-continue",
    431: "a request header, with its line end, is longer than 65536 bytes, or there are more than 100 headers",
    505: "the HTTP version is not supported: send HTTP/1.0 or HTTP/1.1",
}


def refused_answer(status: int, request_id: str) -> bytes:
    """The development server's answer to a request it refuses before the app sees it: the
    app's JSON error (``{"error": {"code", "message"}}``), as ``serve`` answers gunicorn's
    refusals, with the request's ``X-Request-ID``, the headers every answer carries for
    browsers, and ``Connection: close``."""
    from http import HTTPStatus

    from legacy_assistant.web.errors import refusal_answer

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return refusal_answer(status, reason, _DEV_REFUSALS.get(status, reason.lower()), request_id)
