"""The playground (``legacy-assistant playground``): a real server in a subprocess with the shipped
models, driven with gradio_client and once in headless Chromium; its answers are compared with
an :class:`Assistant` loaded here from the same models.

Needs gradio and gradio_client (the ``playground`` extra; skipped locally without them, a failure
under ``CI=true``), and for the browser test Debian's chromium + chromium-driver. Nothing is
downloaded, and the test checks that neither the server nor the page reaches past 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from legacy_assistant.cli import main
from tests.helpers import DEFAULT_MODEL, ROOT, needs

DEFAULT_RESPONDER = ROOT / "exported" / "responder"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "::")
# Every socket connection and name lookup of the server process to anywhere else is written to
# its stderr (Python's audit hooks see them all, whichever library makes them).
AUDITED_CLI = f"""
import sys

LOCAL = {LOCAL_HOSTS!r}


def hook(event, args):
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] not in LOCAL:
        sys.__stderr__.write(f"OUTBOUND connect {{args[1]!r}}\\n")
    elif event == "socket.getaddrinfo" and args[0] is not None:
        host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        if host not in LOCAL:
            sys.__stderr__.write(f"OUTBOUND lookup {{host!r}}\\n")


sys.addaudithook(hook)
from legacy_assistant.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _gradio_client():
    try:
        import gradio_client
    except ModuleNotFoundError:
        needs("gradio and gradio_client", "pip install 'legacy-assistant[playground]' (or make venv)")
    return gradio_client


def _sigint_as_on_a_terminal() -> None:
    """A child inherits an ignored SIGINT, and a test run started in the background (``pytest &``
    from a script) ignores it; Python then leaves it ignored and the Ctrl-C below would be lost.
    The command stands for one run from a terminal, where SIGINT raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def playground(tmp_path_factory, free_port):
    """``(url, log path)`` of ``legacy-assistant playground --mode greedy`` with the shipped models."""
    _gradio_client()
    port = free_port()
    workdir = tmp_path_factory.mktemp("playground")
    log_path = workdir / "server.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRADIO_TEMP_DIR=str(workdir / "gradio"), PYTHONFAULTHANDLER="1")
    env.pop("LEGACY_ASSISTANT_RUNTIME", None)
    command = [
        sys.executable,
        "-c",
        AUDITED_CLI,
        "playground",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--mode",
        "greedy",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_sigint_as_on_a_terminal,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_served(url, process, log_path)
        yield url, log_path
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: the command closes the page and the models
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # PYTHONFAULTHANDLER: SIGABRT writes every thread's stack to the log, shown below
            process.send_signal(signal.SIGABRT)
            time.sleep(3)
            process.kill()
            process.wait()
            code = None
    assert code == 0, f"the playground did not stop cleanly on Ctrl-C ({code}):\n{log_path.read_text()[-3000:]}"


def _wait_until_served(url, process, log_path, timeout=180.0):
    """Until the page answers and the command has said where (``playground on URL``): it then
    waits for Ctrl-C. gradio answers a moment before its launch returns, and a Ctrl-C in that
    moment interrupts the start (130), as it should."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"playground exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and "playground on " in log_path.read_text(errors="replace"):
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"playground not serving after {timeout}s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def assistant():
    """The playground's models, loaded here as the command loads them (greedy generation)."""
    from legacy_assistant.serving.assistant import Assistant

    loaded = Assistant.load(DEFAULT_MODEL, responder_dir=DEFAULT_RESPONDER, generation_mode="greedy")
    yield loaded
    loaded.close()


@pytest.fixture
def client(playground):
    """A gradio client: a page session of its own."""
    url, _ = playground
    return _gradio_client().Client(url, verbose=False, download_files=False)


def _text(message):
    """A chat message's text, whichever of gradio's message shapes it comes in."""
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _fallback_message(assistant):
    """A message the intent model cannot place: the responder answers it."""
    message = "xqzv blorp flimflam"
    best = assistant.parse(message)["intent"]
    assert best["name"] == assistant.policy.oos_label or best["confidence"] < assistant.policy.threshold
    return message


def test_a_chat_turn_with_an_emotion_is_answered_by_the_responder(client, assistant):
    message = _fallback_message(assistant)
    expected = assistant.chat("expected", message, "joy")
    assert expected.generated and expected.text

    transcript, ranking, generated, why, sender, box = client.predict(message, "joy", api_name="/chat")

    assert [m["role"] for m in transcript] == ["user", "assistant"]
    assert _text(transcript[0]) == message
    assert _text(transcript[1]) == expected.text  # greedy: the same conversation, the same reply
    assert generated is True
    assert why.split(":")[0] == expected.reason and "generated by the responder (joy)" in why
    assert sender.startswith("playground-") and box == ""

    # the label holds the classifier's ranking of this message, best first
    parsed = assistant.parse(message)["intent_ranking"]
    shown = ranking["confidences"]
    assert ranking["label"] == parsed[0]["name"]
    assert [c["label"] for c in shown] == [p["name"] for p in parsed[: len(shown)]]
    assert [c["confidence"] for c in shown] == pytest.approx([p["confidence"] for p in parsed[: len(shown)]], abs=1e-6)


