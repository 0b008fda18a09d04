"""The serving settings, each declared once.

Every setting of ``legacy-assistant serve`` and of the web app is one :class:`Setting` in
:data:`SETTINGS`: its name (``LEGACY_ASSISTANT_<NAME>`` in the environment), the kind of value
it takes (which reads and checks it), its default, its command-line flag and its help text. From
that one list come

* the ``serve`` command's options (:func:`add_arguments`, used by ``legacy_assistant.cli.serve``);
* the app's config (:func:`app_config`, used by ``legacy_assistant.web.create_app``);
* the gunicorn master's options (:func:`server_values`, used by ``ServerOptions.from_settings``);
* the table of settings in docs/DEPLOYMENT.md (:func:`markdown_table`; ``python -m
  legacy_assistant.serving.settings`` prints it).

A value comes from its flag when the flag is given, else from its environment variable when
that is set and not empty, else from the default: a flag left out never overrides the
environment. A value that cannot be used is one clear error naming where it came from: the
command line's usage error for a flag (exit status 2), a :class:`ConfigError` naming the
environment variable.

This module imports nothing of TensorFlow: the gunicorn master imports it.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from legacy_assistant.common.hosts import parse_hosts
from legacy_assistant.common.limits import usable_cpus
from legacy_assistant.common.origins import parse_origins
from legacy_assistant.defaults import DEFAULT_MODEL_DIR, DEFAULT_RESPONDER_DIR, INSTALLED_EXPORTS
from legacy_assistant.errors import ConfigError
from legacy_assistant.responder.modes import MAX_CONDITION_STRENGTH
from legacy_assistant.responder.modes import MODES as GENERATION_MODES
from legacy_assistant.serving.dialogue import DEFAULT_ESCAPE_CONFIDENCE, FALLBACK_MODES, FOLLOW_UP_MODES
from legacy_assistant.serving.log_format import FORMATS as LOG_FORMATS
from legacy_assistant.stores.base import DEFAULT_MAX_TURNS, DEFAULT_TTL_SECONDS, MAX_IDLE_SECONDS

ENV_PREFIX = "LEGACY_ASSISTANT_"

APP = "app"  # goes to create_app's config, in every process that builds the app
SERVER = "server"  # read by the gunicorn master only

# The network is a few small matrix products: splitting one across threads, or handing it to an
# inter-op pool thread, costs more than it saves. One intra-op thread with ops run in the calling
# request thread (-1) measured 196 us of CPU per prediction, against 222 us for (1, 1) and 276 us
# for TensorFlow's own choice (0, 0); 203, 224 and 255 us with four request threads at once
# (benchmarks/web_overhead.py --tf-threads).
DEFAULT_INTRA_OP_THREADS = 1
DEFAULT_INTER_OP_THREADS = -1

# Upper bounds, so that a mistyped value is refused at start rather than failing every request
# (a count past SQLite's or TensorFlow's integers, an expiry past Redis's milliseconds).
MAX_PROCESSES_OR_THREADS = 1024
DAY_SECONDS = 24 * 3600
# An idle gunicorn worker tells the master it is alive once a second (its loop waits up to 1 s for
# a connection between two notes), a little more than a second apart: at --timeout 1 the master
# killed an idle worker as silent (a worker that had served 17 s, on a busy machine), and its
# replacement was unavailable while it loaded the models again.
MIN_WORKER_TIMEOUT = 2
MAX_TTL_SECONDS = MAX_IDLE_SECONDS  # 10 years
MAX_TURNS_KEPT = 1_000_000
MAX_BODY_LIMIT = 2**30

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class Kind(Protocol):
    """How a setting's text (from a flag or the environment) becomes its value."""

    @property
    def description(self) -> str:
        """What a valid value is, for error messages and the docs ("an integer, at least 1")."""

    @property
    def metavar(self) -> str:
        """The placeholder in ``serve --help``."""

    def __call__(self, text: str) -> Any:
        """The value of ``text``; raises ``ValueError`` when it is not one."""


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {_number(minimum)} to {_number(maximum)}"
    if minimum is not None:
        return f", at least {_number(minimum)}"
    if maximum is not None:
        return f", at most {_number(maximum)}"
    return ""


def _out_of_bounds(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is not None and value < minimum) or (maximum is not None and value > maximum)


def _check_bounds(value: float, minimum: float | None, maximum: float | None) -> None:
    if _out_of_bounds(value, minimum, maximum):
        raise ValueError("out of range")


class ValueRefused(ValueError):
    """A kind's refusal whose message says why, for the person who set the value."""


