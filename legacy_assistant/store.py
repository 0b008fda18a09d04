"""Conversation state and where it is kept.

A store maps a sender id to its :class:`ConversationState`. :meth:`ConversationStore.save`
records the new state together with the turn that produced it, in one step, before the reply
is sent.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ConversationState:
    """Per-sender memory between turns.

    Attributes:
        context: the value of the last ``context_set`` (``None`` when cleared).
        next_tag: a classic ``context`` follow-up: the tag that handles the next turn.
        turns: how many turns this conversation has had.
    """

    context: str | None = None
    next_tag: str | None = None
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ConversationState":
        return cls(context=data.get("context"), next_tag=data.get("next_tag"), turns=int(data.get("turns", 0)))


@dataclass(frozen=True)
class Turn:
    """One exchange, as stored."""

    message: str
    reply: str
    intent: str
    confidence: float
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConversationStore(Protocol):
    def load(self, sender: str) -> ConversationState:
        """The sender's state; a fresh one for an unknown or expired sender."""

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        """Record ``turn`` and ``state`` together; when this returns, both are kept."""

    def history(self, sender: str) -> list[Turn]:
        """The sender's stored turns, oldest first."""


class MemoryStore:
    """In-process store: bounded, thread-safe, forgets idle conversations.

    Args:
        ttl_seconds: a conversation idle this long starts afresh (0 keeps it forever).
        max_conversations: least recently used conversations beyond this are dropped.
        max_turns: turns kept per conversation.
    """

    def __init__(self, ttl_seconds: float = 3600.0, max_conversations: int = 10000, max_turns: int = 50) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, ConversationState, deque[Turn]]] = OrderedDict()

    def _live(self, sender: str, now: float) -> tuple[float, ConversationState, deque[Turn]] | None:
        item = self._items.get(sender)
        if item is None:
            return None
        if self.ttl_seconds and now - item[0] > self.ttl_seconds:
            del self._items[sender]
            return None
        return item

    def load(self, sender: str) -> ConversationState:
        with self._lock:
            item = self._live(sender, time.time())
            return item[1] if item else ConversationState()

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        now = time.time()
        with self._lock:
            item = self._live(sender, now)
            turns = item[2] if item else deque(maxlen=self.max_turns)
            turns.append(turn)
            self._items[sender] = (now, state, turns)
            self._items.move_to_end(sender)
            while len(self._items) > self.max_conversations:
                self._items.popitem(last=False)

    def history(self, sender: str) -> list[Turn]:
        with self._lock:
            item = self._live(sender, time.time())
            return list(item[2]) if item else []

    def __len__(self) -> int:
        return len(self._items)