def test_an_intent_reply_is_not_generated_and_says_its_intent(client, assistant):
    message = "what time do you open?"
    expected = assistant.chat("intent", message)
    assert expected.reason == "intent"

    _, ranking, generated, why, _, _ = client.predict(message, "anger", api_name="/chat")

    assert generated is False
    assert why.startswith("intent:") and expected.intent in why
    assert ranking["label"] == expected.intent


def test_each_page_session_has_its_own_conversation(playground):
    url, _ = playground
    gradio_client = _gradio_client()
    first = gradio_client.Client(url, verbose=False, download_files=False)
    second = gradio_client.Client(url, verbose=False, download_files=False)

    one = first.predict("hello", "neutral", api_name="/chat")
    other = second.predict("hello", "neutral", api_name="/chat")
    again = first.predict("I'd like to order a coffee", "neutral", api_name="/chat")

    assert one[4] != other[4]  # a random sender each
    assert again[4] == one[4]  # kept through the session
    assert len(again[0]) == 4 and len(other[0]) == 2
    assert [_text(m) for m in again[0]][::2] == ["hello", "I'd like to order a coffee"]

    # a new conversation: a fresh sender, an empty transcript, and the coffee order's context gone
    restarted = first.predict(api_name="/new_conversation")
    assert restarted[0] == [] and restarted[4] != one[4]
    fresh = first.predict("a large one", "neutral", api_name="/chat")
    assert fresh[4] == restarted[4] and len(fresh[0]) == 2
    assert "coffee_size_large" not in fresh[3]


def test_why_this_reply_names_the_emotion_as_the_menu_does(assistant):
    """An emotion sent as " JOY" is taken as joy (as the HTTP API takes it), but the page's
    explanation named it as sent: "generated by the responder ( JOY)"."""
    from legacy_assistant.playground.handlers import Playground

    playground = Playground(assistant)
    message = _fallback_message(assistant)
    for sent, named in ((" JOY", "joy"), ("Anger", "anger"), ("", assistant.responder.default_condition)):
        result = playground.chat(message, sent, None, None)
        assert result.generated
        assert f"generated by the responder ({named}) fallback reply" in result.explanation


def test_a_new_conversation_forgets_the_one_it_leaves(assistant):
    from legacy_assistant.playground.handlers import Playground

    playground = Playground(assistant)
    first = playground.chat("I'd like to order a coffee", "neutral", None, None)
    assert len(assistant.history(first.sender)) == 1
    assert playground.forget(first.sender) is True
    assert assistant.history(first.sender) == []
    assert playground.forget(first.sender) is False and playground.forget(None) is False


def test_a_turn_after_the_conversation_expired_says_the_transcript_above_is_forgotten(default_predictor):
    """The page kept showing a conversation the store had dropped as idle (an hour by default):
    the next turn was answered without it, while the page showed it as remembered."""
    from legacy_assistant.playground.handlers import STARTED_OVER, Playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    now = [1000.0]
    store = MemoryStore(ttl_seconds=3600, clock=lambda: now[0])
    playground = Playground(Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest,
                                                                                      seed=0), store))
    first = playground.chat("hello", None, None, None)
    now[0] += 60
    second = playground.chat("hello", None, first.sender, first.transcript)
    assert len(second.transcript) == 4  # remembered: nothing put between
    now[0] += 3601
    third = playground.chat("hello", None, second.sender, second.transcript)
    assert third.transcript[:4] == second.transcript
    assert third.transcript[4] == {"role": "assistant", "content": STARTED_OVER}
    assert [m["role"] for m in third.transcript[5:]] == ["user", "assistant"]
    assert len(playground.assistant.history(third.sender)) == 1  # the new conversation holds this turn only


def test_the_new_conversation_button_forgets_the_conversation_it_leaves(default_predictor, free_port):
    """In this process, where the page's store can be read: the button's request deletes the
    turns of the conversation it leaves, and only those."""
    gradio_client = _gradio_client()
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "127.0.0.1", free_port())
    try:
        leaving = gradio_client.Client(url, verbose=False, download_files=False)
        staying = gradio_client.Client(url, verbose=False, download_files=False)
        left = leaving.predict("I'd like to order a coffee", None, api_name="/chat")[4]
        kept = staying.predict("hello", None, api_name="/chat")[4]
        assert [turn.message for turn in assistant.history(left)] == ["I'd like to order a coffee"]
        fresh = leaving.predict(api_name="/new_conversation")[4]
        assert fresh not in (left, kept)
        assert assistant.history(left) == []
        assert [turn.message for turn in assistant.history(kept)] == ["hello"]
    finally:
        blocks.close(verbose=False)


