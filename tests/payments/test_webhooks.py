"""The webhook: verified, stored by id, applied exactly once, whatever the order or repetition."""

from __future__ import annotations

import json
import random
import re
import time

import pytest
import stripe
from sqlalchemy import Text, cast, func, select

from donations.extensions import db
from donations.ledger.models import Donor, Gift, GiftStatus, Membership
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_donor, make_fund


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def gift_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Gift))


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(StripeEvent))


def flip_last_hex(signature: str) -> str:
    """The signature with its last hex digit changed to another, so it never verifies."""
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")


def test_our_signature_is_what_stripe_verifies(webhook_secret):
    payload = se.event("checkout.session.completed", se.checkout_session())
    body = json.dumps(payload).encode()
    header = se.signed_headers(body, webhook_secret)["Stripe-Signature"]
    verified = stripe.Webhook.construct_event(body.decode(), header, webhook_secret)
    assert verified.id == payload["id"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.decode(), header, "whsec_other")


def test_delivery_is_stored_as_signed_and_answered_without_a_session(client, webhook_secret, fund):
    # Stripe's bytes are kept as they came (not parsed and serialized again: the indentation
    # here would not survive that), and a machine's post is given no session cookie, while the
    # answer still carries the security headers and a request id.
    client.get("/give")  # a reader's session cookie in the client, which the webhook ignores
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=1_234))
    body = json.dumps(payload, indent=2).encode()
    response = client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, webhook_secret))
    assert (response.status_code, response.json) == (200, {"id": payload["id"], "received": "stored"})
    assert "Set-Cookie" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Request-ID"]
    stored = db.session.scalar(select(cast(StripeEvent.payload, Text)).where(StripeEvent.id == payload["id"]))
    assert stored == body.decode()
    assert db.session.get(StripeEvent, payload["id"]).payload == payload


def test_payment_link_session_becomes_a_gift_to_the_default_fund(client, webhook_secret, fund):
    session = se.checkout_session(amount_cents=2_537, email="Pat.Reader@Example.ORG", name="Pat Reader")
    response = se.post_event(
        client, se.event("checkout.session.completed", session, created=1_767_225_600), webhook_secret
    )
    assert response.status_code == 200, response.data
    assert response.json["outcome"] == "applied"
    gift = db.session.scalars(select(Gift)).one()
    assert gift.amount_cents == 2_537
    assert gift.status == GiftStatus.PAID
    assert gift.tax_deductible is False
    assert gift.fund_id == fund.id
    assert gift.stripe_checkout_session_id == session["id"]
    assert gift.stripe_payment_intent_id == session["payment_intent"]
    assert gift.received_at.timestamp() == 1_767_225_600  # dated by the event's `created`
    assert gift.donor.email_key == "pat.reader@example.org"
    assert gift.donor.name == "Pat Reader"


def test_donor_matched_on_case_folded_email(client, webhook_secret, fund):
    donor = make_donor("jane@example.org")
    for email in ("JANE@example.org", "Jane@Example.Org"):
        se.post_event(client, se.event("checkout.session.completed", se.checkout_session(email=email)), webhook_secret)
    assert db.session.scalar(select(func.count()).select_from(Donor)) == 1
    assert {g.donor_id for g in db.session.scalars(select(Gift))} == {donor.id}


def test_business_name_makes_an_organization_gift(client, webhook_secret, fund):
    session = se.checkout_session(business_name="Corner Bakery LLC")
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    assert db.session.scalars(select(Gift)).one().organization == "Corner Bakery LLC"


def test_duplicate_delivery_changes_nothing(client, webhook_secret, fund):
    payload = se.event("checkout.session.completed", se.checkout_session())
    first = se.post_event(client, payload, webhook_secret)
    second = se.post_event(client, payload, webhook_secret)
    assert (first.json["outcome"], second.json["outcome"]) == ("applied", "duplicate")
    assert gift_count() == 1 and event_count() == 1


def test_completed_and_async_succeeded_for_one_session_make_one_gift(client, webhook_secret, fund):
    session = se.checkout_session()
    se.post_event(client, se.event("checkout.session.async_payment_succeeded", session), webhook_secret)
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    assert gift_count() == 1


def test_unpaid_session_waits_for_async_result(client, webhook_secret, fund):
    unpaid = se.checkout_session(payment_status="unpaid")
    se.post_event(client, se.event("checkout.session.completed", unpaid), webhook_secret)
    assert gift_count() == 0
    paid = dict(unpaid, payment_status="paid")
    se.post_event(client, se.event("checkout.session.async_payment_succeeded", paid), webhook_secret)
    assert db.session.scalars(select(Gift)).one().status == GiftStatus.PAID