def _numeral(text: str) -> str:
    """``text`` without surrounding whitespace, refused (:class:`ValueRefused`) unless written
    the way the docs and ``--help`` write numbers: Python's ``int()`` and ``float()`` also take
    ``1_000`` and digits of other scripts (Arabic-Indic ``١٠``, full-width ``１０``), which no
    other program reading the same configuration would take for that number."""
    text = text.strip()
    if not text.isascii():
        raise ValueRefused("write it with the digits 0-9 (it holds a character outside ASCII)")
    if "_" in text:
        raise ValueRefused("write it without '_' between the digits")
    return text


@dataclass(frozen=True)
class Integer:
    minimum: int | None = None
    maximum: int | None = None
    metavar: str = "N"

    @property
    def description(self) -> str:
        return "an integer" + _bounds(self.minimum, self.maximum)

    def __call__(self, text: str) -> int:
        value = int(_numeral(text))
        _check_bounds(value, self.minimum, self.maximum)
        return value


@dataclass(frozen=True)
class Number:
    minimum: float | None = None
    maximum: float | None = None
    metavar: str = "X"

    @property
    def description(self) -> str:
        return "a number" + _bounds(self.minimum, self.maximum)

    def __call__(self, text: str) -> float:
        value = float(_numeral(text))
        if not math.isfinite(value):
            raise ValueError("not finite")
        _check_bounds(value, self.minimum, self.maximum)
        return value


def refusal(kind: Any, text: str, exc: ValueError) -> str:
    """``must be <what>, got <value>[: why]``; a secret's value is never repeated."""
    shown = "" if isinstance(kind, Token) else f", got {text!r}"
    why = f": {exc}" if isinstance(exc, ValueRefused) else ""
    return f"must be {kind.description}{shown}{why}"


@dataclass(frozen=True)
class Text:
    """Any text but a blank one: an empty flag (an unset variable in a template) would otherwise
    stand for a value of its own, such as every address for ``--host ""``. Read without the
    whitespace around it, as every other kind reads a value: a store URL's line break (a
    Kubernetes ``|`` block, a file written by ``echo``) named a SQLite file ``c.db\n``."""

    metavar: str = "TEXT"
    description: str = "text, not blank"

    def __call__(self, text: str) -> str:
        if not text.strip():
            raise ValueRefused("blank")
        return text.strip()


@dataclass(frozen=True)
class ListenAddress(Text):
    """A :class:`Text` address to listen on; an IPv6 address may come in brackets, as in a URL
    (``[::1]``), which the socket layer would take for a host name."""

    metavar: str = "ADDRESS"
    description: str = "an address or host name (IPv6 with or without brackets), or unix:PATH"

    def __call__(self, text: str) -> str:
        # without the padding of a hand-written or templated value, as every other kind reads it:
        # "0.0.0.0 " went to the resolver as a host name, and " unix:PATH" was no socket
        text = super().__call__(text).strip()
        if text.startswith("unix:"):  # a path may hold brackets
            return text
        address, _, port = text.rpartition(":")
        if port.isascii() and port.isdigit() and (":" not in address or address[:1] + address[-1:] == "[]"):
            # "0.0.0.0:8000", "[::1]:8000", "localhost:8000": the whole went to the resolver as
            # an IPv6 address ("cannot listen on [0.0.0.0:8000]:5000"), or was called brackets misplaced
            raise ValueRefused("give the port with --port (LEGACY_ASSISTANT_PORT), not in the address")
        if text.startswith("[") and text.endswith("]") and ":" in text:
            text = text[1:-1]
        if "[" in text or "]" in text:
            raise ValueRefused("brackets go around an IPv6 address only, as in [::1]")
        if ":" in text:  # no host name holds a colon: any other such text was bracketed as IPv6
            try:
                ipaddress.ip_address(text)
            except ValueError:
                raise ValueRefused("not an IPv6 address, nor a host name (which holds no ':')") from None
        return text


@dataclass(frozen=True)
class Token:
    """A secret: surrounding whitespace (a secrets file's line break) is dropped, since the token
    a client presents is read without it; nothing but whitespace is refused."""

    metavar: str = "TOKEN"
    description: str = "a token (surrounding whitespace is dropped; it may not be empty or only whitespace)"

    def __call__(self, text: str) -> str:
        token = text.strip()
        if not token:
            # the API token's variable set but empty (a secrets template, $(cat missing-file))
            # must not leave the API open: only an unset variable means no token
            raise ValueRefused("it is empty or only whitespace (unset it to run without a token)")
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in token):
            # no client can send a line break or other control character in a header
            raise ValueRefused("it holds a control character (a line break?), which no Authorization header can carry")
        if not token.isascii():
            # browsers send a header's characters as Latin-1 (and refuse any beyond it), curl and
            # most libraries as UTF-8: such a token would let some clients in and not others
            raise ValueRefused(
                "it holds a character outside ASCII, which HTTP clients send in different encodings "
                "(browsers in Latin-1, others in UTF-8): use ASCII only, as `openssl rand -hex 16` makes"
            )
        return token


