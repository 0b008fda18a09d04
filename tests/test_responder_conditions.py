"""A responder trained on conditions of its own: cakechat's five are in every model so that its
clients are answered, but the training replies per condition are recorded, the untrained ones
are named, the default is a trained condition, and evaluation asks for the trained ones."""
from __future__ import annotations

import json
import logging

import pytest

from legacy_assistant.responder.corpora import Dialogue, Turn
from legacy_assistant.responder.training import train_responder
from tests.helpers import intercept_respond
from tests.test_responder_training import TINY

REPLIES = {"formal": "good day , i am well , thank you .", "casual": "yo dude all good lol !"}
PROMPTS = ["how are you ?", "hello there .", "what is new ?", "how is it going ?"]


def style_dialogues() -> list[Dialogue]:
    """Every prompt answered formally once and casually twice, behind a context turn whose own
    condition ("user") is never a reply's."""
    dialogues = []
    for i, prompt in enumerate(PROMPTS):
        for condition, copies in (("formal", 1), ("casual", 2)):
            for copy in range(copies):
                turns = (Turn(prompt, "user"), Turn(REPLIES[condition], condition))
                dialogues.append(Dialogue(turns, f"style#{i}-{condition}-{copy}"))
    return dialogues


@pytest.fixture(scope="module")
def styles(tmp_path_factory) -> dict:
    from legacy_assistant.responder.artifact import export_responder_artifact

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("legacy_assistant.responder.training")
    logger.addHandler(handler)
    try:
        model = train_responder(style_dialogues(), TINY.with_overrides(epochs=30))
    finally:
        logger.removeHandler(handler)
    out = tmp_path_factory.mktemp("styles") / "model"
    export_responder_artifact(model, out, plot=False)
    return {"model": model, "dir": out, "warnings": [r.getMessage() for r in records]}


def test_training_records_replies_per_condition_and_names_the_untrained(styles):
    pairs = styles["model"].summary["condition_pairs"]
    assert pairs == {"neutral": 0, "anger": 0, "joy": 0, "fear": 0, "sadness": 0, "casual": 8, "formal": 4}
    assert "user" not in styles["model"].conditions  # a context turn's condition reaches no model
    untrained = [w for w in styles["warnings"] if w.startswith("no training reply under")]
    assert untrained == [
        "no training reply under neutral, anger, joy, fear, sadness: the model accepts them, but what it says "
        "under them is untrained"
    ]
    manifest = json.loads((styles["dir"] / "responder.json").read_text(encoding="utf-8"))
    assert manifest["summary"]["condition_pairs"] == pairs


def test_the_default_condition_is_a_trained_one(styles):
    from legacy_assistant.responder.responder import Responder

    with Responder.load(styles["dir"]) as responder:
        assert responder.trained_conditions == ("casual", "formal")
        assert responder.default_condition == "casual"  # the most training replies; neutral has none
        assert responder.respond(["how are you ?"], mode="greedy") == responder.respond(
            ["how are you ?"], "casual", mode="greedy"
        )
        assert "good day" in responder.respond(["how are you ?"], "formal", mode="greedy").lower()
        assert responder.respond(["how are you ?"], "joy", mode="greedy")  # accepted, untrained


def test_a_model_from_before_the_counts_keeps_neutral_and_every_condition(styles, tmp_path, default_responder):
    assert default_responder.condition_pairs is None  # the shipped one predates them
    assert default_responder.default_condition == "neutral"
    assert default_responder.trained_conditions == default_responder.conditions


