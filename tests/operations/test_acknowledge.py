"""The webhook acknowledges (verifies and stores, nothing else); the worker's apply step applies
what was stored; pages that read what an event will write say "processing" until it is applied."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus
from donations.mail.models import OutboxMessage
from donations.payments import events
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import page_text
from tests.giving.support import only_gift, open_account, post_gift


@pytest.fixture
def fund(app):
    return make_fund("acknowledged", name="Acknowledged Reporting", is_default=True)


def deliver(client, payload, secret):
    """The webhook alone: no apply step after it."""
    body = json.dumps(payload).encode()
    return client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, secret))


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_webhook_stores_the_event_and_applies_nothing(app, client, webhook_secret, fund):
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=2_500))
    first = deliver(client, payload, webhook_secret)
    assert first.status_code == 200 and first.json == {"id": payload["id"], "received": "stored"}
    assert deliver(client, payload, webhook_secret).json["received"] == "duplicate"

    stored = db.session.get(StripeEvent, payload["id"])
    assert stored.applied_at is None and stored.attempts == 0 and stored.next_attempt_at is not None
    assert count(Gift) == 0 and count(OutboxMessage) == 0

    assert se.apply_events(app) == {payload["id"]: "applied"}
    assert count(Gift) == 1 and count(OutboxMessage) == 1  # the gift and its receipt, once
    assert se.apply_events(app) == {}  # nothing more to do, however often the worker looks
    assert deliver(client, payload, webhook_secret).json["received"] == "duplicate"
    assert se.apply_events(app) == {} and count(Gift) == 1


def test_the_worker_applies_in_the_order_events_happened_and_a_refund_waits_for_its_gift(
    app, client, webhook_secret, fund
):
    payment_intent = se.unique("pi")
    gift_event = se.event(
        "checkout.session.completed", se.checkout_session(amount_cents=3_000, payment_intent=payment_intent)
    )
    from tests.payments import support as me

    refund_event = se.event("refund.created", me.refund(amount=1_000, payment_intent=payment_intent))
    # Stripe created the gift's event first; the refund's delivery arrived first.
    refund_event["created"] = gift_event["created"] + 60
    deliver(client, refund_event, webhook_secret)
    deliver(client, gift_event, webhook_secret)
    done = list(se.apply_events(app).items())
    assert done == [(gift_event["id"], "applied"), (refund_event["id"], "applied")]
    gift = db.session.scalars(select(Gift)).one()
    assert gift.status == GiftStatus.PARTIALLY_REFUNDED


def test_a_deferred_event_is_not_retried_before_its_back_off_unless_another_applies(
    app, client, webhook_secret, fund, monkeypatch
):
    from time import monotonic

    from tests.payments import support as me

    refund_event = se.event("refund.created", me.refund(amount=1_000, payment_intent=se.unique("pi")))
    deliver(client, refund_event, webhook_secret)
    assert se.apply_events(app) == {refund_event["id"]: "deferred"}
    stored = db.session.get(StripeEvent, refund_event["id"])
    assert stored.attempts == 1 and stored.next_attempt_at > stored.received_at
    assert se.apply_events(app) == {}  # waiting for its back-off: the worker does not spin on it
    # A repeated delivery makes it due at once (as a repeat used to retry it).
    deliver(client, refund_event, webhook_secret)
    assert se.apply_events(app) == {refund_event["id"]: "deferred"}
    # An applied event wakes it, unless this worker looked for waiting events a moment ago.
    monkeypatch.setattr(events._Waiting, "known", False)
    monkeypatch.setattr(events._Waiting, "looked_at", monotonic())
    other = se.event("checkout.session.completed", se.checkout_session(amount_cents=1_000))
    deliver(client, other, webhook_secret)
    assert se.apply_events(app) == {other["id"]: "applied"}
    monkeypatch.setattr(events._Waiting, "known", True)
    another = se.event("checkout.session.completed", se.checkout_session(amount_cents=1_000))
    deliver(client, another, webhook_secret)
    assert se.apply_events(app) == {another["id"]: "applied", refund_event["id"]: "deferred"}


def _pending_checkout(client) -> Gift:
    response = post_gift(client, amount_choice="5000")
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    return only_gift()


def _completion(gift: Gift) -> dict:
    session = se.checkout_session(
        amount_cents=gift.amount_cents,
        email="rae@example.org",
        session_id=gift.stripe_checkout_session_id,
        metadata={"gift_id": str(gift.id), "fund": "acknowledged", "frequency": "one_time"},
    )
    return se.event("checkout.session.completed", session)


def test_the_thank_you_page_says_processing_and_refreshes_until_the_event_is_applied(app, client, webhook_secret, fund):
    gift = _pending_checkout(client)
    thanks = f"/give/thanks?session_id={gift.stripe_checkout_session_id}"

    before = client.get(thanks).get_data(as_text=True)
    assert "being processed" in before and '<meta http-equiv="refresh" content="3">' in before
    assert not re.search(r"<script(?![^>]*\bsrc=)", before)  # no inline script: the meta tag refreshes

    deliver(client, _completion(gift), webhook_secret)
    waiting = client.get(thanks).get_data(as_text=True)
    assert "processing" in page_text(waiting) and 'http-equiv="refresh"' in waiting
    assert "Thank you!" not in waiting

    se.apply_events(app)
    after = client.get(thanks).get_data(as_text=True)
    assert "Thank you!" in after and "$50.00" in page_text(after)
    assert 'http-equiv="refresh"' not in after


def test_the_member_page_shows_a_stored_payment_as_processing_then_the_gift(app, client, webhook_secret, fund):
    gift = _pending_checkout(client)
    deliver(client, _completion(gift), webhook_secret)

    page = open_account(client, "rae@example.org")
    assert "Being recorded (processing): $50.00 to Acknowledged Reporting" in page_text(page)
    assert '<meta http-equiv="refresh" content="5">' in page and "No gifts yet." in page

    se.apply_events(app)
    page = client.get("/membership/account").get_data(as_text=True)
    assert "processing" not in page_text(page) and 'http-equiv="refresh"' not in page
    assert "$50.00" in page_text(page) and "One-time gift" in page


def test_an_event_whose_handler_breaks_is_kept_with_its_error_and_blocks_nothing(
    app, client, webhook_secret, fund, monkeypatch
):
    from donations.payments import handlers

    def broken(_data) -> None:
        raise RuntimeError("a bug in a handler")

    real = handlers.handler_for
    monkeypatch.setattr(events, "handler_for", lambda kind: broken if kind == "charge.succeeded" else real(kind))
    from tests.payments import support as me

    poison = se.event("charge.succeeded", me.charge(amount=1_000, payment_intent=se.unique("pi")))
    poison["created"] -= 60  # the oldest: claimed first
    fine = se.event("checkout.session.completed", se.checkout_session(amount_cents=1_200))
    deliver(client, poison, webhook_secret)
    deliver(client, fine, webhook_secret)
    assert se.apply_events(app) == {poison["id"]: "deferred", fine["id"]: "applied"}
    kept = db.session.get(StripeEvent, poison["id"])
    assert kept.applied_at is None and kept.error == "could not apply: RuntimeError: a bug in a handler"
    # Tried, then once more when the next event applied (it might have been waiting for it).
    assert kept.attempts == 2 and kept.next_attempt_at > kept.received_at


# -- the endpoint in front of Flask (donations/operations/acknowledge.py) -------------------------


def test_a_delivery_from_a_host_outside_trusted_hosts_is_refused_and_not_stored(
    app, client, webhook_secret, fund, monkeypatch
):
    monkeypatch.setitem(app.config, "TRUSTED_HOSTS", ["give.example.org"])
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=2_500))
    body = json.dumps(payload).encode()
    headers = se.signed_headers(body, webhook_secret)
    refused = client.post("/stripe/webhook", data=body, headers=headers, base_url="http://elsewhere.example")
    assert refused.status_code == 400 and refused.mimetype == "text/plain"
    assert "not served at that host name" in refused.get_data(as_text=True)
    assert refused.headers["X-Frame-Options"] == "DENY" and refused.headers["X-Request-ID"]
    assert count(StripeEvent) == 0
    taken = client.post("/stripe/webhook", data=body, headers=headers, base_url="http://give.example.org")
    assert (taken.status_code, taken.json["received"]) == (200, "stored") and count(StripeEvent) == 1


def test_a_delivery_whose_address_holds_a_nul_byte_is_refused(client, webhook_secret, fund):
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=2_500))
    body = json.dumps(payload).encode()
    response = client.post("/stripe/webhook?x=%00", data=body, headers=se.signed_headers(body, webhook_secret))
    assert response.status_code == 400 and "not allowed" in response.json["error"]
    assert count(StripeEvent) == 0


def test_the_delivery_keeps_a_valid_request_id_and_replaces_another(client, webhook_secret, fund):
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=2_500))
    body = json.dumps(payload).encode()
    given = {**se.signed_headers(body, webhook_secret), "X-Request-ID": "req-12345678"}
    assert client.post("/stripe/webhook", data=body, headers=given).headers["X-Request-ID"] == "req-12345678"
    spoofed = {**given, "X-Request-ID": "<script>"}
    assert client.post("/stripe/webhook", data=body, headers=spoofed).headers["X-Request-ID"] != "<script>"


def test_other_methods_and_paths_go_on_to_flask(client, fund):
    assert client.get("/stripe/webhook").status_code == 404  # only POST is a delivery
    assert client.post("/stripe/webhook/").status_code == 404
    assert client.get("/give").status_code == 200


def test_a_failure_inside_the_store_is_logged_and_answered_500_for_stripe_to_retry(
    client, webhook_secret, fund, monkeypatch, caplog
):
    def broken(body, signature):
        raise RuntimeError("a bug")

    monkeypatch.setattr(events, "receive_signed", broken)
    payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=2_500))
    response = deliver(client, payload, webhook_secret)
    assert response.status_code == 500 and response.json["error"] and response.headers["X-Request-ID"]
    assert any(record.exc_info and record.levelname == "ERROR" for record in caplog.records)
