"""When a webhook looks for waiting (deferred) events, and how an event that cannot be applied
is undone and kept: the receive path's shortcuts must not change what is recorded."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update

from donations.extensions import db
from donations.ledger.models import Donor, Fund, Gift, GiftStatus
from donations.mail.models import OutboxMessage
from donations.payments import events
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund
from tests.payments import support as me


@pytest.fixture
def fund(app):
    return make_fund("waiting-room", is_default=True)


class Clock:
    """Stands in for time.monotonic in the events module: moved by hand, never by waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(events, "monotonic", fake)  # this module's only, not the whole process's
    # The process's knowledge of waiting events is put back as it was after the test.
    monkeypatch.setattr(events._Waiting, "known", events._Waiting.known)
    monkeypatch.setattr(events._Waiting, "looked_at", events._Waiting.looked_at)
    return fake


def post(client, secret, payload) -> dict[str, Any]:
    response = se.post_event(client, payload, secret)
    assert response.status_code == 200, response.data
    return response.json


def paid_checkout(amount: int, email: str) -> tuple[dict[str, Any], str]:
    payment_intent = se.unique("pi")
    session = se.checkout_session(amount_cents=amount, email=email, payment_intent=payment_intent)
    return se.event("checkout.session.completed", session), payment_intent


def applied_at(event_id: str):
    db.session.expire_all()
    return db.session.get(StripeEvent, event_id).applied_at


def test_an_event_deferred_elsewhere_is_retried_once_the_interval_has_passed(client, webhook_secret, fund, clock):
    gift_event, payment_intent = paid_checkout(3_000, "wren@example.org")
    refund_event = se.event("refund.created", me.refund(amount=1_000, payment_intent=payment_intent))
    assert post(client, webhook_secret, refund_event)["outcome"] == "deferred"
    # As if another worker process had deferred it: this one looked a moment ago and found none.
    monkeypatch_state(known=False, looked_at=clock.now)

    assert post(client, webhook_secret, gift_event)["outcome"] == "applied"
    assert applied_at(refund_event["id"]) is None  # not looked for yet: within the interval

    clock.now += events.RETRY_CHECK_SECONDS
    other, _ = paid_checkout(2_000, "yael@example.org")
    assert post(client, webhook_secret, other)["outcome"] == "applied"
    assert applied_at(refund_event["id"]) is not None
    gift = db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == payment_intent)).one()
    assert gift.status == GiftStatus.PARTIALLY_REFUNDED


def test_an_event_this_process_deferred_is_retried_at_once(client, webhook_secret, fund, clock):
    gift_event, payment_intent = paid_checkout(3_000, "zoe@example.org")
    refund_event = se.event("refund.created", me.refund(amount=3_000, payment_intent=payment_intent))
    monkeypatch_state(known=False, looked_at=clock.now)  # nothing was waiting a moment ago
    assert post(client, webhook_secret, refund_event)["outcome"] == "deferred"
    assert post(client, webhook_secret, gift_event)["outcome"] == "applied"  # the clock has not moved
    assert applied_at(refund_event["id"]) is not None


def test_an_event_that_fails_after_writing_leaves_nothing_and_is_kept_with_its_reason(
    client, webhook_secret, fund, clock
):
    # No active fund: the donor is written before the gift's fund is found missing.
    db.session.execute(update(Fund).values(active=False))
    db.session.commit()
    gift_event, payment_intent = paid_checkout(4_000, "ash@example.org")
    assert post(client, webhook_secret, gift_event)["outcome"] == "deferred"

    stored = db.session.get(StripeEvent, gift_event["id"])
    assert stored.applied_at is None and stored.attempts == 1 and "no active fund" in stored.error
    for model in (Donor, Gift, OutboxMessage):
        assert db.session.scalar(select(func.count()).select_from(model)) == 0, model

    # Once a fund is active again, the next applied webhook (this process knows one waits) applies it.
    db.session.execute(update(Fund).values(active=True))
    db.session.commit()
    other, _ = paid_checkout(1_000, "bea@example.org")
    assert post(client, webhook_secret, other)["outcome"] == "applied"
    assert applied_at(gift_event["id"]) is not None
    gift = db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == payment_intent)).one()
    assert (gift.status, gift.amount_cents, gift.donor.email) == (GiftStatus.PAID, 4_000, "ash@example.org")
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 2  # one receipt each


def monkeypatch_state(*, known: bool, looked_at: float) -> None:
    # One process's state; the clock fixture restores it after the test.
    events._Waiting.known = known
    events._Waiting.looked_at = looked_at
