"""``GET /api/v1/conversations/<sender>``: one conversation's stored turns, for the chat page;
``DELETE`` the same path: forget it."""
import uuid

import pytest


from tests.openapi_check import check

ROUTE = "/api/v1/conversations/"


def transcript(client, sender, **kwargs):
    from urllib.parse import quote

    return client.get(ROUTE + quote(sender, safe=""), **kwargs)


def forget(client, sender, **kwargs):
    from urllib.parse import quote

    return client.delete(ROUTE + quote(sender, safe=""), **kwargs)


def test_unknown_sender_has_an_empty_transcript(client):
    response = transcript(client, "never-spoke")
    assert response.status_code == 200
    assert response.get_json() == {"sender": "never-spoke", "turns": []}


def test_turns_come_back_oldest_first_as_the_chat_answered_them(client):
    messages = ["I'd like to order a coffee", "a large one", "qwerty"]
    replies = [client.post("/api/v1/chat", json={"sender": "alice", "message": m}).get_json() for m in messages]
    client.post("/api/v1/chat", json={"sender": "bob", "message": "hello"})  # another conversation

    body = transcript(client, "alice").get_json()
    assert body["sender"] == "alice"
    assert [turn["message"] for turn in body["turns"]] == messages
    for turn, reply in zip(body["turns"], replies):
        assert set(turn) == {"message", "reply", "intent", "confidence", "generated"}
        assert (turn["reply"], turn["intent"], turn["generated"]) == (reply["reply"], reply["intent"], False)
        assert turn["confidence"] == pytest.approx(reply["confidence"])
    assert [turn["message"] for turn in transcript(client, "bob").get_json()["turns"]] == ["hello"]


def test_a_generated_turn_is_marked(app, client):
    from legacy_assistant.stores.base import ConversationState, Turn
    from legacy_assistant.web.context import slot_of

    store = slot_of(app).current.store
    store.save("carol", ConversationState(turns=1), Turn("hi", "canned", "greeting", 0.9))
    store.save("carol", ConversationState(turns=2), Turn("blorp", "made up", "fallback", 0.1, generated=True))
    turns = transcript(client, "carol").get_json()["turns"]
    assert [(t["reply"], t["generated"]) for t in turns] == [("canned", False), ("made up", True)]


def test_the_responders_fallback_replies_come_back_generated(responder_assistant):
    from legacy_assistant.web import create_app

    client = create_app({"TESTING": True}, assistant=responder_assistant).test_client()
    sender = "dave-generated"
    answered = client.post("/api/v1/chat", json={"sender": sender, "message": "blorp fnord zibble", "emotion": "joy"})
    assert answered.status_code == 200, answered.get_json()
    reply = answered.get_json()
    assert reply["intent"] == "fallback" and reply["generated"] is True
    client.post("/api/v1/chat", json={"sender": sender, "message": "where are you located?"})

    turns = transcript(client, sender).get_json()["turns"]
    assert [(t["message"], t["generated"]) for t in turns] == [("blorp fnord zibble", True),
                                                               ("where are you located?", False)]
    assert turns[0]["reply"] == reply["reply"]


@pytest.mark.parametrize(
    "sender", ["team/room 4", "é ü ß 中文", "a?b#c", "..", "100%", "/a", "//x", "a//b", "ends/", "new\nline", "t\tab"]
)
def test_any_sender_the_chat_takes_can_be_read_back(client, sender):
    assert client.post("/api/v1/chat", json={"sender": sender, "message": "hello"}).status_code == 200
    body = transcript(client, sender).get_json()
    assert body["sender"] == sender
    assert [turn["message"] for turn in body["turns"]] == ["hello"]


