"""Issue 13, finding 5: checkouts never paid stayed `pending` forever. A checkout that expires
(Stripe's `checkout.session.expired`, or the local gateway's session older than Stripe's 24
hours) ends `expired`; a declined one `failed` (until another card pays it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger import service
from donations.ledger.models import Gift, GiftStatus
from tests import stripe_events as se
from tests.factories import make_donor, make_fund
from tests.forms import page_text


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def started(fund, session_id: str, *, hours_ago: float = 0) -> Gift:
    gift = service.start_gift(make_donor(), fund, service.GiftDetails(2500, 0, "one_time", None, False, None, None, {}))
    gift.stripe_checkout_session_id = session_id
    gift.created_at = utcnow() - timedelta(hours=hours_ago)
    db.session.commit()
    return gift


def status_of(gift_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Gift, gift_id).status


def test_an_expired_session_expires_its_gift_and_never_a_paid_one(client, webhook_secret, fund):
    abandoned, paid = started(fund, "cs_test_abandoned"), started(fund, "cs_test_paid")
    se.post_event(
        client,
        se.event("checkout.session.completed", se.checkout_session(session_id="cs_test_paid", amount_cents=2500)),
        webhook_secret,
    )
    for session_id in ("cs_test_abandoned", "cs_test_paid"):
        expired = se.checkout_session(session_id=session_id, payment_status="unpaid") | {"status": "expired"}
        se.post_event(client, se.event("checkout.session.expired", expired), webhook_secret)
    assert (status_of(abandoned.id), status_of(paid.id)) == (GiftStatus.EXPIRED, GiftStatus.PAID)


def test_a_declined_card_fails_the_gift_until_another_card_pays_it(client, webhook_secret, fund):
    gift = started(fund, "cs_test_declined")
    intent = se.unique("pi")
    declined = se.stripe_object(
        "charge",
        id=se.unique("ch"),
        status="failed",
        paid=False,
        payment_intent=intent,
        metadata={"gift_id": str(gift.id)},
    )
    se.post_event(client, se.event("charge.failed", declined), webhook_secret)
    assert status_of(gift.id) == GiftStatus.FAILED
    session = se.checkout_session(
        session_id="cs_test_declined", amount_cents=2500, payment_intent=intent, metadata={"gift_id": str(gift.id)}
    )
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    assert status_of(gift.id) == GiftStatus.PAID


def test_a_local_checkout_older_than_24_hours_expires_when_opened(client, fund):
    gift = started(fund, "cs_local_stale", hours_ago=24.1)
    response = client.get("/pay/local/cs_local_stale")
    assert response.status_code == 302
    assert status_of(gift.id) == GiftStatus.EXPIRED
    thanks = page_text(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "This checkout has expired" in thanks and "no money was taken" in thanks
    assert client.get("/pay/local/cs_local_stale").headers["Location"] == response.headers["Location"]  # no card form
    assert status_of(gift.id) == GiftStatus.EXPIRED


def test_payments_sync_expires_local_checkouts_left_for_24_hours(app, fund):
    stale, declined, fresh = (
        started(fund, "cs_local_old", hours_ago=25),
        started(fund, "cs_local_declined", hours_ago=30),
        started(fund, "cs_local_new", hours_ago=23),
    )
    declined.status = GiftStatus.FAILED
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["payments", "sync"])
    assert "Expired 2 local checkouts" in result.output, result.output
    assert [status_of(g.id) for g in (stale, declined, fresh)] == [
        GiftStatus.EXPIRED,
        GiftStatus.EXPIRED,
        GiftStatus.PENDING,
    ]
    assert db.session.scalars(select(Gift.status).where(Gift.status == GiftStatus.PENDING)).all() == ["pending"]
