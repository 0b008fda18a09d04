"""The check of a TCP address before any model loads (:mod:`legacy_assistant.serving.ports`)."""

from __future__ import annotations

import socket

import pytest

from legacy_assistant.serving.ports import listen_problem


@pytest.mark.parametrize(("family", "host", "shown"), [(socket.AF_INET, "127.0.0.1", "127.0.0.1:{port}"),
                                                       (socket.AF_INET6, "::1", "[::1]:{port}")])
def test_a_port_in_use_is_named_with_its_address_as_a_url_writes_it(family, host, shown):
    """An IPv6 address is bracketed: "::1:8080" reads as an address without a port."""
    with socket.socket(family, socket.SOCK_STREAM) as taken:
        try:
            taken.bind((host, 0))
        except OSError as exc:  # a system without IPv6 on its loopback
            pytest.skip(f"cannot bind {host}: {exc}")
        taken.listen()
        port = taken.getsockname()[1]
        assert listen_problem(host, port) == f"cannot listen on {shown.format(port=port)}: Address already in use"
