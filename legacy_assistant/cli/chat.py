"""``legacy-assistant chat``: a conversation in the terminal.

With ``--model`` (or neither option) the intent model answers. With ``--responder`` alone the
generative responder answers every turn, from the last turns of the conversation; given no
directory, it is the shipped responder. With both, the intent model answers and the responder
speaks instead of its fallback (a message below the threshold or out of scope), when it has
something to say: the server's chat route, in the terminal (the same
:class:`~legacy_assistant.serving.assistant.Assistant`). Replies are decoded with the server's
repetition penalty either way.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from legacy_assistant.cli.arguments import (
    condition_strength_number,
    fraction_number,
    path_text,
    seed_number,
    sender_id,
)
from legacy_assistant.cli.runtime_option import add_runtime_option, apply_runtime
from legacy_assistant.cli.suspend import stop_and_resume_kept
from legacy_assistant.common.terminal import say
from legacy_assistant.defaults import DEFAULT_MODEL_DIR, DEFAULT_RESPONDER_DIR, INSTALLED_EXPORTS
from legacy_assistant.errors import AssistantError
from legacy_assistant.responder.modes import MODES as RESPONDER_MODES
from legacy_assistant.responder.modes import known_condition
from legacy_assistant.serving.dialogue import DEFAULT_ESCAPE_CONFIDENCE, FOLLOW_UP_MODES, STARTED_OVER

if TYPE_CHECKING:
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import Reply

QUIT_WORDS = {"quit", "exit", "/quit", "/exit"}
SPEAKER = "bot> "
# A reply's later lines, under its first: a line of the chat that starts with neither "bot> " nor
# this read as the user's (an intents file's response may hold a line break).
CONTINUED = " " * len(SPEAKER)
# Why a fallback answered, after the classifier's best guess (legacy_assistant.serving.dialogue.REASONS).
FALLBACK_WHY = {
    "not_understood": "no word of the message is known to the model",
    "out_of_scope": "out of scope",
    "needs_context": "its flow is not open now",
}
DEFAULT_RESPONDER_MODE = "sample_rerank"
NO_REPLY = "..."
NO_WORDS = "(nothing to answer: that message holds no word the responder can read)"
LEAVE = "Type 'quit' or press Ctrl-D to leave."


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="talk to a model or a responder in the terminal",
        # how a script drives it: nothing said this but the banner, which a pipe never shows
        description="Talk to a model or a responder in the terminal. At a terminal: a 'you> ' prompt (on standard "
        "error when standard output is redirected: the file or pipe gets the replies alone); Ctrl-D or "
        "a line of quit or exit (any case; also /quit, /exit) ends the chat, and the arrow keys edit the line and "
        "recall earlier messages. Piped in: one message a line, no "
        "prompt, and the same words end it, so a line that is only 'exit' is read as the end. Blank lines are "
        "skipped; each message gets a 'bot> ' reply on standard output, logs go to standard error. A conversation "
        "idle for an hour starts over, and a note on standard error says so.",
    )
    parser.add_argument(
        "--model",
        type=path_text,  # an empty one ("$MODEL" unset) chatted with the shipped model without a word
        help="intent model directory (default: the shipped one, unless --responder is given alone)",
    )
    parser.add_argument("--sender", type=sender_id, default="terminal", help="conversation id")
    parser.add_argument(
        "--show-intent",
        action="store_true",
        help="print intent and confidence with each reply (for a fallback or generated reply: the best intent, "
        "its confidence and why it was not taken)",
    )
    parser.add_argument("--threshold", type=fraction_number, help="override the model's fallback threshold")
    parser.add_argument(
        "--follow-ups",
        choices=FOLLOW_UP_MODES,
        help="yield (default: a clear other request leaves a follow-up) or classic (the follow-up takes whatever "
        "comes next), as serve's setting",
    )
    parser.add_argument(
        "--escape-confidence",
        type=fraction_number,
        metavar="X",
        help="confidence another intent needs to leave a follow-up that yields (default "
        f"{DEFAULT_ESCAPE_CONFIDENCE:g}), as serve's setting",
    )
    responder = parser.add_argument_group("generative responder")
    responder.add_argument(
        "--responder",
        metavar="DIR",
        nargs="?",
        const=str(DEFAULT_RESPONDER_DIR),
        type=path_text,
        help="responder directory (alone: the shipped one, exported/responder in a checkout, "
        f"{INSTALLED_EXPORTS}/responder when installed); with --model it answers the fallback turns",
    )
    responder.add_argument(
        "--emotion",
        help="the responder's condition, e.g. joy (default: neutral, or for a model trained without it the "
        "condition it had most training replies under)",
    )
    responder.add_argument(
        "--mode",
        choices=RESPONDER_MODES,
        help=f"how replies are decoded (default {DEFAULT_RESPONDER_MODE})",
    )
    responder.add_argument(
        "--seed",
        type=seed_number(),
        help="seed of the sampling modes: the same seed, the same conversation",
    )
    responder.add_argument(
        "--condition-strength",
        type=condition_strength_number,
        default=0.0,
        metavar="S",
        help="condition guidance, 0 (off, the default) to 10: 2 makes the emotion heard far more often",
    )
    add_runtime_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # the models load for seconds (TensorFlow's import): a Ctrl-C then ends the line too
    with _interrupted_on_a_line_of_its_own(_interactive()):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """The intent model alone, or with the responder (:func:`run_with_responder`)."""
    if args.responder is not None:
        if args.mode is None:
            args.mode = DEFAULT_RESPONDER_MODE
        return run_with_responder(args)
    for flag, value in (
        ("--emotion", args.emotion),
        ("--mode", args.mode),
        ("--seed", args.seed),
        ("--condition-strength", args.condition_strength or None),
    ):
        if value is not None:
            raise AssistantError(f"{flag} is a responder option: give --responder DIR too")
    apply_runtime(args)
    from legacy_assistant.serving.assistant import Assistant

    assistant = Assistant.load(
        args.model or DEFAULT_MODEL_DIR,
        threshold=args.threshold,
        follow_ups=_follow_ups(args),
        escape_confidence=_escape_confidence(args),
    )
    interactive = _interactive()
    if interactive:
        say(f"Chatting with {assistant.predictor.name}. {LEAVE}", file=_for_the_person(), flush=True)
    try:
        answered = False
        for message in _messages(interactive):
            _note_if_started_over(assistant, args.sender, answered)
            reply = assistant.chat(args.sender, message)
            answered = True
            _say(reply.text, _intent_detail(assistant, reply) if args.show_intent else "")
    finally:
        assistant.close()
    return 0


def _follow_ups(args: argparse.Namespace) -> str:
    """The follow-up mode: ``--follow-ups``, else yield (serve's default)."""
    return args.follow_ups or "yield"


def _escape_confidence(args: argparse.Namespace) -> float:
    """``--escape-confidence``, else serve's default."""
    return DEFAULT_ESCAPE_CONFIDENCE if args.escape_confidence is None else args.escape_confidence


def run_with_responder(args: argparse.Namespace) -> int:
    """The responder alone, or behind an intent model's fallback."""
    for flag, value in (
        ("--threshold", args.threshold),
        ("--follow-ups", args.follow_ups),
        ("--escape-confidence", args.escape_confidence),
    ):
        if args.model is None and value is not None:
            raise AssistantError(f"{flag} is an intent model option: give --model too")
    apply_runtime(args)
    if args.model is not None:
        return _run_behind_model(args)
    from legacy_assistant.errors import RequestError
    from legacy_assistant.responder.responder import DecodingOptions, Responder
    from legacy_assistant.serving.assistant import SERVING_REPETITION_PENALTY

    options = DecodingOptions(repetition_penalty=SERVING_REPETITION_PENALTY, condition_strength=args.condition_strength)
    responder = Responder.load(args.responder, options=options)
    try:
        if args.emotion is not None and known_condition(args.emotion, responder.conditions) is None:
            raise AssistantError(
                f"unknown emotion {args.emotion!r}; {responder.info.name} knows {', '.join(responder.conditions)}"
            )
        emotion = known_condition(args.emotion, responder.conditions) or responder.default_condition
        interactive = _interactive()
        if interactive:
            say(
                f"Chatting with {responder.info.name} ({emotion}, {args.mode}). {LEAVE}",
                file=_for_the_person(),
                flush=True,
            )
        # The turns the responder sees: the latest ones that hold a word, both sides, oldest first.
        context: deque[str] = deque(maxlen=responder.spec.max_context_turns)
        for number, message in enumerate(_messages(interactive)):
            try:
                responder.check_request([message])
                readable = True
            except RequestError:  # no token in it (a zero-width space)
                readable = False
            if not readable and not context:  # nothing to answer, but not worth ending the chat
                _say(NO_WORDS)
                continue
            # One with no token is answered but not kept: in the window it would take the place of
            # a turn with words, which the responder skips to (as it does in the server's context).
            if readable:
                context.append(message)
            turns = list(context) if readable else [*context, message]
            text = responder.respond(turns, emotion, mode=args.mode, seed=_seed(args, number))
            if text:
                context.append(text)
            _say(text or NO_REPLY, f"  [generated {emotion}]" if args.show_intent else "")
    finally:
        responder.close()
    return 0


def _run_behind_model(args: argparse.Namespace) -> int:
    """The intent model answers; the responder speaks instead of its fallback, as the server's
    chat route does (the same :class:`~legacy_assistant.serving.assistant.Assistant`)."""
    from legacy_assistant.cli.model_kind import mixed_runtimes
    from legacy_assistant.serving.assistant import Assistant

    # one process runs one runtime: no --runtime serves both
    problem = mixed_runtimes(
        args.model, args.responder, command="chat", both_copies="chat with both copies", alone="chat with one of them"
    )
    if problem:
        raise AssistantError(problem)
    assistant = Assistant.load(
        args.model,
        threshold=args.threshold,
        follow_ups=_follow_ups(args),
        escape_confidence=_escape_confidence(args),
        responder_dir=args.responder,
        generation_mode=args.mode,
        condition_strength=args.condition_strength,
    )
    responder = assistant.responder
    assert responder is not None  # loaded from args.responder
    try:
        if args.emotion is not None and known_condition(args.emotion, assistant.emotions) is None:
            raise AssistantError(
                f"unknown emotion {args.emotion!r}; {args.responder} knows {', '.join(assistant.emotions)}"
            )
        emotion = known_condition(args.emotion, assistant.emotions) or responder.default_condition
        interactive = _interactive()
        if interactive:
            who = f"{responder.info.name} behind {assistant.predictor.name}"
            say(f"Chatting with {who} ({emotion}, {args.mode}). {LEAVE}", file=_for_the_person(), flush=True)
        for number, message in enumerate(_messages(interactive)):
            _note_if_started_over(assistant, args.sender, number > 0)
            reply = assistant.chat(args.sender, message, emotion, seed=_seed(args, number))
            _say(reply.text, _intent_detail(assistant, reply, emotion) if args.show_intent else "")
    finally:
        assistant.close()
    return 0


def _note_if_started_over(assistant: Assistant, sender: str, answered: bool) -> None:
    """Where this chat has answered a turn and the store no longer holds the conversation (idle
    past its expiry, an hour): the note the chat page shows there, on standard error (standard
    output keeps one 'bot> ' reply a message). The dialogue starts over, an open flow with it."""
    if answered and not assistant.history(sender):
        print(STARTED_OVER, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _interrupted_on_a_line_of_its_own(interactive: bool) -> Iterator[None]:
    """At a terminal, a stop ends the chat's line before "interrupted" or "terminated" (standard
    error) is said, where the cursor is not at a line's start: at the prompt it was after
    "you> " (Ctrl-C or SIGTERM), and as a model loaded or a reply was worked out after the "^C"
    the terminal showed for Ctrl-C, where "^Cinterrupted" was printed. SIGTERM there (``kill``,
    a supervisor) shows nothing: the cursor is at a line's start, and a line end there left a
    blank line before "terminated"."""
    try:
        yield
    except KeyboardInterrupt as stop:
        # the SIGTERM handler's stop carries its signal (legacy_assistant.cli); Ctrl-C's carries none
        keyed = getattr(stop, "signum", signal.SIGINT) == signal.SIGINT
        if interactive and (keyed or getattr(stop, "at_prompt", False)):
            print(file=_for_the_person())
        raise


def _say(text: str, detail: str = "") -> None:
    """Print a reply as the bot's, ``detail`` after it. A reply of several lines (an intents
    file's response may hold a line break) has its later lines indented under the first: on a
    line of their own without "bot> " they read as the user's."""
    first, *rest = text.rstrip().splitlines() or [""]
    lines = [SPEAKER + first, *(CONTINUED + line if line.strip() else "" for line in rest)]
    lines[-1] += detail
    say("\n".join(lines), flush=True)


def _intent_detail(assistant: Assistant, reply: Reply, emotion: str | None = None) -> str:
    """What ``--show-intent`` prints after a reply: ``[intent confidence]``; for the fallback,
    canned (``fallback``) or generated (``generated <emotion>``), the classifier's best intent,
    its confidence and why it was not taken, e.g. ``[fallback; best greeting 0.21, below the
    threshold 0.25]``: the guess of the ranking the reply was chosen by, not of the message
    classified again."""
    if reply.reason in ("intent", "follow_up"):
        return f"  [{reply.intent} {reply.confidence:.2f}]"
    answered = f"generated {emotion}" if reply.generated else reply.intent
    if reply.reason == "low_confidence":
        why = f"below the threshold {assistant.policy.threshold:g}"
    else:
        why = FALLBACK_WHY.get(reply.reason, reply.reason)
    best = f"best {reply.best} " if reply.best is not None else ""  # None: a model of no intent
    return f"  [{answered}; {best}{reply.confidence:.2f}, {why}]"


def _seed(args: argparse.Namespace, number: int) -> int | None:
    """The seed of the ``number``-th reply: ``--seed`` moves on by one a turn, wrapping around
    within the 64-bit seeds the decoder takes."""
    return None if args.seed is None else (args.seed + number + 2**63) % 2**64 - 2**63


def _interactive() -> bool:
    """Whether a person types the messages (no standard input at all, as with ``<&-``, is none).
    Not without standard output (``>&-`` in a terminal): input() cannot prompt there and fails
    (RuntimeError: lost sys.stdout), so the messages are read as from a pipe."""
    return sys.stdin is not None and sys.stdin.isatty() and sys.stdout is not None


def _enable_line_editing() -> None:
    """Arrow keys, Home/End and this chat's earlier messages (up arrow) at the prompt: input()
    edits its line with GNU readline (or libedit) once that module is imported; without it the
    keys' escape codes became part of the message. Windows' Python has no readline module."""
    try:
        import readline  # noqa: F401
    except ImportError:
        pass


def _for_the_person() -> TextIO:
    """Where the banner, the prompt and the line end after Ctrl-D or Ctrl-C go: standard output,
    unless it is not a terminal while standard input is (``chat > replies.txt``, ``chat | tee``):
    then standard error, as Python's own prompt, so that the person typing sees them and the
    file or pipe gets the replies alone."""
    stdout = sys.stdout
    return stdout if stdout is None or _is_a_terminal(stdout) or sys.stderr is None else sys.stderr


def _is_a_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


def _typed_line() -> str:
    """A line typed at the ``you> `` prompt. input() edits it with readline only where standard
    output is a terminal too, and writes its prompt to standard output: elsewhere the prompt is
    written here to standard error (:func:`_for_the_person`) and input() reads the line."""
    shown_on = _for_the_person()
    if shown_on is sys.stdout:
        return input("you> ")
    shown_on.write("you> ")
    shown_on.flush()
    return input()


def _refuse_wide_encoding(stream: TextIO) -> None:
    """Refuse standard input that starts as UTF-16 or UTF-32 text does (a file saved as Notepad's
    "Unicode"), as the other commands refuse such an input file: read as UTF-8, each line was a
    message of replacement characters and NULs, answered as nonsense, and the NUL after each line
    end made one more message than the file holds. Its first bytes are looked at without reading
    them; a stream with no buffer to peek into is read as it is."""
    from legacy_assistant.common.input_files import wide_encoding_problem

    peek = getattr(getattr(stream, "buffer", None), "peek", None)
    if peek is None:
        return
    try:
        start = peek(4)[:4]  # blocks until the first bytes come, as the first line's read would
    except (OSError, ValueError):  # closed, or no buffer behind it: the read says what is wrong
        return
    problem = wide_encoding_problem(start)
    if problem is not None:
        raise AssistantError(f"standard input: {problem}")


def _messages(interactive: bool) -> Iterator[str]:
    """The user's messages, stripped, until end of input or a quit word. Bytes that are not
    UTF-8 (a file in another encoding piped in) become U+FFFD instead of ending the chat (UTF-16
    or UTF-32 text piped in is refused: :func:`_refuse_wide_encoding`), and a UTF-8 byte order
    mark before the first line is dropped. A closed standard input is an empty one.
    Piped in, a line ends at ``\n`` (a ``\r`` before it goes with the spaces stripped); a lone
    ``\r`` is part of its line, as Python reads standard input: no line end of its own since Mac
    OS 9, it is more often a stray one in a message. At a terminal Enter ends the line, whatever
    the terminal sends for it."""
    if sys.stdin is None:
        return
    if interactive:
        _enable_line_editing()
    else:
        _refuse_wide_encoding(sys.stdin)
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")
    first = True
    while True:
        try:
            # input() needs standard output even without a prompt (a closed one: RuntimeError).
            # Ctrl-Z and fg there draw the line again; only there: as a reply is worked out (in
            # TensorFlow's C++ code, where no Python signal handler runs) Ctrl-Z stops at once.
            if interactive:
                with stop_and_resume_kept():
                    line = _typed_line()
            else:
                line = sys.stdin.readline()
        except EOFError:
            if interactive:  # Ctrl-D left the cursor after the prompt, where the shell's would follow
                print(file=_for_the_person())
            return
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the cursor was after "you> "
            stop.at_prompt = True  # type: ignore[attr-defined]
            raise
        if not interactive and not line:  # end of input
            return
        if first:  # a file saved by an editor that marks UTF-8 (Notepad): "quit" there was a message
            line, first = line.removeprefix("\ufeff"), False
        message = line.strip()
        if not message:
            continue
        if message.lower() in QUIT_WORDS:
            return
        yield message
