"""Requests to a server on this machine never go through a proxy of the environment.

HTTP clients (urllib, httpx, requests) send every request through ``http_proxy`` or
``all_proxy`` unless ``no_proxy`` names its host, and machines behind a company proxy often set
the first without loopback in the second: a request to 127.0.0.1 then left the machine, and
failed. gradio asks its own server whether it started that way (the playground stopped with a
traceback), and so do the tests of the servers they start."""

from __future__ import annotations

import os
import urllib.request

LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")


def bypass_proxy_for(host: str) -> None:
    """Add this machine's names and ``host`` to ``no_proxy`` in this process's environment (and
    so its children's), keeping the names already there."""
    present = [name.strip() for name in urllib.request.getproxies_environment().get("no", "").split(",")]
    wanted = [name for name in (*LOCAL_NAMES, host.strip("[]")) if name and name not in present]
    if wanted:
        # the lower-case name is the one read when both are set
        os.environ["no_proxy"] = ",".join([*(name for name in present if name), *wanted])
