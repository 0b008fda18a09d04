"""Listening on a Unix socket: ``--host unix:PATH``, as gunicorn's ``--bind unix:PATH``.

A reverse proxy on the same machine (nginx's ``proxy_pass http://unix:PATH:``) reaches the
server through a file instead of a port: no port to choose or to collide on, and file
permissions decide who may connect. The socket is made with mode 0660 (read and write for its
owner and its group, nothing for others), so the proxy's user needs the server's group.

What could go wrong is checked before gunicorn starts, one line each: gunicorn would otherwise
delete a socket another running server listens on (it replaces any socket file it finds), fail
with a traceback on a path that is not a socket, or on one too long for ``sun_path``.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

from legacy_assistant.common.files import sticky_keeps

PREFIX = "unix:"
# Unix sockets take a path of at most 107 bytes on Linux (108 with the final NUL in sun_path);
# other systems allow fewer (103 on macOS and the BSDs), and refuse longer ones when binding.
MAX_PATH_BYTES = 107
# Gunicorn applies this umask while it makes the socket: mode 0660.
SOCKET_UMASK = 0o117


def socket_path(host: str) -> str | None:
    """The socket's absolute path when ``host`` is ``unix:PATH``, else None."""
    if not host.startswith(PREFIX):
        return None
    path = host[len(PREFIX) :]
    # the shell expands a tilde at a word's start only, and this one follows "unix:"
    return os.path.abspath(os.path.expanduser(path)) if path.strip() else ""


def socket_problem(path: str) -> str | None:
    """Why the server could not listen on a Unix socket at ``path`` now, or None.

    A socket file that nothing listens on (left by a server that was killed) is no problem:
    gunicorn replaces it. One that a server listens on is, and so is any other file there.
    """
    where = f"unix:{path}"
    if not path:
        return "--host unix:PATH needs the socket's path after 'unix:' (e.g. unix:/run/legacy-assistant/http.sock)"
    size = len(os.fsencode(path))
    if size > MAX_PATH_BYTES:
        return f"{where}: the path is {size} bytes long, and a Unix socket's may have at most {MAX_PATH_BYTES}"
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        return f"{where}: the folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{where}: this user cannot create files in {folder}"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"{where}: {exc.strerror or exc}"
    if not stat.S_ISSOCK(mode):
        return f"{where}: {path} exists and is not a socket; remove it or choose another path"
    return _listener_problem(path, where) or _unremovable(path, where)


def _unremovable(path: str, where: str) -> str | None:
    """Why gunicorn could not replace the stale socket at ``path``: in a sticky folder (``/tmp``)
    only the file's or the folder's owner may remove it. Gunicorn tried five times and stopped
    with "Can't connect to PATH", a message that names no cause."""
    try:
        owner = os.stat(path).st_uid
        folder = os.stat(os.path.dirname(path))
    except OSError:  # gone meanwhile: nothing to replace
        return None
    if not sticky_keeps(owner, folder):
        return None
    return (
        f"{where}: a socket another user's server left (uid {owner}) is there, and this user may not remove it "
        f"in {os.path.dirname(path)} (a sticky folder); its owner can remove it, or choose another path"
    )


def _listener_problem(path: str, where: str) -> str | None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except TimeoutError:
        pass  # a server too busy to accept at once still listens
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return None  # a stale socket: nothing listens
        if exc.errno == errno.EAGAIN:
            return f"{where}: another server listens on it, its queue full (stop it, or choose another path)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"{where}: a socket this user may not use is there (another user's server?)"
        return f"{where}: {exc.strerror or exc}"
    finally:
        probe.close()
    return f"{where}: another server listens on it (stop it, or choose another path)"