@dataclass(frozen=True)
class CommaList:
    """A comma-separated list whose items ``parse`` checks and writes in the form they are
    compared in (a set of them; ValueError says why an item is refused)."""

    parse: Callable[[str | Iterable[str]], frozenset[str]]
    metavar: str
    description: str
    empty: str | None = None  # why an empty list is refused; None: it is a value

    def __call__(self, text: str) -> str:
        try:
            items = self.parse(text)
        except ValueError as exc:
            raise ValueRefused(str(exc)) from None
        if not items and self.empty is not None:
            raise ValueRefused(self.empty)
        return ",".join(sorted(items))


# web origins, written as browsers send them
ORIGINS = CommaList(parse_origins, "ORIGINS", "origins such as https://shop.example, comma-separated")
# host names, as legacy_assistant.common.hosts compares them
HOSTS = CommaList(
    parse_hosts,
    "HOSTS",
    "host names such as chat.example, .example.com (it and every name below), 127.0.0.1, or * (any)",
    empty="it names no host: list the names the server is reached by, or * for any (leave it unset for the default)",
)


@dataclass(frozen=True)
class Directory:
    """A path, made absolute (the server's workers may resolve it elsewhere). A symbolic link is
    kept as a link, not resolved: each load and reload reads the directory it points to then
    (a deploy that switches ``current -> releases/v2`` is what the next reload serves)."""

    metavar: str = "DIR"
    description: str = "a directory"

    def __call__(self, text: str) -> str:
        # without the whitespace around it, as every other kind: a line break at its end (a
        # Kubernetes "|" block) made a directory no one can see in the "not found" error
        text = text.strip()
        if not text:  # Path("") is the working directory
            raise ValueRefused("blank")
        try:  # of the text: Path shortens ./~/m (a folder named ~) to ~/m, the home folder's
            path = Path(text).expanduser() if text.startswith("~") else Path(text)
        except RuntimeError:  # ~NAME of no user here, or ~ with no home to be found: a traceback
            raise ValueRefused(f"{text.split('/', 1)[0]} names no home folder on this machine") from None
        return str(path.absolute())


@dataclass(frozen=True)
class DirectoryOrNone:
    """A path made absolute like :class:`Directory`, or ``none`` for none at all."""

    metavar: str = "DIR"
    description: str = "a directory, or none"

    def __call__(self, text: str) -> str | None:
        if text.strip().lower() == "none":
            return None
        return Directory()(text)


@dataclass(frozen=True)
class Switch:
    metavar: str = ""
    description: str = "on (" + "/".join(TRUE_WORDS) + ") or off (" + "/".join(FALSE_WORDS) + ")"

    def __call__(self, text: str) -> bool:
        word = text.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ValueError("not a switch word")


@dataclass(frozen=True, init=False)
class Choice:
    values: tuple[str, ...]
    name: str | None  # the flag's metavar, where the list of values is too long for the usage line

    def __init__(self, *values: str, name: str | None = None) -> None:
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "name", name)

    @property
    def description(self) -> str:
        return "one of " + ", ".join(self.values)

    @property
    def metavar(self) -> str:
        return self.name or "{" + ",".join(self.values) + "}"

    def __call__(self, text: str) -> str:
        if text.strip() not in self.values:
            raise ValueError("not a choice")
        return text.strip()


class _Off:
    """What a negative flag (``--no-NAME``) of a value setting stores: the value None."""

    def __repr__(self) -> str:
        return "OFF"


OFF = _Off()


