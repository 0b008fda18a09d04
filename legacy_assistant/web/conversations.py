"""``GET /api/v1/conversations/<sender>``: one conversation's stored turns, oldest first;
``DELETE`` the same path: forget that conversation.

The chat page calls GET after a reload to show the conversation again, and DELETE when its
"New conversation" button leaves one behind. A sender id is the only
key to its transcript, so it has the same access class as ``/api/v1/chat`` and clients should
pick ids nobody can guess (the page uses 128 random bits). An unknown or expired sender has an
empty transcript, not a 404: the store cannot tell "never spoke" from "forgotten".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from flask import jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.routing import BaseConverter

from legacy_assistant.web.context import leased
from legacy_assistant.web.errors import ApiError, text_field
from legacy_assistant.web.logged import CONVERSATIONS_PREFIX as PREFIX
from legacy_assistant.web.security import Access, GuardedBlueprint

blueprint = GuardedBlueprint("conversations", __name__, access=Access.API, url_prefix=PREFIX)


class SenderConverter(BaseConverter):
    """Any sender ``/api/v1/chat`` accepts, percent-encoded by the client: "/" anywhere (the
    first character too) and line breaks included, which Werkzeug's ``path`` converter does
    not match."""

    regex = r"[\s\S]+"
    part_isolating = False


@blueprint.record_once
def _register_converter(state: BlueprintSetupState) -> None:
    """Before the route below is added to the app's URL map, which needs the converter."""
    state.app.url_map.converters["sender"] = SenderConverter


# merge_slashes=False: "/api/v1/conversations//a" is sender "/a", not a redirect to sender "a".
@blueprint.get("/<sender:sender>", merge_slashes=False)
def transcript(sender: str) -> Any:
    """``{"sender", "turns": [{"message", "reply", "intent", "confidence", "generated"}, ...]}``."""
    sender = _checked(sender)
    with leased() as assistant:
        turns = assistant.history(sender)
    return jsonify(
        {
            "sender": sender,
            "turns": [
                {
                    "message": turn.message,
                    "reply": turn.reply,
                    "intent": turn.intent,
                    "confidence": turn.confidence,
                    "generated": turn.generated,
                }
                for turn in turns
            ],
        }
    )


@blueprint.delete("/<sender:sender>", merge_slashes=False)
def forget(sender: str) -> Any:
    """``{"sender", "forgotten": bool}``: the conversation's state and turns are deleted (after any
    turn of it in progress); ``forgotten`` says whether there was one. Deleting again is no error."""
    sender = _checked(sender)
    with leased() as assistant:
        forgotten = assistant.forget(sender)
    return jsonify({"sender": sender, "forgotten": forgotten})


def _checked(sender: str) -> str:
    """The path's sender, with the same checks (blank, length, valid Unicode) and messages as
    the chat route's field."""
    if "\ufffd" in sender and not _path_is_utf8():
        # Werkzeug decodes the path with replacement characters: "%FF" and "%C0" would both
        # name the conversation of "\ufffd".
        raise ApiError(400, "invalid_field", "field 'sender' is not valid Unicode text")
    return text_field({"sender": sender}, "sender", "MAX_SENDER_LENGTH")


def _path_is_utf8() -> bool:
    """Whether the request's path, as the client sent it, is UTF-8: the raw request target
    (``RAW_URI`` or ``REQUEST_URI``, which gunicorn and Werkzeug set) percent-decoded, else
    ``PATH_INFO`` (WSGI hands its bytes over as Latin-1)."""
    environ = request.environ
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    try:
        if target:
            # the path only: not the query, nor a fragment (which a client should not send)
            unquote_to_bytes(target.split("?", 1)[0].split("#", 1)[0]).decode("utf-8")
        else:
            environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False
    return True
