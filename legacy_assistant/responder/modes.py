"""The responder's decoding modes and emotions by name, without loading anything (the gunicorn
master reads them for its settings)."""

from __future__ import annotations

MODES = ("greedy", "beam", "sample", "sample_rerank")
DEFAULT_CONDITION = "neutral"
# The conditions of cakechat's models and API, in its order (its error messages list them so).
CAKECHAT_EMOTIONS = ("neutral", "anger", "joy", "fear", "sadness")
