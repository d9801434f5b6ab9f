"""A reader gives once, in headless Chromium: the gift page, the local checkout page, the
thank-you page; with and without JavaScript; and axe-core finds nothing serious on the way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from donations.ledger.models import GiftStatus
from donations.money import format_dollars, format_money
from tests.factories import make_fund
from tests.giving.support import counted_gifts, expected_fee, only_gift

pytestmark = pytest.mark.browser

PAYS = "4242 4242 4242 4242"


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def continue_to_details(page: Page) -> None:
    """With JavaScript the details are the form's second step, after Continue."""
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("heading", name="Your details")).to_be_focused()


def fill_about_you(page: Page, name: str = "Rae Reader", email: str = "rae@example.org") -> None:
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("ZIP or postal code").fill("94110")


def pay_with(page: Page, card: str, total_cents: int) -> None:
    expect(page).to_have_url(re.compile(r"/pay/local/cs_local_"))
    page.get_by_label("Card number").fill(card)
    page.get_by_role("button", name=f"Pay {format_money(total_cents)}").click()


def test_a_reader_gives_and_covers_the_fee(page: Page, fund, assert_accessible):
    page.goto("/give")
    expect(page.get_by_role("heading", name="Support Community Forums Reporting")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("$100", exact=True).check()
    continue_to_details(page)
    page.get_by_label("Cover the processing fee").check()
    # The sentence follows the chosen amount, with the server's arithmetic.
    expect(page.locator("[data-fee-amount]")).to_have_text(format_money(expected_fee(10_000)))
    expect(page.locator("[data-fee-base]")).to_have_text("$100.00")
    # Back to the amounts; typing another selects "Other amount" and updates the sentence.
    page.get_by_role("button", name="Change the amount").click()
    expect(page.get_by_label("Other amount, in dollars")).to_be_hidden()  # until Other is chosen
    page.get_by_label("Other amount", exact=True).check()
    page.get_by_label("Other amount, in dollars").fill("37.50")
    expect(page.get_by_label("Other amount", exact=True)).to_be_checked()
    continue_to_details(page)
    expect(page.locator("[data-summary]")).to_have_text("$37.50 once")
    expect(page.locator("[data-fee-amount]")).to_have_text(format_money(expected_fee(3_750)))
    expect(page.locator("[data-fee-base]")).to_have_text("$37.50")
    fill_about_you(page)
    expect(page.locator("#not-deductible")).to_contain_text("Your gift is not tax deductible.")
    page.get_by_role("button", name="Continue to payment").click()

    fee = expected_fee(3_750)
    assert_accessible(page)
    pay_with(page, PAYS, 3_750 + fee)

    expect(page).to_have_url(re.compile(r"/give/thanks\?session_id=cs_local_"))
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.get_by_test_id("gift-amount")).to_have_text(format_money(3_750 + fee))
    expect(page.locator("main")).to_contain_text("Your gift is not tax deductible.")
    assert_accessible(page)

    gift = only_gift()
    assert gift.status == GiftStatus.PAID
    assert (gift.amount_cents, gift.fee_covered_cents) == (3_750 + fee, fee)
    assert gift.donor.email == "rae@example.org"
    assert gift.tax_deductible is False
    assert counted_gifts() == 1


def test_a_fee_sentence_for_every_suggested_amount(page: Page, fund):
    page.goto("/give")
    for cents in (2_500, 5_000, 10_000, 25_000):
        page.get_by_label(format_dollars(cents), exact=True).check()
        expect(page.locator("[data-fee-amount]")).to_have_text(format_money(expected_fee(cents)))


def test_the_form_with_errors_is_accessible_and_keeps_what_was_typed(page: Page, fund, assert_accessible):
    page.goto("/give")
    page.get_by_label("Other amount", exact=True).check()
    page.get_by_label("Other amount, in dollars").fill("2")
    # Step one refuses an amount out of range at once, and stays.
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.locator("#step-one-error")).to_have_text("Choose an amount, or enter one from $5 to $25,000.")
    expect(page.get_by_label("Other amount, in dollars")).to_be_focused()
    expect(page.get_by_label("Your name")).to_be_hidden()
    page.get_by_label("Other amount, in dollars").fill("20")
    continue_to_details(page)
    page.get_by_label("Your name").fill("Sam Typed")
    page.get_by_role("button", name="Continue to payment").click()

    # The server's answer shows the whole form, with its errors.
    expect(page.get_by_role("alert")).to_contain_text("Please check the form")
    expect(page.locator("#email-error")).to_have_text("Enter your email address.")
    expect(page.get_by_label("Other amount, in dollars")).to_have_value("20")
    expect(page.get_by_label("Your name")).to_have_value("Sam Typed")
    assert_accessible(page)


