"""What views and hooks use of the app in service: its assistant slot and its request metrics.

Views import these from here, never from the ``legacy_assistant.web`` package: the package
imports the factory (:mod:`legacy_assistant.web.app`), which imports the views.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from flask import Flask, Request, current_app, request

from legacy_assistant.serving.assistant import Assistant
from legacy_assistant.serving.hotswap import AssistantSlot

if TYPE_CHECKING:
    from legacy_assistant.web.metrics import RequestMetrics

EXTENSION = "legacy_assistant"  # app.extensions key of the AssistantSlot
METRICS_EXTENSION = "legacy_assistant.metrics"  # app.extensions key of the RequestMetrics


def current_request() -> Request:
    """The request being answered, itself rather than Flask's ``request`` proxy, which costs a
    lookup on every use: for code on every request's path that reads it several times."""
    return request._get_current_object()  # type: ignore[attr-defined]  # typed as the Request it stands for


def slot_of(app: Flask) -> AssistantSlot:
    """``app``'s :class:`AssistantSlot` (outside a request: signal handlers)."""
    return app.extensions[EXTENSION]


def current_slot() -> AssistantSlot:
    """The request's app's :class:`AssistantSlot`."""
    return current_app.extensions[EXTENSION]


def leased() -> contextlib.AbstractContextManager[Assistant]:
    """The assistant in service, kept open for the block even if a reload swaps it out."""
    return current_app.extensions[EXTENSION].lease()


def current_assistant() -> Assistant:
    """The assistant in service now (for quick reads; views answering a request use :func:`leased`)."""
    return current_app.extensions[EXTENSION].current


def request_metrics() -> RequestMetrics:
    """The request's app's metrics recorder."""
    return current_app.extensions[METRICS_EXTENSION]