def test_a_new_conversation_asked_for_while_a_reply_is_on_its_way_waits_for_it(default_predictor, free_port):
    """The button's request ran beside a chat turn still being answered: it forgot the
    conversation before that turn was stored, so the turn was stored after it (a conversation no
    page could reach), and the turn's answer then put the sender it left back in the page, whose
    next message went on in the conversation it had left."""
    import threading

    gradio_client = _gradio_client()
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    classify, classifying = assistant._classify, threading.Event()

    def slow(text):
        if text == "a slow one":
            classifying.set()
            time.sleep(1.0)
        return classify(text)

    assistant._classify = slow
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "127.0.0.1", free_port())
    try:
        page = gradio_client.Client(url, verbose=False, download_files=False)
        left = page.predict("I'd like to order a coffee", None, api_name="/chat")[4]
        pending = page.submit("a slow one", None, api_name="/chat")
        assert classifying.wait(10)
        fresh = page.predict(api_name="/new_conversation")[4]
        pending.result(timeout=30)
        assert assistant.history(left) == []  # the slow turn too
        after = page.predict("hello", None, api_name="/chat")
        assert after[4] == fresh and len(after[0]) == 2
        assert [turn.message for turn in assistant.history(fresh)] == ["hello"]
    finally:
        blocks.close(verbose=False)


def test_every_emotion_tab_matches_the_assistant_in_greedy_mode(client, assistant):
    emotions = assistant.emotions
    assert len(emotions) == 5
    # A context whose greedy replies differ between emotions, so that a mixed-up emotion shows.
    contexts = json.loads((ROOT / "data" / "responder_contexts.json").read_text(encoding="utf-8"))
    answers = {
        tuple(context): [assistant.respond(context, emotion, "greedy") for emotion in emotions] for context in contexts
    }
    context, expected = max(answers.items(), key=lambda item: (len(set(item[1])), len(item[0])))
    assert len(set(expected)) > 1, "every shipped context gets one reply under every emotion"

    text = "\n".join(context) + "\n\n"  # a trailing blank line is left out
    replies = client.predict(text, "greedy", None, 0, api_name="/all_emotions")

    assert list(replies) == expected


def test_the_emotions_tab_takes_a_condition_strength(client, assistant):
    emotions = assistant.emotions
    contexts = json.loads((ROOT / "data" / "responder_contexts.json").read_text(encoding="utf-8"))
    steered = {
        tuple(context): [assistant.respond(context, emotion, "greedy", None, 3.0) for emotion in emotions]
        for context in contexts
    }
    plain = {context: [assistant.respond(list(context), e, "greedy") for e in emotions] for context in steered}
    changed = [context for context in steered if steered[context] != plain[context]]
    assert changed, "guidance changed no reply of the shipped contexts"
    replies = client.predict("\n".join(changed[0]), "greedy", None, 3.0, api_name="/all_emotions")
    assert list(replies) == steered[changed[0]]


def test_whole_seeds_of_any_size_are_taken(client):
    from gradio_client.exceptions import AppError

    first = client.predict("hello there", "sample", 2**63 - 1, 0, api_name="/all_emotions")
    assert len(first) == 5 and list(first) == list(
        client.predict("hello there", "sample", 2**63 - 1, 0, api_name="/all_emotions")
    )
    with pytest.raises(AppError, match="64-bit"):
        client.predict("hello there", "sample", 2**63, 0, api_name="/all_emotions")
    # the page's seed box is text: typed digits are the seed, and an empty box a fresh draw
    assert list(client.predict("hello there", "sample", " 7 ", 0, api_name="/all_emotions")) == list(
        client.predict("hello there", "sample", 7, 0, api_name="/all_emotions")
    )
    with pytest.raises(AppError, match="the seed must be a whole number"):
        client.predict("hello there", "sample", "seven", 0, api_name="/all_emotions")


def test_an_empty_seed_box_is_a_fresh_draw_not_seed_0(assistant):
    """A number box sent 0 when empty, so every "random" draw of the page was seed 0's."""
    from legacy_assistant.playground import handlers
    from legacy_assistant.playground.app import build_playground

    assert handlers._seed("") is None and handlers._seed("  ") is None and handlers._seed(None) is None
    assert handlers._seed("12") == 12 and handlers._seed(12.0) == 12
    config = build_playground(assistant).config
    seed_boxes = [c for c in config["components"] if c["props"].get("label") == "seed"]
    assert [(box["type"], box["props"]["value"]) for box in seed_boxes] == [("textbox", "")]
    # the API page's description is plain text, not the handler's docstring markup
    [described] = [d["api_description"] for d in config["dependencies"] if d.get("api_name") == "all_emotions"]
    assert "empty for a fresh draw" in described and ":attr:" not in described and "``" not in described