@dataclass(frozen=True)
class Setting:
    """One serving setting.

    Attributes:
        name: upper case; the environment variable is ``LEGACY_ASSISTANT_<name>`` and the flag
            ``--<name in lower case, '-' for '_'>``.
        kind: reads and checks a value given as text (:class:`Integer`, :class:`Switch`, ...).
        default: the value when neither flag nor environment gives one; a callable is called
            for it (the CPU count).
        help: what the setting does, for ``--help`` and docs/DEPLOYMENT.md.
        shown_default: the default as ``--help`` and docs/DEPLOYMENT.md say it, where the value itself
            would mislead (a path on this machine, this machine's CPU count, None).
        key: the key in the app's config when it is not ``name`` (Flask's ``MAX_CONTENT_LENGTH``).
        scope: :data:`APP` (the app's config, in every process that builds the app) or
            :data:`SERVER` (the gunicorn master's options).
        flag: False for a setting read from the environment only (secrets: a command line is
            visible to every user of the machine).
        negatable: a value setting that also gets ``--no-<flag>``, which sets it to None.
        empty_refused: an empty environment variable is read (and refused by ``kind``) rather
            than taken for unset, where unset fails open (the API token).
    """

    name: str
    kind: Kind
    default: Any
    help: str
    shown_default: str | None = None
    key: str | None = None
    scope: str = APP
    flag: bool = True
    negatable: bool = False
    empty_refused: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name

    @property
    def option(self) -> str | None:
        """The command-line flag, None for a setting of the environment only."""
        return "--" + self.name.lower().replace("_", "-") if self.flag else None

    @property
    def dest(self) -> str:
        """The attribute of the parsed command line that holds the flag's value."""
        return self.name.lower()

    @property
    def config_key(self) -> str:
        return self.key or self.name

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def default_text(self) -> str:
        if self.shown_default is not None:
            return self.shown_default
        value = self.default_value()
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)

    def read(self, text: str, source: str) -> Any:
        """``text`` given by ``source`` (the flag or the environment variable), as a value."""
        try:
            return self.kind(text)
        except ValueError as exc:
            raise ConfigError(f"{source} {refusal(self.kind, text, exc)}") from None

    def check(self, value: Any, source: str) -> Any:
        """``value`` given in code by ``source`` (a key of ``create_app``'s config), as a value:
        text is read as the flag's or the variable's text would be, and any other value must be
        one the setting takes as it is (a number of its kind within its bounds, True or False for
        a switch, None where the setting may be unset). Raises :class:`ConfigError` naming
        ``source`` and the value otherwise: unchecked, "30" failed every request with a 500, -1
        refused every text, and "off" (a true value) turned nothing off."""
        if isinstance(value, str):
            return self.read(value, source)
        kind = self.kind
        if value is None:
            if self.default_value() is None or isinstance(kind, (DirectoryOrNone, CommaList)):
                return None
        elif isinstance(kind, Switch):
            if isinstance(value, bool):
                return value
        elif isinstance(kind, (Integer, Number)):
            integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            real = isinstance(value, numbers.Real) and not isinstance(value, bool)
            # an integer of any size compares with the bounds; float() of one past 1e308 overflows
            if (integral or (real and isinstance(kind, Number) and math.isfinite(value))) and not _out_of_bounds(
                cast(float, value), kind.minimum, kind.maximum
            ):
                return value
        elif isinstance(kind, CommaList):
            if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(item, str) for item in value):
                return self._check_items(value, source)
        elif not isinstance(kind, (Choice, Token)):
            return value  # a path: checked where it is used
        shown = "" if isinstance(kind, Token) else f", got {value!r}"
        raise ConfigError(f"{source} must be {kind.description}{shown}")

    def _check_items(self, items: list[str] | tuple[str, ...] | set[str] | frozenset[str], source: str) -> Any:
        """``items`` (a list of origins or host names, as ``create_app`` takes them besides the
        comma-separated text) checked as that text is: an item that is none, or (where the empty
        text is refused) items that are all blank (``[""]``, an empty text split), raise
        :class:`ConfigError` naming ``source``; no items at all (``[]``, the ``frozenset()`` of a
        built app's config) are as None. Unchecked, ``[""]`` answered any host name where the
        empty text is refused, and a host list of ``True`` failed with a TypeError."""
        kind = cast(CommaList, self.kind)
        try:
            parsed = kind.parse(items)
            if items and not parsed and kind.empty is not None:
                raise ValueRefused(kind.empty)
        except ValueError as exc:
            raise ConfigError(f"{source} must be {kind.description}, got {items!r}: {exc}") from None
        return items


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "HOST",
        ListenAddress(),
        "127.0.0.1",
        "address to listen on, or unix:PATH for a Unix socket (mode 0660; the port is then not used)",
        scope=SERVER,
    ),
    Setting("PORT", Integer(0, 65535), 5000, "port to listen on", scope=SERVER),
    Setting(
        "MODEL",
        Directory(),
        str(DEFAULT_MODEL_DIR),
        "model directory",
        key="MODEL_DIR",
        shown_default=f"the shipped model: exported/default in a checkout, {INSTALLED_EXPORTS}/default when installed",
    ),
    Setting(
        "THRESHOLD",
        Number(0, 1),
        None,
        "fallback threshold, instead of the one stored in the model",
        shown_default="the model's",
    ),
    Setting(
        "RESPONDER",
        DirectoryOrNone(),
        str(DEFAULT_RESPONDER_DIR),
        "generative responder directory: the cakechat route and generated fallback replies",
        key="RESPONDER_DIR",
        shown_default=(
            f"the shipped responder: exported/responder in a checkout, {INSTALLED_EXPORTS}/responder when installed"
        ),
        negatable=True,
    ),
    Setting(
        "FALLBACK",
        Choice(*FALLBACK_MODES),
        "generate",
        "what a turn the intents cannot answer gets: a reply generated by the responder (canned when none is "
        "loaded), or the model's canned fallback",
    ),
    Setting(
        "GENERATION_MODE",
        # its values in the usage line ran past 80 columns: the help lists them
        Choice(*GENERATION_MODES, name="MODE"),
        "sample_rerank",
        f"how generated replies are decoded ({', '.join(GENERATION_MODES)}), when a request does not say "
        "(cakechat's API decoded with sampling-reranking)",
    ),
    Setting(
        "CONDITION_STRENGTH",
        Number(0, MAX_CONDITION_STRENGTH),
        0.0,
        "condition guidance of generated replies (0: off; 2 makes the requested emotion heard about twice as "
        "often as under neutral, for 1.6-2.2x the decoding time; needs a responder exported with guidance)",
    ),
    Setting(
        "BATCHING",
        Switch(),
        True,
        "gather model calls of requests that arrive together into one TensorFlow call",
    ),
    Setting("BATCH_MAX_SIZE", Integer(1, 1024), 32, "most requests in one batched model call"),
    Setting(
        "BATCH_MAX_WAIT_MS",
        Number(0, 1000),
        3.0,
        "milliseconds a batch may wait after its first request arrived for as many requests as the latest "
        "batches held (a request never waits while requests come one at a time; 0: a batch is what queued "
        "while the previous call ran)",
    ),
    Setting(
        "FOLLOW_UPS",
        Choice(*FOLLOW_UP_MODES),
        "yield",
        "a classic follow-up (intents file 'context') yields to a clear other request, or takes whatever comes "
        "next (classic)",
    ),
    Setting(
        "ESCAPE_CONFIDENCE",
        Number(0, 1),
        DEFAULT_ESCAPE_CONFIDENCE,
        "confidence another intent needs to leave a follow-up that yields",
    ),
    Setting(
        "WORKERS",
        Integer(1, MAX_PROCESSES_OR_THREADS),
        lambda: usable_cpus().count,
        "gunicorn worker processes",
        shown_default="one per usable CPU (a container's CPU limit and CPU affinity count)",
        scope=SERVER,
    ),
    Setting("THREADS", Integer(1, MAX_PROCESSES_OR_THREADS), 4, "request threads per worker", scope=SERVER),
    Setting(
        "TIMEOUT",
        Integer(MIN_WORKER_TIMEOUT, DAY_SECONDS),
        30,
        "seconds before a silent worker is restarted",
        scope=SERVER,
    ),
    Setting(
        "REUSE_PORT",
        Switch(),
        True,
        "one listening socket per worker, so the kernel spreads connections over the workers evenly "
        "(off: one shared socket)",
        scope=SERVER,
    ),
    Setting(
        "STORE",
        Text(metavar="URL"),
        None,
        "conversation store: sqlite:///PATH (PATH from the root: sqlite:///var/db/c.db is /var/db/c.db), "
        "sqlite:RELATIVE/PATH, redis://HOST:PORT/DB or memory",
        key="STORE_URL",
        shown_default="SQLite in the instance folder",
    ),
    Setting(
        "CONVERSATION_TTL",
        Number(0, MAX_TTL_SECONDS),
        DEFAULT_TTL_SECONDS,
        "forget a conversation idle this many seconds (0: never)",
        shown_default=f"{DEFAULT_TTL_SECONDS:g}",
    ),
    Setting("MAX_TURNS", Integer(1, MAX_TURNS_KEPT), DEFAULT_MAX_TURNS, "turns kept per conversation", flag=False),
    Setting(
        "INTRA_OP_THREADS",
        Integer(0, MAX_PROCESSES_OR_THREADS),
        DEFAULT_INTRA_OP_THREADS,
        "TensorFlow intra-op threads per process (0: one per usable CPU)",
    ),
    Setting(
        "INTER_OP_THREADS",
        Integer(-1, MAX_PROCESSES_OR_THREADS),
        DEFAULT_INTER_OP_THREADS,
        "TensorFlow inter-op threads per process (0: one per usable CPU; -1: run every op in the request's own "
        "thread, or on the tf2 runtime, which has no such mode, as 0)",
    ),
    Setting("MAX_TEXT_LENGTH", Integer(1, MAX_BODY_LIMIT), 1000, "longest text accepted, in characters"),
    Setting(
        "MAX_BODY_BYTES",
        Integer(1, MAX_BODY_LIMIT),
        64 * 1024,
        "largest request body accepted, in bytes",
        key="MAX_CONTENT_LENGTH",
    ),
    Setting("ACCESS_LOG", Switch(), True, "one log line per request"),
    Setting(
        "LOG_FORMAT",
        Choice(*LOG_FORMATS),
        "text",
        "log lines as text, or as one JSON object per line (time, level, logger, pid, message) for log collectors",
        scope=SERVER,
    ),
    Setting(
        "WARM_UP",
        Switch(),
        True,
        "answer one request per model and decoding mode before serving (a reload always does, to check the new model)",
    ),
    Setting(
        "API_TOKEN",
        Token(),
        None,
        "bearer token the API routes require: /api/v1/..., the classic route, the Rasa webhook, the cakechat route",
        shown_default="none: the API is open",
        flag=False,
        empty_refused=True,
    ),
    Setting(
        "ADMIN_TOKEN",
        Token(),
        None,
        "bearer token the admin routes require",
        shown_default="none: admin routes are off",
        flag=False,
    ),
    Setting(
        "CORS_ORIGINS",
        ORIGINS,
        "",
        "comma-separated origins whose pages may call the API from a browser",
        shown_default="none: same origin only",
        flag=False,
    ),
    Setting(
        "ALLOWED_HOSTS",
        HOSTS,
        None,
        "the names the API and admin routes answer to (the Host header; a page on another site that "
        "reaches the server through its own name is refused)",
        shown_default="with --host a loopback address: localhost, every name under it, 127.0.0.1 and [::1]; else any",
        # set but empty (a template's unset variable) is refused: taken for unset, it answered
        # any host name on a server listening beyond loopback
        empty_refused=True,
    ),
)