def test_a_path_that_is_not_utf8_is_refused_rather_than_read_as_another_sender(client):
    """Werkzeug reads "%FF", "%C0" and "%80" all as U+FFFD: one conversation for many ids."""
    assert client.post("/api/v1/chat", json={"sender": "\ufffd", "message": "hello"}).status_code == 200
    for raw in ("%FF", "%C0", "%80", "a%FFb"):
        response = client.get(ROUTE + raw)
        assert response.status_code == 400 and response.is_json, raw
        assert response.get_json()["error"]["code"] == "invalid_field"
    # the sender U+FFFD itself, sent as its UTF-8 bytes, is a sender like any other
    body = client.get(ROUTE + "%EF%BF%BD").get_json()
    assert body["sender"] == "\ufffd" and [turn["message"] for turn in body["turns"]] == ["hello"]
    # the raw target as the server read it: what follows the path (a query, a fragment) is not the sender
    for after in ("?x=%FF", "#%FF"):
        raw = client.get(ROUTE + "%EF%BF%BD", environ_overrides={"RAW_URI": ROUTE + "%EF%BF%BD" + after})
        assert raw.status_code == 200 and raw.get_json()["sender"] == "\ufffd", after
    raw = client.get(ROUTE + "%EF%BF%BD", environ_overrides={"RAW_URI": ROUTE + "%FF#x"})
    assert raw.status_code == 400, "the raw target's path is the one checked"


def test_a_sender_over_the_limit_is_a_json_400(make_client):
    client = make_client(MAX_SENDER_LENGTH=8)
    assert transcript(client, "x" * 8).status_code == 200
    response = transcript(client, "x" * 9)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "field_too_long" and "8 characters" in error["message"]


