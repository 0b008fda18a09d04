"""Conversations in Redis, shared by every worker on every host.

Keys, under a prefix (default ``legacy-assistant:``)::

    <prefix>state:<sender>   JSON of the ConversationState
    <prefix>turns:<sender>   list of JSON turns, oldest first, trimmed to max_turns
    <prefix>lock:<sender>    held for one load -> decide -> save (SET NX with a timeout)
    <prefix>forgotten:<SHA-256 of the sender>   a token, new at each forget, kept for 10 minutes
                             (see ConversationStore.generation)

:meth:`RedisStore.save` writes state and turn in one ``MULTI``/``EXEC`` and returns once Redis
has acknowledged it. Both keys expire after the idle time, so Redis itself forgets idle
conversations. How durable an acknowledged write is depends on the Redis server's persistence
settings (``appendonly yes`` with ``appendfsync everysec`` or ``always``).

The state records the idle time it was saved with (``ttl_ms``; and, saved with none, when, by
Redis's clock: ``saved_at_ms``). A conversation expires by the shorter of that idle time and the
store's (``--conversation-ttl``), as in every store: a server started with a shorter one moves
the expiry of a conversation saved under the old one to its last save plus the new idle time as
soon as it reads or saves it, and treats it as expired where that has passed; a longer one (or
none) takes over at the conversation's next save. Redis counts the idle time on its own clock:
what the key has left (``PTTL``) says how long ago it was saved. Keys no server reads keep their
old expiry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import socket
import ssl
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

from legacy_assistant.common.closing import ClosedAtExit
from legacy_assistant.errors import ConfigError, StoreError
from legacy_assistant.stores.base import (
    DEFAULT_MAX_TURNS,
    DEFAULT_TTL_SECONDS,
    FORGOTTEN_SECONDS,
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

DEFAULT_PREFIX = "legacy-assistant:"
# how redis-py names the command of a transaction that failed, quoting its arguments
PIPELINE_COMMAND = re.compile(r"^Command # (\d+) \(.*\) of pipeline caused error: ", re.DOTALL)
LOCK_TIMEOUT_SECONDS = 10.0  # a lock whose holder died is freed after this long
LOCK_WAIT_SECONDS = 10.0
SAVE_ATTEMPTS = 20  # an unlocked save retried when a concurrent one changed the conversation


# query options of a Redis URL whose values messages may show
SHOWN_OPTIONS = frozenset(
    {"db", "socket_timeout", "socket_connect_timeout", "health_check_interval", "protocol", "max_connections"}
)
# timeouts, so that a store that stops answering is a 503 after seconds, not a hung request
CLIENT_OPTIONS: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, "health_check_interval": 30}


class RedisStore(ClosedAtExit):
    """A :class:`~legacy_assistant.stores.base.ConversationStore` on a Redis server.

    Args:
        client: a ``redis.Redis`` client (thread-safe: it keeps a connection pool).
        ttl_seconds: idle time after which a conversation's keys expire (0: never). Redis
            counts it down on its own clock (every save sets it afresh), so this store, unlike
            the others, takes no clock.
        max_turns: turns kept per conversation, newest kept.
        prefix: key prefix, so several assistants can share one database.
    """

    def __init__(
        self,
        client: Any,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_turns: int = DEFAULT_MAX_TURNS,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        check_idle_time(ttl_seconds)
        self._client = client
        self.ttl_seconds = ttl_seconds
        self.max_turns = max_turns
        self.prefix = prefix
        self._held = threading.local()  # sender -> the lock this thread holds for it
        self._closed = False
        self._outage = Outage(self)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """Connect to ``redis://host:port/db``; raises :class:`ConfigError` if it cannot be reached
        or refuses a trial turn (see :meth:`_probe`),
        :class:`~legacy_assistant.common.optional.MissingPackageError` without the ``redis`` package."""
        from legacy_assistant.common.optional import require

        redis = require("redis", "redis", "the Redis conversation store")

        check_redis_url(url)
        try:
            client = redis.Redis.from_url(url, **CLIENT_OPTIONS)
            client.ping()
        except (redis.RedisError, ValueError, TypeError) as exc:
            # rediss:// to a server without TLS only timed out, and redis:// to one with TLS had
            # its connection reset: say which it is, where asking the server tells
            mismatch = tls_mismatch(url) if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) else None
            hint = f" ({mismatch})" if mismatch else ""
            raise ConfigError(f"cannot reach the Redis conversation store at {redacted(url)}: {exc}{hint}") from None
        store = cls(client, **kwargs)
        refused = store._probe()
        if refused is not None:
            store.close()
            raise ConfigError(f"the Redis conversation store at {redacted(url)} refuses what a turn needs: {refused}")
        return store

    def _probe(self) -> str | None:
        """Run once what a turn runs (lock, load, save, amend, history, forget, unlock) on a
        conversation of a random id; the refusal, when Redis refuses it for good: a user that
        lacks a command or the keys (ACLs), a read-only replica. Found at start, not by every turn:
        a user without ``EVALSHA`` saved each turn but could not free its lock, so the sender's
        next turn waited 10 s for it to expire. Any other failure (a full Redis, say) is left to
        the turns to report, as when Redis fails later."""
        import redis

        probe = f"start-up-probe-{uuid.uuid4().hex}"
        turn = Turn("probe", "probe", "probe", 0.0)
        lock = self._client.lock(self._key("lock", probe), timeout=LOCK_TIMEOUT_SECONDS)
        try:
            if lock.acquire(blocking=False):
                try:
                    self.load(probe)
                    self.save(probe, ConversationState(), turn)
                    self.amend(probe, turn, turn)
                    self.history(probe)
                    self.forget(probe)
                    self.generation(probe)
                finally:
                    # also after a refusal part way (a user without LSET saved the trial turn):
                    # the trial conversation stays no longer than the trial, where Redis lets it go
                    with contextlib.suppress(redis.RedisError):
                        self._client.delete(
                            self._key("state", probe), self._key("turns", probe), self._forgotten_key(probe)
                        )
                    lock.release()
        except (redis.RedisError, StoreError) as exc:
            cause = exc.__cause__ if isinstance(exc, StoreError) else exc
            if isinstance(cause, (redis.exceptions.NoPermissionError, redis.exceptions.ReadOnlyError)):
                return str(cause)
            log.warning("the Redis conversation store failed a trial turn at start: %s", exc)
        return None

    def __repr__(self) -> str:
        # not the client's repr: redis-py 6.3 to 7.3 write every connection option there, the
        # password in plain text, and a repr ends up in logs and error reports
        options = getattr(getattr(self._client, "connection_pool", None), "connection_kwargs", None) or {}
        where = options.get("path") or f"{options.get('host', '?')}:{options.get('port', '?')}"
        return f"RedisStore({where}, db={options.get('db', 0)}, prefix={self.prefix!r})"

    def __reduce__(self) -> Any:
        refuse_pickling(self, "open connections and locks")

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        import redis

        if self._closed:
            # the client would open (and pool) a new connection that no one closes, and go on
            raise StoreError("Redis conversation store: the store is closed")
        began = self._outage.now()
        try:
            yield
        except redis.RedisError as exc:
            # redis-py prefixes an error inside a transaction with the command and its arguments:
            # a key holds the sender id, a value the turn's words; errors and logs never show them
            reason = PIPELINE_COMMAND.sub(r"command \1 of the transaction: ", str(exc))
            if not (
                isinstance(exc, redis.ResponseError) and PIPELINE_COMMAND.sub("", str(exc)).startswith("WRONGTYPE")
            ):
                self._outage.failed(what)  # a key of another type is one conversation's data, not the store failing
            raise StoreError(f"Redis conversation store: {what} failed: {reason}") from exc
        self._outage.worked(what, began)

    @contextlib.contextmanager
    def _unreadable(self, sender: str) -> Iterator[None]:
        """A stored value that is not this store's JSON (another program's key, a damaged
        value) is a StoreError, answered 503 like any store failure, not a crash."""
        try:
            yield
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise StoreError(f"Redis conversation store: the stored {_named(sender)} is not readable: {exc}") from exc

    def _key(self, kind: str, sender: str) -> str:
        # the sender's characters: a (str, Enum) member's str() is its class and name
        return f"{self.prefix}{kind}:" + sender

    @property
    def _ttl_ms(self) -> int:
        """The idle time in milliseconds, 0 for none; a positive one under a millisecond still
        expires (0 ms would mean never)."""
        return max(1, math.ceil(self.ttl_seconds * 1000)) if self.ttl_seconds > 0 else 0

    def _left_ms(self, saved_ms: int | None, pttl: int, idle_ms: int | None = None) -> int | None:
        """What a conversation has left: None for no expiry, less than 0 when it has run out (0:
        idle exactly the idle time, still there). A conversation expires once idle longer than
        the idle time it was last saved with or this store's, whichever is shorter: a longer one
        (or none) takes over at its next save, so one that has expired stays expired, as Redis
        dropped it. ``saved_ms``: the idle time its state was saved with (None: not recorded, by
        an earlier version); ``pttl``: what its state key has left (-1: no expiry); ``idle_ms``:
        how long a state saved without an idle time has been idle (None: not recorded)."""
        ttl = self._ttl_ms
        if pttl < 0:  # saved without an idle time: its state records when (by Redis's clock)
            if not ttl:
                return None
            return ttl if idle_ms is None else ttl - idle_ms  # not recorded: the idle time from now
        if not ttl:
            return pttl  # the expiry it was saved with stands until its next save
        if saved_ms:  # Redis has counted the idle time down since the save
            return min(pttl, ttl - (saved_ms - pttl))
        return min(pttl, ttl)  # how long it has been idle is not known: no longer than either

    def _expired(self, pipe: Any, state_key: str, raw: Any) -> bool:
        """Whether the state ``raw`` (read from ``state_key``) has been idle longer than this
        store's idle time; asks Redis what the key has left only when it was saved with another."""
        saved = _saved_ttl_ms(raw)
        if saved == self._ttl_ms:
            return False  # Redis expires it when due
        pttl = pipe.pttl(state_key)
        left = self._left_ms(saved, pttl, _idle_ms(pipe, raw) if pttl < 0 else None)
        return left is not None and left < 0

    def _current(self, sender: str, raw: Any) -> Any:
        """``raw``, the state as read, once its keys expire by this store's idle time: a state
        saved with a longer idle time (or none) has its expiry moved to its last save plus this
        one (its keys are deleted where that has passed: None); one saved with a shorter idle time
        keeps its expiry (see :meth:`_left_ms`). A value that is not this store's JSON is left as
        it is, for the reader to refuse."""
        if raw is None or _saved_ttl_ms(raw) == self._ttl_ms:
            return raw
        import redis

        state_key, turns_key = self._key("state", sender), self._key("turns", sender)
        ttl = self._ttl_ms
        for _ in range(SAVE_ATTEMPTS):
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(state_key)  # a save meanwhile writes the state afresh: look again
                raw = pipe.get(state_key)
                saved = None if raw is None else _saved_ttl_ms(raw)
                if raw is None or saved == ttl:
                    return raw
                try:
                    data = json.loads(raw)
                except ValueError:
                    return raw
                if not isinstance(data, dict):
                    return raw
                pttl = pipe.pttl(state_key)
                left = self._left_ms(saved, pttl, _idle_ms(pipe, data) if pttl < 0 else None)
                if left is None or (pttl >= 0 and left >= pttl):
                    return raw  # its expiry stands (a save moves it)
                pipe.multi()
                if left < 0:
                    pipe.delete(state_key, turns_key)
                    rebased = None
                else:
                    rebased = json.dumps({**data, "ttl_ms": ttl})
                    left = max(left, 1)  # idle exactly the idle time: there, until the next millisecond
                    pipe.set(state_key, rebased, px=left)
                    pipe.pexpire(turns_key, left)
                try:
                    pipe.execute()
                    return rebased
                except redis.WatchError:
                    continue
                except (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError) as exc:
                    # a full Redis (noeviction) or a replica refuses writes, not reads: what is read
                    # does not hang on moving the expiry now (the next read or save works it out
                    # again from the same state and PTTL), and a transcript read answered 503
                    log.debug("%s: its expiry was not moved (%s)", _named(sender), exc)
                    return rebased
        raise StoreError(f"{_named(sender)}: other saves kept changing it; it could not be read")

    def load(self, sender: str) -> ConversationState:
        check_text("sender", sender)  # keys are UTF-8: a clear error, as every store gives
        with self._errors("load"):
            raw = self._client.get(self._key("state", sender))
        if raw is None:
            return ConversationState()
        with self._unreadable(sender):
            data = json.loads(raw)  # once: the idle time it was saved with is read from it too
        if _ttl_ms_of(data) != self._ttl_ms:  # saved with another idle time: its expiry moves first
            with self._errors("load"):
                raw = self._current(sender, raw)
            if raw is None:
                return ConversationState()
            with self._unreadable(sender):
                data = json.loads(raw)
        with self._unreadable(sender):
            return ConversationState.from_dict(data)

    def save(self, sender: str, state: ConversationState, turn: Turn) -> None:
        import redis

        check_text("sender", sender)  # state and turn checked their own fields when made
        check_record("state", state, ConversationState)
        check_record("turn", turn, Turn)

        state_key, turns_key = self._key("state", sender), self._key("turns", sender)
        ttl_ms = self._ttl_ms
        # with the idle time it is saved with: a server with another one tells how long it has been idle
        saved_state = {**state.to_dict(), "ttl_ms": ttl_ms}
        lock, expired = self._held_lock(sender, "saved")
        with self._errors("save"):
            for _ in range(SAVE_ATTEMPTS):
                with self._client.pipeline(transaction=True) as pipe:
                    if lock is not None:
                        # inside conversation(): save only while the lock is still ours, in one transaction
                        _watch_lock(pipe, lock, expired)
                    # and only on the state read here: a concurrent save that starts the conversation
                    # (unlocked), or a server with another idle time moving its expiry between the read
                    # and the PTTL below, retries this one, whose history would otherwise be deleted
                    # as expired
                    pipe.watch(state_key)
                    if not ttl_ms:
                        # kept without expiry: when, for a server with an idle time to measure from
                        saved_state["saved_at_ms"] = _now_ms(pipe)
                    stored = pipe.get(state_key)
                    # an expired conversation starts afresh; one saved with a longer idle time
                    # than this store's may have been idle longer than this one allows
                    fresh = stored is None or self._expired(pipe, state_key, stored)
                    if not fresh and pipe.type(turns_key) not in (b"list", b"none", "list", "none"):
                        # EXEC would set the state and then fail the RPUSH: the state moved on
                        # without its turn, and again at each retry
                        raise StoreError(
                            f"Redis conversation store: the stored {_named(sender)} is not readable: "
                            "its turns are not a list"
                        )
                    pipe.multi()
                    if fresh:
                        pipe.delete(turns_key)  # an expired conversation starts afresh
                    pipe.set(state_key, json.dumps(saved_state), px=ttl_ms or None)
                    pipe.rpush(turns_key, json.dumps(turn.to_dict()))
                    pipe.ltrim(turns_key, -self.max_turns, -1)
                    if ttl_ms:
                        pipe.pexpire(turns_key, ttl_ms)
                    else:
                        pipe.persist(turns_key)  # an idle time set to 0 since the last save: keep both
                    try:
                        pipe.execute()
                        return
                    except redis.WatchError:
                        continue  # the next attempt's lock check says whether the lock was lost
            raise StoreError(f"{_named(sender)}: other saves kept changing it; the turn was not saved")

    def _held_lock(self, sender: str, done: str) -> tuple[Any, StoreError]:
        """This thread's lock of ``sender`` (None outside conversation()), and the error for a
        write that finds it expired: the turn was not ``done``."""
        expired = StoreError(
            f"{_named(sender)}: its lock expired (after {LOCK_TIMEOUT_SECONDS:g} s) before the turn "
            f"was {done}, so another request may have moved it on; the turn was not {done}"
        )
        return getattr(self._held, "locks", {}).get(sender), expired

    def amend(self, sender: str, turn: Turn, amended: Turn) -> bool:
        import redis

        check_text("sender", sender)
        check_record("turn", turn, Turn)
        check_record("amended", amended, Turn)
        state_key, turns_key = self._key("state", sender), self._key("turns", sender)
        lock, expired = self._held_lock(sender, "amended")
        with self._errors("amend"):
            for _ in range(SAVE_ATTEMPTS):
                with self._client.pipeline(transaction=True) as pipe:
                    if lock is not None:
                        _watch_lock(pipe, lock, expired)
                    pipe.watch(state_key, turns_key)
                    stored = pipe.get(state_key)
                    if stored is None or self._expired(pipe, state_key, stored):
                        return False
                    rows = pipe.lrange(turns_key, 0, -1)
                    with self._unreadable(sender):
                        index = next(
                            (i for i in range(len(rows) - 1, -1, -1) if Turn.from_dict(json.loads(rows[i])) == turn),
                            None,
                        )
                    if index is None:
                        return False
                    pipe.multi()
                    pipe.lset(turns_key, index, json.dumps(amended.to_dict()))
                    try:
                        pipe.execute()
                        return True
                    except redis.WatchError:
                        continue  # the lock or the conversation changed: look again
            raise StoreError(f"{_named(sender)}: other saves kept changing it; the turn was not amended")

    def history(self, sender: str) -> list[Turn]:
        check_text("sender", sender)
        with self._errors("history"):
            if self._current(sender, self._client.get(self._key("state", sender))) is None:
                return []
            # the newest max_turns: a list saved under a higher limit holds more until the next save
            rows = self._client.lrange(self._key("turns", sender), -self.max_turns, -1)
        with self._unreadable(sender):
            return [Turn.from_dict(json.loads(raw)) for raw in rows]

    def turn_with_id(self, sender: str, message_id: str) -> Turn | None:
        check_text("sender", sender)
        check_text("message_id", message_id)  # refused as the other stores refuse it
        return next((turn for turn in reversed(self.history(sender)) if turn.message_id == message_id), None)

    def forget(self, sender: str) -> bool:
        check_text("sender", sender)
        with self._errors("forget"):
            state_key = self._key("state", sender)
            with self._client.pipeline(transaction=True) as pipe:
                pipe.get(state_key)
                pipe.pttl(state_key)
                pipe.time()
                pipe.delete(state_key, self._key("turns", sender))
                pipe.set(self._forgotten_key(sender), uuid.uuid4().hex, px=int(FORGOTTEN_SECONDS * 1000))
                stored, pttl, now, _, _ = pipe.execute()
        if stored is None:
            return False
        saved = _saved_ttl_ms(stored)
        idle = None
        if saved != self._ttl_ms and pttl < 0:
            with contextlib.suppress(ValueError, TypeError):
                idle = _idle_ms_at(json.loads(stored), _ms(now))
        left = None if saved == self._ttl_ms else self._left_ms(saved, pttl, idle)
        return left is None or left >= 0  # not expired

    def generation(self, sender: str) -> str | None:
        check_text("sender", sender)
        with self._errors("generation"):
            token = self._client.get(self._forgotten_key(sender))
        return token.decode("ascii", "replace") if isinstance(token, bytes) else token

    def _forgotten_key(self, sender: str) -> str:
        return f"{self.prefix}forgotten:{forgotten_key(sender)}"

    @contextlib.contextmanager
    def conversation(self, sender: str) -> Iterator[None]:
        check_text("sender", sender)
        locks = self._held.__dict__.setdefault("locks", {})
        if sender in locks:  # nested in a block of this thread: the outer one holds the lock
            yield
            return
        lock = self._client.lock(
            self._key("lock", sender), timeout=LOCK_TIMEOUT_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS, sleep=0.002
        )
        with self._errors("lock"):
            acquired = lock.acquire()
        if not acquired:
            raise StoreError(f"{_named(sender)} stayed locked for {LOCK_WAIT_SECONDS}s")
        locks[sender] = lock
        try:
            yield
        finally:
            locks.pop(sender, None)
            try:
                lock.release()
            except Exception as exc:  # noqa: BLE001 - an expired lock is already free; say so
                import redis

                if isinstance(exc, redis.exceptions.LockNotOwnedError):
                    log.warning("%s: its lock was no longer held at release (%s)", _named(sender), exc)
                else:  # Redis stalled or gone: the lock stays until it expires, and so does the next turn
                    log.warning(
                        "%s: its lock could not be released (%s): the sender's next turn waits until it "
                        "expires, %g s after it was taken",
                        _named(sender),
                        exc,
                        LOCK_TIMEOUT_SECONDS,
                    )

    def close(self) -> None:
        self._closed = True
        self._client.close()


