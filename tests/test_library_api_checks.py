"""The library's calls refuse wrong arguments with the project's own errors, naming the
argument, and the three conversation stores keep and give back the same plain values.

Each test here reproduces a defect found by calling the project as a library (outside HTTP,
which checks its fields itself): numpy numbers stored as raw bytes, a string ranked or answered
character by character, a negative batch size computing nothing, a lone surrogate escape
crashing one store only, a closed SQLite store still writing, and bare TypeError/IndexError;
and closed models answering with TensorFlow's error about a closed session.
"""

import enum
import re
import typing
import uuid

import numpy as np
import pytest

from legacy_assistant.errors import ConfigError, RequestError, StoreError
from legacy_assistant.stores.base import ConversationState, MemoryStore, Turn, open_store
from legacy_assistant.stores.sqlite_store import SQLiteStore
from tests.test_store_contract import store_factory


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request, tmp_path):
    yield from store_factory(request, tmp_path, request.param)


@pytest.fixture(scope="module")
def assistant(default_predictor):
    """The shipped intent model with a stand-in responder that records the contexts it is given."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy

    asked = []

    def generate(turns, condition, mode, seed, strength):
        asked.append(list(turns))
        return "a generated reply"

    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    made = Assistant(default_predictor, policy, MemoryStore(), generate=generate)
    made.asked = asked
    return made


# -- stores -----------------------------------------------------------------------------------


def test_numpy_numbers_are_stored_and_read_back_as_python_numbers(make_store):
    """sqlite3 bound np.int64/np.float32 as raw bytes: the save passed, every later read failed."""
    store = make_store()
    probabilities = np.array([0.7, 0.3], dtype=np.float32)
    store.save("alice", ConversationState(turns=np.int64(1)), Turn("hi", "hello", "greeting", probabilities[0]))
    store.save("alice", ConversationState(turns=2), Turn("again", "ok", "greeting", 0.5, at=np.float64(5.0)))
    state = store.load("alice")
    assert state == ConversationState(turns=2) and type(state.turns) is int
    first, second = store.history("alice")
    assert type(first.confidence) is float and first.confidence == pytest.approx(0.7)
    assert type(second.at) is float and second.at == 5.0


def test_numpy_strings_are_stored_and_read_back_as_python_strings(make_store):
    """The memory store gave back the np.str_ it was given, SQLite and Redis a str."""
    store = make_store()
    message = np.array(["hi there"])[0]
    store.save("alice", ConversationState(context=np.str_("ordering")), Turn(message, np.str_("hello"), "greeting", 0.5))
    state, (turn,) = store.load("alice"), store.history("alice")
    assert type(state.context) is str and state.context == "ordering"
    assert (type(turn.message), type(turn.reply)) == (str, str) and (turn.message, turn.reply) == ("hi there", "hello")


def test_a_string_enum_is_stored_as_its_value_by_every_store(make_store):
    """A str subclass is kept as its characters, not as its str(): a (str, Enum) member's is
    "Tag.GREETING" (SQLite and Redis stored "greeting" before numpy strings were made str)."""

    class Tag(str, enum.Enum):
        GREETING = "greeting"
        ORDERING = "ordering"

    store = make_store()
    store.save("alice", ConversationState(context=Tag.ORDERING), Turn("hi", "hello", Tag.GREETING, 0.5))
    state, (turn,) = store.load("alice"), store.history("alice")
    assert (type(state.context), state.context) == (str, "ordering")
    assert (type(turn.intent), turn.intent) == (str, "greeting")


def test_a_string_enum_sender_is_the_conversation_of_its_value_in_every_store(make_store):
    """Redis wrote the sender id into its keys with its str(): a (str, Enum) member's
    "Who.ALICE" was another conversation than "alice", as it is not in the other stores."""

    class Who(str, enum.Enum):
        ALICE = "alice"

    store = make_store()
    store.save(Who.ALICE, ConversationState(turns=1), Turn("hi", "hello", "greeting", 0.5))
    assert store.load("alice").turns == 1 and [t.message for t in store.history("alice")] == ["hi"]
    assert store.forget(Who.ALICE) and store.load("alice").turns == 0


@pytest.mark.parametrize(
    "state, turn, message",
    [
        (None, Turn("hi", "hello", "greeting", 0.5), "^state must be a ConversationState, got NoneType$"),
        ({"turns": 1}, Turn("hi", "hello", "greeting", 0.5), "^state must be a ConversationState, got dict$"),
        (ConversationState(), None, "^turn must be a Turn, got NoneType$"),
    ],
)
def test_a_save_of_something_else_than_a_state_and_a_turn_is_refused_by_every_store(make_store, state, turn, message):
    """The memory store kept it (the next load gave back None), the others raised AttributeError."""
    store = make_store()
    with pytest.raises(RequestError, match=message):
        store.save("alice", state, turn)
    assert store.load("alice") == ConversationState() and store.history("alice") == []
    kept = Turn("hi", "hello", "greeting", 0.5)
    store.save("alice", ConversationState(turns=1), kept)
    with pytest.raises(RequestError, match="^amended must be a Turn, got str$"):
        store.amend("alice", kept, "hello again")
    with pytest.raises(RequestError, match="^turn must be a Turn, got NoneType$"):
        store.amend("alice", None, kept)
    assert store.history("alice") == [kept]


def test_turn_and_state_fields_of_the_wrong_type_are_request_errors():
    with pytest.raises(RequestError, match="^turns must be a whole number, got float$"):
        ConversationState(turns=1.5)
    with pytest.raises(RequestError, match="^confidence must be a number, got str$"):
        Turn("hi", "hello", "greeting", "0.7")
    with pytest.raises(RequestError, match="^message must be a string, got NoneType$"):
        Turn(None, "hello", "greeting", 0.7)


@pytest.mark.parametrize("confidence", [float("nan"), float("inf"), np.float32("-inf")])
def test_a_turn_with_a_confidence_that_is_not_finite_is_refused_by_every_store(make_store, confidence):
    """SQLite refused a NaN confidence (it stores NULL), the memory store kept it and Redis wrote
    JSON's non-standard NaN: now every store refuses it before anything is written."""
    store = make_store()
    with pytest.raises(RequestError, match=r"^confidence must be a finite number, got (nan|inf|-inf)$"):
        store.save("dora", ConversationState(turns=1), Turn("hi", "hello", "greeting", confidence))
    with pytest.raises(RequestError, match=r"^at must be a finite number, got nan$"):
        Turn("hi", "hello", "greeting", 0.5, at=float("nan"))
    assert store.history("dora") == [] and store.load("dora") == ConversationState()


