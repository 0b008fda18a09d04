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
  to boot. A worker still starting (loading its model) holds the signal until it serves and
  then reloads (``unchanged``, unless the directory changed meanwhile); gunicorn's worker
  would die of it (see :class:`ModelWorker`).
* ``TERM``/``INT``/``QUIT``, ``TTIN``/``TTOU`` and ``USR1`` keep gunicorn's meaning (stop,
  one worker more or fewer, reopen log files). A graceful stop (``TERM``) lets the requests
  being handled finish, and stops reading those still arriving after
  :data:`STOP_ARRIVING_LINGER_SECONDS` (see :meth:`ModelWorker.handle_exit`).

``legacy-assistant serve`` starts this module's :func:`main` in a fresh interpreter
(``python .../legacy_assistant/common/launch.py legacy_assistant.serving.server:main OPTIONS_JSON``,
which keeps the working folder's modules out; ``python -m legacy_assistant.serving.server
OPTIONS_JSON`` works too), so that whatever the command line imported
before stays out of the master; :meth:`GunicornServer.run` refuses to start a master that has
TensorFlow loaded.

Metrics: the master makes a folder for ``prometheus_client``'s multiprocess mode, sets
``PROMETHEUS_MULTIPROC_DIR`` before forking, and clears a dead worker's live gauges.

Readiness: the master and its workers share a small folder
(:class:`~legacy_assistant.serving.readiness.WorkerRegistry`) that says how many workers the
master wants and which of them serve, so that any worker can answer ``/ready`` for the whole
server.

Errors gunicorn answers itself, before the app sees the request (a request line over
``limit_request_line``: 414; a header over ``limit_request_field_size``, or too many: 431; a
request that is not HTTP: 400), get the app's JSON error body instead of gunicorn's HTML page,
with an ``X-Request-ID`` that their log lines carry: the access log's line for the request (as
the app writes one for each request it answers) and gunicorn's own line saying why it refused.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from gunicorn import sock as gunicorn_sock
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.errors import HaltServer
from gunicorn.glogging import Logger
from gunicorn.http import body as gunicorn_body
from gunicorn.http import errors as gunicorn_errors
from gunicorn.http import message as gunicorn_message
from gunicorn.http import parser as gunicorn_parser
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker

from legacy_assistant.common import launch
from legacy_assistant.common.limits import memory_limit_bytes
from legacy_assistant.common.origins import bracketed
from legacy_assistant.common.stop_signals import STOP_SIGNALS
from legacy_assistant.common.terminal import VisibleFormatter
from legacy_assistant.errors import AssistantError, ConfigError, ReadingStopped
from legacy_assistant.serving import heap, log_format, metrics_folder, settings, unix_socket
from legacy_assistant.serving.ports import listen_problem
from legacy_assistant.serving.readiness import WorkerRegistry, shared_memory_dir

log = logging.getLogger("legacy_assistant.serving.server")  # not "__main__" under python -m

METRICS_ENV = metrics_folder.METRICS_ENV

# How long a worker that cannot start waits before it exits, once the server has served: gunicorn
# starts another at once, and each try imports TensorFlow and reads the model (seconds of CPU).
WORKER_RETRY_SECONDS = 5.0
# Workers that may end (killed: by the memory limit, by --timeout) before any worker of the
# server has served, before the master gives up: gunicorn alone starts another for ever.
EARLY_DEATHS_BEFORE_HALT = 3

# gunicorn's connections per worker (worker_connections), of which --threads are busy in
# requests and the rest may idle between keep-alive requests: gunicorn's 1,000, or twice the
# threads where that is more (at 1,000 threads and up gunicorn's default left no room, and
# answered every request Connection: close, with a warning naming a setting serve has not)
WORKER_CONNECTIONS = 1000


def worker_connections(threads: int) -> int:
    """gunicorn's ``worker_connections`` for ``threads`` request threads per worker."""
    return max(WORKER_CONNECTIONS, 2 * threads)


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
    log_format: str = _default("LOG_FORMAT")

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], log_level: str = "info") -> ServerOptions:
        """Options from resolved settings (:func:`legacy_assistant.serving.settings.resolve`);
        raises :class:`ConfigError` for settings that cannot go together (a Redis store URL
        whose ``?max_connections=`` is below ``--threads``)."""
        options = cls(**settings.server_values(values), app_config=settings.app_config(values), log_level=log_level)
        problem = redis_pool_problem(options)
        if problem is not None:
            raise ConfigError(problem)
        return options

    def to_json(self) -> str:
        """The options without the secrets (tokens) and the private values (the store URL, the
        CORS list): this text becomes the server's command line, which every user of the machine
        can read. :meth:`from_json` reads the secrets back from the environment, which the
        re-executed server inherits, and the private values from :meth:`private_json`, which
        :func:`exec_server` passes there too."""
        data = asdict(self)
        hidden = settings.secret_config_keys() | settings.PRIVATE_CONFIG_KEYS
        data["app_config"] = {key: value for key, value in self.app_config.items() if key not in hidden}
        return json.dumps(data)

    def private_json(self) -> str:
        """The private values left out of :meth:`to_json`, for :data:`PRIVATE_ENV`."""
        return json.dumps({k: v for k, v in self.app_config.items() if k in settings.PRIVATE_CONFIG_KEYS})

    @classmethod
    def from_json(cls, text: str, environ: Mapping[str, str] | None = None) -> ServerOptions:
        """Options from :meth:`to_json`'s text, the secrets and the private values from
        ``environ`` (``os.environ`` when None)."""
        environ = os.environ if environ is None else environ
        data = json.loads(text)
        private = json.loads(environ.get(PRIVATE_ENV) or "{}")
        data["app_config"] = {
            **data.get("app_config", {}),
            **{k: v for k, v in private.items() if k in settings.PRIVATE_CONFIG_KEYS},
            **settings.secrets_from_environment(environ),
        }
        return cls(**data)


# How exec_server hands the private values to the server it becomes (see ServerOptions.to_json).
PRIVATE_ENV = "LEGACY_ASSISTANT_SERVER_PRIVATE"