@pytest.mark.parametrize("path,status,code", [
    (ROUTE + "%20%20", 400, "empty_field"),
    (ROUTE, 404, "not_found"),
    (ROUTE.rstrip("/"), 404, "not_found"),
])
def test_blank_or_missing_sender_is_json(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status and response.is_json
    assert response.get_json()["error"]["code"] == code


def test_only_get_and_delete_are_allowed(client):
    response = client.post(ROUTE + "alice", json={})
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    assert {"GET", "DELETE"} <= set(response.headers["Allow"].split(", "))


def test_options_names_both_methods(client):
    """GET and DELETE are two rules of one path: OPTIONS names both, as the 405 does."""
    response = client.options(ROUTE + "alice")
    assert response.status_code == 200
    assert response.get_json()["methods"] == ["DELETE", "GET", "HEAD", "OPTIONS"]
    assert response.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS"


@pytest.mark.parametrize("sender", ["alice", "team/room 4", "é ü ß 中文", "/a", "new\nline"])
def test_delete_forgets_the_conversation_and_the_dialogue_starts_afresh(client, sender):
    chat = {"sender": sender, "message": "I'd like to order a coffee"}
    assert client.post("/api/v1/chat", json=chat).get_json()["intent"] == "order_coffee"
    client.post("/api/v1/chat", json={"sender": "other", "message": "hello"})

    response = forget(client, sender)
    assert response.status_code == 200 and response.get_json() == {"sender": sender, "forgotten": True}
    assert transcript(client, sender).get_json()["turns"] == []
    assert len(transcript(client, "other").get_json()["turns"]) == 1  # only that sender's
    # its dialogue state went too: "a large one" no longer follows the coffee order
    followed = client.post("/api/v1/chat", json={"sender": sender, "message": "a large one"}).get_json()
    assert followed["intent"] != "coffee_size_large"
    again = forget(client, sender)
    assert again.status_code == 200 and again.get_json()["forgotten"] is True  # the turn just made
    assert forget(client, sender).get_json() == {"sender": sender, "forgotten": False}  # idempotent


def test_delete_checks_the_sender_as_get_does(make_client):
    client = make_client(MAX_SENDER_LENGTH=8)
    for path, code in ((ROUTE + "%20%20", "empty_field"), (ROUTE + "x" * 9, "field_too_long"), (ROUTE + "%FF", "invalid_field")):
        response = client.delete(path)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == code, path


def test_delete_waits_for_a_turn_of_the_same_sender_in_progress(client, app):
    """The store's per-sender hold: a turn that has loaded its state saves before the delete
    runs, so the delete cannot be undone by a save that lands after it."""
    import threading

    from legacy_assistant.web.context import slot_of

    store = slot_of(app).current.store
    client.post("/api/v1/chat", json={"sender": "held", "message": "hello"})
    deleted = threading.Event()
    with store.conversation("held"):
        worker = threading.Thread(target=lambda: (forget(client, "held"), deleted.set()))
        worker.start()
        assert not deleted.wait(0.3)  # waiting for the hold
    assert deleted.wait(10)
    worker.join()
    assert transcript(client, "held").get_json()["turns"] == []


def test_a_turn_classified_while_its_conversation_is_deleted_is_answered_and_not_stored(client, app, monkeypatch):
    """The classifier runs outside the store's hold: a DELETE that landed while the message was
    classified was undone by the turn's save, which brought the forgotten conversation back."""
    import threading

    from legacy_assistant.web.context import slot_of

    assistant = slot_of(app).current
    assert client.post("/api/v1/chat", json={"sender": "racing", "message": "hello"}).status_code == 200
    classifying, release = threading.Event(), threading.Event()
    classify = assistant._classify

    def slow_classify(text):
        classifying.set()
        assert release.wait(10)
        return classify(text)

    monkeypatch.setattr(assistant, "_classify", slow_classify)
    answers = []
    turn = threading.Thread(target=lambda: answers.append(
        client.post("/api/v1/chat", json={"sender": "racing", "message": "what's on the menu today"})))
    turn.start()
    assert classifying.wait(10)
    assert forget(client, "racing").get_json() == {"sender": "racing", "forgotten": True}
    release.set()
    turn.join(10)
    assert answers[0].status_code == 200 and answers[0].get_json()["reply"]  # the sender is answered
    assert transcript(client, "racing").get_json()["turns"] == []  # and the conversation stays forgotten
    monkeypatch.setattr(assistant, "_classify", classify)
    # a turn that arrives after the delete starts the conversation afresh, as before
    assert client.post("/api/v1/chat", json={"sender": "racing", "message": "hello"}).status_code == 200
    assert [t["message"] for t in transcript(client, "racing").get_json()["turns"]] == ["hello"]


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis"])
def test_a_delete_during_classification_wins_in_every_store(kind, tmp_path, request):
    """The same race in each store, across two store objects where the store is shared (two
    workers): the turn of the one is not stored after the other's delete."""
    import threading

    from legacy_assistant.classifier.predictor import Prediction
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy, IntentRule
    from legacy_assistant.stores.base import MemoryStore, open_store

    def make_store():
        if kind == "memory":
            return memory
        if kind == "sqlite":
            return open_store(f"sqlite:///{tmp_path}/c.db")
        store = open_store(request.getfixturevalue("redis_url"))
        store.prefix = prefix
        return store

    memory, prefix = MemoryStore(), f"test-race-{uuid.uuid4().hex}:"  # not shared with a run beside this one
    classifying, release = threading.Event(), threading.Event()

    def classify(text):
        classifying.set()
        assert release.wait(10)
        return Prediction([("greeting", 0.99)], 1)

    policy = DialoguePolicy([IntentRule("greeting", ("hello!",))], ["sorry?"], 0.5)
    chatting, deleting = make_store(), make_store()
    try:
        talker = Assistant(None, policy, chatting, classify=classify)
        other = Assistant(None, policy, deleting, classify=classify)
        replies = []
        turn = threading.Thread(target=lambda: replies.append(talker.chat("s", "hi")))
        turn.start()
        assert classifying.wait(10)
        assert other.forget("s") is False  # nothing stored yet: a delete all the same
        release.set()
        turn.join(10)
        assert replies[0].text == "hello!"
        assert chatting.history("s") == [] and deleting.history("s") == []
        assert talker.chat("s", "hi again").text == "hello!"  # after the delete: stored
        assert [t.message for t in deleting.history("s")] == ["hi again"]
    finally:
        if kind == "redis":
            keys = list(chatting._client.scan_iter(match=prefix + "*"))
            if keys:
                chatting._client.delete(*keys)
        for store in {id(chatting): chatting, id(deleting): deleting}.values():
            store.close()


def test_needs_the_api_token_when_one_is_set(make_client):
    client = make_client(API_TOKEN="secret", ADMIN_TOKEN="admin")
    assert transcript(client, "alice").status_code == 401
    assert transcript(client, "alice", headers={"Authorization": "Bearer admin"}).status_code == 401
    assert transcript(client, "alice", headers={"Authorization": "Bearer secret"}).status_code == 200
    assert forget(client, "alice").status_code == 401
    assert forget(client, "alice", headers={"Authorization": "Bearer secret"}).status_code == 200


def test_a_failing_store_is_a_503_not_a_500(default_predictor):
    from legacy_assistant.errors import StoreError
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    class BrokenStore(MemoryStore):
        def history(self, sender):
            raise StoreError("the disk is gone")

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest),
                          BrokenStore())
    response = transcript(create_app({"TESTING": True}, assistant=assistant).test_client(), "alice")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "store_unavailable"