def _saved_ttl_ms(raw: Any) -> int | None:
    """The idle time (ms) a stored state was saved with; None where it does not say (saved by an
    earlier version, or a value that is not this store's JSON)."""
    try:
        return _ttl_ms_of(json.loads(raw))
    except (ValueError, TypeError):
        return None


def _ms(time_reply: Any) -> int:
    """Milliseconds from a reply to Redis's ``TIME`` (seconds and microseconds)."""
    seconds, microseconds = time_reply
    return int(seconds) * 1000 + int(microseconds) // 1000


def _now_ms(client: Any) -> int:
    """The time on Redis's own clock, the one its keys expire by (ms)."""
    return _ms(client.time())


def _idle_ms_at(data: Any, now_ms: int) -> int | None:
    """How long a state (parsed) saved without an idle time had been idle at ``now_ms``; None
    where it does not say (saved by an earlier version, or not this store's JSON)."""
    saved_at = data.get("saved_at_ms") if isinstance(data, dict) else None
    return max(0, now_ms - saved_at) if type(saved_at) is int else None


def _idle_ms(client: Any, state: Any) -> int | None:
    """:func:`_idle_ms_at` now, of a state raw or parsed; asks Redis the time only where the
    state records when it was saved."""
    if isinstance(state, (bytes, str)):
        try:
            state = json.loads(state)
        except ValueError:
            return None
    if not isinstance(state, dict) or type(state.get("saved_at_ms")) is not int:
        return None
    return _idle_ms_at(state, _now_ms(client))