class ReloadingArbiter(Arbiter):
    """Gunicorn's master, with HUP meaning "reload the model in every worker", which keeps the
    :class:`WorkerRegistry` told of the workers it wants and has."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.stopping = False
        self.early_deaths = 0  # workers that ended on their own before any served, while not stopping
        self.retired: set[int] = set()  # workers this master asked to stop

    def start(self) -> None:
        # USR2 re-executes the master with GUNICORN_FD naming the listening sockets it holds. With
        # a socket per worker it holds none, and gunicorn's own start fails on the "" it hands
        # over (int('')). That mode uses no inherited socket: give it a list that parses.
        if os.environ.get("GUNICORN_FD") == "" and self.cfg.reuse_port and hasattr(socket, "SO_REUSEPORT"):
            os.environ["GUNICORN_FD"] = "-1"  # never opened: create_sockets is skipped in this mode
        super().start()

    def stop(self, graceful: bool = True) -> None:
        self.stopping = True
        registry = getattr(self.app, "registry", None)
        if registry is not None:  # /ready says 503 while the workers finish what they accepted
            registry.stop()
            registry.expect(self.num_workers, self.WORKERS)
        super().stop(graceful)

    def reap_workers(self) -> None:
        # gunicorn's reaping raises HaltServer for a worker that failed to boot. While stopping
        # (halting for the first such worker, say) another's is no news, and raised from the
        # halt itself it ended the master with a traceback and status 1, not the first one's 3.
        while True:
            try:
                super().reap_workers()
                return
            except HaltServer:
                if not self.stopping:
                    raise
                # that worker is reaped; go on with the others

    def init_signals(self) -> None:
        super().init_signals()
        # exec_server blocked these so that one sent while the server started stays pending
        # instead of being lost; gunicorn's handlers now take it
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def handle_hup(self) -> None:
        self.log.info("SIGHUP: asking %d worker(s) to reload the model", len(self.WORKERS))
        for pid in list(self.WORKERS):
            self.kill_worker(pid, signal.SIGHUP)

    def handle_ttin(self) -> None:
        # serve refuses --store memory with more than one worker: each would keep its own
        # conversations, and a sender's turns would land in whichever worker answered
        options = getattr(self.app, "options", None)
        if options is not None and options.app_config.get("STORE_URL") == "memory":
            self.log.warning(
                "SIGTTIN ignored: the memory store keeps conversations inside one process, and another "
                "worker would keep its own (restart with a store the workers share to run more)"
            )
            return
        super().handle_ttin()

    def manage_workers(self) -> None:
        # The count wanted first: a worker forked below is the master's child (in ps, in /proc)
        # before the write after the fork, and /ready meanwhile called the old count the whole
        # server (200 after a TTIN, with the new worker still loading).
        self._tell_registry()
        if len(self.WORKERS) > self.num_workers:  # TTOU
            self._stop_surplus()
        else:
            super().manage_workers()  # starts workers to match num_workers (TTIN, a death)
        self._tell_registry()

    def _stop_surplus(self) -> None:
        """Stop the workers beyond ``num_workers``: first those already asked to stop, then those
        still loading their model, then the oldest. Gunicorn's own stops the oldest first, and a
        TTOU soon after a TTIN stopped a worker that served while the new one went on loading
        (and one after another, every serving worker: nothing listened until the new ones had
        loaded); a worker that does not serve yet holds no connection and no request."""
        registry = getattr(self.app, "registry", None)

        def order(item: tuple[int, Any]) -> tuple[bool, bool, int]:
            pid, worker = item
            serves = registry is not None and registry.serves(pid)
            return pid not in self.retired, serves, worker.age

        workers = sorted(self.WORKERS.items(), key=order)
        for pid, _ in workers[: len(workers) - self.num_workers]:
            # once: gunicorn's loop sent it again every second until the worker ended, and a
            # worker that took them while it loaded its model crashed (SIGSEGV, or glibc's
            # "corrupted size vs. prev_size") where one SIGTERM let it load and exit cleanly
            if pid not in self.retired:
                self.kill_worker(pid, signal.SIGTERM)

    def spawn_worker(self) -> int:
        # Until the worker has its own handlers it has the master's, which would put a stop
        # signal on the child's copy of the master's queue, read by no one: the master's SIGTERM
        # then went unheard, and a stop waited out the graceful timeout. Blocked, it waits for
        # ModelWorker.init_signals.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = super().spawn_worker()  # only the master returns: the worker exits inside
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        self._tell_registry()  # at once: gunicorn may sleep before it starts the next worker
        return pid

    def kill_worker(self, pid: int, sig: int) -> None:
        if sig in (signal.SIGTERM, signal.SIGQUIT):
            self.retired.add(pid)  # ended on purpose (TTOU, fewer workers, a stop): no early death
        super().kill_worker(pid, sig)

    def _tell_registry(self) -> None:
        registry = getattr(self.app, "registry", None)
        if registry is not None:
            registry.remake_if_removed()  # a look every second or so (the master's loop)
            registry.expect(self.num_workers, self.WORKERS)


class ModelWorker(ThreadWorker):
    """Gunicorn's ``gthread`` worker, with these changes.

    * **Its own socket opens when it serves.** With a socket per worker (``SO_REUSEPORT``)
      gunicorn opens the worker's socket right after the fork, and the kernel at once sends it
      its share of new connections, which then wait, unanswered, for the seconds the model
      takes to load (half of them, when one of two workers restarts). So the socket is closed
      again at once (:meth:`init_process`; a connection sent to it in those microseconds is
      reset) and opened when the app is built (:meth:`load_wsgi`).
    * **SIGHUP while the worker starts.** Gunicorn sets SIGHUP back to its default action
      (terminate) in :meth:`init_signals`, and the app, which installs the reload handler, is
      built only afterwards, which takes seconds: a reload passed on by the master meanwhile
      (say right after ``/health`` first answered, while another worker still loads) would
      kill the worker, and gunicorn would start a new one. So SIGHUP is blocked from here until
      the app is built; one that arrives meanwhile stays pending, and is delivered, a reload,
      once the worker serves (``GunicornServer._post_worker_init``).
    * **Errors gunicorn answers itself** (:meth:`handle_error`) are JSON, like the app's.
    * **``100 Continue`` waits for the app** (:meth:`handle_request`): it goes out when the app
      first reads the body, so a body refused unread (over the size limit) is never asked for.
    * **A stop stops reading the requests still arriving** (:meth:`handle_exit`,
      :meth:`handle_quit`): a client trickling its body kept the worker until it was killed.
    * **The loaded models are frozen for the garbage collector** once the app is built
      (:mod:`legacy_assistant.serving.heap`): a full collection would otherwise walk their
      hundreds of thousands of objects with every request thread waiting.
    * **Out of file descriptors, it holds the connections it has** (:meth:`accept`): gunicorn's
      ``accept`` let ``EMFILE`` (``ulimit -n`` reached) end the worker, dropping every
      connection it held; now the worker takes no new one until one of its own closes, and the
      others wait in the listen backlog. Each connection it accepts after that raises its cap by
      one, back to ``worker_connections``.
    * **A connection it closes lingers in a thread of its own** (:meth:`finish_request`):
      gunicorn's graceful close (the answer said ``Connection: close``, or the client left)
      waits up to 2 s for the client to close its side, or for what is left of an unread body,
      and it did so on the worker's main thread, which then accepted nothing and handed no
      finished request on: every other client of the worker waited as long.
    """

    worker_connections: int  # gunicorn's, set as it starts; lowered where file descriptors run out (accept)
    _full_connections: int | None = None  # worker_connections before EMFILE lowered it, until it is back there
    nr_conns: int
    _quitting = False
    _cutting = False  # a graceful stop has stopped reading the requests still arriving (handle_exit)
    _in_flight: dict[int, Any] = {}  # replaced by the worker's own dict as it starts (init_process)
    _bodies: dict[int, _StoppableReader] = {}  # by connection: its request's body, once its headers are read
    _lingering: threading.BoundedSemaphore  # set as it starts (init_process)
    _refused_ids: Any = None  # the ids of requests gunicorn refuses itself (RequestIds), made at the first

    def handle_quit(self, sig: int, frame: Any) -> None:
        """Quit once. Ctrl-C on a terminal sends SIGINT to every worker and the master passes on
        SIGQUIT: a second signal handled inside the first would take the request threads'
        pool lock gunicorn's handler already holds, and the worker hung until it was killed
        30 s later ("Perhaps out of memory?").

        The connections in a request thread stop being read (:func:`_stop_reading`): the
        process ends only once its request threads have, and a client still sending its
        request, a byte every few seconds, kept one reading (each read is bounded, the whole
        request is not), and the worker alive until the master killed it at the graceful
        timeout. Answers being computed still go out; a body still arriving is answered 503
        ``shutting_down``."""
        if self._quitting:
            return
        self._quitting = True
        self._stop_reading_in_flight(everything=True)
        super().handle_quit(sig, frame)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """A graceful stop: the requests being handled (their body read) finish, and after
        :data:`STOP_ARRIVING_LINGER_SECONDS` the worker stops reading the requests still
        arriving (:meth:`_cut_arriving`). A client sending its body a byte every few seconds
        kept a request thread, and the worker, alive until the master killed it at the graceful
        timeout (30 s), and then got no answer at all."""
        first = self.alive
        super().handle_exit(sig, frame)
        if first and not self._quitting:
            # the timer starts on the main loop: a thread started inside a signal handler may
            # wait for a lock of the threading module the interrupted code holds
            self.method_queue.defer(self._cut_arriving_later)

    def _cut_arriving_later(self) -> None:
        timer = threading.Timer(STOP_ARRIVING_LINGER_SECONDS, self._cut_arriving)
        timer.daemon = True
        timer.start()

    def _cut_arriving(self) -> None:
        """Stop reading the connections whose request has not all arrived: one whose headers are
        still arriving is closed, unanswered; one whose body is, answered 503 ``shutting_down``
        (the app's read of it fails with :class:`~legacy_assistant.errors.ReadingStopped`) and
        closed. Answers being computed still go out."""
        self._cutting = True
        self._stop_reading_in_flight(everything=False)

    def _stop_reading_in_flight(self, everything: bool) -> None:
        """Shut the reading side of the connections in a request thread: ``everything``, or
        those whose request has not all arrived. A body cut off so fails to read with
        :class:`~legacy_assistant.errors.ReadingStopped`."""
        for key, conn in list(self._in_flight.items()):  # a copy: request threads add and remove meanwhile
            body = self._bodies.get(key)
            arriving = body is None or not body.complete()
            if arriving and body is not None:
                body.stopped = True
            if arriving or everything:
                _stop_reading([conn])

    def _own_socket(self) -> bool:
        return bool(self.cfg.reuse_port) and hasattr(socket, "SO_REUSEPORT")  # as gunicorn's spawn_worker decides

    def handle(self, conn: Any) -> Any:
        """Before gunicorn reads a new connection's request: give a connection that has sent
        nothing back to the poller after :data:`FIRST_BYTES_WAIT_SECONDS` (gunicorn holds a
        request thread for 5 s first, so a few hundred idle connections kept every thread busy
        for minutes), and bound each read of the request to :data:`CLIENT_READ_TIMEOUT_SECONDS`
        (once a byte has come, gunicorn reads the rest with no limit: as many clients as the
        worker has threads, each sending half a request and stopping, stalled it for good)."""
        if not getattr(conn, "initialized", True):
            # gunicorn 25.2 and later defer a silent connection to the poller; earlier releases
            # read at once, and then only the read timeout applies
            defer = getattr(gthread, "_DEFER", None)
            if defer is not None and hasattr(conn, "wait_for_data") and not getattr(conn, "data_ready", True):
                if not _waited_for_data(conn):
                    return defer  # the poller hands it back to a thread once it sends
            _time_out_reads(conn.sock, CLIENT_READ_TIMEOUT_SECONDS)
            _time_out_writes(conn.sock, CLIENT_WRITE_TIMEOUT_SECONDS)
        in_flight = self._in_flight
        in_flight[id(conn)] = conn  # by id: a connection need not be hashable
        try:
            if self._quitting or self._cutting:  # taken from the queue after the stop: read nothing more of it
                _stop_reading([conn])
            return super().handle(conn)
        finally:
            in_flight.pop(id(conn), None)
            self._bodies.pop(id(conn), None)

    def handle_request(self, req: Any, conn: Any) -> Any:
        """Send ``100 Continue`` only once the app reads the body: gunicorn sent it for every
        ``Expect: 100-continue`` before the app saw the request, so a client whose body the app
        refuses unread (over the size limit, a 404, a 415) was told to send it all the same."""
        body = _StoppableReader(req.body.reader)
        req.body.reader = body
        self._bodies[id(conn)] = body  # first: a cut from now on finds it and marks it
        if self._cutting or self._quitting:
            # arrived as the stop began (a cut that came before it was registered shut the reading
            # side, finding no body to mark): only what came is read. Never set back to False: a cut
            # landing meanwhile has marked it.
            body.stopped = True
        if getattr(req, "_expected_100_continue", False) and _has_body(req.body):
            req._expected_100_continue = False
            req.body.reader = _ContinueOnRead(req.body.reader, conn.sock)
        return super().handle_request(req, conn)

    def finish_request(self, conn: Any, fs: Any) -> None:
        """gunicorn's (on the main thread, once a request thread is done with ``conn``), except
        that a graceful close of ``conn`` (:func:`gunicorn.util.close_graceful`: half-close, then
        up to 2 s reading until the client closes its side) runs in a thread of its own. On the
        main thread it held up the whole worker: a client that kept its socket open after a
        ``Connection: close`` answer, or went on sending a body refused with 413, delayed every
        other client's request by up to 2 s."""
        conn.close = _closing_aside(conn.close, self._lingering)
        try:
            super().finish_request(conn, fs)
        finally:
            conn.__dict__.pop("close", None)  # a kept-alive connection closes as gunicorn's again

    def run(self) -> None:
        """gunicorn's, then, on a graceful stop, a wait for the graceful closes still lingering
        in threads of their own (:meth:`finish_request`), up to the 2 s each takes: gunicorn's
        stop waits only for the connections it counts, and these it no longer counts. The worker
        ended with them under way, and its exit closed their sockets at once: a client still
        sending what the close was draining (the rest of a body refused with 413) had its
        connection reset (its send failed with a broken pipe) instead of closed. A quick stop
        (SIGQUIT, SIGINT) leaves run() by SystemExit and does not wait."""
        super().run()
        _wait_for_lingering_closes(self._lingering, LINGERING_CLOSES_MAX, LINGERING_CLOSE_WAIT_SECONDS)

    def accept(self, listener: Any) -> None:
        """gunicorn's, except that running out of file descriptors (``EMFILE``, ``ENFILE``) while
        this worker holds connections lowers its cap (``worker_connections``) to those it holds,
        so it accepts again once one of them closes; with none held the error ends the worker,
        as before (nothing to wait for). Each connection accepted while the cap is lowered raises
        it by one, until it is back where it was (or file descriptors run out again)."""
        held = self.nr_conns
        try:
            super().accept(listener)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or self.nr_conns < 1:
                raise
            if self._full_connections is None:  # once, as file descriptors first run out
                self._full_connections = self.worker_connections
                log.warning(
                    "out of file descriptors (%s) with %d connections open: this worker takes at most %d at "
                    "once, then one more with each it accepts, back up to %d; raise the limit (ulimit -n, "
                    "LimitNOFILE=, docker run --ulimit nofile=)",
                    exc.strerror,
                    self.nr_conns,
                    self.nr_conns,
                    self.worker_connections,
                )
            self.worker_connections = self.nr_conns
            self.set_accept_enabled(False)
            return
        full = self._full_connections
        if full is not None and self.nr_conns > held:  # one accepted: try one more
            self.worker_connections = min(self.worker_connections + 1, full)
            if self.worker_connections == full:
                self._full_connections = None
                log.info("file descriptors are back: this worker takes up to %d connections at once again", full)

    def init_process(self) -> None:
        self._in_flight = {}  # the connections in a request thread (see handle_quit)
        self._bodies = {}
        # graceful closes lingering in threads of their own (see finish_request), at most this many
        self._lingering = threading.BoundedSemaphore(LINGERING_CLOSES_MAX)
        if self._own_socket():
            for listener in self.sockets:
                listener.close()
            self.sockets: list[Any] = []
        super().init_process()

    def load_wsgi(self) -> None:
        # TensorFlow's C++ writes to stderr as it is imported and first run: in JSON logs, as records
        native = log_format.native_lines_as_json if self.cfg.logger_class is JsonServerLog else contextlib.nullcontext
        with native():
            super().load_wsgi()  # builds the app: the model is loaded
        drain = getattr(gunicorn_parser, "_DRAIN_MAX_BYTES", None)  # gunicorn 27 on; before, no cap
        if hasattr(self.wsgi, "wsgi_app"):
            self.wsgi.wsgi_app = _closing_after_unread_body(self.wsgi.wsgi_app, drain)
        heap.freeze_loaded()  # the models live as long as the worker: keep them out of collections
        if self._own_socket():
            self.sockets = gunicorn_sock.create_sockets(self.cfg, self.log)
            for listener in self.sockets:
                gunicorn_util.close_on_exec(listener.fileno())

    def notify(self) -> None:
        super().notify()
        registry = getattr(self.app, "registry", None)
        if self.booted and registry is not None:  # its file back, where the folder was made again
            registry.keep_ready(self.pid)

    def init_signals(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})  # before gunicorn makes it fatal
        super().init_signals()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked from the fork (spawn_worker)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """Gunicorn decides the status (and logs, its lines carrying the request's id); the body
        is the app's JSON error, and the access log has a line for it as for every request."""
        started = time.perf_counter()
        from legacy_assistant.web.observability import RequestIds, refused_request_id

        if self._refused_ids is None:
            self._refused_ids = RequestIds()
        request_id = refused_request_id(_headers_read(req, exc), self._refused_ids)
        capture = _ResponseCapture()
        _REFUSING.request_id = request_id  # for ServerLog: gunicorn's line on why it refused
        exc = _hide_header_line(_hide_sender(exc, req))
        try:
            super().handle_error(req, capture, addr, exc)
        finally:
            _REFUSING.request_id = None
        status, reason, message = capture.status(), capture.reason(), None
        if status is None:
            return
        if status in _UNSUPPORTED:  # by status: gunicorn before 25 has no ExpectationFailed
            message = f"{exc} ({_UNSUPPORTED[status]})"
        if isinstance(exc, gunicorn_errors.ConfigurationProblem) and "SCRIPT_NAME" in str(exc):
            # served under a prefix (SCRIPT_NAME) and asked for a path outside it: gunicorn says
            # 500, though nothing failed and no path out there exists
            status, reason = 404, "Not Found"
            from legacy_assistant.web.errors import outside_prefix_message

            message = outside_prefix_message(os.environ.get("SCRIPT_NAME", ""))
        from legacy_assistant.web.metrics import count_rejected

        # in the totals an operator alerts on, beside the app's own 4xx; counted before the answer
        # is sent, so that a scrape made once the client has it sees it (after, it raced the scrape)
        count_rejected(status)
        self._access_line(req, status, time.perf_counter() - started, request_id)
        try:
            gunicorn_util.write_nonblock(client, self._json_error(status, reason, message, request_id))
        except Exception:  # the client is gone: nothing to answer
            self.log.debug("failed to send the error response")

    def _access_line(self, req: Any, status: int, seconds: float, request_id: str) -> None:
        """The access log's line for a request gunicorn refused
        (:func:`legacy_assistant.web.observability.refused_access_line`), with the method and
        path where gunicorn read them."""
        from urllib.parse import unquote

        from legacy_assistant.web.observability import refused_access_line

        method = getattr(req, "method", None)
        path = getattr(req, "path", None)
        path = unquote(path) if isinstance(path, str) else None
        script_name = unquote(os.environ.get("SCRIPT_NAME", ""))
        if path is not None and script_name and path.startswith(script_name):
            # the path after the prefix, as gunicorn hands it to the app and the app's lines write
            # it (Werkzeug's request.path): with the prefix, a conversation's was not seen as one,
            # its sender id written out; decoded first, as the prefix too may come percent-encoded
            path = "/" + path[len(script_name) :].lstrip("/")
        config = getattr(getattr(self, "wsgi", None), "config", None)
        refused_access_line(config, method, path, status, seconds, request_id)

    def _json_error(self, status: int, reason: str, message: str | None, request_id: str) -> bytes:
        from legacy_assistant.web.errors import refusal_answer

        limits = {
            400: "the request is not valid HTTP",
            414: f"the request line (method, path and query) is longer than {self.cfg.limit_request_line} bytes",
            # gunicorn counts a header with its CRLF (the request line without it)
            431: f"a request header, with its line end, is longer than {self.cfg.limit_request_field_size} bytes, "
            f"or there are more than {self.cfg.limit_request_fields} headers",
            500: "the server failed to handle this request",
        }
        # (the status line's phrase is the standard one: gunicorn keeps "Bad Request" as its 501's)
        return refusal_answer(status, reason, message or limits.get(status, reason), request_id)


