"""Conversations in a SQLite file, shared by every process of one host.

The database runs in WAL mode, so readers never wait for the writer. Every
:meth:`SQLiteStore.save` is one transaction that is committed before it returns; with
``synchronous=FULL`` (the default) the commit is on disk, so a turn whose reply a client saw
survives a killed process and a power cut alike (``normal`` survives a killed process only).

:meth:`SQLiteStore.conversation` opens a ``BEGIN IMMEDIATE`` transaction: it takes the
database's write lock, so load -> decide -> save of one turn is atomic across threads and
processes. SQLite has one write lock per file, so turns are stored one at a time; the
classifier runs outside that lock. Writers queue for it before they ask SQLite: threads of one
process on a Python lock, then processes on an ``flock`` of a file beside the database
(``<database>-writer.lock``). SQLite's own busy handler waits by sleeping in growing steps (up
to 100 ms), which under load turns a few milliseconds of waiting into a long tail; a waiter on
``flock`` is woken by the kernel as soon as the lock is free.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # Windows has no fcntl: processes then queue in SQLite's busy handler only
    fcntl = None  # type: ignore[assignment]

from legacy_assistant.common.closing import ClosedAtExit
from legacy_assistant.errors import ConfigError, StoreError
from legacy_assistant.stores.base import (
    DEFAULT_MAX_TURNS,
    DEFAULT_TTL_SECONDS,
    FORGOTTEN_SECONDS,
    SQLITE_SYNCHRONOUS_MODES,
    ConversationState,
    Turn,
    check_idle_time,
    check_record,
    check_text,
    forgotten_key,
    refuse_pickling,
    sender_digest,
)
from legacy_assistant.stores.outages import Outage

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    sender   TEXT PRIMARY KEY,
    context  TEXT,
    next_tag TEXT,
    turns    INTEGER NOT NULL,
    updated  REAL NOT NULL,
    ttl      REAL,
    ttl_at   REAL
);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated);
CREATE TABLE IF NOT EXISTS turns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    sender     TEXT NOT NULL,
    message    TEXT NOT NULL,
    reply      TEXT NOT NULL,
    intent     TEXT NOT NULL,
    confidence REAL NOT NULL,
    at         REAL NOT NULL,
    generated  INTEGER NOT NULL DEFAULT 0,
    reason     TEXT,
    message_id TEXT
);
CREATE INDEX IF NOT EXISTS turns_sender ON turns (sender, id);
CREATE TABLE IF NOT EXISTS forgotten (
    sender_sha256 TEXT PRIMARY KEY,
    token         TEXT NOT NULL,
    at            REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS forgotten_at ON forgotten (at);
"""
SYNCHRONOUS_MODES = SQLITE_SYNCHRONOUS_MODES
# Expired conversations are invisible at once; their rows are deleted by a read that finds one
# expired, when the store opens, and then by a save at most this often (a sweep by the clock,
# so a quiet server sweeps too).
PURGE_INTERVAL_SECONDS = 60.0
BUSY_TIMEOUT_SECONDS = 30.0
# How long a read that found a conversation expired waits for the write lock to delete it: the
# read's answer does not need the deletion (the next save sweeps), so a lock held by another
# program does not hold the read for the whole busy time.
DROP_WAIT_SECONDS = 1.0
MAX_IDLE_CONNECTIONS = 16
# How long the checkpoint after a deletion waits for readers of the write-ahead log (ms); one
# that cannot finish in time leaves the log to SQLite's next checkpoint, and the deletion stands.
# Short: SQLite holds the write lock while it waits, so every turn of every worker waits too (a
# reader that keeps a snapshot open, a backup or a replicator, stalled them all at each deletion).
SCRUB_WAIT_MS = 100


