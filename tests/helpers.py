"""Paths and small helpers shared by the tests; import them as ``from tests.helpers import ...``.

Every path is built from the repository root, never from the working directory, so the suite
runs the same from anywhere (``pytest /path/to/repo/tests``).
"""
from __future__ import annotations

import contextlib
import os
import signal
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = ROOT / "tests" / "data"
TINY_INTENTS = TEST_DATA / "tiny_intents.json"
DEFAULT_MODEL = ROOT / "exported" / "default"
DEFAULT_RESPONDER = ROOT / "exported" / "responder"
SHIPPED_INTENTS = ROOT / "data" / "intents.json"


def needs(what: str, why: str) -> None:
    """Skip for lack of ``what`` locally; under CI (``CI=true``) a missing tool is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI=true: {why}")
    pytest.skip(f"{what} not available: {why}")


class FakeClock:
    """A clock the test moves by hand: ``clock()`` reads it, ``clock.advance(seconds)`` moves it."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def intercept_respond(patch: pytest.MonkeyPatch, hook) -> None:
    """Make every ``Responder.respond`` call ``hook(context, condition, mode, seed)`` first (to
    note the call, or to raise in its place), then answer as usual; ``patch`` undoes it."""
    from legacy_assistant.responder.responder import Responder

    respond = Responder.respond

    def intercepted(self, context, condition=None, mode="greedy", seed=None, condition_strength=None):
        hook(context, condition, mode, seed)
        return respond(self, context, condition, mode, seed, condition_strength)

    patch.setattr(Responder, "respond", intercepted)


class RecordingModel:
    """A responder's loaded model that notes every decode: ``decodes`` its mode, sample count and
    batch size, ``calls`` all its keyword arguments. ``spec`` stands in for the model's own."""

    def __init__(self, model, spec=None):
        self.model = model
        self.decodes = []
        self.calls = []
        if spec is not None:
            self.spec = spec

    def decode(self, context_ids, condition_ids, **options):
        self.decodes.append((options["mode"], options.get("n_samples", 1), context_ids.shape[0]))
        self.calls.append(options)
        return self.model.decode(context_ids, condition_ids, **options)

    def __getattr__(self, name):
        return getattr(self.model, name)


def page_links(html: str) -> list[str]:
    """Every ``href`` and ``src`` of ``html``'s elements, in order."""

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.urls: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.urls += [value for name, value in attrs if name in ("href", "src") and value]

    links = Links()
    links.feed(html)
    return links.urls


def _controlled_by(terminal: int, keep_stdout: bool) -> None:
    """In the child: ``terminal`` becomes its controlling one, so Ctrl-C interrupts it as at a
    shell (os.login_tty, which points standard output at it too; ``keep_stdout``: not that).
    Ctrl-C and Ctrl-\\ get their default actions, as a shell gives its foreground job: a test
    run started in the background by a script (``make test &``) has them ignored, the chat
    inherited that, and a typed Ctrl-C did nothing."""
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    kept = os.dup(1) if keep_stdout else None
    os.login_tty(terminal)
    if kept is not None:
        os.dup2(kept, 1)
        os.close(kept)


def terminal_chat(
    keys: bytes | list[bytes], *options: str, env: dict[str, str] | None = None, stdout: int | None = None
) -> tuple[int, str]:
    """``chat`` at a pseudo-terminal: waits for the first prompt, types ``keys``, then reads
    what the terminal shows until the chat ends (killed, a status of -9, if it has not 60 s
    after the keys or 180 s after it started). ``keys`` as a list: the first typed at the
    prompt, each next one half a second after the terminal shows the one before, as a person
    types: Python's readline takes a signal only while it waits for a key, so a Ctrl-C typed
    in one go with the keys before it, while those were still being read, was only taken at
    the next key. A last Ctrl-C that nothing answers for 10 s is typed again (every 10 s), as a
    person would: on a machine busy enough to hold the chat between its echo of a key and its next
    wait for one, the signal arrives in that gap and waits for a key that never comes.
    ``env``: the chat's environment, else this process's with the checkout first on the
    import path. ``stdout``: a file descriptor the chat's standard output goes to instead of
    the terminal (``chat > file``)."""
    import pty
    import select
    import subprocess
    import sys
    import time

    # readline's built-in key bindings, not the user's ~/.inputrc
    base = dict(os.environ, PYTHONPATH=str(ROOT)) if env is None else env
    env = dict(base, TERM="xterm", INPUTRC=os.devnull)
    leader, follower = pty.openpty()  # standard error too: Python's prompt goes there without readline
    try:
        chat = subprocess.Popen(
            [sys.executable, "-m", "legacy_assistant", "-q", "chat", *options],
            stdin=follower, stdout=follower if stdout is None else stdout, stderr=follower, cwd=ROOT, env=env,
            preexec_fn=lambda: _controlled_by(0, keep_stdout=stdout is not None),
        )
    except BaseException:
        os.close(leader)
        raise
    finally:
        os.close(follower)
    waiting = [keys] if isinstance(keys, bytes) else list(keys)
    shown, shown_before, expected, deadline = b"", 0, b"you> ", time.monotonic() + 180
    again: bytes | None = None  # a last Ctrl-C, typed again while nothing answers it
    again_at = deadline
    try:
        while time.monotonic() < deadline:
            if waiting and expected in shown[shown_before:]:
                if shown_before:  # a pause, as between a person's keys
                    time.sleep(0.5)
                shown_before, expected = len(shown), waiting[0]
                typed = waiting.pop(0)
                os.write(leader, typed)
                deadline = time.monotonic() + 60
                again = typed if typed == b"\x03" and not waiting else None
                again_at = time.monotonic() + 10
            elif again is not None and len(shown) == shown_before and time.monotonic() > again_at:
                os.write(leader, again)
                again_at = time.monotonic() + 10
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # EIO: the chat has exited and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            elif chat.poll() is not None:
                break
        else:
            chat.kill()
        return chat.wait(timeout=30), shown.decode("utf-8", "replace")
    finally:
        if chat.poll() is None:  # a failure on the way (a wait that timed out): no chat outlives the test
            chat.kill()
            chat.wait()
        os.close(leader)


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` imported as the module ``<name>_benchmark`` (not run)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def polled_often(every: float = 0.05):
    """Every Selenium ``WebDriverWait`` made meanwhile looks again each ``every`` seconds, not
    Selenium's default half second: a page answers in milliseconds, and each wait sat out the
    rest of the half second. Only when the wait ends changes, not what it waits for."""
    from selenium.webdriver.support.wait import WebDriverWait

    made = WebDriverWait.__init__

    def polling_often(self, driver, timeout, poll_frequency=every, ignored_exceptions=None):
        made(self, driver, timeout, poll_frequency, ignored_exceptions)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WebDriverWait, "__init__", polling_often)
        yield


def main_with_reader_gone(argv: list[str]) -> int:
    """``legacy-assistant ARGV | head -0`` in this process: standard output a pipe whose reader
    has gone before the first line, each line written as it is printed (as with
    PYTHONUNBUFFERED=1). Returns the command's exit status."""
    import sys

    from legacy_assistant.cli import main

    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "stdout", stream)
            return main(argv)
    finally:
        with contextlib.suppress(OSError):
            stream.close()
