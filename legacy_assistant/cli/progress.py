"""Progress bars for long commands, on standard error, only where someone watches them."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(**options: Any) -> Any:
    """A ``tqdm`` bar on standard error when it is a terminal. Redirected to a file or a pipe
    (a CI log, ``2> train.log``), every redraw would be one more carriage-return-separated copy
    of the bar, so the bar is then disabled: it takes updates and shows nothing (the commands log
    what matters, such as each epoch, as lines)."""
    from tqdm import tqdm

    stream = sys.stderr
    watched = hasattr(stream, "isatty") and stream.isatty()
    return tqdm(file=stream, disable=not watched, dynamic_ncols=True, **options)