def test_a_declined_card_can_try_again(page: Page, fund):
    page.goto("/give")
    page.get_by_label("$25", exact=True).check()
    continue_to_details(page)
    fill_about_you(page)
    page.get_by_role("button", name="Continue to payment").click()
    pay_with(page, "4000 0000 0000 0002", 2_500)
    expect(page.get_by_role("alert")).to_have_text("Your card was declined. No money was taken; try another card.")
    assert only_gift().status == GiftStatus.FAILED  # a decline ends the attempt; another card may still pay
    assert counted_gifts() == 0
    pay_with(page, PAYS, 2_500)
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    assert only_gift().status == GiftStatus.PAID


def test_cancel_returns_to_the_filled_form(page: Page, fund):
    page.goto("/give")
    page.get_by_label("Other amount", exact=True).check()
    page.get_by_label("Other amount, in dollars").fill("42")
    continue_to_details(page)
    page.get_by_label("Cover the processing fee").check()
    fill_about_you(page, name="Cam Cancel", email="cam@example.org")
    page.get_by_role("button", name="Continue to payment").click()
    page.get_by_role("link", name="Cancel and return to the form").click()

    expect(page).to_have_url(re.compile(r"/give\?resume="))
    expect(page.get_by_label("Other amount, in dollars")).to_have_value("42.00")
    expect(page.get_by_label("Cover the processing fee")).to_be_checked()
    expect(page.get_by_label("Your name")).to_have_value("Cam Cancel")
    expect(page.get_by_label("Email", exact=True)).to_have_value("cam@example.org")
    expect(page.locator("[data-fee-amount]")).to_have_text(format_money(expected_fee(4_200)))


def test_a_reader_without_javascript_gives_too(new_context, fund):
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/give")
    # Without the script the sentence is the server's, for the amount chosen when the page loaded.
    expect(page.locator("[data-fee-amount]")).to_have_text(format_money(expected_fee(5_000)))
    page.get_by_label("$50", exact=True).check()
    page.get_by_label("Cover the processing fee").check()
    fill_about_you(page, name="No Script", email="noscript@example.org")
    page.get_by_role("button", name="Continue to payment").click()

    fee = expected_fee(5_000)
    pay_with(page, PAYS, 5_000 + fee)
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()
    expect(page.get_by_test_id("gift-amount")).to_have_text(format_money(5_000 + fee))

    gift = only_gift()
    assert gift.status == GiftStatus.PAID
    assert (gift.amount_cents, gift.fee_covered_cents) == (5_000 + fee, fee)
    assert gift.donor.email == "noscript@example.org"


def test_an_amount_typed_without_javascript(new_context, fund):
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/give")
    page.get_by_label("Other amount", exact=True).check()
    page.get_by_label("Other amount, in dollars").fill("12.34")
    fill_about_you(page)
    page.get_by_role("button", name="Continue to payment").click()
    pay_with(page, PAYS, 1_234)
    expect(page.get_by_test_id("gift-amount")).to_have_text("$12.34")
    assert only_gift().amount_cents == 1_234


def focused_id(page: Page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_a_keyboard_reader_keeps_the_amount_picked_with_the_arrow_keys(page: Page, fund):
    page.goto("/give")
    page.get_by_label("$50", exact=True).focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("$100", exact=True)).to_be_checked()
    # Tab out of the amounts, through the empty Other amount box, on to Continue.
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Continue":
            break
    expect(page.get_by_label("$100", exact=True)).to_be_checked()
    expect(page.get_by_label("Other amount", exact=True)).not_to_be_checked()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your details")).to_be_focused()
    for _ in range(6):
        page.keyboard.press("Tab")
        if focused_id(page) == "name":
            break
    assert focused_id(page) == "name"
    page.keyboard.type("Kay Keyboard")
    page.keyboard.press("Tab")
    page.keyboard.type("kay@example.org")
    page.keyboard.press("Enter")
    pay_with(page, PAYS, 10_000)
    assert only_gift().amount_cents == 10_000


def test_the_other_amount_box_shows_once_other_is_chosen(page: Page, fund):
    page.goto("/give")
    expect(page.get_by_label("Other amount, in dollars")).to_be_hidden()
    page.get_by_label("Other amount", exact=True).check()
    page.get_by_label("Other amount, in dollars").fill("15")
    page.get_by_label("$100", exact=True).check()
    # Holding an amount, it stays in view; typing in it chooses Other again, focus alone does not.
    page.get_by_label("Other amount, in dollars").focus()
    expect(page.get_by_label("$100", exact=True)).to_be_checked()
    page.keyboard.type("0")
    expect(page.get_by_label("Other amount", exact=True)).to_be_checked()
    continue_to_details(page)
    expect(page.locator("[data-fee-base]")).to_have_text("$150.00")


def test_after_a_form_error_the_focus_is_on_the_error_summary(page: Page, fund):
    page.goto("/give")
    continue_to_details(page)
    page.get_by_label("Your name").fill("Sam Typed")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("alert")).to_contain_text("Please check the form")
    expect(page.locator("#form-errors")).to_be_focused()  # forms.js runs after the page shows

    page.goto("/membership")
    page.get_by_label("Email").fill("not-an-address")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("alert")).to_contain_text("Please check the form")
    expect(page.locator("#form-errors")).to_be_focused()  # forms.js runs after the page shows
