"""The responder's decoding modes and emotions by name, without loading anything (the gunicorn
master reads them for its settings)."""

from __future__ import annotations

MODES = ("greedy", "beam", "sample", "sample_rerank")
DEFAULT_CONDITION = "neutral"
# The conditions of cakechat's models and API, in its order (its error messages list them so).
CAKECHAT_EMOTIONS = ("neutral", "anger", "joy", "fear", "sadness")
# The largest condition guidance strength: the graph's own limit
# (compat.responder.inputs.MAX_CONDITION_STRENGTH, which a test keeps equal), here without numpy.
MAX_CONDITION_STRENGTH = 10.0


def is_condition_strength(value: object) -> bool:
    """Whether ``value`` is a guidance strength a request may ask for: a number (not a bool)
    from 0 to :data:`MAX_CONDITION_STRENGTH`."""
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and 0.0 <= float(value) <= MAX_CONDITION_STRENGTH
    )
