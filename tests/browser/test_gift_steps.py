"""The gift page's second step (with JavaScript) at 375x667 and 1280x800: step one is the choice
of gift, Continue reveals the details with the focus on their heading, the browser's Back and
"Change the amount" return to step one; a keyboard-only reader gives. The 429 page and the gift
page in the newsroom's look, with axe-core finding nothing serious (the embed box at both sizes
is in test_embed_journey.py). With SCREENSHOTS_DIR set (`make screenshots`) the pictures are
written there."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from donations.extensions import db, limiter, unit_of_work
from donations.newsroom import LookSettings, save_look
from tests.factories import make_fund
from tests.giving.support import only_gift

pytestmark = pytest.mark.browser

SIZES = {"phone": {"width": 375, "height": 667}, "desktop": {"width": 1280, "height": 800}}


@pytest.fixture
def fund(app):
    return make_fund(
        "community-forums",
        name="Community Forums Reporting",
        description="Reporters at every neighborhood forum, so you know what was decided and why.",
        is_default=True,
        suggested_amounts={"one_time": [2500, 5000, 10000, 25000], "monthly": [500, 1000, 2500]},
    )


def _save(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def focused(page: Page) -> str:
    return page.evaluate(
        "document.activeElement ? (document.activeElement.id || document.activeElement.textContent) : ''"
    )


@pytest.mark.parametrize("size", SIZES)
def test_continue_reveals_the_details_and_back_returns(new_context, fund, size, assert_accessible):
    page = new_context(viewport=SIZES[size]).new_page()
    page.goto("/give/community-forums")
    continue_button = page.get_by_role("button", name="Continue", exact=True)
    expect(continue_button).to_be_visible()
    expect(page.get_by_label("Your name")).to_be_hidden()
    expect(page.get_by_role("button", name="Continue to payment")).to_be_hidden()
    box = continue_button.bounding_box()
    assert box and box["y"] + box["height"] <= SIZES[size]["height"]  # in the first screen too
    assert_accessible(page)

    page.get_by_label("$100", exact=True).check()
    continue_button.click()
    expect(page.get_by_role("heading", name="Your details")).to_be_focused()
    expect(page.locator("[data-summary]")).to_have_text("$100 once")
    expect(page.get_by_label("$100", exact=True)).to_be_hidden()
    expect(page.get_by_label("Your name")).to_be_visible()
    expect(page.locator("#not-deductible")).to_be_visible()
    assert_accessible(page)
    _save(page, f"give-step-two-{size}")

    page.go_back()  # the browser's Back: step one again, as it was
    expect(page.get_by_label("$100", exact=True)).to_be_visible()
    expect(page.get_by_label("$100", exact=True)).to_be_checked()
    expect(page.get_by_label("Your name")).to_be_hidden()
    page.go_forward()
    expect(page.get_by_role("heading", name="Your details")).to_be_focused()
    page.get_by_role("button", name="Change the amount").click()
    expect(page.get_by_role("heading", name="Support Community Forums Reporting")).to_be_focused()
    expect(page.get_by_label("Your name")).to_be_hidden()


@pytest.mark.parametrize("size", SIZES)
def test_a_keyboard_only_reader_gives_in_two_steps(new_context, fund, size):
    page = new_context(viewport=SIZES[size]).new_page()
    page.goto("/give/community-forums")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    # Through the frequency and amounts (arrow keys choose), the Other box, to Continue.
    for _ in range(8):
        page.keyboard.press("Tab")
        if focused(page).startswith("amount_choice"):  # the group's chosen one: $50
            break
    page.keyboard.press("ArrowRight")  # $50 -> $100
    expect(page.get_by_label("$100", exact=True)).to_be_checked()
    for _ in range(4):
        page.keyboard.press("Tab")
        if focused(page) == "Continue":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your details")).to_be_focused()
    for _ in range(6):
        page.keyboard.press("Tab")
        if focused(page) == "name":
            break
    assert focused(page) == "name"
    page.keyboard.type("Kay Keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("kay@example.org")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/pay/local/cs_local_"))
    # The address changes when the navigation commits; a key pressed before the page has loaded
    # can be lost (about one run in five on a busy machine), so wait for it as a reader would.
    page.wait_for_load_state()
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    gift = only_gift()
    assert (gift.amount_cents, gift.donor.email) == (10_000, "kay@example.org")


def test_an_amount_out_of_range_stays_on_step_one(page: Page, fund):
    page.goto("/give/community-forums")
    page.get_by_label("Other amount", exact=True).check()
    page.get_by_label("Other amount, in dollars").fill("1")
    page.get_by_label("Other amount, in dollars").press("Enter")  # Enter continues, it never posts half a form
    expect(page.locator("#step-one-error")).to_have_text("Choose an amount, or enter one from $5 to $25,000.")
    expect(page.get_by_label("Other amount, in dollars")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Your name")).to_be_hidden()
    page.get_by_label("Other amount, in dollars").fill("12.50")
    page.get_by_label("Other amount, in dollars").press("Enter")
    expect(page.locator("[data-summary]")).to_have_text("$12.50 once")
    expect(page.locator("#step-one-error")).to_be_hidden()


def test_without_javascript_the_whole_form_shows(new_context, fund):
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/give/community-forums")
    expect(page.get_by_label("Your name")).to_be_visible()
    expect(page.get_by_role("button", name="Continue to payment")).to_be_visible()
    expect(page.get_by_role("button", name="Continue", exact=True)).to_be_hidden()


@pytest.fixture
def look(app):
    with unit_of_work():
        save_look(
            LookSettings(
                name="The Valley Ledger",
                accent="#7a1f3d",
                footer="Independent news for the valley since 1921.",
                newsletter_offered=True,
                newsletter_wording="Send me the Valley Ledger's weekly newsletter.",
            )
        )
    yield
    db.session.rollback()


@pytest.fixture
def fresh_limits():
    limiter.reset()
    yield
    limiter.reset()  # this test used up the sign-in limit of the browser's address


def test_the_429_page_wears_the_look_and_is_accessible(page: Page, fund, look, fresh_limits, assert_accessible):
    for _ in range(11):  # STAFF_SIGNIN_LIMIT: 10 a minute from one address
        page.goto("/staff/sign-in")
        page.get_by_label("Email").fill("guess@newsroom.example")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        if page.get_by_role("heading", name="Too many attempts").is_visible():
            break
    expect(page.get_by_role("heading", name="Too many attempts")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Please wait")
    expect(page.locator(".site-name")).to_have_text("The Valley Ledger")
    expect(page.locator(".site-footer")).to_contain_text("Independent news for the valley since 1921.")
    # The accent colour arrived (its inline style allowed by the page's CSP hash).
    link = page.get_by_role("link", name="Go to the gift page")
    assert link.evaluate("a => getComputedStyle(a).color") == "rgb(122, 31, 61)"
    assert_accessible(page)
    _save(page, "too-many-attempts")


def test_the_gift_page_in_the_look_with_its_newsletter_box(page: Page, fund, look, assert_accessible):
    page.goto("/give/community-forums")
    button = page.get_by_role("button", name="Continue", exact=True)
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(122, 31, 61)"
    button.click()
    box = page.get_by_label("Send me the Valley Ledger's weekly newsletter.")
    expect(box).not_to_be_checked()
    box.check()
    assert_accessible(page)
