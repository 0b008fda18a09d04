"""``legacy-assistant``: train, inspect, chat with and serve intent models and generative responders.

Each subcommand lives in its own module with ``register(subparsers)`` and a ``run(args)`` that
returns the exit status. Errors this package raises on purpose are printed as one clear message
(exit status 1), never as a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import io
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from compat.failures import tensorflow_error_text
from legacy_assistant import __version__
from legacy_assistant.common.limits import address_space_note
from legacy_assistant.common.stop_signals import stop_signals_blocked_for_new_threads
from legacy_assistant.common.terminal import visible
from legacy_assistant.errors import AssistantError

# --help's description: the docstring's first line, kept here as well because Python run with
# -OO (PYTHONOPTIMIZE=2) drops docstrings, and the parser could not be built from None
DESCRIPTION = "legacy-assistant: train, inspect, chat with and serve intent models and generative responders."

COMMANDS = (
    "train",
    "evaluate",
    "info",
    "chat",
    "serve",
    "golden",
    "migrate",
    "import-classic",
    "train-responder",
    "evaluate-responder",
    "reexport-responder",
    "playground",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="legacy-assistant", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # one or the other: given both, --verbose won over --quiet without a word
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    loudness.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"legacy_assistant.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


# the program's own options: read before the command, as its usage line shows them
_PROGRAM_OPTIONS = ("-v", "--verbose", "-q", "--quiet")


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, where ``-v`` or ``-q`` given after the command (``serve -v``)
    is refused with where it goes: argparse said only "unrecognized arguments: -v"."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        message = f"unrecognized arguments: {' '.join(extras)}"
        misplaced = next((word for word in extras if word in _PROGRAM_OPTIONS), None)
        if misplaced is not None:
            message += (
                f" ({misplaced} is an option of legacy-assistant itself: give it before the command, "
                f"'legacy-assistant {misplaced} {args.command} ...')"
            )
        parser.error(message)
    return args


def _open_standard_descriptors() -> None:
    """Point standard descriptors that are closed (``serve >&- 2>&-``, a daemon's launcher) at
    /dev/null. Left closed, the next file or socket opened takes the number: ``serve``'s master
    stopped with a traceback (no ``sys.stdout`` to flush) or said nothing at all, and what
    TensorFlow's C++ code writes to descriptor 2 would have gone into whatever held it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one, as a rule
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)
            if fd == 2 and sys.stderr is None:
                # Python made no sys.stderr, and print(..., file=None) writes to standard output:
                # an error line would land in the command's output
                sys.stderr = open(fd, "w", errors="backslashreplace", closefd=False)


def main(argv: Sequence[str] | None = None) -> int:
    _open_standard_descriptors()
    # A terminal or pipe whose encoding cannot show a reply's or an intent's characters gets
    # replacement characters, not a UnicodeEncodeError halfway through the output.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")
    if isinstance(sys.stderr, io.TextIOWrapper):
        sys.stderr.reconfigure(errors="backslashreplace")  # a file name's odd bytes stay readable
    # SIGTERM is handled from here on, the imports included: a container's PID 1 (a server run
    # without --init) would otherwise lose one sent while it starts, as the kernel drops a signal
    # that has no handler there. SIGHUP's ignoring comes first: from the SIGTERM handler's start
    # on, its KeyboardInterrupt must find the try below, not a signal call on the way to it.
    with (
        _reload_ignored_while_serve_starts(argv),
        _terminate_as_interrupt() as terminated,
        _stops_wait_for_tensorflow_locks(),
    ):
        try:
            # imports every command (NLTK, numpy): Ctrl-C may come that early, and takes effect as
            # they end (a second or so). The threads they start (numpy's BLAS pool) never take a
            # stop signal, which stays the main thread's
            with stop_signals_blocked_for_new_threads():
                parser = build_parser()
            args = parse_arguments(parser, argv)
        except KeyboardInterrupt:
            say_stopped("terminated" if terminated else "interrupted", argv)
            status = 128 + terminated[0] if terminated else 130
        else:
            level = logging.DEBUG if args.verbose else logging.ERROR if args.quiet else logging.INFO
            logging.basicConfig(level=level, handlers=[_text_log_handler()])
            # serve says it in its server's log format (JSON, or text with the process id)
            if args.command != "serve" and (note := address_space_note()) is not None:
                logging.getLogger(__name__).warning("%s", note)
            status = _run(args, terminated, argv)
    if argv is None:  # the program itself (the console script, python -m), not a caller's call
        _stop_signals_end_with(status)
    return status


def _text_log_handler() -> logging.Handler:
    """Standard error, in the text lines ``serve`` writes (their time with its UTC offset)."""
    from legacy_assistant.serving.log_format import CLI_TEXT_FORMAT, TextFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter(CLI_TEXT_FORMAT))
    return handler


