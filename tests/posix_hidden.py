"""Hide, in this process, the names of Python's standard library that Windows' Python lacks.

:func:`hide` runs first in a child process (a ``sitecustomize`` module on its ``PYTHONPATH``,
see ``tests/test_posix_only_names.py``), before the project is imported: code of the project
that reaches one of these names then fails as it would on Windows (``AttributeError`` for a
name, ``ImportError`` for a module), on Linux.

Only the project must lose them. The standard library modules that use them on Linux are
imported first and keep a full copy of ``os``, ``signal``, ``select`` and ``socket`` (on Windows
they take their Windows branches instead, which Linux cannot run). The simulation has limits:
a signal given by number (``signal.signal(1, ...)``), ``signal.Signals.SIGHUP``, ``/proc`` and
``/dev`` paths, and Windows' file semantics (an open file cannot be renamed or removed) are not
simulated. A few names stay because libraries read them on Linux where they take another way on
Windows: ``os.uname`` (numpy), ``termios`` and ``tty`` (huggingface_hub, under gradio).
"""

from __future__ import annotations

import importlib
import os
import select
import signal
import socket
import sys
import types

# Modules Windows' Python has not (readline: the chat imports it at a terminal, and reads its lines
# without it there). Not hidden: termios and tty, which libraries import on Linux where they
# import msvcrt on Windows (huggingface_hub, under gradio); the project imports neither.
MODULES = ("fcntl", "resource", "pwd", "grp", "pty", "syslog", "_posixshmem", "readline")

_SIGNALS_ON_WINDOWS = {"SIGABRT", "SIGFPE", "SIGILL", "SIGINT", "SIGSEGV", "SIGTERM", "SIGBREAK"}
SIGNAL_NAMES = tuple(
    name
    for name in dir(signal)
    if name.startswith("SIG") and not name.startswith("SIG_") and name not in _SIGNALS_ON_WINDOWS
) + (
    "SIG_BLOCK",
    "SIG_UNBLOCK",
    "SIG_SETMASK",
    "Sigmasks",
    "pthread_sigmask",
    "pthread_kill",
    "sigpending",
    "sigwait",
    "sigwaitinfo",
    "sigtimedwait",
    "setitimer",
    "getitimer",
    "alarm",
    "pause",
    "siginterrupt",
    "ITIMER_REAL",
    "ITIMER_VIRTUAL",
    "ITIMER_PROF",
    "ItimerError",
    "pidfd_send_signal",
)

OS_NAMES = (
    # users, groups, process groups, sessions
    "getuid", "geteuid", "getgid", "getegid", "getgroups", "getresuid", "getresgid", "setuid",
    "seteuid", "setgid", "setegid", "setgroups", "setreuid", "setregid", "initgroups",
    "getgrouplist", "fork", "forkpty", "register_at_fork", "killpg", "setsid", "getsid",
    "getpgid", "setpgid", "getpgrp", "setpgrp", "tcgetpgrp", "tcsetpgrp", "wait", "wait3",
    "wait4", "waitid", "WNOHANG", "WUNTRACED", "WCONTINUED", "WIFEXITED", "WEXITSTATUS",
    "WIFSIGNALED", "WTERMSIG", "WIFSTOPPED", "WSTOPSIG", "WCOREDUMP", "WIFCONTINUED",
    "posix_spawn", "posix_spawnp", "nice", "getpriority", "setpriority", "getloadavg",
    "sched_getaffinity", "sched_setaffinity", "sched_yield", "sched_getscheduler",
    "sched_setscheduler", "sched_getparam", "sched_setparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "pidfd_open", "chroot",
    # files and descriptors
    "O_NOFOLLOW", "O_DIRECTORY", "O_CLOEXEC", "O_NONBLOCK", "O_NDELAY", "O_NOCTTY", "O_SYNC",
    "O_DSYNC", "O_RSYNC", "O_ASYNC", "O_FSYNC", "O_PATH", "O_TMPFILE", "O_NOATIME", "O_DIRECT",
    "O_LARGEFILE", "fchmod", "fchown", "chown", "lchown", "sync", "fdatasync", "posix_fadvise",
    "posix_fallocate", "pipe2", "mkfifo", "mknod", "major", "minor", "makedev", "statvfs",
    "fstatvfs", "ST_RDONLY", "ST_NOSUID", "sysconf", "sysconf_names", "pathconf",
    "fpathconf", "pathconf_names", "confstr", "confstr_names", "ttyname", "openpty", "ctermid",
    "login_tty", "memfd_create", "eventfd", "sendfile", "splice", "copy_file_range", "pread",
    "pwrite", "preadv", "pwritev", "lockf", "F_LOCK", "F_TLOCK", "F_ULOCK", "F_TEST", "fwalk",
    "getxattr", "setxattr", "listxattr", "removexattr", "SEEK_DATA", "SEEK_HOLE",
    "get_blocking", "set_blocking",  # Windows has these from Python 3.12 on
)  # fmt: skip