def test_mistakes_show_as_errors_without_tracebacks(client, playground):
    from gradio_client.exceptions import AppError

    _, log_path = playground

    cases = [
        (("   ", "neutral"), "/chat", "message is empty"),
        (("x" * 1001, "neutral"), "/chat", "longer than 1000 characters"),
        # measured as given, spaces included, as the HTTP API measures it
        ((" " * 50 + "x" * 990, "neutral"), "/chat", "longer than 1000 characters"),
        (("\n \n", "greedy", None, 0), "/all_emotions", "context is empty"),
        ((None, "greedy", None, 0), "/all_emotions", "context is empty"),  # was an AttributeError
        (("Hi!\n" + "x" * 1001, "greedy", None, 0), "/all_emotions", "turn is longer than 1000 characters"),
        # a choice the page does not offer: gradio's own check of it logged a traceback each
        (("hello", "boredom"), "/chat", "unknown emotion 'boredom'; expected one of neutral, anger"),
        (("hello there", "bogus", None, 0), "/all_emotions", "unknown mode 'bogus'; expected one of greedy"),
        (("hello there", "greedy", None, 50), "/all_emotions", "condition_strength must be a number in [0, 10]"),
        (("hello there", "greedy", None, "lots"), "/all_emotions", "condition_strength must be a number in [0, 10]"),
        ((5, "neutral"), "/chat", "the message must be text, got int"),
        ((["a", "b"], "greedy", None, 0), "/all_emotions", "the context must be text, got list"),
    ]
    for args, api_name, message in cases:
        with pytest.raises(AppError) as raised:
            client.predict(*args, api_name=api_name)
        assert message in str(raised.value) and "Traceback" not in str(raised.value)
    assert "Traceback" not in log_path.read_text()  # a refused request is one log line
    # the session still works after its mistakes
    assert client.predict("hello", "neutral", api_name="/chat")[0]


def test_the_chat_api_gives_the_text_as_written_not_escaped(client):
    """The transcript came back escaped for the page's HTML ("fish &amp; chips")."""
    message = 'fish & chips <b>x</b> "q" &lt; <img src=x onerror=alert(1)>'

    transcript, _, _, _, _, _ = client.predict(message, "neutral", api_name="/chat")
    again, _, _, _, _, _ = client.predict("a\tb  &amp;", "neutral", api_name="/chat")

    assert [m["role"] for m in again] == ["user", "assistant", "user", "assistant"]
    assert again[0] == {"role": "user", "content": message} and again[:2] == transcript
    assert again[2] == {"role": "user", "content": "a\tb  &amp;"}
    assert "&amp;" not in again[1]["content"] and "&lt;" not in again[1]["content"]
    # the page's own call is the page's alone: a client has the one above
    assert [name for name in client.view_api(print_info=False, return_format="dict")["named_endpoints"]] == [
        "/chat", "/new_conversation", "/all_emotions"]


def test_the_page_shows_the_transcript_escaped():
    from legacy_assistant.playground.handlers import shown_transcript

    written = [{"role": "user", "content": "<img src=x onerror=alert(1)> & 'q'"}, {"role": "assistant", "content": "a"}]
    assert shown_transcript(written) == [
        {"role": "user", "content": "&lt;img src=x onerror=alert(1)&gt; &amp; 'q'"},
        {"role": "assistant", "content": "a"},
    ]
    assert written[0]["content"].startswith("<img")  # the transcript itself is left as written


class _RecordingAssistant:
    """Just what the every-emotion tab asks of an assistant: its emotions, and replies that
    record the turns they were given."""

    responder = None
    emotions = ("neutral", "joy")

    def __init__(self):
        self.contexts = []

    def respond(self, turns, emotion, mode, seed, strength):
        self.contexts.append(list(turns))
        return emotion


def test_every_emotion_tab_breaks_turns_at_line_ends_only():
    """A context was split at every break str.splitlines knows (a form feed, U+2028, U+0085...),
    where the responder's corpora and the page's text box end a line at \n, \r\n or \r only."""
    from legacy_assistant.playground.handlers import Playground

    assistant = _RecordingAssistant()
    playground = Playground(assistant)

    replies = playground.all_emotions(
        "one\x0btwo\x0cthree\u2028four\r\nfive\rsix\n\n \x1c\nseven\x85eight\u2029nine\x1e\x1dten\n", "greedy", ""
    )

    assert replies == ["neutral", "joy"]
    expected = ["one\x0btwo\x0cthree\u2028four", "five", "six", "seven\x85eight\u2029nine\x1e\x1dten"]
    assert assistant.contexts == [expected, expected]


def test_values_that_are_not_text_are_refused_by_the_handlers():
    from legacy_assistant.errors import RequestError
    from legacy_assistant.playground.handlers import Playground

    playground = Playground(_RecordingAssistant())
    with pytest.raises(RequestError, match="the context must be text, got dict"):
        playground.all_emotions({"turns": ["hi"]}, "greedy", "")
    with pytest.raises(RequestError, match="the message must be text, got list"):
        playground.chat(["hi"], None, None, None)


