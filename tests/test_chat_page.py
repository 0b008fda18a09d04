"""The chat page at / in real headless Chromium (Debian's chromium + chromium-driver), and what
the server renders into it.

Browser tests skip when Chromium is missing locally and fail under ``CI=true``. Nothing is
downloaded: the browser and its driver are the system's. The live server answers with the
shipped intent model and the shipped responder, and caps messages at :data:`TEXT_CAP`
characters (not the default, so that the page's limit is seen to come from the server).
"""
import re
import shutil
import threading
from html.parser import HTMLParser

import pytest

from tests.helpers import needs, polled_often

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SENDER_KEY = "legacy-assistant-sender"
SENDER_SHAPE = re.compile(r"web-[0-9a-f]{32}")  # 128 random bits
TEXT_CAP = 600
GIBBERISH = "blorp fnord zibble"  # no intent: the responder writes the reply
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def serve(free_port, responder_assistant):
    """``serve(**config)``: the URL of a live server over the responder assistant."""
    from werkzeug.serving import make_server

    from legacy_assistant.web import create_app

    servers = []

    def start(mount="", assistant=None, **config):
        """``mount``: serve the app under that prefix (as a proxy does), and 404 everything else;
        ``assistant``: another one to serve."""
        from werkzeug.exceptions import NotFound
        from werkzeug.middleware.dispatcher import DispatcherMiddleware

        app = create_app({"ACCESS_LOG": False, "MAX_TEXT_LENGTH": TEXT_CAP, **config},
                         assistant=assistant or responder_assistant)
        port = free_port()
        server = make_server("127.0.0.1", port, DispatcherMiddleware(NotFound(), {mount: app}) if mount else app,
                             threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}{mount}/"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def live_url(serve):
    return serve()


@pytest.fixture(scope="module")
def open_browser(tmp_path_factory):
    """``open_browser()``: a new headless Chromium with a fresh profile of its own."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        needs("chromium and chromium-driver", "apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def start():
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    with polled_often():
        yield start
    for driver in drivers:
        driver.quit()


@pytest.fixture(scope="module")
def browser(open_browser):
    return open_browser()


def ready(browser):
    """Wait until the page has restored its conversation and sends again (the message box
    itself takes typing all along)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 15).until(lambda b: b.find_element(By.ID, "send").is_enabled())


def open_fresh(browser, url):
    """The page as a first visitor sees it: nothing saved from earlier tests."""
    browser.get(url)
    browser.execute_script("localStorage.clear()")
    browser.get(url)
    ready(browser)


def saved_sender(browser):
    return browser.execute_script(f"return localStorage.getItem('{SENDER_KEY}')")


def conversation(browser):
    """The log as (kind, text, generated badge shown) per message."""
    from selenium.webdriver.common.by import By

    rows = []
    for message in browser.find_elements(By.CSS_SELECTOR, "#log .msg"):
        kind = next(k for k in ("user", "bot", "error", "notice") if k in message.get_attribute("class").split())
        rows.append((kind, message.find_element(By.CSS_SELECTOR, ".text").text,
                     bool(message.find_elements(By.CSS_SELECTOR, ".badge"))))
    return rows


def refuse_posts_at_once(browser):
    """Every POST the page makes answered at once with a 503 the server could give, counted in
    ``window.posts``: the refusal is in before a second click or a key repeat."""
    browser.execute_script("""
        var original = window.fetch;
        window.posts = 0;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          window.posts++;
          return Promise.resolve(new Response(
            '{"error": {"code": "store_unavailable", "message": "the store is unavailable; try again shortly"}}',
            {status: 503, headers: {"Content-Type": "application/json", "Retry-After": "1"}}));
        };""")


def send_button_clicks(browser):
    """A function that presses and releases the mouse on Send as the count-th click of a
    double-click (selenium's double_click leaves when the second click comes to chance)."""
    middle = browser.execute_script(
        "var r = document.getElementById('send').getBoundingClientRect();"
        "return [r.left + r.width / 2, r.top + r.height / 2];")

    def click(count):
        for kind in ("mousePressed", "mouseReleased"):
            browser.execute_cdp_cmd("Input.dispatchMouseEvent", {
                "type": kind, "x": middle[0], "y": middle[1], "button": "left", "clickCount": count})

    return click


def send(browser, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ready(browser)
    bots_before = len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot, #log .msg.error"))
    box = browser.find_element(By.ID, "message")
    box.send_keys(text)
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 15).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot, #log .msg.error")) > bots_before
        and b.find_element(By.ID, "send").is_enabled())
    last = browser.find_elements(By.CSS_SELECTOR, "#log .msg")[-1]
    assert "error" not in last.get_attribute("class"), last.text
    return last


def start_new_conversation(browser):
    """Press "New conversation" and say yes when the page asks (it asks first where there is a
    conversation to lose: the server deletes it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.ID, "new-conversation").click()
    question = WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
    assert question.text.startswith("Start a new conversation?"), question.text
    question.accept()


def delay_chats(browser):
    """Each chat message leaves the page a second late, as over a slow network; the page counts
    the answers in ``window.chatsAnswered``."""
    browser.execute_script("""
        window.chatsAnswered = 0;
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          var self = this, args = arguments;
          return new Promise(function (resolve) { setTimeout(resolve, 1000); })
            .then(function () { return original.apply(self, args); })
            .then(function (answer) { window.chatsAnswered++; return answer; });
        };""")


def test_chat_page_talks_follows_context_and_shows_details(browser, live_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    assert browser.title == "legacy-assistant"
    assert not browser.find_elements(By.CSS_SELECTOR, "script[src^='http'], link[href^='http']")  # no CDN
    # live once the restored turns (none here) have gone in quietly
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "log").get_attribute("aria-live") == "polite")
    assert browser.find_element(By.CSS_SELECTOR, "label[for='message']").text

    first = send(browser, "I'd like to order a coffee")
    assert first.find_element(By.CSS_SELECTOR, ".text").text
    users = browser.find_elements(By.CSS_SELECTOR, "#log .msg.user .text")
    assert users[-1].text == "I'd like to order a coffee"

    browser.find_element(By.ID, "show-details").click()
    details = first.find_element(By.CSS_SELECTOR, ".details").text
    assert "intent: order_coffee" in details

    second = send(browser, "a large one")
    assert "intent: coffee_size_large" in second.find_element(By.CSS_SELECTOR, ".details").text

    # the sender id survives a reload of the page: the flow continues
    sender = browser.execute_script("return localStorage.getItem('legacy-assistant-sender')")
    assert sender and sender.startswith("web-")
    browser.refresh()
    ready(browser)
    assert browser.execute_script("return localStorage.getItem('legacy-assistant-sender')") == sender
    third = send(browser, "with oat milk")
    assert "intent: milk_yes" in third.find_element(By.CSS_SELECTOR, ".details").text

    # a new conversation gets a new sender and an empty log; context starts afresh, and the
    # server forgets the one left behind
    assert len(stored_turns(live_url, sender)) == 3
    start_new_conversation(browser)
    assert browser.find_elements(By.CSS_SELECTOR, "#log .msg") == []
    assert browser.execute_script("return localStorage.getItem('legacy-assistant-sender')") != sender
    fresh = send(browser, "a large one")
    assert "intent: coffee_size_large" not in fresh.find_element(By.CSS_SELECTOR, ".details").text
    WebDriverWait(browser, 10).until(lambda _: stored_turns(live_url, sender) == [])


def test_a_message_on_its_way_is_forgotten_with_the_conversation_it_leaves(browser, live_url):
    """New conversation while a message is still on its way: the server forgets the old
    conversation after that message's turn has landed in it, not before."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    left = saved_sender(browser)
    delay_chats(browser)
    browser.find_element(By.ID, "message").send_keys("I'd like to order a coffee")
    browser.find_element(By.ID, "send").click()
    start_new_conversation(browser)
    assert saved_sender(browser) != left
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.chatsAnswered") == 1)
    WebDriverWait(browser, 10).until(lambda _: stored_turns(live_url, left) == [])
    assert conversation(browser) == []  # the late answer belongs to the conversation left behind


def test_tabs_of_one_browser_follow_each_others_new_conversation(open_browser, live_url):
    """Two tabs share one sender id: a new conversation in one is the other's too, so the other
    tab neither writes on into the forgotten conversation nor, later, deletes the new one."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver = open_browser()
    open_fresh(driver, live_url)
    first_tab = driver.current_window_handle
    left = saved_sender(driver)
    send(driver, "hello")
    driver.switch_to.new_window("tab")
    driver.get(live_url)
    ready(driver)
    second_tab = driver.current_window_handle
    assert [text for kind, text, _ in conversation(driver) if kind == "user"] == ["hello"]  # the same conversation

    driver.switch_to.window(first_tab)
    start_new_conversation(driver)
    fresh = saved_sender(driver)
    assert fresh != left
    WebDriverWait(driver, 10).until(lambda _: stored_turns(live_url, left) == [])

    driver.switch_to.window(second_tab)
    WebDriverWait(driver, 10).until(lambda b: conversation(b) == [])  # it left the forgotten conversation too
    send(driver, "thanks")
    assert stored_turns(live_url, left) == []  # nothing written into the forgotten one
    assert [turn["message"] for turn in stored_turns(live_url, fresh)] == ["thanks"]

    driver.switch_to.window(first_tab)  # the second tab's turn is in the conversation this tab holds
    driver.refresh()
    ready(driver)
    assert [text for kind, text, _ in conversation(driver) if kind == "user"] == ["thanks"]


def stored_turns(url: str, sender: str) -> list:
    """The server's turns of ``sender``, read over HTTP as any client would."""
    import json
    import urllib.parse
    import urllib.request

    with urllib.request.urlopen(url + "api/v1/conversations/" + urllib.parse.quote(sender, safe="")) as answer:
        return json.load(answer)["turns"]


def test_chat_page_shows_api_errors(browser, live_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    # a page older than the server's cap: the input takes more than the server does
    browser.execute_script("document.getElementById('message').removeAttribute('data-max-chars')")
    browser.find_element(By.ID, "message").send_keys("x" * (TEXT_CAP + 200))
    browser.find_element(By.ID, "send").click()
    error = WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))[-1]
    assert f"longer than {TEXT_CAP} characters" in error.text
    # the refused message is marked as one the server does not have, as a message lost on its way is
    refused = browser.find_element(By.CSS_SELECTOR, "#log .msg.user")
    assert "unsent" in refused.get_attribute("class").split()
    assert refused.find_element(By.CSS_SELECTOR, ".note").text == "Not sent"


def test_the_input_takes_no_more_than_the_server_does(browser, live_url):
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    box = browser.find_element(By.ID, "message")
    assert box.get_attribute("data-max-chars") == str(TEXT_CAP)
    box.send_keys("y" * (TEXT_CAP + 50))
    assert len(box.get_attribute("value")) == TEXT_CAP
    # the cap counts characters as the server does: an emoji is one (two UTF-16 units)
    counts = browser.execute_script(
        "var box = document.getElementById('message');"
        f"box.value = '\\u{{1F600}}'.repeat({TEXT_CAP + 5});"
        "box.dispatchEvent(new Event('input', {bubbles: true}));"
        "return [Array.from(box.value).length, box.value.length];")
    assert counts == [TEXT_CAP, 2 * TEXT_CAP]
    # at the cap, typing in the middle is refused where it happens: the text and the caret stay put
    full = "a" * (TEXT_CAP - 3) + "XYZ"
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].setSelectionRange(5, 5);", box, full)
    box.send_keys("QR")
    assert browser.execute_script("return [arguments[0].value, arguments[0].selectionStart];", box) == [full, 5]
    # below it, a paste that would pass the cap keeps its start and the text after the caret
    short = "b" * (TEXT_CAP - 4) + "END"
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].setSelectionRange(2, 2);", box, short)
    box.send_keys("1234")
    assert browser.execute_script("return [arguments[0].value, arguments[0].selectionStart];", box) == [
        "bb1" + short[2:], 3]


