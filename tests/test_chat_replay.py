"""A chat turn's ``message_id``: a message sent again with the id of a turn the conversation has
stored is answered with that turn's reply, and nothing is classified or stored again."""
import threading
import uuid

import pytest

from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.errors import MessageIdReused, RequestError
from legacy_assistant.serving.assistant import Assistant
from legacy_assistant.serving.dialogue import DialoguePolicy
from legacy_assistant.stores.base import MemoryStore, open_store
from legacy_assistant.stores.sqlite_store import SQLiteStore

UNKNOWN = "qwertyuiop zxcvbnm"  # no word the intent model knows: a fallback turn


class CountingClassifier:
    """The model's classifier, counting its calls; ``barrier`` (when set) holds each call until
    that many have come, so that copies of one message are all classified before any is stored."""

    def __init__(self, predictor, barrier=None):
        self.predictor = predictor
        self.barrier = barrier
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, text):
        with self._lock:
            self.calls += 1
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        return self.predictor.predict([text])[0]


def make_assistant(predictor, store=None, classify=None, generate=None):
    policy = DialoguePolicy.from_manifest(predictor.manifest, seed=0)
    return Assistant(predictor, policy, store if store is not None else MemoryStore(), None,
                     classify=classify, generate=generate)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "conversations.db")
    else:
        made = open_store(request.getfixturevalue("redis_url"))
        made.prefix = f"test-replay-{uuid.uuid4().hex}:"  # not shared with a run beside this one
    yield made
    if request.param == "redis":
        keys = list(made._client.scan_iter(match=made.prefix + "*"))
        if keys:
            made._client.delete(*keys)
    made.close()


def test_a_resent_message_is_answered_from_its_stored_turn(default_predictor, store):
    classifier = CountingClassifier(default_predictor)
    assistant = make_assistant(default_predictor, store, classify=classifier)
    first = assistant.chat("s", "I'd like to order a coffee please", message_id="m-1")
    assert not first.replayed and first.intent == "order_coffee"
    again = assistant.chat("s", "I'd like to order a coffee please", message_id="m-1")
    assert again.replayed
    assert (again.text, again.intent, again.confidence, again.reason, again.generated) == (
        first.text, first.intent, first.confidence, first.reason, first.generated)
    assert classifier.calls == 1  # not classified again
    turns = assistant.history("s")
    assert [(t.message, t.message_id, t.reason) for t in turns] == [
        ("I'd like to order a coffee please", "m-1", "intent")]
    assert store.load("s").turns == 1  # the state moved once
    # another id, the same text: a new turn; the same id in another conversation: its own turn
    assistant.chat("s", "I'd like to order a coffee please", message_id="m-2")
    assistant.chat("t", "hello there", message_id="m-1")
    assert [t.message_id for t in assistant.history("s")] == ["m-1", "m-2"]
    assert [t.message for t in assistant.history("t")] == ["hello there"]
    # without an id every message is a turn of its own, as before
    assistant.chat("u", "hello there")
    assistant.chat("u", "hello there")
    assert [t.message_id for t in assistant.history("u")] == [None, None]