def _waited_for_data(conn: Any) -> bool:
    """gunicorn's wait for a new connection's first bytes (:data:`FIRST_BYTES_WAIT_SECONDS`), or
    True where it has no file descriptor for its selector (``EMFILE``: ``ulimit -n`` reached):
    the request is then read at once, under the read timeout, where the error escaped the
    request thread and the connection was reset unanswered, with no line in the log."""
    try:
        return bool(conn.wait_for_data(FIRST_BYTES_WAIT_SECONDS))
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise
        conn.data_ready = True  # gunicorn's handle would wait again, and fail the same way
        return True


def _hide_sender(exc: BaseException, req: Any) -> BaseException:
    """gunicorn's line on why it refuses a request quotes what it could not use: a request line it
    cannot read, a path outside ``SCRIPT_NAME``, the method or version of a line whose path had a
    space in it (``GET /api/v1/conversations/abc def HTTP/1.1`` is refused for its version
    ``def HTTP/1.1``, a piece of the sender id). A conversation's sender id there (the only key
    to its transcript) is made the digest the access log writes for it: the exception to refuse
    the request with, which for a method or version is the request line refused, its sender
    hidden."""
    from legacy_assistant.web.logged import logged_request_line

    if isinstance(exc, gunicorn_errors.InvalidRequestLine) and isinstance(getattr(exc, "req", None), str):
        exc.req = logged_request_line(exc.req)
    piece = getattr(exc, "version", None) or getattr(exc, "method", None)  # (2, 0) for HTTP/2.0: no text sent
    if isinstance(exc, (gunicorn_errors.InvalidHTTPVersion, gunicorn_errors.InvalidRequestMethod)) and isinstance(
        piece, str
    ):
        line = _refused_request_line(exc)
        if line is not None and logged_request_line(line) != line:
            return gunicorn_errors.InvalidRequestLine(logged_request_line(line))
    path = getattr(req, "path", None)
    if isinstance(exc, gunicorn_errors.ConfigurationProblem) and isinstance(path, str) and isinstance(exc.info, str):
        exc.info = exc.info.replace(repr(path), repr(logged_request_line(path)))
    return exc


