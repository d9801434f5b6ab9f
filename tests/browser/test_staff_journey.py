"""A finance user's day in the staff console, in headless Chromium: sign in, find a gift by the
donor's email, refund part of it (the local gateway answers with signed refund events through the
webhook, so the reversal appears), enter two checks in one batch, and see the dashboard's totals
follow. axe-core finds nothing serious or critical on the dashboard and the gift list."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus, Reversal
from tests.factories import make_donor, make_fund, make_gift
from tests.staff.support import PASSWORD, freeze_dashboard_day, make_staff

pytestmark = pytest.mark.browser


@pytest.fixture
def world(app, monkeypatch):
    # One local date for the whole journey: the dashboard's clock stops at its noon and every
    # gift is received on it, so a run across local midnight cannot split them.
    day = local_date(utcnow())
    noon = freeze_dashboard_day(monkeypatch, day)
    fund = make_fund("community-forums", name="Community Forums Reporting", is_default=True)
    donor = make_donor("reader.refund@example.org", name="Rae Reader")
    gift = make_gift(
        donor,
        fund,
        8000,
        received_at=noon - timedelta(hours=3),
        stripe_payment_intent_id="pi_local_" + "b2" * 12,
        stripe_checkout_session_id="cs_local_staff_journey",
        card_last4="4242",
    )
    make_gift(make_donor("someone.else@example.org"), fund, 2500, received_at=noon - timedelta(hours=2))
    finance = make_staff("finance", email="finance@newsroom.example")
    return {"fund": fund, "gift": gift, "finance": finance, "day": day}


def today_figures(page: Page) -> tuple[str, str]:
    page.goto("/staff/")
    return (
        page.get_by_test_id("period-1-gifts").inner_text(),
        page.get_by_test_id("period-1-gross").inner_text(),
    )


def test_finance_refunds_part_of_a_gift_and_enters_a_batch_of_checks(page: Page, world, assert_accessible):
    gift = world["gift"]

    # Signed out, the console sends us to sign in, then back.
    page.goto("/staff/")
    expect(page).to_have_url(re.compile(r"/staff/sign-in"))
    page.get_by_label("Email").fill("finance@newsroom.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    assert_accessible(page)
    assert today_figures(page) == ("2", "$105.00")

    # Find the gift by the donor's email.
    page.get_by_role("link", name="Gifts", exact=True).click()
    page.get_by_label("Donor email").fill("Reader.Refund@example.org")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    assert_accessible(page)
    page.get_by_role("link", name=f"#{gift.id}").click()
    expect(page.get_by_role("heading", name=f"Gift #{gift.id}: $80.00 from Rae Reader")).to_be_visible()

    # Refund $30 of it.
    page.get_by_label("Amount to refund").fill("30.00")
    page.get_by_label("Reason").first.fill("Gave twice by mistake")
    page.get_by_role("button", name="Refund through Stripe").click()
    # The confirmation: the amount, and what is left to refund after it.
    expect(page.get_by_test_id("refund-amount")).to_have_text("$30.00")
    expect(page.get_by_test_id("refund-left-after")).to_contain_text("$")
    page.get_by_role("button", name="Yes, refund $30.00").click()
    expect(page.get_by_role("status")).to_contain_text("Refund re_local_")
    expect(page.get_by_text("$30.00; net $50.00", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("Refunds and disputes"))).to_contain_text("refund")
    db.session.expire_all()
    assert db.session.get(Gift, gift.id).status == GiftStatus.PARTIALLY_REFUNDED
    assert [r.amount_cents for r in db.session.scalars(select(Reversal))] == [3000]

    # Two checks in one batch.
    page.get_by_role("link", name="Checks").click()
    page.get_by_label("Fund").select_option(label="Community Forums Reporting")
    page.get_by_label("Date received").fill(world["day"].isoformat())
    page.get_by_label("Name, row 1", exact=True).fill("Ada Check")
    page.get_by_label("Check number, row 1", exact=True).fill("1001")
    page.get_by_label("Amount ($), row 1", exact=True).fill("100")
    page.get_by_label("Name, row 2", exact=True).fill("Bo Check")
    page.get_by_label("Email, row 2", exact=True).fill("bo.check@example.org")
    page.get_by_label("Check number, row 2", exact=True).fill("2002")
    page.get_by_label("Amount ($), row 2", exact=True).fill("250.50")
    page.get_by_role("button", name="Record the batch").click()
    expect(page.get_by_role("status")).to_contain_text("2 checks recorded, $350.50 in all.")
    expect(page.locator("tbody tr")).to_have_count(2)

    # The dashboard follows: two more gifts today, $350.50 more; net less the refund.
    assert today_figures(page) == ("4", "$455.50")
    expect(page.locator(".card").first).to_contain_text("4 gifts; net $425.50")
    assert_accessible(page)
    checks = db.session.scalars(select(Gift).where(Gift.source == "check")).all()
    assert sorted(g.amount_cents for g in checks) == [10000, 25050]
