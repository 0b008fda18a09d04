"""``legacy-assistant playground``: try the intent model and the responder in a local web page.

The page (gradio, the optional extra ``playground``) has a chat with the assistant, showing the
intent ranking of each message and whether the reply was generated and why, and a tab that
answers one context under every emotion of the responder. It is for trying models by hand on
this machine: one process, no share link, nothing fetched from the network.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile

from legacy_assistant.cli.arguments import condition_strength_number, path_text, whole_number
from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.common.terminal import say
from legacy_assistant.defaults import DEFAULT_MODEL_DIR, DEFAULT_RESPONDER_DIR
from legacy_assistant.errors import ConfigError
from legacy_assistant.responder.modes import MODES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MODE = "sample_rerank"  # as the server decodes generated replies


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "playground",
        help="try the models in a local web page (needs the 'playground' extra)",
        description="Try the intent model and the responder in a local web page (gradio).",
    )
    parser.add_argument(
        "--host", type=address_text, default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})"
    )
    # a usage error (exit status 2) as any other flag's bad value; 0 (any free port) would leave
    # the page on a port nothing names
    parser.add_argument(
        "--port",
        type=whole_number(1, 65535, bounds="a port from 1 to 65535"),
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--root-path",
        metavar="PATH",
        help="the path a reverse proxy serves the page under, e.g. /playground (default: gradio's "
        "GRADIO_ROOT_PATH, else none)",
    )
    # an empty path ("$MODEL" unset) is refused: it served the shipped model without a word
    parser.add_argument(
        "--model", metavar="DIR", type=path_text, help="intent model directory (default: the shipped one)"
    )
    responder = parser.add_mutually_exclusive_group()
    responder.add_argument(
        "--responder", metavar="DIR", type=path_text, help="generative responder directory (default: the shipped one)"
    )
    responder.add_argument("--no-responder", action="store_true", help="no responder: canned fallbacks, no emotions")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=DEFAULT_MODE,
        help=f"how the chat's generated replies are decoded (default {DEFAULT_MODE}; greedy: always the same "
        "reply to the same conversation); the every-emotion tab has its own choice",
    )
    parser.add_argument(
        "--condition-strength",
        type=condition_strength_number,
        default=0.0,
        metavar="S",
        help="condition guidance of generated replies, 0 (off, the default) to 10 (2: emotions heard far more often)",
    )
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def address_text(text: str) -> str:
    """An argparse ``type`` for ``--host``: an address, not blank. An empty one (``--host
    "$HOST"`` with HOST unset) went to gradio as no address, which then listens on gradio's
    ``GRADIO_SERVER_NAME`` where that is set (``0.0.0.0``: every address), not on this
    command's default."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be blank: name an address, e.g. {DEFAULT_HOST}")
    return text.strip()


def run(args: argparse.Namespace) -> int:
    if args.no_responder and args.condition_strength:
        raise ConfigError("--condition-strength is a responder option: not with --no-responder")
    if args.root_path is not None and not args.root_path.startswith("/"):
        raise ConfigError(f"--root-path is a path from the host's root, such as /playground, got {args.root_path!r}")
    from_environment = os.environ.get("GRADIO_ROOT_PATH", "")
    if args.root_path is None and from_environment and not from_environment.startswith(("/", "http://", "https://")):
        # gradio takes it as it is, and then fails every request of the page (500)
        raise ConfigError(
            "GRADIO_ROOT_PATH is a path from the host's root, such as /playground, or a full URL, "
            f"got {from_environment!r}"
        )
    if not args.no_responder:
        check_one_runtime(args.model or str(DEFAULT_MODEL_DIR), args.responder or str(DEFAULT_RESPONDER_DIR))
    # gradio makes its folder (the system's temporary folder/gradio, shared by every run and user)
    # at each start and leaves it behind: this run gets a folder of its own, removed at its end
    own_temp = None if os.environ.get("GRADIO_TEMP_DIR") else tempfile.mkdtemp(prefix="legacy-assistant-playground-")
    if own_temp is not None:
        os.environ["GRADIO_TEMP_DIR"] = own_temp
    try:
        return _serve(args)
    finally:
        if own_temp is not None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
            shutil.rmtree(own_temp, ignore_errors=True)


def check_one_runtime(model: str, responder: str) -> None:
    """Refuse an intent model and a responder written for different runtimes, naming a way out:
    the loader's own advice (``--runtime`` of the model it refused) would then refuse the other
    one. Reads the manifests only; a directory that is missing or no model is refused here as
    loading would refuse it."""
    from legacy_assistant.cli.model_kind import mixed_runtimes

    problem = mixed_runtimes(
        model, responder, command="playground", both_copies="give that copy with --model DIR", alone="--no-responder"
    )
    if problem:
        raise ConfigError(problem)


def _serve(args: argparse.Namespace) -> int:
    from legacy_assistant.playground.app import (
        build_playground,
        launch_playground,
        load_gradio,
        serve_until_interrupted,
    )

    load_gradio()  # a missing extra is one line now, not after the models have loaded
    cap = text_cap()  # a bad value too
    from legacy_assistant.serving.ports import listen_problem

    problem = listen_problem(args.host, args.port)  # and a port in use, as serve checks it
    if problem is not None:
        raise ConfigError(f"{problem} (choose another --host or --port)")
    apply_runtime(args)
    from legacy_assistant.serving.assistant import Assistant

    responder = None if args.no_responder else args.responder or DEFAULT_RESPONDER_DIR
    assistant = Assistant.load(
        args.model or DEFAULT_MODEL_DIR,
        responder_dir=responder,
        generation_mode=args.mode,
        condition_strength=args.condition_strength,
    )
    # gradio checks its own server with httpx when it starts: not worth a log line each
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        assistant.warm_up()  # the first message gets a reply as fast as the next ones
        blocks = build_playground(assistant, cap)
        url = launch_playground(blocks, args.host, args.port, root_path=args.root_path)
        say(served_line(url, blocks.root_path), flush=True)
        serve_until_interrupted(blocks)
    finally:
        assistant.close()
    return 0


def served_line(url: str, root_path: str | None) -> str:
    """The line that says where the page is. Under a root path that is a path (``--root-path``
    or gradio's ``GRADIO_ROOT_PATH``) the page at ``url`` chats too: its calls go to the root
    path, which this server also answers. Under a full URL its calls go to that address, so it
    chats only through the reverse proxy there: the line says so, rather than offer a page
    whose messages are never answered."""
    line = f"playground on {url}  (Ctrl-C to stop)"
    if root_path and root_path.startswith(("http://", "https://")):
        line += (
            f"; its calls go to {root_path.rstrip('/')}/..., so open it through the reverse proxy that serves that path"
        )
    return line


def text_cap() -> int:
    """The longest message the playground takes: the server's text cap, from
    ``LEGACY_ASSISTANT_MAX_TEXT_LENGTH`` as ``serve`` reads it (default 1,000 characters)."""
    from legacy_assistant.serving import settings

    cap = settings.by_name()["MAX_TEXT_LENGTH"]
    return int(settings.resolve(None, None, [cap])[cap.name])