@pytest.mark.parametrize("where", ["sender", "message"])
def test_a_lone_surrogate_is_the_same_request_error_in_every_store(make_store, where):
    """SQLite raised a bare UnicodeEncodeError (and lost the turn), MemoryStore kept it."""
    store = make_store()
    sender, message = ("web-\ud800", "hello") if where == "sender" else ("carol", "hello \udc80")
    with pytest.raises(RequestError, match=rf"^{where} is not valid Unicode text \(a lone surrogate escape"):
        store.save(sender, ConversationState(turns=1), Turn(message, "hi", "greeting", 0.9))
    if where == "sender":
        for call in (store.load, store.history):
            with pytest.raises(RequestError, match="^sender is not valid Unicode text"):
                call(sender)
        with pytest.raises(RequestError, match="^sender is not valid Unicode text"), store.conversation(sender):
            pass


def test_the_error_for_a_surrogate_sender_does_not_show_the_sender():
    with pytest.raises(RequestError) as caught:
        MemoryStore().load("secret-id-\ud800")
    assert "secret-id" not in str(caught.value)


def test_a_closed_sqlite_store_refuses_every_use(tmp_path):
    """It reopened and pooled a connection no one closed, and wrote without its flock."""
    store = SQLiteStore(tmp_path / "c.db")
    store.save("bob", ConversationState(turns=1), Turn("hi", "hello", "greeting", 0.9))
    store.close()
    closed = r"the store is closed$"
    with pytest.raises(StoreError, match=closed):
        store.save("bob", ConversationState(turns=2), Turn("hi", "hello", "greeting", 0.9))
    with pytest.raises(StoreError, match=closed):
        store.load("bob")
    with pytest.raises(StoreError, match=closed):
        store.history("bob")
    with pytest.raises(StoreError, match=closed), store.conversation("bob"):
        pass
    assert store._idle == []
    store.close()  # twice is fine
    reopened = SQLiteStore(tmp_path / "c.db")
    assert reopened.load("bob") == ConversationState(turns=1)  # nothing was written after close
    reopened.close()