def test_the_cap_cuts_whole_characters_counts_near_it_and_says_when_it_cut(browser, live_url):
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    box = browser.find_element(By.ID, "message")
    hint, notice = browser.find_element(By.ID, "message-limit"), browser.find_element(By.ID, "message-notice")
    assert hint.text == f"At most {TEXT_CAP} characters." and notice.text == ""
    assert notice.get_attribute("role") == "status"
    # shown while empty (of no height), so the status region is there before its first words
    assert browser.execute_script("return getComputedStyle(arguments[0]).display", notice) != "none"
    family, flag = "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F1EB\U0001F1F7"  # 5 and 2 code points
    for tail in (family, flag, "e\u0301", "\U0001F44D\U0001F3FD"):
        # one code point left: a character of several is dropped whole, not cut into a piece of it
        typed = browser.execute_script(
            "var box = arguments[0]; box.value = arguments[1]; box.setSelectionRange(box.value.length, box.value.length);"
            "box.dispatchEvent(new Event('input', {bubbles: true})); return box.value;",
            box, "a" * (TEXT_CAP - 1) + tail)
        assert typed == "a" * (TEXT_CAP - 1), ascii(tail)
        assert notice.text == f"Shortened to {TEXT_CAP} characters: the server takes no more."
        assert hint.text == f"{TEXT_CAP - 1} of {TEXT_CAP} characters."
    # more keys past the cap leave the notice's words as they are: no new announcement each time
    changes = browser.execute_script(
        "var box = arguments[0], changes = 0;"
        "var watch = new MutationObserver(function (m) { changes += m.length; });"
        "watch.observe(arguments[1], {childList: true, characterData: true, subtree: true});"
        "for (var i = 0; i < 3; i++) { box.value = box.value + 'x';"
        "  box.dispatchEvent(new Event('input', {bubbles: true})); }"
        "watch.takeRecords().forEach(function () { changes++; }); watch.disconnect(); return changes;",
        box, notice)
    assert changes == 0 and notice.text == f"Shortened to {TEXT_CAP} characters: the server takes no more."
    box.send_keys("\b" * 200)  # well under the cap: the count and the notice go
    assert hint.text == f"At most {TEXT_CAP} characters." and notice.text == ""


def test_a_failed_send_gives_the_text_back_and_the_box_keeps_the_focus(browser, live_url):
    """While a reply is on its way the message box keeps the focus and takes typing; a
    message the server refused comes back to be sent again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    browser.execute_script("""
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          return new Promise(function (resolve) { setTimeout(resolve, 700); }).then(function () {
            return new Response('{"error": {"code": "overloaded", "message": "busy, try later"}}',
                                {status: 503, headers: {"Content-Type": "application/json"}});
          });
        };""")
    box = browser.find_element(By.ID, "message")
    box.send_keys("I'd like to order a coffee", Keys.ENTER)
    assert not browser.find_element(By.ID, "send").is_enabled()  # on its way
    assert browser.switch_to.active_element == box and box.get_attribute("value") == ""
    assert browser.find_element(By.ID, "log").get_attribute("aria-busy") == "false"  # replies are announced
    error = WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))[-1]
    ready(browser)
    assert error.text == "Error\nbusy, try later"  # the speaker's label, then the message
    assert box.get_attribute("value") == "I'd like to order a coffee"
    assert browser.switch_to.active_element == box
    # the refused message is said not to be the server's (it showed as sent, beside its copy sent again)
    assert [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#log .msg.user.unsent .text")] == [
        "I'd like to order a coffee"]

    # no answer at all: given up after the page's time limit; the server may have the message,
    # so it is not given back to be sent twice
    browser.execute_script("""
        document.getElementById("chat-form").setAttribute("data-timeout-ms", "400");
        window.fetch = function (url, options) {
          return new Promise(function (resolve, reject) {
            options.signal.addEventListener("abort", function () {
              reject(new DOMException("aborted", "AbortError"));
            });
          });
        };""")
    box.clear()
    box.send_keys("hello", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.error")) == 2)
    ready(browser)
    last = browser.find_elements(By.CSS_SELECTOR, "#log .msg.error .text")[-1]
    assert last.text.startswith("The server did not answer in time (0.4 s). It may still have the message")
    assert box.get_attribute("value") == ""


def test_turns_the_log_missed_come_in_with_the_next_answered_turn(browser, live_url):
    """A restore that failed left the log empty, and the next reply answered a question the
    page did not show; a message given up on may have been answered meanwhile. The next turn
    answered brings the server's transcript in, without a reload."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "I'd like to order a coffee")
    failing = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        var original = window.fetch, failed = false;
        window.fetch = function (url, options) {
          if (failed || !options || options.method !== "GET") return original.apply(this, arguments);
          failed = true; // the transcript, once
          return Promise.reject(new TypeError("Failed to fetch"));
        };"""})
    try:
        browser.refresh()
        ready(browser)
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": failing["identifier"]})
    assert [kind for kind, _, _ in conversation(browser)] == ["error"]
    assert "Could not restore the conversation" in conversation(browser)[0][1]
    send(browser, "a large one")
    WebDriverWait(browser, 10).until(lambda b: [row[:2] for row in conversation(b)][::2] == [
        ("user", "I'd like to order a coffee"), ("user", "a large one")])
    ready(browser)
    assert [kind for kind, _, _ in conversation(browser)] == ["user", "bot", "user", "bot"]

    # given up on while the server still answers it: the late answer comes in with the next turn
    # answered; a refresh that fails leaves the log as it was, and is not said again
    browser.execute_script("""
        document.getElementById("chat-form").setAttribute("data-timeout-ms", "300");
        window.slowPosts = true;
        window.failGets = false;
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (options && options.method === "GET" && window.failGets) return Promise.reject(new TypeError("Failed to fetch"));
          if (!options || options.method !== "POST" || !window.slowPosts) return original.apply(this, arguments);
          var signal = options.signal;
          delete options.signal;
          var answer = original.call(this, url, options);
          return new Promise(function (resolve, reject) {
            signal.addEventListener("abort", function () { reject(new DOMException("aborted", "AbortError")); });
            answer.then(function (r) { setTimeout(function () { resolve(r); }, 5000); }, reject);
          });
        };""")
    browser.find_element(By.ID, "message").send_keys("with oat milk", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    WebDriverWait(browser, 10).until(lambda _: len(stored_turns(live_url, saved_sender(browser))) == 3)
    browser.execute_script("""
        document.getElementById("chat-form").removeAttribute("data-timeout-ms");
        window.slowPosts = false;
        window.failGets = true;""")
    send(browser, "thanks")
    assert [kind for kind, _, _ in conversation(browser)] == ["user", "bot", "user", "bot", "user", "error", "user", "bot"]
    browser.execute_script("window.failGets = false;")
    send(browser, "bye")
    WebDriverWait(browser, 10).until(lambda b: [text for kind, text, _ in conversation(b) if kind == "user"] == [
        "I'd like to order a coffee", "a large one", "with oat milk", "thanks", "bye"])
    ready(browser)
    assert [kind for kind, _, _ in conversation(browser)] == ["user", "bot"] * 5


def test_a_restore_given_up_on_is_announced_and_says_no_message_of_the_users_may_be_waiting(browser, live_url):
    """A transcript that did not come in time was reported with the words for a message sent:
    "It may still have the message: reload the page ... before sending it again". The error went
    into the log while it was busy (being refilled), where no screen reader heard it: it is said
    on the status region too."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    hanging = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        document.addEventListener("readystatechange", function () { // before the deferred script runs
          var form = document.getElementById("chat-form");
          if (form) form.setAttribute("data-timeout-ms", "300");
        });
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "GET") return original.apply(this, arguments);
          return new Promise(function (resolve, reject) {
            options.signal.addEventListener("abort", function () { reject(new DOMException("aborted", "AbortError")); });
          });
        };"""})
    try:
        browser.refresh()
        ready(browser)
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": hanging["identifier"]})
    said = "Could not restore the conversation: The server did not answer in time (0.3 s)."
    assert [text for kind, text, _ in conversation(browser)] == [said]
    assert browser.find_element(By.ID, "message").is_enabled()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 5).until(lambda b: status.get_attribute("textContent") == said)


def test_a_turn_answered_in_one_tab_shows_in_the_others(open_browser, live_url):
    """Tabs share one conversation: a reply must never come to a question the tab did not show."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = open_browser()
    open_fresh(driver, live_url)
    first_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(live_url)
    ready(driver)
    second_tab = driver.current_window_handle

    driver.switch_to.window(first_tab)
    send(driver, "I'd like to order a coffee")
    shown = conversation(driver)
    driver.switch_to.window(second_tab)
    WebDriverWait(driver, 10).until(lambda b: conversation(b) == shown)
    follow_up = send(driver, "a large one")  # answers the question this tab now shows
    assert follow_up.text
    driver.switch_to.window(first_tab)
    WebDriverWait(driver, 10).until(lambda b: len(conversation(b)) == 4)
    assert [text for kind, text, _ in conversation(driver) if kind == "user"] == [
        "I'd like to order a coffee", "a large one"]


def test_details_keep_the_latest_reply_in_view_and_a_new_conversation_is_announced(browser, live_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    browser.execute_script("""
        var log = document.getElementById("log");
        for (var i = 0; i < 40; i++) {
          var m = document.createElement("div"); m.className = "msg bot"; m.dataset.intent = "x";
          var p = document.createElement("p"); p.className = "text"; p.textContent = "line " + i;
          m.appendChild(p); log.appendChild(m);
        }
        log.style.scrollBehavior = "auto";
        log.scrollTop = log.scrollHeight;""")
    browser.find_element(By.ID, "show-details").click()
    gap = browser.execute_script("var l = document.getElementById('log'); return l.scrollHeight - l.scrollTop - l.clientHeight;")
    assert gap < 2, gap
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "log").get_attribute("aria-live") == "polite")
    browser.find_element(By.ID, "show-details").click()

    start_new_conversation(browser)
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "status").get_attribute("textContent")
                                    == "New conversation started.")


def test_enter_sends_and_shift_enter_starts_a_new_line(browser, live_url):
    """The input took one line: Shift+Enter sent the message, though messages keep their line
    breaks and the server takes them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    box = browser.find_element(By.ID, "message")
    assert box.tag_name == "textarea"
    one_line = box.size["height"]
    box.send_keys("hello", Keys.SHIFT, Keys.ENTER, Keys.SHIFT, "there")
    assert box.get_attribute("value") == "hello\nthere" and box.size["height"] > one_line  # it grew
    assert conversation(browser) == []  # nothing sent yet
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 1)
    assert conversation(browser)[0][:2] == ("user", "hello\nthere")
    assert box.get_attribute("value") == "" and box.size["height"] == one_line
    assert [turn["message"] for turn in stored_turns(live_url, saved_sender(browser))] == ["hello\nthere"]
    keys = browser.find_element(By.ID, "message-keys").get_attribute("textContent")
    assert keys == "Enter sends; Shift+Enter starts a new line." and "message-keys" in box.get_attribute(
        "aria-describedby")


def test_sender_ids_are_random_per_browser(open_browser, live_url):
    ids = []
    for _ in range(2):  # two first visits, each in a fresh profile
        driver = open_browser()
        open_fresh(driver, live_url)
        ids.append(saved_sender(driver))
        assert SENDER_SHAPE.fullmatch(ids[-1]), ids[-1]
        driver.quit()
    assert ids[0] != ids[1]


def test_a_guessable_saved_sender_is_replaced(browser, live_url):
    open_fresh(browser, live_url)
    browser.execute_script(f"localStorage.setItem('{SENDER_KEY}', 'web-lx2f0k9a')")  # an old, clock-made id
    browser.refresh()
    ready(browser)
    assert SENDER_SHAPE.fullmatch(saved_sender(browser)), saved_sender(browser)


def test_a_saved_strength_the_slider_cannot_hold_leaves_the_servers(browser, live_url):
    """A value edited by hand: "1.5 " was set as text, which a range input refuses and replaces
    by its midpoint (5), and "1junk" was read as 1; every message then went with that strength."""
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    for saved, kept in (("1.5 ", "1.5"), ("2", "2"), ("1junk", "0"), ("0x", "0"), ("", "0"), ("11", "0"),
                        ("-1", "0"), ("1e400", "0")):
        browser.execute_script("localStorage.setItem('legacy-assistant-strength', arguments[0])", saved)
        browser.refresh()
        ready(browser)
        assert browser.find_element(By.ID, "strength").get_attribute("value") == kept, saved
        assert browser.find_element(By.ID, "strength-value").text == kept, saved


def test_emotion_is_sent_generated_replies_are_marked_and_the_transcript_survives_a_reload(browser, live_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_fresh(browser, live_url)
    emotion = Select(browser.find_element(By.ID, "emotion"))
    assert [o.get_attribute("value") for o in emotion.options] == ["neutral", "anger", "joy", "fear", "sadness"]
    assert emotion.first_selected_option.get_attribute("value") == "neutral"
    assert browser.find_element(By.CSS_SELECTOR, "label[for='emotion']").text
    emotion.select_by_value("joy")
    strength = browser.find_element(By.ID, "strength")
    assert strength.get_attribute("value") == "0" and browser.find_element(By.ID, "strength-value").text == "0"
    for value, shown in (("3.333333", "3.33"), ("1.25", "1.25"), ("2.5", "2.5")):
        # any value the server may be set to is kept exactly (no step to snap to); it is shown,
        # and read out, to 2 decimals
        browser.execute_script(
            f"var s = document.getElementById('strength'); s.value = '{value}';"
            "s.dispatchEvent(new Event('input', {bubbles: true}));")
        assert strength.get_attribute("value") == value
        assert browser.find_element(By.ID, "strength-value").text == shown
        assert strength.get_attribute("aria-valuetext") == shown
    browser.execute_script("""
        window.sentBodies = [];
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (options && options.body) window.sentBodies.push(JSON.parse(options.body));
          return original.apply(this, arguments);
        };""")

    made_up = send(browser, GIBBERISH)
    badge = made_up.find_element(By.CSS_SELECTOR, ".badge")
    assert badge.text == "generated" and badge.get_attribute("aria-label")
    assert made_up.get_attribute("data-generated") == "true"
    known = send(browser, "where are you located?")
    assert not known.find_elements(By.CSS_SELECTOR, ".badge")
    sent = browser.execute_script("return window.sentBodies")
    assert [body.get("emotion") for body in sent] == ["joy", "joy"]
    assert [body.get("condition_strength") for body in sent] == [2.5, 2.5]

    before = conversation(browser)
    assert [row[0] for row in before] == ["user", "bot", "user", "bot"]
    assert [row[2] for row in before] == [False, True, False, False]
    browser.refresh()
    ready(browser)
    assert conversation(browser) == before
    assert Select(browser.find_element(By.ID, "emotion")).first_selected_option.get_attribute("value") == "joy"
    assert browser.find_element(By.ID, "strength").get_attribute("value") == "2.5"  # kept like the emotion
    browser.find_element(By.ID, "show-details").click()
    details = [d.text for d in browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot .details")]
    assert "intent: fallback" in details[0] and "intent: fallback" not in details[1]

    # a new conversation is not restored: its sender has no turns yet
    start_new_conversation(browser)
    browser.refresh()
    ready(browser)
    assert conversation(browser) == []


def test_the_page_works_where_a_proxy_mounts_the_server(browser, serve):
    """A proxy that serves the app at /assistant/: the page's style sheet and script load, and
    its chat, transcript and forget calls reach the app, not the host's root."""
    from selenium.webdriver.common.by import By

    url = serve(mount="/assistant")
    assert url.endswith("/assistant/")
    open_fresh(browser, url)  # ready: the script ran and restored (nothing)
    assert browser.execute_script("return document.styleSheets[0].cssRules.length") > 0
    assert send(browser, "hello").find_element(By.CSS_SELECTOR, ".text").text
    browser.refresh()
    ready(browser)
    assert [row[:1] for row in conversation(browser)] == [("user",), ("bot",)]
    assert all(row[0] != "error" for row in conversation(browser))
    start_new_conversation(browser)
    ready(browser)
    assert conversation(browser) == [] and not browser.find_elements(By.CSS_SELECTOR, "#log .msg.error")


