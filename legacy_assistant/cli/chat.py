"""``legacy-assistant chat``: a conversation in the terminal."""
from __future__ import annotations

import argparse
import sys

from legacy_assistant.defaults import DEFAULT_MODEL_DIR
from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime

QUIT_WORDS = {"quit", "exit", "/quit", "/exit"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("chat", help="talk to a model in the terminal")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model directory (default: the shipped one)")
    parser.add_argument("--sender", default="terminal", help="conversation id")
    parser.add_argument("--show-intent", action="store_true", help="print intent and confidence with each reply")
    parser.add_argument("--threshold", type=float, help="override the model's fallback threshold")
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    apply_runtime(args)
    from legacy_assistant.serving.assistant import Assistant

    assistant = Assistant.load(args.model, threshold=args.threshold)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with {assistant.predictor.name}. Type 'quit' or press Ctrl-D to leave.")
    try:
        while True:
            try:
                line = input("you> " if interactive else "")
            except EOFError:
                break
            message = line.strip()
            if not message:
                continue
            if message.lower() in QUIT_WORDS:
                break
            reply = assistant.chat(args.sender, message)
            detail = f"  [{reply.intent} {reply.confidence:.2f}]" if args.show_intent else ""
            print(f"bot> {reply.text}{detail}", flush=True)
    finally:
        assistant.close()
    return 0
