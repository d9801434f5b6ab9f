"""The staff's outbox page: parked messages with their errors, and resend for finance/admin."""

from __future__ import annotations

from flask import url_for
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.clock import utcnow
from donations.extensions import db
from donations.mail import service
from donations.mail.models import OutboxMessage, OutboxStatus
from tests.factories import make_donor
from tests.forms import csrf_token, page_text
from tests.mail.support import sign_in


def parked_message(error: str = "SMTPServerDisconnected: Connection unexpectedly closed") -> OutboxMessage:
    message = service.queue("magic_link", "stuck@example.org", {"url": "https://x.example/l", "expires_at_iso": "x"})
    message.status = OutboxStatus.PARKED
    message.attempts = 10
    message.parked_at = utcnow()
    message.last_error = error
    db.session.commit()
    return message


def test_finance_sees_parked_mail_and_resends_it(app, client):
    message = parked_message()
    user = sign_in(client, "finance")
    page = client.get(url_for("receipts_staff.outbox"))
    assert page.status_code == 200
    text = page_text(page.get_data(as_text=True))
    assert "stuck@example.org" in text and "Connection unexpectedly closed" in text

    resend_url = url_for("receipts_staff.resend", message_id=message.id)
    assert client.post(resend_url).status_code == 400  # no CSRF token
    token = csrf_token(client, url_for("receipts_staff.outbox"))
    response = client.post(resend_url, data={"csrf_token": token}, follow_redirects=True)
    assert response.status_code == 200
    assert f"Message {message.id} is queued again" in page_text(response.get_data(as_text=True))

    db.session.expire_all()
    resent = db.session.get(OutboxMessage, message.id)
    assert (resent.status, resent.attempts, resent.parked_at) == (OutboxStatus.PENDING, 0, None)
    (entry,) = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "outbox.resend")).all()
    assert (entry.staff_user_id, entry.target_id, entry.details["to"]) == (
        user.id,
        str(message.id),
        "stuck@example.org",
    )

    again = client.post(resend_url, data={"csrf_token": token}, follow_redirects=True)
    assert "not parked" in page_text(again.get_data(as_text=True))
    assert (
        client.post(url_for("receipts_staff.resend", message_id=999_999), data={"csrf_token": token}).status_code == 404
    )


def test_viewers_cannot_see_or_resend_donor_mail(app, client):
    message = parked_message()
    donor = make_donor()
    sign_in(client, "viewer")
    assert client.get(url_for("receipts_staff.outbox")).status_code == 403
    token = csrf_token(client, url_for("receipts_staff.statement_years", donor_id=donor.id))
    resend_url = url_for("receipts_staff.resend", message_id=message.id)
    assert client.post(resend_url, data={"csrf_token": token}).status_code == 403
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).status == OutboxStatus.PARKED


def test_signed_out_visitors_are_sent_to_sign_in(app, client):
    response = client.get(url_for("receipts_staff.outbox"))
    assert response.status_code == 302 and "/staff/sign-in" in response.headers["Location"]