def _stop_signals_end_with(status: int) -> None:
    """From here to the process's end, Ctrl-C or SIGTERM ends the process at once with the
    command's own ``status``: the command is over, its output written. The interpreter's shutdown
    (TensorFlow's teardown, half a second) took one as a kill, without a word, that turned a
    finished command into a stopped one. Not while a thread that the shutdown waits for still
    runs: a stop then stops that thread's work, as before."""
    if threading.current_thread() is not threading.main_thread():
        return
    if any(not thread.daemon and thread is not threading.main_thread() for thread in threading.enumerate()):
        return

    def leave(signum: int, frame: object) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # closed, or the reader gone
                if stream is not None:
                    stream.flush()
        os._exit(status)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, leave)


def say_stopped(word: str, argv: Sequence[str] | None) -> None:
    """Print ``word`` ("interrupted", "terminated") on stderr: as a JSON record where the command
    is a server whose log lines are JSON objects, so that its last line is one too."""
    quiet_what_a_stop_left_unused()
    if _json_logs(argv):
        from legacy_assistant.serving.log_format import JsonFormatter

        print(
            JsonFormatter().format(logging.LogRecord(__name__, logging.INFO, "", 0, word, None, None)), file=sys.stderr
        )
    else:
        print(visible(word), file=sys.stderr)  # it may name the model written (--out)


def quiet_what_a_stop_left_unused() -> None:
    """Keep TensorFlow from logging, after the stop's own line, a dozen lines of "ERROR ... Object
    was never used" for each op whose graph a stop left half built (seen on Ctrl-C as a model is
    built): the op is unused because the run stopped, which is no error of the run's."""
    logger = logging.getLogger("tensorflow")
    if _not_unused_after_a_stop not in logger.filters:
        logger.addFilter(_not_unused_after_a_stop)


def _not_unused_after_a_stop(record: logging.LogRecord) -> bool:
    return "Object was never used" not in str(record.msg)


def _command(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names, before argparse has read it: its first word that is no
    option (the options before the command are flags only)."""
    words = sys.argv[1:] if argv is None else argv
    return next((word for word in words if not word.startswith("-")), None)


def _json_logs(argv: Sequence[str] | None) -> bool:
    """Whether the command's log lines are JSON: the handler serve installed, or (stopped before
    it got that far) serve's --log-format json or its environment variable."""
    from legacy_assistant.serving.log_format import JsonFormatter

    if any(isinstance(handler.formatter, JsonFormatter) for handler in logging.getLogger().handlers):
        return True
    if _command(argv) != "serve":
        return False
    words = list(sys.argv[1:] if argv is None else argv)
    from legacy_assistant.serving.settings import ENV_PREFIX

    chosen = os.environ.get(ENV_PREFIX + "LOG_FORMAT", "")
    for index, word in enumerate(words):  # the last one given wins, as in argparse
        name, equals, value = word.partition("=")
        # argparse takes any prefix that names one option: --log-format is serve's only one from --l
        if len(name) > 2 and "--log-format".startswith(name):
            chosen = value if equals else words[index + 1] if index + 1 < len(words) else ""
    return chosen.strip() == "json"