def _leading_name(line: str) -> str:
    """The header name ``line`` starts with, where a space or a tab follows it; else ''."""
    name = re.match(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]", line)
    return name.group(1) if name else ""


def _shown_start(name: str, hidden: int) -> str:
    return f"{name!r} and {hidden} more character(s)" if name else f"{hidden} character(s)"


class _HeaderLineRefused(gunicorn_errors.InvalidHeader):
    """A header line with no name before a colon, as gunicorn's warning on it shows it: the
    header name it starts with, the rest counted, not quoted."""

    def __init__(self, line: str) -> None:
        super().__init__(_leading_name(line))
        self.hidden = len(line) - len(self.hdr)

    def __str__(self) -> str:
        shown = _shown_start(self.hdr, self.hidden)
        return f"Invalid HTTP Header: a line with no name before a colon, {shown} left out (they may hold a credential)"


class _HeaderNameRefused(gunicorn_errors.InvalidHeaderName):
    """A header name with a space inside (``Authorization Basic alice:...``: what comes before
    the first colon), as gunicorn's warning on it shows it: its first word, the rest counted."""

    def __init__(self, name: str) -> None:
        super().__init__(_leading_name(name))
        self.hidden = len(name) - len(self.hdr)

    def __str__(self) -> str:
        shown = _shown_start(self.hdr, self.hidden)
        return f"Invalid HTTP header name: {shown} left out (they may hold a credential)"