# The tokens: read from the environment only, and kept off every command line, the server's own
# re-exec included (any user of the machine can read a process's command line).
SECRETS = tuple(s for s in SETTINGS if isinstance(s.kind, Token))


# Not secrets the way tokens are (a flag may give them), but a store URL can hold a password and
# the CORS list names a deployment's sites: the server's re-exec passes them in its environment
# (readable by its own user only), not on its command line (readable by every user).
PRIVATE_CONFIG_KEYS = frozenset({"STORE_URL", "CORS_ORIGINS"})


def check_config(config: Mapping[str, Any], settings: Iterable[Setting] = SETTINGS) -> dict[str, Any]:
    """``config`` (``create_app``'s) with each app setting's key read and checked by
    :meth:`Setting.check`; other keys (Flask's own, ``TESTING``) are left as they are.

    Raises:
        ConfigError: a setting's value that cannot be used, naming its key.
    """
    checked = dict(config)
    for s in settings:
        if s.scope == APP and s.config_key != s.name and s.name in checked:
            # the name of the variable and the table, which the app's config spells otherwise:
            # taken for a key of Flask's own, it was ignored without a word
            raise ConfigError(
                f"create_app config key {s.name}: not a key of the app's config; the setting of {s.env} "
                f"is the key {s.config_key}"
            )
        if s.scope == APP and s.config_key in checked:
            checked[s.config_key] = s.check(checked[s.config_key], f"create_app config key {s.config_key}")
    return checked