def test_a_closed_redis_store_refuses_every_use(redis_url):
    """It reconnected, pooled a connection no one closed, and went on writing."""
    store = open_store(redis_url)
    store.prefix = f"test-{uuid.uuid4().hex}:"
    store.save("bob", ConversationState(turns=1), Turn("hi", "hello", "greeting", 0.9))
    store.close()
    closed = r"^Redis conversation store: the store is closed$"
    try:
        with pytest.raises(StoreError, match=closed):
            store.save("bob", ConversationState(turns=2), Turn("hi", "hello", "greeting", 0.9))
        for call in (store.load, store.history, store.forget, store.generation):
            with pytest.raises(StoreError, match=closed):
                call("bob")
        with pytest.raises(StoreError, match=closed), store.conversation("bob"):
            pass
        store.close()  # twice is fine
        reopened = open_store(redis_url)
        reopened.prefix = store.prefix
        assert reopened.load("bob") == ConversationState(turns=1)  # nothing was written after close
        assert reopened.forget("bob")
        reopened.close()
    finally:
        keys = store._client.keys(store.prefix + "*")
        if keys:
            store._client.delete(*keys)
        store._client.close()


@pytest.mark.parametrize(
    "url, kwargs, message",
    [
        (5, {}, "the conversation store URL must be a string, got int"),
        ("memory", {"ttl_seconds": None}, "conversation idle time must be >= 0 seconds, got None"),
        ("memory", {"max_turns": "5"}, "turns kept per conversation must be >= 1, got 5"),
    ],
)
def test_open_store_refuses_arguments_of_the_wrong_type(url, kwargs, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        open_store(url, **kwargs)


def test_open_store_is_typed_as_a_store_a_with_block_closes():
    """``with open_store(url) as store:`` ran, but a type checker refused it: the declared return
    type, the store protocol, had no ``__enter__``/``__exit__``."""
    declared = typing.get_type_hints(open_store)["return"]
    assert {"__enter__", "__exit__", "load", "save", "close"} <= set(dir(declared))
    with open_store("memory") as store:
        assert isinstance(store, MemoryStore)


# -- predictor --------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True, "2"])
def test_predict_proba_refuses_a_batch_size_that_is_not_a_whole_number_from_1(default_predictor, batch_size):
    """-1 returned all-zero probabilities as if the model had said so."""
    with pytest.raises(RequestError, match=r"^batch_size must be a whole number >= 1 \(or None\)"):
        default_predictor.predict_proba(["hello there", "goodbye", "thanks a lot"], batch_size=batch_size)


def test_predict_proba_takes_a_numpy_batch_size(default_predictor):
    texts = ["hello there", "goodbye", "thanks a lot"]
    np.testing.assert_allclose(
        default_predictor.predict_proba(texts, batch_size=np.int64(2)),
        default_predictor.predict_proba(texts),
        atol=1e-6,
    )


@pytest.mark.parametrize("call", ["rank", "predict", "predict_proba", "features", "known_features"])
@pytest.mark.parametrize("texts", ["hello there", b"hello there", None, 5])
def test_a_bare_string_or_no_list_is_not_ranked_character_by_character(default_predictor, call, texts):
    with pytest.raises(RequestError, match="^texts must be a list of strings"):
        getattr(default_predictor, call)(texts)


def test_every_text_must_be_a_string(default_predictor):
    with pytest.raises(RequestError, match="^every text must be a string, got NoneType$"):
        default_predictor.rank(["hello", None])


def test_a_numpy_array_of_texts_is_ranked_as_its_list(default_predictor):
    texts = ["hello there", "goodbye"]
    assert default_predictor.rank(np.array(texts), top=2) == default_predictor.rank(texts, top=2)
    assert default_predictor.predict_proba(np.array([], dtype=str)).shape == (0, len(default_predictor.classes))


@pytest.mark.parametrize("method", ["features", "known_features", "predict_proba", "predict", "rank"])
def test_the_predictors_text_arguments_are_typed_to_take_the_numpy_arrays_they_accept(method):
    """A typed caller passing a numpy array of texts, as documented, gets no type error."""
    from legacy_assistant.classifier.predictor import Predictor

    hints = typing.get_type_hints(getattr(Predictor, method))
    assert np.ndarray in typing.get_args(hints["texts"]), hints["texts"]


@pytest.mark.parametrize("text", [None, 5, b"hi"])
def test_rank_one_names_its_text_argument(default_predictor, text):
    with pytest.raises(RequestError, match=f"^text must be a string, got {type(text).__name__}$"):
        default_predictor.rank_one(text)


@pytest.mark.parametrize("top", [0, -1, 1.5, True])
def test_top_must_be_a_whole_number_from_1(default_predictor, top):
    """top=-1 dropped the last class without a word."""
    with pytest.raises(RequestError, match=r"^top must be a whole number >= 1"):
        default_predictor.rank_one("hello", top=top)


# -- assistant and dialogue -------------------------------------------------------------------


@pytest.mark.parametrize("context", ["where is the station", b"where", None, 5, (t for t in ["hi"])])
def test_respond_refuses_a_context_that_is_not_a_list_of_turns(assistant, context):
    """A string was split into characters, its last 3 answered as three turns."""
    assistant.asked.clear()
    with pytest.raises(RequestError, match=r"^context must be a list of turns \(strings\), oldest first, got "
                       + type(context).__name__ + "$"):
        assistant.respond(context)
    assert assistant.asked == []
    assert assistant.respond(("where is", "the station")) == "a generated reply"


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda a: a.chat("u", None), "message"),
        (lambda a: a.chat(None, "hello"), "sender"),
        (lambda a: a.parse(None), "text"),
        (lambda a: a.classic(None), "sentence"),
    ],
)
def test_assistant_calls_name_the_argument_that_is_not_a_string(assistant, call, argument):
    with pytest.raises(RequestError, match=f"^{argument} must be a string, got NoneType$"):
        call(assistant)