def test_keyboard_focus_is_neither_lost_nor_taken_while_a_reply_is_on_its_way(browser, live_url):
    """Send pressed from the keyboard: focus goes to the message box, not to the page (the
    button is disabled while busy). Focus moved to a setting meanwhile stays there when the reply comes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    delay_chats(browser)
    active = "return document.activeElement.id || document.activeElement.tagName"
    browser.find_element(By.ID, "message").send_keys("hello", Keys.TAB)  # on to Send
    assert browser.execute_script(active) == "send"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    assert browser.find_element(By.ID, "send").text == "Sending\u2026"  # the reply is on its way
    assert browser.execute_script(active) == "message"
    browser.execute_script("document.getElementById('emotion').focus()")
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.chatsAnswered") == 1)
    ready(browser)
    assert browser.execute_script(active) == "emotion"
    assert [row[0] for row in conversation(browser)] == ["user", "bot"]


def test_enter_while_a_reply_is_on_its_way_says_the_message_waits(browser, live_url):
    """The box takes typing while a reply is on its way, but Enter there sent nothing and said
    nothing: a screen reader user heard no reason the message stayed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    delay_chats(browser)
    box = browser.find_element(By.ID, "message")
    box.send_keys("hello", Keys.ENTER)
    box.send_keys("a large one", Keys.ENTER)
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "status").get_attribute("textContent") ==
                                    "Not sent yet: a reply is still on its way. Send again once it has come.")
    assert box.get_attribute("value") == "a large one"
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.chatsAnswered") == 1)
    ready(browser)
    assert [text for kind, text, _ in conversation(browser) if kind == "user"] == ["hello"]  # sent once
    assert box.get_attribute("value") == "a large one"


def test_detail_lines_go_in_while_the_log_is_not_live(browser, live_url):
    """Ticking "Show intent and confidence" adds a line to every reply: no news, so the live
    log is quiet while they go in, and live again afterwards."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    if browser.find_element(By.ID, "show-details").is_selected():
        browser.find_element(By.ID, "show-details").click()
    send(browser, "hello")
    send(browser, "where are you located?")
    assert browser.find_element(By.ID, "log").get_attribute("aria-live") == "polite"
    browser.execute_script("""
        var log = document.getElementById("log");
        window.liveWhenAdded = [];
        new MutationObserver(function (records) {
          records.forEach(function (r) {
            r.addedNodes.forEach(function (n) {
              if (n.classList && n.classList.contains("details")) window.liveWhenAdded.push(log.getAttribute("aria-live"));
            });
          });
        }).observe(log, {childList: true, subtree: true});""")
    browser.find_element(By.ID, "show-details").click()
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "log").get_attribute("aria-live") == "polite")
    assert browser.execute_script("return window.liveWhenAdded") == ["off", "off"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot .details")) == 2
    browser.find_element(By.ID, "show-details").click()  # off again, for the tests after this one


# For each lot of messages added to the log, its state in the frame that first shows them
# ("busy", or its aria-live): what a screen reader finds when it hears of them. In
# window.kindsShown, the kinds of message in each lot ("user bot").
WATCH_LIVE_WHEN_SHOWN = """
        window.liveWhenShown = [];
        window.kindsShown = [];
        document.addEventListener("DOMContentLoaded", function () {
          var log = document.getElementById("log");
          new MutationObserver(function (records) {
            var kinds = [];
            records.forEach(function (r) {
              Array.prototype.forEach.call(r.addedNodes, function (n) {
                if (n.classList && n.classList.contains("msg")) kinds.push(n.classList[1]);
              });
            });
            if (kinds.length) requestAnimationFrame(function () {
              var busy = log.getAttribute("aria-busy") === "true";
              window.liveWhenShown.push(busy ? "busy" : log.getAttribute("aria-live"));
              window.kindsShown.push(kinds.join(" "));
            });
          }).observe(log, {childList: true});
        });"""


def test_a_restored_transcript_goes_in_unheard_and_the_next_reply_is_heard(browser, live_url):
    """After a reload the stored turns were put into the log and the log made live again in the
    same task: a screen reader, which hears of the changes once the page has drawn them, found
    them in a live, idle log and read the whole conversation out again. The log is still quiet
    when the frame that shows them is drawn; a reply after that is news and goes into a live log."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    send(browser, "where are you located?")
    watching = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_LIVE_WHEN_SHOWN})
    try:
        browser.refresh()
        ready(browser)
        WebDriverWait(browser, 5).until(lambda b: b.execute_script("return window.liveWhenShown.length") > 0)
        assert len(conversation(browser)) == 4
        assert set(browser.execute_script("return window.liveWhenShown")) <= {"off", "busy"}
        WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "log").get_attribute("aria-live") == "polite")
        browser.execute_script("window.liveWhenShown = []")
        send(browser, "a large one")
        WebDriverWait(browser, 5).until(lambda b: b.execute_script("return window.liveWhenShown.length") > 0)
        assert browser.execute_script("return window.liveWhenShown")[-1] == "polite"
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": watching["identifier"]})


def test_the_reply_after_a_failed_restore_is_heard_before_the_log_is_read_again(browser, live_url):
    """The conversation could not be read at the page's load; the next reply reads it again. The
    log was marked busy for that in the same task as the reply went in, and refilled in the same
    frame: no screen reader heard the reply. It is read again once the reply has been drawn."""
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    failing = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_LIVE_WHEN_SHOWN + """
        window.failGets = true;
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (options && options.method === "GET" && window.failGets) return Promise.reject(new TypeError("no"));
          return original.apply(this, arguments);
        };"""})
    try:
        browser.refresh()
        ready(browser)
        assert [kind for kind, _, _ in conversation(browser)] == ["error"]
        browser.execute_script("window.failGets = false; window.liveWhenShown = []; window.kindsShown = [];")
        send(browser, "where are you located?")
        # read again: the turns as the server has them
        WebDriverWait(browser, 10).until(lambda b: [kind for kind, _, _ in conversation(b)] == ["user", "bot"] * 2)
        shown = browser.execute_script("return [window.kindsShown, window.liveWhenShown]")
        assert shown[0][:2] == ["user", "bot"], shown  # then the turns, read again
        assert shown[1][1] == "polite", shown
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": failing["identifier"]})


def test_a_narrow_page_with_large_text_grows_the_box_and_scrolls_only_down(open_browser, live_url):
    """320 CSS pixels wide with text at 200% (a phone, a reader's larger text): the message box
    grows with its lines, and nothing is wider than the window."""
    from selenium.webdriver.common.by import By

    browser = open_browser()
    browser.set_window_size(320, 900)
    open_fresh(browser, live_url)
    assert browser.execute_script("return document.documentElement.clientWidth") <= 320
    browser.execute_script("document.documentElement.style.fontSize = '200%'")
    box = browser.find_element(By.ID, "message")
    heights = browser.execute_script(
        "var box = arguments[0]; box.value = 'one\\ntwo\\nthree\\nfour';"
        "box.dispatchEvent(new Event('input', {bubbles: true}));"
        "return [box.getBoundingClientRect().height, parseFloat(box.style.height),"
        " parseFloat(getComputedStyle(box).lineHeight)];", box)
    shown, wanted, line = heights
    assert abs(shown - wanted) <= 1 and shown >= 4 * line, heights
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths


