"""Run a function of this package in a fresh Python process, without the working folder's modules.

``python -m MODULE`` puts the working folder first on ``sys.path``. The server (``serve``
re-executes itself as a fresh interpreter) and the compat side of a responder's ``migrate``
were started so, and a ``numpy.py``, ``flask.py``, ``gunicorn.py`` or ``compat/`` in the
folder ``legacy-assistant`` ran from was imported in place of the real one: ``serve`` failed
there (or ran that file), while ``chat`` and every other command, console scripts that never
read the working folder, worked. :func:`command` starts ``python .../launch.py
MODULE:FUNCTION ARGS...`` instead: Python puts this file's folder first, and :func:`_main`
swaps it for the folder that holds this copy of the package, so the child runs the same copy
of the code as its parent, and nothing of the working folder. A copy imported from a zip
archive, a file of which Python cannot run, is started as ``python -c PROGRAM MODULE:FUNCTION
ARGS...`` (:data:`_FROM_ARCHIVE`) instead.

The whole command line stays in ``sys.argv`` (``FUNCTION`` receives ``ARGS``), so gunicorn's
in-place upgrade, which starts ``sys.executable`` with ``sys.argv`` again, starts the same.

Only the standard library's ``os`` and ``sys`` are imported before the path is set.
"""

from __future__ import annotations

import os
import sys

# This file's folder as the package was imported, symbolic links kept: a package folder linked
# into site-packages has site-packages above it, not the folder the link leads to
_HERE = os.path.dirname(os.path.abspath(__file__))
# the folder that holds the legacy_assistant package (and compat beside it): site-packages, or a checkout
PACKAGE_ROOT = os.path.dirname(os.path.dirname(_HERE))
# the folders Python may put first for this script: its own, and that of the file a link to it leads to
_SCRIPT_FOLDERS = {os.path.realpath(_HERE), os.path.dirname(os.path.realpath(__file__))}


# The program for ``python -c`` where this file is in a zip archive (the package imported from a
# zip on PYTHONPATH), which Python cannot run as a script: the working folder that -c puts first
# ("") out, the archive in.
_FROM_ARCHIVE = (
    "import sys\n"
    "if sys.path[:1] == ['']: del sys.path[0]\n"
    "sys.path.insert(0, {root!r})\n"
    "from legacy_assistant.common.launch import _main\n"
    "sys.exit(_main())\n"
)


def command(target: str, *args: str, python: str = sys.executable) -> list[str]:
    """The command line that runs ``target`` (``"package.module:function"``, a function taking
    the list of ``args`` and returning an exit status) in a fresh ``python``."""
    script = os.path.join(_HERE, "launch.py")
    if not os.path.isfile(script):  # in a zip archive: python -c, the same arguments after it
        return [python, "-c", _FROM_ARCHIVE.format(root=PACKAGE_ROOT), target, *args]
    return [python, script, target, *args]


def _set_path() -> None:
    """Drop the folder Python put first for this script (this file's) and make sure the folder
    holding this copy of the package is on the path (first, when it was not there at all: a
    checkout run without installing, as ``python -m legacy_assistant`` from its root)."""
    if sys.path and os.path.realpath(sys.path[0] or os.curdir) in _SCRIPT_FOLDERS:
        del sys.path[0]  # absent under python -P or -I: then nothing of ours was added
    root = os.path.realpath(PACKAGE_ROOT)
    if not any(os.path.realpath(entry or os.curdir) == root for entry in sys.path):
        sys.path.insert(0, PACKAGE_ROOT)


def _main() -> int:
    """``launch.py MODULE:FUNCTION ARGS...`` (or ``python -c PROGRAM MODULE:FUNCTION ARGS...``):
    call ``FUNCTION(ARGS)`` and return its status."""
    _set_path()
    if len(sys.argv) < 2 or ":" not in sys.argv[1]:
        print("usage: launch.py MODULE:FUNCTION [ARGS...]", file=sys.stderr)
        return 2
    import importlib

    module, _, function = sys.argv[1].partition(":")
    status = getattr(importlib.import_module(module), function)(sys.argv[2:])
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(_main())