def test_copies_sent_at_once_make_one_turn(default_predictor, store):
    """Every copy is classified before any is stored: only the look inside the store's hold
    of the conversation finds the first copy's turn."""
    copies = 6
    classifier = CountingClassifier(default_predictor, barrier=threading.Barrier(copies))
    assistant = make_assistant(default_predictor, store, classify=classifier)
    replies, errors = [], []

    def send():
        try:
            replies.append(assistant.chat("s", "hello there", message_id="same-id"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(replies) == copies
    assert sorted(reply.replayed for reply in replies) == [False] + [True] * (copies - 1)
    assert len({(reply.text, reply.intent, reply.confidence) for reply in replies}) == 1
    assert [t.message_id for t in assistant.history("s")] == ["same-id"]
    assert store.load("s").turns == 1


def test_another_message_under_a_stored_id_is_refused_not_replayed(default_predictor, store):
    """A message_id names one message: another text sent under it is neither answered with the
    stored turn's reply (that reply was to a different question) nor stored."""
    classifier = CountingClassifier(default_predictor)
    assistant = make_assistant(default_predictor, store, classify=classifier)
    assistant.chat("s", "I'd like to order a coffee", message_id="m-1")
    with pytest.raises(MessageIdReused, match="message_id"):
        assistant.chat("s", "what time do you close", message_id="m-1")
    assert classifier.calls == 1  # refused at the first look, before classifying
    assert [t.message for t in assistant.history("s")] == ["I'd like to order a coffee"]
    assert store.load("s").turns == 1
    # the same text again is still a replay
    assert assistant.chat("s", "I'd like to order a coffee", message_id="m-1").replayed


def test_another_message_under_an_id_stored_meanwhile_is_refused(default_predictor, store):
    """Two different messages sent at once under one id: the one that takes the conversation's
    hold first is stored, the other finds it there and is refused, not answered with its reply."""
    copies = 2
    classifier = CountingClassifier(default_predictor, barrier=threading.Barrier(copies))
    assistant = make_assistant(default_predictor, store, classify=classifier)
    replies, errors = [], []

    def send(message):
        try:
            replies.append(assistant.chat("s", message, message_id="same-id"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    messages = ["I'd like to order a coffee", "what time do you close"]
    threads = [threading.Thread(target=send, args=(message,)) for message in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert classifier.calls == copies  # both were classified before either was stored
    assert [type(exc) for exc in errors] == [MessageIdReused]
    assert len(replies) == 1 and not replies[0].replayed
    turns = assistant.history("s")
    assert len(turns) == 1 and turns[0].reply == replies[0].text
    assert store.load("s").turns == 1


def test_another_message_under_one_id_from_two_workers_at_once_is_refused(default_predictor, tmp_path):
    """As two workers see it: two stores on one SQLite file, each message classified before
    either is stored. One is stored, the other refused, whichever takes the file's lock first."""
    barrier = threading.Barrier(2)
    stores = [SQLiteStore(tmp_path / "shared.db") for _ in range(2)]
    assistants = [make_assistant(default_predictor, store, classify=CountingClassifier(default_predictor, barrier))
                  for store in stores]
    replies, errors = [], []

    def send(assistant, message):
        try:
            replies.append(assistant.chat("s", message, message_id="same-id"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    messages = ["I'd like to order a coffee", "what time do you close"]
    threads = [threading.Thread(target=send, args=pair) for pair in zip(assistants, messages)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [type(exc) for exc in errors] == [MessageIdReused]
    assert len(replies) == 1 and not replies[0].replayed
    for store in stores:
        assert [t.reply for t in store.history("s")] == [replies[0].text]
        assert store.load("s").turns == 1
        store.close()


class WatchedStore(MemoryStore):
    """Calls ``on_history`` (when set) after each read of the stored turns, or of one by its id."""

    on_history = None

    def history(self, sender):
        turns = super().history(sender)
        if self.on_history is not None:
            self.on_history(turns)
        return turns

    def turn_with_id(self, sender, message_id):
        turn = super().turn_with_id(sender, message_id)
        if self.on_history is not None:
            self.on_history([turn] if turn is not None else [])
        return turn


def test_a_resend_while_the_reply_is_generated_gets_the_generated_reply(default_predictor):
    """The turn is stored with its canned reply first; a resend that reads it then waits for
    the generated reply that replaces it."""
    store = WatchedStore()
    generating, resend_read = threading.Event(), threading.Event()

    def generate(context, emotion, mode, seed, condition_strength):
        generating.set()
        assert resend_read.wait(timeout=30)  # the resend has read the canned reply
        return "a generated reply"

    assistant = make_assistant(default_predictor, store, generate=generate)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", assistant.chat("s", UNKNOWN, message_id="g")))
    first.start()
    assert generating.wait(timeout=30)
    canned = store.history("s")[0]
    assert (canned.message_id, canned.generated) == ("g", False)  # stored canned, not yet amended

    def seen(turns):
        if turns and turns[-1].message_id == "g" and not turns[-1].generated:
            resend_read.set()

    store.on_history = seen
    again = assistant.chat("s", UNKNOWN, message_id="g")
    first.join(timeout=30)
    assert results["first"].generated and results["first"].text == "a generated reply"
    assert again.replayed and again.generated and again.text == "a generated reply"
    assert again.intent == FALLBACK_TAG and again.reason == results["first"].reason
    assert len(store.history("s")) == 1
    # and once it is written, a resend gets it at once
    assert assistant.chat("s", UNKNOWN, message_id="g").text == "a generated reply"


@pytest.mark.parametrize("message_id", ["", "a b", "x" * 65, "é", "a/b", 7, True, ["m"]])
def test_a_bad_message_id_is_refused_before_anything_is_stored(default_predictor, message_id):
    classifier = CountingClassifier(default_predictor)
    assistant = make_assistant(default_predictor, classify=classifier)
    with pytest.raises(RequestError, match="message_id"):
        assistant.chat("s", "hello there", message_id=message_id)
    assert classifier.calls == 0 and assistant.history("s") == []


def test_the_chat_route_replays_a_message_id(client):
    body = {"sender": "web-r", "message": "hello there", "message_id": "b1f3-0"}
    first = client.post("/api/v1/chat", json=body)
    again = client.post("/api/v1/chat", json=body)
    assert first.status_code == again.status_code == 200
    assert first.get_json()["replayed"] is False
    assert again.get_json() == {**first.get_json(), "replayed": True}
    turns = client.get("/api/v1/conversations/web-r").get_json()["turns"]
    assert [turn["message"] for turn in turns] == ["hello there"]
    # the transcript shows the turns as before: the id is the client's, not part of the turn shown
    assert "message_id" not in turns[0]
    # null is the same as no id
    client.post("/api/v1/chat", json={**body, "message_id": None})
    assert len(client.get("/api/v1/conversations/web-r").get_json()["turns"]) == 2


@pytest.mark.parametrize("message_id", ["", "a b", "x" * 65, "é", 7, True, ["m"], {"id": "m"}])
def test_the_chat_route_refuses_a_bad_message_id(client, message_id):
    response = client.post("/api/v1/chat", json={"sender": "web-b", "message": "hello", "message_id": message_id})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_field" and "'message_id'" in error["message"]
    assert client.get("/api/v1/conversations/web-b").get_json()["turns"] == []


def test_the_chat_route_refuses_another_message_under_a_stored_id(client):
    body = {"sender": "web-u", "message": "I'd like to order a coffee", "message_id": "u-1"}
    assert client.post("/api/v1/chat", json=body).status_code == 200
    response = client.post("/api/v1/chat", json={**body, "message": "what time do you close"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "message_id_reused" and "'message_id'" in error["message"]
    turns = client.get("/api/v1/conversations/web-u").get_json()["turns"]
    assert [turn["message"] for turn in turns] == ["I'd like to order a coffee"]


def test_a_replay_is_not_counted_as_a_prediction_again(client):
    from tests.test_metrics import samples, value

    name = "legacy_assistant_predictions_total"
    before = value(samples(client), name, intent="greeting")
    for _ in range(3):
        client.post("/api/v1/chat", json={"sender": "web-m", "message": "hello there", "message_id": "once"})
    assert value(samples(client), name, intent="greeting") - before == 1
