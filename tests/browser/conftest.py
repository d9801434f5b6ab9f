"""Browser fixtures, shared by every browser test: the app served over real HTTP from a thread,
and Debian's headless Chromium driven by Playwright (never `playwright install`).

- `live_server` (session): a `LiveServer` with `.url` ("http://127.0.0.1:<port>"), `.app` and
  `live_server("/path")` for absolute addresses. It is an app of its own on the session's test
  database (made by the `app` fixture's migrations, emptied after each test like the rest),
  whose SERVER_NAME is the address the browser uses: external URLs it builds (the cancel link,
  Stripe's success and cancel URLs, links in emails) lead back to it. The session `app` keeps
  SERVER_NAME="localhost" for the test client.
- `browser` (session): Chromium, launched once.
- `context` / `page`: a fresh context (cookies, storage) and page per test, whose relative
  `goto("/give")` resolves against the live server.
- `new_context(**options)`: more contexts in one test, e.g. `new_context(java_script_enabled=False)`;
  all are closed after the test.
- `assert_accessible(page)`: no serious or critical axe-core violations on the page as it is;
  `axe_violations(page, impacts=...)` returns them.

Mark browser tests `@pytest.mark.browser` (or `pytestmark = pytest.mark.browser`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from donations import create_app
from donations.extensions import db
from tests.conftest import TEST_CONFIG

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000
SERIOUS = ("serious", "critical")


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Flask

    def __call__(self, path: str = "/") -> str:
        return self.url + path


@pytest.fixture(scope="session")
def live_server(app: Flask, database_url: str) -> Iterator[LiveServer]:
    # `app` first: its migrations make the schema this server's app uses.
    live_app = create_app("testing", {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    server: BaseWSGIServer = make_server("127.0.0.1", 0, live_app, threaded=True)
    # The port is known only once bound; no request has been served yet, so this is in time.
    live_app.config["SERVER_NAME"] = f"127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=live_app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        with live_app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield chromium
    chromium.close()


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer) -> Iterator[Callable[..., BrowserContext]]:
    opened: list[BrowserContext] = []

    def open_context(**options: Any) -> BrowserContext:
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture
def context(new_context: Callable[..., BrowserContext]) -> BrowserContext:
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def _violations(page: Page, impacts: tuple[str, ...] = SERIOUS) -> list[dict[str, Any]]:
    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in impacts]


def _describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        lines.extend(f"    {node['target']}: {node.get('failureSummary', '')}" for node in violation["nodes"])
    return "\n".join(lines)


@pytest.fixture(scope="session")
def axe_violations() -> Callable[..., list[dict[str, Any]]]:
    """`axe_violations(page, impacts=("serious", "critical"))`: axe-core's violations on the page
    as it is now."""
    return _violations


@pytest.fixture(scope="session")
def assert_accessible() -> Callable[[Page], None]:
    """`assert_accessible(page)`: fails, listing them, on serious or critical axe violations."""

    def check(page: Page) -> None:
        violations = _violations(page)
        assert not violations, f"axe on {page.url}:\n{_describe(violations)}"

    return check
