"""``legacy-assistant serve``: the HTTP API and chat page."""
from __future__ import annotations

import argparse

from legacy_assistant.assistant import DEFAULT_MODEL_DIR
from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="serve the HTTP API and the chat page")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model directory (default: the shipped one)")
    parser.add_argument("--threshold", type=float, help="override the model's fallback threshold")
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    apply_runtime(args)  # before the app loads the model: one TensorFlow runtime per process
    from legacy_assistant.web import create_app

    app = create_app({"MODEL_DIR": args.model, "THRESHOLD": args.threshold})
    print(f"serving {args.model} on http://{args.host}:{args.port}/  (Ctrl-C to stop)")
    # threaded=True: every request runs in its own thread against the one shared session.
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return 0
