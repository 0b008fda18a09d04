"""``legacy-assistant serve``: the HTTP API and chat page.

By default gunicorn runs ``--workers`` processes of ``--threads`` threads each; every worker
loads the model itself after the fork (see :mod:`legacy_assistant.serving.server`). ``--dev`` runs
Flask's development server in this one process instead.

This module must not import TensorFlow (nor anything that does): under gunicorn it runs in
the master process.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.defaults import DEFAULT_MODEL_DIR
from legacy_assistant.errors import ConfigError

if TYPE_CHECKING:
    from legacy_assistant.serving.server import ServerOptions

log = logging.getLogger(__name__)

# The network is a few small matrix products: splitting one across threads, or handing it to an
# inter-op pool thread, costs more than it saves. One intra-op thread with ops run in the calling
# request thread (-1) measured 196 us of CPU per prediction, against 222 us for (1, 1) and 276 us
# for TensorFlow's own choice (0, 0); 203, 224 and 255 us with four request threads at once
# (benchmarks/web_overhead.py --tf-threads).
DEFAULT_INTRA_OP = 1
DEFAULT_INTER_OP = -1


def _env(name: str, default: Any) -> Any:
    value = os.environ.get(f"LEGACY_ASSISTANT_{name}")
    return default if value in (None, "") else value


def _flag(value: bool | str, source: str) -> bool:
    """A switch given on the command line (a bool) or in the environment (a string)."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{source} must be 1/true/yes/on or 0/false/no/off, got {value!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    cpus = os.cpu_count() or 1
    parser = subparsers.add_parser("serve", help="serve the HTTP API and the chat page")
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=_env("PORT", 5000), help="port (default 5000)")
    parser.add_argument("--model", default=_env("MODEL", str(DEFAULT_MODEL_DIR)),
                        help="model directory (default: the shipped one)")
    parser.add_argument("--threshold", type=float, help="override the model's fallback threshold")
    parser.add_argument("--dev", action="store_true", help="Flask's development server, one process")
    parser.add_argument("--workers", type=int, default=_env("WORKERS", cpus),
                        help=f"gunicorn worker processes (default: one per CPU, here {cpus})")
    parser.add_argument("--threads", type=int, default=_env("THREADS", 4),
                        help="request threads per worker (default 4)")
    parser.add_argument("--timeout", type=int, default=_env("TIMEOUT", 30),
                        help="seconds before a silent worker is restarted (default 30)")
    parser.add_argument("--store", default=_env("STORE", None),
                        help="conversation store: sqlite:///PATH, redis://HOST:PORT/DB or memory "
                             "(default: SQLite in the instance folder)")
    parser.add_argument("--conversation-ttl", type=float, default=_env("CONVERSATION_TTL", 3600),
                        help="forget a conversation idle this many seconds (0: never; default 3600)")
    parser.add_argument("--intra-op-threads", type=int, default=_env("INTRA_OP_THREADS", DEFAULT_INTRA_OP),
                        help=f"TensorFlow intra-op threads per process (0: one per core; default {DEFAULT_INTRA_OP})")
    parser.add_argument("--inter-op-threads", type=int, default=_env("INTER_OP_THREADS", DEFAULT_INTER_OP),
                        help="TensorFlow inter-op threads per process (0: one per core; -1: run every op in "
                             f"the request's own thread; default {DEFAULT_INTER_OP})")
    parser.add_argument("--max-text-length", type=int, default=_env("MAX_TEXT_LENGTH", 1000),
                        help="longest text accepted, in characters (default 1000)")
    parser.add_argument("--max-body-bytes", type=int, default=_env("MAX_BODY_BYTES", 64 * 1024),
                        help="largest request body accepted (default 65536)")
    parser.add_argument("--no-access-log", action="store_true", help="no log line per request")
    parser.add_argument("--reuse-port", action=argparse.BooleanOptionalAction, default=_env("REUSE_PORT", True),
                        help="one listening socket per worker, so the kernel spreads connections over "
                             "the workers evenly (default on; --no-reuse-port shares one socket)")
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def _check(args: argparse.Namespace) -> None:
    for name in ("workers", "threads", "timeout", "max_text_length", "max_body_bytes"):
        if int(getattr(args, name)) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if not (Path(args.model) / "assistant.json").is_file():
        raise ConfigError(f"{args.model}: not a model directory (no assistant.json)")


def app_config(args: argparse.Namespace) -> dict[str, Any]:
    """What ``create_app`` gets from the command line."""
    intra, inter = int(args.intra_op_threads), int(args.inter_op_threads)
    if intra < 0:
        raise ConfigError("--intra-op-threads must be 0 or more")
    config: dict[str, Any] = {
        "MODEL_DIR": str(Path(args.model).resolve()),
        "THRESHOLD": args.threshold,
        "STORE_URL": args.store,
        "CONVERSATION_TTL": float(args.conversation_ttl),
        "INTRA_OP_THREADS": intra,
        "INTER_OP_THREADS": inter,
        "MAX_TEXT_LENGTH": int(args.max_text_length),
        "MAX_CONTENT_LENGTH": int(args.max_body_bytes),
    }
    if args.no_access_log:
        config["ACCESS_LOG"] = False
    return config


def server_options(args: argparse.Namespace) -> "ServerOptions":
    """What the gunicorn master gets from the command line."""
    from legacy_assistant.serving.server import ServerOptions

    return ServerOptions(
        host=args.host,
        port=int(args.port),
        workers=int(args.workers),
        threads=int(args.threads),
        timeout=int(args.timeout),
        reuse_port=_flag(args.reuse_port, "LEGACY_ASSISTANT_REUSE_PORT"),
        app_config=app_config(args),
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
    )


def run(args: argparse.Namespace) -> int:
    _check(args)
    apply_runtime(args)  # one TensorFlow runtime per process, chosen before any model loads
    if args.runtime:
        # gunicorn workers are fresh interpreters: they learn the choice from the environment
        os.environ["LEGACY_ASSISTANT_RUNTIME"] = args.runtime
    if args.dev:
        return _run_dev(args)
    from legacy_assistant.serving.server import exec_server

    options = server_options(args)
    log.info("serving %s on http://%s:%s/ with %d worker(s) x %d thread(s)", args.model, args.host, args.port,
             options.workers, options.threads)
    exec_server(options)  # does not return
    return 0


def _run_dev(args: argparse.Namespace) -> int:
    from legacy_assistant.web import create_app
    from legacy_assistant.web.admin import reload_in_background

    app = create_app(app_config(args))
    signal.signal(signal.SIGHUP, lambda signum, frame: reload_in_background(app, "SIGHUP"))
    print(f"serving {args.model} on http://{args.host}:{args.port}/  (development server; Ctrl-C to stop)",
          flush=True)
    # threaded=True: every request runs in its own thread against the one shared session.
    app.run(host=args.host, port=int(args.port), threaded=True, use_reloader=False)
    return 0