def _hide_header_line(exc: BaseException) -> BaseException:
    """gunicorn refuses a header line with no name before a colon (``Authorization Bearer <token>``,
    a cookie's ``Cookie session=...``) quoting all of it in its warning, and one whose name has a
    space inside quoting all it takes for the name (``Authorization Basic alice`` of
    ``Authorization Basic alice:secret``): a credential in the log. Such a refusal is made one that
    quotes only the header name the line starts with; the refusals that name a header (gunicorn
    passes those upper-cased, ``'AUTHORIZATION'``), or a name with a space at its end alone
    (``'Authorization '``), and those in gunicorn's own words (``'bare LF as line terminator'``)
    stay as they are."""
    line = getattr(exc, "hdr", None)
    if not isinstance(line, str):
        return exc
    if type(exc) is gunicorn_errors.InvalidHeaderName:
        return _HeaderNameRefused(line) if re.search(r"\S[ \t]+\S", line) else exc
    if type(exc) is not gunicorn_errors.InvalidHeader:
        return exc
    if _refused_whole_line(exc):
        return _HeaderLineRefused(line)
    # gunicorn's own words ("bare LF as line terminator") or a header's name ('CONTENT-LENGTH')
    # quote no line; a message taken over from another parser's error (raised while handling
    # it) might, so it is counted, not quoted
    if exc.__context__ is None or (gunicorn_message.TOKEN_RE.fullmatch(line) and line == line.upper()):
        return exc
    return _HeaderLineRefused(line)


def _refused_whole_line(exc: BaseException) -> bool:
    """Whether gunicorn raised ``exc`` for a whole header line (its ``curr``), not for a name."""
    trace = exc.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_code.co_name == "parse_headers" and frame.f_locals.get("curr") is getattr(exc, "hdr", None):
            return True
        trace = trace.tb_next
    return False


def _refused_request_line(exc: BaseException) -> str | None:
    """The request line gunicorn was reading when it raised ``exc`` (as gunicorn decodes it), or
    None: the exception names only the piece it refused, the method or the version."""
    trace = exc.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        line = frame.f_locals.get("line_bytes") if frame.f_code.co_name == "parse_request_line" else None
        if isinstance(line, bytes):
            return line.decode("latin-1")
        trace = trace.tb_next
    return None


def _headers_read(req: Any, exc: BaseException) -> list[tuple[str, str]] | None:
    """The headers gunicorn had read of the request it refuses with ``exc``: ``req``'s, or where
    it refused while still building the request (``req`` is then None: an ``Expect`` it does not
    meet, a ``Transfer-Encoding`` it cannot read, a header it cannot take), those it had read by
    then, so that a client's ``X-Request-ID`` sent among them is the refusal's id too. None
    where it had read none."""
    headers = getattr(req, "headers", None)
    if headers:
        return list(headers)
    found = None
    trace = exc.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        # Only gunicorn's request-building frames: reading f_locals of another (the worker's
        # handle(), whose ``except ... as e`` holds ``exc``) leaves a snapshot in that frame, a
        # cycle that keeps the request and its frames until the collector runs; and another
        # frame's ``headers`` may be anything.
        if frame.f_globals is vars(gunicorn_message):
            owner = frame.f_locals.get("self")
            if frame.f_code.co_name == "parse_headers" and isinstance(frame.f_locals.get("headers"), list):
                found = frame.f_locals["headers"] or found  # being read: those before the one refused
            elif isinstance(owner, gunicorn_message.Message) and isinstance(owner.headers, list) and owner.headers:
                found = owner.headers
        trace = trace.tb_next
    return list(found) if found else None


# The id of the request gunicorn is refusing in this thread, while it logs why (see ServerLog).
_REFUSING = threading.local()


# What to do instead of what gunicorn refused with these statuses.
_UNSUPPORTED = {
    501: "send the body with Content-Length, or as Transfer-Encoding: chunked alone",
    417: "the only expectation this server meets is Expect: 100-continue",
}

# How long a worker asked to stop gracefully (SIGTERM) goes on reading the requests still
# arriving before it stops reading them (a client sending its body as the stop comes gets it
# through); gunicorn keeps its kept-alive connections open as long.
STOP_ARRIVING_LINGER_SECONDS = float(getattr(gthread, "STOP_KEEPALIVE_LINGER", 2.0))
# A new connection's first bytes normally arrive with it; one that sends nothing waits in the
# poller (up to gunicorn's keep-alive time), not in a request thread.
FIRST_BYTES_WAIT_SECONDS = 0.05
# The longest a request thread waits for the next bytes of a request (its line, headers or
# body); a client that pauses longer is cut off (the app answers a body cut off that way 408).
CLIENT_READ_TIMEOUT_SECONDS = 10.0
# The longest a request thread waits for a client to take the next bytes of its answer; one
# that reads none of it for longer (its buffers full) is cut off.
CLIENT_WRITE_TIMEOUT_SECONDS = 10.0


# Graceful closes one worker lets linger in threads of their own at once (each holds a thread and
# the connection's file descriptor for up to gunicorn's 2 s); past it a close lingers where it is
# called, on the worker's main thread, as gunicorn's does, so clients that keep their sockets open
# cannot make a worker start threads without bound.
LINGERING_CLOSES_MAX = 64
# How long a worker that stops waits for its lingering closes: gunicorn's graceful close lingers
# for 2 s at most (gunicorn.util.close_graceful), and a little more for the threads to end.
LINGERING_CLOSE_WAIT_SECONDS = 2.5


def _closing_aside(close: Any, slots: threading.BoundedSemaphore) -> Any:
    """``close`` (a gunicorn connection's ``close(graceful=False)``), with a graceful close run
    in a daemon thread of its own while one of ``slots`` is free; otherwise (or where no thread
    can be started) where it is called."""

    def lingering() -> None:
        try:
            close(graceful=True)
        finally:
            slots.release()

    def closing(graceful: bool = False) -> None:
        if not graceful:
            close()
            return
        if slots.acquire(blocking=False):
            try:
                threading.Thread(target=lingering, name="lingering-close", daemon=True).start()
                return
            except RuntimeError:  # no thread to be had
                slots.release()
        close(graceful=True)

    return closing