def test_on_a_phone_the_box_and_send_stay_in_view_below_a_long_conversation(browser, live_url):
    """360 by 640 pixels: the log took up to 60% of the window's height whatever the header and the
    settings above it took, so that a few turns pushed the message box and Send below the window's
    edge. The page is now the window's height and the log takes what is left, scrolling; a log
    showing its end goes on showing it as the box grows with the lines of a long message; after a
    reload it shows its end again. With reduced motion, the log scrolls without animation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": True})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]})
    layout = """
        var log = document.getElementById("log"), root = document.documentElement;
        function inView(id) {
          var r = document.getElementById(id).getBoundingClientRect();
          return r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
        }
        return {box: inView("message"), send: inView("send"), scrolls: log.scrollHeight > log.clientHeight,
                atEnd: log.scrollHeight - log.scrollTop - log.clientHeight < 2,
                sideways: root.scrollWidth > root.clientWidth};"""
    try:
        open_fresh(browser, live_url)
        assert browser.execute_script("return innerWidth") == 360
        behavior = "return getComputedStyle(document.getElementById('log')).scrollBehavior"
        assert browser.execute_script(behavior) == "auto"  # the log scrolls without animation
        url = "https://example.com/" + "x" * 150  # one long word: it wraps, within the message
        for text in ["I'd like to order a coffee", url, "what time is it", "thanks"]:
            send(browser, text)
        assert browser.execute_script(layout) == {"box": True, "send": True, "scrolls": True, "atEnd": True,
                                                  "sideways": False}
        sent = browser.find_elements(By.CSS_SELECTOR, "#log .msg.user")[1]
        assert browser.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", sent)

        box = browser.find_element(By.ID, "message")
        for line in ["one", "two"]:
            box.send_keys(line)
            box.send_keys(Keys.SHIFT, Keys.ENTER)  # a new line
        box.send_keys("three")
        assert box.get_attribute("value") == "one\ntwo\nthree"
        WebDriverWait(browser, 5).until(lambda b: b.execute_script(layout) == {
            "box": True, "send": True, "scrolls": True, "atEnd": True, "sideways": False})
        box.clear()

        browser.refresh()
        ready(browser)
        WebDriverWait(browser, 5).until(lambda b: b.execute_script(layout) == {
            "box": True, "send": True, "scrolls": True, "atEnd": True, "sideways": False})
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_on_a_phone_held_sideways_the_log_scrolls_within_the_window_not_the_page(browser, live_url):
    """640 by 360 pixels (a phone held sideways): the header, the settings, the log's least height
    and the message box, one above the other, were taller than the window, so the page scrolled
    as a whole and took the log, the box and Send out of view. Now the page is the window's
    height: every control is in view, with room for its focus ring, and the log, of a useful
    height, scrolls inside it, also while the box holds a few lines."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 640, "height": 360, "deviceScaleFactor": 1, "mobile": True})
    layout = """
        var log = document.getElementById("log"), root = document.documentElement;
        function inView(element) {
          var r = element.getBoundingClientRect();
          return r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth;
        }
        var ids = ["show-details", "emotion", "new-conversation", "message", "send"];
        // a focus ring (3px, 2px off the control) that a scrolling box around the control would cut
        var settings = document.querySelector(".toolbar"), box = settings.getBoundingClientRect();
        var clips = getComputedStyle(settings).overflowY !== "visible";
        function ringCut(id) {
          var r = document.getElementById(id).getBoundingClientRect();
          return clips && (r.left - 5 < box.left || r.right + 5 > box.right || r.top - 5 < box.top
                           || r.bottom + 5 > box.bottom);
        }
        return {hidden: ids.filter(function (id) { return !inView(document.getElementById(id)); }),
                ringsCut: ["show-details", "emotion", "new-conversation"].filter(ringCut),
                title: inView(document.querySelector("h1")),
                pageScrolls: root.scrollHeight > root.clientHeight, sideways: root.scrollWidth > root.clientWidth,
                logScrolls: log.scrollHeight > log.clientHeight, tallEnough: log.clientHeight >= 96,
                atEnd: log.scrollHeight - log.scrollTop - log.clientHeight < 2};"""
    fits = {"hidden": [], "ringsCut": [], "title": True, "pageScrolls": False, "sideways": False, "logScrolls": True,
            "tallEnough": True, "atEnd": True}

    def assert_fits():
        try:
            WebDriverWait(browser, 5).until(lambda b: b.execute_script(layout) == fits)
        except TimeoutException:
            pass
        assert browser.execute_script(layout) == fits

    try:
        open_fresh(browser, live_url)
        assert browser.execute_script("return [innerWidth, innerHeight]") == [640, 360]
        for text in ["hello", "what time do you open?", "thanks"]:
            send(browser, text)
        assert_fits()
        box = browser.find_element(By.ID, "message")
        for line in ["one", "two", "three"]:
            box.send_keys(line)
            box.send_keys(Keys.SHIFT, Keys.ENTER)  # a new line
        box.send_keys("four")
        assert_fits()
        box.clear()
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize(("width", "height", "scale"), [
    (320, 480, 1), (360, 640, 1), (481, 577, 1), (481, 620, 1), (568, 320, 1), (640, 360, 1), (667, 325, 1),
    (740, 300, 1), (800, 577, 1), (1280, 800, 1),
    (640, 400, 2),  # 1280 by 800 at 200% zoom
])
def test_at_every_window_size_the_box_the_latest_reply_and_each_setting_are_in_view(browser, live_url, width,
                                                                                    height, scale):
    """Windows 577 to 690 pixels high (481 by 577, 481 by 620, 800 by 577) scrolled the page as a
    whole below a log of 16 rem at least, and took the message box out of view; 320 by 480 did so
    below the header, the settings and the box one above the other; on very short windows held
    sideways (568 by 320, 667 by 325, 740 by 300) "New conversation" focused was cut off at the
    foot of the settings' scroll box, its focus ring too. At every size the page is
    now the window's height, the message box, Send and the latest reply are in view, and each
    setting focused is in view with its ring, scrolled to within the settings where they need
    more height than the window leaves them."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    layout = """
        var log = document.getElementById("log"), root = document.documentElement;
        function inView(element, ring) {
          var r = element.getBoundingClientRect();
          return r.top - ring >= 0 && r.bottom + ring <= innerHeight && r.left - ring >= 0
                 && r.right + ring <= innerWidth;
        }
        var last = log.lastElementChild.getBoundingClientRect(), shown = log.getBoundingClientRect();
        var settings = document.querySelector(".toolbar"), clips = getComputedStyle(settings).overflowY !== "visible";
        // each setting focused (as Tab reaches it): in the window, and in the settings' scroll box,
        // with its focus ring (3px, 2px off the control)
        var hidden = ["show-details", "emotion", "strength", "new-conversation"].filter(function (id) {
          var control = document.getElementById(id);
          control.focus();
          var r = control.getBoundingClientRect(), box = settings.getBoundingClientRect();
          var cut = clips && (r.left - 5 < box.left || r.right + 5 > box.right || r.top - 5 < box.top
                              || r.bottom + 5 > box.bottom);
          return cut || !inView(control, 5);
        });
        document.activeElement.blur();
        return {hidden: hidden, box: inView(document.getElementById("message"), 0),
                send: inView(document.getElementById("send"), 0),
                latestReply: last.bottom <= shown.bottom + 1 && last.bottom > shown.top && inView(log, 0),
                pageScrolls: root.scrollHeight > root.clientHeight, sideways: root.scrollWidth > root.clientWidth};"""
    # without animation: a smooth scroll of the log to its end would still be on its way when looked at
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]})
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": scale == 1})
    try:
        # the page opened at this size, on a conversation of a few turns (shared by the sizes where
        # the page still holds one)
        if browser.current_url == live_url and len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) >= 3:
            browser.refresh()
            ready(browser)
        else:
            open_fresh(browser, live_url)
            for text in ["hello", "what time do you open?", "thanks"]:
                send(browser, text)
        assert browser.execute_script("return [innerWidth, innerHeight]") == [width, height]
        fits = {"hidden": [], "box": True, "send": True, "latestReply": True, "pageScrolls": False,
                "sideways": False}
        try:  # the restored log goes to its end once it has its turns
            WebDriverWait(browser, 5).until(lambda b: b.execute_script(layout) == fits)
        except TimeoutException:
            pass
        assert browser.execute_script(layout) == fits
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_log_showing_its_end_keeps_it_when_the_window_changes_between_layouts(open_browser, live_url):
    """After a long conversation, a window resized between the stacked layout (the settings
    above the log) and the short, wide one (the settings beside it) left the log short of its
    end: its scroll position, moved by the layout (clamped to the log's new height), was heard
    as the user scrolling up, and the log stopped following its end at every later size. At
    each size it shows its end, the latest reply in view."""
    import time

    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser = open_browser()  # the default window, 780 by 437 inside
    latest_shown = """
        var log = document.getElementById("log"), last = log.lastElementChild.getBoundingClientRect();
        var shown = log.getBoundingClientRect();
        return [innerWidth, innerHeight, log.scrollHeight > log.clientHeight
                && log.scrollHeight - log.scrollTop - log.clientHeight < 2
                && last.bottom <= shown.bottom + 1 && last.bottom > shown.top];"""
    open_fresh(browser, live_url)
    for turn in range(12):
        send(browser, f"what time do you open? {turn}")
    # the window's outer sizes: its frame takes some height of each
    for size in [(481, 620), (780, 437), (320, 480), (640, 360), (320, 480), (780, 580), (481, 620), (780, 437)]:
        browser.set_window_size(*size)
        try:
            WebDriverWait(browser, 5).until(lambda b: b.execute_script(latest_shown)[2])
        except TimeoutException:
            pass
        shown = browser.execute_script(latest_shown)
        assert shown[2], (size, shown)
        time.sleep(0.5)  # the end of the log's scroll heard, as by a user who looks before resizing again
    # a scroll up of the user's still stops the following: the log stays where it was taken
    browser.execute_async_script("""
        var done = arguments[arguments.length - 1], log = document.getElementById("log");
        log.addEventListener("scrollend", function () { setTimeout(done, 100); }, {once: true});
        log.scrollTo({top: 0, behavior: "instant"});""")
    browser.set_window_size(481, 620)
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return innerWidth") == 481)
    top = browser.execute_async_script("""
        var done = arguments[arguments.length - 1], log = document.getElementById("log");
        requestAnimationFrame(function () {  // the log's new size observed, a scroll it made heard
          requestAnimationFrame(function () { setTimeout(function () { done(log.scrollTop); }, 500); });
        });""")
    assert top == 0


def test_a_log_showing_its_end_keeps_it_as_the_box_grows_where_there_is_no_scrollend(open_browser, live_url):
    """Where the browser has no "scrollend" event (Safari), every step of the log's smooth
    scroll to its end was heard as the log leaving its end: a box growing line after line, while
    that scroll went on, left the latest reply below the log's edge."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = open_browser()
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        for (const owner of [window, Window.prototype, Document.prototype, HTMLElement.prototype, Element.prototype])
          delete owner.onscrollend;"""})
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": True})
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"features": [{"name": "prefers-reduced-motion", "value": "no-preference"}]})
    open_fresh(browser, live_url)
    assert browser.execute_script("return 'onscrollend' in window") is False
    assert browser.execute_script("return getComputedStyle(document.getElementById('log')).scrollBehavior") == "smooth"
    for text in ["hello", "what time do you open?", "thanks", "where are you?", "bye"]:
        send(browser, text)
    at_end = "var log = document.getElementById('log'); return log.scrollHeight - log.scrollTop - log.clientHeight < 2"
    WebDriverWait(browser, 5).until(lambda b: b.execute_script(at_end))  # the smooth scroll to the reply arrived
    box = browser.find_element(By.ID, "message")
    # a line typed every 50 ms: the box grows, and the log shrinks, while it scrolls smoothly
    ends = browser.execute_async_script("""
        var done = arguments[arguments.length - 1], log = document.getElementById("log");
        var box = document.getElementById("message"), lines = 0;
        function atEnd() { return log.scrollHeight - log.scrollTop - log.clientHeight < 2; }
        var before = atEnd(), height = log.clientHeight;
        var typing = setInterval(function () {
          box.value += (lines ? "\\n" : "") + "line " + lines;
          box.dispatchEvent(new Event("input", {bubbles: true}));
          if (++lines === 8) {
            clearInterval(typing);
            setTimeout(function () { done([before, height, log.clientHeight, atEnd()]); }, 1500);
          }
        }, 50);""")
    before, height_before, height_after, at_end = ends
    assert before and height_after < height_before, ends  # it showed its end, and the box grew over it
    assert at_end, ends
    assert box.get_attribute("value").count("\n") == 7


def test_the_token_is_sent_when_restoring_and_chatting(browser, serve):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = serve(API_TOKEN="s3cret")
    open_fresh(browser, url)  # no token saved: the restore is refused, and the page says so
    error = WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))[-1]
    assert "Could not restore the conversation: This server needs an API token" in error.text
    assert "localStorage key legacy-assistant-token" in error.text
    browser.execute_script("localStorage.setItem('legacy-assistant-token', 'wrong')")
    browser.find_element(By.ID, "message").send_keys("hello")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.error")) == 2)
    assert "needs an API token" in browser.find_elements(By.CSS_SELECTOR, "#log .msg.error")[-1].text
    ready(browser)
    assert browser.find_element(By.ID, "message").get_attribute("value") == "hello"  # given back
    browser.find_element(By.ID, "message").clear()

    browser.execute_script("localStorage.setItem('legacy-assistant-token', 's3cret')")
    # not send(): the restore failed, so the answered turn brings the stored turns in, in place
    # of the log and its two errors (the log shrinks, where send() waits for it to grow)
    browser.find_element(By.ID, "message").send_keys("hello")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: [row[:2] for row in conversation(b)][:1] == [("user", "hello")]
        and [row[0] for row in conversation(b)] == ["user", "bot"])
    ready(browser)
    browser.refresh()
    ready(browser)
    assert [row[:2] for row in conversation(browser)][0] == ("user", "hello")
    assert all(row[0] != "error" for row in conversation(browser))

    # a saved token no header can carry is named as such, not as a network error, and the
    # message that could not go out is given back
    browser.execute_script("localStorage.setItem('legacy-assistant-token', 's3cret\u2603')")
    browser.refresh()
    error = WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))[-1]
    assert "characters a browser cannot send in a header" in error.text
    ready(browser)
    browser.find_element(By.ID, "message").send_keys("are you there?")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.error")) == 2)
    ready(browser)
    assert browser.find_element(By.ID, "message").get_attribute("value") == "are you there?"
    browser.execute_script("localStorage.removeItem('legacy-assistant-token')")


@pytest.mark.parametrize("token", ["s3c\nret", "s3c\rret", "s3c\u0000ret", "\ns3cret"])
def test_a_saved_token_with_a_line_break_or_nul_inside_is_named_not_a_network_error(browser, serve, token):
    """fetch refuses a header with a NUL or a line break inside as it refuses one past Latin-1:
    such a token is named, and the message that could not go out is given back, where it was
    taken for a network error (the message kept out of the box, its fate called unknown)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url = serve(API_TOKEN="s3cret")
    open_fresh(browser, url)
    browser.execute_script("localStorage.setItem('legacy-assistant-token', arguments[0])", token)
    browser.refresh()
    error = WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))[-1]
    assert "characters a browser cannot send in a header" in error.text, error.text
    ready(browser)
    browser.find_element(By.ID, "message").send_keys("are you there?")
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.error")) == 2)
    ready(browser)
    assert "characters a browser cannot send in a header" in browser.find_elements(
        By.CSS_SELECTOR, "#log .msg.error")[-1].text
    assert browser.find_element(By.ID, "message").get_attribute("value") == "are you there?"
    browser.execute_script("localStorage.removeItem('legacy-assistant-token')")


