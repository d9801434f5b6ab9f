"""A reader becomes a monthly member in headless Chromium, gets the emailed link, opens it and
cancels; `payments bill-due` then bills nothing for that membership, and renews an active one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from donations.clock import local_date
from donations.extensions import db
from donations.ledger.models import Donor, Gift, GiftStatus, Membership, MembershipStatus
from donations.mail.models import OutboxMessage
from donations.payments.local import billing as local_billing
from tests.factories import make_fund
from tests.giving.support import start_local_membership

pytestmark = pytest.mark.browser


@pytest.fixture
def fund(app):
    return make_fund(
        "community-forums",
        name="Community Forums Reporting",
        is_default=True,
        suggested_amounts={"one_time": [2500, 5000], "monthly": [700, 1500, 3000], "annual": [9000, 18000]},
    )


def memberships_of(email: str) -> list[Membership]:
    return list(
        db.session.scalars(
            select(Membership)
            .join(Membership.donor)
            .where(Donor.email_key == email)
            .execution_options(populate_existing=True)
        )
    )


def installments_of(membership: Membership) -> list[Gift]:
    return list(
        db.session.scalars(
            select(Gift)
            .where(Gift.membership_id == membership.id, Gift.status == GiftStatus.PAID)
            .execution_options(populate_existing=True)
        )
    )


def test_a_reader_becomes_a_member_then_cancels_by_the_emailed_link(page: Page, app, client, fund, assert_accessible):
    # The gift page: monthly, with the monthly suggestions (forms.js shows them on the switch).
    page.goto("/give")
    expect(page.get_by_label("$15", exact=True)).to_be_hidden()
    page.get_by_label("Monthly").check()
    expect(page.get_by_label("$15", exact=True)).to_be_visible()
    page.get_by_label("$15", exact=True).check()
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.locator("[data-summary]")).to_have_text("$15 every month")
    page.get_by_label("Your name").fill("Rae Reader")
    page.get_by_label("Email", exact=True).fill("rae@example.org")
    assert_accessible(page)
    page.get_by_role("button", name="Continue to payment").click()

    # The local checkout, then the thank-you page with the level.
    expect(page).to_have_url(re.compile(r"/pay/local/cs_local_"))
    expect(page.locator("main")).to_contain_text("$15.00 every month")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Pay $15.00").click()
    expect(page).to_have_url(re.compile(r"/give/thanks\?session_id=cs_local_"))
    expect(page.get_by_test_id("membership-level")).to_have_text("Sustainer")  # $180 a year
    assert_accessible(page)
    (membership,) = memberships_of("rae@example.org")
    assert (membership.status, membership.amount_cents, local_billing.card_on_file(membership.id)) == (
        "active",
        1500,
        "4242",
    )
    assert len(installments_of(membership)) == 1

    # The reader asks for a link; the test reads it from the outbox, as the mailer would.
    page.goto("/membership")
    assert_accessible(page)
    page.get_by_label("Your email address").fill("rae@example.org")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = db.session.scalars(
        select(OutboxMessage.context).where(
            OutboxMessage.kind == "magic_link", OutboxMessage.to_address == "rae@example.org"
        )
    ).one()["url"]

    page.goto(link)
    expect(page).to_have_url(re.compile(r"/membership/account$"))  # the token has left the address bar
    expect(page.get_by_test_id("membership-level")).to_have_text("Sustainer")
    expect(page.get_by_test_id("membership-status")).to_have_text("active")
    expect(page.locator("table.gifts tbody tr")).to_have_count(1)
    assert_accessible(page)

    page.get_by_role("button", name="Manage this membership").click()
    expect(page.get_by_role("heading", name="Manage your membership")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Cancel membership").click()
    expect(page.get_by_role("heading", name="Cancel your membership?")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Yes, cancel my membership").click()
    expect(page).to_have_url(re.compile(r"/membership/account$"))
    expect(page.get_by_role("status")).to_contain_text("Your membership is canceled")
    expect(page.get_by_test_id("membership-status")).to_contain_text("canceled")
    assert_accessible(page)
    (membership,) = memberships_of("rae@example.org")
    assert membership.status == MembershipStatus.CANCELED

    # Renewals: nothing for the canceled membership; one installment for an active one.
    active = start_local_membership(client, email="stays@example.org", amount="3000")
    as_of = local_date(max(membership.current_period_end, active.current_period_end)) + timedelta(days=1)
    result = app.test_cli_runner().invoke(args=["payments", "bill-due", "--as-of", as_of.isoformat()])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Billed 1, declined 0, ended 0."
    assert len(installments_of(membership)) == 1
    assert [g.amount_cents for g in installments_of(active)] == [3000, 3000]


def test_a_member_changes_frequency_and_fund_pauses_and_fixes_the_card(
    page: Page, app, client, fund, assert_accessible
):
    make_fund("investigative", name="Investigative Reporting Fund")
    membership = start_local_membership(client, email="mo@example.org", amount="1500")
    page.goto("/membership")
    page.get_by_label("Your email address").fill("mo@example.org")
    page.get_by_role("button", name="Email me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    link = db.session.scalars(
        select(OutboxMessage.context).where(
            OutboxMessage.kind == "magic_link", OutboxMessage.to_address == "mo@example.org"
        )
    ).one()["url"]
    page.goto(link)

    # Annual, to the other fund: the question first, then the change, in words.
    page.get_by_role("link", name="Change the amount, frequency or fund, or pause").click()
    expect(page.get_by_role("heading", name="Change your membership", exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("New amount, in dollars").fill("150")
    page.get_by_label("Annual").check()
    page.get_by_label("Fund", exact=True).select_option(label="Investigative Reporting Fund")
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_role("heading", name="Change your membership?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("$150.00 a year to Investigative Reporting Fund")
    assert_accessible(page)
    page.get_by_role("button", name="Yes, change my membership").click()
    expect(page).to_have_url(re.compile(r"/membership/account$"))
    expect(page.get_by_role("status")).to_contain_text("Your membership is changed")
    expect(page.locator("main")).to_contain_text("$150.00 a year to Investigative Reporting Fund")

    # A pause of one payment, shown on the member's page.
    page.get_by_role("link", name="Change the amount, frequency or fund, or pause").click()
    page.get_by_role("radio", name=re.compile(r"The next payment: charged again on")).check()
    page.get_by_role("button", name="Pause my membership").click()
    expect(page.get_by_test_id("membership-paused")).to_contain_text("Paused: nothing is charged until")
    assert_accessible(page)

    # The card page behind a failed-payment email's link (as the mail renders it).
    from donations.mail.card_links import card_link_path

    (row,) = memberships_of("mo@example.org")
    page.goto(card_link_path(row))
    expect(page.get_by_role("heading", name="Update your card")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("New card number").fill("4242 4242 4242 4242")
    page.get_by_role("button", name="Update card").click()
    expect(page.get_by_role("heading", name="Your card is updated")).to_be_visible()
    assert local_billing.card_on_file(membership.id) == "4242"
