"""Warm-up: a loaded assistant answers one request of each kind before it serves (at start and
before a reload's swap), and a model that cannot answer one of them is refused."""
import logging

import pytest

from legacy_assistant.errors import ArtifactError
from legacy_assistant.responder.modes import MODES
from legacy_assistant.serving.assistant import WARM_UP_TEXT, Assistant
from legacy_assistant.serving.dialogue import DialoguePolicy
from legacy_assistant.serving.hotswap import AssistantSlot, ReloadError
from legacy_assistant.stores.base import MemoryStore
from legacy_assistant.web import create_app
from legacy_assistant.web.context import slot_of
from tests.helpers import DEFAULT_RESPONDER, RecordingModel, intercept_respond


def test_warm_up_asks_the_intent_model_once_and_the_responder_in_every_mode(
    default_predictor, default_responder, monkeypatch
):
    texts = []
    predict = default_predictor.predict
    monkeypatch.setattr(default_predictor, "predict", lambda batch: texts.append(list(batch)) or predict(batch))
    recording = RecordingModel(default_responder.model)
    monkeypatch.setattr(default_responder, "_model", recording)
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    assistant = Assistant(default_predictor, policy, MemoryStore(), default_responder)

    timings = assistant.warm_up()

    assert texts == [[WARM_UP_TEXT]]
    n_samples = default_responder.options.n_samples
    assert n_samples > 1
    # one context each: greedy, beam, a sample, and the samples that sample_rerank rescores
    assert recording.decodes == [("greedy", 1, 1), ("beam", 1, 1), ("sample", 1, 1), ("sample", n_samples, 1)]
    assert list(timings) == ["classifier", *MODES]
    assert all(ms > 0 for ms in timings.values())


def test_without_a_responder_only_the_intent_model_is_asked(default_predictor):
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    assert list(Assistant(default_predictor, policy, MemoryStore()).warm_up()) == ["classifier"]


def make_beam_fail(patch):
    """Responders whose beam search raises (greedy, the one mode a reload used to try, works)."""

    def fail_beam(context, condition, mode, seed):
        if mode == "beam":
            raise RuntimeError("beam search cannot run")

    intercept_respond(patch, fail_beam)


def test_the_app_warms_up_what_it_loads(tiny_model_dir, caplog):
    with caplog.at_level(logging.INFO, logger="legacy_assistant.serving.assistant"):
        app = create_app({"TESTING": True, "MODEL_DIR": str(tiny_model_dir), "RESPONDER_DIR": str(DEFAULT_RESPONDER),
                          "STORE_URL": "memory"})
    try:
        line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("warmed up in"))
        for part in ("classifier", *MODES):
            assert f"{part} " in line, line
    finally:
        slot_of(app).close()


def test_a_model_that_cannot_answer_does_not_start(tiny_model_dir, monkeypatch):
    make_beam_fail(monkeypatch)
    with pytest.raises(ArtifactError, match="failed to answer a first request: beam search cannot run"):
        create_app({"TESTING": True, "MODEL_DIR": str(tiny_model_dir), "RESPONDER_DIR": str(DEFAULT_RESPONDER),
                    "STORE_URL": "memory"})


def test_a_reload_to_a_model_that_cannot_answer_is_refused(tiny_model_dir, monkeypatch):
    store = MemoryStore()

    def load():
        return Assistant.load(tiny_model_dir, store=store, seed=0, responder_dir=DEFAULT_RESPONDER)

    slot = AssistantSlot(load(), load)
    try:
        before = slot.current
        with monkeypatch.context() as patch:
            make_beam_fail(patch)
            with pytest.raises(ReloadError, match="failed to answer.*beam search cannot run"):
                slot.reload()
        assert slot.current is before
        assert isinstance(before.responder.respond(["hello"], mode="beam"), str)  # the old one still serves
    finally:
        slot.close()


def test_warm_up_off_starts_without_asking_the_models(tiny_model_dir, monkeypatch, caplog):
    make_beam_fail(monkeypatch)  # would stop a start that warms up
    config = {"TESTING": True, "MODEL_DIR": str(tiny_model_dir), "RESPONDER_DIR": str(DEFAULT_RESPONDER),
              "STORE_URL": "memory"}
    with caplog.at_level(logging.INFO, logger="legacy_assistant.serving.assistant"):
        app = create_app({**config, "WARM_UP": False})
    try:
        assert not [r for r in caplog.records if r.getMessage().startswith("warmed up in")]
        assert slot_of(app).current.parse("hello")["intent"]["name"]
    finally:
        slot_of(app).close()