def test_a_saved_token_with_a_line_break_at_its_end_is_sent(browser, serve):
    """A token copied with its line break is one fetch can send (it drops the break): it is sent."""
    from selenium.webdriver.common.by import By

    url = serve(API_TOKEN="s3cret")
    open_fresh(browser, url)
    browser.execute_script("localStorage.setItem('legacy-assistant-token', 's3cret\\r\\n')")
    browser.refresh()
    ready(browser)
    assert send(browser, "hello").get_attribute("class").split() == ["msg", "bot"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#log .msg.error")
    browser.execute_script("localStorage.removeItem('legacy-assistant-token')")


class _Page(HTMLParser):
    """The attributes of the page's elements that have an id, and its options."""

    def __init__(self):
        super().__init__()
        self.by_id, self.options = {}, []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.by_id[attributes["id"]] = attributes
        if tag == "option":
            self.options.append(attributes)


def rendered(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = _Page()
    page.feed(response.get_data(as_text=True))
    return page


def test_the_page_carries_the_servers_text_cap(make_client):
    for cap in (321, 1000):
        assert rendered(make_client(MAX_TEXT_LENGTH=cap)).by_id["message"]["data-max-chars"] == str(cap)


def test_the_log_carries_the_turns_the_store_keeps_and_the_playgrounds_started_over_note(default_predictor):
    """What the page needs to tell a conversation the server no longer holds from one whose
    oldest turns it dropped to keep its number, and the words it says that with."""
    from legacy_assistant.serving.dialogue import STARTED_OVER
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    for kept in (3, 50):
        policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
        assistant = Assistant(default_predictor, policy, MemoryStore(max_turns=kept))
        log = rendered(create_app({"TESTING": True}, assistant=assistant).test_client()).by_id["log"]
        assert log["data-kept-turns"] == str(kept)
        assert log["data-started-over"] == STARTED_OVER


def test_without_its_script_the_page_sends_nothing_and_says_why(client):
    """Without JavaScript (off, or the script blocked) Send submitted the form as a GET: the page
    reloaded empty, and the message went into the URL. Send waits for the script to enable it."""
    page = rendered(client)
    assert "disabled" in page.by_id["send"]
    assert "This chat needs JavaScript" in client.get("/").get_data(as_text=True).split("<noscript>")[1]


def test_no_emotion_selector_without_a_responder(client):
    page = rendered(client)
    assert "emotion" not in page.by_id and page.options == []
    assert "strength" not in page.by_id
    assert "message" in page.by_id


def test_no_emotion_selector_or_generation_tagline_when_the_fallback_is_canned(make_talking_client):
    for fallback, shown in (("canned", False), ("generate", True)):
        client = make_talking_client(fallback=fallback)
        page = rendered(client)
        assert ("emotion" in page.by_id, "strength" in page.by_id) == (shown, shown)
        assert ("a generative model writes the reply" in client.get("/").get_data(as_text=True)) is shown


def test_the_emotion_selector_lists_the_responders_conditions(responder_assistant):
    from legacy_assistant.web import create_app

    page = rendered(create_app({"TESTING": True}, assistant=responder_assistant).test_client())
    assert "emotion" in page.by_id
    assert [o["value"] for o in page.options] == list(responder_assistant.emotions)
    assert [o["value"] for o in page.options if "selected" in o] == [responder_assistant.responder.default_condition]


def test_the_strength_slider_starts_at_the_servers_strength(responder_assistant, monkeypatch):
    from legacy_assistant.web import create_app

    page = rendered(create_app({"TESTING": True}, assistant=responder_assistant).test_client())
    slider = page.by_id["strength"]
    assert (slider["type"], slider["min"], slider["max"], slider["value"]) == ("range", "0", "10", "0")
    monkeypatch.setattr(responder_assistant.responder, "options",
                        type(responder_assistant.responder.options)(condition_strength=2.5))
    assert rendered(create_app({"TESTING": True}, assistant=responder_assistant).test_client()).by_id[
        "strength"]["value"] == "2.5"
    # exported before guidance (the responder reads whether its model is guided once, at load)
    monkeypatch.setattr(responder_assistant.responder, "_guided", False)
    page = rendered(create_app({"TESTING": True}, assistant=responder_assistant).test_client())
    assert "strength" not in page.by_id and "emotion" in page.by_id


def test_the_log_says_loading_not_no_messages_while_the_conversation_loads(browser, live_url):
    """On a slow network the stored turns took seconds to come, and the log said "No messages
    yet. Say hello to start." meanwhile, though Enter sent nothing until they came."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    held = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "GET") return original.apply(this, arguments);
          var self = this, args = arguments;
          return new Promise(function (resolve) { window.releaseRestore = resolve; })
            .then(function () { return original.apply(self, args); });
        };"""})
    placeholder = "return getComputedStyle(document.getElementById('log'), '::before').content"
    try:
        browser.refresh()
        WebDriverWait(browser, 10).until(lambda b: b.execute_script("return !!window.releaseRestore"))
        assert browser.find_element(By.ID, "send").text == "Loading\u2026"
        assert browser.execute_script(placeholder) == '"Loading the conversation\u2026"'
        browser.execute_script("window.releaseRestore()")
        ready(browser)
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": held["identifier"]})
    assert [kind for kind, _, _ in conversation(browser)] == ["user", "bot"]
    start_new_conversation(browser)
    assert browser.execute_script(placeholder) == '"No messages yet. Say hello to start."'


def test_a_message_given_back_is_counted_near_the_cap(browser, live_url):
    """A refused message near the cap came back to the box with the hint reading "At most 600
    characters." instead of its count, until a key was pressed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    browser.execute_script("""
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          return Promise.resolve(new Response('{"error": {"code": "overloaded", "message": "busy, try later"}}',
                                              {status: 503, headers: {"Content-Type": "application/json"}}));
        };""")
    box, hint = browser.find_element(By.ID, "message"), browser.find_element(By.ID, "message-limit")
    box.send_keys("z" * (TEXT_CAP - 10))
    assert hint.text == f"{TEXT_CAP - 10} of {TEXT_CAP} characters."
    box.send_keys(Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    assert box.get_attribute("value") == "z" * (TEXT_CAP - 10)
    assert hint.text == f"{TEXT_CAP - 10} of {TEXT_CAP} characters."
    browser.refresh()  # the page's own fetch again, for the tests after this one
    ready(browser)


def test_the_strength_is_said_once_by_the_slider_not_again_by_a_live_region(browser, live_url):
    """The number beside the slider was an <output>, a live region of its own: each step of
    the slider was announced twice, once as the slider's value and once as the region's news."""
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    shown = browser.find_element(By.ID, "strength-value")
    assert shown.text == "0"
    node = browser.execute_cdp_cmd("DOM.describeNode", {"objectId": browser.execute_cdp_cmd(
        "Runtime.evaluate", {"expression": "document.getElementById('strength-value')"})["result"]["objectId"]})
    tree = browser.execute_cdp_cmd("Accessibility.getPartialAXTree",
                                   {"backendNodeId": node["node"]["backendNodeId"], "fetchRelatives": False})
    live = {prop["value"]["value"] for n in tree["nodes"] for prop in n.get("properties", []) if prop["name"] == "live"}
    assert live <= {"off"}, live
    slider = browser.find_element(By.ID, "strength")
    assert slider.get_attribute("aria-valuetext") == "0"  # what the slider says for itself


def test_the_on_screen_keyboards_enter_key_says_it_sends(browser, live_url):
    """Enter sends, but a phone's keyboard showed its return key, which starts a new line
    elsewhere: a half-written message went out. The key is labelled as sending."""
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    assert browser.find_element(By.ID, "message").get_property("enterKeyHint") == "send"


def test_the_box_fits_its_lines_again_when_its_width_changes(open_browser, live_url):
    """The box fitted its lines only as they were typed: a window made narrower (a phone turned)
    left it too short, scrolling inside. Send's label while a reply was on its way ("Sending…")
    was wider than "Send": the box beside it narrowed and widened again, its lines jumping;
    Send now keeps the width of its widest label."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = open_browser()
    browser.set_window_size(1000, 900)
    open_fresh(browser, live_url)
    box = browser.find_element(By.ID, "message")
    height = "return arguments[0].getBoundingClientRect().height"
    one_line = browser.execute_script(height, box)
    browser.execute_script("arguments[0].value = 'word '.repeat(25).trim();"
                           "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));", box)
    wide = browser.execute_script(height, box)
    # the page hears of a new width at its next frame (the resize event), after innerWidth says it
    browser.set_window_size(360, 900)
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return innerWidth") <= 360
                                    and b.execute_script(height, box) > wide)
    assert browser.execute_script("return arguments[0].scrollHeight <= arguments[0].clientHeight", box)  # no scrolling
    browser.set_window_size(1000, 900)
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return innerWidth") > 900
                                    and b.execute_script(height, box) == wide)

    browser.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                           box)
    delay_chats(browser)
    send_button = browser.find_element(By.ID, "send")
    geometry = ("return [arguments[0].getBoundingClientRect().width, arguments[1].getBoundingClientRect().width,"
                " arguments[1].getBoundingClientRect().height]")
    at_rest = browser.execute_script(geometry, send_button, box)
    box.send_keys("hello\n")
    assert send_button.text == "Sending\u2026"
    # typed meanwhile: just enough short words to fill one line; the label changing back to "Send"
    # moves none of them to another line
    filled = browser.execute_script("""
        var box = arguments[0], n = 1;
        function type() { box.value = "a ".repeat(n).trim(); box.dispatchEvent(new Event("input", {bubbles: true})); }
        for (type(); box.getBoundingClientRect().height === arguments[1]; type()) n++;
        n--; type();
        return box.value;""", box, one_line)
    assert browser.execute_script(geometry, send_button, box) == at_rest  # nothing moved
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.chatsAnswered") == 1)
    ready(browser)
    assert send_button.text == "Send" and box.get_attribute("value") == filled
    assert browser.execute_script(geometry, send_button, box) == at_rest
    # as wide while the conversation loads ("Loading…")
    browser.execute_script("arguments[0].textContent = 'Loading\u2026'", send_button)
    assert browser.execute_script(geometry, send_button, box)[:2] == at_rest[:2]
    browser.execute_script("arguments[0].textContent = 'Send'", send_button)


def test_a_right_to_left_message_keeps_its_label_in_the_pages_direction(browser, live_url):
    """The speaker's label ("You", "Assistant") is in the page's direction, at its start, on a
    line of its own; the message's text takes its direction from its first strong character."""
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    hebrew = "\u05e9\u05dc\u05d5\u05dd, \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da?"
    send(browser, hebrew)
    mine = browser.find_elements(By.CSS_SELECTOR, "#log .msg.user")[-1]
    laid_out = browser.execute_script("""
        var msg = arguments[0], label = msg.querySelector(".speaker"), text = msg.querySelector(".text");
        var line = document.createRange();
        line.selectNodeContents(text);
        var box = msg.getBoundingClientRect(), style = getComputedStyle(msg);
        var start = box.left + parseFloat(style.borderLeftWidth) + parseFloat(style.paddingLeft);
        var end = box.right - parseFloat(style.borderRightWidth) - parseFloat(style.paddingRight);
        return {label: label.textContent, labelDir: getComputedStyle(label).direction, labelDirAttr: label.dir,
                textDir: getComputedStyle(text).direction, textDirAttr: text.dir,
                labelAtStart: Math.abs(label.getClientRects()[0].left - start) < 1,
                textAtEnd: Math.abs(line.getBoundingClientRect().right - end) < 1,
                labelAbove: label.getBoundingClientRect().bottom <= line.getBoundingClientRect().top + 1};""", mine)
    assert laid_out == {"label": "You", "labelDir": "ltr", "labelDirAttr": "", "textDir": "rtl", "textDirAttr": "auto",
                        "labelAtStart": True, "textAtEnd": True, "labelAbove": True}, laid_out
    reply = browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot .speaker")[-1]
    assert reply.text == "Assistant"
    assert browser.execute_script("return getComputedStyle(arguments[0]).direction", reply) == "ltr"


def test_a_copied_transcript_keeps_the_speakers(browser, live_url):
    """The labels came from CSS (::before): a transcript selected and copied was the messages
    alone, with no saying who said what."""
    open_fresh(browser, live_url)
    send(browser, "hello")
    copied = browser.execute_script(
        "var selection = getSelection(); selection.selectAllChildren(document.getElementById('log'));"
        "var text = selection.toString(); selection.removeAllRanges(); return text;")
    lines = [line for line in copied.splitlines() if line.strip()]
    assert lines[:3] == ["You", "hello", "Assistant"], copied
    assert len(lines) == 4, copied


