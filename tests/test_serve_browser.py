"""The chat page in a real headless browser: Debian's chromium driven by Selenium (through
/usr/bin/chromedriver, so nothing is downloaded). Skipped when chromium is not installed,
except under CI (the environment variable CI set), where that is a failure.

The server is a real uvicorn server on 127.0.0.1 (a free port), run in a thread of this
process, so that the test can hold the model half way through a reply and see the page show
the tokens that have come so far.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
import torch
from serve_fixtures import TEXT, constant_gpt
from torch import nn

from gptlab.serve import create_app
from gptlab.serve.cli import bind
from gptlab.tokenizers import CharTokenizer

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1000,800"]
REPLY = 12  # tokens per reply (the page's max tokens)
PAUSE = 5  # the model stops after this many tokens of the first reply until released


def need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if missing:
        why = (f"the chat page test needs Debian's chromium and chromium-driver: missing "
               f"{', '.join(missing)} (apt-get install chromium chromium-driver)")
        if os.environ.get("CI"):
            pytest.fail(why + "; CI must run this test")
        pytest.skip(why)


class RecordingTokenizer(CharTokenizer):
    """Remembers the texts it encodes: the prompts the page sent."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.prompts: list[str] = []

    def encode(self, text: str) -> list[int]:
        self.prompts.append(text)
        return super().encode(text)


class PausingModel(nn.Module):
    """Wraps a model: its (PAUSE + 1)-th call waits for ``go`` (an Event)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner, self.config = model, model.config
        self.go = threading.Event()
        self.calls = 0

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        self.calls += 1
        if self.calls == PAUSE + 1 and not self.go.wait(timeout=60):
            raise TimeoutError("the test never released the model")
        return self.inner(idx)


@contextlib.contextmanager
def serve(app) -> Iterator[str]:
    import uvicorn

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning",
                                           access_log=False, timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
    assert not thread.is_alive()


@pytest.fixture
def browser():
    need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gptlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_chat_page_streams_the_reply(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    tok = RecordingTokenizer(TEXT)
    torch.set_num_threads(1)
    model = PausingModel(constant_gpt(tok, "<"))  # always "<": shows the page escapes text
    app = create_app(model, tok, max_new_tokens_cap=50, model_name="browser-test")
    waiter = WebDriverWait(browser, 30, poll_frequency=0.05)

    def wait(condition) -> None:
        def check(d):
            errors = d.find_elements(By.CSS_SELECTOR, ".stats.error")
            assert not errors, f"the page shows an error: {errors[0].text}"
            return condition(d)
        waiter.until(check)
    first, second = "But soft, Romeo!", "wherefore art thou?"  # known characters

    def bot_text(i: int) -> str:
        turns = browser.find_elements(By.CSS_SELECTOR, ".turn.bot .text")
        return turns[i].text if len(turns) > i else ""

    def say(text: str) -> None:
        box = browser.find_element(By.ID, "prompt")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    with serve(app) as url:
        try:
            browser.get(url + "/")
            wait(lambda d: "browser-test" in d.find_element(By.ID, "model").text)
            for field, value in (("temperature", "0"), ("max-tokens", str(REPLY))):
                box = browser.find_element(By.ID, field)
                box.clear()
                box.send_keys(value)

            say(first)
            # the first PAUSE tokens are on the page while the model is still generating
            wait(lambda d: bot_text(0) == "<" * PAUSE)
            streaming = browser.find_element(By.CSS_SELECTOR, ".turn.bot")
            assert "streaming" in streaming.get_attribute("class")
            assert browser.find_element(By.ID, "send").get_attribute("disabled") is not None
            model.go.set()
            wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".turn.bot .stats"))
            assert bot_text(0) == "<" * REPLY
            html = browser.find_element(By.CSS_SELECTOR, ".turn.bot .text")
            assert html.get_attribute("innerHTML") == "&lt;" * REPLY  # text, not markup
            stats = browser.find_element(By.CSS_SELECTOR, ".turn.bot .stats").text
            assert f"{REPLY} tokens" in stats and "length" in stats

            say(second)  # the whole conversation goes into the next prompt
            wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn.bot .stats")) == 2)
            assert bot_text(1) == "<" * REPLY
            users = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".turn.user .text")]
            assert users == [first, second]
        finally:
            model.go.set()
    # the play format; the second prompt would be longer than the model's context (32
    # characters), so the page drops the oldest whole turns and keeps the newest
    expected = [f"ROMEO:\n{first}\n\nJULIET:\n", f"ROMEO:\n{second}\n\nJULIET:\n"]
    assert tok.prompts == expected
