"""Host names a server answers to, as the ``Host`` header of a request names them.

A page on any web site can make a browser send requests to ``127.0.0.1`` once its own name
resolves there (DNS rebinding): the browser then counts the page and the local server as one
origin, and the page reads what the server answers. What gives it away is the ``Host`` header,
which still carries the page's name. So a server that knows the names it is reached by can
refuse every other one.

A list entry is a host name (``chat.example``), an IP address (``127.0.0.1``, ``::1`` or
``[::1]``), a name with a leading dot for it and every name below it (``.example.com``,
``.localhost``), or ``*`` for any host. Ports are not compared.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from legacy_assistant.common.origins import bracketed, canonical_host

ANY_HOST = "*"
# The names a browser on this machine reaches a loopback address by (browsers resolve every
# name under ``localhost`` to the loopback address themselves).
LOOPBACK_HOSTS = frozenset({".localhost", "127.0.0.1", "[::1]"})


def normalize_host(text: str) -> str:
    """``text`` (a list entry) in the form it is compared in: lower case, no trailing dot, an
    IP address in its canonical form (an IPv6 one in brackets), a name in its ASCII (IDNA) form,
    as :func:`legacy_assistant.common.origins.canonical_host` writes origins' hosts. ValueError
    saying why ``text`` can name no host (a port, a scheme, a path, a space)."""
    entry = text.strip()
    if entry == ANY_HOST:
        return entry
    if ANY_HOST in entry:
        raise ValueError(f"{text!r}: write .example.com for example.com and every name below it, or * alone for any")
    if not entry or any(ord(c) < 33 or ord(c) == 127 or c in "/?#@" for c in entry):
        raise ValueError(f"{text!r} is not a host name (write chat.example, .example.com, 127.0.0.1 or [::1])")
    dot, name = (".", entry[1:]) if entry.startswith(".") else ("", entry)
    in_brackets = name.startswith("[") and name.endswith("]")
    if in_brackets:
        name = name[1:-1]
    elif name.count(":") == 1:
        raise ValueError(f"{text!r}: give a host name without a port (the port is not compared)")
    name = name.removesuffix(".").lower()  # one dot: "a.." names no host
    if not name or (in_brackets and ":" not in name):
        raise ValueError(f"{text!r} is not a host name")
    return dot + bracketed(canonical_host(name, text, "a host name"))


def parse_hosts(value: str | Iterable[str] | None) -> frozenset[str]:
    """``"chat.example, .example.com"`` (or a list) -> the set of entries, normalised; empty for
    none. ValueError naming the first entry that is not one."""
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else list(value)
    return frozenset(normalize_host(item) for item in items if item.strip())


def request_host(header: str) -> str | None:
    """The host named by a ``Host`` header (``Chat.Example:8000`` -> ``chat.example``,
    ``[::1]:5000`` -> ``[::1]``), None when the header names none that could be compared."""
    text = header.strip()
    if not text.isascii():  # browsers send a name in punycode; raw bytes would meet IDNA's mapping
        return None  # ("chªt.example", a byte 0xAA read as Latin-1, would be chat.example)
    if text.startswith("["):
        name, bracket, rest = text[1:].partition("]")
        if not bracket or ":" not in name or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    else:
        name, colon, port = text.rpartition(":")
        if not colon:
            name = text
        elif not port.isdigit():
            return None
    name = name.removesuffix(".").lower()  # the root's dot: "localhost." is localhost, "localhost.." no host
    try:
        return bracketed(canonical_host(name, text, "a host name")) if name else None
    except ValueError:
        return None


def target_authority(target: str | None) -> str | None:
    """The ``host[:port]`` of an absolute-form request target (``GET http://chat.example/health
    HTTP/1.1``, as sent to a proxy), which stands for the request's host in place of its ``Host``
    header (RFC 9112, 3.2.2); None for any other target (``/health``, ``*``)."""
    scheme, sep, rest = (target or "").partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return authority.rpartition("@")[2]  # no user in an http URI's authority: never the host


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    """Whether a request with this ``Host`` header may be answered: always when ``allowed`` is
    empty or holds ``*``; else when its host is an entry, or lies under an entry with a leading dot."""
    if not allowed or ANY_HOST in allowed:
        return True
    host = request_host(header or "")
    if host is None:
        return False
    if host in allowed:
        return True
    return any(entry.startswith(".") and (host == entry[1:] or host.endswith(entry)) for entry in allowed)


def is_loopback(bind_host: str) -> bool:
    """Whether a server listening on ``bind_host`` (``--host``) is reached from this machine only:
    a loopback address (an IPv4 one also written IPv6-mapped, ``::ffff:127.0.0.1``), ``localhost``,
    or a name that resolves to loopback addresses only (a machine's own name, which Debian's
    /etc/hosts puts on 127.0.1.1)."""
    return _loopback_addresses(bind_host) is not None


def _loopback_addresses(bind_host: str) -> frozenset[str] | None:
    """The loopback addresses ``bind_host`` names (each as :func:`normalize_host` writes it; none
    for ``localhost``, whose names are all in :data:`LOOPBACK_HOSTS`), or None where it is no
    loopback address and names one or more that are not (or none at all)."""
    text = bind_host.strip().strip("[]")
    if text.lower().removesuffix(".") == "localhost":
        return frozenset()
    if text.startswith("unix:"):  # a Unix socket: the server's own concern, no address
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return frozenset({normalize_host(str(address))}) if _loopback_address(address) else None
    try:
        found = socket.getaddrinfo(text, None, type=socket.SOCK_STREAM)
        addresses = {ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found}
    except (OSError, UnicodeError, ValueError):  # no such name: the server cannot listen there either
        return None
    if not addresses or not all(_loopback_address(address) for address in addresses):
        return None
    # the addresses too: a client on this machine may name the server by the one it listens on
    # (``curl http://127.0.1.1:5000``), a name no page of another site can rebind
    return frozenset(normalize_host(str(address)) for address in addresses)


def _loopback_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def default_allowed_hosts(bind_host: str) -> frozenset[str]:
    """What a server listening on ``bind_host`` answers to when no list is given: the loopback
    names (and ``bind_host`` itself, and the loopback addresses a name resolves to) when it
    listens on a loopback address, where a browser on this machine is its only client and a page
    of any site could be one; else any host."""
    addresses = _loopback_addresses(bind_host)
    if addresses is None:
        return frozenset()
    own = bind_host.strip()
    return (
        LOOPBACK_HOSTS | addresses | ({normalize_host(own)} if own.lower().removesuffix(".") != "localhost" else set())
    )