def test_a_seed_that_is_no_whole_number_is_refused_by_the_handler():
    """A seed sent as a list or an object (through the API) failed inside int() with a traceback
    in the log and gradio's bare "Error"; true and false were taken as the seeds 1 and 0, where
    the HTTP API refuses a boolean seed."""
    from legacy_assistant.errors import RequestError
    from legacy_assistant.playground.handlers import Playground

    playground = Playground(_RecordingAssistant())
    for seed, shown in (([1], "[1]"), ({"seed": 1}, "{'seed': 1}"), (True, "True"), (False, "False")):
        with pytest.raises(RequestError, match=re.escape(f"the seed must be a whole number, got {shown}")):
            playground.all_emotions("hello there", "sample", seed)
    # whole numbers, as a number or as typed in the box, are still taken
    for seed in (7, 7.0, " 7 ", "", None):
        assert playground.all_emotions("hello there", "sample", seed) == ["neutral", "joy"]


def test_the_server_reaches_nothing_past_localhost(client, playground):
    _, log_path = playground
    client.predict("hello", "joy", api_name="/chat")
    log = log_path.read_text()
    assert "OUTBOUND" not in log, log[-3000:]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        needs("chromium and chromium-driver", "apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _message_box(browser, url):
    """The playground's page at ``url`` in ``browser``, once loaded: its message box."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    return WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#message textarea"))[0]


def test_the_page_chats_in_chromium_and_loads_nothing_from_elsewhere(browser, playground):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = playground
    box = _message_box(browser, url)
    assert browser.title == "legacy-assistant playground"
    # Markdown and HTML are shown as typed: no emphasis, no image, nothing fetched for it
    typed = ("hello *there* <b>x</b> ![a](http://192.0.2.7/p.png) <img src=http://192.0.2.8/i.png> & &amp; "
             "<img src=x onerror=window.injected=1>")
    box.send_keys(typed)
    box.send_keys(Keys.ENTER)
    bot = WebDriverWait(browser, 60).until(
        lambda b: [e for e in b.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='bot']") if e.text.strip()]
    )
    assert bot[-1].text.strip()
    user = browser.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='user']")
    assert [e.text.strip() for e in user] == [typed]
    conversation = browser.find_element(By.CSS_SELECTOR, "#conversation").get_attribute("innerHTML")
    assert "<img" not in conversation and "<em>" not in conversation
    assert browser.execute_script("return window.injected === undefined")

    # a refused message shows its error without covering the transcript or the message box
    box.send_keys(Keys.ENTER)  # empty
    WebDriverWait(browser, 30).until(lambda b: "the message is empty" in b.page_source)
    assert [e.text.strip() for e in browser.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='user']")] \
        == [typed]
    box.click()  # nothing lies over it
    # every button of the conversation has a name a screen reader can say; none shares it elsewhere
    buttons = browser.find_elements(By.CSS_SELECTOR, "#conversation button")
    names = [(b.get_attribute("aria-label") or b.get_attribute("title") or b.text or "").strip() for b in buttons]
    assert buttons and all(names), names
    assert not [name for name in names if "share" in name.lower()], names
    # the chat's own clear button starts a new conversation: the cleared messages do not come back
    leaving = browser.find_element(By.CSS_SELECTOR, "#conversation-id textarea, #conversation-id input")
    left = leaving.get_attribute("value")
    clear = [b for b in browser.find_elements(By.CSS_SELECTOR, "#conversation button")
             if (b.get_attribute("aria-label") or "") == "Clear"]
    assert len(clear) == 1
    clear[0].click()
    WebDriverWait(browser, 60).until(lambda _: leaving.get_attribute("value") not in ("", left))  # the new one
    box.send_keys("hello")
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 60).until(
        lambda b: [e.text.strip() for e in b.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='user']")]
        == ["hello"]
    )

    requested = set()
    for entry in browser.get_log("performance"):
        event = json.loads(entry["message"])["message"]
        if event["method"] == "Network.requestWillBeSent":
            requested.add(event["params"]["request"]["url"])
        elif event["method"] == "Network.webSocketCreated":
            requested.add(event["params"]["url"])
    network = [u for u in requested if urllib.parse.urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert any(u.startswith(url) for u in network)
    assert all(urllib.parse.urlsplit(u).hostname == "127.0.0.1" for u in network), sorted(network)


def test_send_pressed_from_the_keyboard_gives_the_focus_back_to_the_message_box(browser, playground):
    """Tab to Send and Enter sent the message but left the focus on the button: the next message
    needed a Shift+Tab back to the box first."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = playground
    box = _message_box(browser, url)
    box.send_keys("hello", Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "send"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    WebDriverWait(browser, 60).until(
        lambda b: [e.text.strip() for e in b.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='user']")]
        == ["hello"]
    )
    assert browser.switch_to.active_element == box
    browser.switch_to.active_element.send_keys("again")
    assert box.get_attribute("value") == "again"


def test_copying_the_conversation_copies_it_as_shown_not_escaped(browser, playground):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = playground
    box = _message_box(browser, url)
    browser.execute_script(
        "window.copied = []; Object.defineProperty(navigator, 'clipboard', "
        "{value: {writeText: (text) => { window.copied.push(text); return Promise.resolve(); }}});"
    )
    typed = 'fish & chips <b>x</b> "q"'
    box.send_keys(typed)
    box.send_keys(Keys.ENTER)
    bot = WebDriverWait(browser, 60).until(
        lambda b: [e for e in b.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='bot']") if e.text.strip()]
    )
    copy = [b for b in browser.find_elements(By.CSS_SELECTOR, "#conversation button")
            if (b.get_attribute("aria-label") or b.text or "").strip() == "Copy conversation"]
    assert len(copy) == 1
    copy[0].click()
    WebDriverWait(browser, 30).until(lambda b: b.execute_script("return window.copied.length"))
    assert browser.execute_script("return window.copied") == [f"user: {typed}\n\nassistant: {bot[-1].text.strip()}"]


def test_copying_the_conversation_works_where_the_page_has_no_clipboard_api(browser, playground):
    """Served over plain HTTP to another machine (--host 0.0.0.0), the page is no secure context
    and has no navigator.clipboard: the button threw and copied nothing, where gradio's own
    copy button had copied by the document's copy command."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = playground
    box = _message_box(browser, url)
    browser.execute_script(
        "window.copied = []; Object.defineProperty(navigator, 'clipboard', {value: undefined});"
        "document.execCommand = (command) => {"
        "  window.copied.push([command, document.activeElement.value]); return true; };"
    )
    box.send_keys("line one")
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys("line two")
    box.send_keys(Keys.ENTER)
    bot = WebDriverWait(browser, 60).until(
        lambda b: [e for e in b.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='bot']") if e.text.strip()]
    )
    copy = [b for b in browser.find_elements(By.CSS_SELECTOR, "#conversation button")
            if (b.get_attribute("aria-label") or b.text or "").strip() == "Copy conversation"]
    copy[0].click()
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.copied.length"))
    assert browser.execute_script("return window.copied") == [
        ["copy", f"user: line one\nline two\n\nassistant: {bot[-1].text.strip()}"]]


def test_without_a_responder_the_chat_has_no_emotions_and_no_emotion_tab(default_predictor, free_port):
    """In this process: the page built over an intent model alone, served and called."""
    gradio_client = _gradio_client()
    from legacy_assistant.errors import ConfigError
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    blocks = build_playground(assistant)
    dropdowns = [c for c in blocks.config["components"] if c["type"] == "dropdown"]
    assert [d["props"]["visible"] for d in dropdowns] == [False]
    port = free_port()
    url = launch_playground(blocks, "127.0.0.1", port)
    try:
        client = gradio_client.Client(url, verbose=False, download_files=False)
        assert "/all_emotions" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        transcript, _, generated, why, _, _ = client.predict("xqzv blorp flimflam", None, api_name="/chat")
        assert generated is False and "canned fallback reply" in why
        assert _text(transcript[-1]) in assistant.policy.fallback_responses
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):  # the port is taken
            launch_playground(build_playground(assistant), "127.0.0.1", port)
    finally:
        blocks.close(verbose=False)


def test_under_a_root_path_the_page_asks_for_its_files_and_calls_there(default_predictor, free_port):
    """Behind a proxy at /playground/: the page's config roots it there (without, its script
    asked for /theme.css and /gradio_api/... at the host's root, and the chat never answered)."""
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    _gradio_client()
    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "127.0.0.1", free_port(), root_path="/playground")
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=30) as response:
            config = json.load(response)
        assert urllib.parse.urlsplit(config["root"]).path == "/playground"
    finally:
        blocks.close(verbose=False)