def _run(args: argparse.Namespace, terminated: list[int], argv: Sequence[str] | None = None) -> int:
    # here, not at the top: it imports numpy, whose threads main() starts with stop signals blocked
    from compat.selection import UnknownRuntime

    try:
        status = int(args.run(args) or 0)
        if terminated:  # a command that ends quietly on Ctrl-C (a server) still reports SIGTERM
            if status != 128 + terminated[0]:  # unless it said so itself (train-responder)
                say_stopped("terminated", argv)
            return 128 + terminated[0]
        if sys.stdout is not None:
            sys.stdout.flush()  # here, where a reader that went away is handled, not at exit
        return status
    except BrokenPipeError as exc:
        if not _reader_gone(sys.stdout):
            print(f"error: {visible(str(exc))}", file=sys.stderr)
            return 1
        # the reader of the output went away (`... | head`): it had what it asked for. Exit as a
        # process stopped by SIGPIPE reports (128 + 13), without a message, and keep Python from
        # failing again as it flushes the closed pipe at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except AssistantError as exc:
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # a path that cannot be read or written: the system's reason, one line
        print(f"error: {visible(str(exc))}{_working_directory_gone(exc)}", file=sys.stderr)
        return 1
    except UnknownRuntime as exc:  # LEGACY_ASSISTANT_RUNTIME, read when the first model loads
        print(f"error: {visible(str(exc))}", file=sys.stderr)
        return 1
    except Exception as exc:
        # TensorFlow's errors of the disk, memory or permissions (a full disk under a SavedModel
        # or checkpoint write) in one line; anything else is a bug, and its traceback is what to report
        said = tensorflow_error_text(exc)
        if said is None:
            raise
        logging.getLogger(__name__).debug("TensorFlow error", exc_info=True)
        print(f"error: {visible(said)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        from legacy_assistant.artifacts.directory import written_before_stop

        written = written_before_stop(stop)
        # the model was in place before the stop: a stop that replaced nothing is what a user takes it for
        after = f" after the new model was written: {written} holds it, whole" if written is not None else ""
        say_stopped(("terminated" if terminated else "interrupted") + after, argv)
        return 128 + terminated[0] if terminated else 130


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM (``kill PID``, a supervisor, ``timeout``) ends a command as Ctrl-C does: the same
    clean-up (no staging folder left, a child process stopped, a training checkpoint kept). Python
    would otherwise die at once. Yields a list that holds the signal's number once it came. Only
    where SIGTERM still has its default handler, in the main thread; the old handler comes back."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield received
        return

    def interrupt(signum: int, frame: object) -> None:
        received.append(signum)
        stop = KeyboardInterrupt()
        stop.signum = signum  # type: ignore[attr-defined]  # as training's stop carries it
        raise stop

    signal.signal(signal.SIGTERM, waiting_for_tensorflow_locks(interrupt))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# TensorFlow's graph lock (GroupLock, taken as ops, gradients and while loops are added to a graph
# and as a SavedModel is imported) holds a plain lock between two lines of Python: a
# KeyboardInterrupt raised there leaves it held, and the command then waited on it for ever
TENSORFLOW_LOCK_FILE = os.path.join("tensorflow", "python", "util", "lock_util.py")
STOP_RETRY_SECONDS = 0.01


def in_tensorflow_lock(frame: Any) -> bool:
    """Whether ``frame`` (the one a signal handler is given) or a frame that called it runs
    TensorFlow's graph lock code."""
    while frame is not None:
        if frame.f_code.co_filename.endswith(TENSORFLOW_LOCK_FILE):
            return True
        frame = frame.f_back
    return False


def waiting_for_tensorflow_locks(handler: Any) -> Any:
    """``handler`` of a stop signal, which takes a stop that comes inside TensorFlow's graph lock
    code a moment later (the signal is sent again), once that code has left its lock consistent."""

    def handle(signum: int, frame: Any) -> Any:
        if in_tensorflow_lock(frame):
            again = threading.Timer(STOP_RETRY_SECONDS, os.kill, (os.getpid(), signum))
            again.daemon = True
            again.start()
            return None
        return handler(signum, frame)

    handle.wrapped = handler  # type: ignore[attr-defined]
    return handle


@contextlib.contextmanager
def _stops_wait_for_tensorflow_locks() -> Iterator[None]:
    """Ctrl-C waits until TensorFlow's graph lock code is left (see
    :func:`waiting_for_tensorflow_locks`): a stop at that moment hung the command, without a word,
    until a second one. Only where SIGINT has Python's own handler, in the main thread (a host
    program's handler is its own; SIGTERM's from :func:`_terminate_as_interrupt` waits too); the
    old handler comes back."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    signal.signal(signal.SIGINT, waiting_for_tensorflow_locks(signal.default_int_handler))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _reload_ignored_while_serve_starts(argv: Sequence[str] | None) -> Iterator[None]:
    """For ``serve``: ignore SIGHUP (a reload) until the server takes it over, gunicorn's master
    as it starts (an ignored signal stays ignored across the exec), --dev before it loads. Its
    default action ended the command while it imported and checked the models, or the server
    before its handler was in: status 129, without a word, for a reload sent as a deploy starts
    or restarts the service. Nothing is lost: no model is loaded yet, and the workers read the
    directory as it is then. The old handler comes back where the command ends without serving.
    Windows has no SIGHUP: nothing to ignore there."""
    if (
        _command(argv) != "serve"
        or threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "SIGHUP")
    ):
        yield
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)


def _working_directory_gone(exc: OSError) -> str:
    """What to add to ``exc``'s message where it came from a working directory that was deleted
    (a relative path made absolute needs it): the system says only "[Errno 2] No such file or
    directory", naming no file."""
    if exc.filename is not None or exc.errno != errno.ENOENT:
        return ""
    try:
        os.getcwd()
    except FileNotFoundError:
        return ": the working directory no longer exists (deleted); cd to a folder that does, or give absolute paths"
    return ""


def _reader_gone(stream: Any) -> bool:
    """Whether ``stream`` is a pipe whose reading end was closed (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll on this system, no file descriptor
        return False


if __name__ == "__main__":
    sys.exit(main())
