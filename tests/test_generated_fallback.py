"""Generated fallback replies: a turn no intent answers is said by the responder, from the
conversation's last turns and with the requested emotion; intents keep their canned answers."""

from types import SimpleNamespace

import numpy as np
import pytest

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.errors import ConfigError, RequestError
from legacy_assistant.responder.modes import CAKECHAT_EMOTIONS
from legacy_assistant.serving.assistant import CONTEXT_TURNS, Assistant
from legacy_assistant.serving.dialogue import DialoguePolicy
from legacy_assistant.stores.base import MemoryStore

UNKNOWN = "qwertyuiop zxcvbnm"  # no word the intent model knows
GREETING = "hello there"


class RecordingGenerator:
    """Stands in for the responder to see what the assistant asks of it."""

    def __init__(self, reply="a generated reply"):
        self.reply = reply
        self.calls = []
        self.strengths = []

    def __call__(self, context, emotion, mode, seed, condition_strength):
        self.strengths.append(condition_strength)
        self.calls.append((list(context), emotion, mode, seed))
        return self.reply


def assistant_with(predictor, generate, fallback="generate", responder=None):
    policy = DialoguePolicy.from_manifest(predictor.manifest, seed=0)
    return Assistant(predictor, policy, MemoryStore(), responder, fallback=fallback, generate=generate)


def test_fallback_turns_are_generated_from_the_last_turns(default_predictor):
    generator = RecordingGenerator()
    assistant = assistant_with(default_predictor, generator)
    first = assistant.chat("s", GREETING)
    assert first.intent == "greeting" and not first.generated
    assert generator.calls == []  # an intent with canned answers keeps them
    reply = assistant.chat("s", UNKNOWN, emotion="joy")
    assert reply.generated and reply.text == "a generated reply"
    assert reply.intent == FALLBACK_TAG and reply.reason in ("not_understood", "low_confidence", "out_of_scope")
    context, emotion, mode, seed = generator.calls[-1]
    assert context == [GREETING, first.text, UNKNOWN]
    assert (emotion, mode, seed) == ("joy", assistant.generation_mode, None)
    assert generator.strengths == [None]  # the server's strength unless the turn asks
    assistant.chat("s", UNKNOWN, emotion="joy", condition_strength=2.5)
    assert generator.strengths == [None, 2.5]
    for number in range(4):
        assistant.chat("s", f"{UNKNOWN} {number}")
    # the last stored turns, both sides, and the message; the responder reads the last of them
    assert len(generator.calls[-1][0]) == 2 * CONTEXT_TURNS + 1
    assert generator.calls[-1][0][-1] == f"{UNKNOWN} 3"
    turns = assistant.history("s")
    assert [t.generated for t in turns[:2]] == [False, True]


@pytest.mark.parametrize(("window", "messages"), [(10, [f"{UNKNOWN} {n}" for n in range(8)]), (5, ["\u200b"] * 6)])
def test_a_responder_reading_more_turns_is_given_enough_stored_turns_to_fill_them(default_predictor, window, messages):
    """A responder trained on a wider context than the shipped one's 3 turns (its spec's
    max_context_turns) is given as many stored turns as it reads: each stored reply holds a
    word, so its window fills even where the stored messages hold none."""
    generator = RecordingGenerator()
    responder = SimpleNamespace(
        spec=SimpleNamespace(max_context_turns=window),
        conditions=CAKECHAT_EMOTIONS,
        default_condition="neutral",
        checked_strength=float,
    )
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    assistant = Assistant(default_predictor, policy, MemoryStore(), responder, generate=generator)
    for message in messages:
        assistant.chat("s", message)
    stored = assistant.history("s")[:-1][-window:]
    assert len(stored) == len(messages) - 1
    expected = [text for turn in stored for text in (turn.message, turn.reply)] + [messages[-1]]
    assert generator.calls[-1][0] == expected


@pytest.mark.parametrize("empty", ["", "   ", "...", "?!"])
def test_a_reply_with_no_word_falls_back_to_the_canned_one(default_predictor, empty):
    assistant = assistant_with(default_predictor, RecordingGenerator(empty))
    reply = assistant.chat("s", UNKNOWN)
    assert not reply.generated
    assert reply.text in assistant.policy.fallback_responses
    assert assistant.history("s")[-1].generated is False