def _ttl_ms_of(data: Any) -> int | None:
    """:func:`_saved_ttl_ms` of a state already parsed."""
    value = data.get("ttl_ms") if isinstance(data, dict) else None
    return value if type(value) is int and value >= 0 else None


def _watch_lock(pipe: Any, lock: Any, expired: StoreError) -> None:
    """Watch ``lock`` in ``pipe`` (before its ``multi()``) and raise ``expired`` unless it is still ours."""
    pipe.watch(lock.name)  # the pipeline runs commands at once until multi()
    stored = pipe.get(lock.name)
    if isinstance(stored, str):  # a client that decodes responses
        stored = stored.encode("utf-8")
    if stored != lock.local.token:
        raise expired


PERCENT_ENCODED = "a password holding /, ? or # must be percent-encoded (%2F, %3F, %23), and an @ elsewhere (%40)"
ENCODE_PASSWORD = f"its host and port do not read as such: is the port a number from 1 to 65535? ({PERCENT_ENCODED})"


def check_redis_url(url: str) -> None:
    """Refuse what redis-py would only fail on later, without connecting: a host or port that is
    not one, an option it does not know (it passes every query option on to the connection, where
    a misspelt ``pasword`` is a TypeError), and a path that is not a database number (redis-py
    ignores such a path and connects to database 0, so ``redis://host/sessions`` would share
    another app's data). Raises :class:`ConfigError` naming the URL with its password hidden."""
    from legacy_assistant.common.optional import require

    redis = require("redis", "redis", "the Redis conversation store")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as exc:
        # the parser's words quote the piece it could not read, which may be part of a password
        reason = ENCODE_PASSWORD if "@" in url else str(exc)
        raise ConfigError(f"{redacted(url)}: not a Redis URL: {reason}") from None
    if parts.port == 0:
        # the client takes port 0 for none and connects to 6379, while the log names port 0
        raise ConfigError(
            f"{redacted(url)}: not a Redis URL: port 0 is no server's port (the client would connect to 6379 "
            "instead): give the server's port, or leave the port out for 6379"
        )
    if "@" in url and "@" not in parts.netloc:
        # ":6379?abc@redis.internal" reads as port 6379 on no host: the client would quietly
        # connect to localhost
        raise ConfigError(f"{redacted(url)}: not a Redis URL: an '@' outside its address ({PERCENT_ENCODED})")
    if parts.fragment or url.endswith("#"):  # no Redis URL has one: a "#" from a password cut the address short
        raise ConfigError(f"{redacted(url)}: not a Redis URL: it holds a '#' ({PERCENT_ENCODED})")
    if parts.scheme in ("redis", "rediss") and parts.path not in ("", "/"):
        number = parts.path.strip("/")
        if not (number.isascii() and number.isdigit()):
            got = f"got a path holding an '@' ({PERCENT_ENCODED})" if "@" in parts.path else f"got {parts.path!r}"
            raise ConfigError(
                f"{redacted(url)}: the path of a Redis URL is the database number (redis://host:6379/0), {got}; "
                "versions that took such a path used database 0 (give /0 to keep the conversations they stored)"
            )
    query = urllib.parse.parse_qs(parts.query)
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:  # the client takes one of them, and which is its own affair
        raise ConfigError(f"{redacted(url)}: an option is given twice: {', '.join(repeated)}")
    if parts.scheme in ("redis", "rediss") and parts.path not in ("", "/") and "db" in query:
        raise ConfigError(
            f"{redacted(url)}: two database numbers, {parts.path.strip('/')!r} in the path and "
            f"{query['db'][0]!r} in ?db= (the client would use the second, as versions that took both did): give one"
        )
    for option in ("socket_timeout", "socket_connect_timeout"):
        if option in query and not _positive_seconds(query[option][-1]):
            raise ConfigError(
                f"{redacted(url)}: {option} must be a number of seconds above 0, got {query[option][-1]!r}"
            )
    try:
        pool = redis.ConnectionPool.from_url(url, **CLIENT_OPTIONS)
        pool.make_connection()  # builds the connection object from the options; connects only when used
    except (ValueError, TypeError) as exc:
        # the client passes query options to its connection class: a misspelt one is a TypeError
        unknown = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        reason = f"unknown option {unknown.group(1)!r} (a misspelt one?)" if unknown else str(exc)
        raise ConfigError(f"{redacted(url)}: not a usable Redis URL: {reason}") from None
    pool.disconnect()


