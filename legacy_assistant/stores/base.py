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
import itertools
import math
import numbers
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar, cast

from legacy_assistant.common.closing import ClosedAtExit
from legacy_assistant.common.files import blocking_file, nearest_existing
from legacy_assistant.errors import ConfigError, RequestError, StoreError


def forgotten_key(sender: str) -> str:
    """The whole SHA-256 (hex) of the sender id: how a store remembers that a conversation was
    forgotten (:meth:`ConversationStore.generation`) without keeping the id it deleted."""
    return hashlib.sha256(sender.encode("utf-8", "surrogatepass")).hexdigest()


def sender_digest(sender: str) -> str:
    """12 hex digits of the sender id's SHA-256: how logs and store errors name a conversation.
    The id is the only key to a transcript, so it is never written out; the digest tells one
    conversation's lines from another's but cannot be turned back into the id."""
    return forgotten_key(sender)[:12]


def check_text(name: str, value: object) -> None:
    """Raise :class:`RequestError` unless ``value`` is a string every store can keep: SQLite and
    Redis take UTF-8 only, so a lone surrogate escape (``"\\ud800"``) is refused here, by every
    store alike, and not deep inside one of them. The error names the field, never the text (a
    sender id is the key to a transcript)."""
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string, got {type(value).__name__}")
    if not value.isascii():  # ASCII, as most texts are, is valid UTF-8: no encoding needed
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise RequestError(
                f"{name} is not valid Unicode text (a lone surrogate escape, {value[exc.start]!r}, "
                f"at character {exc.start}): no conversation store can keep it"
            ) from None


def _plain_text(name: str, value: object) -> str:
    """``value``, checked by :func:`check_text`, as a plain ``str``: a numpy string was kept as
    one by the memory store, where SQLite and Redis give back a ``str``. Its characters, not its
    ``str()``: a ``(str, Enum)`` member's is its class and name."""
    check_text(name, value)
    return value if type(value) is str else str.__str__(cast(str, value))


def check_record(name: str, value: object, kind: type) -> None:
    """Raise :class:`RequestError` unless ``value`` is a ``kind`` (a :class:`ConversationState`
    or a :class:`Turn`): the memory store kept anything, the others failed with an AttributeError."""
    if not isinstance(value, kind):
        raise RequestError(f"{name} must be a {kind.__name__}, got {type(value).__name__}")


def _plain(name: str, value: Any, kind: type, abstract: type, what: str) -> Any:
    """``value`` as a plain ``kind`` (a numpy number of the ``abstract`` kind converted: sqlite3
    would bind it as raw bytes, json cannot write it); :class:`RequestError` for anything else."""
    if type(value) is kind:
        return value
    if isinstance(value, bool) or not isinstance(value, abstract):
        raise RequestError(f"{name} must be {what}, got {type(value).__name__}")
    return kind(value)


def _whole(name: str, value: object) -> int:
    number = int(_plain(name, value, int, numbers.Integral, "a whole number"))
    # SQLite keeps 64-bit integers only and failed the save with an OverflowError (a 500); the
    # memory store and Redis kept it: refused here, by every store alike
    if not -(2**63) <= number < 2**63:
        raise RequestError(f"{name} must be a whole number within 64 bits, got {number}")
    return number


def _real(name: str, value: object) -> float:
    number = float(_plain(name, value, float, numbers.Real, "a number"))
    # SQLite stores NaN as NULL and refused the turn; the memory store kept it and Redis wrote
    # JSON that no other reader takes: refused here, by every store alike
    if not math.isfinite(number):
        raise RequestError(f"{name} must be a finite number, got {number!r}")
    return number


# What to do instead of pickling or copying a store that processes share (SQLite, Redis).
REOPEN_STORE = (
    "in another process, open it again there with legacy_assistant.stores.base.open_store and its URL; "
    "in this process, share this one between threads"
)


def refuse_pickling(store: object, holds: str, advice: str = REOPEN_STORE) -> NoReturn:
    """Raise the :class:`TypeError` of pickling or copying a store (``__reduce__``, which
    ``copy.copy`` and ``copy.deepcopy`` call too): without it Python names the first lock or
    connection it meets (``cannot pickle '_thread.RLock' object``), and a shallow copy shares the
    original's connections, so closing it closed the original's SQLite connections."""
    raise TypeError(f"a {type(store).__name__} cannot be pickled or copied (it holds {holds}): {advice}")