@pytest.mark.parametrize("root_path", ["/playground", "/playground/", "/playground//"])
def test_under_a_root_path_the_page_on_its_own_port_is_answered_too(
    default_predictor, free_port, monkeypatch, root_path
):
    """Under a root path the page calls <root>/gradio_api/...; the server answered those on its
    own port for /playground, but not for /playground/ (given so, or in GRADIO_ROOT_PATH): its
    messages were never answered, while the start line named that page."""
    from legacy_assistant.cli.playground import served_line
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    _gradio_client()
    assert served_line("http://127.0.0.1:7860/", "") == "playground on http://127.0.0.1:7860/  (Ctrl-C to stop)"
    assert served_line("http://127.0.0.1:7860/", None) == served_line("http://127.0.0.1:7860/", "/")
    monkeypatch.setenv("GRADIO_ROOT_PATH", root_path)  # gradio's own setting, as --root-path
    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "127.0.0.1", free_port())
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=30) as response:
            root = json.load(response)["root"]
        assert urllib.parse.urlsplit(root).path == "/playground"
        with urllib.request.urlopen(root + "/gradio_api/info", timeout=30) as response:  # where the page calls
            assert response.status == 200
        assert served_line(url, blocks.root_path) == f"playground on {url}  (Ctrl-C to stop)"
    finally:
        blocks.close(verbose=False)


