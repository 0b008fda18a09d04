"""The assistant as a service: intent model + dialogue policy + conversation store, and an
optional generative responder that answers what no intent does.

The web app, the playground and the terminal chat all talk to this object, so none of them knows
how a reply is made, and this object knows nothing of HTTP.

Model calls go through two callables, ``classify`` (one text -> :class:`Prediction`) and
``generate`` (one context -> reply), so that the server can route them through a batcher
(:mod:`legacy_assistant.serving.batching`) without this class knowing.
"""

from __future__ import annotations

import logging
import numbers
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from legacy_assistant.artifacts.directory import check_load_arguments
from legacy_assistant.classifier.intents import FALLBACK_TAG
from legacy_assistant.classifier.predictor import Prediction, Predictor, Texts
from legacy_assistant.common.closing import Closing
from legacy_assistant.common.request_context import request_id_suffix
from legacy_assistant.common.tokens import is_short_token
from legacy_assistant.defaults import DEFAULT_MODEL_DIR
from legacy_assistant.errors import ConfigError, MessageIdReused, RequestError, StoreError
from legacy_assistant.responder.modes import (
    CAKECHAT_EMOTIONS,
    DEFAULT_CONDITION,
    MODES,
    check_seed,
    checked_condition_strength,
    checked_context,
    has_words,
    known_condition,
)
from legacy_assistant.serving.dialogue import (
    DEFAULT_ESCAPE_CONFIDENCE,
    FALLBACK_MODES,
    DialoguePolicy,
    Reply,
)
from legacy_assistant.stores.base import (
    ConversationState,
    ConversationStore,
    MemoryStore,
    Turn,
    check_text,
    sender_digest,
)

if TYPE_CHECKING:
    from legacy_assistant.responder.responder import Responder

log = logging.getLogger(__name__)

RANKING_SIZE = 10
# The fewest stored turns (each a message and its reply) a chat's generated reply is given as
# context; a responder that reads more turns (its spec's max_context_turns) is given that many.
# The responder then reads the last turns of what it is given that hold a word, as many as it
# was trained with (3 for the shipped one, as cakechat's API read): every stored reply holds
# one, so its window fills however many stored messages hold none.
CONTEXT_TURNS = 3
DEFAULT_GENERATION_MODE = "sample_rerank"
# A token the reply already holds has its probability divided by this: cakechat's API setting.
# Without it greedy replies of a small model loop ("I am not sure. I am not sure. ...").
SERVING_REPETITION_PENALTY = 10.0
# What :meth:`Assistant.warm_up` asks the models.
WARM_UP_TEXT = "hello"

# How long a resent message waits for the generated reply of its first copy, still being written
# by this process, before it is answered with what is stored (the canned reply).
REPLAY_WAIT_SECONDS = 60.0

Classify = Callable[[str], Prediction]
Generate = Callable[[Sequence[str], str, str, "int | None", "float | None"], str]


def check_message_id(message_id: object) -> None:
    """Raise :class:`RequestError` unless ``message_id`` is None or a short token: 1 to 64 of
    letters, digits, ``.``, ``_`` or ``-``."""
    if message_id is not None and not is_short_token(message_id):  # as a request id is
        raise RequestError(f"message_id must be 1 to 64 letters, digits, '.', '_' or '-', got {message_id!r:.80}")


def _check_string(name: str, value: object) -> None:
    # before the text joins a batch, where a non-string would fail the other requests' call too
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string, got {type(value).__name__}")


def _check_filled(name: str, value: object) -> None:
    # a sender the chat would refuse has no conversation to read or forget: refused alike
    check_text(name, value)  # a string from here on
    if isinstance(value, str) and not value.strip():
        raise RequestError(f"{name} must not be blank")