def test_pending_gift_from_our_checkout_is_marked_paid(client, webhook_secret, fund):
    from donations.ledger import service

    donor = make_donor("ann@example.org")
    gift = service.start_gift(
        donor,
        fund,
        service.GiftDetails(5181, 181, "one_time", None, False, "memory", "Grandma Lou", {}),
    )
    gift.stripe_checkout_session_id = "cs_test_ours"
    db.session.commit()
    session = se.checkout_session(
        session_id="cs_test_ours",
        amount_cents=5181,
        email="ann@example.org",
        metadata={"gift_id": str(gift.id), "fund": fund.slug, "frequency": "one_time"},
    )
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    db.session.expire_all()
    (paid,) = db.session.scalars(select(Gift)).all()
    assert (paid.id, paid.status, paid.amount_cents, paid.fee_covered_cents) == (gift.id, GiftStatus.PAID, 5181, 181)
    assert paid.tribute_name == "Grandma Lou"


def test_async_payment_failed_fails_the_pending_gift(client, webhook_secret, fund):
    from donations.ledger import service

    gift = service.start_gift(make_donor(), fund, service.GiftDetails(2500, 0, "one_time", None, False, None, None, {}))
    gift.stripe_checkout_session_id = "cs_test_fails"
    db.session.commit()
    session = se.checkout_session(session_id="cs_test_fails", payment_status="unpaid")
    se.post_event(client, se.event("checkout.session.async_payment_failed", session), webhook_secret)
    db.session.expire_all()
    assert db.session.get(Gift, gift.id).status == GiftStatus.FAILED


@pytest.mark.parametrize("event_type", ["payment_intent.succeeded", "charge.succeeded", "invoice.payment_succeeded"])
def test_other_notices_of_the_same_money_never_make_a_second_gift(client, webhook_secret, fund, event_type):
    session = se.checkout_session()
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    resource = {
        "payment_intent.succeeded": "payment_intent",
        "charge.succeeded": "charge",
        "invoice.payment_succeeded": "invoice",
    }[event_type]
    obj = se.stripe_object(resource, id=se.unique("obj"), amount=5000)
    response = se.post_event(client, se.event(event_type, obj), webhook_secret)
    assert response.status_code == 200
    assert gift_count() == 1


def test_subscription_checkout_records_no_money(client, webhook_secret, fund):
    subscription_id = se.unique("sub")
    # The metadata our gift page sets on a subscription checkout: it says how often it renews.
    session = se.checkout_session(
        mode="subscription",
        subscription=subscription_id,
        amount_cents=1_500,
        email="member@example.org",
        metadata={**se.OURS, "fund": fund.slug, "frequency": "monthly"},
    )
    response = se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    assert response.status_code == 200 and response.json["outcome"] == "applied"
    membership = db.session.scalars(select(Membership)).one()
    assert membership.stripe_subscription_id == subscription_id
    assert (membership.amount_cents, membership.interval, membership.status) == (1_500, "month", "active")
    assert membership.donor.email_key == "member@example.org"
    assert gift_count() == 0


def test_unknown_event_type_is_stored_and_acknowledged(client, webhook_secret, fund):
    payload = se.stripe_object("event", id=se.unique("evt"), created=int(time.time()))  # Stripe's plan.created
    response = se.post_event(client, payload, webhook_secret)
    assert response.status_code == 200 and response.json["outcome"] == "ignored"
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.type == "plan.created" and stored.applied_at is not None


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(
            lambda body, h: (body, {**h, "Stripe-Signature": flip_last_hex(h["Stripe-Signature"])}), id="bad-signature"
        ),
        pytest.param(lambda body, h: (body + b" ", h), id="body-changed-after-signing"),
        pytest.param(lambda body, h: (body, {"Content-Type": "application/json"}), id="no-signature"),
    ],
)
def test_unverifiable_requests_are_refused_and_write_nothing(client, webhook_secret, fund, tamper):
    body = json.dumps(se.event("checkout.session.completed", se.checkout_session())).encode()
    body, headers = tamper(body, se.signed_headers(body, webhook_secret))
    response = client.post("/stripe/webhook", data=body, headers=headers)
    assert response.status_code == 400
    assert gift_count() == 0 and event_count() == 0