@pytest.mark.parametrize("emoji", ["\U0001f44d\U0001f3fd", "\u2764\ufe0f", "\U0001f602 \U0001f602!", "\U0001f1e9\U0001f1ea"])
def test_a_reply_of_only_emoji_is_generated_not_replaced_by_the_canned_one(default_predictor, emoji):
    """A responder trained on chat text answers with emoji alone; such a reply was taken for one
    that says nothing and the canned fallback answered instead."""
    assistant = assistant_with(default_predictor, RecordingGenerator(emoji))
    reply = assistant.chat("s", UNKNOWN)
    assert reply.generated and reply.text == emoji
    assert assistant.history("s")[-1].reply == emoji


def test_canned_mode_never_generates(default_predictor):
    generator = RecordingGenerator()
    assistant = assistant_with(default_predictor, generator, fallback="canned")
    reply = assistant.chat("s", UNKNOWN)
    assert not reply.generated and reply.text in assistant.policy.fallback_responses
    assert generator.calls == []


def test_without_a_responder_the_fallback_is_canned(default_predictor):
    assistant = assistant_with(default_predictor, None)
    reply = assistant.chat("s", UNKNOWN, emotion="sadness")  # a known emotion is accepted
    assert not reply.generated and reply.text in assistant.policy.fallback_responses
    strong = assistant.chat("s", UNKNOWN, emotion="joy", condition_strength=5)  # so is a strength
    assert not strong.generated and strong.text in assistant.policy.fallback_responses
    with pytest.raises(RequestError, match="no responder"):
        assistant.respond(["hi"])


def test_unknown_emotions_and_modes_are_refused_before_anything_is_stored(default_predictor):
    generator = RecordingGenerator()
    assistant = assistant_with(default_predictor, generator)
    with pytest.raises(RequestError, match="emotion"):
        assistant.chat("s", UNKNOWN, emotion="happiness")
    with pytest.raises(RequestError, match="mode"):
        assistant.respond(["hi"], mode="beamsearch")
    assert assistant.history("s") == [] and generator.calls == []
    with pytest.raises(ConfigError):
        assistant_with(default_predictor, generator, fallback="sometimes")


def test_the_real_responder_speaks_in_chat_and_webhook(make_talking_client, default_responder):
    client = make_talking_client()
    body = client.post("/api/v1/chat", json={"sender": "a", "message": UNKNOWN, "emotion": "anger"}).get_json()
    assert body["intent"] == FALLBACK_TAG and body["generated"] is True
    assert body["reply"] == default_responder.respond([UNKNOWN], "anger", "greedy")
    canned = client.post("/api/v1/chat", json={"sender": "a", "message": GREETING, "emotion": "anger"}).get_json()
    assert canned["intent"] == "greeting" and canned["generated"] is False
    hook = client.post("/webhooks/rest/webhook", json={"sender": "b", "message": UNKNOWN, "emotion": "fear"})
    assert hook.status_code == 200
    assert hook.get_json() == [{"recipient_id": "b", "text": default_responder.respond([UNKNOWN], "fear", "greedy")}]
    transcript = client.get("/api/v1/conversations/a").get_json()["turns"]
    assert [t["generated"] for t in transcript] == [True, False]


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff", "\u2060"])
def test_a_first_message_of_invisible_characters_gets_the_canned_fallback(make_talking_client, invisible):
    """Nothing for the responder to read: the canned answer, as without a responder (it was a
    400 invalid_request, and the turn was not stored)."""
    client = make_talking_client()
    body = client.post("/api/v1/chat", json={"sender": "inv", "message": invisible}).get_json()
    assert body["intent"] == FALLBACK_TAG and body["generated"] is False and body["reply"]
    hook = client.post("/webhooks/rest/webhook", json={"sender": "inv2", "message": invisible})
    assert hook.status_code == 200 and hook.get_json()[0]["text"] == body["reply"]
    assert len(client.get("/api/v1/conversations/inv").get_json()["turns"]) == 1


