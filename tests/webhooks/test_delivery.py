"""Outgoing webhooks end to end: Stripe events applied by the worker's apply step queue events
in the same transaction; the worker delivers them, signed, to a real receiver that is down for
a while and comes back; every event arrives, none twice after a 2xx."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from donations.accounts.models import AuditEntry
from donations.clock import utcnow
from donations.extensions import db, unit_of_work
from donations.ledger.models import Gift
from donations.payments.handlers import StripeEventData
from donations.payments.handlers.checkout import checkout_paid
from donations.webhooks import admin
from donations.webhooks.delivery import MAX_BACKOFF, WebhookWorker, backoff
from donations.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent
from donations.webhooks.signing import HEADER, header_value, verify
from tests import stripe_events as se
from tests.payments import support as me
from tests.threads import run_released_together
from tests.webhooks.support import Receiver, admin_user, make_endpoint


def make_due_now() -> None:
    """Time passes: every waiting delivery's next attempt comes due."""
    db.session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def deliveries() -> list[WebhookDelivery]:
    return list(
        db.session.scalars(
            select(WebhookDelivery).order_by(WebhookDelivery.id).execution_options(populate_existing=True)
        )
    )


def events() -> list[WebhookEvent]:
    return list(db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def drain() -> dict[str, int]:
    report = WebhookWorker("test-worker").drain()
    return {"delivered": report.delivered, "retrying": report.retrying, "parked": report.parked}


def pay(client, webhook_secret: str, amount_cents: int, email: str) -> dict:
    session = se.checkout_session(amount_cents=amount_cents, email=email)
    payload = se.event("checkout.session.completed", session)
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "applied"
    return payload


def test_down_then_failing_then_back_every_event_once(app, client, webhook_secret, fund, receiver: Receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    receiver.stop()  # down: connections refused

    first = pay(client, webhook_secret, 2_500, "ada@example.org")
    pay(client, webhook_secret, 5_000, "bo@example.org")
    pay(client, webhook_secret, 10_000, "cy@example.org")
    intent = first["data"]["object"]["payment_intent"]
    refund = me.refund(amount=1_000, payment_intent=intent)
    assert se.post_event(client, se.event("refund.created", refund), webhook_secret).json["outcome"] == "applied"
    assert [e.type for e in events()] == ["gift.recorded"] * 3 + ["gift.reversed"]

    assert drain() == {"delivered": 0, "retrying": 4, "parked": 0}
    refused = db.session.scalars(select(WebhookAttempt)).all()
    assert {a.status_code for a in refused} == {None}
    assert all("refused" in (a.error or "").lower() for a in refused), [a.error for a in refused]
    # Not due yet: a second pass sends nothing.
    assert drain() == {"delivered": 0, "retrying": 0, "parked": 0}

    receiver.mode = "failing"
    receiver.start()
    make_due_now()
    assert drain() == {"delivered": 0, "retrying": 4, "parked": 0}
    assert receiver.refused == 4
    assert {d.last_status_code for d in deliveries()} == {503}

    receiver.mode = "up"
    make_due_now()
    assert drain() == {"delivered": 4, "retrying": 0, "parked": 0}
    make_due_now()
    assert drain() == {"delivered": 0, "retrying": 0, "parked": 0}

    # A replayed Stripe event queues nothing new.
    assert se.post_event(client, first, webhook_secret).json["outcome"] != "applied"
    assert len(events()) == 4

    got = receiver.delivered_ids()
    assert set(got) == {e.public_id for e in events()}
    assert set(got.values()) == {1}, "none twice after a 2xx"
    assert all(r.signed for r in receiver.received)
    assert {d.status for d in deliveries()} == {DeliveryStatus.DELIVERED}
    assert [d.attempts for d in deliveries()] == [3, 3, 3, 3]
    log = db.session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
    assert [a.status_code for a in log] == [None] * 4 + [503] * 4 + [200] * 4


def test_payload_is_in_words_with_ids(app, client, webhook_secret, fund, receiver: Receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    pay(client, webhook_secret, 3_750, "words@example.org")
    drain()
    (got,) = receiver.received
    body = got.body
    gift = db.session.scalars(select(Gift)).one()
    assert body["type"] == "gift.recorded"
    assert body["description"] == "A gift was recorded"
    assert re.fullmatch(r"evt_[0-9a-f]{24}", body["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", body["created"])
    data = body["data"]
    assert data["gift"]["id"] == gift.id
    assert (data["gift"]["amount"], data["gift"]["amount_cents"], data["gift"]["currency"]) == ("37.50", 3_750, "USD")
    assert data["gift"]["frequency"] == "One time"
    assert data["gift"]["paid_by"] == "Card or bank, online (Stripe)"
    assert data["gift"]["status"] == "Received"
    assert data["gift"]["fund"] == {"id": fund.id, "name": "Community Forums Reporting"}
    assert data["gift"]["tax_deductible"] is False
    assert data["donor"]["id"] == gift.donor_id and data["donor"]["email"] == "words@example.org"
    assert got.headers["Donations-Event-Id"] == body["id"]
    assert got.headers["Donations-Event-Type"] == "gift.recorded"
    assert got.headers["Content-Type"].startswith("application/json")


def test_signature_is_hmac_of_timestamp_and_body():
    body = b'{"id":"evt_1"}'
    header = header_value("whsec_test", 1_700_000_000, body)
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert verify("whsec_test", header, body, now=1_700_000_100)
    assert not verify("whsec_test", header, body + b" ", now=1_700_000_100), "another body"
    assert not verify("whsec_other", header, body, now=1_700_000_100), "another secret"
    assert not verify("whsec_test", header, body, now=1_700_000_000 + 301), "a replay after the tolerance"
    assert not verify("whsec_test", "v1=abc", body, now=1_700_000_000)


def test_a_receiver_with_the_old_secret_refuses_after_a_rotation(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    with unit_of_work():
        admin.rotate_secret(endpoint.id, actor=admin_user(), remote_addr=None)
    pay(client, webhook_secret, 2_000, "rot@example.org")
    assert drain() == {"delivered": 0, "retrying": 1, "parked": 0}
    assert deliveries()[0].last_status_code == 400
    receiver.secret = db.session.get(type(endpoint), endpoint.id).secret
    make_due_now()
    assert drain()["delivered"] == 1


def test_parked_after_max_attempts_then_resent_and_delivered_once(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    receiver.mode = "failing"
    pay(client, webhook_secret, 2_000, "park@example.org")
    outcomes = []
    for _ in range(4):  # WEBHOOK_MAX_ATTEMPTS
        outcomes.append(drain())
        make_due_now()
    assert outcomes[-1] == {"delivered": 0, "retrying": 0, "parked": 1}
    (delivery,) = deliveries()
    assert delivery.status == DeliveryStatus.PARKED and delivery.attempts == 4
    assert "503" in (delivery.last_error or "")
    assert drain()["parked"] == 0, "a parked delivery is not tried again by itself"

    receiver.mode = "up"
    with unit_of_work():
        admin.resend(delivery.id, actor=admin_user(), remote_addr="203.0.113.9")
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook_delivery.resend")).one()
    assert entry.details["was"] == "parked" and entry.remote_addr == "203.0.113.9"
    assert drain() == {"delivered": 1, "retrying": 0, "parked": 0}
    assert set(receiver.delivered_ids().values()) == {1}
    with pytest.raises(admin.WebhookAdminError), unit_of_work():
        db.session.execute(update(WebhookDelivery).values(status=DeliveryStatus.PENDING))
        admin.resend(delivery.id, actor=admin_user(), remote_addr=None)


def test_a_redirect_is_not_followed(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    receiver.mode = "redirect"
    pay(client, webhook_secret, 2_000, "redir@example.org")
    assert drain()["retrying"] == 1
    (delivery,) = deliveries()
    assert delivery.last_status_code == 302 and "redirect" in (delivery.last_error or "")


def test_events_roll_back_with_the_gift_and_go_only_where_asked(app, fund, receiver):
    asked = make_endpoint(receiver.url, ["gift.recorded"])
    make_endpoint(receiver.url, ["gift.reversed"])
    make_endpoint(receiver.url, ["gift.recorded"], enabled=False)
    session = se.checkout_session(amount_cents=4_200, email="roll@example.org")
    checkout_paid(StripeEventData.from_payload(se.event("checkout.session.completed", session)))
    db.session.flush()
    assert [(d.endpoint_id, d.event.type) for d in deliveries()] == [(asked.id, "gift.recorded")]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def test_no_endpoint_stores_nothing(app, client, webhook_secret, fund):
    pay(client, webhook_secret, 2_000, "none@example.org")
    assert events() == []


def test_a_membership_tells_started_gift_changed_and_canceled(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    sub_id = se.unique("sub")
    customer = se.unique("cus")
    invoice = se.invoice(
        subscription=sub_id, customer=customer, billing_reason="subscription_create", email="member@example.org"
    )
    assert se.post_event(client, se.event("invoice.paid", invoice), webhook_secret).json["outcome"] == "applied"
    now = int(time.time())
    raised = se.subscription(subscription_id=sub_id, customer=customer, amount_cents=2_500)
    before = se.subscription(subscription_id=sub_id, customer=customer, amount_cents=1_500)
    payload = se.event(
        "customer.subscription.updated", raised, created=now + 10, previous_attributes={"items": before["items"]}
    )
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "applied"
    ended = se.subscription(
        subscription_id=sub_id, customer=customer, amount_cents=2_500, status="canceled", canceled_at=now + 20
    )
    payload = se.event("customer.subscription.deleted", ended, created=now + 20)
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "applied"
    assert [e.type for e in events()] == [
        "membership.started",
        "gift.recorded",
        "membership.changed",
        "membership.canceled",
    ]
    drain()
    bodies = {r.type: r.body["data"] for r in receiver.received}
    assert bodies["membership.changed"]["change"]["from"]["amount"] == "15.00"
    assert bodies["membership.changed"]["change"]["to"]["amount"] == "25.00"
    assert bodies["membership.changed"]["change"]["frequency"] == {"from": "Monthly", "to": "Monthly"}
    assert bodies["membership.changed"]["change"]["fund"] == {"from": {"id": fund.id, "name": fund.name}} | {
        "to": {"id": fund.id, "name": fund.name}
    }
    assert bodies["membership.started"]["membership"]["frequency"] == "Monthly"
    assert bodies["membership.canceled"]["membership"]["status"] == "Canceled"
    assert bodies["gift.recorded"]["gift"]["membership_id"] == bodies["membership.started"]["membership"]["id"]


def test_a_change_of_frequency_is_told_in_words(app, client, webhook_secret, fund, receiver):
    """A member who moves from monthly to yearly giving (the self-service page, the Billing
    Portal) is a membership.changed with the frequency before and after, not only the amount."""
    endpoint = make_endpoint(receiver.url, ["membership.changed"])
    receiver.secret = endpoint.secret
    sub_id, customer = se.unique("sub"), se.unique("cus")
    invoice = se.invoice(
        subscription=sub_id, customer=customer, billing_reason="subscription_create", email="yearly@example.org"
    )
    assert se.post_event(client, se.event("invoice.paid", invoice), webhook_secret).json["outcome"] == "applied"
    before = se.subscription(subscription_id=sub_id, customer=customer, amount_cents=1_500)
    yearly = se.subscription(subscription_id=sub_id, customer=customer, amount_cents=15_000, interval="year")
    payload = se.event(
        "customer.subscription.updated",
        yearly,
        created=int(time.time()) + 10,
        previous_attributes={"items": before["items"]},
    )
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "applied"
    drain()
    (body,) = [r.body["data"] for r in receiver.received]
    assert body["change"]["frequency"] == {"from": "Monthly", "to": "Every year"}
    assert (body["change"]["from"]["amount"], body["change"]["to"]["amount"]) == ("15.00", "150.00")
    assert body["membership"]["frequency"] == "Every year"


def test_backoff_doubles_with_jitter_up_to_six_hours():
    for attempts, base in ((1, 60), (2, 120), (5, 960)):
        waits = {backoff(attempts, 60) for _ in range(50)}
        assert all(timedelta(seconds=base * 0.75) <= w <= timedelta(seconds=base * 1.25) for w in waits)
        assert len(waits) > 1, "jittered"
    assert backoff(40, 60) == MAX_BACKOFF


def _drain_in_threads(app, workers: int) -> None:
    run_released_together(app, [WebhookWorker(f"worker-{n}").drain for n in range(workers)])


@pytest.mark.postgresql_only
def test_two_workers_never_send_one_delivery_twice(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    receiver.hold_seconds = 0.01  # so both workers are busy at once
    for n in range(40):
        session = se.checkout_session(amount_cents=1_000 + n, email=f"pg{n}@example.org")
        checkout_paid(StripeEventData.from_payload(se.event("checkout.session.completed", session)))
    db.session.commit()
    _drain_in_threads(app, 2)
    got = receiver.delivered_ids()
    assert len(got) == 40 and set(got.values()) == {1}
    assert {d.status for d in deliveries()} == {DeliveryStatus.DELIVERED}
    assert {d.attempts for d in deliveries()} == {1}
    workers = {a.worker for a in db.session.scalars(select(WebhookAttempt))}
    assert workers == {"worker-0", "worker-1"}, "both workers took deliveries"


def test_signed_body_is_the_stored_body(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    pay(client, webhook_secret, 2_000, "same@example.org")
    drain()
    (got,) = receiver.received
    assert got.body == json.loads(events()[0].body)
    assert HEADER in got.headers


def test_a_turn_takes_at_most_its_limit_and_a_turned_off_endpoint_gets_nothing(
    app, client, webhook_secret, fund, receiver
):
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    for n in range(3):
        pay(client, webhook_secret, 1_000 + n, f"limit{n}@example.org")
    assert WebhookWorker("limited").drain(limit=2).total == 2
    with unit_of_work():
        admin.update_endpoint(
            endpoint.id,
            admin.EndpointSettings(receiver.url, "test receiver", ["gift.recorded"], enabled=False),
            actor=admin_user(),
            remote_addr=None,
        )
    assert drain() == {"delivered": 0, "retrying": 0, "parked": 1}
    assert deliveries()[-1].last_error == "the endpoint is turned off"
    pay(client, webhook_secret, 2_000, "off@example.org")
    assert len(events()) == 3, "nothing queued for a turned-off endpoint"
    assert len(receiver.received) == 2


def test_a_failed_refund_and_a_lost_dispute_are_reversals_in_words(app, client, webhook_secret, fund, receiver):
    endpoint = make_endpoint(receiver.url, ["gift.reversed"])
    receiver.secret = endpoint.secret
    intent = pay(client, webhook_secret, 6_000, "rev@example.org")["data"]["object"]["payment_intent"]
    refund = me.refund(amount=1_000, payment_intent=intent)
    for kind, obj in (("refund.created", refund), ("refund.failed", dict(refund, status="failed"))):
        assert se.post_event(client, se.event(kind, obj), webhook_secret).json["outcome"] == "applied"
    dispute = me.dispute(amount=2_000, payment_intent=intent)
    for kind, obj in (("charge.dispute.created", dispute), ("charge.dispute.closed", dict(dispute, status="lost"))):
        assert se.post_event(client, se.event(kind, obj), webhook_secret).json["outcome"] == "applied"
    drain()
    reversals = [r.body["data"]["reversal"] for r in receiver.received]
    assert [(r["what"], r["amount"]) for r in reversals] == [
        ("Refund", "10.00"),
        ("Refund failed: the money is back", "-10.00"),
        ("Dispute lost", "20.00"),
    ]
    assert receiver.received[-1].body["data"]["gift"]["status"] == "Partly refunded"
