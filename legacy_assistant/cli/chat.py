"""``legacy-assistant chat``: a conversation in the terminal.

With ``--model`` (or neither option) the intent model answers. With ``--responder`` alone the
generative responder answers every turn, from the last turns of the conversation. With both,
the intent model answers and the responder speaks instead of its fallback (a message below the
threshold or out of scope), when it has something to say.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from typing import Any

from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.defaults import DEFAULT_MODEL_DIR
from legacy_assistant.errors import AssistantError
from legacy_assistant.responder.modes import MODES as RESPONDER_MODES

QUIT_WORDS = {"quit", "exit", "/quit", "/exit"}
DEFAULT_RESPONDER_MODE = "sample_rerank"
NO_REPLY = "..."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("chat", help="talk to a model or a responder in the terminal")
    parser.add_argument(
        "--model", help="intent model directory (default: the shipped one, unless --responder is given alone)"
    )
    parser.add_argument("--sender", default="terminal", help="conversation id")
    parser.add_argument("--show-intent", action="store_true", help="print intent and confidence with each reply")
    parser.add_argument("--threshold", type=float, help="override the model's fallback threshold")
    responder = parser.add_argument_group("generative responder")
    responder.add_argument(
        "--responder",
        metavar="DIR",
        help="responder directory, e.g. exported/responder; with --model it answers the fallback turns",
    )
    responder.add_argument("--emotion", help="the responder's condition, e.g. joy (default: neutral)")
    responder.add_argument(
        "--mode",
        choices=RESPONDER_MODES,
        default=DEFAULT_RESPONDER_MODE,
        help=f"how replies are decoded (default {DEFAULT_RESPONDER_MODE})",
    )
    responder.add_argument("--seed", type=int, help="seed of the sampling modes: the same seed, the same conversation")
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.responder is not None:
        return run_with_responder(args)
    for flag, value in (("--emotion", args.emotion), ("--seed", args.seed)):
        if value is not None:
            raise AssistantError(f"{flag} is a responder option: give --responder DIR too")
    apply_runtime(args)
    from legacy_assistant.serving.assistant import Assistant

    assistant = Assistant.load(args.model or DEFAULT_MODEL_DIR, threshold=args.threshold)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Chatting with {assistant.predictor.name}. Type 'quit' or press Ctrl-D to leave.")
    try:
        for message in _messages(interactive):
            reply = assistant.chat(args.sender, message)
            detail = f"  [{reply.intent} {reply.confidence:.2f}]" if args.show_intent else ""
            print(f"bot> {reply.text}{detail}", flush=True)
    finally:
        assistant.close()
    return 0


def run_with_responder(args: argparse.Namespace) -> int:
    """The responder alone, or behind an intent model's fallback."""
    if args.model is None and args.threshold is not None:
        raise AssistantError("--threshold is an intent model option: give --model too")
    apply_runtime(args)
    from legacy_assistant.responder.responder import Responder

    responder = Responder.load(args.responder)
    assistant: Any = None
    try:
        emotion = args.emotion if args.emotion is not None else responder.default_condition
        if emotion not in responder.conditions:
            raise AssistantError(
                f"unknown emotion {emotion!r}; {responder.info.name} knows {', '.join(responder.conditions)}"
            )
        if args.model is not None:
            from legacy_assistant.serving.assistant import Assistant

            assistant = Assistant.load(args.model, threshold=args.threshold)
        interactive = sys.stdin.isatty()
        if interactive:
            who = responder.info.name + (f" behind {assistant.predictor.name}" if assistant else "")
            print(f"Chatting with {who} ({emotion}, {args.mode}). Type 'quit' or press Ctrl-D to leave.")
        _converse(args, responder, assistant, emotion, interactive)
    finally:
        responder.close()
        if assistant is not None:
            assistant.close()
    return 0


def _converse(args: argparse.Namespace, responder: Any, assistant: Any, emotion: str, interactive: bool) -> None:
    from legacy_assistant.classifier.intents import FALLBACK_TAG

    # The turns the responder sees: the latest ones, both sides, oldest first.
    context: deque[str] = deque(maxlen=responder.spec.max_context_turns)
    for number, message in enumerate(_messages(interactive)):
        context.append(message)
        seed = None if args.seed is None else args.seed + number
        detail = ""
        if assistant is None:
            text = responder.respond(list(context), emotion, mode=args.mode, seed=seed)
            if args.show_intent:
                detail = f"  [generated {emotion}]"
        else:
            reply = assistant.chat(args.sender, message)
            text, detail = reply.text, f"  [{reply.intent} {reply.confidence:.2f}]"
            if reply.intent == FALLBACK_TAG:
                generated = responder.respond(list(context), emotion, mode=args.mode, seed=seed)
                if generated:
                    text, detail = generated, f"  [generated {emotion}; intent {reply.confidence:.2f}]"
            if not args.show_intent:
                detail = ""
        if text:
            context.append(text)
        print(f"bot> {text or NO_REPLY}{detail}", flush=True)


def _messages(interactive: bool):
    """The user's messages, stripped, until end of input or a quit word."""
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            return
        message = line.strip()
        if not message:
            continue
        if message.lower() in QUIT_WORDS:
            return
        yield message
