"""Short tokens a client picks: request ids (``X-Request-ID``) and chat message ids (``message_id``).

One rule for both, so that what a log line, a header and a stored turn carry is checked alike:
1 to 64 letters, digits, ``.``, ``_`` or ``-`` (nothing to escape in a log line or a header).
"""

from __future__ import annotations

import re

SHORT_TOKEN = r"[A-Za-z0-9._-]{1,64}"  # also the OpenAPI document's pattern (anchored there)
_FULL_MATCH = re.compile(SHORT_TOKEN).fullmatch


def is_short_token(value: object) -> bool:
    """Whether ``value`` is a string of 1 to 64 letters, digits, ``.``, ``_`` or ``-``."""
    return isinstance(value, str) and _FULL_MATCH(value) is not None
