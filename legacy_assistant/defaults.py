"""Where the shipped models live: the defaults of every command and of the server.

In a checkout of the repository they are its ``exported/`` folder. An installed wheel carries
them as data files, under ``<prefix>/share/legacy-assistant/exported/`` (``pyproject.toml``'s
``data-files``), which ``pip install --target DIR`` moves to ``DIR/share/...`` and ``--prefix P``
puts in ``P/share/...``; the checkout's folder wins when both exist.
"""

from __future__ import annotations

import errno
import logging
import os
import sysconfig
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SHARE_SUBDIR = Path("share") / "legacy-assistant" / "exported"
DISTRIBUTION = "legacy-assistant"
# How help texts name where an installed copy's shipped models are: the place differs by machine
# and by how the copy was installed (``--target``, ``--prefix``, ``--user``), so not the path itself.
INSTALLED_EXPORTS = "PREFIX/share/legacy-assistant/exported"

log = logging.getLogger(__name__)


def _recorded_exports() -> list[Path]:
    """Where this copy's own install record (the dist-info's RECORD beside the package) says the
    data files went: it alone knows for ``pip install --prefix P`` run from ``P``'s
    site-packages, where the interpreter's prefix is another."""
    # imported here, not with the module: a checkout (and every command run from one) never needs it
    from importlib import metadata

    places: list[Path] = []
    marker = SHARE_SUBDIR.parts
    try:  # RECORD is read by dist.files, lazily: a damaged one fails there, not in distributions()
        for dist in metadata.distributions(name=DISTRIBUTION, path=[str(REPOSITORY_ROOT)]):
            for file in dist.files or ():  # e.g. ../../../share/legacy-assistant/exported/default/assistant.json
                parts = file.parts
                starts = [i for i in range(len(parts) - len(marker)) if parts[i : i + len(marker)] == marker]
                if starts:
                    place = dist.locate_file(Path(*parts[: starts[0] + len(marker)]))
                    places.append(Path(os.path.normpath(str(place))))
                    break  # every data file of one install lies in the same place
    except Exception as exc:  # a damaged record must not stop every command; the prefixes remain
        log.debug("cannot read the install record in %s: %s", REPOSITORY_ROOT, exc)
    return places


def _installed_exports() -> list[Path]:
    """Where an install puts the data files: beside the package (``pip install --target DIR``
    moves them to ``DIR/share``, leaving its record's paths stale), where this copy's install
    record says, the environment's prefix, then a user install's."""
    schemes = ["posix_user" if os.name == "posix" else "nt_user"]
    places = [REPOSITORY_ROOT / SHARE_SUBDIR, *_recorded_exports(), Path(sysconfig.get_path("data")) / SHARE_SUBDIR]
    for scheme in schemes:
        try:
            places.append(Path(sysconfig.get_path("data", scheme)) / SHARE_SUBDIR)
        except KeyError:  # a platform without user installs
            pass
    return list(dict.fromkeys(places))  # the record's place is often the prefix's too


def shipped(name: str) -> Path:
    """The shipped model ``name`` (``default``, ``responder``): the checkout's, else the
    installed one; the checkout's path when neither exists (errors then name it)."""
    in_checkout = REPOSITORY_ROOT / "exported" / name
    if in_checkout.exists():
        return in_checkout
    return next((place / name for place in _installed_exports() if (place / name).exists()), in_checkout)


DEFAULT_MODEL_DIR = shipped("default")
DEFAULT_RESPONDER_DIR = shipped("responder")


def _where_link_leads(link: Path) -> str:
    """Why the link ``link``, which ``exists()`` finds nothing at, leads to no folder."""
    try:
        link.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "leads round in a loop"
    return "leads nowhere"


def not_installed_hint(path: str | Path) -> str:
    """What to add to a "not found" error about ``path`` when it is a shipped model's default
    place: this copy of the package has no shipped models; or when it is the checkout's name for
    one (``exported/default``, as the help and README write it) and this copy has it elsewhere:
    where; or when it is a symbolic link that leads nowhere (a release linked before it was
    there, a mistyped target): where it points, since the link itself is there to see. Empty
    for any other path."""
    given = Path(os.path.abspath(path))
    if given.exists():
        return ""
    if given.is_symlink():
        return f" (a symbolic link to {os.readlink(given)}, which {_where_link_leads(given)})"
    shipped_at = {"default": ("model", DEFAULT_MODEL_DIR), "responder": ("responder", DEFAULT_RESPONDER_DIR)}
    # as written relative to a checkout's root (the help's and README's spelling), not an
    # absolute path that happens to end so: /data/exported/default is another folder
    written = Path(path)
    if written.is_absolute():
        # serve's settings make a relative path absolute, from the working folder, before it is
        # checked: "exported/default" given in another folder reaches here as that folder's
        try:
            relative = written.relative_to(Path.cwd())
        except (ValueError, OSError):  # elsewhere, or no working folder left
            relative = written
        if relative.parts[:1] == ("exported",):
            written = relative
    if not written.is_absolute() and written.parts[-2:-1] == ("exported",) and given.name in shipped_at:
        role, place = shipped_at[given.name]
        if place.exists():  # an installed copy: its shipped models are under <prefix>/share
            return f" (the shipped {role} of this copy of legacy-assistant is {place})"
    defaults = {DEFAULT_MODEL_DIR: "--model DIR", DEFAULT_RESPONDER_DIR: "--responder DIR (or --no-responder)"}
    option = defaults.get(given)
    if option is None:
        return ""
    looked = ", ".join(str(place) for place in [REPOSITORY_ROOT / "exported", *_installed_exports()])
    return (
        f" (the shipped models are not installed with this copy of legacy-assistant; looked in {looked}): "
        f"give a directory with {option}"
    )


# The Flask app's import name, from which Flask finds its instance folder.
APP_NAME = "legacy_assistant.web"


def instance_folder() -> str:
    """The server's instance folder, where the default conversation store lives, as Flask finds
    it for the app's package: ``instance/`` in a checkout, ``PREFIX/var/legacy_assistant.web-instance``
    when installed. Without building the app (whose modules set up metrics)."""
    from flask import Flask

    return Flask(APP_NAME).instance_path