def test_a_dropped_connection_neither_doubles_nor_loses_a_message(browser, live_url):
    """A network error gave the message back to be sent again, though the connection may have
    dropped after the server had stored the turn: sent again, it was stored twice. The page now
    reads the conversation again and shows what the server has."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def until(condition):  # the log is filled anew meanwhile
        WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(condition)

    open_fresh(browser, live_url)
    send(browser, "hello")
    sender = saved_sender(browser)
    browser.execute_script("""
        var original = window.fetch;
        window.drop = null; // "after": the server gets the message, its answer is lost; "before": it never gets it
        window.failGets = false;
        window.fetch = function (url, options) {
          var lost = new TypeError("Failed to fetch");
          if (options && options.method === "GET" && window.failGets) return Promise.reject(lost);
          if (!options || options.method !== "POST" || !window.drop) return original.apply(this, arguments);
          var how = window.drop;
          window.drop = null;
          if (how === "before") return Promise.reject(new TypeError("Failed to fetch"));
          return original.apply(this, arguments).then(function () { throw new TypeError("Failed to fetch"); });
        };""")
    status = browser.find_element(By.ID, "status")
    box = browser.find_element(By.ID, "message")

    browser.execute_script("window.drop = 'after'")
    box.send_keys("I'd like to order a coffee", Keys.ENTER)
    until(lambda b: [row[0] for row in conversation(b)] == ["user", "bot"] * 2)
    ready(browser)
    assert [text for kind, text, _ in conversation(browser) if kind == "user"] == [
        "hello", "I'd like to order a coffee"]
    assert box.get_attribute("value") == ""  # not offered to be sent again
    assert [turn["message"] for turn in stored_turns(live_url, sender)] == ["hello", "I'd like to order a coffee"]
    WebDriverWait(browser, 5).until(lambda _: status.get_attribute("textContent") ==
                                    "The connection failed after the server got the message: its reply is shown.")

    browser.execute_script("window.drop = 'before'")
    box.send_keys("a large one", Keys.ENTER)
    until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    assert [row[:2] for row in conversation(browser)][-2:] == [
        ("user", "a large one"),
        ("error", "Network error: the message did not reach the server. It is back in the message box, to send again.")]
    unsent = browser.find_elements(By.CSS_SELECTOR, "#log .msg.user.unsent")
    assert [m.find_element(By.CSS_SELECTOR, ".note").text for m in unsent] == ["Not sent"]
    assert box.get_attribute("value") == "a large one"
    assert len(stored_turns(live_url, sender)) == 2
    box.send_keys(Keys.ENTER)  # sent again: stored once
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 3)
    ready(browser)
    assert [turn["message"] for turn in stored_turns(live_url, sender)] == [
        "hello", "I'd like to order a coffee", "a large one"]
    browser.refresh()
    ready(browser)
    assert [row[0] for row in conversation(browser)] == ["user", "bot"] * 3  # no longer marked
    assert not browser.find_elements(By.CSS_SELECTOR, "#log .unsent")
    status, box = browser.find_element(By.ID, "status"), browser.find_element(By.ID, "message")  # the page's anew

    # the conversation cannot be read either: nothing is offered again until it can, and the
    # next reply shows the message as the server has it (here: not at all)
    browser.execute_script("""
        var original = window.fetch;
        window.drop = "before";
        window.failGets = true;
        window.fetch = function (url, options) {
          var lost = new TypeError("Failed to fetch");
          if (options && options.method === "GET" && window.failGets) return Promise.reject(lost);
          if (!options || options.method !== "POST" || !window.drop) return original.apply(this, arguments);
          window.drop = null;
          return Promise.reject(new TypeError("Failed to fetch"));
        };""")
    box.send_keys("with oat milk", Keys.ENTER)
    until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    assert conversation(browser)[-1][1].startswith("Network error: could not reach the server, so whether it got the "
                                                   "message is not known yet.")
    assert box.get_attribute("value") == ""
    browser.execute_script("window.failGets = false")
    box.send_keys("thanks", Keys.ENTER)  # not send(): the log is filled anew, its error gone, once answered
    until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.user.unsent")
          and len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 4)
    ready(browser)
    assert [row[:2] for row in conversation(browser)][-3:] == [
        ("user", "with oat milk"), ("user", "thanks"), ("bot", conversation(browser)[-1][1])]
    assert box.get_attribute("value") == "with oat milk"  # back in the box, the box being empty
    assert [turn["message"] for turn in stored_turns(live_url, sender)][-1:] == ["thanks"]
    WebDriverWait(browser, 5).until(lambda _: status.get_attribute("textContent") ==
                                    "A message you sent did not reach the server: it is marked not sent, "
                                    "and back in the message box.")


def test_a_message_the_server_stores_after_the_page_looked_is_not_stored_twice(browser, live_url):
    """The connection failed and the page read the conversation again before the server stored
    the message: marked not sent and back in the box, it was stored a second time when sent
    again. Each message now goes with an id of its own, and a copy sent again keeps it: the
    server answers it with the stored turn."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    browser.execute_script("""
        var original = window.fetch;
        window.sent = []; // the chat requests' bodies
        window.late = false; // the next chat request fails at once, and reaches the server later
        window.lateAnswered = false;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          window.sent.push(JSON.parse(options.body));
          if (!window.late) return original.apply(this, arguments);
          window.late = false;
          var self = this, args = [url, { method: "POST", headers: options.headers, body: options.body }];
          window.setTimeout(function () {
            original.apply(self, args).then(function () { window.lateAnswered = true; });
          }, 1500);
          return Promise.reject(new TypeError("Failed to fetch"));
        };""")
    send(browser, "hello")
    send(browser, "hello")
    sender = saved_sender(browser)
    box = browser.find_element(By.ID, "message")
    browser.execute_script("window.late = true")
    box.send_keys("I'd like to order a coffee", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.user.unsent"))
    ready(browser)
    assert box.get_attribute("value") == "I'd like to order a coffee"  # the server had not got it when looked
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.lateAnswered"))
    assert [turn["message"] for turn in stored_turns(live_url, sender)][-1] == "I'd like to order a coffee"
    box.send_keys(Keys.ENTER)  # sent again, as the page offers
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 3)
    ready(browser)
    assert [turn["message"] for turn in stored_turns(live_url, sender)] == [
        "hello", "hello", "I'd like to order a coffee"]
    ids = [body.get("message_id") for body in browser.execute_script("return window.sent")]
    assert len(ids) == 4 and all(re.fullmatch(r"[0-9a-f]{32}", str(i)) for i in ids), ids
    assert ids[0] != ids[1] != ids[2]  # a new id per message, the same text too
    assert ids[3] == ids[2]  # the copy sent again keeps its id
    assert [row[:2] for row in conversation(browser)][-2:] == [
        ("user", "I'd like to order a coffee"), ("bot", stored_turns(live_url, sender)[-1]["reply"])]


def test_a_message_on_its_way_keeps_no_more_turns_than_the_server_does(browser, serve, default_predictor):
    """Each message sent kept a copy of every turn the log showed, written to the tab's storage
    with it: in a long conversation that grew at every message, and past the turns the server
    keeps, which are all a transcript is compared with. It keeps those latest turns now."""
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore

    policy = DialoguePolicy.from_manifest(default_predictor.manifest, seed=0)
    url = serve(assistant=Assistant(default_predictor, policy, MemoryStore(max_turns=3)))
    open_fresh(browser, url)
    for n in range(5):
        send(browser, f"hello {n}")
    delay_chats(browser)
    browser.find_element(By.ID, "message").send_keys("when do you open?", Keys.ENTER)
    saved = json.loads(browser.execute_script("return sessionStorage.getItem('legacy-assistant-unsure')"))
    assert [turn["message"] for turn in saved["entries"][-1]["base"]] == ["hello 2", "hello 3", "hello 4"]
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.chatsAnswered") == 1)
    ready(browser)
    # the conversation goes on as before: every turn shown, none said to be forgotten
    assert [row[:2] for row in conversation(browser)][::2] == [("user", f"hello {n}") for n in range(5)] + [
        ("user", "when do you open?")]
    assert "notice" not in [kind for kind, _, _ in conversation(browser)]


def test_a_message_given_up_on_that_never_reached_the_server_stays_as_not_sent(browser, live_url):
    """A message that got no answer in time and never reached the server vanished at the next
    reload (the page itself says to reload and see): the log showed the server's turns only."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    browser.execute_script("""
        document.getElementById("chat-form").setAttribute("data-timeout-ms", "300");
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          return new Promise(function (resolve, reject) {
            options.signal.addEventListener("abort", function () {
              reject(new DOMException("aborted", "AbortError"));
            });
          });
        };""")
    box = browser.find_element(By.ID, "message")
    box.send_keys("with oat milk", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    assert box.get_attribute("value") == ""  # the server may have it yet

    browser.refresh()
    ready(browser)
    box = browser.find_element(By.ID, "message")
    assert [row[:2] for row in conversation(browser)][::2] == [("user", "hello"), ("user", "with oat milk")]
    unsent = browser.find_element(By.CSS_SELECTOR, "#log .msg.user.unsent")
    assert unsent.find_element(By.CSS_SELECTOR, ".text").text == "with oat milk"
    assert unsent.find_element(By.CSS_SELECTOR, ".note").text == "Not sent"
    assert box.get_attribute("value") == "with oat milk"
    WebDriverWait(browser, 5).until(lambda b: b.find_element(By.ID, "status").get_attribute("textContent") ==
                                    "A message you sent did not reach the server: it is marked not sent, "
                                    "and back in the message box.")
    box.clear()
    browser.refresh()  # still marked; not put back in the box a second time
    ready(browser)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.user.unsent")) == 1
    assert browser.find_element(By.ID, "message").get_attribute("value") == ""


def test_the_placeholder_is_not_cut_off_on_a_narrow_screen(open_browser, live_url):
    """Below about 290 pixels the placeholder takes two lines; browsers that leave it out of an
    empty box's scrollHeight kept the box one line high, and its second line was cut off."""
    from selenium.webdriver.common.by import By

    browser = open_browser()
    browser.set_window_size(250, 800)
    open_fresh(browser, live_url)
    box = browser.find_element(By.ID, "message")
    heights = browser.execute_script("""
        var box = arguments[0], real = Object.getOwnPropertyDescriptor(Element.prototype, "scrollHeight").get;
        // as those browsers count: an empty box's lines without the placeholder's
        Object.defineProperty(box, "scrollHeight", {configurable: true, get: function () {
          if (this.value) return real.call(this);
          var shown = this.placeholder;
          this.placeholder = "";
          var height = real.call(this);
          this.placeholder = shown;
          return height;
        }});
        box.value = "x";
        box.dispatchEvent(new Event("input", {bubbles: true}));
        box.value = "";
        box.dispatchEvent(new Event("input", {bubbles: true}));
        var heights = [box.clientHeight, real.call(box), parseFloat(getComputedStyle(box).lineHeight)];
        delete box.scrollHeight;
        return heights;""", box)
    shown, needed, line = heights
    assert needed >= 2 * line, heights  # two lines at this width
    assert shown >= needed, heights
    sizer = browser.find_elements(By.CSS_SELECTOR, "textarea.sizer")
    assert len(sizer) == 1 and not sizer[0].is_displayed()  # the measuring copy is never seen
    assert browser.execute_script("return arguments[0].getAttribute('aria-hidden')", sizer[0]) == "true"