def test_the_error_log_of_a_store_failure_names_no_sender_and_forges_no_line(default_predictor, caplog):
    """The sender id is the key to its transcript: the error log writes its digest, as the
    access log does, and a line break in the path cannot start a made-up log line."""
    from legacy_assistant.errors import StoreError
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore, sender_digest
    from legacy_assistant.web import create_app

    class BrokenStore(MemoryStore):
        def history(self, sender):
            raise StoreError("the disk is gone")

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest),
                          BrokenStore())
    client = create_app({"TESTING": True}, assistant=assistant).test_client()
    sender = "web-secret123\n2026-12-01 23:59:59,000 +0000 [1] INFO legacy_assistant.access: GET /health 200"
    with caplog.at_level("ERROR", logger="legacy_assistant.web.errors"):
        assert transcript(client, sender).status_code == 503
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "legacy_assistant.web.errors")
    assert "store failed" in logged and sender_digest(sender) in logged, logged
    assert "secret123" not in logged and "\n" not in logged, logged


def test_responses_match_the_openapi_document(app, client):
    doc = client.get("/openapi.json").get_json()
    assert "/api/v1/conversations/{sender}" in doc["paths"]
    client.post("/api/v1/chat", json={"sender": "erin", "message": "hello"})
    for url in (ROUTE + "erin", ROUTE + "nobody", ROUTE + "%20", ROUTE + "x" * 200):
        check(app, doc, "GET", url, client.get(url))
    for url in (ROUTE + "erin", ROUTE + "erin", ROUTE + "%20", ROUTE + "x" * 200):
        check(app, doc, "DELETE", url, client.delete(url))


def test_a_sender_with_a_leading_slash_never_reads_anothers_transcript(client):
    """Werkzeug merges "//" in a path and redirects; here "/a" and "a" stay two senders."""
    client.post("/api/v1/chat", json={"sender": "a", "message": "hello"})
    client.post("/api/v1/chat", json={"sender": "/a", "message": "where are you located?"})
    answer = transcript(client, "/a")
    assert answer.status_code == 200 and answer.get_json()["sender"] == "/a"
    assert [t["message"] for t in answer.get_json()["turns"]] == ["where are you located?"]


def test_the_start_up_line_of_a_redis_store_hides_its_password(monkeypatch, caplog):
    """redis-py 6.3 to 7.3 write a pool's every connection option into its repr, the password
    in plain text: the line naming the store shows the URL, with the password hidden."""
    redis = pytest.importorskip("redis")
    from legacy_assistant.stores.redis_store import RedisStore
    from legacy_assistant.web import create_app
    from legacy_assistant.web.context import slot_of
    from tests.helpers import DEFAULT_MODEL

    def repr_of_those_releases(pool):
        options = ",".join(f"{key}={value}" for key, value in pool.connection_kwargs.items())
        return f"<{type(pool).__name__}({options})>"

    monkeypatch.setattr(redis.ConnectionPool, "__repr__", repr_of_those_releases)
    # no server needed: the client is made, not connected
    monkeypatch.setattr(RedisStore, "from_url",
                        classmethod(lambda cls, url, **kw: cls(redis.Redis.from_url(url), **kw)))
    url = "redis://:pw-s3cret-x@127.0.0.1:6379/15"
    store = RedisStore.from_url(url)
    assert "pw-s3cret-x" in repr(store._client)  # as those releases show it
    assert repr(store) == "RedisStore(127.0.0.1:6379, db=15, prefix='legacy-assistant:')"  # not the client's
    with caplog.at_level("INFO", logger="legacy_assistant.web.app"):
        app = create_app({"TESTING": True, "MODEL_DIR": str(DEFAULT_MODEL), "RESPONDER_DIR": None, "WARM_UP": False,
                          "BATCHING": False, "STORE_URL": url})
    slot_of(app).current.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.web.app"]
    assert "conversation store: RedisStore(redis://:***@127.0.0.1:6379/15)" in lines, lines
    assert not any("pw-s3cret-x" in line for line in lines), lines