def test_chat_and_webhook_take_a_condition_strength(make_talking_client, default_responder):
    client = make_talking_client()
    messages = [UNKNOWN, "tell me about your favourite band", "what do you think of the weather on mars"]
    for route in ("/api/v1/chat", "/webhooks/rest/webhook"):
        for number, message in enumerate(messages):
            for strength in (0, 3.0):
                sender = f"{route[-4:]}-{number}-{strength}"
                body = {"sender": sender, "message": message, "emotion": "joy", "condition_strength": strength}
                response = client.post(route, json=body)
                assert response.status_code == 200, response.get_data(as_text=True)
                text = response.get_json()["reply"] if route.endswith("chat") else response.get_json()[0]["text"]
                assert text == default_responder.respond([message], "joy", "greedy", None, strength), (route, body)
    steered = [default_responder.respond([m], "joy", "greedy", None, 3.0) for m in messages]
    assert steered != [default_responder.respond([m], "joy", "greedy") for m in messages]
    for route in ("/api/v1/chat", "/webhooks/rest/webhook"):
        for bad in (-1, 11, "2", True, [1], 10**400):
            response = client.post(route, json={"sender": "z", "message": GREETING, "condition_strength": bad})
            assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_field", bad
    assert client.get("/api/v1/conversations/z").get_json()["turns"] == []


def test_a_strength_is_checked_even_when_no_reply_is_generated(default_predictor):
    assistant = assistant_with(default_predictor, RecordingGenerator())
    with pytest.raises(RequestError, match="condition_strength"):
        assistant.chat("s", GREETING, condition_strength=12)
    without = assistant_with(default_predictor, None)
    assert not without.chat("s", GREETING, condition_strength=2).generated  # nothing to guide: accepted
    with pytest.raises(RequestError, match="condition_strength"):
        without.chat("s", GREETING, condition_strength=-1)
    assert without.history("s") and not assistant.history("s")


@pytest.mark.parametrize("seed", ["1", 1.5, True, 2**63, -(2**63) - 1])
def test_a_bad_seed_is_refused_whether_or_not_a_reply_is_generated(default_predictor, seed):
    """Not swallowed as a context of no word (the canned fallback, generated False)."""
    generator = RecordingGenerator()
    assistant = assistant_with(default_predictor, generator)
    for message in (UNKNOWN, GREETING):
        with pytest.raises(RequestError, match=r"^seed must be a 64-bit integer or None"):
            assistant.chat("s", message, seed=seed)
    assert assistant.history("s") == [] and generator.calls == []


def test_a_numpy_integer_seed_reaches_the_responder(default_predictor):
    generator = RecordingGenerator()
    assistant = assistant_with(default_predictor, generator)
    assert assistant.chat("s", UNKNOWN, seed=np.int64(2**63 - 1)).generated
    assert generator.calls[-1][3] == 2**63 - 1


@pytest.mark.parametrize(("sender", "message", "field"), [("", GREETING, "sender"), (" \t", GREETING, "sender"),
                                                          ("s", "", "message"), ("s", " \n ", "message")])
def test_a_blank_sender_or_message_is_refused_as_the_http_api_refuses_it(default_predictor, sender, message, field):
    generator = RecordingGenerator()
    assistant = assistant_with(default_predictor, generator)
    with pytest.raises(RequestError, match=f"^{field} must not be blank$"):
        assistant.chat(sender, message)
    assert assistant.store.history(sender) == [] and generator.calls == []


def test_the_request_limit_is_the_graphs():
    from compat.responder import inputs
    from legacy_assistant.responder import modes

    assert modes.MAX_CONDITION_STRENGTH == inputs.MAX_CONDITION_STRENGTH


def test_chat_and_webhook_refuse_a_bad_emotion(make_talking_client):
    client = make_talking_client()
    for route, body in (
        ("/api/v1/chat", {"sender": "a", "message": UNKNOWN, "emotion": "happiness"}),
        ("/api/v1/chat", {"sender": "a", "message": UNKNOWN, "emotion": 5}),
        ("/webhooks/rest/webhook", {"sender": "a", "message": UNKNOWN, "emotion": ["joy"]}),
    ):
        response = client.post(route, json=body)
        assert response.status_code == 400, body
        # the same error object as the cakechat route's for the same mistake
        emotions = ", ".join(client.get("/health").get_json()["emotions"])
        expected = {"code": "invalid_field", "message": f"field 'emotion' must be one of {emotions}"}
        assert response.get_json()["error"] == expected
        cakechat = client.post("/cakechat_api/v1/actions/get_response", json={"context": [UNKNOWN], "emotion": body["emotion"]})
        assert cakechat.status_code == 400 and cakechat.get_json()["error"] == expected
    assert client.get("/api/v1/conversations/a").get_json()["turns"] == []