def _retry_while_busy(action: Callable[[], object], timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
    """Run ``action``, again after a short pause while SQLite answers "locked" or "busy".

    Workers that start together open a new database file at the same moment. Switching it to
    WAL mode (and creating its tables) needs the file to themselves for an instant, and SQLite
    can answer "database is locked" at once there instead of waiting out the busy timeout.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            message = str(exc).lower()
            if ("locked" not in message and "busy" not in message) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


# Columns of ``turns`` added after files were written without them, each with its definition:
# ``generated`` (old turns read as not generated), ``reason`` and ``message_id`` (NULL in old turns).
ADDED_TURN_COLUMNS = (
    ("generated", "INTEGER NOT NULL DEFAULT 0"),
    ("reason", "TEXT"),
    ("message_id", "TEXT"),
)
# Columns of ``conversations`` added since: ``ttl``, the idle time (seconds, 0: none) of the
# conversation's last save (NULL in conversations saved before: only the current one holds).
# ``ttl_at``, the ``updated`` of the save that recorded it: a version before these columns, sharing
# the file, updates ``updated`` only, and the idle time of an earlier save is then not this one's.
ADDED_CONVERSATION_COLUMNS = (("ttl", "REAL"), ("ttl_at", "REAL"))
# The idle time a conversation was last saved with, as a column of a SELECT (NULL: not recorded).
SAVED_TTL = "CASE WHEN ttl_at = updated THEN ttl END"
# Made once the columns are there (a file written before has them only then). By ``ttl``, the
# sweep finds the few conversations saved with a shorter idle time than the current one without
# reading every row.
INDEXES_OF_ADDED_COLUMNS = "CREATE INDEX IF NOT EXISTS conversations_ttl ON conversations (ttl);"
# The sweep's conversations: idle since before the cutoff (now minus this store's idle time), or
# saved with a shorter idle time than it and idle longer than that; arguments (cutoff, this
# store's idle time or infinity, now).
EXPIRED_ROWS = "updated < ? OR (ttl > 0 AND ttl < ? AND ttl_at = updated AND ? - updated > ttl)"


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Give a file written before turns recorded a column of :data:`ADDED_TURN_COLUMNS` (or
    conversations one of :data:`ADDED_CONVERSATION_COLUMNS`) that column. Two processes may both
    find it missing: the second one's ALTER fails with "duplicate column", which is the state it
    wanted."""
    for table, added in (("turns", ADDED_TURN_COLUMNS), ("conversations", ADDED_CONVERSATION_COLUMNS)):
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for name, definition in added:
            if name in columns:
                continue
            try:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc).lower():
                    raise


# The columns every version's tables had (the first layout); the later ones are added above.
FIRST_COLUMNS = {
    "conversations": ("sender", "context", "next_tag", "turns", "updated"),
    "turns": ("id", "sender", "message", "reply", "intent", "confidence", "at"),
    "forgotten": ("sender_sha256", "token", "at"),
}


def _foreign_tables(connection: sqlite3.Connection) -> str | None:
    """Why the database is another program's, not a conversation store's (a table of a name the
    store uses that lacks the columns every version of it had), or None. Such a file was written
    to (the store's other tables created in it) and then refused as "no such column: sender"."""
    for table, needed in FIRST_COLUMNS.items():
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        missing = [name for name in needed if name not in columns]
        if columns and missing:
            return (
                f"it is not a conversation store's database: its table {table!r} has no column "
                f"{', '.join(missing)}; name a new file or a conversation store's"
            )
    return None


