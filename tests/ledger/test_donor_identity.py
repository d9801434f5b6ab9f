"""Donor identity: the case-folded email, and merges followed when new money arrives."""

from __future__ import annotations

from sqlalchemy import select

from donations.extensions import db
from donations.ledger import donors, service
from donations.ledger.models import Gift
from tests import stripe_events as se
from tests.factories import make_donor, make_fund


def test_email_key_folds_case_and_spaces():
    assert service.email_key("  Jane.Doe@Example.ORG ") == "jane.doe@example.org"


def test_a_payment_from_a_merged_duplicates_email_lands_on_the_kept_donor(client, webhook_secret):
    make_fund("general", is_default=True)
    kept = make_donor("jane@example.org", name="Jane Doe")
    duplicate = make_donor("jdoe@work.example", name="J. Doe")
    donors.merge(duplicate, kept)
    db.session.commit()

    session = se.checkout_session(email="JDoe@Work.example", amount_cents=4200)
    assert se.post_event(client, se.event("checkout.session.completed", session), webhook_secret).status_code == 200

    gift = db.session.scalars(select(Gift)).one()
    assert gift.donor_id == kept.id
    assert service.find_or_create_donor("jdoe@work.example").id == kept.id
