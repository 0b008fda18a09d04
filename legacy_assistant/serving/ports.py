"""Whether a server could listen on a TCP address now: checked before any model loads.

A module of its own, without gunicorn, so that ``serve --dev`` and ``playground`` check their
address on a system where gunicorn cannot be imported (Windows: it needs ``fcntl``).
"""

from __future__ import annotations

import socket

from legacy_assistant.common.origins import bracketed


def listen_problem(host: str, port: int) -> str | None:
    """Why nothing could listen on ``host:port`` now (taken, or not an address of this machine), or None."""
    ipv6 = ":" in host
    probe = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        probe.bind((host, port))
    except OSError as exc:
        # "[::1]:8080", as in a URL: "::1:8080" reads as an address without a port
        return f"cannot listen on {bracketed(host)}:{port}: {exc.strerror or exc}"
    finally:
        probe.close()
    return None
