"""Fixtures for the console's browser tests: Debian's Chromium driven by Playwright, a real
server, a browser page signed in through the sign-in form, and a screenshot of each test's page
saved to test-artifacts/console/<test>.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's own browser builds cannot be downloaded here; Debian's Chromium is launched as is.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not for the session: Playwright's sync API runs an event
    loop in this thread while it is started, and later tests' asyncio.run() would find it."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


class Console:
    """A browser page on a server's console, with what went wrong in the page kept: uncaught
    errors and console errors (a CSP violation is one) fail the test at its end."""

    def __init__(self, server: RunningServer, page: Any) -> None:
        self.server = server
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("response", self._on_response)
        page.on("console", self._on_console)

    def _on_response(self, response: Any) -> None:
        # The browser's own favicon request is not the console's (the sign-in page has none).
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            self.errors.append(f"{response.status} from {response.request.method} {response.url}")

    def _on_console(self, message: Any) -> None:
        # A failed load is reported with its address by _on_response; the console's line has none.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console error: {message.text}")

    def url(self, path: str) -> str:
        return self.server.url + path

    def sign_in(self, next_path: str = "/console/") -> None:
        """Signs in through the form with the server's key pair, as a user would."""
        key = self.server.access_key
        self.page.goto(self.url(next_path))
        self.page.wait_for_url(re.compile(r"/console/sign-in"))
        self.page.get_by_label("Access key id").fill(key.access_key_id)
        self.page.get_by_label("Secret access key").fill(key.secret_access_key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/console/sign-in" not in url)

    def open(self, path: str) -> None:
        self.page.goto(self.url(path))
        self.page.wait_for_load_state("networkidle")


def screenshot_path(request: pytest.FixtureRequest) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    return ARTIFACTS / f"{name}.png"


@contextmanager
def new_console(
    browser: Any, server: RunningServer, request: pytest.FixtureRequest, **context: Any
) -> Iterator[Console]:
    """A fresh browser context (no cookies) on `server`; its screenshot is taken at the end
    whether the test passed or not, and page errors fail it."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    console = Console(server, page)
    try:
        yield console
        assert not console.errors, "\n".join(console.errors)
    finally:
        try:
            page.screenshot(path=str(screenshot_path(request)), full_page=True)
        finally:
            ctx.close()


@pytest.fixture
def console(
    browser: Any, server: RunningServer, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """A browser signed in to a fresh server's console (1280 px wide)."""
    with new_console(browser, server, request, viewport={"width": 1280, "height": 900}) as opened:
        opened.sign_in()
        yield opened