def check_idle_time(ttl_seconds: object) -> None:
    """Raise :class:`ConfigError` unless ``ttl_seconds`` is an idle time every store takes: a
    number of seconds from 0 (0: conversations never expire; None is not one: the memory and
    SQLite stores read it as 0, Redis failed at the first save) to :data:`MAX_IDLE_SECONDS`."""
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, numbers.Real):
        raise ConfigError(f"conversation idle time must be >= 0 seconds, got {ttl_seconds!r}")
    try:
        seconds = float(ttl_seconds)
    except OverflowError:  # a whole number past float's range
        seconds = math.inf
    if not seconds >= 0:
        raise ConfigError(f"conversation idle time must be >= 0 seconds, got {ttl_seconds!r}")
    if seconds > MAX_IDLE_SECONDS:
        raise ConfigError(
            f"conversation idle time must be at most {MAX_IDLE_SECONDS} seconds (10 years; 0: never expire), "
            f"got {ttl_seconds!r}"
        )


DEFAULT_TTL_SECONDS = 3600.0
# The longest idle time a store takes (10 years): Redis counts an expiry in milliseconds that
# must fit its integers, and refused a longer one at every save (infinity failed in Python).
MAX_IDLE_SECONDS = 10 * 365 * 24 * 3600
DEFAULT_MAX_TURNS = 50
# How long a store remembers that a conversation was forgotten (see ConversationStore.generation):
# longer than any turn takes from its arrival to its save (classifying it, then waiting for the
# conversation's hold, which gives up after 10 s on Redis and 30 s on SQLite).
FORGOTTEN_SECONDS = 600.0


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

    def __post_init__(self) -> None:
        # plain Python values only, so that all three stores keep and give back the same state
        for name in ("context", "next_tag"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _plain_text(name, getattr(self, name)))
        object.__setattr__(self, "turns", _whole("turns", self.turns))

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
    # why the reply was chosen (a dialogue reason; None in turns stored before it was kept)
    reason: str | None = None
    # the client's id of the message (``POST /api/v1/chat`` ``message_id``): a resend of it is
    # answered with this turn's reply instead of being stored again; None when it gave none
    message_id: str | None = None

    def __post_init__(self) -> None:
        # plain Python values only, so that all three stores keep and give back the same turn
        for name in ("message", "reply", "intent"):
            object.__setattr__(self, name, _plain_text(name, getattr(self, name)))
        for name in ("reason", "message_id"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _plain_text(name, getattr(self, name)))
        object.__setattr__(self, "confidence", _real("confidence", self.confidence))
        object.__setattr__(self, "at", _real("at", self.at))
        object.__setattr__(self, "generated", bool(self.generated))

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
            reason=_text_or_none(data.get("reason")),
            message_id=_text_or_none(data.get("message_id")),
        )


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


class ConversationStore(Protocol):
    def load(self, sender: str) -> ConversationState:
        """The sender's state; a fresh one for an unknown or expired sender."""

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        """Record ``turn`` and ``state`` together; when this returns, both are kept durably."""

    def history(self, sender: str) -> list[Turn]:
        """The sender's stored turns, oldest first; empty for an unknown or expired sender."""

    def turn_with_id(self, sender: str, message_id: str) -> Turn | None:
        """The newest of the sender's stored turns (those :meth:`history` gives) saved with
        ``message_id``, or None: what a message sent again is answered with."""

    def amend(self, sender: str, turn: Turn, amended: Turn) -> bool:
        """Replace the newest stored turn equal to ``turn`` with ``amended``, leaving the state and
        the idle time as they are; whether it was there. A turn no longer stored (forgotten,
        expired or pushed out by newer turns since) is not written again. Durable when this
        returns, as a save is."""

    def forget(self, sender: str) -> bool:
        """Delete ``sender``'s state and turns at once; whether a conversation (not expired) was
        there. Durable when this returns, as a save is. A new :meth:`generation` of the sender
        starts, whether or not there was a conversation."""

    def generation(self, sender: str) -> str | None:
        """A token that changes each time ``sender``'s conversation is forgotten (None: it was not
        forgotten in the last :data:`FORGOTTEN_SECONDS`). A turn reads it as it arrives and again
        inside its :meth:`conversation` block, before it saves: a change means the conversation
        was deleted while the turn was classified, and the turn is not saved (the delete wins).
        Only a digest of the sender id is kept (:func:`forgotten_key`)."""

    def conversation(self, sender: str) -> contextlib.AbstractContextManager[None]:
        """Hold ``sender``'s conversation for one load -> decide -> save, so that two turns of
        one sender never interleave (across threads, and across processes or hosts as far as
        the store is shared). Re-entrant: a block inside another of the same thread (the same
        sender or another) goes on at once, and the outer block holds its sender until it ends."""

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""


