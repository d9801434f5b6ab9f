"""The two ways a new event is applied (webhook.receive): in its own transaction without a
SAVEPOINT when nothing else is pending (undone whole if it fails, then stored again and applied
the careful way), or inside a SAVEPOINT. Either way: applied once, nothing half-written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from donations.extensions import db
from donations.ledger.models import Donor, Fund, Gift
from donations.mail.models import OutboxMessage
from donations.payments import events
from donations.payments.handlers import checkout as checkout_handlers
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def no_active_fund() -> None:
    db.session.execute(update(Fund).values(active=False))
    db.session.commit()


def test_a_deferral_in_the_savepoint_path_leaves_nothing_written(client, webhook_secret, fund):
    no_active_fund()
    db.session.get(Fund, fund.id)  # session now in a transaction: not alone
    assert db.session().in_transaction()
    payload = se.event("checkout.session.completed", se.checkout_session(email="x@example.org"))
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "deferred"
    db.session.expire_all()
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.applied_at is None and stored.attempts == 1 and "no active fund" in stored.error
    assert (count(Donor), count(Gift), count(OutboxMessage)) == (0, 0, 0)


def test_a_unique_key_race_without_savepoint_is_redone_and_applied_once(client, webhook_secret, fund, monkeypatch):
    real = checkout_handlers.ledger.record_checkout_payment
    calls = {"n": 0}

    def racing(payment):
        calls["n"] += 1
        result = real(payment)
        if calls["n"] == 1:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: gifts.x"))
        return result

    monkeypatch.setattr(checkout_handlers.ledger, "record_checkout_payment", racing)
    payload = se.event("checkout.session.completed", se.checkout_session(email="y@example.org"))
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "applied"
    db.session.expire_all()
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.applied_at is not None and stored.attempts == 1 and stored.error is None
    assert (count(Donor), count(Gift), count(OutboxMessage)) == (1, 1, 1)
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "duplicate"
    assert (count(Gift), count(OutboxMessage)) == (1, 1)


def test_staff_retry_applies_an_event_deferred_without_savepoint(client, webhook_secret, fund):
    no_active_fund()
    payload = se.event("checkout.session.completed", se.checkout_session(email="z@example.org"))
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "deferred"
    db.session.execute(update(Fund).values(active=True))
    db.session.commit()
    assert events.retry_one(payload["id"]) is events.Outcome.APPLIED
    db.session.expire_all()
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.attempts == 2 and stored.applied_at is not None and stored.error is None
    assert (count(Donor), count(Gift), count(OutboxMessage)) == (1, 1, 1)


def test_a_refused_value_after_the_donor_was_written_leaves_nothing(client, webhook_secret, fund):
    session = se.checkout_session(email="neg@example.org", amount_cents=-5)
    payload = se.event("checkout.session.completed", session)
    out = se.post_event(client, payload, webhook_secret).json["outcome"]
    db.session.expire_all()
    stored = db.session.get(StripeEvent, payload["id"])
    assert out == "deferred" and stored.applied_at is None and stored.attempts == 1
    assert (count(Donor), count(Gift), count(OutboxMessage)) == (0, 0, 0)


def _at_once(app, webhook_secret, payloads):
    return sorted(outcome or str(status) for status, outcome in se.post_at_once(app, payloads, webhook_secret))


@pytest.mark.postgresql_only
def test_one_deferring_event_from_eight_workers_at_once_is_kept_once(app, webhook_secret, fund):
    no_active_fund()
    payload = se.event("checkout.session.completed", se.checkout_session(email="w@example.org"))
    outcomes = _at_once(app, webhook_secret, [payload] * 8)
    assert set(outcomes) <= {"deferred", "duplicate"}
    db.session.expire_all()
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.applied_at is None and "no active fund" in stored.error
    assert (count(Donor), count(Gift), count(OutboxMessage), count(StripeEvent)) == (0, 0, 0, 1)


@pytest.mark.postgresql_only
def test_two_notices_of_one_payment_link_session_at_once_make_one_gift(app, webhook_secret, fund):
    session = se.checkout_session(email="pl@example.org")
    payloads = [
        se.event("checkout.session.completed", session),
        se.event("checkout.session.async_payment_succeeded", session),
    ] * 4
    outcomes = _at_once(app, webhook_secret, payloads)
    assert (count(Donor), count(Gift), count(OutboxMessage)) == (1, 1, 1)
    assert all(o in ("applied", "duplicate") for o in outcomes)