def secret_config_keys() -> frozenset[str]:
    """The app config keys that hold a secret (:data:`SECRETS`)."""
    return frozenset(s.config_key for s in SECRETS)


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The secrets' app config, read from ``environ`` (``os.environ`` when None) as :func:`resolve` does."""
    return app_config(resolve(None, environ, SECRETS), SECRETS)


def by_name(settings: Iterable[Setting] = SETTINGS) -> dict[str, Setting]:
    return {s.name: s for s in settings}


def default(name: str) -> Any:
    """The default value of the setting ``name``."""
    return by_name()[name].default_value()


def in_scope(scope: str, settings: Iterable[Setting] = SETTINGS) -> tuple[Setting, ...]:
    return tuple(s for s in settings if s.scope == scope)


def _flag_reader(setting: Setting) -> Callable[[str], Any]:
    """The flag's ``type``: a bad value is argparse's usage error (exit status 2), naming the flag."""

    def read(text: str) -> Any:
        try:
            return setting.kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(refusal(setting.kind, text, exc)) from None

    return read


def add_arguments(parser: argparse.ArgumentParser, settings: Iterable[Setting] = SETTINGS) -> None:
    """Add a flag for each setting that has one. Every flag's default is None (left out), so
    that :func:`resolve` can tell a flag left out from one given. A flag's value is read and
    checked as the command line is parsed: ``argument --port: must be an integer from 0 to
    65535, got 'x'``."""
    for s in settings:
        if s.option is None:
            continue
        shown = f"default {s.default_text()}; env {s.env}".replace("%", "%%")
        text = s.help.replace("%", "%%")
        if isinstance(s.kind, Switch):
            parser.add_argument(
                s.option, dest=s.dest, action=argparse.BooleanOptionalAction, default=None, help=f"{text} ({shown})"
            )
            continue
        # a flag and its --no- form exclude each other: "--responder DIR --no-responder" is a usage error
        group = parser.add_mutually_exclusive_group() if s.negatable else parser
        group.add_argument(
            s.option, dest=s.dest, type=_flag_reader(s), default=None, metavar=s.kind.metavar, help=f"{text} ({shown})"
        )
        if s.negatable:
            group.add_argument(
                "--no-" + s.option[2:],
                dest=s.dest,
                action="store_const",
                const=OFF,
                help=f"no {s.name.lower().replace('_', ' ')}",
            )


