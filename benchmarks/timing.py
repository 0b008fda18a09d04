"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def median_us(fn: Callable[[], object], calls: int, warmup: int = 50) -> float:
    """Median wall time of one call of ``fn``, in microseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def threads_elapsed(
    fn: Callable[[], object], threads: int, calls: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """``clock``'s advance (seconds) while ``threads`` threads each call ``fn`` ``calls`` times
    at once; ``time.process_time`` gives the CPU they used, the default the wall time."""

    def work() -> None:
        for _ in range(calls):
            fn()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    start = clock()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return clock() - start


def _whole_number(text: str, low: int, high: float, expected: str) -> int:
    """``text`` as a whole number from ``low`` to ``high``; an argparse error saying ``expected``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (a count of calls, rounds, threads ...)."""
    return _whole_number(text, 1, math.inf, "a whole number >= 1")


def thread_pool_size(lowest: int) -> Callable[[str], int]:
    """argparse type: a TensorFlow thread pool's size, a whole number from ``lowest`` (0:
    TensorFlow's choice; -1 for an inter-op pool: ops in the calling thread) to the library's
    limit, checked before the models load (or a small one trains for minutes)."""
    from legacy_assistant.common.limits import MAX_THREADS

    def size(text: str) -> int:
        return _whole_number(text, lowest, MAX_THREADS, f"a whole number from {lowest} to {MAX_THREADS}")

    return size


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (a duration in seconds ...)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def output_file(text: str) -> Path:
    """argparse type: a file a benchmark writes when it ends (``--json``), checked now, so that a
    path it cannot write is a usage error at once rather than an error after the measuring."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no folder {folder}")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text}: not writable")
    return path


def once(option: str, values: Sequence[T]) -> list[T]:
    """``values`` of ``option`` without repeats, in their order; a note on stderr names those given
    more than once (each would have been measured again, at the cost of a whole run, and printed
    as a second row of the same name). Numbers are compared as numbers (``--waits-ms 0,0.0`` is
    one value) and named as ``:g`` writes them."""
    repeated = [value for value in dict.fromkeys(values) if values.count(value) > 1]
    if repeated:
        shown = [format(value, "g") if isinstance(value, float) else str(value) for value in repeated]
        if all(isinstance(value, str) for value in repeated):
            shown.sort()
        print(f"note: {option} {', '.join(shown)} given more than once; each is measured once", file=sys.stderr)
    return list(dict.fromkeys(values))


def port_number(text: str) -> int:
    """argparse type: a TCP port number, 1 to 65535."""
    return _whole_number(text, 1, 65535, "a port number (1-65535)")


def server_ports(count: int, first: int | None = None, host: str = "127.0.0.1") -> list[int]:
    """``count`` different TCP ports on ``host`` for the servers a benchmark starts.

    With ``first``: ``first``, ``first + 1`` ..., each checked free now; one that is taken is a
    ``SystemExit`` naming it (a server listening with ``SO_REUSEPORT``, as gunicorn's
    ``--reuse-port`` does, shares a port with another such socket of the same user, and would
    measure both). Without: free ports the system picks, all held open until every one is picked,
    so that no two are the same (picked one at a time, each closed again before any server had
    bound it, two servers of one run could be given the same port).
    """
    from legacy_assistant.serving.ports import listen_problem

    if first is not None:
        ports = list(range(first, first + count))
        if ports and ports[-1] > 65535:
            raise SystemExit(f"{count} port(s) from {first} go past 65535: choose a lower first port")
        for port in ports:
            problem = listen_problem(host, port)
            if problem is not None:
                raise SystemExit(f"{problem} (the servers of this run use {len(ports)} port(s) from {first})")
        return ports
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probes.append(probe)
            probe.bind((host, 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


# The servers the benchmarks start are on this machine: asked directly, never through a proxy of
# the environment (with http_proxy set and 127.0.0.1 not in no_proxy, urllib sent every request
# of a run to the proxy, which failed it or could not reach back).
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def open_local(request: urllib.request.Request | str, timeout: float) -> Any:
    """``urllib.request.urlopen`` for a server on this machine, bypassing any proxy."""
    return _DIRECT.open(request, timeout=timeout)


def stop_process(process: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    """Ask ``process`` to end (SIGTERM) and wait up to ``grace_seconds``; kill it where it has not
    ended by then (a server stuck in its shutdown), so that no benchmark leaves one running."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_main(main: Callable[[], object]) -> None:
    """Run a benchmark's ``main()``: what the user can fix (a bad model or data path, an unwritable
    output, a child benchmark process that failed after printing its reason) is one ``error:``
    line and exit status 1, not a traceback; Ctrl-C is status 130."""
    from legacy_assistant.errors import AssistantError

    # SIGTERM (timeout, a CI job cancelled) and SIGHUP (a closed terminal) end the run as Ctrl-C
    # does, through every finally: the servers a benchmark started run in sessions of their own,
    # which no signal to this process group reaches, and were left running
    for stop in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(stop) is not signal.SIG_IGN:  # `nohup` ignores SIGHUP: it stays ignored
            signal.signal(stop, _raise_stopped)
    try:
        main()
    except BrokenPipeError:
        # the reader of the output went away (`... | head`): as the command line does, exit as a
        # process stopped by SIGPIPE, silently, with nothing left to flush into the closed pipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except (AssistantError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except subprocess.CalledProcessError as exc:
        # a child whose output was captured has its message here, not on the terminal
        said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        if said.strip():
            print(said.rstrip(), file=sys.stderr)
        print(f"error: a child process ended with status {exc.returncode} (its message is above)", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Stopped as exc:
        print(f"stopped by {signal.Signals(exc.signal_number).name}", file=sys.stderr)
        sys.exit(128 + exc.signal_number)


class Stopped(BaseException):
    """SIGTERM or SIGHUP, raised in the main thread so that cleanup runs (a BaseException, as
    KeyboardInterrupt is: no ``except Exception`` swallows it)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def _raise_stopped(signal_number: int, frame: object) -> None:
    raise Stopped(signal_number)