def test_fallback_setting_canned_keeps_canned_answers(make_talking_client):
    client = make_talking_client(fallback="canned")
    body = client.post("/api/v1/chat", json={"sender": "a", "message": UNKNOWN}).get_json()
    assert body["intent"] == FALLBACK_TAG and body["generated"] is False


class HoldRecordingStore(MemoryStore):
    """A memory store that says whether a conversation is held right now."""

    def __init__(self):
        super().__init__()
        self.held = 0

    def conversation(self, sender):
        import contextlib

        @contextlib.contextmanager
        def hold():
            with MemoryStore.conversation(self, sender):
                self.held += 1
                try:
                    yield
                finally:
                    self.held -= 1

        return hold()


def test_the_reply_is_generated_outside_the_stores_hold(default_predictor):
    """The SQLite store's hold spans every sender of the server: generating inside it would make
    every chat turn wait for every generated one."""
    store = HoldRecordingStore()
    holds_seen = []

    def generate(context, emotion, mode, seed, condition_strength):
        holds_seen.append(store.held)
        return "made outside"

    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    assistant = Assistant(default_predictor, policy, store, None, generate=generate)
    reply = assistant.chat("s", UNKNOWN)
    assert reply.generated and reply.text == "made outside"
    assert holds_seen == [0]
    assert [t.reply for t in assistant.history("s")] == ["made outside"]


def test_a_turn_stored_while_a_reply_is_generated_is_kept(default_predictor):
    store = HoldRecordingStore()
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    interleaved = []

    def generate(context, emotion, mode, seed, condition_strength):
        if not interleaved:  # the same sender's next turn arrives while this reply is made
            interleaved.append(assistant.chat("s", GREETING))
        return "generated late"

    assistant = Assistant(default_predictor, policy, store, None, generate=generate)
    reply = assistant.chat("s", UNKNOWN)
    assert interleaved and interleaved[0].intent == "greeting"
    assert reply.generated and reply.text == "generated late"
    turns = assistant.history("s")
    # the turn was stored first and its reply amended in place: the later turn follows it
    assert [(t.message, t.generated) for t in turns] == [(UNKNOWN, True), (GREETING, False)]
    assert turns[0].reply == "generated late"
    assert store.load("s").turns == 2  # nothing lost


def test_a_flow_opened_while_a_reply_is_generated_waits_for_the_next_message(default_predictor):
    """The earlier message stays the fallback it was: the flow the later one opened is not
    handed the earlier message as its answer."""
    store = HoldRecordingStore()
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    interleaved = []

    def generate(context, emotion, mode, seed, condition_strength):
        if not interleaved:  # "I want to leave feedback" arrives while this reply is made
            interleaved.append(assistant.chat("s", "I want to leave feedback"))
        return "generated late"

    assistant = Assistant(default_predictor, policy, store, None, generate=generate)
    first = assistant.chat("s", UNKNOWN)
    assert interleaved[0].intent == "leave_feedback"
    assert first.intent == FALLBACK_TAG and first.generated and first.text == "generated late"
    state = store.load("s")
    assert state.next_tag == "leave_feedback_text" and state.turns == 2  # the flow is still open
    feedback = assistant.chat("s", "the croissants were lovely")
    assert (feedback.intent, feedback.reason) == ("leave_feedback_text", "follow_up")



@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("earlier_turns", [0, 1])
def test_a_conversation_deleted_while_its_reply_is_generated_stays_deleted(default_predictor, tmp_path, kind,
                                                                            earlier_turns):
    """DELETE answers after any turn in progress: a reply still being generated must not store
    the conversation again once it is forgotten (with or without earlier turns)."""
    from legacy_assistant.stores.sqlite_store import SQLiteStore

    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "c.db")
    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    forgotten = []

    def generate(context, emotion, mode, seed, condition_strength):
        forgotten.append(assistant.forget("s"))  # the user deletes the conversation meanwhile
        return "generated after the delete"

    assistant = Assistant(default_predictor, policy, store, None, generate=generate)
    for _ in range(earlier_turns):
        assert not assistant.chat("s", GREETING).generated
    reply = assistant.chat("s", UNKNOWN)
    assert reply.generated and reply.text == "generated after the delete"  # the sender still gets it
    assert forgotten == [True]
    assert assistant.history("s") == [] and store.load("s").turns == 0
    store.close()