def test_chat_refuses_a_lone_surrogate_before_classifying(assistant):
    with pytest.raises(RequestError, match=r"^message is not valid Unicode text"):
        assistant.chat("carol", "hello \udc80")
    assert assistant.history("carol") == []


@pytest.mark.parametrize("top", [0, -1, 2.5, "3"])
def test_parse_needs_a_top_of_at_least_1(assistant, top):
    """top=0 raised IndexError; top=-1 dropped the last class."""
    with pytest.raises(RequestError, match=rf"^top must be a whole number >= 1 \(or None\), got {top!r}$"):
        assistant.parse("hello", top=top)
    assert len(assistant.parse("hello", top=1)["intent_ranking"]) == 1
    assert len(assistant.parse("hello", top=np.int64(2))["intent_ranking"]) == 2  # as the predictor takes it
    assert len(assistant.parse("hello", top=None)["intent_ranking"]) == len(assistant.predictor.classes)


@pytest.mark.parametrize("seed", ["1", 1.5, True, [1]])
def test_a_seed_that_is_no_whole_number_is_a_config_error(default_predictor, seed):
    """random.Random hashed "1" and 1.5 into seeds of their own, and raised TypeError for a list."""
    from legacy_assistant.serving.dialogue import DialoguePolicy

    with pytest.raises(ConfigError, match=rf"^seed must be a whole number \(or None\), got {re.escape(repr(seed))}$"):
        DialoguePolicy.from_manifest(default_predictor.manifest, seed=seed)


def test_a_numpy_seed_chooses_the_replies_its_int_does(default_predictor):
    """random.Random refused np.int64 with a TypeError."""
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.serving.assistant import Assistant

    replies = []
    for seed in (np.int64(7), 7):
        assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=seed),
                              MemoryStore())
        replies.append([assistant.chat(f"s{i}", "hello there").text for i in range(8)])
    assert replies[0] == replies[1]


