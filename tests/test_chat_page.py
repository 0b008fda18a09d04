"""The chat page at / in real headless Chromium (Debian's chromium + chromium-driver).

Skips when Chromium is missing locally; fails under ``CI=true``. Nothing is downloaded: the
browser and its driver are the system's.
"""
import shutil
import threading

import pytest

from tests.helpers import needs

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def live_url(default_predictor, free_port):
    from werkzeug.serving import make_server

    from legacy_assistant.serving.assistant import Assistant
    from legacy_assistant.serving.dialogue import DialoguePolicy
    from legacy_assistant.stores.base import MemoryStore
    from legacy_assistant.web import create_app

    assistant = Assistant(default_predictor, DialoguePolicy.from_manifest(default_predictor.manifest, seed=0),
                          MemoryStore())
    app = create_app({"ACCESS_LOG": False}, assistant=assistant)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    server.shutdown()


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
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def send(browser, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bots_before = len(browser.find_elements(By.CSS_SELECTOR, "#log .msg.bot, #log .msg.error"))
    box = browser.find_element(By.ID, "message")
    box.send_keys(text)
    browser.find_element(By.ID, "send").click()
    WebDriverWait(browser, 15).until(
        lambda b: len(b.find_elements(By.CSS_SELECTOR, "#log .msg.bot, #log .msg.error")) > bots_before
        and b.find_element(By.ID, "message").is_enabled())
    last = browser.find_elements(By.CSS_SELECTOR, "#log .msg")[-1]
    assert "error" not in last.get_attribute("class"), last.text
    return last


def test_chat_page_talks_follows_context_and_shows_details(browser, live_url):
    from selenium.webdriver.common.by import By

    browser.get(live_url)
    assert browser.title == "legacy-assistant"
    assert not browser.find_elements(By.CSS_SELECTOR, "script[src^='http'], link[href^='http']")  # no CDN
    assert browser.find_element(By.ID, "log").get_attribute("aria-live") == "polite"
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
    assert browser.execute_script("return localStorage.getItem('legacy-assistant-sender')") == sender
    third = send(browser, "with oat milk")
    assert "intent: milk_yes" in third.find_element(By.CSS_SELECTOR, ".details").text

    # a new conversation gets a new sender and an empty log; context starts afresh
    browser.find_element(By.ID, "new-conversation").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#log .msg") == []
    assert browser.execute_script("return localStorage.getItem('legacy-assistant-sender')") != sender
    fresh = send(browser, "a large one")
    assert "intent: coffee_size_large" not in fresh.find_element(By.CSS_SELECTOR, ".details").text


def test_chat_page_shows_api_errors(browser, live_url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(live_url)
    browser.find_element(By.ID, "message").send_keys("x" * 1200)
    browser.find_element(By.ID, "send").click()
    error = WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#log .msg.error"))[-1]
    assert "longer than 1000 characters" in error.text