_Opened = TypeVar("_Opened", bound="OpenedStore")


class OpenedStore(ConversationStore, Protocol):
    """A :class:`ConversationStore` that a ``with`` block closes at its end: what
    :func:`open_store` gives (``with open_store(url) as store:``)."""

    def __enter__(self: _Opened) -> _Opened:
        """The store itself."""

    def __exit__(self, *exc: object) -> None:
        """Close the store (:meth:`close`)."""


class MemoryStore(ClosedAtExit):
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
        check_idle_time(ttl_seconds)
        self.ttl_seconds = ttl_seconds
        self.max_conversations = max_conversations
        self.max_turns = max_turns
        self._clock = clock
        self._lock = threading.Lock()
        # re-entrant: a conversation() block inside another of the same thread goes on (as in
        # every store), also for a sender whose stripe is the outer block's
        self._sender_locks = [threading.RLock() for _ in range(64)]
        self._items: OrderedDict[str, tuple[float, ConversationState, deque[Turn]]] = OrderedDict()
        # forgotten_key(sender) -> (when, token) of its last forget, oldest first
        self._forgotten: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._forgets = itertools.count(1)
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(this process only, at most {self.max_conversations} conversations)"

    def __reduce__(self) -> Any:
        refuse_pickling(
            self,
            "locks",
            "its conversations live in this process only; share this one between threads, and for several "
            "processes open a SQLite or Redis store in each (legacy_assistant.stores.base.open_store)",
        )

    def _check_open(self) -> None:
        # as the other stores refuse: a closed store that went on would hide a server that uses
        # the store it closed (until it ran on another store, which refuses)
        if self._closed:
            raise StoreError("memory conversation store: the store is closed")

    def _live(self, sender: str, now: float) -> tuple[float, ConversationState, deque[Turn]] | None:
        self._check_open()
        item = self._items.get(sender)
        if item is None:
            return None
        if self.ttl_seconds and now - item[0] > self.ttl_seconds:
            del self._items[sender]
            return None
        return item

    def load(self, sender: str) -> ConversationState:
        check_text("sender", sender)  # refused as the other stores refuse it
        with self._lock:
            item = self._live(sender, self._clock())
            return item[1] if item else ConversationState()

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        check_text("sender", sender)
        check_record("state", state, ConversationState)
        check_record("turn", turn, Turn)
        self._check_open()
        now = self._clock()
        with self._lock:
            item = self._live(sender, now)
            turns = item[2] if item else deque(maxlen=self.max_turns)
            turns.append(turn)
            self._items[sender] = (now, state, turns)
            self._items.move_to_end(sender)
            while len(self._items) > self.max_conversations:
                self._items.popitem(last=False)
            # least recently saved first: those idle past the idle time go now, not when their
            # sender comes back or newer conversations push them out
            while self.ttl_seconds and self._items:
                oldest = next(iter(self._items.values()))
                if now - oldest[0] <= self.ttl_seconds:
                    break
                self._items.popitem(last=False)

    def history(self, sender: str) -> list[Turn]:
        check_text("sender", sender)
        with self._lock:
            item = self._live(sender, self._clock())
            return list(item[2]) if item else []

    def turn_with_id(self, sender: str, message_id: str) -> Turn | None:
        check_text("sender", sender)
        check_text("message_id", message_id)  # refused as the other stores refuse it
        with self._lock:
            item = self._live(sender, self._clock())
            return next((turn for turn in reversed(item[2]) if turn.message_id == message_id), None) if item else None

    def amend(self, sender: str, turn: Turn, amended: Turn) -> bool:
        check_text("sender", sender)
        check_record("turn", turn, Turn)
        check_record("amended", amended, Turn)
        with self._lock:
            item = self._live(sender, self._clock())
            if item is None:
                return False
            turns = item[2]
            for index in range(len(turns) - 1, -1, -1):
                if turns[index] == turn:
                    turns[index] = amended
                    return True
            return False

    def forget(self, sender: str) -> bool:
        check_text("sender", sender)
        self._check_open()
        key = forgotten_key(sender)
        with self._lock:
            now = self._clock()
            live = self._live(sender, now) is not None
            self._items.pop(sender, None)
            self._forgotten.pop(key, None)
            self._forgotten[key] = (now, str(next(self._forgets)))
            # bounded as the conversations are: by age, and by count
            while self._forgotten:
                oldest = next(iter(self._forgotten.values()))
                if now - oldest[0] <= FORGOTTEN_SECONDS and len(self._forgotten) <= self.max_conversations:
                    break
                self._forgotten.popitem(last=False)
            return live

    def generation(self, sender: str) -> str | None:
        check_text("sender", sender)
        self._check_open()
        key = forgotten_key(sender)
        with self._lock:
            found = self._forgotten.get(key)
            return found[1] if found is not None and self._clock() - found[0] <= FORGOTTEN_SECONDS else None

    @contextlib.contextmanager
    def conversation(self, sender: str) -> Iterator[None]:
        check_text("sender", sender)
        self._check_open()
        # Striped per-sender locks: bounded memory, and two senders rarely wait on each other.
        with self._sender_locks[hash(sender) % len(self._sender_locks)]:
            yield

    def close(self) -> None:
        """Nothing to release: the store refuses every use from now on (:class:`StoreError`),
        as the other stores do. Closing again does nothing."""
        self._closed = True

    def __len__(self) -> int:
        return len(self._items)


