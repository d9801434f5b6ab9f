"""Issue 13, finding 8: receipts had no card's last four digits although Stripe sends them in
`charge.succeeded` (payment_method_details.card.last4), before or after the gift's checkout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus
from donations.mail import render
from donations.mail.models import OutboxMessage
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def charge(payment_intent: str, last4: str = "4242", metadata: dict[str, str] | None = None) -> dict:
    return se.stripe_object(
        "charge",
        id=se.unique("ch"),
        payment_intent=payment_intent,
        metadata=metadata or {},
        payment_method_details={"type": "card", "card": {"last4": last4}},
    )


def receipt_text(gift: Gift) -> str:
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "gift_receipt")).one()
    assert message.context == {"gift_id": gift.id}
    return render.render(message.kind, message.context).text


def test_charge_before_our_checkout_completes_fills_the_card(client, webhook_secret, fund):
    pending = make_gift(make_donor("reader@example.org"), fund, 5000, status=GiftStatus.PENDING, received_at=None)
    pending.stripe_checkout_session_id = session_id = se.unique("cs")
    db.session.commit()
    intent = se.unique("pi")
    metadata = {"gift_id": str(pending.id)}
    se.post_event(client, se.event("charge.succeeded", charge(intent, "1881", metadata)), webhook_secret)
    session = se.checkout_session(session_id=session_id, payment_intent=intent, metadata=metadata)
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)

    gift = db.session.get(Gift, pending.id)
    db.session.refresh(gift)
    assert (gift.status, gift.card_last4) == (GiftStatus.PAID, "1881")
    assert "card ending in 1881" in receipt_text(gift)


def test_charge_after_the_checkout_fills_the_card(client, webhook_secret, fund):
    intent = se.unique("pi")
    se.post_event(
        client, se.event("checkout.session.completed", se.checkout_session(payment_intent=intent)), webhook_secret
    )
    se.post_event(client, se.event("charge.succeeded", charge(intent, "0005")), webhook_secret)
    gift = db.session.scalars(select(Gift)).one()
    assert gift.card_last4 == "0005" and gift.stripe_charge_id
    assert "card ending in 0005" in receipt_text(gift)


def test_a_charge_for_a_gift_not_recorded_yet_waits_for_it(client, webhook_secret, fund):
    """A Payment Link's charge names no gift of ours: it waits, then applies once the gift is."""
    intent = se.unique("pi")
    answer = se.post_event(client, se.event("charge.succeeded", charge(intent, "4444")), webhook_secret)
    assert answer.json["outcome"] == "deferred"
    se.post_event(
        client, se.event("checkout.session.completed", se.checkout_session(payment_intent=intent)), webhook_secret
    )
    assert db.session.scalars(select(Gift)).one().card_last4 == "4444"
    assert db.session.scalars(select(StripeEvent.applied_at)).all()[0] is not None


def test_a_charge_without_a_card_changes_nothing(client, webhook_secret, fund):
    bank = se.stripe_object("charge", id=se.unique("ch"), payment_intent=se.unique("pi"), payment_method_details={})
    answer = se.post_event(client, se.event("charge.succeeded", bank), webhook_secret)
    assert answer.json["outcome"] == "applied"
