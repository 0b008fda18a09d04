"""Whether a server could listen on a TCP address now: checked before any model loads.

A module of its own, without gunicorn, so that ``serve --dev`` and ``playground`` check their
address on a system where gunicorn cannot be imported (Windows: it needs ``fcntl``).
"""

from __future__ import annotations

import socket


def listen_problem(host: str, port: int) -> str | None:
    """Why nothing could listen on ``host:port`` now (taken, or not an address of this machine), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        probe.bind((host, port))
    except OSError as exc:
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    finally:
        probe.close()
    return None