def open_store(
    url: str | None,
    *,
    default_dir: str | Path = "instance",
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    max_turns: int = DEFAULT_MAX_TURNS,
) -> OpenedStore:
    """A store from a URL.

    * ``None`` or ``""``: SQLite file ``conversations.sqlite3`` in ``default_dir``;
    * ``memory``: :class:`MemoryStore` (this process only);
    * ``sqlite:///abs/path.db`` (the file ``/abs/path.db``, as in a ``file://`` URL, where
      SQLAlchemy would read a relative path), ``sqlite:relative/path.db`` or ``sqlite:~/path.db``
      (from the home folder): :class:`SQLiteStore`; add
      ``?synchronous=normal`` to skip the fsync per turn (a turn then survives a killed
      process but not a power cut);
    * ``redis://host:port/db`` (or ``rediss://``, ``unix://``): :class:`RedisStore`.

    Raises :class:`ConfigError` for any other URL.
    """
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"the conversation store URL must be a string, got {type(url).__name__}")
    check_idle_time(ttl_seconds)
    if isinstance(max_turns, bool) or not isinstance(max_turns, numbers.Integral) or max_turns < 1:
        raise ConfigError(f"turns kept per conversation must be >= 1, got {max_turns}")
    if not url:
        from legacy_assistant.stores.sqlite_store import SQLiteStore

        return SQLiteStore(Path(default_dir) / DEFAULT_SQLITE_FILE, ttl_seconds=ttl_seconds, max_turns=max_turns)
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
DEFAULT_SQLITE_FILE = "conversations.sqlite3"  # in the default folder (the server's: its instance folder)
SQLITE_SYNCHRONOUS_MODES = ("full", "normal", "extra")
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def check_store_url(url: str | None, default_dir: str | Path | None = None) -> None:
    """What :func:`open_store` would refuse in ``url`` without connecting or creating anything
    (an unknown scheme, a bad SQLite URL, one naming a folder, a file under a file, a file that
    is no SQLite database or another program's, a folder or file this user cannot write, as on a read-only file
    system), so that a server can say so once before its workers start. With no ``url``, the
    default file in ``default_dir`` (when given) is checked. Raises :class:`ConfigError`."""
    if not url:
        if default_dir is not None:
            path = Path(default_dir) / DEFAULT_SQLITE_FILE
            problem = _unwritable(path, may_create_folder=True)
            if problem:
                raise ConfigError(
                    f"the default conversation store {path}: {problem}; give --store sqlite:///PATH in a "
                    "folder this user can write, redis://HOST:PORT/DB, or memory (with --workers 1)"
                )
        return
    if url == "memory":
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
    if path.exists() and not path.is_file():  # SQLite said only "disk I/O error" of a named pipe
        raise ConfigError(f"{url!r}: {path} is a device or a pipe, not a database file")
    blocking = blocking_file(path)
    if blocking is not None:
        raise ConfigError(f"{url!r}: {blocking} is a file, not a folder")
    if not path.absolute().parent.is_dir():  # a mistyped folder would be made, and the turns kept there
        raise ConfigError(f"{url!r}: the folder {path.absolute().parent} does not exist: create it first")
    problem = _unwritable(path, may_create_folder=False)
    if problem:
        raise ConfigError(f"{url!r}: {problem}")
    if not _sqlite_or_empty(path):  # every worker would fail to start on it, and gunicorn give up
        raise ConfigError(f"{url!r}: {path} is not a SQLite database: name a new file or a conversation store's")
    from legacy_assistant.stores.sqlite_store import foreign_database

    foreign = foreign_database(path)
    if foreign:  # another program's database: every worker would refuse it
        raise ConfigError(f"{url!r}: {path}: {foreign}")