@pytest.mark.parametrize("store", [None, "memory", "sqlite:///tmp/c.db"])
def test_an_assistant_needs_a_store_object_not_a_url(default_predictor, store):
    """A URL was taken as the store, and the first turn failed with AttributeError."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy

    policy = DialoguePolicy.from_manifest(default_predictor.manifest)
    with pytest.raises(ConfigError, match=rf"^store must be a conversation store, got {type(store).__name__} \(.*open_store"):
        Assistant(default_predictor, policy, store)


@pytest.mark.parametrize("name", ["threshold", "escape_confidence"])
def test_a_threshold_that_is_no_number_is_a_config_error(default_predictor, name):
    from legacy_assistant.serving.dialogue import DialoguePolicy

    with pytest.raises(ConfigError, match=f"^{name} must be between 0 and 1, got '0.5'$"):
        DialoguePolicy.from_manifest(default_predictor.manifest, **{name: "0.5"})


# -- closed models ----------------------------------------------------------------------------

CLOSED = r": it is closed \(close\(\) was called\); load it again to use it$"


class _ClosedMidway:
    """A loaded model whose next run meets a close() from another thread: the owner is closed
    and the run fails as a session closed under it does. Its own close() leaves the model open
    (a fixture shared by other tests)."""

    def __init__(self, model):
        self.model = model
        self.owner = None

    def _cut_short(self, *args, **kwargs):
        self.owner.close()
        raise RuntimeError("Attempted to use a closed Session.")

    decode = score = predict_proba = _cut_short

    def close(self):
        pass

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_a_closed_predictor_refuses_every_call_naming_its_model(tiny_model_dir):
    """Its calls raised TensorFlow's 'Attempted to use a closed Session.', and features(), or a
    call of no texts, went on answering."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.errors import ModelClosed

    with Predictor.load(tiny_model_dir, 1, 1) as predictor:
        assert predictor.rank_one("hello") and not predictor.closed
    assert predictor.closed
    closed = "^Predictor " + re.escape(str(predictor.info.path)) + CLOSED
    for call in (
        lambda: predictor.predict(["hello"]),
        lambda: predictor.predict([]),
        lambda: predictor.predict_proba(["hello"], batch_size=1),
        lambda: predictor.rank(["hello"]),
        lambda: predictor.rank_one("hello"),
        lambda: predictor.features(["hello"]),
        lambda: predictor.known_features(["hello"]),
    ):
        with pytest.raises(ModelClosed, match=closed):
            call()
    predictor.close()  # twice is harmless
    assert issubclass(ModelClosed, RuntimeError)  # what a caller caught before still catches it


def test_a_predictor_closed_while_its_call_runs_raises_model_closed(default_predictor):
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.errors import ModelClosed

    midway = _ClosedMidway(default_predictor._classifier)
    midway.owner = predictor = Predictor(default_predictor.info, midway)
    with pytest.raises(ModelClosed, match=CLOSED):
        predictor.predict(["hello"])


def test_a_closed_responder_refuses_every_call_naming_its_model(default_responder):
    """Its calls raised TensorFlow's 'Attempted to use a closed Session.'; one of no contexts
    still answered []."""
    from legacy_assistant.errors import ModelClosed
    from legacy_assistant.responder.batching import EncodedPair, pad_batch
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.responder.vocabulary import END

    responder = Responder(default_responder.info, _ClosedMidway(default_responder.model))
    batch = pad_batch([EncodedPair(responder._encode_context(["hello"]), (END,), 0)], responder.spec.max_context_turns)
    responder.close()
    assert responder.closed
    closed = "^Responder " + re.escape(str(responder.info.path)) + CLOSED
    for call in (
        lambda: responder.respond(["hello"]),
        lambda: responder.respond_batch([["hello"]], mode="beam"),
        lambda: responder.respond_batch([]),
        lambda: responder.check_request(["hello"]),
        lambda: responder.score(["hello"], "hi"),
        lambda: responder.decode_batch(batch, "greedy"),
    ):
        with pytest.raises(ModelClosed, match=closed):
            call()
    responder.close()  # twice is harmless
    assert default_responder.respond(["hello"])  # the model it wrapped is another's, still open


@pytest.mark.parametrize("call", ["respond", "score"])
def test_a_responder_closed_while_its_call_runs_raises_model_closed(default_responder, call):
    from legacy_assistant.errors import ModelClosed
    from legacy_assistant.responder.responder import Responder

    midway = _ClosedMidway(default_responder.model)
    midway.owner = responder = Responder(default_responder.info, midway)
    with pytest.raises(ModelClosed, match=CLOSED):
        responder.respond(["hello"]) if call == "respond" else responder.score(["hello"], "hi")


