"""The assistant as a service: predictor + dialogue policy + conversation store.

The web app and the terminal chat both talk to this object, so neither knows how a reply is
made, and this object knows nothing of HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from legacy_assistant.classifier.predictor import Predictor
from legacy_assistant.defaults import DEFAULT_MODEL_DIR
from legacy_assistant.serving.dialogue import DEFAULT_ESCAPE_CONFIDENCE, DialoguePolicy, Reply
from legacy_assistant.stores.base import ConversationStore, MemoryStore, Turn

RANKING_SIZE = 10


class Assistant:
    """One loaded model with its dialogue policy, answering over a conversation store.

    The store may outlive the assistant: a reload builds a new assistant over the same store.
    """

    def __init__(self, predictor: Predictor, policy: DialoguePolicy, store: ConversationStore) -> None:
        self.predictor = predictor
        self.policy = policy
        self.store = store

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
    ) -> Assistant:
        """Load the model at ``model_dir``; raises :class:`~legacy_assistant.errors.ArtifactError`
        for a missing or damaged one. Thread counts go to TensorFlow's session (0: one per core)."""
        predictor = Predictor.load(model_dir, intra_op_threads, inter_op_threads)
        policy = DialoguePolicy.from_manifest(
            predictor.manifest,
            threshold=threshold,
            seed=seed,
            follow_ups=follow_ups,
            escape_confidence=escape_confidence,
        )
        return cls(predictor, policy, store if store is not None else MemoryStore())

    def parse(self, text: str, top: int = RANKING_SIZE) -> dict[str, Any]:
        """Rasa-shaped parse result; the raw ranking, no dialogue rules applied."""
        ranking = self.predictor.rank_one(text, top=top)
        return {
            "text": text,
            "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
            "intent_ranking": [{"name": name, "confidence": confidence} for name, confidence in ranking],
        }

    def chat(self, sender: str, message: str) -> Reply:
        """Answer one turn of ``sender``'s conversation; the turn is stored before returning."""
        prediction = self.predictor.predict([message])[0]
        # Two turns of one sender must not interleave load -> decide -> save, or one turn's
        # context change is lost; the store holds the sender for that span.
        with self.store.conversation(sender):
            state = self.store.load(sender)
            reply, next_state = self.policy.decide(state, prediction.ranking, prediction.known_features > 0)
            self.store.save(sender, next_state, Turn(message, reply.text, reply.intent, reply.confidence))
        return reply

    def classic(self, sentence: str) -> list[dict[str, str]]:
        """The classic endpoint's answer: intents above the threshold, probability as a string."""
        return [
            {"intent": name, "probability": str(confidence)}
            for name, confidence in self.predictor.rank_one(sentence)
            if confidence > self.policy.threshold
        ]

    def close(self) -> None:
        """Close the model's session (the store is left open: it may serve another assistant)."""
        self.predictor.close()