def test_a_new_conversation_is_asked_for_and_a_no_keeps_this_one(browser, live_url):
    """"New conversation" deleted the stored conversation at once, without a question."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    first = saved_sender(browser)
    browser.find_element(By.ID, "new-conversation").click()  # nothing to lose: nothing asked
    assert not expected_conditions.alert_is_present()(browser)
    assert saved_sender(browser) != first

    send(browser, "hello")
    kept = saved_sender(browser)
    shown = conversation(browser)
    button = browser.find_element(By.ID, "new-conversation")
    browser.execute_script("arguments[0].focus()", button)
    browser.switch_to.active_element.send_keys(Keys.ENTER)  # from the keyboard
    question = WebDriverWait(browser, 5).until(expected_conditions.alert_is_present())
    assert question.text == ("Start a new conversation? This one is deleted from the server and cannot be "
                             "shown again.")
    question.dismiss()
    assert saved_sender(browser) == kept and conversation(browser) == shown
    assert len(stored_turns(live_url, kept)) == 1
    assert browser.execute_script("return document.activeElement.id") == "new-conversation"

    browser.switch_to.active_element.send_keys(Keys.SPACE)
    WebDriverWait(browser, 5).until(expected_conditions.alert_is_present()).accept()
    assert saved_sender(browser) != kept and conversation(browser) == []
    assert browser.execute_script("return document.activeElement.id") == "message"
    WebDriverWait(browser, 10).until(lambda _: stored_turns(live_url, kept) == [])


def test_a_printed_conversation_holds_every_message_and_no_controls(browser, live_url):
    """On paper the log is not a scroll box: a long conversation was cut to the box's height,
    and the settings and the message box were printed under it."""
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    send(browser, "hello")
    browser.execute_script("""
        var log = document.getElementById("log");
        for (var i = 0; i < 60; i++) log.appendChild(log.firstElementChild.cloneNode(true));""")
    # a browser in dark mode prints too, on white paper and (by default) without backgrounds
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"media": "print", "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        log = browser.find_element(By.ID, "log")
        assert browser.execute_script("return arguments[0].scrollHeight - arguments[0].clientHeight", log) <= 1
        assert not browser.find_element(By.ID, "chat-form").is_displayed()
        assert not browser.find_element(By.ID, "new-conversation").is_displayed()
        for selector in ("#log .msg.user .text", "#log .msg.bot .speaker"):
            color = browser.find_element(By.CSS_SELECTOR, selector).value_of_css_property("color")
            assert max(int(c) for c in re.findall(r"\d+", color)[:3]) < 128, (selector, color)  # dark ink
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})


def test_a_refusal_without_the_servers_words_says_what_it_means(browser, live_url):
    """A proxy's 413, 429 or 502 to 504 carries no message of the server's: the page said only
    "an unexpected response", where the user can act on what the status means."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    for status, words in [(413, "too large"), (429, "Too many messages"), (503, "unavailable")]:
        browser.execute_script("""
            var status = arguments[0];
            window.fetch = function () {
              return Promise.resolve(new Response("<html>refused</html>", {status: status}));
            };""", status)
        errors = len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
        box = browser.find_element(By.ID, "message")
        box.clear()
        box.send_keys("hello")
        browser.find_element(By.ID, "send").click()
        WebDriverWait(browser, 15).until(
            lambda b, errors=errors: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.error")) > errors)
        ready(browser)
        text = browser.find_elements(By.CSS_SELECTOR, "#log .msg.error .text")[-1].text
        assert words in text and f"HTTP {status}" in text, text
        assert box.get_attribute("value") == "hello"  # back, to send again


def test_a_message_on_its_way_at_a_reload_is_not_lost_without_a_word(browser, live_url):
    """Reloaded before its reply came, the page showed the conversation without the message
    and dropped its text: the user could not tell it had not been answered."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    delay_chats(browser)  # still on the page when the reload comes
    browser.find_element(By.ID, "message").send_keys("I'd like to order a coffee", Keys.ENTER)
    browser.refresh()
    ready(browser)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.unsent"))
    assert [row[:2] for row in conversation(browser)][2:] == [("user", "I'd like to order a coffee")]
    assert browser.find_element(By.ID, "message").get_attribute("value") == "I'd like to order a coffee"


def block_storage(browser):
    """Every page the browser opens from now on finds localStorage blocked, as in private mode."""
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
        Object.defineProperty(window, "localStorage", {get: function () {
          throw new DOMException("blocked", "SecurityError");
        }});"""})


def test_a_browser_that_keeps_no_storage_is_told_a_reload_starts_afresh(open_browser, live_url):
    """Without localStorage (blocked, or full) the conversation's id is kept nowhere: a reload
    showed an empty log without a word of why."""
    from selenium.webdriver.common.by import By

    browser = open_browser()
    block_storage(browser)
    browser.get(live_url)
    ready(browser)
    note = browser.find_element(By.ID, "storage-notice")
    assert note.is_displayed() and "reloading it starts a new conversation" in note.text
    assert "storage-notice" in browser.find_element(By.ID, "message").get_attribute("aria-describedby")
    send(browser, "hello")  # the page still talks


def test_a_browser_that_keeps_storage_shows_no_storage_notice(browser, live_url):
    from selenium.webdriver.common.by import By

    open_fresh(browser, live_url)
    assert not browser.find_element(By.ID, "storage-notice").is_displayed()


def test_a_slow_reply_is_said_to_be_still_on_its_way(browser, live_url):
    """A reply long in coming changed nothing but the Send button's label, which no screen
    reader says unasked: the wait is announced once, and the box still takes typing."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    browser.execute_script("""
        var form = document.getElementById("chat-form");
        form.setAttribute("data-slow-ms", "200");
        form.setAttribute("data-timeout-ms", "3000");
        window.fetch = function (url, options) {
          return new Promise(function (resolve, reject) {
            options.signal.addEventListener("abort", function () {
              reject(new DOMException("aborted", "AbortError"));
            });
          });
        };""")
    box = browser.find_element(By.ID, "message")
    box.send_keys("hello", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "status").get_attribute("textContent")
                                     .startswith("Still waiting for the reply"))
    assert browser.switch_to.active_element == box
    ready(browser)  # given up on at the time limit


def _contrast(foreground, background):
    def luminance(rgb):
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in rgb)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_sending_label_is_legible_while_a_reply_is_on_its_way(browser, live_url, scheme):
    """"Sending…" on the busy Send button is the only visible word that a reply is coming: dimmed
    to 60 %, it read at 2.9:1 in the light scheme (WCAG AA asks 4.5:1 of text this size)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                            {"media": "", "features": [{"name": "prefers-color-scheme", "value": scheme}]})
    try:
        open_fresh(browser, live_url)
        delay_chats(browser)
        browser.find_element(By.ID, "message").send_keys("hello", Keys.ENTER)
        WebDriverWait(browser, 5).until(lambda b: b.execute_script(  # its colours' transition over
            "return document.getElementById('send').getAnimations().length === 0"))
        # the label and its ground as seen: the button's colours over the page's, at its opacity
        seen = browser.execute_script("""
            var send = document.getElementById("send"), style = getComputedStyle(send);
            var parse = function (c) { return (c.match(/[\\d.]+/g) || []).map(Number); };
            var page = parse(getComputedStyle(document.body).backgroundColor);
            var over = function (colour, under, alpha) {
              var a = (colour.length > 3 ? colour[3] : 1) * alpha;
              return [0, 1, 2].map(function (i) { return colour[i] * a + under[i] * (1 - a); });
            };
            var ground = over(parse(style.backgroundColor), page, 1);
            var opacity = parseFloat(style.opacity);
            return [send.textContent, send.disabled, over(over(parse(style.color), ground, 1), page, opacity),
                    over(ground, page, opacity)];""")
        label, disabled, ink, ground = seen
        assert label == "Sending\u2026" and disabled
        assert _contrast(ink, ground) >= 4.5, seen
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "", "features": []})
        ready(browser)


def test_a_message_on_its_way_at_a_reload_that_the_server_answers_later_shows_once(browser, live_url):
    """Reloaded while the server was still working on a message, the page marked it not sent
    (the server had not stored it yet) and put it back in the box; sent again, the server
    answered it with its stored turn, and the log showed it twice: "Not sent" and answered."""
    import json
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    sender = saved_sender(browser)
    browser.execute_script("""
        window.sent = [];
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          window.sent.push(options.body);
          return new Promise(function () {}); // still being answered at the reload
        };""")
    browser.find_element(By.ID, "message").send_keys("I'd like to order a coffee", Keys.ENTER)
    body = browser.execute_script("return window.sent[0]")
    browser.refresh()
    ready(browser)
    box = browser.find_element(By.ID, "message")
    assert box.get_attribute("value") == "I'd like to order a coffee"  # the server had not stored it when looked
    request = urllib.request.Request(live_url + "api/v1/chat", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:  # the server answers it now, as a slow one would
        assert json.load(answer)["replayed"] is False
    box.send_keys(Keys.ENTER)  # sent again, as the page offers
    WebDriverWait(browser, 15).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 2)
    ready(browser)
    turns = stored_turns(live_url, sender)
    assert [turn["message"] for turn in turns] == ["hello", "I'd like to order a coffee"]
    WebDriverWait(browser, 5).until(lambda b: not b.find_elements(By.CSS_SELECTOR, "#log .msg.unsent"))
    coffee = "I'd like to order a coffee"
    assert [row[:2] for row in conversation(browser)] == [
        ("user", "hello"), ("bot", turns[0]["reply"]), ("user", coffee), ("bot", turns[1]["reply"])]


def test_a_proxys_timeout_keeps_the_message_for_the_reload_it_advises(browser, live_url):
    """A proxy's 504 says to reload and see whether the server got the message: the page had put
    the message back in the box only, and the reload showed neither it nor a word of it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    browser.execute_script("""
        var original = window.fetch;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST") return original.apply(this, arguments);
          return Promise.resolve(new Response("<html>Gateway Timeout</html>", {status: 504}));
        };""")
    box = browser.find_element(By.ID, "message")
    box.send_keys("with oat milk", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    assert "reload the page" in browser.find_elements(By.CSS_SELECTOR, "#log .msg.error .text")[-1].text
    browser.refresh()
    ready(browser)
    assert [row[:2] for row in conversation(browser)][::2] == [("user", "hello"), ("user", "with oat milk")]
    unsent = browser.find_element(By.CSS_SELECTOR, "#log .msg.user.unsent")
    assert unsent.find_element(By.CSS_SELECTOR, ".text").text == "with oat milk"
    assert browser.find_element(By.ID, "message").get_attribute("value") == "with oat milk"


def test_a_message_marked_not_sent_that_the_server_stores_later_shows_as_answered(browser, live_url):
    """A message given up on (the server slower than the page's timeout) and marked not sent,
    because the server had not stored it yet when the page looked, kept its "Not sent" after the
    server had stored and answered it, until the page was reloaded."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    send(browser, "hello")
    sender = saved_sender(browser)
    _next_message_late(browser, 2000)  # the page gives up before it reaches the server
    box = browser.find_element(By.ID, "message")
    box.send_keys("I'd like to order a coffee", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    box.send_keys("thanks", Keys.ENTER)  # not send(): the log is read again, the server not having the message yet
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.user.unsent")
        and len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 2)
    ready(browser)
    assert box.get_attribute("value") == "I'd like to order a coffee"
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.lateAnswered"))
    box.clear()
    box.send_keys("bye", Keys.ENTER)  # not send(): the log is filled anew once it is answered
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: not b.find_elements(By.CSS_SELECTOR, "#log .msg.unsent")
        and len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot")) == 4)
    ready(browser)
    turns = stored_turns(live_url, sender)
    assert [turn["message"] for turn in turns] == ["hello", "thanks", "I'd like to order a coffee", "bye"]
    WebDriverWait(browser, 5, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: [row[:2] for row in conversation(b)] == [
            row for turn in turns for row in (("user", turn["message"]), ("bot", turn["reply"]))])


def test_a_conversation_the_server_no_longer_holds_is_said_where_it_ends(browser, live_url):
    """After a restart of a server whose store is in memory (or its conversation expired), the page
    went on showing the earlier turns as if the next reply followed them. As the playground does,
    a note now says where the turns the server no longer holds end: after the next reply, or when
    the page is shown again."""

    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from legacy_assistant.serving.dialogue import STARTED_OVER

    def forget(sender):  # as a restart does
        forget_on_server(live_url, sender)

    open_fresh(browser, live_url)
    send(browser, "I'd like to order a coffee")
    sender = saved_sender(browser)
    forget(sender)
    send(browser, "a large one")
    WebDriverWait(browser, 10).until(lambda b: len(conversation(b)) == 5)
    rows = conversation(browser)
    assert [row[:2] for row in rows][2] == ("notice", STARTED_OVER)
    assert [kind for kind, _, _ in rows] == ["user", "bot", "notice", "user", "bot"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.notice[role='note']")) == 1
    send(browser, "with oat milk")  # said once
    assert [kind for kind, _, _ in conversation(browser)] == ["user", "bot", "notice", "user", "bot", "user", "bot"]

    forget(sender)
    browser.execute_script("document.dispatchEvent(new Event('visibilitychange'))")  # the tab shown again
    WebDriverWait(browser, 10).until(lambda b: len(conversation(b)) == 8)
    assert conversation(browser)[-1][:2] == ("notice", STARTED_OVER)
    send(browser, "hello")
    assert [kind for kind, _, _ in conversation(browser)][-3:] == ["notice", "user", "bot"]

    # forgotten while a message is given up on (the server slower than the page's timeout): the
    # log, read again with the next reply, keeps what the server no longer holds above the note
    shown = conversation(browser)
    forget(sender)
    _next_message_late(browser, 1000)
    browser.find_element(By.ID, "message").send_keys("thanks", Keys.ENTER)
    WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return window.lateAnswered"))
    browser.execute_script('document.getElementById("chat-form").removeAttribute("data-timeout-ms")')
    ready(browser)
    browser.find_element(By.ID, "message").send_keys("bye", Keys.ENTER)  # not send(): the log is read again
    WebDriverWait(browser, 15, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: len(conversation(b)) == len(shown) + 5)
    ready(browser)
    turns = stored_turns(live_url, sender)
    assert [turn["message"] for turn in turns] == ["thanks", "bye"]
    assert conversation(browser) == shown + [("notice", STARTED_OVER, False)] + [
        row for turn in turns for row in (("user", turn["message"], False), ("bot", turn["reply"], turn["generated"]))]


def test_a_page_back_from_the_back_forward_cache_shows_what_the_server_holds_now(browser, live_url):
    """Brought back from the back-forward cache, the page showed the conversation as it was when
    left: not the turns another tab had answered meanwhile, not a conversation the server had
    forgotten, and it wrote on in the conversation left behind by another tab's new one."""
    import json
    import urllib.parse
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from legacy_assistant.serving.dialogue import STARTED_OVER

    def away_and_back(meanwhile):
        browser.execute_script("window.cached = true")
        browser.get(live_url + "health")
        meanwhile()
        browser.back()
        assert browser.execute_script("return window.cached === true")  # the same page, not loaded anew
        ready(browser)

    def answered_elsewhere():  # another tab's turn
        request = urllib.request.Request(live_url + "api/v1/chat", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"sender": sender, "message": "a large one"}).encode())
        urllib.request.urlopen(request).close()

    def forgotten():  # a restart of a server whose store is in memory
        forget_on_server(live_url, sender)

    open_fresh(browser, live_url)
    send(browser, "I'd like to order a coffee")
    sender = saved_sender(browser)
    away_and_back(answered_elsewhere)
    WebDriverWait(browser, 10).until(lambda b: [text for kind, text, _ in conversation(b) if kind == "user"] == [
        "I'd like to order a coffee", "a large one"])
    away_and_back(forgotten)
    WebDriverWait(browser, 10).until(lambda b: [row[:2] for row in conversation(b)][-1:] == [("notice", STARTED_OVER)])
    assert [kind for kind, _, _ in conversation(browser)] == ["user", "bot", "user", "bot", "notice"]
    status = browser.find_element(By.ID, "status")  # said: the log, refilled, was busy
    WebDriverWait(browser, 5).until(lambda _: status.get_attribute("textContent") == STARTED_OVER)

    other = "web-" + "0123456789abcdef" * 2
    away_and_back(lambda: browser.execute_script(f"localStorage.setItem('{SENDER_KEY}', '{other}')"))
    WebDriverWait(browser, 10).until(lambda b: conversation(b) == [])
    send(browser, "hello")
    assert [turn["message"] for turn in stored_turns(live_url, other)] == ["hello"]
    assert stored_turns(live_url, sender) == []