def test_under_a_full_url_as_root_path_the_start_line_says_to_open_the_page_through_the_proxy():
    """A root path given as a full URL sends the page's calls to that address, not to this port."""
    from legacy_assistant.cli.playground import served_line

    line = served_line("http://127.0.0.1:7860/", "https://example.org/playground/")
    assert line == (
        "playground on http://127.0.0.1:7860/  (Ctrl-C to stop); its calls go to https://example.org/playground/..., "
        "so open it through the reverse proxy that serves that path"
    )


def test_model_names_in_the_header_are_shown_as_text(default_predictor, monkeypatch):
    """A model directory named like HTML must not put an image (fetched from elsewhere) in the page."""
    _gradio_client()
    from legacy_assistant.classifier.predictor import Predictor
    from legacy_assistant.playground.app import build_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    monkeypatch.setattr(Predictor, "name", property(lambda self: "<img src=http://192.0.2.9/i.png>*bold*"))
    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    shown = " ".join(
        str(c["props"].get("value")) for c in build_playground(assistant).config["components"]
        if c["type"] in ("html", "markdown")
    )
    assert "&lt;img src=http://192.0.2.9/i.png&gt;*bold*" in shown and "<img" not in shown


def test_without_gradio_the_command_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # as when it is not installed
    assert main(["playground", "--port", "7999"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'legacy-assistant[playground]'" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_port_in_use_is_refused_before_the_models_load(monkeypatch, capsys):
    import socket

    _gradio_client()
    from legacy_assistant.serving.assistant import Assistant

    def never(*args, **kwargs):
        raise AssertionError("the models were loaded before the port was checked")

    monkeypatch.setattr(Assistant, "load", never)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["playground", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another --host or --port" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no-responder", "--condition-strength", "2"], "--condition-strength is a responder option"),
        (["--root-path", "playground"], "--root-path is a path from the host's root, such as /playground"),
    ],
)
def test_a_strength_that_would_be_ignored_or_refused_later_is_one_line_first(monkeypatch, capsys, argv, message):
    monkeypatch.setitem(sys.modules, "gradio", None)  # refused before gradio is even looked for
    assert main(["playground", "--port", "7999", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_root_path_from_the_environment_is_refused_as_the_option_is(monkeypatch, capsys):
    """GRADIO_ROOT_PATH=playground (no leading slash) was taken as it is: every request of the
    page then failed inside gradio (500), where --root-path playground is refused."""
    monkeypatch.setitem(sys.modules, "gradio", None)  # refused before gradio is even looked for
    monkeypatch.setenv("GRADIO_ROOT_PATH", "playground")
    assert main(["playground", "--port", "5933", "--no-responder"]) == 1
    err = capsys.readouterr().err
    assert "GRADIO_ROOT_PATH is a path from the host's root, such as /playground, or a full URL, " \
        "got 'playground'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("strength", ["-5", "11", "nan", "inf"])
def test_a_strength_out_of_range_is_a_usage_error(monkeypatch, capsys, strength):
    monkeypatch.setitem(sys.modules, "gradio", None)  # refused before gradio is even looked for
    with pytest.raises(SystemExit) as refused:
        main(["playground", "--port", "7999", "--condition-strength", strength])
    assert refused.value.code == 2
    assert f"--condition-strength: must be a number from 0 to 10, got {strength}" in capsys.readouterr().err


def test_the_playground_holds_messages_to_the_servers_text_cap(monkeypatch):
    """It took 1,000 characters whatever LEGACY_ASSISTANT_MAX_TEXT_LENGTH said."""
    from legacy_assistant.cli.playground import text_cap
    from legacy_assistant.errors import ConfigError

    monkeypatch.delenv("LEGACY_ASSISTANT_MAX_TEXT_LENGTH", raising=False)
    assert text_cap() == 1000
    monkeypatch.setenv("LEGACY_ASSISTANT_MAX_TEXT_LENGTH", "20")
    assert text_cap() == 20
    monkeypatch.setenv("LEGACY_ASSISTANT_MAX_TEXT_LENGTH", "lots")
    with pytest.raises(ConfigError, match="LEGACY_ASSISTANT_MAX_TEXT_LENGTH"):
        text_cap()


def test_an_ipv6_host_is_served_and_its_url_is_bracketed(default_predictor, free_port):
    """``--host ::1``: gradio wrote its own URL as http://::1:PORT/ and failed on it with a
    traceback, after the models had loaded."""
    import socket

    gradio_client = _gradio_client()
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    port = free_port()
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", port))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "::1", port)
    try:
        assert url == f"http://[::1]:{port}/"
        client = gradio_client.Client(url, verbose=False, download_files=False)
        assert client.predict("hello", None, api_name="/chat")[3].startswith("intent:")
    finally:
        blocks.close(verbose=False)


def test_an_error_reads_the_same_through_the_api_as_on_the_page(client):
    """The error's text is escaped for the page's HTML; its quotes were too, so a client read
    "got &#x27;1.5&#x27;" for the seed it sent."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        client.predict("hello there", "sample", "1.5", 0, api_name="/all_emotions")
    assert "got '1.5'" in str(raised.value) and "&#x27;" not in str(raised.value)
    with pytest.raises(AppError) as raised:  # markup stays text on the page
        client.predict("hello there", "sample", "<b>7</b>", 0, api_name="/all_emotions")
    assert "&lt;b&gt;7&lt;/b&gt;" in str(raised.value)


def test_a_proxy_in_the_environment_is_not_asked_for_the_local_page(default_predictor, free_port, monkeypatch):
    """With http_proxy set and 127.0.0.1 not in no_proxy, gradio's check of its own server went
    to the proxy: a traceback after the models had loaded (and a request off the machine)."""
    gradio_client = _gradio_client()
    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "")  # recorded, so that each is put back as it was afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("NO_PROXY", "example.internal")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.2:{free_port()}")  # nothing listens there
    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "127.0.0.1", free_port())
    try:
        assert "example.internal" in os.environ["no_proxy"].split(",")  # the user's own stay
        client = gradio_client.Client(url, verbose=False, download_files=False)
        assert client.predict("hello", None, api_name="/chat")[3].startswith("intent:")
    finally:
        blocks.close(verbose=False)


def test_a_stopped_playground_leaves_nothing_in_the_temporary_folder(tmp_path, free_port):
    """gradio made its folder, TMPDIR/gradio, at each start and left it behind."""
    _gradio_client()
    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(temp))
    env.pop("GRADIO_TEMP_DIR", None)
    env.pop("LEGACY_ASSISTANT_RUNTIME", None)
    command = [sys.executable, "-m", "legacy_assistant", "playground", "--port", str(port), "--no-responder"]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_sigint_as_on_a_terminal
        )
    try:
        _wait_until_served(f"http://127.0.0.1:{port}/", process, log_path)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    assert sorted(p.name for p in temp.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "argument --port: must be a port from 1 to 65535, got 0"),
        (["--port", "65536"], "argument --port: must be a port from 1 to 65535, got 65536"),
        (["--port", "x"], "argument --port: expected a whole number, got 'x'"),
        (["--host", ""], "argument --host: must not be blank: name an address, e.g. 127.0.0.1"),
        (["--host", " \n"], "argument --host: must not be blank"),
    ],
)
def test_a_bad_address_is_a_usage_error_naming_the_flag(monkeypatch, capsys, argv, message):
    """A port out of range was an error line with exit status 1, unlike every other bad flag
    value; a blank host was taken, and gradio listened on its GRADIO_SERVER_NAME instead."""
    monkeypatch.setitem(sys.modules, "gradio", None)  # refused before gradio is even looked for
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    with pytest.raises(SystemExit) as refused:
        main(["playground", *argv])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and message in err.splitlines()[-1] and "Traceback" not in err, err


def test_what_is_typed_while_a_reply_is_on_its_way_stays_in_the_message_box(browser, default_predictor, free_port):
    """The reply's answer emptied the message box as it came: the next message, typed meanwhile,
    was wiped. The box is emptied only while it still holds the message answered."""
    import threading

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from legacy_assistant.playground.app import build_playground, launch_playground
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    assistant = Assistant(
        default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0), MemoryStore()
    )
    classify, classifying, release = assistant._classify, threading.Event(), threading.Event()

    def held(text):
        if text == "a slow one":
            classifying.set()
            release.wait(30)
        return classify(text)

    assistant._classify = held
    blocks = build_playground(assistant)
    url = launch_playground(blocks, "127.0.0.1", free_port())

    def replies():
        return len(browser.find_elements(By.CSS_SELECTOR, "#conversation [data-testid='bot']"))

    try:
        box = _message_box(browser, url)
        box.send_keys("a slow one", Keys.ENTER)
        assert classifying.wait(30)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("the next message")
        release.set()
        WebDriverWait(browser, 60).until(lambda _: replies() == 1)
        time.sleep(0.5)  # the page's last step after the reply, if any, has run
        assert box.get_attribute("value") == "the next message"
        # the message answered, still in the box as sent, is emptied as before
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys("hello", Keys.ENTER)
        WebDriverWait(browser, 60).until(lambda _: replies() == 2 and box.get_attribute("value") == "")
    finally:
        blocks.close(verbose=False)