def _unwritable(path: Path, may_create_folder: bool) -> str | None:
    """Why this user could not keep a SQLite database at ``path`` (its journal files go beside
    it, so the folder must be writable too), or None. ``may_create_folder``: a missing folder
    would be made, in the nearest folder that exists."""
    path = path.absolute()
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"this user cannot write {path}{_read_only_note(path)}"
    folder = nearest_existing(path.parent) if may_create_folder else path.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        return f"this user cannot write in {folder}{_read_only_note(folder)}"
    return None


def _sqlite_or_empty(path: Path) -> bool:
    """Whether ``path`` is missing, empty (SQLite makes a database there) or begins with the
    header of a SQLite database; a file that cannot be read is left for opening it to name."""
    if not path.is_file():  # opening a named pipe would wait for a writer
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError:
        return True
    return not head or head == SQLITE_HEADER


def _read_only_note(path: Path) -> str:
    if not hasattr(os, "statvfs"):  # Windows: no way to ask, and the message goes without it
        return ""
    try:
        return " (a read-only file system)" if os.statvfs(path).f_flag & os.ST_RDONLY else ""
    except OSError:
        return ""


def _unknown_store(url: str) -> str:
    from legacy_assistant.stores.redis_store import redacted  # a mistyped Redis URL holds a password too

    return f"unknown conversation store {redacted(url)!r}: use memory, sqlite:///PATH or redis://HOST:PORT/DB"


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
        path = "/" + path.lstrip("/")  # sqlite:////abs (SQLAlchemy's absolute form) is /abs too, not //abs
    elif path.startswith("//"):
        raise ConfigError(f"{url!r}: write sqlite:///absolute/path or sqlite:relative/path")
    if not path or path.endswith("/"):
        raise ConfigError(f"{url!r}: the SQLite URL names no file (a folder at most)")
    if path == ":memory:":
        # each pooled connection would open its own empty database: turns would vanish between requests
        raise ConfigError(f"{url!r}: an in-memory SQLite database is not supported: use a file, or --store memory")
    if path.startswith("~"):
        # from the home folder, as unix:~/... is: the store made a folder named "~" in the working
        # directory and kept every conversation there (check_store_url refused it as missing)
        path = os.path.expanduser(path)
        if path.startswith("~"):  # ~NAME/... or ~NAME of no user here: not a folder or file named so
            name = path[1:].partition("/")[0]
            raise ConfigError(
                f"{url!r}: there is no user {name!r} on this machine, whose home folder ~{name} would be; "
                "write sqlite:~/PATH (this user's home folder), sqlite:///absolute/path, or "
                f"sqlite:./{path} for a file of that name in the working directory"
            )
    return Path(path), synchronous
