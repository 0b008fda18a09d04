"""Web origins as CORS compares them: ``scheme://host[:port]``, in the one form browsers send.

A browser sends a page's origin serialised: scheme and host in lower case, no default port, no
path. An allowed origin written any other way (``Https://Shop.Example``, ``...:443``, a trailing
path) would never equal it, and CORS would stay off without a word; so each configured origin
is checked and put in that form once, at start.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterable
from encodings.idna import nameprep
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """``text`` as a browser serialises it (``https://shop.example``, ``http://localhost:8080``).

    Raises ValueError saying why ``text`` can never be an origin: no ``http``/``https`` scheme,
    no host, a path, query, fragment or user name, a bad port, or ``*``.
    """
    text = text.strip()
    if text == "*":
        raise ValueError("'*' is not supported: list each origin whose pages may call the API")
    if any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise ValueError(f"{text!r} holds a space or control character")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an origin: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not text.lower().startswith(scheme + "://"):
        raise ValueError(f"{text!r} is not an origin: write it as http://host[:port] or https://host[:port]")
    if not parts.hostname:
        raise ValueError(f"{text!r} is not an origin: it names no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{text!r} is not an origin: it holds a user name")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValueError(f"{text!r} is not an origin: an origin has no path, query or fragment")
    # lower case; an IPv6 address without its brackets; a trailing dot kept, as browsers keep it
    # in the Origin of a page at "https://shop.example./"
    host = canonical_host(parts.hostname, text, trailing_dot=True)
    host = bracketed(host)
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origins(value: str | Iterable[str] | None) -> frozenset[str]:
    """``"https://a.example, https://b.example"`` (or a list) -> the set of origins, each in the
    form :func:`normalize_origin` gives; empty items are skipped. Raises ValueError naming the
    first item that is not an origin."""
    if not value:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(normalize_origin(item) for item in items if item and item.strip())


# A label of a host name: letters, digits and '-' (RFC 1123), and the '_' that container names
# (a Compose service's) carry into Host headers.
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")


# The characters IDNA 2003 (Python's "idna" codec) maps away and IDNA 2008, as browsers apply it,
# keeps: "straße" is "strasse" to the one and "xn--strae-oqa" to the other.
_DEVIATIONS = {
    "\u00df": "ß",
    "\u03c2": "final sigma ς",
    "\u200c": "zero-width non-joiner",
    "\u200d": "zero-width joiner",
}


def _check_no_deviations(host: str, text: str, kind: str) -> None:
    """ValueError where ``host`` holds a character that browsers and Python's IDNA codec write
    differently: the name compared would never be the one browsers send.

    ``host`` is in lower case, and str.lower() writes a capital Σ that ends a word (before a
    digit, a hyphen or the end) as ς, which browsers and Python's codec both write σ: only as
    many ς as ``text`` (the name as written) holds are the letter itself."""
    typed_sigmas = text.count("\u03c2")
    if not typed_sigmas:
        host = host.replace("\u03c2", "\u03c3")
    found = [name for char, name in _DEVIATIONS.items() if char in host]
    if not found:
        return
    labels = host.split(".")
    hint = ""
    # where the rest of each label needs no mapping, browsers send the label as it is, in punycode
    # (the joiners are allowed only in a few scripts' contexts: no form is offered for them, nor
    # where a ς may stand for a capital Σ)
    if (
        "\u200c" not in host
        and "\u200d" not in host
        and host.count("\u03c2") in (0, typed_sigmas)
        and all(map(_maps_to_itself, labels))
    ):
        sent = (label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii") for label in labels)
        hint = f", here {'.'.join(sent)!r}"
    raise ValueError(
        f"{text!r} is not {kind} this server can compare: its {found[0]} is written one way by browsers "
        f"(IDNA 2008) and another by Python's codec (IDNA 2003); write the name in the punycode browsers send{hint}"
    )


# Unicode's default ignorable characters, which IDNA's mapping drops or refuses, but some of
# which (Hangul fillers, Khmer inherent vowels, a Mongolian variation selector) pass NFKC as
# they are
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)


def _maps_to_itself(label: str) -> bool:
    """Whether IDNA's mapping leaves ``label`` as it is, but for the characters of :data:`_DEVIATIONS`.

    Python's IDNA mapping (nameprep) knows the Unicode of 2002: a letter added since that
    browsers map (a small Cherokee letter to its capital) would pass it unmapped, so the label
    must also be as Unicode's compatibility form and case folding now write it."""
    rest = "".join(char for char in label if char not in _DEVIATIONS)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", rest).casefold())
    unassigned = any(unicodedata.category(char) == "Cn" for char in rest)
    if not label or folded != rest or unassigned or _IGNORABLE.search(rest):
        return False
    try:
        return nameprep(rest) == rest
    except UnicodeError:  # a character no host name may hold
        return False


def bracketed(host: str) -> str:
    """An IPv6 address in brackets, as a ``Host`` header, a URL and an address with its port
    (``[::1]:8080``) write it; any other host as it is."""
    return f"[{host}]" if ":" in host else host


def canonical_host(host: str, text: str, kind: str = "an origin", trailing_dot: bool = False) -> str:
    """``host`` (lower case, no brackets) as a browser writes it in an origin or a ``Host``
    header: an internationalised name in punycode (``bücher.example`` is
    ``xn--bcher-kva.example``), an IP address in its canonical form (``127.1`` is ``127.0.0.1``,
    ``::0001`` is ``::1``). ValueError naming ``text``, which is not ``kind``, otherwise.
    ``trailing_dot`` lets one trailing dot through (an origin's; host lists drop it first)."""
    if ":" in host:
        try:
            return ipaddress.ip_address(host).compressed
        except ValueError:
            raise ValueError(f"{text!r} is not {kind}: {host!r} is not an IPv6 address") from None
    labels = host.split(".")
    if labels and all(label and (label.isdigit() or label.startswith("0x")) for label in labels):
        try:  # the IPv4 shorthands browsers read as addresses: 127.1, 0x7f.0.0.1
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            raise ValueError(f"{text!r} is not {kind}: {host!r} is not an IPv4 address") from None
    if not host.isascii():
        _check_no_deviations(host, text, kind)
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"{text!r} is not {kind}: {host!r} is no valid internationalised host name") from None
    # a quoted name (an --env-file keeps the quotes), "a..b" or "a,b": no request names it, so
    # an entry holding one would refuse every request without a word at start
    labels = host.split(".")
    if trailing_dot and len(labels) > 1 and labels[-1] == "":
        labels.pop()  # the root's dot: "shop.example."
    if len(host) > 254 or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{text!r} is not {kind}: a host name is dot-separated labels of 1 to 63 letters, digits, '-' or '_'"
        )
    return host