def test_threads_that_meet_a_close_get_model_closed_not_a_session_error(tiny_model_dir):
    """Every thread calls until the predictor refuses: whether its call came after close() or was
    cut short by it, the refusal is the same ModelClosed."""
    import threading

    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.errors import ModelClosed

    predictor = Predictor.load(tiny_model_dir, 1, 1)
    answered, ended = threading.Event(), []

    def ask():
        for _ in range(100_000):
            try:
                predictor.rank(["hello there", "where are you"])
            except Exception as exc:  # noqa: BLE001 - the test looks at what it is
                ended.append(exc)
                return
            answered.set()
        ended.append(None)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    answered.wait(60)
    predictor.close()
    for thread in threads:
        thread.join(60)
    assert len(ended) == 4 and all(isinstance(exc, ModelClosed) for exc in ended), ended


def test_a_closed_assistant_refuses_every_call_and_stores_nothing(tiny_model_dir):
    """A closed assistant classified with a closed session (TensorFlow's RuntimeError) and went on
    answering history and forget."""
    from legacy_assistant.errors import ModelClosed
    from legacy_assistant.serving.assistant import Assistant

    store = MemoryStore()
    with Assistant.load(tiny_model_dir, store=store, seed=0) as assistant:
        assistant.chat("alice", "hello")
    assert assistant.closed and assistant.predictor.closed
    closed = "^Assistant of " + re.escape(str(assistant.predictor.info.path)) + CLOSED
    for call in (
        lambda: assistant.chat("alice", "hello again"),
        lambda: assistant.parse("hello"),
        lambda: assistant.classic("hello"),
        lambda: assistant.respond(["hello"]),
        lambda: assistant.history("alice"),
        lambda: assistant.forget("alice"),
        assistant.warm_up,
        lambda: assistant.enable_batching(4, 0),
    ):
        with pytest.raises(ModelClosed, match=closed):
            call()
    assistant.close()  # twice is harmless
    assert [turn.message for turn in store.history("alice")] == ["hello"]  # the store, open, holds one turn


def _live_tensorflow_graphs_and_sessions():
    import gc

    gc.collect()
    return sum(
        1
        for obj in gc.get_objects()
        if type(obj).__name__ in ("Graph", "Session") and type(obj).__module__.startswith("tensorflow")
    )


def test_closed_models_let_go_of_their_graphs_and_sessions_while_still_referenced(tiny_model_dir):
    """close() closed the session but kept it and its graph until the object was dropped: the
    name a ``with`` block binds, or a list of closed models, held every graph in memory."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.responder.responder import Responder
    from legacy_assistant.serving.assistant import Assistant
    from tests.helpers import DEFAULT_RESPONDER

    before = _live_tensorflow_graphs_and_sessions()
    with Predictor.load(tiny_model_dir, 1, 1) as predictor:
        assert _live_tensorflow_graphs_and_sessions() == before + 2
    responder = Responder.load(DEFAULT_RESPONDER, 1, 1)
    responder.close()
    with Assistant.load(tiny_model_dir, seed=0, responder_dir=DEFAULT_RESPONDER) as assistant:
        assert _live_tensorflow_graphs_and_sessions() == before + 4
    kept = [predictor, responder, assistant]
    assert _live_tensorflow_graphs_and_sessions() == before
    assert all(model.closed for model in kept) and responder.guided in (True, False)  # still answered


def test_a_call_that_passed_the_check_as_close_ran_raises_model_closed(tiny_model_dir):
    """A call in another thread that found the model open, then reads the part close() let go
    of, is refused with ModelClosed, not an AttributeError or a NoneType error."""
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.errors import ModelClosed
    from legacy_assistant.responder.responder import Responder
    from tests.helpers import DEFAULT_RESPONDER

    predictor = Predictor.load(tiny_model_dir, 1, 1)
    responder = Responder.load(DEFAULT_RESPONDER, 1, 1)
    for model in (predictor, responder):
        model.close()
        model._closing.check = lambda: None  # as if checked before close() ran
    for call in (
        lambda: predictor.predict(["hello"]),
        lambda: predictor.predict_proba(["hello"], batch_size=1),
        lambda: responder.respond(["hello"]),
        lambda: responder.score(["hello"], "hi"),
        lambda: responder.model.decode,
    ):
        with pytest.raises(ModelClosed, match=CLOSED):
            call()
    predictor.close()  # twice is harmless
    responder.close()


@pytest.mark.parametrize("call", ["chat", "respond"])
def test_a_batched_call_that_a_close_cuts_short_raises_model_closed(tiny_model_dir, call):
    """With enable_batching, a call still waiting in a batcher when close() came raised the
    batcher's BatcherClosed, which ``except ModelClosed`` does not catch."""
    from legacy_assistant.errors import ModelClosed
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.batching import BatcherClosed

    assistant = Assistant.load(tiny_model_dir, seed=0).enable_batching(4, 0)

    def cut_short(*args):  # what a batcher answers a request waiting in it as close() comes
        assistant.close()
        raise BatcherClosed("classifier: the batcher was closed while the request waited")

    assistant._classify = assistant._generate = cut_short
    closed = "^Assistant of " + re.escape(str(assistant.predictor.info.path)) + CLOSED
    with pytest.raises(ModelClosed, match=closed):
        assistant.chat("alice", "hello") if call == "chat" else assistant.respond(["hello"])


