"""The page in a real headless Chromium (Debian's, driven by Playwright): pick a user, see the summary,
the interest plot, the predictions with their evidence, and chat."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def open_browser() -> Iterator[Any]:
    required = os.environ.get("TIDE_REQUIRE_BROWSER") == "1"  # `make test` installs both: a skip would hide it
    if required:
        import playwright.sync_api as sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if required:
            pytest.fail("Debian chromium is not installed (apt-get install -y chromium; `make browser`)")
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser():
    with open_browser() as b:
        yield b


def show_user(browser, server, who: str, screenshot: str | None = None) -> Any:
    """Connect with ``who``'s key, pick ann, wait for every panel, ask one question; returns the page."""
    page = browser.new_page(viewport={"width": 1200, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/")
    page.fill("#key", server.tokens[who])
    page.click("#connect button")
    page.wait_for_function("document.querySelectorAll('#user option').length > 1")
    page.select_option("#user", "ann")
    page.wait_for_function("document.querySelector('#summary').textContent.length > 40", timeout=300_000)
    page.wait_for_selector("#plot svg polygon", timeout=300_000)
    page.wait_for_selector("#items li", timeout=300_000)
    page.wait_for_selector("#interests .interest", timeout=300_000)
    page.fill("#question", "Is she into sci-fi lately?")
    page.click("#ask")
    page.wait_for_selector("#transcript .tide", timeout=300_000)
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    assert not errors, errors
    return page


def test_page_shows_a_user_and_chats(served, browser):
    page = show_user(browser, served, "ann", os.environ.get("TIDE_PAGE_SCREENSHOT"))
    options = page.locator("#user option").all_inner_texts()[1:]
    assert len(options) == 1 and options[0].startswith("ann ")  # the key is scoped to ann
    assert "behaviors" in page.text_content("#summary-meta")
    categories = page.locator("#plot polygon").evaluate_all("ps => ps.map(p => p.dataset.category)")
    assert "Sci-Fi" in categories and "Comedy" in categories
    shown = page.locator("#items li").count()  # k=8, fewer when ann has consumed most of the 12 movies
    assert 1 <= shown <= 8
    evidence = page.locator("#interests .evidence li").all_inner_texts()
    assert evidence and any("Rated" in e for e in evidence)  # the behaviors an interest rests on
    assert page.text_content("#transcript .tide").startswith("tide: ")
    page.close()


def test_page_reports_a_bad_key(served, browser):
    page = browser.new_page()
    page.goto(served.url + "/")
    page.fill("#key", "tide_not_a_key")
    page.click("#connect button")
    page.wait_for_function("document.querySelector('#status').textContent.includes('invalid_key')")
    assert page.locator("#user").is_disabled()
    page.close()
