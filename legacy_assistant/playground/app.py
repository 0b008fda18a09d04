"""The playground's page (gradio Blocks) and its server.

Two tabs: a chat with the assistant (the responder's emotion for generated replies, the intent
ranking of the last message, whether the reply was generated and why), and one context answered
under every emotion side by side.

Nothing leaves the machine: gradio's analytics are off (and its Hugging Face Hub client offline),
there is no share link, the theme uses the browser's own fonts, and gradio serves its frontend
from the installed package.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from legacy_assistant.common.optional import require
from legacy_assistant.common.origins import bracketed
from legacy_assistant.common.proxies import bypass_proxy_for
from legacy_assistant.errors import AssistantError, ConfigError
from legacy_assistant.playground.handlers import (
    DEFAULT_MAX_TEXT_LENGTH,
    Message,
    Playground,
    new_sender,
    shown_transcript,
)
from legacy_assistant.responder.modes import MAX_CONDITION_STRENGTH, MODES

if TYPE_CHECKING:
    from gradio import Blocks

    from legacy_assistant.serving.assistant import Assistant

log = logging.getLogger(__name__)

TITLE = "legacy-assistant playground"
# The browser's fonts: gradio's default theme would otherwise ask for its web fonts.
SYSTEM_FONTS = ("Segoe UI", "Roboto", "Helvetica Neue", "Helvetica", "Arial", "DejaVu Sans", "sans-serif")
SYSTEM_MONO_FONTS = ("SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "monospace")
RANKING_SHOWN = 5
# The conversation's copy button copies the messages as the page shows them: gradio's own copy
# buttons copy the value, which is HTML-escaped for showing ("fish &amp; chips"). A page that is
# no secure context (plain HTTP to another machine) has no navigator.clipboard: there, as
# gradio's buttons do, the text is selected in a hidden box and copied by the document.
COPY_CONVERSATION_JS = """() => {
  const lines = [];
  for (const message of document.querySelectorAll(
    "#conversation [data-testid='user'], #conversation [data-testid='bot']"
  )) {
    const role = message.getAttribute("data-testid") === "user" ? "user" : "assistant";
    lines.push(role + ": " + message.innerText.trim());
  }
  const text = lines.join("\\n\\n");
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text);
    return;
  }
  const focused = document.activeElement;
  const hidden = document.createElement("textarea");
  hidden.value = text;
  hidden.style.position = "fixed";
  hidden.style.left = "-9999px";
  document.body.appendChild(hidden);
  hidden.focus();
  hidden.select();
  try {
    document.execCommand("copy");
  } finally {
    hidden.remove();
    if (focused) focused.focus(); // the keyboard stays on the button
  }
}"""

# After a reply: the message box emptied only while it still holds the message answered (as
# sent), so that a next message typed while the reply was on its way stays. Its arguments: the
# box's value now, then the message answered.
EMPTY_IF_ANSWERED_JS = """(box, answered) => (box === answered ? "" : box)"""

# Focus to the message box (gradio's textarea in the element the page names "message").
FOCUS_MESSAGE_JS = """() => {
  const box = document.querySelector("#message textarea");
  if (box) box.focus();
}"""


def load_gradio() -> ModuleType:
    """Import gradio with everything that would reach the network turned off, or raise
    :class:`~legacy_assistant.common.optional.MissingPackageError` naming the extra."""
    # Read when gradio and huggingface_hub are imported: set before.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    return require("gradio", "playground", "the playground")


def build_playground(assistant: Assistant, max_text_length: int = DEFAULT_MAX_TEXT_LENGTH) -> Blocks:
    """The page for ``assistant``. API names (gradio_client): ``/chat`` (message, emotion) and,
    with a responder, ``/all_emotions`` (context, mode, seed, strength)."""
    gr = load_gradio()
    playground = Playground(assistant, max_text_length)
    responder = assistant.responder
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        # the names are shown as text: a directory named like Markdown or HTML (an image) stays text
        models = f"intent model <strong>{html.escape(assistant.predictor.name)}</strong>"
        if responder is not None:
            models += f", responder <strong>{html.escape(responder.info.name)}</strong>"
        else:
            models += ", no responder"
        gr.HTML(f"<h1>{html.escape(TITLE)}</h1><p>{models}</p>")
        with gr.Tab("Chat"):
            _chat_tab(gr, playground)
        with gr.Tab("Every emotion"):
            _emotions_tab(gr, playground)
    return blocks


def launch_playground(blocks: Blocks, host: str, port: int, root_path: str | None = None) -> str:
    """Serve ``blocks`` on ``host:port`` in background threads and return its URL; the caller
    blocks (``blocks.block_thread()``) or closes it (``blocks.close()``). ``root_path``: the
    path a reverse proxy serves the page under (``None``: gradio's ``GRADIO_ROOT_PATH``, else
    none), where the page then asks for its files and calls. Raises :class:`ConfigError` when
    the address cannot be served."""
    gr = load_gradio()
    root_path = served_root_path(os.environ.get("GRADIO_ROOT_PATH", "") if root_path is None else root_path)
    theme = gr.themes.Default(font=list(SYSTEM_FONTS), font_mono=list(SYSTEM_MONO_FONTS))
    bypass_proxy_for(host)
    try:
        _, url, _ = blocks.launch(
            # gradio builds its own URL from it: unbracketed, http://::1:7860/, on which it failed
            server_name=bracketed(host),
            server_port=port,
            share=False,
            inbrowser=False,
            prevent_thread_lock=True,
            quiet=True,
            show_error=False,  # an unexpected exception shows as "Error", its details stay in the log
            ssr_mode=False,  # no Node.js server beside it
            mcp_server=False,
            footer_links=["api", "settings"],
            theme=theme,
            root_path=root_path,
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot serve the playground on {host}:{port} (port in use, or not an address of this machine; "
            f"choose another with --host/--port): {exc}"
        ) from None
    return str(url)


def served_root_path(root_path: str) -> str:
    """``root_path`` as the page is served under it: a path without its trailing slashes (``/``
    alone: none). The page calls ``<root>/gradio_api/...`` either way, but under ``/playground/``
    the server answered those calls only when a reverse proxy had taken the prefix off: on its
    own port the page loaded and its messages were never answered. A full URL is kept as given."""
    if root_path.startswith(("http://", "https://")):
        return root_path
    return root_path.rstrip("/")


def serve_until_interrupted(blocks: Blocks, poll_seconds: float = 0.1) -> None:
    """Wait until Ctrl-C (or until the page is closed elsewhere), then close the page.

    Not ``blocks.block_thread()``: on Ctrl-C that stops the web server while the page still
    counts as running, so every open client's heartbeat stream keeps the server's graceful
    shutdown waiting until its join gives up (5 s). ``blocks.close()`` first marks the page
    stopped, which ends those streams, and then stops the server.
    """
    try:
        while blocks.is_running:
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        blocks.close(verbose=False)


def _chat_tab(gr: Any, playground: Playground) -> None:
    emotions = playground.emotions
    sender_state = gr.State(None)
    transcript_state = gr.State([])
    with gr.Row():
        with gr.Column(scale=3):
            # plain text: Markdown or HTML in a message or reply (an image link) is shown as typed
            # no "share" button: it posts to Hugging Face Spaces (here it only fails), and has no name;
            # no gradio copy buttons: they copy the escaped value, see COPY_CONVERSATION_JS
            copy = gr.Button("Copy conversation", size="sm", render=False)
            chatbot = gr.Chatbot(
                label="conversation", height=420, elem_id="conversation", render_markdown=False, buttons=[copy]
            )
            copy.click(None, js=COPY_CONVERSATION_JS, api_name=False)
            message_box = gr.Textbox(
                label="message", placeholder="Type a message and press Enter", max_lines=4, elem_id="message"
            )
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                restart = gr.Button("New conversation")
        with gr.Column(scale=2):
            emotion_menu = gr.Dropdown(
                choices=list(emotions),
                value=playground.default_emotion,
                label="emotion of generated replies",
                info="the responder speaks when no intent answers",
                visible=bool(emotions),
                interactive=bool(emotions),
            )
            ranking = gr.Label(label="intent ranking of the last message", num_top_classes=RANKING_SHOWN)
            generated = gr.Checkbox(label="generated by the responder", value=False, interactive=False)
            why = gr.Textbox(label="why this reply", interactive=False)
            conversation = gr.Textbox(
                label="conversation id", interactive=False, max_lines=1, elem_id="conversation-id"
            )

    def chat(message: str, emotion: str | None, sender: str | None, transcript: list[Message]) -> tuple[Any, ...]:
        result = playground.chat(message, emotion, sender, transcript)
        return (
            result.transcript,
            result.ranking,
            result.generated,
            result.explanation,
            result.sender,
            "",  # the message box, emptied for the next one
            result.sender,
            result.transcript,
        )

    def chat_shown(message: str, *args: Any) -> tuple[Any, ...]:
        # the page's box is not emptied here (see EMPTY_IF_ANSWERED_JS): the message answered
        # goes to the hidden box the page compares it with instead
        transcript, ranking, is_generated, explanation, sender, _, *states = chat(message, *args)
        return (shown_transcript(transcript), ranking, is_generated, explanation, sender, message, *states)

    def restart_conversation(sender: str | None) -> tuple[Any, ...]:
        playground.forget(sender)  # no page session can reach it any more
        fresh = new_sender()
        return [], None, False, "", fresh, "", fresh, []

    details = [ranking, generated, why, conversation, message_box, sender_state, transcript_state]
    outputs = [chatbot, *details]
    # the message a turn answered, as sent: the box is emptied after the reply only if it still holds it
    answered_box = gr.Textbox(visible=False)
    turn_outputs = [chatbot, ranking, generated, why, conversation, answered_box, sender_state, transcript_state]
    inputs = [message_box, emotion_menu, sender_state, transcript_state]
    # The chat renders its messages' text as HTML: the page gets it escaped, so that markup is shown
    # as typed. An API client gets the text as written, from an endpoint of its own (the transcript
    # as JSON) that the page never calls: its button is hidden.
    api_transcript = gr.JSON(label="transcript", visible=False)
    api_chat = gr.Button(visible=False)
    # One queue for the turns and the new conversations: a new conversation asked for while a
    # turn is answered waits for it. Side by side, it forgot the conversation before the turn was
    # stored (which then stored it afresh, where no page could reach it), and the turn's answer
    # put the sender it left back in the page.
    queue = "conversation"
    turn = gr.on(
        triggers=[message_box.submit, send.click],
        fn=_shown(gr, chat_shown),
        inputs=inputs,
        outputs=turn_outputs,
        api_visibility="private",
        # progress and a refusal's error mark show on "why this reply" only: on every output they
        # would cover the transcript and the message box until the next good message
        show_progress_on=[why],
        concurrency_id=queue,
        # the values as sent: the handler checks them (an emotion not offered is its error, not
        # gradio's choice check, which logs a traceback)
        preprocess=False,
    )
    # the box emptied as the reply comes (not by the reply itself, which had the next message,
    # typed while it was on its way, wiped); a refused message stays in the box
    turn.success(
        None,
        inputs=[message_box, answered_box],
        outputs=[message_box],
        js=EMPTY_IF_ANSWERED_JS,
        api_visibility="private",
        queue=False,
    )
    api_chat.click(
        _shown(gr, chat),
        inputs=inputs,
        outputs=[api_transcript, *details],
        api_name="chat",
        api_description=(
            "One turn of this session's conversation: the message and the emotion of a generated reply (None: the "
            "responder's default). Returns the transcript (role and content of each message, as written), the "
            "intent ranking, whether the reply was generated, why this reply, the conversation id and the emptied "
            "message box."
        ),
        concurrency_id=queue,
        preprocess=False,
    )
    # Send pressed from the keyboard kept the focus on the button: the next message needed a
    # Shift+Tab back first. The box takes the next message while the reply is on its way.
    send.click(None, js=FOCUS_MESSAGE_JS, api_name=False)
    restart.click(
        restart_conversation, inputs=[sender_state], outputs=outputs, api_name="new_conversation", concurrency_id=queue
    )
    # the chat's own clear button starts a new conversation, as the button does: clearing only
    # the shown messages would bring them back with the next reply, and the context would stay
    chatbot.clear(restart_conversation, inputs=[sender_state], outputs=outputs, api_name=False, concurrency_id=queue)


def _emotions_tab(gr: Any, playground: Playground) -> None:
    emotions = playground.emotions
    if not emotions:
        gr.Markdown(
            "No responder is loaded: start the playground without `--no-responder` (the shipped responder) "
            "or with `--responder DIR` to compare emotions."
        )
        return
    gr.Markdown("One context, the responder's reply under each emotion.")
    with gr.Row():
        context = gr.Textbox(label="context: one turn per line, oldest first", lines=4, scale=3)
        with gr.Column(scale=1):
            # greedy first: the same context gives the same replies, so only the emotion differs
            mode = gr.Radio(choices=list(MODES), value="greedy", label="decoding mode")
            # a text box, not a number box: an empty number box is sent as 0, which would fix the draw
            seed = gr.Textbox(
                label="seed",
                value="",
                max_lines=1,
                placeholder="empty: a fresh draw each time",
                info="sampling modes: the same seed, the same replies",
            )
            strength = gr.Slider(
                minimum=0,
                maximum=MAX_CONDITION_STRENGTH,
                step=0.01,  # fine enough to hold the server's strength as it is (1.25, say), not the nearest 0.5
                value=playground.condition_strength,
                label="condition strength",
                info="condition guidance: how strongly the emotion steers the replies (0: off)",
                visible=playground.guided,
            )
    answer = gr.Button("Reply under every emotion", variant="primary")
    with gr.Row():
        replies = [gr.Textbox(label=name, interactive=False, lines=3) for name in emotions]
    answer.click(
        _shown(gr, playground.all_emotions),
        inputs=[context, mode, seed, strength],
        outputs=replies,
        api_name="all_emotions",
        preprocess=False,  # the handler checks the values as sent: a mode not offered is its error
        # the API page shows this, not the handler's docstring with its Sphinx markup
        api_description=(
            "The responder's reply to one context (one turn per line, oldest first) under each emotion, in the "
            "page's order. seed: a whole number, or empty for a fresh draw; strength: condition guidance, 0 to 10."
        ),
    )


def _shown(gr: Any, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` with the project's errors shown on the page as gradio errors (their message,
    no traceback); anything else is gradio's generic error, details in the log."""

    @functools.wraps(handler)  # gradio names the API's parameters after the handler's
    def shown(*args: Any) -> Any:
        try:
            return handler(*args)
        except AssistantError as exc:
            log.info("playground request refused: %s", exc)
            # the page shows it as HTML; quotes need no escaping there, and a client reads them as sent
            raise gr.Error(html.escape(str(exc), quote=False), print_exception=False) from None

    return shown
