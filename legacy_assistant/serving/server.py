"""The production server: gunicorn with threaded (``gthread``) workers.

TensorFlow is never imported by the gunicorn master. Its thread pools and session state do not
survive ``fork()``: a child forked from a process that already ran TensorFlow can hang or
crash on its first ``Session.run``. So the app (and with it the model) is built in
:meth:`GunicornServer.load`, which gunicorn calls in each worker after the fork
(``preload_app`` stays off), and this module imports nothing of TensorFlow.

Signals to the master:

* ``HUP``: every worker reloads the model from its directory in the background, swaps it in
  when it loads and answers, and keeps the old one when it does not (a log line says why).
  Gunicorn's own HUP (restart every worker) is replaced: a restarted worker whose model
  cannot be loaded would not boot, and gunicorn stops the whole server when a worker fails
  to boot.
* ``TERM``/``INT``/``QUIT``, ``TTIN``/``TTOU`` and ``USR1`` keep gunicorn's meaning (stop,
  one worker more or fewer, reopen log files).

``legacy-assistant serve`` starts this module in a fresh interpreter
(``python -m legacy_assistant.serving.server OPTIONS_JSON``), so that whatever the command line imported
before stays out of the master; :meth:`GunicornServer.run` refuses to start a master that has
TensorFlow loaded.

Metrics: the master makes a folder for ``prometheus_client``'s multiprocess mode, sets
``PROMETHEUS_MULTIPROC_DIR`` before forking, and clears a dead worker's live gauges.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from legacy_assistant.serving import settings

log = logging.getLogger(__name__)

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _default(name: str) -> Any:
    return field(default_factory=lambda: settings.default(name))


@dataclass
class ServerOptions:
    """How gunicorn runs; ``app_config`` goes to :func:`legacy_assistant.web.create_app` in each worker.

    The fields named like a setting of :mod:`legacy_assistant.serving.settings` (host, port,
    workers, threads, timeout, reuse_port) take their defaults from it; the others are fixed here.
    """

    host: str = _default("HOST")
    port: int = _default("PORT")
    workers: int = _default("WORKERS")
    threads: int = _default("THREADS")
    timeout: int = _default("TIMEOUT")
    reuse_port: bool = _default("REUSE_PORT")  # one listening socket per worker; see GunicornServer.reuse_port
    graceful_timeout: int = 30
    keepalive: int = 5
    app_config: dict[str, Any] = field(default_factory=dict)
    log_level: str = "info"

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], log_level: str = "info") -> "ServerOptions":
        """Options from resolved settings (:func:`legacy_assistant.serving.settings.resolve`)."""
        return cls(**settings.server_values(values), app_config=settings.app_config(values), log_level=log_level)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServerOptions":
        return cls(**json.loads(text))


class ReloadingArbiter(Arbiter):
    """Gunicorn's master, with HUP meaning "reload the model in every worker"."""

    def handle_hup(self) -> None:
        self.log.info("SIGHUP: asking %d worker(s) to reload the model", len(self.WORKERS))
        for pid in list(self.WORKERS):
            self.kill_worker(pid, signal.SIGHUP)


class GunicornServer(BaseApplication):
    """Serves :func:`legacy_assistant.web.create_app` under gunicorn, configured in code."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._metrics_dir: str | None = None
        super().__init__()

    def load_config(self) -> None:
        o = self.options
        settings = {
            "bind": [f"[{o.host}]:{o.port}" if ":" in o.host else f"{o.host}:{o.port}"],
            "workers": o.workers,
            "threads": o.threads,
            "worker_class": "gthread",
            "timeout": o.timeout,
            "graceful_timeout": o.graceful_timeout,
            "keepalive": o.keepalive,
            "reuse_port": self.reuse_port,
            "preload_app": False,  # the model is loaded in each worker, after the fork
            "accesslog": None,  # the app logs one line per request, with its request id
            "errorlog": "-",
            "loglevel": o.log_level,
            "proc_name": "legacy-assistant",
            "control_socket_disable": True,
            "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
            "on_starting": self._on_starting,
            "post_worker_init": self._post_worker_init,
            "child_exit": self._child_exit,
            "on_exit": self._on_exit,
        }
        for key, value in settings.items():
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key, value)

    @property
    def reuse_port(self) -> bool:
        """Whether each worker listens on a socket of its own (``SO_REUSEPORT``).

        With one socket shared by all workers, whichever worker wakes first accepts a new
        connection, and a keep-alive connection stays with that worker: under a burst of
        connections one worker can end up with all of them while the others idle (measured: 16
        connections all on one of two workers, 630 requests/s instead of 1,800). With a socket
        per worker the kernel spreads new connections over the workers evenly. Port 0 (any free
        port) would give each worker another port, so it keeps the shared socket.
        """
        return self.options.reuse_port and self.options.port != 0 and hasattr(socket, "SO_REUSEPORT")

    def load(self) -> Any:
        """Runs in each worker after the fork: build the app, which loads the model."""
        from legacy_assistant.web import create_app

        config = dict(self.options.app_config)
        master = os.getppid()
        config["ON_RELOADED"] = lambda: os.kill(master, signal.SIGHUP)
        return create_app(config)

    def run(self) -> None:
        if "tensorflow" in sys.modules:
            raise RuntimeError("TensorFlow is loaded in the gunicorn master; its thread pools do not survive fork. "
                               "Start the server with 'python -m legacy_assistant.serving.server'.")
        if self.reuse_port:
            refuse_port_in_use(self.options.host, self.options.port)
        try:
            ReloadingArbiter(self).run()
        except RuntimeError as exc:
            log.error("gunicorn could not start: %s", exc)
            raise SystemExit(1) from None

    # hooks (gunicorn calls them with the arbiter or the worker)
    def _on_starting(self, arbiter: Any) -> None:
        directory = os.environ.get(METRICS_ENV)
        if directory:
            os.makedirs(directory, exist_ok=True)
            for name in os.listdir(directory):  # stale files of an earlier run
                if name.endswith(".db"):
                    os.unlink(os.path.join(directory, name))
        else:
            self._metrics_dir = tempfile.mkdtemp(prefix="legacy-assistant-metrics-")
            os.environ[METRICS_ENV] = self._metrics_dir

    def _post_worker_init(self, worker: Any) -> None:
        from legacy_assistant.web.admin import reload_in_background

        app = worker.wsgi

        def on_hup(signum: int, frame: Any) -> None:
            reload_in_background(app, "SIGHUP")

        signal.signal(signal.SIGHUP, on_hup)

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    def _on_exit(self, arbiter: Any) -> None:
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)


def refuse_port_in_use(host: str, port: int) -> None:
    """Exit with a clear message when ``host:port`` is taken.

    Sockets with ``SO_REUSEPORT`` may share a port with other such sockets of the same user, so
    a second server started on the same port by mistake would silently take half the traffic.
    A plain bind, without that flag, fails on any port in use, which is what this checks.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        probe.bind((host, port))
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
        raise SystemExit(1) from None
    finally:
        probe.close()


def exec_server(options: ServerOptions, python: str = sys.executable) -> None:
    """Replace this process with a fresh interpreter running the server (same pid, clean imports)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, "-m", "legacy_assistant.serving.server", options.to_json()])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m legacy_assistant.serving.server OPTIONS_JSON``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m legacy_assistant.serving.server OPTIONS_JSON (see 'legacy-assistant serve')", file=sys.stderr)
        return 2
    options = ServerOptions.from_json(args[0])
    level = getattr(logging, options.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    GunicornServer(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
