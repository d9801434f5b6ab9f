"""An article page served from another origin (a second local server) frames /embed/<fund>; a
reader goes from it to a paid gift whose attribution names that article. A page from an origin
not in EMBED_ORIGINS cannot frame it. Screenshots of the box for the README with SCREENSHOTS_DIR."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from donations.ledger.models import GiftStatus
from tests.browser.conftest import LiveServer
from tests.factories import make_fund
from tests.giving.support import only_gift

pytestmark = pytest.mark.browser


def _article_server(embed_src: str) -> tuple[str, object, threading.Thread]:
    """A newsroom's article page at its own origin, with the snippet in its footer."""

    @Request.application
    def article(request: Request) -> Response:
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Forums story</title></head>'
            "<body><main><h1>What the forum decided</h1><p>Local journalism is essential.</p>"
            f'<iframe src="{embed_src}" title="Give to Community Forums Reporting" width="100%" height="360"'
            ' referrerpolicy="no-referrer-when-downgrade"></iframe></main></body></html>'
        )
        return Response(body, content_type="text/html; charset=utf-8")

    server = make_server("127.0.0.1", 0, article, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server, thread


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


@pytest.fixture
def articles(live_server: LiveServer) -> Iterator[tuple[str, str]]:
    """(allowed article origin, refused article origin); only the first is in EMBED_ORIGINS."""
    src = live_server("/embed/community-forums?utm_campaign=winter")
    allowed, allowed_server, allowed_thread = _article_server(src)
    refused, refused_server, refused_thread = _article_server(src)
    before = live_server.app.config["EMBED_ORIGINS"]
    live_server.app.config["EMBED_ORIGINS"] = [allowed]
    yield allowed, refused
    live_server.app.config["EMBED_ORIGINS"] = before
    for server, thread in ((allowed_server, allowed_thread), (refused_server, refused_thread)):
        server.shutdown()  # type: ignore[attr-defined]
        thread.join(timeout=5)


def test_the_box_in_an_article_on_a_desktop(new_context, fund, articles, assert_accessible):
    allowed, _ = articles
    page = new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{allowed}/2026/forums-story")
    box = page.frame_locator("iframe")
    expect(box.get_by_role("button", name="Give")).to_be_visible()
    assert_accessible(page.frames[1])  # type: ignore[arg-type]
    if os.environ.get("SCREENSHOTS_DIR"):
        Path(os.environ["SCREENSHOTS_DIR"]).mkdir(parents=True, exist_ok=True)
        page.locator("iframe").screenshot(path=str(Path(os.environ["SCREENSHOTS_DIR"]) / "embed-desktop.png"))


def test_a_reader_gives_from_the_box_in_an_article(new_context, live_server, fund, articles, assert_accessible):
    allowed, _ = articles
    context = new_context(viewport={"width": 375, "height": 667})
    page = context.new_page()
    page.goto(f"{allowed}/2026/forums-story")
    box = page.frame_locator("iframe")
    expect(box.get_by_role("heading", name="Local journalism is essential")).to_be_visible()
    embed_frame = page.frames[1]
    assert_accessible(embed_frame)  # type: ignore[arg-type]
    if os.environ.get("SCREENSHOTS_DIR"):
        Path(os.environ["SCREENSHOTS_DIR"]).mkdir(parents=True, exist_ok=True)
        page.locator("iframe").screenshot(path=str(Path(os.environ["SCREENSHOTS_DIR"]) / "embed-phone.png"))
    box.get_by_label("$100").check()
    with context.expect_page() as opened:
        box.get_by_role("button", name="Give").click()
    gift_page = opened.value
    gift_page.wait_for_load_state()
    assert gift_page.url.startswith(live_server("/give/community-forums?"))  # a top-level tab on our site
    expect(gift_page.get_by_label("$100", exact=True)).to_be_checked()
    gift_page.get_by_role("button", name="Continue", exact=True).click()
    gift_page.get_by_label("Your name").fill("Rae Reader")
    gift_page.get_by_label("Email", exact=True).fill("rae@example.org")
    gift_page.get_by_role("button", name="Continue to payment").click()
    expect(gift_page).to_have_url(re.compile(r"/pay/local/cs_local_"))
    gift_page.get_by_label("Card number").fill("4242 4242 4242 4242")
    gift_page.get_by_role("button", name="Pay $100.00").click()
    expect(gift_page.get_by_role("heading", name="Thank you!")).to_be_visible()

    gift = only_gift()
    assert gift.status == GiftStatus.PAID
    assert gift.attribution == {
        "utm_campaign": "winter",
        "utm_medium": "embed",
        "ref": f"{allowed}/2026/forums-story",
    }


def test_an_origin_not_allowed_cannot_frame_the_box(page, fund, articles):
    _, refused = articles
    page.goto(f"{refused}/2026/forums-story")
    page.wait_for_load_state("load")  # the frame's load, refused or not, is part of the page's
    expect(page.get_by_role("heading", name="What the forum decided")).to_be_visible()
    # Chromium refuses the frame (CSP frame-ancestors): it shows its own error page instead.
    expect(page.frame_locator("iframe").get_by_role("button", name="Give")).to_have_count(0)
    expect(page.frame_locator("iframe").get_by_text("Local journalism is essential")).to_have_count(0)
