"""Where the shipped models live: the defaults of every command and of the server.

In a checkout of the repository they are its ``exported/`` folder. An installed wheel carries
them as data files, under ``<prefix>/share/legacy-assistant/exported/`` (``pyproject.toml``'s
``data-files``); the checkout's folder wins when both exist.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SHARE_SUBDIR = Path("share") / "legacy-assistant" / "exported"


def _installed_exports() -> list[Path]:
    """Where an install puts the data files: the environment's prefix, then a user install's."""
    schemes = ["posix_user" if os.name == "posix" else "nt_user"]
    places = [Path(sysconfig.get_path("data"))]
    for scheme in schemes:
        try:
            places.append(Path(sysconfig.get_path("data", scheme)))
        except KeyError:  # a platform without user installs
            pass
    return [place / SHARE_SUBDIR for place in places]


def shipped(name: str) -> Path:
    """The shipped model ``name`` (``default``, ``responder``): the checkout's, else the
    installed one; the checkout's path when neither exists (errors then name it)."""
    in_checkout = REPOSITORY_ROOT / "exported" / name
    if in_checkout.exists():
        return in_checkout
    return next((place / name for place in _installed_exports() if (place / name).exists()), in_checkout)


DEFAULT_MODEL_DIR = shipped("default")
DEFAULT_RESPONDER_DIR = shipped("responder")


def not_installed_hint(path: str | Path) -> str:
    """What to add to a "not found" error about ``path`` when it is a shipped model's default
    place: this copy of the package has no shipped models. Empty for any other path."""
    given = Path(os.path.abspath(path))
    defaults = {DEFAULT_MODEL_DIR: "--model DIR", DEFAULT_RESPONDER_DIR: "--responder DIR (or --no-responder)"}
    option = defaults.get(given)
    if option is None or given.exists():
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
