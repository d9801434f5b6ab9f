"""Staff pages for events that failed to apply and for open disputes; /healthz's sync status."""

from __future__ import annotations

import pytest
from flask import url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from donations.accounts.models import AuditEntry, StaffUser
from donations.accounts.service import create_staff_user
from donations.clock import utcnow
from donations.extensions import db
from donations.payments.models import StripeEvent, SyncRun
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import extract_csrf_token
from tests.payments import support as me


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def sign_in(client: FlaskClient, role: str) -> StaffUser:
    """A new staff user with this role, signed in through the console's sign-in form."""
    email, password = f"{role}@newsroom.example", "a long enough password"
    user = create_staff_user(email, role, password)
    db.session.commit()
    address = {"REMOTE_ADDR": f"198.51.100.{len(role)}"}  # its own sign-in rate limit
    token = extract_csrf_token(client.get(url_for("staff.login"), environ_base=address).get_data(as_text=True))
    response = client.post(
        url_for("staff.login"), data={"email": email, "password": password, "csrf_token": token}, environ_base=address
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return user


def waiting_refund(client, secret) -> tuple[dict, dict]:
    """A refund whose gift has not arrived, and the gift's own event."""
    payment_intent = se.unique("pi")
    refund_event = se.event("refund.created", me.refund(amount=1_000, payment_intent=payment_intent))
    assert se.post_event(client, refund_event, secret).json["outcome"] == "deferred"
    gift_event = se.event("checkout.session.completed", se.checkout_session(payment_intent=payment_intent))
    return refund_event, gift_event


def test_failed_events_are_listed_with_their_error_and_finance_can_retry(
    app, client, webhook_secret, fund, monkeypatch
):
    refund_event, gift_event = waiting_refund(client, webhook_secret)
    finance = sign_in(client, "finance")
    page = client.get("/staff/events")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert refund_event["id"] in html and "no received gift yet" in html and "Events waiting: 1" in html

    # The gift's event is stored and applied by a worker in another process, which had looked
    # for waiting events a moment ago: the refund waits for its back-off; staff retry it now.
    from time import monotonic

    from donations.payments import events

    monkeypatch.setattr(events._Waiting, "known", False)
    monkeypatch.setattr(events._Waiting, "looked_at", monotonic())
    events.store(gift_event, via="sync")
    assert se.apply_events(client.application) == {gift_event["id"]: "applied"}
    token = extract_csrf_token(html)
    retried = client.post(f"/staff/events/{refund_event['id']}/retry", data={"csrf_token": token})
    assert retried.status_code == 302
    db.session.expire_all()
    assert db.session.get(StripeEvent, refund_event["id"]).applied_at is not None
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "stripe_event.retry")).one()
    assert (audit.staff_user_id, audit.target_id, audit.details) == (
        finance.id,
        refund_event["id"],
        {"outcome": "applied"},
    )
    assert "Every event received has been applied" in client.get("/staff/events").get_data(as_text=True)


def test_viewers_see_failed_events_but_cannot_retry(client, webhook_secret, fund):
    refund_event, _ = waiting_refund(client, webhook_secret)
    sign_in(client, "viewer")
    html = client.get("/staff/events").get_data(as_text=True)
    assert refund_event["id"] in html and "Retry" not in html
    token = extract_csrf_token(html)  # the sign-out form's
    assert client.post(f"/staff/events/{refund_event['id']}/retry", data={"csrf_token": token}).status_code == 403
    assert db.session.get(StripeEvent, refund_event["id"]).attempts == 1


def test_retry_without_csrf_token_is_refused(client, webhook_secret, fund):
    refund_event, _ = waiting_refund(client, webhook_secret)
    sign_in(client, "admin")
    assert client.post(f"/staff/events/{refund_event['id']}/retry", data={}).status_code == 400
    assert db.session.get(StripeEvent, refund_event["id"]).attempts == 1


def test_signed_out_staff_pages_show_nothing(client, webhook_secret, fund):
    refund_event, _ = waiting_refund(client, webhook_secret)
    for url in ("/staff/events", "/staff/disputes"):
        response = client.get(url)
        assert response.status_code in (302, 401)
        assert refund_event["id"] not in response.get_data(as_text=True)


def test_open_disputes_with_their_evidence_due_dates(client, webhook_secret, fund):
    payment_intent = se.unique("pi")
    session = se.checkout_session(
        amount_cents=4_200, email="dora@example.org", name="Dora D", payment_intent=payment_intent
    )
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    # Due 2026-01-15 23:59:59 UTC: 15:59 in Los Angeles.
    open_one = me.dispute(amount=4_200, payment_intent=payment_intent, due_by=1_768_521_599)
    se.post_event(client, se.event("charge.dispute.created", open_one), webhook_secret)
    sign_in(client, "viewer")
    html = client.get("/staff/disputes").get_data(as_text=True)
    assert open_one["id"] in html and "2026-01-15 15:59 PST" in html and "$42.00" in html and "Dora D" in html

    se.post_event(client, se.event("charge.dispute.closed", dict(open_one, status="won")), webhook_secret)
    html = client.get("/staff/disputes").get_data(as_text=True)
    assert open_one["id"] not in html and "No open disputes" in html


def test_healthz_shows_last_successful_sync_and_failing_events(client, webhook_secret, fund):
    body = client.get("/healthz").json
    assert (body["status"], body["last_successful_sync"], body["events_failing_to_apply"]) == ("ok", None, 0)
    waiting_refund(client, webhook_secret)
    finished = utcnow()
    db.session.add_all(
        [
            SyncRun(since=finished, started_at=finished, finished_at=finished, succeeded=True),
            SyncRun(since=finished, started_at=finished, finished_at=None, succeeded=False, error="Stripe down"),
        ]
    )
    db.session.commit()
    body = client.get("/healthz").json
    assert body["last_successful_sync"] == finished.isoformat()
    assert body["events_failing_to_apply"] == 1


def test_cli_sync_records_a_run(app):
    result = app.test_cli_runner().invoke(args=["payments", "sync", "--since", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert "0 events listed, 0 applied" in result.output
    run = db.session.scalars(select(SyncRun)).one()
    assert run.succeeded and run.since.isoformat() == "2026-01-01T08:00:00+00:00"
    bad = app.test_cli_runner().invoke(args=["payments", "sync", "--since", "yesterday"])
    assert bad.exit_code == 2