def _next_message_late(browser, delay_ms):
    """The page's next chat message reaches the server ``delay_ms`` late, after the page (its
    timeout set to 300 ms) has given up on it; ``window.lateAnswered`` turns true once the
    server has answered it."""
    browser.execute_script("""
        document.getElementById("chat-form").setAttribute("data-timeout-ms", "300");
        var original = window.fetch, delay = arguments[0];
        window.slow = true;
        window.lateAnswered = false;
        window.fetch = function (url, options) {
          if (!options || options.method !== "POST" || !window.slow) return original.apply(this, arguments);
          window.slow = false;
          var self = this, args = [url, { method: "POST", headers: options.headers, body: options.body }];
          window.setTimeout(function () {
            original.apply(self, args).then(function () { window.lateAnswered = true; });
          }, delay);
          return new Promise(function (resolve, reject) {
            options.signal.addEventListener("abort", function () { reject(new DOMException("aborted", "AbortError")); });
          });
        };""", delay_ms)


def forget_on_server(live_url, sender):
    """The server forgets ``sender``'s conversation (``DELETE``), as a restart of a server whose
    store is in memory loses it."""
    import urllib.parse
    import urllib.request

    url = live_url + "api/v1/conversations/" + urllib.parse.quote(sender, safe="")
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE")).close()


def test_the_turns_above_the_started_over_note_stay_when_the_log_is_read_again(browser, live_url):
    """Once the note said where the turns the server no longer holds end, the next time the log
    was filled anew (another tab's turn, a message found stored after all) emptied it: the turns
    above the note went, and the note with them."""

    from selenium.webdriver.support.ui import WebDriverWait

    from legacy_assistant.serving.dialogue import STARTED_OVER

    open_fresh(browser, live_url)
    send(browser, "I'd like to order a coffee")
    sender = saved_sender(browser)
    forget_on_server(live_url, sender)
    send(browser, "a large one")
    WebDriverWait(browser, 10).until(lambda b: len(conversation(b)) == 5)
    above = conversation(browser)[:3]
    assert above[2][:2] == ("notice", STARTED_OVER)
    another_tab_says_then_this_is_shown(browser, live_url, sender, "with oat milk")
    turns = stored_turns(live_url, sender)
    assert [turn["message"] for turn in turns] == ["a large one", "with oat milk"]
    assert conversation(browser) == above + [
        row for turn in turns for row in (("user", turn["message"], False), ("bot", turn["reply"], turn["generated"]))]


def test_turns_the_store_dropped_to_keep_its_number_stay_when_the_log_is_read_again(browser, live_url,
                                                                                      responder_assistant, monkeypatch):
    """A store keeps a conversation's newest turns: when the log was filled anew (another tab's
    turn), the turns it had dropped went from the page without a word, though the conversation
    goes on (no started-over note: the store dropped them to keep its number)."""


    monkeypatch.setattr(responder_assistant.store, "max_turns", 3)
    open_fresh(browser, live_url)
    for text in ("hello there", "I'd like to order a coffee", "a large one", "with oat milk", "thanks"):
        send(browser, text)
    sender = saved_sender(browser)
    assert [turn["message"] for turn in stored_turns(live_url, sender)] == ["a large one", "with oat milk", "thanks"]
    above = conversation(browser)[:6]
    another_tab_says_then_this_is_shown(browser, live_url, sender, "bye")
    turns = stored_turns(live_url, sender)
    assert [turn["message"] for turn in turns] == ["with oat milk", "thanks", "bye"]
    assert conversation(browser) == above + [
        row for turn in turns for row in (("user", turn["message"], False), ("bot", turn["reply"], turn["generated"]))]


def another_tab_says_then_this_is_shown(browser, live_url, sender, message):
    """Another tab sends ``message`` in ``sender``'s conversation, then this tab is shown again
    (``visibilitychange``): waits until the page shows the message and is idle."""
    import json
    import urllib.request

    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    request = urllib.request.Request(live_url + "api/v1/chat", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"sender": sender, "message": message}).encode())
    urllib.request.urlopen(request).close()
    browser.execute_script("document.dispatchEvent(new Event('visibilitychange'))")
    WebDriverWait(browser, 10, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda b: [text for kind, text, _ in conversation(b) if kind == "user"][-1:] == [message])
    ready(browser)


# Counts the log's scrolls (each of which has the browser lay the log out again).
COUNT_LOG_SCROLLS = """
(function () {
  var top = Object.getOwnPropertyDescriptor(Element.prototype, "scrollTop");
  window.logScrolls = 0;
  Object.defineProperty(Element.prototype, "scrollTop", {
    configurable: true,
    get: function () { return top.get.call(this); },
    set: function (value) { if (this.id === "log") window.logScrolls++; top.set.call(this, value); }
  });
})();
"""


def test_a_long_transcript_is_restored_without_laying_the_log_out_at_every_message(browser, serve,
                                                                                  default_predictor):
    """A restore scrolled the log to its end after each message it put in, so the browser laid
    the log out again at every message: 2,000 turns took 15 s to show, their time growing with the
    square of their number. The log is scrolled once, when they are all in."""
    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import ConversationState, MemoryStore, Turn

    turns = 300
    store = MemoryStore(max_turns=turns)
    url = serve(assistant=Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest,
                                                                                    seed=0), store))
    open_fresh(browser, url)
    sender = saved_sender(browser)
    for n in range(turns):
        store.save(sender, ConversationState(turns=n + 1),
                   Turn(message=f"message {n}", reply=f"reply {n}", intent="greeting", confidence=0.5))
    counting = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_LOG_SCROLLS})
    try:
        browser.get(url)
        ready(browser)
        rows = conversation(browser)
        assert len(rows) == 2 * turns and rows[-1][:2] == ("bot", f"reply {turns - 1}")
        assert browser.execute_script("return window.logScrolls") < 10
        # the latest reply is in view
        assert browser.execute_script(
            "var log = document.getElementById('log');"
            "return log.scrollHeight - log.scrollTop - log.clientHeight") < 2
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": counting["identifier"]})


def test_without_storage_a_page_back_from_the_back_forward_cache_keeps_its_conversation(open_browser, live_url):
    """Where the browser keeps no storage (private mode, storage blocked), the page brought back
    from the back-forward cache found no saved conversation id, took that for another tab's new
    conversation, and left its own: the log emptied and the next message began a new one."""
    browser = open_browser()
    block_storage(browser)
    browser.get(live_url)
    ready(browser)
    send(browser, "I'd like to order a coffee")
    before = conversation(browser)
    browser.execute_script("window.cached = true")
    browser.get(live_url + "health")
    browser.back()
    assert browser.execute_script("return window.cached === true")  # the same page, not loaded anew
    ready(browser)
    assert conversation(browser) == before
    send(browser, "a large one")  # the same conversation goes on
    assert [text for kind, text, _ in conversation(browser) if kind == "user"] == [
        "I'd like to order a coffee", "a large one"]


def test_enter_on_a_box_of_blank_lines_or_spaces_empties_it_to_one_line_and_no_count(browser, live_url):
    """Enter on a box holding only blank lines (or spaces) sent nothing and emptied it, but the box
    kept the height of its lines, and the hint went on counting characters no longer there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_fresh(browser, live_url)
    box, hint = browser.find_element(By.ID, "message"), browser.find_element(By.ID, "message-limit")
    one_line = box.size["height"]
    box.send_keys(Keys.SHIFT, Keys.ENTER, Keys.ENTER, Keys.ENTER, Keys.NULL)
    assert box.size["height"] > one_line
    box.send_keys(Keys.ENTER)
    assert box.get_attribute("value") == "" and box.size["height"] == one_line
    box.send_keys(" " * (TEXT_CAP - 10))
    assert hint.text == f"{TEXT_CAP - 10} of {TEXT_CAP} characters."
    box.send_keys(Keys.ENTER)
    assert box.get_attribute("value") == "" and hint.text == f"At most {TEXT_CAP} characters."
    assert conversation(browser) == [] and browser.switch_to.active_element == box


def test_a_double_click_on_send_sends_one_message_though_it_is_refused_at_once(browser, live_url):
    """A refusal that came before the second click of a double-click had put the message back in
    the box, and the second click sent it again: two messages, two errors."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    refuse_posts_at_once(browser)
    box = browser.find_element(By.ID, "message")
    box.send_keys("hello")
    click = send_button_clicks(browser)
    click(1)
    # the refusal is in before the second click
    WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    click(2)
    assert browser.execute_script("return window.posts") == 1
    assert [row[:2] for row in conversation(browser)] == [
        ("user", "hello"), ("error", "the store is unavailable; try again shortly")]
    assert box.get_attribute("value") == "hello"  # back in the box, to send again
    browser.find_element(By.ID, "send").click()  # a click of its own still sends
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return window.posts") == 2)


def test_a_message_typed_between_the_two_clicks_of_a_double_click_is_sent(browser, live_url):
    """The double-click guard held back every second click of a double-click: a message typed or
    pasted after the first click and sent with the second stayed in the box, unsent and unsaid."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    box = browser.find_element(By.ID, "message")
    box.send_keys("hello")
    click = send_button_clicks(browser)
    click(1)
    WebDriverWait(browser, 15).until(lambda b: len(conversation(b)) == 2)  # "hello" and its reply
    ready(browser)
    box.send_keys("thanks")
    click(2)
    WebDriverWait(browser, 15).until(lambda b: len(conversation(b)) == 4)
    assert [text for kind, text, _ in conversation(browser) if kind == "user"] == ["hello", "thanks"]
    assert box.get_attribute("value") == ""


def test_enter_held_down_sends_one_message_though_it_is_refused_at_once(browser, live_url):
    """Enter held down in the box repeats: each repeat that came after a quick refusal had put
    the message back in the box sent it again, a message and an error each time."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    open_fresh(browser, live_url)
    refuse_posts_at_once(browser)
    box = browser.find_element(By.ID, "message")
    box.send_keys("hello")

    def enter(kind, repeat=False):
        browser.execute_cdp_cmd("Input.dispatchKeyEvent", {
            "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r",
            "autoRepeat": repeat})

    enter("keyDown")
    WebDriverWait(browser, 5).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))
    ready(browser)
    enter("keyDown", repeat=True)
    enter("keyDown", repeat=True)
    enter("keyUp")
    assert browser.execute_script("return window.posts") == 1
    assert box.get_attribute("value") == "hello"  # back in the box, to send again, with no new line
    enter("keyDown")  # a press of its own still sends
    enter("keyUp")
    WebDriverWait(browser, 5).until(lambda b: b.execute_script("return window.posts") == 2)
