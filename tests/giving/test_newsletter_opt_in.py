"""The gift page's newsletter opt-in: off unless staff offer it (for the newsroom, or per fund,
with its wording); a ticked box is kept with its time and the exact words shown; exported with
donors (the donors export, and a tag in the Mailchimp members export) once the gift is received."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from donations.clock import local_time_text, utcnow
from donations.extensions import db, unit_of_work
from donations.ledger.models import Gift, GiftStatus, Membership, MembershipStatus, NewsletterOptIn
from donations.newsroom import DEFAULT_NEWSLETTER_WORDING, LookSettings, save_look
from donations.privacy.service import export_donor
from donations.staff.exports import DONOR_COLUMNS
from tests.factories import make_fund
from tests.forms import csrf_token
from tests.giving.support import post_gift
from tests.staff.support import make_staff, sign_in

WORDING = "Email me The Ledger's weekly newsletter. Unsubscribe any time."


@pytest.fixture
def fund(app):
    return make_fund("forums", name="Community Forums Reporting", is_default=True)


def offer_newsletter(offered: bool = True, wording: str = WORDING) -> None:
    with unit_of_work():
        save_look(LookSettings(name="", accent="", footer="", newsletter_offered=offered, newsletter_wording=wording))


def test_not_offered_unless_staff_turn_it_on(client, fund):
    html = client.get("/give/forums").get_data(as_text=True)
    assert 'name="newsletter"' not in html
    post_gift(client, "/give/forums", newsletter="y")  # a box not shown is not an opt-in
    assert db.session.scalar(select(NewsletterOptIn)) is None


def test_a_ticked_box_is_kept_with_its_time_and_words(client, fund):
    offer_newsletter()
    html = client.get("/give/forums").get_data(as_text=True)
    assert 'name="newsletter"' in html and WORDING.replace("'", "&#39;") in html
    assert 'name="newsletter" type="checkbox" value="y">' in html  # never ticked in advance
    before = utcnow()
    assert post_gift(client, "/give/forums", newsletter="y").status_code == 303
    (opt_in,) = db.session.scalars(select(NewsletterOptIn))
    assert opt_in.wording == WORDING
    assert before - timedelta(seconds=1) <= opt_in.opted_in_at <= utcnow()
    assert db.session.get(Gift, opt_in.gift_id).donor.email == "rae@example.org"


def test_an_unticked_box_records_nothing(client, fund):
    offer_newsletter()
    assert post_gift(client, "/give/forums").status_code == 303
    assert db.session.scalar(select(NewsletterOptIn)) is None


def test_a_fund_says_otherwise_with_its_own_words(client, fund):
    other = make_fund("investigations", name="Investigative Reporting Fund")
    offer_newsletter()
    fund.newsletter_offer = "off"
    other.newsletter_offer, other.newsletter_wording = "on", "Send me the investigations newsletter."
    db.session.commit()
    assert 'name="newsletter"' not in client.get("/give/forums").get_data(as_text=True)
    offer_newsletter(offered=False)
    assert "Send me the investigations newsletter." in client.get("/give/investigations").get_data(as_text=True)
    post_gift(client, "/give/investigations", newsletter="y")
    assert db.session.scalar(select(NewsletterOptIn.wording)) == "Send me the investigations newsletter."


def test_the_default_wording(client, fund):
    offer_newsletter(wording="")
    assert DEFAULT_NEWSLETTER_WORDING in client.get("/give/forums").get_data(as_text=True)


def test_staff_set_a_funds_opt_in(app, fund):
    staff = sign_in(app.test_client(), make_staff("admin"))
    form = {
        "csrf_token": csrf_token(staff, f"/staff/funds/{fund.id}"),
        "name": fund.name,
        "slug": fund.slug,
        "active": "y",
        "is_default": "y",
        "newsletter_offer": "on",
        "newsletter_wording": "Weekly forum notes by email.",
    }
    assert staff.post(f"/staff/funds/{fund.id}", data=form).status_code == 303
    db.session.refresh(fund)
    assert (fund.newsletter_offer, fund.newsletter_wording) == ("on", "Weekly forum notes by email.")


def _donor_rows(staff) -> dict[str, dict[str, str]]:
    answer = staff.get("/staff/donors/export?format=csv")
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    assert rows[0] == list(DONOR_COLUMNS)
    return {row[2]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}


def test_exported_with_donors_once_the_gift_is_received(client, app, fund):
    offer_newsletter(wording="=1+1 Send me the newsletter")  # formula-safe in the file
    post_gift(client, "/give/forums", newsletter="y")
    staff = sign_in(app.test_client(), make_staff("finance"))
    assert _donor_rows(staff)["rae@example.org"]["Newsletter opt-in"] == ""  # not paid yet

    gift = db.session.scalar(select(Gift))
    gift.status, gift.received_at = GiftStatus.PAID, utcnow()
    db.session.commit()
    row = _donor_rows(staff)["rae@example.org"]
    assert row["Newsletter wording"] == "'=1+1 Send me the newsletter"
    assert row["Newsletter opt-in"] == local_time_text(db.session.scalar(select(NewsletterOptIn.opted_in_at)))

    # A member who opted in is tagged so in the Mailchimp export.
    db.session.add(
        Membership(
            donor_id=gift.donor_id, fund_id=fund.id, amount_cents=1500, interval="month", status=MembershipStatus.ACTIVE
        )
    )
    db.session.commit()
    members = staff.get("/staff/members/mailchimp.csv").get_data().decode("utf-8-sig")
    assert "Newsletter opt-in" in members.splitlines()[1]


def test_a_donors_data_export_includes_the_opt_in(client, fund):
    offer_newsletter()
    post_gift(client, "/give/forums", newsletter="y")
    gift = db.session.scalar(select(Gift))
    (exported,) = export_donor(gift.donor_id)["gifts"]
    assert exported["newsletter_opt_in"]["wording"] == WORDING