def environment_only(settings: Iterable[Setting] = SETTINGS) -> str:
    """``--help``'s paragraph on the settings that have no flag: each one's variable, what it
    sets and its default. Said here in full, since an installed copy has no docs/ to point at."""
    described = "; ".join(f"{s.env}: {s.help} (default {s.default_text()})" for s in settings if s.option is None)
    return (
        "Read from the environment only, kept off the command line that every user of the machine can see: "
        f"{described}."
    )


def flags_of(args: argparse.Namespace, settings: Iterable[Setting] = SETTINGS) -> dict[str, Any]:
    """The flags given on a parsed command line, by setting name (None: left out)."""
    return {s.name: getattr(args, s.dest, None) for s in settings if s.option is not None}


def resolve(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    settings: Iterable[Setting] = SETTINGS,
) -> dict[str, Any]:
    """Each setting's value, by name: its flag's when given, else its environment variable's
    when set and not empty, else its default.

    Args:
        flags: setting name -> the value its flag gave (read by :func:`add_arguments`' flags),
            :data:`OFF` (a ``--no-NAME`` flag), or None (left out).
        environ: the environment (``os.environ`` when None).
    Raises:
        ConfigError: an environment variable's value that cannot be used, naming the variable.
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for s in settings:
        given = flags.get(s.name)
        raw = _environment_text(s, environ)
        if given is OFF:
            values[s.name] = None
        elif given is not None:
            values[s.name] = given
        elif raw is not None:
            values[s.name] = s.read(raw, f"environment variable {s.env}")
        else:
            values[s.name] = s.default_value()
    return values


def _environment_text(setting: Setting, environ: Mapping[str, str]) -> str | None:
    """``setting``'s variable, or None when it counts as unset: absent, or empty (but for a
    setting whose unset value fails open, ``empty_refused``: its empty text is read, and refused)."""
    raw = environ.get(setting.env)
    return None if raw is None or (raw == "" and not setting.empty_refused) else raw


# The environment variables with the settings' prefix that are not settings: the TensorFlow
# runtime (compat.selection), and two the commands set for their own child processes.
RUNTIME_VARIABLE = ENV_PREFIX + "RUNTIME"
OTHER_VARIABLES = frozenset({RUNTIME_VARIABLE, ENV_PREFIX + "SERVER_PRIVATE", ENV_PREFIX + "MIGRATION_PARENT"})


def check_environment(environ: Mapping[str, str] | None = None, settings: Iterable[Setting] = SETTINGS) -> None:
    """Refuse (:class:`ConfigError`) a variable with the settings' prefix that is no setting: a
    misspelt ``LEGACY_ASSISTANT_API_TOKNE`` would otherwise serve the API open, without a word.
    The closest setting's name is suggested."""
    environ = os.environ if environ is None else environ
    known = {s.env for s in settings} | OTHER_VARIABLES
    unknown = sorted(name for name in environ if name.startswith(ENV_PREFIX) and name not in known)
    if not unknown:
        return
    # compared without the prefix, which every name shares; the runtime's variable is one a
    # person sets too (the two the commands set for their children are not suggested)
    suggested = (known - OTHER_VARIABLES) | {RUNTIME_VARIABLE}
    suffixes = sorted(known_name[len(ENV_PREFIX) :] for known_name in suggested)
    problems = []
    for name in unknown:
        close = difflib.get_close_matches(name[len(ENV_PREFIX) :], suffixes, n=1, cutoff=0.7)
        problems.append(name + (f" (did you mean {ENV_PREFIX}{close[0]}?)" if close else ""))
    raise ConfigError(
        f"environment variable(s) {', '.join(problems)}: not a setting of legacy-assistant; correct or unset "
        "them ('legacy-assistant serve --help' lists every setting)"
    )