def foreign_database(path: Path) -> str | None:
    """:func:`_foreign_tables` of the database file at ``path``, read without writing to it; None
    where there is no such file, it is empty, or it cannot be read (opening it says why)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except (OSError, sqlite3.Error):
        return None
    try:
        return _foreign_tables(connection)
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _create_private(path: Path) -> int:
    """Create the database file, if there is none, readable by its owner only: it holds every
    conversation (SQLite gives its -wal and -shm files the database file's permissions). An
    existing file keeps the permissions its owner gave it. Returns the file's permission bits."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database
    except FileExistsError:
        pass
    return stat.S_IMODE(os.stat(path).st_mode)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """The file at ``path`` (device and inode), or None when there is none or it cannot be
    reached (its folder replaced by a file, say): the store then tries to open the file at the
    path and says why it cannot, where the bare ``NotADirectoryError`` answered 500."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


# No file at the path that could not be opened has been warned of (see SQLiteStore._unopenable).
_UNWARNED = object()


class _Connection(sqlite3.Connection):
    """A connection that knows which opening of the database file it belongs to."""

    generation = 0


class _WriterLock:
    """The queue for SQLite's write lock: a thread lock within the process, ``flock`` across
    processes (advisory, on a file of its own; the database file itself is SQLite's)."""

    def __init__(self, path: Path, wait_seconds: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        # How long a write waits for the lock before it fails (a 503): a writer that never lets
        # go (a hung process, another program's flock) held every request of every worker.
        self.wait_seconds = wait_seconds
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._mode = 0o600
        self._closed = False
        self._deadline = 0.0  # when the holder's wait for the lock ends (time.monotonic)
        self._local = threading.local()  # a shorter wait for this thread's next hold (see within)

    def open(self, mode: int = 0o600) -> None:
        """Open (create) the lock file; a new one gets ``mode``, the database file's read and
        write bits, so that whoever may use the database may queue here."""
        self._mode = mode
        if fcntl is not None and self._fd is None:
            # flock needs no write access: read access to the lock file is enough to queue
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, mode & 0o666)

    def close(self) -> None:
        with self._thread_lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _wait(self) -> float:
        return min(getattr(self._local, "wait", None) or self.wait_seconds, self.wait_seconds)

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[_WriterLock]:
        """The lock (and, by :meth:`begin`, SQLite's), waited for at most ``seconds``: for a write
        that can be left for later, which must not hold its caller for the whole busy time."""
        self._local.wait = seconds
        try:
            with self:
                yield self
        finally:
            self._local.wait = None

    def __enter__(self) -> _WriterLock:
        wait = self._wait()
        deadline = time.monotonic() + wait
        if not self._thread_lock.acquire(timeout=wait):
            raise StoreError(self._held_too_long(wait))
        self._deadline = deadline
        try:
            if self._closed:  # without its flock a write would jump the other processes' queue
                raise StoreError(f"SQLite conversation store: its writer lock {self.path} is closed")
            if self._fd is not None:
                self._follow_the_file()
                self._flock_before(deadline, wait)
        except BaseException:
            self._thread_lock.release()
            raise
        return self

    def begin(self, connection: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE`` on ``connection`` by the holder of this lock: SQLite's own write lock,
        waited for no longer than what is left of this lock's wait. A write that had queued here
        for most of it (behind a writer that waited out SQLite's busy time on a lock another
        program held) waited the whole busy time again: 60 s where a write waits at most 30 s."""
        left = self._deadline - time.monotonic()
        if left >= self.wait_seconds - 0.1:  # came at once, with the whole wait: SQLite's busy time is the bound
            connection.execute("BEGIN IMMEDIATE")
            return
        connection.execute(f"PRAGMA busy_timeout={max(1, int(left * 1000))}")
        try:
            connection.execute("BEGIN IMMEDIATE")
        finally:
            with contextlib.suppress(sqlite3.Error):
                connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")

    def _flock_before(self, deadline: float, wait: float) -> None:
        """Take the flock, asking again every 50 to 500 µs (a blocking flock cannot time out)."""
        assert self._fd is not None
        pause = 0.00005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(self._held_too_long(wait)) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.0005)

    def _held_too_long(self, wait: float) -> str:
        return f"SQLite conversation store: another writer has held the write lock {self.path} for {wait:g} s"

    def _follow_the_file(self) -> None:
        """A lock file deleted (or replaced) under running processes: each would queue on a file
        of its own, and their writes would no longer wait for each other. Open the one at the path."""
        assert self._fd is not None
        held = os.fstat(self._fd)
        if _file_identity(self.path) == (held.st_dev, held.st_ino):
            return
        try:  # the new one first: a failure keeps the old one, and this process queuing at all
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_RDONLY | os.O_CREAT, self._mode & 0o666)
        except OSError as exc:
            raise StoreError(
                f"SQLite conversation store: its writer lock {self.path} was removed and cannot be made again: {exc}"
            ) from exc
        os.close(self._fd)
        self._fd = descriptor

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


class _UnreadableConversation(StoreError):
    """A stored conversation this store cannot read: one conversation's fault, not the store's."""


class SQLiteStore(ClosedAtExit):
    """A :class:`~legacy_assistant.stores.base.ConversationStore` in one SQLite file.

    Args:
        path: the database file (its folder is created).
        ttl_seconds: a conversation idle this long starts afresh and is later deleted (0 keeps
            conversations forever).
        max_turns: turns kept per conversation, newest kept.
        synchronous: ``full`` (commit survives power loss), ``normal`` (survives a killed
            process) or ``extra``.
        clock: the time in seconds (``time.time``): what a save records as the conversation's
            last activity and what the idle time is measured on. Every process sharing the
            file must use the same clock.
    """

    def __init__(
        self,
        path: str | Path,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_turns: int = DEFAULT_MAX_TURNS,
        synchronous: str = "full",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ConfigError(f"synchronous must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
        check_idle_time(ttl_seconds)
        self.path = Path(path)
        self.ttl_seconds = ttl_seconds
        self.max_turns = max_turns
        self.synchronous = synchronous
        self._clock = clock
        self._local = threading.local()  # the connection a thread holds during an operation
        self._idle: list[_Connection] = []
        self._idle_lock = threading.Lock()
        self._writer = _WriterLock(self.path.with_name(self.path.name + "-writer.lock"))
        self._last_purge: float | None = None  # the clock's time of this process's last sweep
        self._drop_warned = float("-inf")  # when a read's deletion of an expired conversation last failed (monotonic)
        self._closed = False
        self._outage = Outage(self)
        # The database file the pooled connections are open on, and which opening of it they
        # belong to (see _follow_the_file).
        self._identity: tuple[int, int] | None = None
        self._generation = 0
        self._reopen_lock = threading.Lock()
        # The file at the path that could not be opened (not a database, say), already warned of:
        # each request tries it again, so that a file mended in place serves, but says so once.
        # (None where there was no file at the path; _UNWARNED where none is to be kept quiet)
        self._unopenable: tuple[int, int] | None | object = _UNWARNED
        try:
            mode = self._create()
            self._writer.open(mode)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open conversation store {self.path}: {exc}") from None
        if mode & 0o006:  # a file made before (or by hand) keeps its mode, and holds every conversation
            log.warning(
                "conversation store %s can be read or written by every user of this machine (mode %04o): "
                "chmod 600 it (or 660 for a group) and its -wal and -shm files",
                self.path,
                mode,
            )
        if self.ttl_seconds:
            self._sweep_at_open()
        log.debug("SQLite conversation store at %s (synchronous=%s)", self.path, synchronous)

    def _sweep_at_open(self) -> None:
        """Delete what expired while no server ran (or ran without saving) now, not at some later
        save (with no idle time, what expired by the one it was saved with goes at the first).
        A sweep that cannot write (a full disk, another process holding the write lock past the
        busy time) is left to the next save: expired conversations are unseen either way, and
        the store, which can still be read, opens. It failed the opening, so no worker could
        start, not even to serve what needs no write. Its failure is one of a save, the kind of
        operation that sweeps next: the store counts as working again (and says so) once a save
        works, where a kind of its own, never tried again, kept it counted as failing for good."""
        try:
            self._write(
                "sweep expired conversations",
                lambda connection: self._purge(connection, self._clock()),
                outage="save",
            )
        except StoreError as exc:
            self._last_purge = None  # the next save sweeps
            log.warning("conversation store %s: expired conversations are deleted at the next save: %s", self.path, exc)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def __reduce__(self) -> Any:
        refuse_pickling(self, "open connections and locks")

    # Connections are pooled, not kept per thread: the development server runs every request on
    # a new thread, and a connection per thread would pile up. A thread holds one connection for
    # one operation (or one conversation() block) and gives it back.
    def _create(self) -> int:
        """Create the database (its folder, the file, the tables) where there is none, and note
        which file the connections are open on; returns the file's permission bits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mode = _create_private(self.path)
        connection = self._connect()
        try:
            foreign: list[str | None] = []
            _retry_while_busy(lambda: foreign.append(_foreign_tables(connection)))
            if foreign[-1]:  # before anything is written to it
                raise sqlite3.DatabaseError(foreign[-1])
            _retry_while_busy(lambda: connection.executescript(SCHEMA))
            _retry_while_busy(lambda: _add_missing_columns(connection))
            _retry_while_busy(lambda: connection.executescript(INDEXES_OF_ADDED_COLUMNS))
        finally:
            connection.close()
        self._identity = _file_identity(self.path)
        return mode

    def _follow_the_file(self) -> None:
        """The database file deleted or replaced under a running server (``rm``, or ``mv`` to
        start afresh): the pooled connections went on writing to the old file, where every turn
        was lost, and a worker started later opened a new one, so workers disagreed. Open the
        file at the path instead, as every process does (a new, empty one where there is none)."""
        if _file_identity(self.path) == self._identity:
            return
        with self._reopen_lock:
            if _file_identity(self.path) == self._identity:  # another thread has followed it
                return
            with self._idle_lock:
                self._check_open()
                stale, self._idle = self._idle, []
                self._generation += 1
            for connection in stale:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            if self._unopenable is _UNWARNED or _file_identity(self.path) != self._unopenable:
                log.warning(
                    "conversation store %s: the database file was removed or replaced while open; opening the "
                    "file now at that path (what was written to the old one is not in it)",
                    self.path,
                )
            try:
                self._create()
            except (OSError, sqlite3.Error) as exc:
                # every request until it is mended fails the same way: its error is logged (once a
                # minute at most), the warning above is not repeated for this file
                self._unopenable = _file_identity(self.path)
                raise StoreError(
                    f"SQLite conversation store {self.path}: the database file was removed or replaced, and "
                    f"cannot be opened again: {exc}"
                ) from exc
            self._unopenable = _UNWARNED

    def _connect(self) -> _Connection:
        # Which opening this is, read before the file is: a reopen finished meanwhile would
        # otherwise stamp a connection to the old file as one of the new opening.
        generation = self._generation
        # isolation_level=None: no implicit transactions; this class says BEGIN and COMMIT.
        # mode=rw: never create the file. Only _create_private does, readable by its owner only; a
        # connection made just as the file was removed (rm under a running server) made a new one
        # with the umask's permissions, and every conversation after it went there.
        connection = sqlite3.connect(
            f"{self.path.absolute().as_uri()}?mode=rw",
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
            factory=_Connection,
        )
        connection.generation = generation
        try:
            _retry_while_busy(lambda: connection.execute("PRAGMA journal_mode=WAL"))
            connection.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            # deleted rows are overwritten with zeros, not left in the file's free space (SQLite's
            # default unless it was built otherwise, as Debian's is)
            connection.execute("PRAGMA secure_delete=ON")
        except BaseException:
            connection.close()
            raise
        return connection

    def _check_open(self) -> None:
        # A closed store would open (and pool) a connection no one closes, and write without
        # the writer lock's flock; it refuses instead.
        if self._closed:
            raise StoreError(f"SQLite conversation store {self.path}: the store is closed")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        held = getattr(self._local, "connection", None)
        if held is not None:  # inside conversation(): the same connection, the same transaction
            yield held
            return
        self._follow_the_file()
        with self._idle_lock:
            self._check_open()
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = self._connect()
        self._local.connection = connection
        try:
            yield connection
        finally:
            self._local.connection = None
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            with self._idle_lock:
                # closed meanwhile, or open on a file the path no longer names: no pool
                keep = (
                    not self._closed
                    and len(self._idle) < MAX_IDLE_CONNECTIONS
                    and connection.generation == self._generation
                )
                if keep:
                    self._idle.append(connection)
            if not keep:
                connection.close()

    @contextlib.contextmanager
    def _errors(self, what: str, outage: str | None = None) -> Iterator[None]:
        """Failures of ``what`` as :class:`StoreError`, each followed as a failure of the kind of
        operation ``outage`` (``what`` where None) by the store's :class:`Outage`."""
        kind = outage or what
        began = self._outage.now()
        try:
            yield
        except sqlite3.Error as exc:
            self._outage.failed(kind)
            raise StoreError(f"SQLite conversation store {self.path}: {what} failed: {exc}") from exc
        except _UnreadableConversation:  # one conversation's data, not the store
            raise
        except StoreError:  # the writer lock held too long, the file removed and not to be made again
            self._outage.failed(kind)
            raise
        self._outage.worked(kind, began)

    @contextlib.contextmanager
    def _unreadable(self, sender: str) -> Iterator[None]:
        """A stored row this store did not write (another program's value, a damaged file) is a
        StoreError, answered 503 like any store failure, not a crash."""
        try:
            yield
        except (ValueError, TypeError, OverflowError) as exc:
            raise _UnreadableConversation(
                f"SQLite conversation store {self.path}: the stored conversation of sender "
                f"{sender_digest(sender)} (SHA-256 digest) is not readable: {exc}"
            ) from exc

    def _expired(self, updated: float, saved_ttl: float | None, now: float) -> bool:
        """Whether a conversation last saved at ``updated`` with the idle time ``saved_ttl`` (None:
        not recorded) has been idle longer than that idle time or this store's, whichever is
        shorter (0: none): a longer one takes over at its next save, so an expired conversation
        stays expired, as in the other stores."""
        idle = now - float(updated)
        return (bool(self.ttl_seconds) and idle > self.ttl_seconds) or (
            saved_ttl is not None and float(saved_ttl) > 0 and idle > float(saved_ttl)
        )

    def load(self, sender: str) -> ConversationState:
        check_text("sender", sender)  # sqlite3 binds UTF-8 only: a clear error, as every store gives
        with self._errors("load"), self._connection() as connection:
            row = connection.execute(
                f"SELECT context, next_tag, turns, updated, {SAVED_TTL} FROM conversations WHERE sender = ?", (sender,)
            ).fetchone()
        with self._unreadable(sender):
            if row is None:
                return ConversationState()
            if self._expired(row[3], row[4], self._clock()):
                self._drop_expired(sender, float(row[3]))
                return ConversationState()
            return ConversationState(context=_text_or_none(row[0]), next_tag=_text_or_none(row[1]), turns=int(row[2]))

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        check_text("sender", sender)  # state and turn checked their own fields when made
        check_record("state", state, ConversationState)
        check_record("turn", turn, Turn)
        self._write("save", lambda connection: self._save(connection, sender, state, turn))

    def amend(self, sender: str, turn: Turn, amended: Turn) -> bool:
        check_text("sender", sender)
        check_record("turn", turn, Turn)
        check_record("amended", amended, Turn)
        return self._write("amend", lambda connection: self._amend(connection, sender, turn, amended))

    def forget(self, sender: str) -> bool:
        check_text("sender", sender)
        return self._write("forget", lambda connection: self._forget(connection, sender))

    def _write(
        self, what: str, action: Callable[[sqlite3.Connection], T], outage: str | None = None, wait: float | None = None
    ) -> T:
        """``action(connection)`` in one write transaction, committed before this returns
        (``outage``: see :meth:`_errors`; ``wait``: the most seconds to wait for the write lock,
        where not the whole busy time)."""
        self._local.deleted = False  # set by an action that deletes a conversation
        self._local.swept = 0  # expired conversations the action's sweep deleted, logged once committed
        with self._errors(what, outage), self._connection() as connection:
            if connection.in_transaction or getattr(self._local, "holds_writer", False):
                # inside conversation(): the write lock is ours already; a second write in the
                # same block (the first one committed) opens a transaction of its own under it
                if not connection.in_transaction:
                    connection.execute("BEGIN IMMEDIATE")
                return self._scrubbed(connection, self._committed(connection, action))
            with self._writer if wait is None else self._writer.within(wait):
                self._writer.begin(connection)
                return self._scrubbed(connection, self._committed(connection, action))

    def _scrubbed(self, connection: sqlite3.Connection, result: T) -> T:
        """``result``, after a checkpoint that empties the write-ahead log when the write deleted a
        conversation: the log kept the deleted words (the pages as they were before) until SQLite's
        next checkpoint, 1,000 pages of later turns away. Run under the writer lock, after the
        commit; a checkpoint that fails or cannot finish leaves that to SQLite, as before."""
        swept = self._local.__dict__.pop("swept", 0)
        if swept:  # not before the commit: a sweep rolled back (a full disk) deleted nothing
            log.info("deleted %d expired conversation(s) from %s", swept, self.path)
        if self._local.__dict__.pop("deleted", False):
            self._empty_log(connection)
        return result

    def _empty_log(self, connection: sqlite3.Connection) -> None:
        """Checkpoint the write-ahead log into the database file and empty it, waiting at most
        :data:`SCRUB_WAIT_MS` for readers; one that holds it longer leaves that to SQLite."""
        try:
            connection.execute(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                log.info("conversation store %s: a reader kept the write-ahead log from being emptied", self.path)
        except sqlite3.Error as exc:
            log.warning("conversation store %s: the write-ahead log was not emptied: %s", self.path, exc)
        finally:
            with contextlib.suppress(sqlite3.Error):
                connection.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")

    @staticmethod
    def _committed(connection: sqlite3.Connection, action: Callable[[sqlite3.Connection], T]) -> T:
        try:
            result = action(connection)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        # Every write ends the transaction, also one that conversation() began: the turn is
        # committed (and the write lock released) before the reply leaves.
        connection.execute("COMMIT")
        return result

    def _status(self, connection: sqlite3.Connection, sender: str, now: float) -> str:
        """``sender``'s conversation row: ``"absent"``, ``"expired"`` (idle too long, not yet purged) or ``"live"``."""
        return self._status_at(connection, sender, now)[0]

    def _status_at(self, connection: sqlite3.Connection, sender: str, now: float) -> tuple[str, float | None]:
        """:meth:`_status`, and the row's ``updated`` (None where there is no row)."""
        row = connection.execute(
            f"SELECT updated, {SAVED_TTL} FROM conversations WHERE sender = ?", (sender,)
        ).fetchone()
        if row is None:
            return "absent", None
        with self._unreadable(sender):
            return ("expired" if self._expired(row[0], row[1], now) else "live"), float(row[0])

    def _drop_expired(self, sender: str, updated: float) -> None:
        """Delete ``sender``'s conversation, which a read found expired (last saved at ``updated``),
        now rather than at the next sweep: until then a clock set back made it live again, state
        and transcript, and the next save carried on from it. Only the row the read saw goes (a
        save since, by another thread or process, started a new conversation that stays). A store
        that cannot write now (a full disk, the write lock held for :data:`DROP_WAIT_SECONDS`) leaves it to
        the next save's sweep: the read still answers that there is no conversation, and the
        failure counts as one of a save, as the sweep's at opening does."""
        try:
            self._write(
                "delete an expired conversation",
                lambda connection: self._delete_if_unchanged(connection, sender, updated),
                outage="save",
                wait=DROP_WAIT_SECONDS,
            )
        except StoreError as exc:
            self._last_purge = None  # the next save sweeps
            now = time.monotonic()
            if now - self._drop_warned >= PURGE_INTERVAL_SECONDS:  # once a minute, as the server logs an outage
                self._drop_warned = now
                log.warning(
                    "conversation store %s: an expired conversation is deleted at the next save: %s", self.path, exc
                )

    def _delete_if_unchanged(self, connection: sqlite3.Connection, sender: str, updated: float) -> None:
        if connection.execute("DELETE FROM conversations WHERE sender = ? AND updated = ?", (sender, updated)).rowcount:
            connection.execute("DELETE FROM turns WHERE sender = ?", (sender,))
            self._local.deleted = True

    def _forget(self, connection: sqlite3.Connection, sender: str) -> bool:
        now = self._clock()
        live = self._status(connection, sender, now) == "live"
        connection.execute("DELETE FROM turns WHERE sender = ?", (sender,))
        if connection.execute("DELETE FROM conversations WHERE sender = ?", (sender,)).rowcount:
            self._local.deleted = True  # an expired one too: its words are in the file as well
        connection.execute("DELETE FROM forgotten WHERE at < ?", (now - FORGOTTEN_SECONDS,))
        connection.execute(
            "INSERT INTO forgotten (sender_sha256, token, at) VALUES (?, ?, ?) "
            "ON CONFLICT (sender_sha256) DO UPDATE SET token = excluded.token, at = excluded.at",
            (forgotten_key(sender), uuid.uuid4().hex, now),
        )
        return live

    def generation(self, sender: str) -> str | None:
        check_text("sender", sender)
        with self._errors("generation"), self._connection() as connection:
            row = connection.execute(
                "SELECT token, at FROM forgotten WHERE sender_sha256 = ?", (forgotten_key(sender),)
            ).fetchone()
        with self._unreadable(sender):
            return None if row is None or self._clock() - float(row[1]) > FORGOTTEN_SECONDS else _text(row[0])

    def _amend(self, connection: sqlite3.Connection, sender: str, turn: Turn, amended: Turn) -> bool:
        status, updated = self._status_at(connection, sender, self._clock())
        if status == "expired" and updated is not None:  # gone for good, as a read makes it (see _drop_expired)
            self._delete_if_unchanged(connection, sender, updated)
        if status != "live":
            return False
        # equal in every field, as the other stores compare turns: two copies of a message sent
        # twice differ in their message_id alone, and the newest copy was the one amended (given
        # the other's id) where the first one's reply was meant ("IS": NULL equals NULL)
        row = connection.execute(
            "SELECT id FROM turns WHERE sender = ? AND message = ? AND reply = ? AND intent = ? AND confidence = ? "
            "AND at = ? AND generated = ? AND reason IS ? AND message_id IS ? ORDER BY id DESC LIMIT 1",
            (sender, *_row(turn)),
        ).fetchone()
        if row is None:
            return False
        connection.execute(
            "UPDATE turns SET message = ?, reply = ?, intent = ?, confidence = ?, at = ?, generated = ?, reason = ?, "
            "message_id = ? WHERE id = ?",
            _row(amended) + (row[0],),
        )
        return True

    def _save(self, connection: sqlite3.Connection, sender: str, state: ConversationState, turn: Turn) -> None:
        now = self._clock()
        if self._status(connection, sender, now) == "expired":
            connection.execute("DELETE FROM turns WHERE sender = ?", (sender,))
            self._local.deleted = True
        connection.execute(
            "INSERT INTO conversations (sender, context, next_tag, turns, updated, ttl, ttl_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (sender) DO UPDATE SET context = excluded.context, next_tag = excluded.next_tag, "
            "turns = excluded.turns, updated = excluded.updated, ttl = excluded.ttl, ttl_at = excluded.ttl_at",
            (sender, state.context, state.next_tag, state.turns, now, float(self.ttl_seconds or 0), now),
        )
        connection.execute(
            "INSERT INTO turns (sender, message, reply, intent, confidence, at, generated, reason, message_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sender, *_row(turn)),
        )
        connection.execute(
            "DELETE FROM turns WHERE sender = ? AND id <= "
            "(SELECT id FROM turns WHERE sender = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (sender, sender, self.max_turns),
        )
        # a last sweep in the future (the clock set back since) does not hold off the next one
        if self._last_purge is None or not 0 <= now - self._last_purge < PURGE_INTERVAL_SECONDS:
            self._purge(connection, now)

    def _purge(self, connection: sqlite3.Connection, now: float) -> None:
        self._last_purge = now
        # idle longer than this store's idle time (none: never), or than a shorter one it was
        # saved with; each side of the OR has its index (updated; ttl), so no sweep reads every row
        cutoff = now - self.ttl_seconds if self.ttl_seconds else float("-inf")
        shorter = self.ttl_seconds if self.ttl_seconds else float("inf")
        arguments = (cutoff, shorter, now)
        connection.execute(
            f"DELETE FROM turns WHERE sender IN (SELECT sender FROM conversations WHERE {EXPIRED_ROWS})", arguments
        )
        deleted = connection.execute(f"DELETE FROM conversations WHERE {EXPIRED_ROWS}", arguments).rowcount
        connection.execute("DELETE FROM forgotten WHERE at < ?", (now - FORGOTTEN_SECONDS,))
        if deleted:
            self._local.deleted = True
            self._local.swept = deleted

    def history(self, sender: str) -> list[Turn]:
        check_text("sender", sender)
        with self._errors("history"), self._connection() as connection:
            status, updated = self._status_at(connection, sender, self._clock())
            rows = []
            if status == "live":
                rows = connection.execute(
                    # the newest max_turns: a file saved under a higher limit holds more until the next save
                    f"SELECT {_TURN_COLUMNS} FROM "
                    "(SELECT * FROM turns WHERE sender = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
                    (sender, self.max_turns),
                ).fetchall()
        if status == "expired" and updated is not None:
            self._drop_expired(sender, updated)
        with self._unreadable(sender):
            return [_turn(row) for row in rows]

    def turn_with_id(self, sender: str, message_id: str) -> Turn | None:
        check_text("sender", sender)
        check_text("message_id", message_id)
        with self._errors("history"), self._connection() as connection:
            status, updated = self._status_at(connection, sender, self._clock())
            row = None
            if status == "live":
                # among the turns history() gives, without reading each into a Turn
                row = connection.execute(
                    f"SELECT {_TURN_COLUMNS} FROM (SELECT * FROM turns WHERE sender = ? ORDER BY id DESC LIMIT ?) "
                    "WHERE message_id = ? ORDER BY id DESC LIMIT 1",
                    (sender, self.max_turns, message_id),
                ).fetchone()
        if status == "expired" and updated is not None:
            self._drop_expired(sender, updated)
        if row is None:
            return None
        with self._unreadable(sender):
            return _turn(row)

    @contextlib.contextmanager
    def conversation(self, sender: str) -> Iterator[None]:
        check_text("sender", sender)
        if getattr(self._local, "connection", None) is not None:  # nested: the outer block holds the lock
            yield
            return
        self._check_open()  # before the writer lock, which a closed store has given up
        with contextlib.ExitStack() as held:
            with self._errors("writer lock"):  # held too long by another writer: the store fails
                held.enter_context(self._writer)
            # a new connection's own failure (a damaged file) is a StoreError, as in every other
            # call; what the caller's block raises passes as it is
            with self._errors("open"):
                connection = held.enter_context(self._connection())
            with self._errors("lock"):
                self._writer.begin(connection)
            self._local.holds_writer = True
            try:
                yield  # _connection() rolls back if no save committed
            finally:
                self._local.holds_writer = False

    def close(self) -> None:
        """Empty the write-ahead log into the database file, then close the pooled connections and
        the writer lock; any later use raises :class:`StoreError`. The last connection to close
        would fold the log in too, but processes that close at once (a server's workers as it
        stops) can each find another still open, and all leave the latest turns in the log only,
        missing from a copy of the database file."""
        with self._idle_lock:
            self._closed = True
            connections, self._idle = self._idle, []
        if connections:  # a store this process never used has written nothing to the log
            self._empty_log(connections[0])
        self._writer.close()
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__} {value!r:.40}")
    return value


def _text_or_none(value: object) -> str | None:
    return None if value is None else _text(value)


def _row(turn: Turn) -> tuple[object, ...]:
    """A turn's columns of ``turns``, from ``message`` to ``message_id``."""
    return (
        turn.message,
        turn.reply,
        turn.intent,
        turn.confidence,
        turn.at,
        int(turn.generated),
        turn.reason,
        turn.message_id,
    )


_TURN_COLUMNS = "message, reply, intent, confidence, at, generated, reason, message_id"


def _turn(row: tuple) -> Turn:
    """A turn from a row of :data:`_TURN_COLUMNS`; a value of the wrong kind raises (the caller
    names the conversation as unreadable)."""
    message, reply, intent, confidence, at, generated, reason, message_id = row
    return Turn(
        _text(message),
        _text(reply),
        _text(intent),
        float(confidence),
        float(at),
        bool(generated),
        _text_or_none(reason),
        _text_or_none(message_id),
    )