def test_a_store_that_stays_down_is_one_error_line_a_minute_not_one_per_request(default_predictor, caplog):
    """A store that is down fails every request: an ERROR line each was thousands a second under
    load. The first failure is logged with what to do, then one line a minute with the count."""
    from legacy_assistant.errors import StoreError
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    class BrokenStore(MemoryStore):
        def history(self, sender):
            if sender.startswith("damaged"):  # one conversation's fault, not the store's
                from legacy_assistant.stores.base import sender_digest

                raise StoreError(f"conversation of sender {sender_digest(sender)} (SHA-256 digest): unreadable data")
            raise StoreError("Redis conversation store: history failed: Connection refused")

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest),
                          BrokenStore())
    app = create_app({"TESTING": True}, assistant=assistant)
    client = app.test_client()

    def errors():
        return [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.web.errors"
                and r.levelname == "ERROR"]

    with caplog.at_level("DEBUG", logger="legacy_assistant.web.errors"):
        for number in range(5):
            response = transcript(client, "alice", headers={"X-Request-ID": f"req-{number}"})
            assert response.status_code == 503 and response.get_json()["error"]["code"] == "store_unavailable"
        assert len(errors()) == 1, errors()
        assert "id=req-0" in errors()[0] and "Connection refused" in errors()[0], errors()
        assert "503 store_unavailable" in errors()[0] and "LEGACY_ASSISTANT_STORE" in errors()[0], errors()
        left_out = [r.getMessage() for r in caplog.records
                    if r.levelname == "DEBUG" and "store failed" in r.getMessage()]
        assert [f"id=req-{n}" in line for n, line in enumerate(left_out, 1)] == [True] * 4, left_out
        # another failure is logged at once, and does not hide the outage's next line either
        assert transcript(client, "damaged", headers={"X-Request-ID": "other"}).status_code == 503
        assert len(errors()) == 2 and "id=other" in errors()[1] and "unreadable data" in errors()[1], errors()
        assert transcript(client, "alice", headers={"X-Request-ID": "req-5"}).status_code == 503
        assert len(errors()) == 2, errors()
        # the same fault of another conversation is the same failure, counted
        assert transcript(client, "damaged-too", headers={"X-Request-ID": "other-2"}).status_code == 503
        assert len(errors()) == 2, errors()

        # a minute on (a clock of the test's own), the next failure is logged with the count
        from legacy_assistant.common.repeats import Repeats
        from legacy_assistant.web.errors import STORE_FAILURES_EXTENSION

        now = [1000.0]
        app.extensions[STORE_FAILURES_EXTENSION] = Repeats(60.0, clock=lambda: now[0])
        caplog.clear()
        for number in range(3):
            assert transcript(client, "alice", headers={"X-Request-ID": f"later-{number}"}).status_code == 503
            now[0] += 30.0
        assert transcript(client, "alice", headers={"X-Request-ID": "later-3"}).status_code == 503
    assert len(errors()) == 2 and "id=later-0" in errors()[0] and "id=later-2" in errors()[1], errors()
    assert "more since" not in errors()[0] and "(1 more since the line before" in errors()[1], errors()