@pytest.mark.parametrize("failure", ["batcher closed", "decode failed"])
def test_a_generation_that_fails_answers_with_the_stored_canned_reply(default_predictor, failure, caplog):
    """The turn is stored before the reply is generated: an error then must not invite the client
    to send the message again (a 503 did), which would store it twice."""
    from legacy_assistant.serving.batching import BatcherClosed

    def generate(context, emotion, mode, seed, condition_strength):
        raise BatcherClosed("closed") if failure == "batcher closed" else RuntimeError("decode failed")

    assistant = assistant_with(default_predictor, generate)
    with caplog.at_level("ERROR", logger="legacy_assistant.serving.assistant"):
        reply = assistant.chat("s", UNKNOWN)
    assert reply.intent == FALLBACK_TAG and not reply.generated
    assert reply.text in assistant.policy.fallback_responses
    assert [(t.message, t.reply, t.generated) for t in assistant.history("s")] == [(UNKNOWN, reply.text, False)]
    assert "the generated reply failed" in caplog.text and "Traceback" in caplog.text


def test_a_store_that_fails_to_amend_still_answers_with_the_generated_reply(default_predictor, caplog):
    from legacy_assistant.errors import StoreError

    class AmendFails(MemoryStore):
        def amend(self, sender, turn, amended):
            raise StoreError("the store is busy")

    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    assistant = Assistant(default_predictor, policy, AmendFails(), None, generate=RecordingGenerator("made"))
    with caplog.at_level("WARNING", logger="legacy_assistant.serving.assistant"):
        reply = assistant.chat("s", UNKNOWN)
    assert reply.generated and reply.text == "made"
    [turn] = assistant.history("s")
    assert turn.message == UNKNOWN and not turn.generated  # stored once, with the canned reply
    assert "could not replace the stored canned one: the store is busy" in caplog.text


def test_the_served_responder_decodes_with_the_serving_repetition_penalty(tmp_path):
    """Without it a small model's greedy replies loop ("I like the movie. I like the movie."):
    the app's loading path (also the one a hot reload takes) must pass it on."""
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY
    from legacy_assistant.web.app import create_app
    from legacy_assistant.web.context import slot_of
    from tests.helpers import DEFAULT_MODEL, DEFAULT_RESPONDER

    app = create_app({"MODEL_DIR": str(DEFAULT_MODEL), "RESPONDER_DIR": str(DEFAULT_RESPONDER),
                      "STORE_URL": "memory", "BATCHING": False})
    assistant = slot_of(app).current
    try:
        assert assistant.responder.options.repetition_penalty == SERVING_REPETITION_PENALTY > 1
        context = ["Do you like movies?"]
        plain = Responder.load(DEFAULT_RESPONDER)
        penalised = Responder.load(DEFAULT_RESPONDER, options=DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY))
        try:
            assert plain.respond(context) != penalised.respond(context)  # the context tells them apart
            assert assistant.respond(context, mode="greedy") == penalised.respond(context)
        finally:
            plain.close()
            penalised.close()
    finally:
        assistant.close()


def test_a_failed_generation_s_error_line_names_the_request_id(default_predictor, caplog):
    """The error line (and its traceback) of a chat turn whose generated reply failed names the
    request's id, as the access line and the answer's X-Request-ID carry it: the client got a
    200 with the canned reply, and without the id nothing tied the traceback to that request."""
    from legacy_assistant.web import create_app

    def generate(context, emotion, mode, seed, condition_strength):
        raise RuntimeError("decode failed")

    client = create_app({"TESTING": True}, assistant=assistant_with(default_predictor, generate)).test_client()
    with caplog.at_level("INFO"):
        given = client.post("/api/v1/chat", json={"sender": "s", "message": UNKNOWN}, headers={"X-Request-ID": "gen-1"})
        made = client.post("/api/v1/chat", json={"sender": "t", "message": UNKNOWN})
    assert given.status_code == made.status_code == 200 and not given.get_json()["generated"]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.exc_info is not None for r in errors] == [True, True]
    assert errors[0].getMessage().endswith(" id=gen-1"), errors[0].getMessage()
    assert errors[1].getMessage().endswith(f" id={made.headers['X-Request-ID']}"), errors[1].getMessage()
    assert "the generated reply failed" in errors[0].getMessage()
    # outside a request (a script's own Assistant) the line names no id
    caplog.clear()
    with caplog.at_level("ERROR"):
        assistant_with(default_predictor, generate).chat("u", UNKNOWN)
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "id=" not in line
