"""Paths and small helpers shared by the tests; import them as ``from tests.helpers import ...``.

Every path is built from the repository root, never from the working directory, so the suite
runs the same from anywhere (``pytest /path/to/repo/tests``).
"""
from __future__ import annotations

import os
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