def pool_size_problem(url: str, threads: int) -> str | None:
    """Why ``?max_connections=`` in the Redis URL ``url`` is too few for a worker of ``threads``
    request threads, or None. Each thread uses one connection at a time, and the client refuses
    a request for one over the limit at once ("Too many connections": a 503) instead of waiting
    for one to be free, so under load a worker with more threads than connections answered
    503s. The limit is per worker (each process has its own connection pool)."""
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("max_connections")
    if not values:
        return None
    try:
        limit = int(values[-1])
    except ValueError:
        return None  # check_redis_url refuses it
    if limit >= threads:
        return None
    return (
        f"{redacted(url)}: max_connections={limit} is fewer than the {threads} request threads of each worker "
        "(--threads, LEGACY_ASSISTANT_THREADS), and a request that finds every connection in use is refused "
        f"at once (503, Too many connections): give max_connections={threads} or more (it counts per worker), "
        "or leave it out (no limit)"
    )


TLS_PROBE_SECONDS = 2.0


def tls_mismatch(url: str) -> str | None:
    """What to change when the server of a Redis URL that could not be reached speaks the other
    protocol: a ``rediss://`` URL (TLS) whose server answers plain Redis, or a ``redis://`` URL
    whose server answers TLS; None when neither shows (or for a Unix socket). Asks the server
    once more, directly, for at most :data:`TLS_PROBE_SECONDS` each way."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port or 6379
    except ValueError:
        return None
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if parts.scheme == "rediss" and _answers_plain_redis(host, port):
        return f"the server at {address} answers plain Redis, without TLS: use redis://, or give the server a tls-port"
    if parts.scheme == "redis" and _answers_tls(host, port):
        return (
            f"the server at {address} answers TLS only: use rediss://, with ?ssl_ca_certs=PATH where its certificate "
            "is from a private authority"
        )
    return None


def _answers_plain_redis(host: str, port: int) -> bool:
    """Whether the server answers an inline ``PING`` as Redis does, without TLS (``+PONG``, or an
    error such as ``-NOAUTH``)."""
    try:
        with socket.create_connection((host, port), timeout=TLS_PROBE_SECONDS) as sock:
            sock.sendall(b"PING\r\n")
            first = sock.recv(1)
    except OSError:
        return False
    return first in (b"+", b"-")


def _answers_tls(host: str, port: int) -> bool:
    """Whether the server completes a TLS handshake (its certificate not checked: only the
    protocol is in question), or refuses it with a TLS alert (a server that wants a client
    certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=TLS_PROBE_SECONDS) as sock:
            with context.wrap_socket(sock, server_hostname=host):
                return True
    except ssl.SSLError as exc:
        return "alert" in str(exc).lower()
    except OSError:
        return False


def _positive_seconds(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) > 0
    except ValueError:
        return False


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (the one before ``@``, or all of a userinfo
    without a colon, and the value of every query option but the few known to hold no secret: a
    misspelt ``?pasword=`` too), for messages and logs; never raises, whatever ``url`` is."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    if "@" in rest[end:]:
        # An "@" past where the address ends: a password holding "/", "?" or "#" un-encoded cut the
        # address short, or a query value holds one. Which part is secret cannot be told: hide all.
        return f"{scheme}://***"
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    elif at:
        # A user name alone: most often a password written without its colon, which redis-py
        # sends as a user name. Hidden as a password is.
        netloc = f"***@{host}"
    path, question, query = tail.partition("?")
    if question:
        fields = (item.partition("=") for item in query.split("&"))
        query = "&".join(
            f"{name}{equals}{value}" if not equals or name.lower() in SHOWN_OPTIONS else f"{name}{equals}***"
            for name, equals, value in fields
        )
    return f"{scheme}://{netloc}{path}{question}{query}"


def _named(sender: str) -> str:
    """A conversation as errors and logs name it: by a digest, never by its sender id."""
    return f"conversation of sender {sender_digest(sender)} (SHA-256 digest)"