@pytest.mark.parametrize(
    "kwargs, name",
    [({"model_dir": 5}, "model_dir"), ({"responder_dir": 5}, "responder_dir"), ({"model_dir": None}, "model_dir")],
)
def test_assistant_load_names_the_directory_argument_of_the_wrong_type(kwargs, name):
    """Both were refused as 'path', the models' loaders' argument; a responder_dir of the wrong
    type only after the classifier had loaded."""
    from legacy_assistant.serving.assistant import Assistant

    with pytest.raises(RequestError, match=f"^{name} must be a string or an os.PathLike, got "):
        Assistant.load(**kwargs)


def test_respond_without_a_responder_says_how_to_load_one(default_predictor):
    """It told the library's caller to start the server with a responder."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy

    policy = DialoguePolicy.from_manifest(default_predictor.manifest)
    without = Assistant(default_predictor, policy, MemoryStore())
    with pytest.raises(RequestError, match=r"^no responder is loaded: .*responder_dir=") as caught:
        without.respond(["hi"])
    assert "server" not in str(caught.value)


@pytest.mark.parametrize(("method", "argument"), [("respond", "context"), ("score", "context"),
                                                  ("check_request", "context"), ("respond_batch", "contexts"),
                                                  ("respond_batch", "conditions")])
def test_the_responders_arguments_are_typed_to_take_the_numpy_arrays_they_accept(method, argument):
    """A typed caller passing a numpy array of turns, contexts or conditions gets no type error."""
    from legacy_assistant.responder.responder import Responder

    hint = typing.get_type_hints(getattr(Responder, method))[argument]
    assert np.ndarray in typing.get_args(hint), hint


def test_assistant_respond_is_typed_to_take_the_numpy_array_of_turns_it_accepts():
    """A typed caller passing a numpy array as the context, as documented, gets no type error."""
    from legacy_assistant.serving.assistant import Assistant

    context = typing.get_type_hints(Assistant.respond)["context"]
    assert np.ndarray in typing.get_args(context), context


@pytest.mark.parametrize("context", [np.array(["where is", "the station"]), ("where is", "the station")])
def test_respond_takes_a_numpy_array_or_a_tuple_of_turns_as_their_list(assistant, context):
    """The classifier ranks a numpy array of texts as its list; the responder refused one."""
    assistant.asked.clear()
    assert assistant.respond(context) == "a generated reply"
    assert assistant.asked == [["where is", "the station"]] and all(type(t) is str for t in assistant.asked[0])


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_an_assistant_refuses_pickling_and_copying_naming_itself_and_assistant_load(assistant, how):
    import copy
    import pickle

    call = {"pickle": pickle.dumps, "deepcopy": copy.deepcopy, "copy": copy.copy}[how]
    with pytest.raises(TypeError, match="^an Assistant cannot be pickled or copied") as caught:
        call(assistant)
    assert "load it there with Assistant.load" in str(caught.value)
    assert "Predictor" not in str(caught.value)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
@pytest.mark.parametrize("model", ["default_predictor", "default_responder"])
def test_a_model_refuses_copying_as_well_as_pickling_and_says_to_share_it(request, model, how):
    """A copy was refused as 'cannot be pickled', with advice for another process only, and the
    message spoke of a graph and session, which a model of the tf2 runtime does not hold."""
    import copy
    import pickle

    loaded = request.getfixturevalue(model)
    name = type(loaded).__name__
    call = {"pickle": pickle.dumps, "deepcopy": copy.deepcopy, "copy": copy.copy}[how]
    with pytest.raises(TypeError, match=f"^a {name} cannot be pickled or copied") as caught:
        call(loaded)
    message = str(caught.value)
    assert f"load it there with {name}.load" in message
    assert "in this process, share this one" in message
    assert "graph and session" not in message


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_a_store_refuses_pickling_and_copying_naming_itself_and_the_original_stays_open(make_store, how):
    """Pickling a store raised Python's own "cannot pickle '_thread.RLock' object" (or '_thread.lock',
    '_thread._local'), and a shallow copy shared the SQLite store's connections: closing the copy
    broke the original."""
    import copy
    import pickle

    store = make_store()
    call = {"pickle": pickle.dumps, "deepcopy": copy.deepcopy, "copy": copy.copy}[how]
    with pytest.raises(TypeError, match=f"^a {type(store).__name__} cannot be pickled or copied") as caught:
        call(store)
    assert "_thread" not in str(caught.value)
    assert "share this one between threads" in str(caught.value)
    store.save("alice", ConversationState(context="ordering"), Turn("hi", "hello", "greeting", 0.5))
    assert store.load("alice").context == "ordering"
    assert [turn.message for turn in store.history("alice")] == ["hi"]


@pytest.mark.parametrize("kind", ["IntentsError", "DataError", "RepeatedCorpusError"])
def test_a_file_error_with_its_problems_survives_pickling_and_copying(kind):
    """Their __init__ takes (source, problems), not the message Exception rebuilds them from:
    unpickling raised TypeError, so a process pool whose worker raised one broke
    (BrokenProcessPool) instead of giving the caller the error."""
    import copy
    import pickle

    from legacy_assistant.errors import DataError, IntentsError
    from legacy_assistant.responder.corpora import RepeatedCorpusError

    cls = {"IntentsError": IntentsError, "DataError": DataError, "RepeatedCorpusError": RepeatedCorpusError}[kind]
    error = cls("intents.json", ["intent 1: no patterns", "intent 2: no tag"])
    for back in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(back) is cls
        assert str(back) == str(error)
        assert (back.source, back.problems) == ("intents.json", ["intent 1: no patterns", "intent 2: no tag"])


def test_the_unlearnable_intents_error_survives_pickling_and_copying():
    """Built from its tags, it could not be rebuilt from its message: unpickling raised TypeError,
    which breaks a process pool whose worker trains a model on such intents."""
    import copy
    import pickle

    from legacy_assistant.classifier.training import UnlearnableIntentsError

    error = UnlearnableIntentsError(["greeting", "goodbye"])
    for back in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(back) is UnlearnableIntentsError
        assert (str(back), back.tags) == (str(error), ["greeting", "goodbye"])


@pytest.mark.parametrize("at", [None, (3, 5)])
def test_the_duplicate_key_error_survives_pickling_and_copying(at):
    """Built from its key and pairs, it could not be rebuilt from its message: unpickling raised
    TypeError, which breaks a process pool or a logging queue handler that carries it."""
    import copy
    import pickle

    from legacy_assistant.common.jsonfile import DuplicateKeyError

    error = DuplicateKeyError("tag", [("tag", "greeting"), ("tag", "hello")], at)
    for back in (pickle.loads(pickle.dumps(error)), copy.copy(error), copy.deepcopy(error)):
        assert type(back) is DuplicateKeyError
        assert str(back) == str(error)
        assert (back.key, back.pairs, back.at) == ("tag", [("tag", "greeting"), ("tag", "hello")], at)


@pytest.mark.parametrize("sender", ["", " ", "\t\n"])
def test_a_blank_sender_is_refused_by_history_and_forget_as_by_chat(assistant, sender):
    """chat() refused a blank sender while history() answered [] and forget() False for it, as if
    such a conversation could exist; the HTTP routes refuse it on all three."""
    from legacy_assistant.errors import RequestError

    for call in (lambda: assistant.chat(sender, "hello"), lambda: assistant.history(sender),
                 lambda: assistant.forget(sender)):
        with pytest.raises(RequestError, match="^sender must not be blank$"):
            call()
    assert assistant.history("someone") == [] and assistant.forget("someone") is False  # unknown: no error
