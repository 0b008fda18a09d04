"""How a request's path appears in the logs.

A sender id in a conversation's path is the only key to its transcript, and anyone who reads
the logs could use it: it is written as a short digest. Everything else is percent-encoded
again, so that a decoded line break or control character cannot forge a log line, and so is a
method that is not an HTTP token (the development server takes any run of non-blank characters
for one, escape sequences included).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from flask import Request, g

from legacy_assistant.stores.base import sender_digest

CONVERSATIONS_PREFIX = "/api/v1/conversations"
# the prefix as a request line may carry it: the app reads the path decoded, so any of its
# characters may come percent-encoded ("%63onversations", "conversations%2F")
_SENT_PREFIX = re.compile("".join(f"(?:{re.escape(c)}|%(?i:{ord(c):02x}))" for c in CONVERSATIONS_PREFIX + "/"))


def logged_path(path: str) -> str:
    """``path`` as the logs show it: ``/api/v1/conversations/<sender-sha256:…>`` for a
    conversation's, the rest as :func:`loggable`."""
    head, slash, sender = path.partition(CONVERSATIONS_PREFIX + "/")
    if head or not slash or not sender:
        return loggable(path)
    return f"{CONVERSATIONS_PREFIX}/<sender-sha256:{sender_digest(sender)}>"


def logged_request_line(line: str) -> str:
    """A request line (or its path alone) as sent, where the HTTP server quotes it in a line on
    why it refused the request (a line it could not read, a path outside its prefix), as the logs
    show it: where its path is a conversation's (its prefix too may come percent-encoded), the
    sender id (percent-encoded or not, a tab in it sent as it is) written as :func:`logged_path`
    writes it; any other line as it is."""
    found = _SENT_PREFIX.search(line)
    if found is None:
        return line
    head, rest = line[: found.start()], line[found.end() :]
    target, space, version = rest.rpartition(" ")
    if not (space and version.startswith("HTTP/")):
        target, version = rest, ""
    sender = unquote(target.partition("?")[0])
    if not sender:
        return line
    shown = logged_path(f"{CONVERSATIONS_PREFIX}/{sender}")
    return f"{head}{shown} {version}" if version else head + shown


def logged_refusal(message: str, line: str) -> str:
    """``message``, an HTTP server's reason for refusing the request line ``line`` that ends in
    what it refused, quoted (``Bad request syntax ('GET /a b HTTP/1.1')``, ``Bad request version
    ('b')``), as the logs show it: where ``line`` is a conversation's, the quoted part is the line
    as :func:`logged_request_line` writes it, any piece of its sender id left out; else as it is."""
    shown = logged_request_line(line)
    if shown == line:
        return message
    # the reason comes first and holds no bracket; the quoted line may ("/conversations/a (b")
    reason, bracket, _ = message.partition(" (")
    return f"{reason} ({shown!r})" if bracket else message.replace(line, shown)


def loggable(path: str) -> str:
    """``path`` percent-encoded again (as a client sent it)."""
    return quote(path, safe="/!$&'()*+,;=:@-._~")


def logged_method(method: str) -> str:
    """``method`` as the logs show it: percent-encoded but for the characters of an HTTP token."""
    return quote(method, safe="!#$&'*+-.^_`|~")


def logged_request(current: Request) -> str:
    """``METHOD PATH id=REQUEST_ID`` of the request ``current``, for the lines that name it (its
    access-log line carries the same id)."""
    return f"{logged_method(current.method)} {logged_path(current.path)} id={g.get('request_id', '-')}"