class Assistant:
    """One loaded intent model (and optionally a responder) with its dialogue policy, answering
    over a conversation store.

    The store may outlive the assistant: a reload builds a new assistant over the same store.

    Args:
        fallback: ``generate``: a turn that falls back gets a reply the responder generates from
            the conversation's last turns (the canned one when there is no responder, or the
            generated reply is empty); ``canned``: always the model's canned fallback.
        generation_mode: how generated replies are decoded when the caller does not say.
        classify, generate: the model calls (default: straight to the predictor and the
            responder; the server passes batched ones).
    """

    def __init__(
        self,
        predictor: Predictor,
        policy: DialoguePolicy,
        store: ConversationStore,
        responder: Responder | None = None,
        fallback: str = "generate",
        generation_mode: str = DEFAULT_GENERATION_MODE,
        classify: Classify | None = None,
        generate: Generate | None = None,
    ) -> None:
        if fallback not in FALLBACK_MODES:
            raise ConfigError(f"fallback must be one of {', '.join(FALLBACK_MODES)}, got {fallback!r}")
        if generation_mode not in MODES:
            raise ConfigError(f"generation mode must be one of {', '.join(MODES)}, got {generation_mode!r}")
        if store is None or isinstance(store, (str, bytes, os.PathLike)):
            # taken as it was, and the first turn failed with an AttributeError
            raise ConfigError(
                f"store must be a conversation store, got {type(store).__name__} "
                "(legacy_assistant.stores.base.open_store makes one from a URL such as 'memory' or 'sqlite:///PATH')"
            )
        self.predictor = predictor
        info = getattr(predictor, "info", None)
        self._closing = Closing("Assistant" if info is None else f"Assistant of {info.path}")
        self.policy = policy
        self.store = store
        self.responder = responder
        self.fallback = fallback
        self.generation_mode = generation_mode
        self._classify = classify or (lambda text: predictor.predict([text])[0])
        self._generate = generate
        self._batchers: list[Any] = []
        # (sender, message_id) of the stored turns whose generated reply is still being written:
        # a resend of one waits for it (set when it is written, or given up)
        self._writing: dict[tuple[str, str], threading.Event] = {}
        self._writing_lock = threading.Lock()
        if generate is None and responder is not None:
            self._generate = responder.respond

    @classmethod
    def load(
        cls,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        threshold: float | None = None,
        seed: int | None = None,
        store: ConversationStore | None = None,
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        follow_ups: str = "yield",
        escape_confidence: float = DEFAULT_ESCAPE_CONFIDENCE,
        responder_dir: str | Path | None = None,
        fallback: str = "generate",
        generation_mode: str = DEFAULT_GENERATION_MODE,
        condition_strength: float = 0.0,
        runtime: str | None = None,
    ) -> Assistant:
        """Load the model at ``model_dir`` (and the responder at ``responder_dir``, if given);
        raises :class:`~legacy_assistant.errors.ArtifactError` for a missing or damaged one.
        Thread counts go to TensorFlow's sessions (0: one per usable CPU); ``condition_strength`` is
        the responder's condition guidance (:class:`~legacy_assistant.responder.responder.DecodingOptions`).
        ``runtime`` (``compat`` or ``tf2``; None: the process's choice,
        :func:`compat.selection.selected`) loads both models, each of which must have been
        written for it (a migrated pair: ``runtime="tf2"``)."""
        # both paths before either model loads, each named as the caller passed it
        check_load_arguments(model_dir, runtime, "model_dir")
        if responder_dir is not None:
            check_load_arguments(responder_dir, runtime, "responder_dir")
        predictor = Predictor.load(model_dir, intra_op_threads, inter_op_threads, runtime=runtime)
        responder = None
        try:
            policy = DialoguePolicy.from_manifest(
                predictor.manifest,
                threshold=threshold,
                seed=seed,
                follow_ups=follow_ups,
                escape_confidence=escape_confidence,
            )
            if responder_dir is not None:
                from legacy_assistant.responder.responder import DecodingOptions, Responder

                options = DecodingOptions(
                    repetition_penalty=SERVING_REPETITION_PENALTY, condition_strength=condition_strength
                )
                responder = Responder.load(
                    responder_dir, intra_op_threads, inter_op_threads, options=options, runtime=runtime
                )
            return cls(
                predictor,
                policy,
                store if store is not None else MemoryStore(),
                responder,
                fallback=fallback,
                generation_mode=generation_mode,
            )
        except BaseException:
            predictor.close()
            if responder is not None:
                responder.close()
            raise

    def enable_batching(
        self,
        max_batch_size: int,
        max_wait_s: float,
        on_classifier_batch: Callable[[int], None] | None = None,
        on_responder_batch: Callable[[int], None] | None = None,
    ) -> Assistant:
        """Route both models' calls through micro-batchers
        (:mod:`legacy_assistant.serving.batching`): concurrent requests share one
        ``Session.run``. ``on_*_batch(size)`` is called for each batched call. Returns self."""
        self._closing.check()  # a closed assistant's batchers would wait on closed models
        from legacy_assistant.serving.batching import BatchedClassifier, BatchedResponder

        classifier = BatchedClassifier(self.predictor, max_batch_size, max_wait_s, on_batch=on_classifier_batch)
        self._batchers.append(classifier)
        self._classify = classifier.predict_one
        if self.responder is not None:
            responder = BatchedResponder(self.responder, max_batch_size, max_wait_s, on_batch=on_responder_batch)
            self._batchers.append(responder)
            self._generate = responder.respond
        return self

    def share_writing(self, previous: Assistant) -> None:
        """Take over ``previous``'s notes of the generated replies still being written, when both
        answer over one store (a reload swaps this one in for ``previous``): a resend that reaches
        this assistant waits for a reply ``previous`` is writing, as one that reached ``previous``
        would. Called before this assistant answers any turn."""
        if previous.store is self.store:
            self._writing, self._writing_lock = previous._writing, previous._writing_lock

    @property
    def emotions(self) -> tuple[str, ...]:
        """The conditions the responder can be asked for; () without a responder."""
        return tuple(self.responder.conditions) if self.responder is not None else ()

    @property
    def accepted_emotions(self) -> tuple[str, ...]:
        """The emotions a request may name: the responder's conditions, or cakechat's five when no
        responder is loaded (nothing is generated then, but a client's request stays valid)."""
        return self.emotions or CAKECHAT_EMOTIONS

    # -- requests ---------------------------------------------------------------------------

    def parse(self, text: str, top: int | None = RANKING_SIZE) -> dict[str, Any]:
        """Rasa-shaped parse result (``entities`` always empty); the raw ranking (``top``
        intents, ``None``: all), no dialogue rules applied. Raises :class:`RequestError` for a
        ``text`` that is not a string or a ``top`` that is not a whole number >= 1."""
        self._closing.check()
        _check_string("text", text)
        if top is not None and (isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 1):
            # 0 leaves no intent to name, and a negative top would drop the last ones silently
            raise RequestError(f"top must be a whole number >= 1 (or None), got {top!r}")
        ranking = self._classify(text).ranking[:top]
        return {
            "text": text,
            "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
            "entities": [],  # Rasa clients read it; an intent classifier extracts none
            "intent_ranking": [{"name": name, "confidence": confidence} for name, confidence in ranking],
        }

    def chat(
        self,
        sender: str,
        message: str,
        emotion: str | None = None,
        seed: int | None = None,
        condition_strength: float | None = None,
        message_id: str | None = None,
    ) -> Reply:
        """Answer one turn of ``sender``'s conversation; the turn is stored before returning.

        ``message_id`` (a short token the client picks per message, see :func:`check_message_id`)
        makes a resend harmless: when the conversation's stored turns already hold one with that
        id, its reply is given again (``replayed``), with nothing classified or stored; else the
        id is stored with the turn. The stored turns are searched inside the store's hold of the
        conversation, so two copies sent at once make one turn. Another message under the id of
        a stored turn raises :class:`MessageIdReused`, and nothing is stored. A replay of a turn whose generated
        reply is still being written by this assistant (or by the one a reload replaced with it, see
        :meth:`share_writing`) waits for it (at most :data:`REPLAY_WAIT_SECONDS`); one written by
        another process is given as stored then.

        A reply the responder writes is made outside the store's hold: the turn is stored first
        with the canned fallback, then amended to the generated reply. A conversation deleted
        while its reply was generated stays deleted (the reply is still returned), and so does
        one deleted while the message was classified: the turn is answered, and not stored.

        ``emotion`` is the responder's condition for a generated reply (default neutral), and
        ``condition_strength`` its guidance (default the server's); an unknown emotion or a bad
        strength raises :class:`RequestError` whether or not this turn needs the responder.
        ``seed`` makes a generated reply in a sampling mode repeatable (``None``: a fresh draw);
        one that is not a 64-bit integer raises :class:`RequestError`, as an emotion does. A
        ``sender`` or ``message`` that is not a string, is blank, or that no store can keep (a
        lone surrogate escape), raises :class:`RequestError` before anything is classified or
        stored, as the HTTP API refuses them.

        Every call of a closed assistant (:meth:`close`) raises
        :class:`~legacy_assistant.errors.ModelClosed`, before anything is classified or stored.
        """
        self._closing.check()
        for name, text in (("sender", sender), ("message", message)):
            _check_filled(name, text)
        self.check_emotion(emotion)
        self.check_condition_strength(condition_strength)
        # checked here, not only by the responder: its refusal below would be taken for a
        # context of no word and answered with the canned fallback
        check_seed(seed)
        check_message_id(message_id)
        if message_id is not None:
            stored = self._stored_turn(sender, message_id)  # a resend: no need to classify it
            if stored is not None:
                return self._replay(sender, stored, message)
        # The message is classified outside the store's hold: a DELETE of the conversation may
        # land meanwhile. The store's generation of the sender changes with it, and the turn is
        # then not stored (it would bring the forgotten conversation back).
        generation = self.store.generation(sender)
        with self._closing.call():  # a batched call that close() cut short: ModelClosed, as every other
            prediction = self._classify(message)
        understood = prediction.known_features > 0
        # Two turns of one sender must not interleave load -> decide -> save, or one turn's
        # context change is lost; the store holds the sender for that span.
        writing = None
        try:
            with self.store.conversation(sender):
                # a copy of this message sent at once may have been stored since the look above
                stored = None if message_id is None else self._stored_turn(sender, message_id)
                if stored is None:
                    forgotten = self.store.generation(sender) != generation
                    state = self.store.load(sender)
                    reply, next_state = self.policy.decide(state, prediction.ranking, understood)
                    context = self._context(sender, message) if self._generates(reply) else None
                    if context is not None and not forgotten:
                        # noted before the save, which a resend may read as soon as it is committed
                        writing = self._start_writing(sender, message_id)
                    canned = None if forgotten else self._save(sender, message, reply, next_state, message_id)
            if stored is not None:
                return self._replay(sender, stored, message)
            return self._answer(sender, reply, context, canned, forgotten, emotion, seed, condition_strength)
        finally:
            if writing is not None:  # written, or given up: a resend waiting for it reads it now
                self._done_writing(sender, message_id, writing)

    def _answer(
        self,
        sender: str,
        reply: Reply,
        context: list[str] | None,
        canned: Turn | None,
        forgotten: bool,
        emotion: str | None,
        seed: int | None,
        condition_strength: float | None,
    ) -> Reply:
        """The reply to a turn decided (and stored as ``canned``, unless None): ``reply``, or the
        reply the responder writes from ``context``, which then replaces the stored canned one."""
        if forgotten:
            log.info(
                "%s: the conversation was deleted while this turn was classified: answered, not stored%s",
                sender_digest(sender),
                request_id_suffix(),
            )
        if context is None:
            return reply
        # Generating takes tens of milliseconds, and the SQLite store's hold spans every sender of
        # the server: the reply is made outside it. The turn was stored first, with its canned
        # reply, so a later turn of this sender follows it, and a conversation deleted meanwhile
        # stays deleted: the amend below finds no turn to change and writes nothing.
        try:
            text = self.respond(context, emotion, seed=seed, condition_strength=condition_strength)
        except RequestError:
            # the emotion, strength and seed were checked above: the context holds no word the responder
            # can read (a first message of a zero-width space), and the canned fallback answers
            return reply
        except Exception:  # noqa: BLE001 - the turn is stored with its canned reply: that is the answer
            # An error here (the server shutting down, a failed decode) must not tell the client to
            # send again: the turn is stored already, and a second one would follow it.
            log.exception(
                "%s: the generated reply failed; the canned fallback answers%s",
                sender_digest(sender),
                request_id_suffix(),  # the client got a 200: the id ties this line to its request
            )
            return reply
        if not has_words(text):
            return reply
        generated = replace(reply, text=text, generated=True)
        if canned is None:  # not stored: nothing to amend
            return generated
        try:
            with self.store.conversation(sender):
                self.store.amend(sender, canned, replace(canned, reply=text, generated=True))
        except StoreError as exc:  # as above: the turn is stored, so no error that invites a retry
            log.warning(
                "%s: the generated reply could not replace the stored canned one: %s%s",
                sender_digest(sender),
                exc,
                request_id_suffix(),
            )
        return generated

    def respond(
        self,
        context: Texts,
        emotion: str | None = None,
        mode: str | None = None,
        seed: int | None = None,
        condition_strength: float | None = None,
    ) -> str:
        """The responder's reply to ``context`` (turns, oldest first; the responder reads the
        last of them that hold a word, as many as it was trained with), ``""`` when it has
        nothing to say; ``condition_strength`` (None: the server's) as :meth:`Responder.respond`
        takes it. Raises
        :class:`RequestError` without a responder, for a context that is not a list of turns, for
        an unknown emotion or mode, or a strength out of range or not supported by the responder."""
        self._closing.check()
        if self._generate is None:
            raise RequestError(
                "no responder is loaded: load the assistant with one (Assistant.load(..., responder_dir=DIR)) "
                "to generate replies"
            )
        chosen = self.generation_mode if mode is None else mode
        if chosen not in MODES:
            raise RequestError(f"unknown mode {chosen!r}; expected one of {', '.join(MODES)}")
        self.check_emotion(emotion)
        # as Responder.respond takes them: list("a string") would make each character a turn
        # not cut to the last turns here: a turn with no word (a zero-width space) would take the
        # place of one with words, which the responder skips to
        turns = list(checked_context(context))
        if emotion is None:
            emotion = self.responder.default_condition if self.responder is not None else DEFAULT_CONDITION
        with self._closing.call():
            return self._generate(turns, emotion, chosen, seed, condition_strength)

    def history(self, sender: str) -> list[Turn]:
        """``sender``'s stored turns, oldest first. A ``sender`` that :meth:`chat` refuses (not a
        string, blank, not valid Unicode) raises :class:`RequestError`, as there."""
        self._closing.check()
        _check_filled("sender", sender)
        return self.store.history(sender)

    def forget(self, sender: str) -> bool:
        """Delete ``sender``'s conversation (state and turns), after any turn of it in progress;
        whether there was one (an unknown or expired sender: False). A turn is in progress from
        when its message has been classified; one still being classified then is answered but
        not stored (see :meth:`ConversationStore.generation`), so the conversation stays deleted.
        A ``sender`` that :meth:`chat` refuses raises :class:`RequestError`, as there."""
        self._closing.check()
        _check_filled("sender", sender)
        with self.store.conversation(sender):
            return self.store.forget(sender)

    def check_emotion(self, emotion: str | None) -> None:
        """Raise :class:`RequestError` unless ``emotion`` is None or one the server knows: the
        responder's conditions, or cakechat's five when no responder is loaded."""
        known = self.accepted_emotions
        if emotion is not None and known_condition(emotion, known) is None:
            raise RequestError(f"unknown emotion {emotion!r}; expected one of {', '.join(known)}")

    def check_condition_strength(self, condition_strength: float | None) -> None:
        """Raise :class:`RequestError` unless ``condition_strength`` is None or one the responder
        takes (any in range when there is no responder: nothing is generated then)."""
        if condition_strength is None:
            return
        if self.responder is not None:
            self.responder.checked_strength(condition_strength)
        else:
            checked_condition_strength(condition_strength)

    def classic(self, sentence: str) -> list[dict[str, str]]:
        """The classic endpoint's answer: intents above the threshold, probability as a string;
        none where the chat route answers with the fallback for what the model says (a message
        of no known word, whose ranking is the network's biases alone, or one whose best intent
        is the out-of-scope class, which has no answers for a client to look up)."""
        self._closing.check()
        _check_string("sentence", sentence)
        prediction = self._classify(sentence)
        oos = self.policy.oos_label
        if prediction.known_features == 0 or (prediction.ranking and prediction.ranking[0][0] == oos):
            return []
        return [
            {"intent": name, "probability": str(confidence)}
            for name, confidence in prediction.ranking
            if confidence > self.policy.threshold and name != oos
        ]

    def warm_up(self) -> dict[str, float]:
        """Answer one request of each kind the models serve before any real request comes.

        TensorFlow prepares a session's run of a graph on the first call of each kind (it
        prunes the graph to what is fed and fetched and builds an executor for it). Measured on
        the shipped models: the first parse took 19 ms against 1.5 ms for the next ones, and
        each decoding mode's first reply 115-135 ms against 4-9 ms. This asks the intent model
        once and the responder once in every mode (straight to the models, not through a
        batcher), so the first requests a worker serves cost what later ones do.

        Returns the milliseconds each part took (``classifier``, then one key per mode);
        raises whatever a model raises: a model that cannot answer this cannot serve.
        """
        self._closing.check()
        timings: dict[str, float] = {}
        started = time.perf_counter()
        self.predictor.predict([WARM_UP_TEXT])
        timings["classifier"] = (time.perf_counter() - started) * 1000.0
        if self.responder is not None:
            for mode in MODES:
                started = time.perf_counter()
                self.responder.respond([WARM_UP_TEXT], mode=mode, seed=0 if mode.startswith("sample") else None)
                timings[mode] = (time.perf_counter() - started) * 1000.0
        log.info(
            "warmed up in %.0f ms (%s)",
            sum(timings.values()),
            ", ".join(f"{part} {ms:.0f} ms" for part, ms in timings.items()),
        )
        return timings

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing.closed

    def close(self) -> None:
        """Close the batchers and the models' sessions (the store is left open: it may serve
        another assistant). A request still waiting in a batcher is refused with
        :class:`~legacy_assistant.serving.batching.BatcherClosed`, the batch in flight finishes,
        and every later call raises :class:`~legacy_assistant.errors.ModelClosed`. Closing again
        does nothing."""
        self._closing.closed = True
        for batcher in self._batchers:
            batcher.close(wait=True)  # the batch in flight finishes before its session closes
        try:
            self.predictor.close()
        finally:
            if self.responder is not None:
                self.responder.close()

    def __reduce__(self) -> Any:
        # Without this its predictor refuses first, naming a Predictor and Predictor.load, which
        # would rebuild neither the responder nor the dialogue settings: name what to load.
        raise TypeError(
            "an Assistant cannot be pickled or copied (it holds loaded TensorFlow models): give the other "
            "process the model directories and load it there with Assistant.load; in this process, share "
            "this one (its methods may be called from many threads at once)"
        )

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def generates_fallback(self) -> bool:
        """Whether the responder writes the replies no intent fits (``fallback`` "generate" and a responder)."""
        return self.fallback == "generate" and self._generate is not None

    def _generates(self, reply: Reply) -> bool:
        """Whether the responder says ``reply`` instead of its canned fallback text."""
        return reply.intent == FALLBACK_TAG and self.generates_fallback

    def _context(self, sender: str, message: str) -> list[str]:
        """The turns the responder reads: the conversation's last turns, both sides, and ``message``."""
        window = self.responder.spec.max_context_turns if self.responder is not None else CONTEXT_TURNS
        context: list[str] = []
        for turn in self.store.history(sender)[-max(CONTEXT_TURNS, window) :]:
            context += [turn.message, turn.reply]
        context.append(message)
        return context

    def _save(self, sender: str, message: str, reply: Reply, state: ConversationState, message_id: str | None) -> Turn:
        """Store the turn (with ``state``); the turn as stored."""
        turn = Turn(
            message,
            reply.text,
            reply.intent,
            reply.confidence,
            generated=reply.generated,
            reason=reply.reason,
            message_id=message_id,
        )
        self.store.save(sender, state, turn)
        return turn

    def _stored_turn(self, sender: str, message_id: str) -> Turn | None:
        """The newest of ``sender``'s stored turns with ``message_id``, or None."""
        return self.store.turn_with_id(sender, message_id)

    def _replay(self, sender: str, turn: Turn, message: str) -> Reply:
        """The reply of ``turn``, stored before with a resent message's id. Called outside the
        store's hold: a generated reply this assistant (or the one a reload replaced with it) is
        still writing is waited for (its amend needs the hold). The turn is read again after that
        look, so that a reply written (and its note taken away) since ``turn`` was read is the one
        given. ``message``, the text sent now, must be the stored turn's: another one under its id
        raises :class:`MessageIdReused` (its reply answered another question)."""
        assert turn.message_id is not None
        if message != turn.message:
            raise MessageIdReused(
                f"message_id {turn.message_id!r} names another message of this conversation: a message sent "
                "again keeps its text; give a new message an id of its own"
            )
        with self._writing_lock:
            writing = self._writing.get((sender, turn.message_id))
        if writing is not None and not writing.wait(REPLAY_WAIT_SECONDS):
            log.warning(
                "%s: a resent message's generated reply was not written in %g s: the stored one answers%s",
                sender_digest(sender),
                REPLAY_WAIT_SECONDS,
                request_id_suffix(),
            )
        turn = self._stored_turn(sender, turn.message_id) or turn
        log.info("%s: a resent message is answered with its stored reply%s", sender_digest(sender), request_id_suffix())
        # a turn stored before reasons were kept has none: only a fallback's reason is not "intent"
        reason = turn.reason or ("low_confidence" if turn.intent == FALLBACK_TAG else "intent")
        return Reply(turn.reply, turn.intent, turn.confidence, reason, generated=turn.generated, replayed=True)

    def _start_writing(self, sender: str, message_id: str | None) -> threading.Event | None:
        """Note that the generated reply of the turn stored with ``message_id`` is being written."""
        if message_id is None:
            return None
        event = threading.Event()
        with self._writing_lock:
            self._writing[(sender, message_id)] = event
        return event

    def _done_writing(self, sender: str, message_id: str | None, event: threading.Event) -> None:
        assert message_id is not None
        with self._writing_lock:
            if self._writing.get((sender, message_id)) is event:
                del self._writing[(sender, message_id)]
        event.set()