def _wait_for_lingering_closes(slots: threading.BoundedSemaphore, count: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for every graceful close lingering in a thread of its own
    (:func:`_closing_aside`) to end, as each gives its one of the ``count`` ``slots`` back;
    whether they all did. The slots are free again as this returns."""
    deadline = time.monotonic() + seconds
    taken = 0
    try:
        while taken < count:
            if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                log.info("a stopping worker left a graceful close lingering past %g s", seconds)
                return False
            taken += 1
        return True
    finally:
        for _ in range(taken):
            slots.release()


def _closing_after_unread_body(app: Any, drain: int | None) -> Any:
    """``app`` (WSGI), answering ``Connection: close`` when the request's body is not read
    through and gunicorn will not discard what is left: a body over the size limit (413), one a
    route does not read (``/health``, a 404, a 405), a streamed one cut off at the limit.
    Before the next request on a connection gunicorn discards at most ``drain`` bytes of an
    unread body, and closes the connection otherwise, though its answer said ``keep-alive``:
    the client's next request on it then got no response at all.

    Also when the client asked to close among other options (``Connection: TE, close``, as
    libwww-perl sends): gunicorn heeds ``close`` only as the whole value, and kept the
    connection open. And on a 408 (the body stopped arriving, or came short): gunicorn cannot
    read past a body whose read failed and closes the connection, which the answer called
    keep-alive, so the client's next request on it got no response either; so on a body the
    worker stopped reading as it stops (:class:`_StoppableReader`)."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            body = environ.get("wsgi.input")
            reader = getattr(body, "reader", None)
            waiting = isinstance(reader, _ContinueOnRead) and reader.mark_answered()
            # the body's read failed, or the worker, stopping, stopped reading it: nothing more can be read
            cut_off = status.startswith("408") or _reading_stopped(reader)
            if waiting or cut_off or _asks_to_close(environ) or (drain is not None and _body_left(body, drain)):
                force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                if force_close is not None:  # gunicorn's response: says close, and closes
                    force_close()
            return start_response(status, headers, *exc_info)

        return app(environ, start)

    return wrapped


def _asks_to_close(environ: dict[str, Any]) -> bool:
    """Whether the request's ``Connection`` options (a comma-separated list) include ``close``."""
    options = environ.get("HTTP_CONNECTION", "")
    return "close" in (option.strip(" \t").lower() for option in options.split(","))


class _ContinueOnRead:
    """A request body's reader that sends ``100 Continue`` before its first read, unless the
    answer has begun. :meth:`mark_answered` marks that it has: a client still waiting for the
    ``100`` may never send the body, so the connection is closed rather than read on, where
    the client's next request would be taken for the rest of this body."""

    def __init__(self, reader: Any, sock: socket.socket) -> None:
        self.inner = reader
        self._sock = sock
        self._continued = False
        self._answered = False

    def read(self, size: int) -> bytes:
        if not self._continued and not self._answered:
            self._continued = True
            with contextlib.suppress(OSError):  # the client is gone: the read fails as for a body cut short
                self._sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        return self.inner.read(size)

    def mark_answered(self) -> bool:
        """Note that the answer starts; whether the client was never told to send its body."""
        self._answered = True
        return not self._continued


class _StoppableReader:
    """A request body's reader whose reads fail with :class:`ReadingStopped` once the worker,
    stopping, has stopped reading a body that had not all arrived (``stopped``): the app
    answers that 503, not a 408 that blames the client, and never takes what came for the
    whole body."""

    def __init__(self, reader: Any) -> None:
        self.inner = reader
        self.stopped = False

    def read(self, size: int) -> bytes:
        # a declared length: a read shorter than asked for met the end of what came
        expected = min(size, self.inner.length) if isinstance(self.inner, gunicorn_body.LengthReader) else None
        try:
            data: bytes = self.inner.read(size)
        except Exception as exc:  # a chunked body cut off: gunicorn's NoMoreData
            if self.stopped:
                raise ReadingStopped("the server stopped reading the request body as it stops") from exc
            raise
        if self.stopped and expected is not None and len(data) < expected:
            raise ReadingStopped("the server stopped reading the request body as it stops")
        return data

    def complete(self) -> bool:
        """Whether the whole body has arrived (been read from the connection)."""
        reader = self.inner
        if isinstance(reader, gunicorn_body.LengthReader):
            return bool(reader.length <= 0)
        if isinstance(reader, gunicorn_body.ChunkedReader):
            return reader.parser is None
        return bool(getattr(reader, "finished", True))


def _reading_stopped(reader: Any) -> bool:
    """Whether the worker stopped reading the body that ``reader`` (gunicorn's, wrapped) reads."""
    while isinstance(reader, (_ContinueOnRead, _StoppableReader)):
        if isinstance(reader, _StoppableReader) and reader.stopped:
            return True
        reader = reader.inner
    return False


def _innermost(reader: Any) -> Any:
    """gunicorn's own body reader under this module's wrappers of it."""
    while isinstance(reader, (_ContinueOnRead, _StoppableReader)):
        reader = reader.inner
    return reader


def _has_body(body: Any) -> bool:
    """Whether gunicorn's request ``body`` is chunked or declares a length over zero."""
    reader = _innermost(getattr(body, "reader", None))
    if isinstance(reader, gunicorn_body.LengthReader):
        return reader.length > 0
    return isinstance(reader, gunicorn_body.ChunkedReader)


def _body_left(body: Any, drain: int) -> bool:
    """Whether gunicorn's request ``body`` still holds at least ``drain`` unread bytes (a
    declared length), or is streamed and not read to its end (its length is unknown)."""
    reader = _innermost(getattr(body, "reader", None))
    if isinstance(reader, gunicorn_body.LengthReader):
        return reader.length + body.buf.tell() >= drain
    if isinstance(reader, gunicorn_body.ChunkedReader):
        return reader.parser is not None
    return False


def _stop_reading(connections: Any) -> None:
    """Shut the reading side of each of gunicorn's ``connections``: a read waiting on one
    returns at once with what came (a request cut short: closed, or its body answered 408),
    and the answer can still be written."""
    for conn in list(connections):  # a copy: request threads add and remove meanwhile
        with contextlib.suppress(OSError, AttributeError):  # closed already
            conn.sock.shutdown(socket.SHUT_RD)


def _time_out_reads(sock: socket.socket, seconds: float) -> None:
    """Make every blocking read of ``sock`` give up after ``seconds`` (``SO_RCVTIMEO``: the
    kernel's timeout, which gunicorn's switch to blocking mode leaves in place); a read that
    gives up raises ``BlockingIOError`` (EAGAIN)."""
    _set_kernel_timeout(sock, socket.SO_RCVTIMEO, seconds)


def _time_out_writes(sock: socket.socket, seconds: float) -> None:
    """Make every blocking write to ``sock`` give up after ``seconds`` without progress
    (``SO_SNDTIMEO``), raising ``BlockingIOError``; a send that moved a part of its bytes before
    the buffers filled returns that part, and the next one gives up: twice ``seconds`` at most.
    Without it, a client that sent requests and read none of the answers (pipelined ones, whose
    answers fill its buffers and the kernel's) held a request thread for good, and as many such
    clients as the worker has threads stopped it answering anyone. (gunicorn's ``sendfile``
    waits for the socket with no limit instead, so it is off.)"""
    _set_kernel_timeout(sock, socket.SO_SNDTIMEO, seconds)


def _set_kernel_timeout(sock: socket.socket, option: int, seconds: float) -> None:
    """Set the socket ``option`` (``SO_RCVTIMEO`` or ``SO_SNDTIMEO``) to ``seconds``, as the
    kernel's ``struct timeval``."""
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", whole, int((seconds - whole) * 1e6)))


def _in_a_write(tb: Any) -> bool:
    """Whether the traceback ``tb`` passes through gunicorn's write of an answer to the client."""
    return any(
        frame.f_code.co_name == "write" and frame.f_globals.get("__name__") == "gunicorn.util"
        for frame, _ in traceback.walk_tb(tb)
    )


class _ResponseCapture:
    """Stands in for the client's socket while gunicorn writes its HTML error page, to learn
    the status it chose (the status line is all that is kept)."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0  # "non-blocking already": gunicorn then writes without touching the mode

    def setblocking(self, flag: bool) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.data += data

    def send(self, data: bytes) -> int:
        self.data += data
        return len(data)

    def _status_line(self) -> list[str]:
        return self.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)

    def status(self) -> int | None:
        parts = self._status_line()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None

    def reason(self) -> str:
        parts = self._status_line()
        return parts[2] if len(parts) == 3 else "Error"


class ServerLog(Logger):
    """Gunicorn's logger, naming the address it listens at (with a socket per worker,
    ``SO_REUSEPORT``, the master holds no listening socket, and gunicorn's ``Listening at:``
    line would name none), and logging a client that stopped sending as one line. Its text
    lines show control characters as escapes, as the app's do."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            if handler.formatter is not None and not isinstance(handler.formatter, VisibleFormatter):
                handler.setFormatter(VisibleFormatter(handler.formatter))

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # a read that gave up (see _time_out_reads) is a client that stopped sending, not a
        # fault of the server: one line, no traceback
        if isinstance(sys.exc_info()[1], BlockingIOError) and msg == "Socket error processing request.":
            if _in_a_write(sys.exc_info()[2]):  # see _time_out_writes
                self.info("closed a connection that took none of its answer for %g s", CLIENT_WRITE_TIMEOUT_SECONDS)
            else:
                self.info("closed a connection whose request stopped arriving for %g s", CLIENT_READ_TIMEOUT_SECONDS)
            return
        if msg.startswith("Error handling request %s") and args and isinstance(args[-1], str):
            # a request that failed past the app (gunicorn's own line, with the path as sent): a
            # conversation's sender id as the access log writes it
            from legacy_assistant.web.logged import logged_request_line

            args = (*args[:-1], logged_request_line(args[-1]))
        super().exception(_with_request_id(msg), *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().warning(_with_request_id(msg), *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # a client that closed in the middle of its request line or headers: gunicorn's line
        # quoted what had come (a conversation's sender id, an Authorization header's token);
        # how much came is said instead
        args = tuple(_unquoted(arg) for arg in args)
        super().debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg.startswith("Listening at:") and args and not args[0]:
            bound = ",".join(f"http://{address}" for address in self.cfg.bind)
            args = (f"{bound} (a socket per worker)", *args[1:])
        super().info(msg, *args, **kwargs)


def _unquoted(arg: Any) -> Any:
    """``arg`` of a gunicorn line, but for a :class:`gunicorn.http.errors.NoMoreData`: how many
    bytes had come, not the bytes."""
    if isinstance(arg, gunicorn_errors.NoMoreData) and arg.buf:
        return f"No more data after {len(arg.buf)} bytes"
    return arg


def _with_request_id(msg: str) -> str:
    """``msg`` with `` id=ID`` where gunicorn logs it while refusing a request (the id its
    answer carries), else as it is."""
    request_id = getattr(_REFUSING, "request_id", None)
    return f"{msg} id={request_id}" if request_id and isinstance(msg, str) else msg


class JsonServerLog(ServerLog):
    """:class:`ServerLog` writing gunicorn's lines (``gunicorn.error``) as the app's are written
    with ``--log-format json``: one JSON object per line."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(log_format.JsonFormatter())


def _no_request_line(worker: Any, req: Any) -> None:
    """gunicorn's ``pre_request`` hook, without the DEBUG line gunicorn's own writes per request
    (``GET /api/v1/conversations/alice``): the path as sent, a conversation's sender id in full,
    which the access log writes as a digest (:func:`legacy_assistant.web.logged.logged_path`)."""


class GunicornServer(BaseApplication):
    """Serves :func:`legacy_assistant.web.create_app` under gunicorn, configured in code."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._metrics_dir: str | None = None
        self.registry: WorkerRegistry | None = None  # made by the master as it starts
        super().__init__()

    def load_config(self) -> None:
        o = self.options
        settings: dict[str, Any] = {
            "bind": [self.bind_address],
            "umask": unix_socket.SOCKET_UMASK if unix_socket.socket_path(o.host) is not None else None,
            "workers": o.workers,
            "threads": o.threads,
            "worker_connections": worker_connections(o.threads),
            "worker_class": ModelWorker,  # gthread, holding a reload until it serves; JSON errors
            "timeout": o.timeout,
            "graceful_timeout": o.graceful_timeout,
            "keepalive": o.keepalive,
            "reuse_port": self.reuse_port,
            "preload_app": False,  # the model is loaded in each worker, after the fork
            "accesslog": None,  # the app logs one line per request, with its request id
            "pre_request": _no_request_line,
            # gunicorn's pure-Python parser even where gunicorn_h1c (gunicorn[fast]) is installed:
            # the request line it refuses is what _hide_sender reads to write a sender id hidden,
            # and the parser whose refusals and limits this server's answers were made for
            "http_parser": "python",
            # no header sets the prefix: SCRIPT_NAME comes from the environment only. gunicorn
            # otherwise took a SCRIPT_NAME header from any address FORWARDED_ALLOW_IPS trusts (this
            # machine's, by default) in its place, so a client through a proxy that passes the
            # header on chose the prefix (GET /x/health with SCRIPT_NAME: /x was answered as /health),
            # and with it which route a path reaches, past a proxy's rules on paths
            "forwarder_headers": "",
            # nor does any header set the scheme: nothing here reads it (a redirect names a path
            # alone), and gunicorn refused with 400 ("Contradictory scheme headers", answered as
            # "not valid HTTP") every request from a trusted address (this machine's, any peer of
            # a Unix socket) whose X-Forwarded-Proto, X-Forwarded-Protocol and X-Forwarded-Ssl
            # disagreed: a client could send one the proxy passes on beside the proxy's own
            "secure_scheme_headers": {},
            # files (/static/) are written with send() like any answer: gunicorn's sendfile waits
            # with no limit for a client that reads nothing, past the write timeout
            # (_time_out_writes), and holds its request thread for good
            "sendfile": False,
            "errorlog": "-",
            "logger_class": JsonServerLog if o.log_format == "json" else ServerLog,
            "loglevel": o.log_level,
            "proc_name": "legacy-assistant",
            "control_socket_disable": True,
            "worker_tmp_dir": shared_memory_dir(),  # else gunicorn's default, the temporary folder
            "on_starting": self._on_starting,
            "post_worker_init": self._post_worker_init,
            "child_exit": self._child_exit,
            "worker_exit": self._worker_exit,
        }
        for key, value in settings.items():
            if value is not None and key in self.cfg.settings:
                self.cfg.set(key, value)

    @property
    def bind_address(self) -> str:
        """gunicorn's ``bind``: ``HOST:PORT``, ``[IPV6]:PORT`` or ``unix:PATH``."""
        o = self.options
        path = unix_socket.socket_path(o.host)
        if path is not None:
            return f"unix:{path}"
        return f"{bracketed(o.host)}:{o.port}"

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
        return (
            self.options.reuse_port
            and self.options.port != 0
            and unix_socket.socket_path(self.options.host) is None  # one socket file, shared
            and hasattr(socket, "SO_REUSEPORT")
        )

    def load(self) -> Any:
        """Runs in each worker after the fork: build the app, which loads the model.

        A model or store that cannot be used is one log line, not a traceback per worker;
        ``serve`` checks what it can before any worker starts. At start-up the worker then
        fails to boot, and gunicorn stops the server. Once the server has served, the worker
        only exits, after :data:`WORKER_RETRY_SECONDS`, and gunicorn starts another: a worker
        restarted (killed, timed out, ``TTIN``) while the model on disk is damaged or the store
        is down would otherwise take the whole server, and its healthy workers, down with it.
        Any other failure then is handled the same way, and logged with its traceback."""
        config = dict(self.options.app_config)
        master = os.getppid()
        config["ON_RELOADED"] = lambda: os.kill(master, signal.SIGHUP)
        if self.registry is not None:
            config["READINESS"] = self.registry.status
        try:
            metrics_folder.remake_if_removed()  # before the metrics are imported: they write there
            from legacy_assistant.web import create_app

            return create_app(config)
        except Exception as exc:
            known = isinstance(exc, AssistantError)  # a model or store that cannot be used: no traceback
            if self.registry is None or not self.registry.has_served():
                if not known:
                    raise  # gunicorn's traceback, and the server stops
                log.error("worker %d cannot start: %s", os.getpid(), exc)
                sys.exit(Arbiter.WORKER_BOOT_ERROR)
            delay = min(WORKER_RETRY_SECONDS, self.options.timeout / 2)  # gunicorn kills a silent worker
            log.error(
                "worker %d cannot start: %s; the server goes on with the workers that serve, and a new "
                "worker tries again in %g s",
                os.getpid(),
                exc if known else f"{type(exc).__name__}: {exc}",
                delay,
                exc_info=not known,
            )
            _wait_unless_stopped(delay)
            sys.exit(1)

    def run(self) -> None:
        if "tensorflow" in sys.modules:
            raise RuntimeError(
                "TensorFlow is loaded in the gunicorn master; its thread pools do not survive fork. "
                "Start it with 'legacy-assistant serve', which runs the server in a fresh interpreter."
            )
        path = unix_socket.socket_path(self.options.host)
        if os.environ.get("GUNICORN_PID"):
            pass  # a USR2 upgrade (gunicorn sets it): the old master's sockets are in use by design
        elif path is not None:
            problem = unix_socket.socket_problem(path)
            if problem is not None:
                log.error("%s", problem)
                raise SystemExit(1)
        elif self.reuse_port:
            refuse_port_in_use(self.options.host, self.options.port)
        refuse_small_redis_pool(self.options)
        master = os.getpid()
        try:
            ReloadingArbiter(self).run()
        except RuntimeError as exc:
            log.error("gunicorn could not start: %s", exc)
            raise SystemExit(1) from None
        finally:
            # however the master ends: not gunicorn's on_exit hook, which only its halt calls (a
            # master that failed as it started, a port taken with --no-reuse-port, left both
            # folders, and the readiness folder, naming no master yet, was never removed). Workers
            # leave run() too (SystemExit), and must not remove them.
            if os.getpid() == master:
                self._remove_folders()

    # hooks (gunicorn calls them with the arbiter or the worker)
    def _on_starting(self, arbiter: Any) -> None:
        directory = os.environ.get(METRICS_ENV)
        if directory:
            metrics_folder.clear_stale_metrics(directory)
        else:
            self._metrics_dir = metrics_folder.make_metrics_dir()
            os.environ[METRICS_ENV] = self._metrics_dir
        self.registry = WorkerRegistry.create()

    def _post_worker_init(self, worker: Any) -> None:
        """The app is built: reloads may come now. SIGHUP has been blocked since the worker
        started (:class:`ModelWorker`); one that arrived meanwhile is delivered on unblocking."""
        from legacy_assistant.web.admin import reload_in_background

        app = worker.wsgi

        def on_hup(signum: int, frame: Any) -> None:
            # the reload's thread starts on the main loop: a thread started inside a signal handler
            # may wait for a lock of the threading module that the interrupted code holds (the
            # method queue's put may be called from a signal handler)
            worker.method_queue.defer(reload_in_background, app, "SIGHUP")

        signal.signal(signal.SIGHUP, on_hup)
        if self.registry is not None:
            self.registry.mark_ready(os.getpid())
        if signal.SIGHUP in signal.sigpending():
            log.info("a reload was asked for while this worker started: reloading now")
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})

    def _worker_exit(self, arbiter: Any, worker: Any) -> None:
        """In the worker, as it ends (its requests done, or the graceful time over): close the
        conversation store (:func:`legacy_assistant.web.app.close_store`)."""
        app = getattr(worker, "wsgi", None)  # none when the app did not load
        if app is not None and hasattr(app, "extensions"):
            from legacy_assistant.web.app import close_store

            close_store(app)

    def _child_exit(self, arbiter: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
        directory = os.environ.get(METRICS_ENV)
        if directory:
            metrics_folder.remove_zero_metrics(directory, worker.pid)
        if self.registry is not None:
            self.registry.forget(worker.pid)
            if self._early_death(arbiter, worker.pid):
                arbiter.early_deaths += 1
                # each worker died once, and one twice (3 at least): a few killed while many load
                # at once do not stop a server whose other workers may yet serve
                if arbiter.early_deaths >= max(EARLY_DEATHS_BEFORE_HALT, arbiter.num_workers + 1):
                    raise HaltServer(early_deaths_reason(arbiter.early_deaths), Arbiter.WORKER_BOOT_ERROR)

    def _early_death(self, arbiter: Any, pid: int) -> bool:
        """Whether worker ``pid`` ended on its own before any worker served. Unknown when the
        registry cannot be trusted to say (its folder gone, or a write of it failed): then no."""
        if pid in arbiter.retired:
            arbiter.retired.discard(pid)
            return False
        registry = self.registry
        return registry is not None and not arbiter.stopping and registry.intact() and not registry.has_served()

    def _remove_folders(self) -> None:
        """Remove the metrics folder this master made and its readiness folder."""
        if self._metrics_dir:
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
        if self.registry is not None:
            self.registry.remove()


def early_deaths_reason(deaths: int, memory_limit: int | None = None) -> str:
    """Why the master stops after ``deaths`` workers ended before any served (gunicorn's lines
    above say how each ended). ``memory_limit``: the cgroup's, in bytes (read when None)."""
    limit = memory_limit_bytes() if memory_limit is None else memory_limit
    where = f"this cgroup's is {limit / 2**20:,.0f} MiB" if limit else "no cgroup limit was found"
    return (
        f"{deaths} workers ended before any served. Killed with SIGKILL while loading, a worker most "
        f"often met the memory limit ({where}; a worker with both shipped models counts about 300 "
        "MiB in a container): raise it, or lower --workers. Killed for WORKER TIMEOUT, it needs a "
        "longer --timeout"
    )


def _wait_unless_stopped(seconds: float) -> None:
    """Sleep ``seconds``, or until the master asks this worker to stop (SIGTERM)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    signal.sigtimedwait({signal.SIGTERM}, seconds)


def refuse_port_in_use(host: str, port: int) -> None:
    """Exit with a clear message when ``host:port`` is taken.

    Sockets with ``SO_REUSEPORT`` may share a port with other such sockets of the same user, so
    a second server started on the same port by mistake would silently take half the traffic.
    A plain bind, without that flag, fails on any port in use, which is what this checks.
    """
    problem = listen_problem(host, port)
    if problem is not None:
        log.error("%s (choose another --host or --port)", problem)
        raise SystemExit(1)


def redis_pool_problem(options: ServerOptions) -> str | None:
    """Why the Redis store's URL limits each worker's connections (``?max_connections=``) too
    much for its request threads, or None: under load its requests would get 503 at once (see
    :func:`legacy_assistant.stores.redis_store.pool_size_problem`)."""
    from legacy_assistant.stores.base import REDIS_SCHEMES

    url = options.app_config.get("STORE_URL")
    if not isinstance(url, str) or not url.startswith(REDIS_SCHEMES):
        return None
    from legacy_assistant.stores.redis_store import pool_size_problem

    return pool_size_problem(url, options.threads)


def refuse_small_redis_pool(options: ServerOptions) -> None:
    """Exit with :func:`redis_pool_problem`'s message, if any (options not made by
    :meth:`ServerOptions.from_settings`, which refuses them, such as a server started in code)."""
    problem = redis_pool_problem(options)
    if problem is not None:
        log.error("%s", problem)
        raise SystemExit(1)


# What gunicorn's USR2 upgrade hands the master it starts: the old master's pid and listening
# sockets. Inherited by `serve` (from a process a server of gunicorn's started), they made the
# server take itself for such a master and stop with a KeyError traceback, or with GUNICORN_FD
# too, listen on whatever descriptors it named instead of --port.
UPGRADE_ENV = ("GUNICORN_PID", "GUNICORN_FD")


def exec_server(options: ServerOptions, python: str = sys.executable) -> NoReturn:
    """Replace this process with a fresh interpreter running the server (same pid, clean
    imports), with :data:`STOP_SIGNALS` blocked until its master handles them.

    Blocked, a stop signal sent while the server starts stays pending across the exec until
    gunicorn's handlers take it. Otherwise, as a container's PID 1 (``docker run`` without
    ``--init``), the kernel drops a signal that has no handler, and the container waited out its
    grace period; elsewhere it killed the master before it could clean up. The other threads of
    this process must block them too, or one of them takes the signal and the exec loses it:
    the CLI starts them so (:mod:`legacy_assistant.common.stop_signals`)."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:  # None: the descriptor was closed as Python started
            stream.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for name in UPGRADE_ENV:
            if os.environ.pop(name, None) is not None:
                log.warning("%s is ignored: gunicorn sets it for the master it starts on USR2, which this is not", name)
        os.environ[PRIVATE_ENV] = options.private_json()
        # not python -m: that puts the working folder's modules first on the path (launch.py)
        command = launch.command("legacy_assistant.serving.server:main", options.to_json(), python=python)
        # One that a thread not started so (a library's, later) took for Python before the
        # block has its handler run here, at this check, rather than lost with the exec
        signal.pthread_sigmask(signal.SIG_BLOCK, set())
        os.execv(python, command)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m legacy_assistant.serving.server OPTIONS_JSON``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(
            "usage: python -m legacy_assistant.serving.server OPTIONS_JSON (see 'legacy-assistant serve')",
            file=sys.stderr,
        )
        return 2
    # PRIVATE_ENV stays in the environment: gunicorn's USR2 upgrade starts the new master with
    # this command line and this environment, and it needs the store URL as much as this one
    options = ServerOptions.from_json(args[0])
    log_format.configure(options.log_format, getattr(logging, options.log_level.upper(), logging.INFO))
    GunicornServer(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
