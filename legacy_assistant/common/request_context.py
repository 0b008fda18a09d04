"""The id of the request a thread is answering, for log lines written below the web layer.

The web layer sets it for each request (the id its access-log line and its ``X-Request-ID``
carry); code that knows nothing of Flask (the assistant, deciding a chat turn) ends a line it
writes while answering with it, so that an operator can tie that line to the request.
"""

from __future__ import annotations

from contextvars import ContextVar

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)


def request_id_suffix() -> str:
    """`` id=ID`` of the request being answered in this thread, or ``""`` outside one."""
    request_id = current_request_id.get()
    return f" id={request_id}" if request_id else ""
