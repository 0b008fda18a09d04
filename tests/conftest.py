"""Shared fixtures: small data of the tests' own, a tiny trained model, the shipped model, the app.

Models are trained or loaded once per test session: TensorFlow work is the slow part.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from legacy_assistant.common.proxies import bypass_proxy_for

# ROOT and TEST_DATA stay importable from here for modules that still do; new code imports
# tests.helpers.
from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER, ROOT, TEST_DATA, TINY_INTENTS, needs  # noqa: F401

# The servers the tests start are on this machine: their requests (urllib, requests, gradio's
# httpx, Selenium's driver) must not go to a proxy of the environment (http_proxy set, loopback
# not in no_proxy), which failed every one of them.
bypass_proxy_for("127.0.0.1")

GRADIO_TEMP = pytest.StashKey[str]()


def pytest_configure(config):
    # gradio makes its folder, TMPDIR/gradio (shared by every run and user), when a playground is
    # launched in a process where GRADIO_TEMP_DIR was not set as gradio was imported, and leaves
    # it behind: the tests' processes, and the playgrounds they start, get one of their own
    if not os.environ.get("GRADIO_TEMP_DIR"):
        config.stash[GRADIO_TEMP] = os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="legacy-assistant-tests-")


def pytest_unconfigure(config):
    folder = config.stash.get(GRADIO_TEMP, None)
    if folder is not None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_config():
    from legacy_assistant.classifier.config import TrainingConfig

    return TrainingConfig(epochs=60, batch_size=4, seed=7)


@pytest.fixture(scope="session")
def tiny_intents():
    from legacy_assistant.classifier.intents import load_intents

    return load_intents(TINY_INTENTS)


@pytest.fixture(scope="session")
def tiny_trained(tiny_intents, tiny_config):
    from legacy_assistant.classifier.training import train

    texts, tags = tiny_intents.examples()
    return train(texts, tags, tiny_config)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_trained, tiny_intents) -> Path:
    """A pristine exported tiny model. Do not modify: copy it with ``model_copy``."""
    from legacy_assistant.classifier.artifact import export_artifact

    return export_artifact(tiny_trained, tiny_intents, tmp_path_factory.mktemp("models") / "tiny", plot=False)


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    """A throw-away copy of the tiny model, free to damage."""
    target = tmp_path / "tiny-copy"
    shutil.copytree(tiny_model_dir, target)
    return target


@pytest.fixture(scope="session")
def tiny_predictor(tiny_model_dir):
    from legacy_assistant.classifier.predictor import Predictor

    predictor = Predictor.load(tiny_model_dir)
    yield predictor
    predictor.close()


@pytest.fixture(scope="session")
def default_predictor():
    from legacy_assistant.classifier.predictor import Predictor

    predictor = Predictor.load(DEFAULT_MODEL)
    yield predictor
    predictor.close()


@pytest.fixture(scope="session")
def default_responder():
    """The shipped responder, decoding as the server does (its repetition penalty)."""
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    responder = Responder.load(DEFAULT_RESPONDER, options=DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY))
    yield responder
    responder.close()


@pytest.fixture(scope="module")
def responder_assistant(default_predictor, default_responder):
    """The shipped intent model with the shipped responder generating the fallback replies (as
    the server loads them), over a store of this module's own."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    return Assistant(default_predictor, policy, MemoryStore(), default_responder, fallback="generate")


@pytest.fixture
def make_talking_client(default_predictor, default_responder):
    """``make_talking_client(fallback=..., generation_mode=..., **config)``: a test client over the
    shipped model and responder, a fresh conversation store each."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    def make(fallback="generate", generation_mode="greedy", **config):
        policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
        assistant = Assistant(
            default_predictor, policy, MemoryStore(), default_responder, fallback=fallback,
            generation_mode=generation_mode,
        )
        return create_app({"TESTING": True, **config}, assistant=assistant).test_client()

    return make


@pytest.fixture(scope="session")
def golden() -> dict:
    return json.loads((DEFAULT_MODEL / "golden.json").read_text(encoding="utf-8"))


@pytest.fixture
def app(default_predictor):
    """The Flask app over the shipped model, a fresh conversation store per test."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    assistant = Assistant(default_predictor, policy, MemoryStore())
    return create_app({"TESTING": True, "MODEL_DIR": str(DEFAULT_MODEL)}, assistant=assistant)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (``REDIS_URL``, default redis://127.0.0.1:6379/15)."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception as exc:  # not installed, refused, timed out
        needs("Redis", f"{url}: {exc}")
    return url


@pytest.fixture(scope="session")
def free_port():
    """A function giving a free TCP port on 127.0.0.1."""
    import socket

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    return free


@pytest.fixture
def make_client(default_predictor):
    """``make_client(**config)``: a test client over the shipped model with config overrides."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    def make(**config):
        policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
        assistant = Assistant(default_predictor, policy, MemoryStore())
        return create_app({"TESTING": True, **config}, assistant=assistant).test_client()

    return make
