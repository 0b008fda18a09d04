"""Where the shipped models live: the defaults of every command and of the server."""

from __future__ import annotations

from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPOSITORY_ROOT / "exported" / "default"
DEFAULT_RESPONDER_DIR = REPOSITORY_ROOT / "exported" / "responder"