SELECT_NAMES = tuple(name for name in dir(select) if name.startswith(("poll", "epoll", "POLL", "EPOLL", "devpoll")))
SOCKET_NAMES = ("AF_UNIX", "SO_REUSEPORT", "SO_PEERCRED", "SOCK_CLOEXEC", "SOCK_NONBLOCK", "MSG_NOSIGNAL", "AF_PACKET")

# Standard library modules that use the hidden names on Linux: imported before they go, with
# full copies of the modules they read them from.
STDLIB_USERS = (
    "subprocess", "shutil", "tempfile", "pathlib", "selectors", "threading", "socketserver",
    "http.server", "getpass", "platform", "uuid", "webbrowser", "logging.handlers",
    "concurrent.futures.process", "concurrent.futures.thread", "multiprocessing",
    "multiprocessing.connection", "multiprocessing.context", "multiprocessing.heap",
    "multiprocessing.popen_fork", "multiprocessing.popen_forkserver",
    "multiprocessing.popen_spawn_posix", "multiprocessing.process", "multiprocessing.queues",
    "multiprocessing.reduction", "multiprocessing.resource_sharer", "multiprocessing.resource_tracker",
    "multiprocessing.shared_memory", "multiprocessing.spawn", "multiprocessing.synchronize",
    "multiprocessing.util", "multiprocessing.forkserver", "multiprocessing.pool",
    "asyncio", "asyncio.unix_events", "asyncio.base_subprocess", "ctypes", "ctypes.util",
    "sysconfig", "mimetypes", "urllib.request", "ssl", "zipfile", "tarfile", "glob", "random",
    "signal", "os", "socket", "select",
)  # fmt: skip

HIDDEN_MODULES = {"os": (os, OS_NAMES), "signal": (signal, SIGNAL_NAMES), "select": (select, SELECT_NAMES)}
HIDDEN_MODULES["socket"] = (socket, SOCKET_NAMES)


def _full_copy(module: types.ModuleType) -> types.ModuleType:
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update(module.__dict__)
    return copy


def hide() -> None:
    """Hide the names and modules (see the module's docstring); the standard library keeps them."""
    users = [importlib.import_module(name) for name in STDLIB_USERS]
    copies = {name: _full_copy(module) for name, (module, _) in HIDDEN_MODULES.items()}
    for user in users:
        for attribute, value in list(vars(user).items()):
            for name, (module, _) in HIDDEN_MODULES.items():
                if value is module and user is not module:
                    setattr(user, attribute, copies[name])
    for module, names in HIDDEN_MODULES.values():
        for name in names:
            if hasattr(module, name):
                delattr(module, name)
        exported = getattr(module, "__all__", None)
        if exported is not None:  # a library that takes every exported name (trio: socket's)
            module.__all__ = [name for name in exported if name not in names]
    for name in MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
