"""The gift page on a phone (375x667) and a desktop (1280x800): the first screen holds the fund's
name, its line of why, the frequency, every amount button and Continue; a prefill link
preselects; nothing serious for axe-core. With SCREENSHOTS_DIR set (`make screenshots`), the screenshots the README
shows are written there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.factories import make_fund

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 375, "height": 667}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture
def fund(app):
    return make_fund(
        "community-forums",
        name="Community Forums Reporting",
        description="Reporters at every neighborhood forum, so you know what was decided and why.",
        is_default=True,
        goal_cents=2_500_000,
        show_progress=True,
        suggested_amounts={"one_time": [2500, 5000, 10000, 25000], "monthly": [500, 1000, 2500]},
        amount_notes={"5000": "A week of forum coverage"},
        monthly_prompt="Monthly gifts keep a reporter at the forums all year.",
    )


def _save(page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


@pytest.mark.parametrize("size", SIZES)
def test_the_first_screen_holds_the_choice(new_context, fund, size, assert_accessible):
    viewport = SIZES[size]
    page = new_context(viewport=viewport).new_page()
    page.goto("/give/community-forums")
    for element in (
        page.get_by_role("heading", name="Support Community Forums Reporting"),
        page.get_by_text("Reporters at every neighborhood forum"),
        page.get_by_label("One time"),
        page.get_by_label("Monthly"),
        *(page.get_by_label(label, exact=True) for label in ("$25", "$100", "$250")),
        page.locator("input[name=amount_choice][value='5000']"),
        page.get_by_role("button", name="Continue", exact=True),  # to the second step
    ):
        box = element.bounding_box()
        assert box is not None
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], element
    for label in ("$25", "$100", "One time", "Monthly"):
        target = page.get_by_label(label, exact=True).bounding_box()
        assert target and target["height"] >= 44 and target["width"] >= 44
    assert_accessible(page)
    _save(page, f"give-{size}")


def test_a_prefill_link_preselects(page, fund):
    page.goto("/give/community-forums?amount=10&frequency=monthly")
    expect(page.get_by_label("Monthly")).to_be_checked()
    expect(page.get_by_label("$10", exact=True)).to_be_checked()
    expect(page.get_by_label("$100", exact=True)).to_be_hidden()
    expect(page.get_by_text("Monthly gifts keep a reporter")).to_be_hidden()
    page.get_by_label("One time").check()
    expect(page.get_by_text("Monthly gifts keep a reporter")).to_be_visible()
    expect(page.get_by_label("$100", exact=True)).to_be_visible()


@pytest.mark.parametrize("path", ["/no-such-page", "/give/no-such-fund", "/embed/no-such-fund"])
def test_error_pages_are_styled_and_accessible(page, fund, path, assert_accessible):
    response = page.goto(path)
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="We couldn't find that page")).to_be_visible()
    expect(page.get_by_role("link", name="Go to the gift page")).to_be_visible()
    assert_accessible(page)