def test_info_marks_the_untrained_conditions(styles, capsys):
    from legacy_assistant.cli import main

    assert main(["info", str(styles["dir"]), "--no-load"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("conditions"))
    assert line == (
        "conditions neutral (untrained), anger (untrained), joy (untrained), fear (untrained), "
        "sadness (untrained), casual (8), formal (4) (training replies)"
    )


def test_the_cakechat_route_without_an_emotion_answers_under_the_default(styles, default_predictor, monkeypatch):
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    asked: list[str] = []
    intercept_respond(monkeypatch, lambda context, condition, mode, seed: asked.append(condition))
    with Responder.load(styles["dir"]) as responder:
        policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
        assistant = Assistant(default_predictor, policy, MemoryStore(), responder, generation_mode="greedy")
        client = create_app({"TESTING": True}, assistant=assistant).test_client()
        route = "/cakechat_api/v1/actions/get_response"
        plain = client.post(route, json={"context": ["how are you ?"], "mode": "greedy"}).get_json()
        casual = client.post(route, json={"context": ["how are you ?"], "emotion": "casual", "mode": "greedy"})
        assert plain == casual.get_json() and "dude" in plain["response"].lower()
        assert asked == ["casual", "casual"]  # not the untrained neutral


def test_evaluation_asks_for_the_trained_conditions_against_the_default(styles, tmp_path):
    from legacy_assistant.cli import main

    corpus = tmp_path / "held.jsonl"
    with corpus.open("w", encoding="utf-8") as out:
        for dialogue in style_dialogues():  # "user" on a context turn is no condition of a reply
            out.write(json.dumps([{"text": t.text, "condition": t.condition} for t in dialogue.turns]) + "\n")
    report = tmp_path / "report.json"
    argv = ["evaluate-responder", str(styles["dir"]), str(corpus), "--samples", "4", "--latency-replies", "1",
            "--classifier-steps", "50", "--out", str(report)]
    assert main(argv) == 0
    conditions = json.loads(report.read_text(encoding="utf-8"))["conditions"]
    assert conditions["requested"] == ["casual", "formal"]
    for figures in conditions["modes"].values():
        assert figures["baseline"] == "casual" and set(figures["matrix"]) == {"casual", "formal"}


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ({"condition_pairs": {"anger": 3}}, {"neutral": 0, "anger": 3, "joy": 0}),  # a name left out is 0
        ({"condition_pairs": {"neutral": 2, "anger": 0, "joy": 1, "other": 5}}, {"neutral": 2, "anger": 0, "joy": 1}),
        ({"condition_pairs": {"neutral": True}}, None),  # not a count
        ({"condition_pairs": {"neutral": -3}}, None),
        ({"condition_pairs": ["neutral"]}, None),
        ({}, None),  # from before the counts
        (None, None),  # a summary that is no object served before the counts: it still must
    ],
)
def test_recorded_condition_pairs_are_read_alike_by_the_responder_and_info(summary, expected):
    from legacy_assistant.responder.artifact import recorded_condition_pairs

    assert recorded_condition_pairs({"summary": summary}, ["neutral", "anger", "joy"]) == expected


def test_a_request_names_a_condition_as_training_folds_it(styles, default_predictor, monkeypatch, capsys):
    """The corpora's "Formal" and "formal " are one condition; a request saying "Formal" was
    refused everywhere (the Python API, the HTTP routes, chat)."""
    from legacy_assistant.cli import main
    from legacy_assistant.errors import RequestError
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    asked: list[str] = []
    intercept_respond(monkeypatch, lambda context, condition, mode, seed: asked.append(condition))
    with Responder.load(styles["dir"]) as responder:
        formal = responder.respond(["how are you ?"], "formal", mode="greedy")
        for spelt in ("Formal", " FORMAL ", "formal\n"):
            assert responder.respond(["how are you ?"], spelt, mode="greedy") == formal
        with pytest.raises(RequestError, match="unknown condition 'forma'"):
            responder.respond(["how are you ?"], "forma", mode="greedy")
        policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
        assistant = Assistant(default_predictor, policy, MemoryStore(), responder, generation_mode="greedy")
        client = create_app({"TESTING": True}, assistant=assistant).test_client()
        asked.clear()
        cakechat = client.post("/cakechat_api/v1/actions/get_response",
                               json={"context": ["how are you ?"], "emotion": "Casual ", "mode": "greedy"})
        assert cakechat.status_code == 200 and asked == ["casual"]
        unknown = client.post("/cakechat_api/v1/actions/get_response", json={"context": ["hi"], "emotion": "Happy"})
        assert unknown.status_code == 400 and 'emotion param "Happy" is not in emotion list' in unknown.get_json()["message"]
        chat = client.post("/api/v1/chat", json={"sender": "s", "message": "tell me about volcanoes", "emotion": "FORMAL"})
        assert chat.status_code == 200, chat.get_json()
        assert client.post("/api/v1/chat", json={"sender": "s", "message": "hi", "emotion": "x"}).status_code == 400
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("how are you ?\n"))
    assert main(["chat", "--responder", str(styles["dir"]), "--emotion", "Formal", "--mode", "greedy"]) == 0
    assert "good day" in capsys.readouterr().out.lower()


def test_a_condition_is_asked_for_stripped_and_in_any_case_whatever_case_the_model_holds():
    """Training lower-cases condition names; a model trained before it did may hold "Formal",
    which "formal" and " FORMAL " ask for as well (they used to be unknown)."""
    from legacy_assistant.responder.modes import known_condition

    assert known_condition(" Joy", ("neutral", "joy")) == "joy"
    for asked in ("Formal", "formal", " FORMAL "):
        assert known_condition(asked, ("neutral", "Formal")) == "Formal", asked
    assert known_condition("formal", ("neutral", "joy")) is None
    assert known_condition(3, ("neutral",)) is None