def test_a_store_that_is_down_is_one_error_line_whichever_operations_its_requests_meet(default_predictor, caplog):
    """A store that is down fails every operation with the same cause: a chat turn (its lock), a
    transcript (history) and a deletion each logged an ERROR line of their own, as if three
    failures had begun. One line counts them; another cause is still logged at once."""
    from legacy_assistant.errors import StoreError
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    class DownStore(MemoryStore):
        cause = "Error 111 connecting to 127.0.0.1:6379. Connection refused"

        def _down(self, what):
            raise StoreError(f"Redis conversation store: {what} failed: {self.cause}")

        def generation(self, sender):
            self._down("generation")

        def load(self, sender):
            self._down("load")

        def history(self, sender):
            self._down("history")

        def forget(self, sender):
            self._down("forget")

        def conversation(self, sender):
            self._down("lock")

    store = DownStore()
    app = create_app({"TESTING": True}, assistant=Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest), store))
    client = app.test_client()

    def errors():
        return [r.getMessage() for r in caplog.records if r.name == "legacy_assistant.web.errors"
                and r.levelname == "ERROR"]

    with caplog.at_level("INFO", logger="legacy_assistant.web.errors"):
        answers = [
            client.post("/api/v1/chat", json={"sender": "alice", "message": "hello"}),
            transcript(client, "alice"),
            forget(client, "alice"),
            transcript(client, "bob"),
        ]
        assert [a.status_code for a in answers] == [503] * 4
        assert {a.get_json()["error"]["code"] for a in answers} == {"store_unavailable"}
        assert len(errors()) == 1 and "Connection refused" in errors()[0], errors()
        store.cause = "NOPERM this user has no permissions to run the 'lrange' command"
        assert transcript(client, "alice").status_code == 503
        assert len(errors()) == 2 and "NOPERM" in errors()[1], errors()


@pytest.mark.parametrize("path", ["/srv/chat.db", "/srv/backup:2026/chat.db", "/srv/notes: old/chat.db",
                                  "C:\\data\\chat.db"])
def test_a_sqlite_store_down_is_one_failure_whichever_operation_even_with_a_colon_in_its_path(path):
    """The operation is left out of the text that counts a SQLite store's failures up to the
    path's end; a path holding ":" (a Windows drive, a folder named with a time) kept it in, and
    one outage was logged as a failure of each operation it met. Another cause stays apart."""
    from legacy_assistant.web.errors import store_failure_key

    def failure(what, cause="disk I/O error"):
        return store_failure_key(f"SQLite conversation store {path}: {what} failed: {cause}")

    assert {failure(what) for what in ("load", "save", "history", "writer lock")} == {
        f"SQLite conversation store {path}: disk I/O error"
    }
    assert failure("load", "database disk image is malformed") != failure("load")


def test_a_redis_store_turned_read_only_is_one_failure_though_its_transactions_fail_at_other_commands():
    """A Redis that became a replica (a failover) refuses every write: a turn's lock, a save (the
    first command of its transaction) and a deletion (the fourth of its own), as a Redis server
    words them. Which command of a transaction met the cause is the operation's: one outage
    was logged as three failures. Another cause stays apart."""
    from legacy_assistant.web.errors import store_failure_key

    cause = "You can't write against a read only replica."
    failures = [
        f"Redis conversation store: lock failed: {cause}",
        f"Redis conversation store: save failed: command 1 of the transaction: {cause}",
        f"Redis conversation store: forget failed: command 4 of the transaction: {cause}",
    ]
    assert {store_failure_key(failure) for failure in failures} == {f"Redis conversation store: {cause}"}
    full = "Redis conversation store: save failed: command 1 of the transaction: OOM command not allowed"
    assert store_failure_key(full) != store_failure_key(failures[1])


def test_the_failures_followed_to_count_their_repeats_are_bounded():
    """Failures are told apart by their text: each new one is logged at once, and the ones followed
    are at most MAX_KEYS, the one seen longest ago let go first (logged again when it comes)."""
    from legacy_assistant.common.repeats import MAX_KEYS, Repeats

    now = [0.0]
    repeats = Repeats(60.0, clock=lambda: now[0])
    assert [repeats.due(f"failure {n}") for n in range(MAX_KEYS)] == [0] * MAX_KEYS
    assert repeats.due("failure 0") is None and repeats.due("failure 0") is None
    assert repeats.due("one more") == 0 and len(repeats._followed) == MAX_KEYS
    assert repeats.due("failure 1") == 0  # let go: followed again from here
    assert repeats.due("failure 0") is None  # seen last of the first ones: still followed
    now[0] = 60.0
    assert repeats.due("failure 0") == 3
