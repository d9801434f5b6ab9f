"""Members' mail of self-service: the reminder before an annual renewal (the worker's daily
job, once per membership per renewal), and the change, pause, resume and failed-payment mail
delivered through a real SMTP server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.models import Fund, Membership, MembershipChange, MembershipStatus
from donations.mail import service
from donations.mail.models import OutboxMessage
from donations.mail.render import long_date
from donations.mail.worker import OutboxWorker
from donations.operations import jobs
from tests.factories import make_donor, make_fund
from tests.mail.support import SmtpServer


@pytest.fixture
def fund(app) -> Fund:
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def member(fund: Fund, email: str, *, interval: str = "year", renews_in: timedelta, **columns: object) -> Membership:
    membership = Membership(
        donor=make_donor(email, name="Mo Member"),
        fund=fund,
        amount_cents=12_000 if interval == "year" else 1_000,
        interval=interval,
        status=columns.pop("status", MembershipStatus.ACTIVE),
        started_at=utcnow() - timedelta(days=360),
        current_period_end=utcnow() + renews_in,
        stripe_subscription_id=f"sub_{email}",
        **columns,
    )
    db.session.add(membership)
    db.session.commit()
    return membership


def reminders() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "renewal_reminder").order_by(OutboxMessage.id)
        )
    )


def test_annual_members_are_reminded_a_week_before_renewing_once(app, fund):
    assert app.config["WORKER_SCHEDULES"]["renewal-reminders"] == "daily"
    due = member(fund, "due@example.org", renews_in=timedelta(days=5))
    member(fund, "later@example.org", renews_in=timedelta(days=10))
    member(fund, "monthly@example.org", interval="month", renews_in=timedelta(days=3))
    member(fund, "ending@example.org", renews_in=timedelta(days=5), cancel_at_period_end=True)
    member(fund, "gone@example.org", renews_in=timedelta(days=5), status=MembershipStatus.CANCELED)
    member(fund, "paused@example.org", renews_in=timedelta(days=5), paused_until=utcnow() + timedelta(days=60))

    result = jobs.JOBS["renewal-reminders"].run()
    assert result.summary == "queued 1 reminders of annual renewals"
    (message,) = reminders()
    assert message.to_address == "due@example.org" and message.context["membership_id"] == due.id
    assert jobs.JOBS["renewal-reminders"].run().summary == "queued 0 reminders of annual renewals"  # once
    assert len(reminders()) == 1
    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "reminders.queue")).all()
    assert [entry.details for entry in entries] == [{"queued": 1}, {"queued": 0}]

    # The next year's renewal is a new one: reminded again.
    row = db.session.get(Membership, due.id)
    row.current_period_end = row.current_period_end + timedelta(days=365)
    db.session.commit()
    assert jobs.renewal_reminders().summary == "queued 0 reminders of annual renewals"  # a year off: not yet
    service.queue_renewal_reminder(row, row.current_period_end)
    db.session.commit()
    assert len(reminders()) == 2


def text_and_html(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_self_service_mail_goes_out_with_both_parts(smtp: SmtpServer, fund):
    investigative = make_fund("investigative", name="Investigative Reporting Fund")
    membership = member(fund, "mo@example.org", renews_in=timedelta(days=6))
    change = MembershipChange(
        membership=membership,
        changed_at=datetime(2026, 3, 5, 18, 0, tzinfo=UTC),
        old_amount_cents=1_000,
        new_amount_cents=12_000,
        old_interval="month",
        new_interval="year",
        old_fund_id=investigative.id,
        new_fund_id=fund.id,
    )
    db.session.add(change)
    db.session.commit()
    renews_on = long_date(membership.current_period_end)
    service.queue_renewal_reminder(membership, membership.current_period_end)
    service.queue_membership_paused(membership, datetime(2026, 8, 31, 12, 0, tzinfo=UTC))
    service.queue_membership_resumed(membership, datetime(2026, 8, 31, 12, 0, tzinfo=UTC))
    service.queue_membership_changed(membership, change.id)
    service.queue_payment_failed(membership, "in_failed_1")
    db.session.commit()
    expected = {
        "Your annual membership renews on": [renews_on, "$120.00", "http://localhost/membership"],
        "Your membership is paused": ["nothing is charged until August 31, 2026", "http://localhost/membership"],
        "Your membership is active again": [f"next renewal is on {renews_on}"],
        "Your membership changed to $120.00 a year": [
            "from $10.00 a month to",
            "Investigative Reporting Fund",
            "March 5, 2026",
        ],
        "We could not renew your membership": ["http://localhost/membership/card/", "21 days"],
    }
    report = OutboxWorker().drain()
    assert (report.sent, report.parked) == (len(expected), 0)
    assert len(smtp.mailbox.messages) == len(expected)
    for mail in smtp.mailbox.messages:
        (subject,) = [start for start in expected if str(mail["Subject"]).startswith(start)]
        text, html = text_and_html(mail)
        assert mail["To"] == "mo@example.org"
        for phrase in expected[subject]:
            assert phrase in text, (subject, phrase)
            assert phrase in html.replace("<strong>", "").replace("</strong>", ""), (subject, phrase)