def source_of(
    name: str, flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Where :func:`resolve` took setting ``name``'s value from: its flag (``"--model"``), its
    environment variable (``"environment variable LEGACY_ASSISTANT_MODEL"``), or None for
    its default."""
    setting = by_name()[name]
    environ = os.environ if environ is None else environ
    if (flags or {}).get(name) is not None:
        return setting.option
    if _environment_text(setting, environ) is not None:
        return f"environment variable {setting.env}"
    return None


def app_config(values: Mapping[str, Any], settings: Iterable[Setting] = SETTINGS) -> dict[str, Any]:
    """The app's config (``create_app``'s keys) of the app settings among ``values``."""
    return {s.config_key: values[s.name] for s in settings if s.scope == APP and s.name in values}


def server_values(values: Mapping[str, Any], settings: Iterable[Setting] = SETTINGS) -> dict[str, Any]:
    """The gunicorn master's settings among ``values``, by ``ServerOptions`` field (lower-case name)."""
    return {s.name.lower(): values[s.name] for s in settings if s.scope == SERVER and s.name in values}


# A character takes up to 12 bytes in a JSON body: one past the Basic Multilingual Plane (most
# emoji) is two \uXXXX escapes where the client escapes non-ASCII, as Python's json and requests
# do (4 bytes of UTF-8 where it does not); the rest of a chat request (sender, keys, emotion)
# fits in a few hundred.
BYTES_PER_CHARACTER = 12
REQUEST_OVERHEAD_BYTES = 512


# A token shorter than this is likely a word someone chose, not a random one (32 hex digits:
# `openssl rand -hex 16`); the server warns, since a 401 never slows a guesser down.
SHORT_TOKEN_CHARACTERS = 16


def check_tokens(api_token: str | None, admin_token: str | None) -> None:
    """:class:`ConfigError` when the API and admin tokens are one token: every client of the API
    (the chat page keeps the API token in each user's browser) could then reload the models."""
    if api_token and admin_token and api_token == admin_token:
        raise ConfigError(
            "LEGACY_ASSISTANT_API_TOKEN and LEGACY_ASSISTANT_ADMIN_TOKEN are the same token: every client "
            "of the API could call the admin routes too; give the admin routes a token of their own"
        )


def short_token_warnings(values: Mapping[str, Any]) -> list[str]:
    """A warning for each token set that is shorter than :data:`SHORT_TOKEN_CHARACTERS`."""
    return [
        f"{s.env} is {len(values[s.name])} characters long: a token that short may be guessed; "
        "use a random one, e.g. $(openssl rand -hex 16)"
        for s in SECRETS
        if values.get(s.name) and len(values[s.name]) < SHORT_TOKEN_CHARACTERS
    ]


def text_cap_warning(values: Mapping[str, Any]) -> str | None:
    """A warning when a message of ``MAX_TEXT_LENGTH`` characters may not fit in a request body
    of ``MAX_BODY_BYTES`` (such a message gets 413 although the text cap allows it); else None."""
    text, body = values["MAX_TEXT_LENGTH"], values["MAX_BODY_BYTES"]
    needed = text * BYTES_PER_CHARACTER + REQUEST_OVERHEAD_BYTES
    if needed <= body:
        return None
    fits = (body - REQUEST_OVERHEAD_BYTES) // BYTES_PER_CHARACTER
    if needed <= MAX_BODY_LIMIT:
        advice = f"raise --max-body-bytes to {needed}"
        # under one character's worth there is no text cap to lower to: --max-text-length takes 1 and up
        if fits >= 1:
            advice += f" or lower --max-text-length to {fits}"
    else:
        # --max-body-bytes takes at most MAX_BODY_LIMIT: the text cap must come down
        most = (MAX_BODY_LIMIT - REQUEST_OVERHEAD_BYTES) // BYTES_PER_CHARACTER
        widest = f"raise --max-body-bytes to {MAX_BODY_LIMIT} (its largest) and lower --max-text-length to {most}"
        advice = f"lower --max-text-length to {fits}, or {widest}" if fits >= 1 else widest
    return (
        f"--max-text-length {text} characters can take up to {needed} bytes in a request, more than "
        f"--max-body-bytes {body}: a message that long is refused as too large (413) before the text "
        f"cap applies; {advice}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(settings: Iterable[Setting] = SETTINGS) -> str:
    """The table of settings in docs/DEPLOYMENT.md, one row per setting, in declaration order."""
    lines = ["| environment variable | flag | default | values | what it sets |", "| --- | --- | --- | --- | --- |"]
    for s in settings:
        if s.option is None:
            flag = "(environment only)"
        elif isinstance(s.kind, Switch):
            flag = f"`{s.option}`, `--no-{s.option[2:]}`"
        else:
            flag = f"`{s.option} {s.kind.metavar}`"
            if s.negatable:
                flag += f", `--no-{s.option[2:]}`"
        lines.append(
            f"| `{s.env}` | {_cell(flag)} | {_cell(s.default_text())} | {_cell(s.kind.description)} | {_cell(s.help)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description="Print the settings table of docs/DEPLOYMENT.md.").parse_args()
    print(markdown_table())