@pytest.mark.parametrize("offset", [-301, 301, 600], ids=["past", "future-just-beyond", "future-ten-minutes"])
def test_timestamp_beyond_the_tolerance_either_way_is_refused(client, webhook_secret, fund, offset):
    payload = se.event("checkout.session.completed", se.checkout_session())
    response = se.post_event(client, payload, webhook_secret, timestamp=int(time.time()) + offset)
    assert response.status_code == 400 and "tolerance" in response.json["error"]
    assert event_count() == 0 and gift_count() == 0


def test_timestamp_a_little_ahead_is_accepted(client, webhook_secret, fund):
    # Clocks differ by seconds: a signature made just "after" our now is still Stripe's.
    payload = se.event("checkout.session.completed", se.checkout_session())
    response = se.post_event(client, payload, webhook_secret, timestamp=int(time.time()) + 30)
    assert response.status_code == 200 and gift_count() == 1


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"id": "evt_1"}', b'{"id": 5, "type": "x", "created": 1, "data": {"object": {}}}']
)
def test_signed_but_malformed_bodies_are_refused(client, webhook_secret, body):
    response = client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, webhook_secret))
    assert response.status_code == 400
    assert event_count() == 0


def test_unreadable_event_is_kept_with_its_error(client, webhook_secret, fund):
    session = se.checkout_session()
    del session["amount_total"]
    payload = se.event("checkout.session.completed", session)
    response = se.post_event(client, payload, webhook_secret)
    assert response.status_code == 200 and response.json["outcome"] == "deferred"
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.applied_at is None and "amount_total" in stored.error
    assert gift_count() == 0


def test_database_unavailable_answers_503_so_stripe_retries(webhook_secret):
    from donations import create_app

    broken = create_app(
        "testing",
        {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/none", "SERVER_NAME": "localhost"},
    )
    payload = se.event("checkout.session.completed", se.checkout_session())
    response = se.post_event(broken.test_client(), payload, webhook_secret)
    assert response.status_code == 503
    assert response.headers["Retry-After"]


@pytest.mark.postgresql_only
def test_same_event_from_eight_workers_at_once_makes_one_gift(app, webhook_secret, fund):
    payload = se.event("checkout.session.completed", se.checkout_session())
    statuses = [status for status, _outcome in se.post_at_once(app, [payload] * 8, webhook_secret)]
    assert statuses == [200] * 8
    assert gift_count() == 1 and event_count() == 1


@pytest.mark.postgresql_only
def test_two_hundred_shuffled_events_with_duplicates(client, webhook_secret, fund):
    rng = random.Random(20261126)
    sessions = [se.checkout_session(amount_cents=500 + 7 * n, email=f"reader{n % 60}@example.org") for n in range(140)]
    payloads = [se.event("checkout.session.completed", s) for s in sessions]
    deliveries = payloads + rng.sample(payloads, 60)  # 30% of 200 are duplicates
    rng.shuffle(deliveries)
    for payload in deliveries:
        assert se.post_event(client, payload, webhook_secret).status_code == 200
    assert gift_count() == 140
    total = db.session.scalar(select(func.sum(Gift.amount_cents)))
    assert total == sum(s["amount_total"] for s in sessions)
    assert db.session.scalar(select(func.count()).select_from(Donor)) == 60


def test_the_webhook_stores_times_as_sqlalchemy_writes_them(client, webhook_secret):
    # The webhook's INSERT runs on the driver's cursor with the columns' own bind processors: on
    # SQLite the text must be SQLAlchemy's (microseconds always written), or same-second rows would
    # sort and compare differently from rows the ORM wrote; on PostgreSQL, aware UTC timestamps.
    from datetime import UTC, datetime

    from sqlalchemy import text

    from donations.payments import events

    payload = se.event("checkout.session.completed", se.checkout_session())
    body = json.dumps(payload).encode()
    assert client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, webhook_secret)).status_code == 200
    synced = se.event("checkout.session.completed", se.checkout_session())
    events.store(synced, via="sync")  # `payments sync`'s path: the same statements in the session
    rows = db.session.execute(
        text("SELECT created_at, received_at, next_attempt_at FROM stripe_events ORDER BY id")
    ).all()
    assert len(rows) == 2
    for row in rows:
        for value in row:
            if db.engine.dialect.name == "sqlite":
                assert isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}", value), value
            else:
                assert value.utcoffset() is not None
    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.created_at == datetime.fromtimestamp(payload["created"], UTC)
    assert stored.received_at == stored.next_attempt_at
