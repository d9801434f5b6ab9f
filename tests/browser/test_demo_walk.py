"""The demo newsroom walked as staff, in headless Chromium: the dashboard's numbers are not zero,
the gifts list is downloaded, a donor is corrected, a refund is confirmed; and at 375 px (a phone)
no staff page's document is wider than the viewport (wide tables scroll in their own box).
Screenshots of the phone pages go to $DEMO_SCREENSHOTS when it is set."""

from __future__ import annotations

import os
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from donations import demo
from donations.extensions import db
from donations.ledger.models import Donor, Gift, GiftSource, GiftStatus
from tests.staff.support import PASSWORD, make_staff

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def seeded(app):
    demo.seed()
    db.session.commit()
    make_staff("admin", email="admin@newsroom.example")
    refundable = db.session.scalars(
        select(Gift)
        .where(Gift.source == GiftSource.STRIPE, Gift.status == GiftStatus.PAID, Gift.membership_id.is_(None))
        .order_by(Gift.id.desc())
        .limit(1)
    ).one()
    donor = db.session.scalars(select(Donor).where(Donor.name == "Maria Garcia").order_by(Donor.id).limit(1)).one()
    return {"gift_id": refundable.id, "donor_id": donor.id}


def sign_in(page: Page) -> None:
    page.goto("/staff/sign-in")
    page.get_by_label("Email").fill("admin@newsroom.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))


def test_staff_walk_the_demo(page: Page, seeded, assert_accessible, tmp_path):
    sign_in(page)
    for n in (1, 2, 3):  # today, this month, this fiscal year
        assert page.get_by_test_id(f"period-{n}-gifts").inner_text().strip() not in ("", "0")
    assert_accessible(page)

    # Download the gifts list (this year's online gifts) as a spreadsheet.
    page.goto("/staff/gifts?source=stripe")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Excel (xlsx)").click()
    download = download_info.value
    assert download.suggested_filename.startswith("gifts-") and download.suggested_filename.endswith(".xlsx")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.stat().st_size > 10_000

    # Correct a donor.
    page.goto(f"/staff/donors/{seeded['donor_id']}")
    page.get_by_role("link", name="Correct this donor's details").click()
    page.get_by_label("Street address").fill("500 Grand Ave")
    page.get_by_label("Postal mail (appeals, newsletters) is welcome").uncheck()
    page.get_by_role("button", name="Save the corrections").click()
    expect(page.get_by_role("status")).to_contain_text("Saved: street address, postal mail preference changed.")
    expect(page.get_by_text("postal mail: not wanted")).to_be_visible()

    # Refund part of a gift, after the confirmation.
    page.goto(f"/staff/gifts/{seeded['gift_id']}")
    page.get_by_label("Amount to refund").fill("5.00")
    page.get_by_label("Reason").first.fill("Gave twice by mistake")
    page.get_by_role("button", name="Refund through Stripe").click()
    expect(page.get_by_test_id("refund-amount")).to_have_text("$5.00")
    assert_accessible(page)
    page.get_by_role("button", name="Yes, refund $5.00").click()
    expect(page.get_by_role("status")).to_contain_text("of $5.00 requested")

    # Where the gifts came from, and the newsroom's look.
    page.goto("/staff/campaigns")
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    assert_accessible(page)
    page.goto("/staff/look")
    expect(page.get_by_label("Accent colour (like #0b4f8a; empty: the default blue)")).to_be_visible()
    assert_accessible(page)


def _phone_pages(seeded: dict) -> list[str]:
    gift, donor = seeded["gift_id"], seeded["donor_id"]
    program = "newsmatch-" + str(
        db.session.scalar(select(Gift.received_at).order_by(Gift.received_at.desc()).limit(1)).year
    )
    return [
        "/staff/",
        "/staff/gifts",
        f"/staff/gifts/{gift}",
        "/staff/donors?q=garcia",
        f"/staff/donors/{donor}",
        f"/staff/donors/{donor}/edit",
        "/staff/funds",
        f"/staff/campaigns?first={date.today() - timedelta(days=600)}",  # all the demo's gifts
        "/staff/look",
        "/staff/offline/new",
        "/staff/offline/batch",
        "/staff/users",
        "/staff/audit",
        "/staff/grants/",
        f"/staff/grants/{program}/",
        f"/staff/grants/{program}/reports/summary",
        f"/staff/grants/{program}/reports/ledger",
        f"/staff/grants/{program}/reports/payouts",
        f"/staff/donors/{donor}/statement",
        "/staff/disputes",
        "/staff/events",
        "/staff/outbox",
        "/staff/webhooks/",
    ]


def test_no_staff_page_is_wider_than_a_phone(new_context, seeded):
    context = new_context(viewport=PHONE)
    page = context.new_page()
    sign_in(page)
    shots = os.environ.get("DEMO_SCREENSHOTS")
    too_wide: dict[str, int] = {}
    for number, path in enumerate(_phone_pages(seeded)):
        response = page.goto(path)
        assert response is not None and response.status < 400, path
        if path.endswith("/statement"):  # the years list: open the latest year's statement
            # Wait for the statement itself: reading the page mid-navigation finds no document.
            with page.expect_navigation():
                page.get_by_role("link", name=re.compile(r"\d{4}")).first.click()
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
        if shots:
            page.screenshot(path=str(Path(shots) / f"{number:02d}{path.replace('/', '_')[:60]}.png"), full_page=True)
    assert too_wide == {}
