"""Conversation state and where it is kept.

A store maps a sender id to its :class:`ConversationState`. :meth:`ConversationStore.save`
records the new state together with the turn that produced it, in one step, before the reply
is sent. Three stores share one contract (``tests/test_store_contract.py``):

* :class:`MemoryStore` (here): one process, for tests and the terminal chat;
* :class:`legacy_assistant.stores.sqlite_store.SQLiteStore`: a file, shared by the processes of one host;
* :class:`legacy_assistant.stores.redis_store.RedisStore`: shared by every process on every host.

:func:`open_store` picks one from a URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from legacy_assistant.common.files import blocking_file
from legacy_assistant.errors import ConfigError


def sender_digest(sender: str) -> str:
    """12 hex digits of the sender id's SHA-256: how logs and store errors name a conversation.
    The id is the only key to a transcript, so it is never written out; the digest tells one
    conversation's lines from another's but cannot be turned back into the id."""
    return hashlib.sha256(sender.encode("utf-8", "surrogatepass")).hexdigest()[:12]


DEFAULT_TTL_SECONDS = 3600.0
DEFAULT_MAX_TURNS = 50


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
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        return cls(context=data.get("context"), next_tag=data.get("next_tag"), turns=int(data.get("turns", 0)))


@dataclass(frozen=True)
class Turn:
    """One exchange, as stored."""

    message: str
    reply: str
    intent: str
    confidence: float
    at: float = field(default_factory=time.time)
    generated: bool = False  # the reply came from the responder

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(
            message=str(data["message"]),
            reply=str(data["reply"]),
            intent=str(data["intent"]),
            confidence=float(data["confidence"]),
            at=float(data["at"]),
            generated=bool(data.get("generated", False)),
        )


class ConversationStore(Protocol):
    def load(self, sender: str) -> ConversationState:
        """The sender's state; a fresh one for an unknown or expired sender."""

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        """Record ``turn`` and ``state`` together; when this returns, both are kept durably."""

    def history(self, sender: str) -> list[Turn]:
        """The sender's stored turns, oldest first; empty for an unknown or expired sender."""

    def conversation(self, sender: str) -> contextlib.AbstractContextManager[None]:
        """Hold ``sender``'s conversation for one load -> decide -> save, so that two turns of
        one sender never interleave (across threads, and across processes or hosts as far as
        the store is shared)."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""


class MemoryStore:
    """In-process store: bounded, thread-safe, forgets idle conversations.

    Args:
        ttl_seconds: a conversation idle this long starts afresh (0 keeps it forever).
        max_conversations: least recently used conversations beyond this are dropped.
        max_turns: turns kept per conversation.
        clock: the time in seconds (``time.time``); the idle time is measured on it.
    """

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_conversations: int = 10000,
        max_turns: int = DEFAULT_MAX_TURNS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self._clock = clock
        self._lock = threading.Lock()
        self._sender_locks = [threading.Lock() for _ in range(64)]
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
            item = self._live(sender, self._clock())
            return item[1] if item else ConversationState()

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        now = self._clock()
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
            item = self._live(sender, self._clock())
            return list(item[2]) if item else []

    @contextlib.contextmanager
    def conversation(self, sender: str) -> Iterator[None]:
        # Striped per-sender locks: bounded memory, and two senders rarely wait on each other.
        with self._sender_locks[hash(sender) % len(self._sender_locks)]:
            yield

    def close(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._items)


def open_store(
    url: str | None,
    *,
    default_dir: str | Path = "instance",
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    max_turns: int = DEFAULT_MAX_TURNS,
) -> ConversationStore:
    """A store from a URL.

    * ``None`` or ``""``: SQLite file ``conversations.sqlite3`` in ``default_dir``;
    * ``memory``: :class:`MemoryStore` (this process only);
    * ``sqlite:///abs/path.db`` or ``sqlite:relative/path.db``: :class:`SQLiteStore`; add
      ``?synchronous=normal`` to skip the fsync per turn (a turn then survives a killed
      process but not a power cut);
    * ``redis://host:port/db`` (or ``rediss://``, ``unix://``): :class:`RedisStore`.

    Raises :class:`ConfigError` for any other URL.
    """
    if ttl_seconds < 0:
        raise ConfigError(f"conversation idle time must be >= 0 seconds, got {ttl_seconds}")
    if max_turns < 1:
        raise ConfigError(f"turns kept per conversation must be >= 1, got {max_turns}")
    if not url:
        from legacy_assistant.stores.sqlite_store import SQLiteStore

        return SQLiteStore(Path(default_dir) / "conversations.sqlite3", ttl_seconds=ttl_seconds, max_turns=max_turns)
    if url == "memory":
        return MemoryStore(ttl_seconds=ttl_seconds, max_turns=max_turns)
    if url.startswith("sqlite:"):
        from legacy_assistant.stores.sqlite_store import SQLiteStore

        path, synchronous = _sqlite_file(url)
        return SQLiteStore(path, ttl_seconds=ttl_seconds, max_turns=max_turns, synchronous=synchronous)
    if url.startswith(REDIS_SCHEMES):
        from legacy_assistant.stores.redis_store import RedisStore

        return RedisStore.from_url(url, ttl_seconds=ttl_seconds, max_turns=max_turns)
    raise ConfigError(_unknown_store(url))


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
SQLITE_SYNCHRONOUS_MODES = ("full", "normal", "extra")


def check_store_url(url: str | None) -> None:
    """What :func:`open_store` would refuse in ``url`` without connecting or creating anything
    (an unknown scheme, a bad SQLite URL, one naming a folder or a file under a file), so that a server can say so
    once before its workers start. Raises :class:`ConfigError`."""
    if not url or url == "memory":
        return
    if url.startswith(REDIS_SCHEMES):
        from legacy_assistant.stores.redis_store import check_redis_url

        check_redis_url(url)
        return
    if not url.startswith("sqlite:"):
        raise ConfigError(_unknown_store(url))
    path, _ = _sqlite_file(url)
    if path.is_dir():
        raise ConfigError(f"{url!r}: {path} is a folder, not a database file")
    blocking = blocking_file(path)
    if blocking is not None:
        raise ConfigError(f"{url!r}: {blocking} is a file, not a folder")


def _unknown_store(url: str) -> str:
    return f"unknown conversation store {url!r}: use memory, sqlite:///PATH or redis://HOST:PORT/DB"


def _sqlite_file(url: str) -> tuple[Path, str]:
    """The database file and the ``synchronous`` mode of a ``sqlite:`` URL."""
    path, _, query = url[len("sqlite:") :].partition("?")
    items = [item.partition("=")[::2] for item in query.split("&") if item]
    options = dict(items)
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ConfigError(f"{url!r}: unknown SQLite option(s) {sorted(unknown)}; only synchronous=full|normal")
    if len(options) < len(items):
        raise ConfigError(f"{url!r}: an option is given twice; give each once")
    synchronous = options.get("synchronous", "full").lower()
    if synchronous not in SQLITE_SYNCHRONOUS_MODES:
        raise ConfigError(
            f"{url!r}: synchronous must be one of {', '.join(SQLITE_SYNCHRONOUS_MODES)}, got {options['synchronous']!r}"
        )
    if path.startswith("///"):
        path = path[2:]
    elif path.startswith("//"):
        raise ConfigError(f"{url!r}: write sqlite:///absolute/path or sqlite:relative/path")
    if not path or path.endswith("/"):
        raise ConfigError(f"{url!r}: the SQLite URL names no file (a folder at most)")
    if path == ":memory:":
        # each pooled connection would open its own empty database: turns would vanish between requests
        raise ConfigError(f"{url!r}: an in-memory SQLite database is not supported: use a file, or --store memory")
    return Path(path), synchronous
