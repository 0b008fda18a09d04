"""The metrics folder (``PROMETHEUS_MULTIPROC_DIR``) made again when it is removed while the
server runs: by a cleaner of the temporary folder, where the server makes it by default, or by a
person. Without it a scrape of ``/metrics`` failed, and so did the import of the metrics in
every worker started later, which stopped the whole server. This module imports no metrics:
importing them writes to the folder."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger(__name__)


def remake_if_removed(environ: Mapping[str, str] | None = None) -> None:
    """Make the metrics folder named in the environment again where it is gone, and say what
    that costs. Raises OSError where it cannot be made."""
    directory = (os.environ if environ is None else environ).get(METRICS_ENV)
    if not directory or os.path.isdir(directory):
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)  # as private as the one the server makes
    log.warning(
        "the metrics folder %s=%s was removed while the server ran: made again. /metrics counts from "
        "here: what the workers then running had counted is lost, and what they count now stays out "
        "of it until they are restarted (a restart of the server)",
        METRICS_ENV,
        directory,
    )
