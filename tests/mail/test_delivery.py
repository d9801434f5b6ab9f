"""The outbox worker against a real SMTP server (aiosmtpd): content, outages, retries, parking,
resends, rollbacks and two workers at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, insert, select, update

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.models import Gift, Membership, MembershipStatus, Reversal, ReversalKind
from donations.mail import outbox as outbox_service
from donations.mail import service
from donations.mail import worker as outbox_worker
from donations.mail.mailer import MailConfigError, SmtpSettings
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.mail.worker import OutboxWorker, backoff, run_until_stopped
from donations.payments.handlers import StripeEventData
from donations.payments.handlers.checkout import checkout_paid
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift
from tests.mail.support import SmtpServer
from tests.threads import run_released_together

# 2026-01-01 07:30 UTC is 23:30 on December 31, 2025 in Los Angeles: the receipt says December 31.
NEW_YEARS_EVE_LATE = datetime(2026, 1, 1, 7, 30, tzinfo=UTC)


def text_and_html(mail: EmailMessage) -> tuple[str, str]:
    """Both parts, whitespace collapsed (the text part wraps its lines)."""
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None, "both a text and an HTML part"
    return " ".join(text.get_content().split()), " ".join(html.get_content().split())


def outbox(status: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id).execution_options(populate_existing=True)
    if status:
        query = query.where(OutboxMessage.status == status)
    return list(db.session.scalars(query))


def make_due_now() -> None:
    """Time passes: every pending message's next attempt comes due."""
    db.session.execute(update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


def freeze_worker_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """The worker's clock stops at `moment`, so the times it stores can be checked exactly."""
    monkeypatch.setattr(outbox_worker, "utcnow", lambda: moment)


def queue_magic_links(count: int) -> None:
    now = utcnow()
    db.session.execute(
        insert(OutboxMessage),
        [
            {
                "kind": "magic_link",
                "to_address": f"reader{n}@example.org",
                "context": {"url": f"https://give.example.org/membership/t{n}", "expires_at_iso": now.isoformat()},
                "dedupe_key": f"magic:{n}",
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for n in range(count)
        ],
    )
    db.session.commit()


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def test_receipt_for_a_webhook_gift_arrives_with_amount_local_date_and_not_deductible(
    app, client, webhook_secret, smtp: SmtpServer, fund
):
    session = se.checkout_session(amount_cents=5181, email="pat@example.org", name="Pat Reader")
    event = se.event("checkout.session.completed", session, created=int(NEW_YEARS_EVE_LATE.timestamp()))
    assert se.post_event(client, event, webhook_secret).status_code == 200

    result = app.test_cli_runner().invoke(args=["receipts", "work", "--once"])
    assert result.exit_code == 0, result.output
    assert "Sent 1" in result.output

    (mail,) = smtp.mailbox.messages
    text, html = text_and_html(mail)
    assert mail["To"] == "pat@example.org"
    assert "The Local Ledger" in mail["From"]
    assert "$51.81" in mail["Subject"]
    for part in (text, html):
        assert "$51.81" in part
        assert "December 31, 2025" in part  # the local date, not the UTC one
        assert "Community Forums Reporting" in part
        assert "not tax deductible" in part.lower()
        assert "for-profit business, not a charity" in part
        assert "members@example.org" in part
    assert "Dear Pat Reader" in text

    (message,) = outbox()
    assert message.status == OutboxStatus.SENT and message.attempts == 1 and message.sent_at is not None
    assert message.message_id == mail["Message-ID"]


def test_receipt_names_the_card_fee_cover_and_tribute(smtp: SmtpServer, fund):
    donor = make_donor("lou@example.org", name="Lou")
    gift = make_gift(
        donor,
        fund,
        10_330,
        fee_covered_cents=330,
        card_last4="4242",
        tribute_kind="memory",
        tribute_name="Grandma <Ada>",
        received_at=datetime(2026, 3, 5, 18, 0, tzinfo=UTC),
    )
    service.queue("gift_receipt", donor.email, {"gift_id": gift.id}, dedupe_key=f"gift_receipt:{gift.id}")
    db.session.commit()
    assert OutboxWorker().drain().sent == 1

    text, html = text_and_html(smtp.mailbox.messages[0])
    for part in (text, html):
        assert "$103.30" in part and "$3.30" in part
        assert "March 5, 2026" in part
        assert "card ending in 4242" in part
    assert "In memory of Grandma <Ada>" in text
    assert "In memory of Grandma &lt;Ada&gt;" in html  # donor text is escaped in HTML


def test_every_kind_of_donor_mail_goes_out_with_both_parts(smtp: SmtpServer, fund):
    donor = make_donor("mo@example.org", name="Mo Member")
    membership = Membership(
        donor=donor,
        fund=fund,
        amount_cents=1_000,
        interval="month",
        status=MembershipStatus.ACTIVE,
        started_at=datetime(2025, 2, 1, 20, 0, tzinfo=UTC),
        current_period_end=datetime(2025, 3, 1, 20, 0, tzinfo=UTC),
        cancel_at_period_end=True,
    )
    db.session.add(membership)
    db.session.flush()
    installment = make_gift(
        donor,
        fund,
        1_000,
        frequency="monthly",
        membership=membership,
        received_at=datetime(2025, 2, 1, 20, 0, tzinfo=UTC),
    )
    refunded = make_gift(donor, fund, 5_000, card_last4="0005", received_at=datetime(2025, 4, 10, 17, 0, tzinfo=UTC))
    refund = Reversal(
        gift=refunded,
        kind=ReversalKind.REFUND,
        amount_cents=2_000,
        reversed_at=datetime(2025, 4, 12, 17, 0, tzinfo=UTC),
        stripe_key="re_test_1",
    )
    db.session.add(refund)
    db.session.flush()
    expected = {
        "installment_receipt": ({"gift_id": installment.id}, ["$10.00", "February 1, 2025", "not tax deductible"]),
        "membership_welcome": (
            {"membership_id": membership.id},
            ["Sustainer", "$10.00 a month", "http://localhost/membership", "not tax deductible"],
        ),
        "payment_failed": ({"membership_id": membership.id}, ["update your card", "http://localhost/membership"]),
        "membership_canceled": ({"membership_id": membership.id}, ["canceled", "until March 1, 2025"]),
        "refund_confirmed": (
            {"reversal_id": refund.id},
            ["$20.00", "April 12, 2025", "$30.00", "card ending in 0005", "not tax deductible"],
        ),
        "magic_link": (
            {"url": "https://give.example.org/membership/abc", "expires_at_iso": "2026-01-02T03:04:05+00:00"},
            ["https://give.example.org/membership/abc", "January 1, 2026 at 7:04 PM PST"],
        ),
        "annual_statement": ({"donor_id": donor.id, "year": 2025}, ["$60.00", "$40.00", "not tax deductible"]),
    }
    for kind, (context, _) in expected.items():
        service.queue(kind, donor.email, context, donor_id=donor.id)
    db.session.commit()

    report = OutboxWorker().drain()
    assert (report.sent, report.parked) == (len(expected), 0)
    received = {str(m["Message-ID"]): m for m in smtp.mailbox.messages}
    for message in outbox():
        text, html = text_and_html(received[message.message_id])
        for phrase in expected[message.kind][1]:
            assert phrase.lower() in text.lower(), (message.kind, phrase)
            assert phrase.lower() in html.lower(), (message.kind, phrase)


def test_smtp_down_for_a_while_loses_nothing_and_delivers_each_once(fund, smtp: SmtpServer, monkeypatch):
    donor = make_donor("ann@example.org")
    for amount in (2_500, 5_000, 7_500):
        gift = make_gift(donor, fund, amount)
        service.queue("gift_receipt", donor.email, {"gift_id": gift.id}, dedupe_key=f"gift_receipt:{gift.id}")
    db.session.commit()
    smtp.stop()

    first_try = utcnow()
    freeze_worker_clock(monkeypatch, first_try)
    report = OutboxWorker().drain()
    assert (report.sent, report.retrying, report.parked) == (0, 3, 0)
    for message in outbox():
        assert message.status == OutboxStatus.PENDING and message.attempts == 1
        assert "Connection" in message.last_error
        assert message.next_attempt_at == first_try + timedelta(seconds=60)  # RECEIPTS_BACKOFF_SECONDS
    freeze_worker_clock(monkeypatch, first_try + timedelta(seconds=59))
    assert OutboxWorker().drain().total == 0  # nothing is due before its backoff ends

    make_due_now()
    second_try = utcnow()
    freeze_worker_clock(monkeypatch, second_try)
    assert OutboxWorker().drain().retrying == 3
    for message in outbox():
        assert message.attempts == 2
        assert message.next_attempt_at == second_try + timedelta(seconds=120)  # doubled

    smtp.start()
    make_due_now()
    freeze_worker_clock(monkeypatch, utcnow())
    assert OutboxWorker().drain().sent == 3
    assert OutboxWorker().drain().total == 0
    counts = smtp.mailbox.by_message_id()
    assert len(counts) == 3 and set(counts.values()) == {1}
    assert {m.status for m in outbox()} == {OutboxStatus.SENT}
    assert {m.last_error for m in outbox()} == {None}


def test_parked_after_max_attempts_then_resend_delivers_it(app, monkeypatch, smtp: SmtpServer):
    monkeypatch.setitem(app.config, "RECEIPTS_MAX_ATTEMPTS", 3)
    service.queue("magic_link", "kim@example.org", {"url": "https://x.example/l", "expires_at_iso": "2026-05-01T00:00"})
    db.session.commit()
    smtp.stop()
    outcomes = []
    for _ in range(3):
        report = OutboxWorker().drain()
        outcomes.append((report.retrying, report.parked))
        make_due_now()
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    (message,) = outbox()
    assert message.status == OutboxStatus.PARKED and message.attempts == 3
    assert message.parked_at is not None and "Connection" in message.last_error
    assert OutboxWorker().drain().total == 0  # parked messages are left alone

    smtp.start()
    outbox_service.resend(message.id, actor="cli:test")
    db.session.commit()
    assert OutboxWorker().drain().sent == 1
    (message,) = outbox()
    assert message.status == OutboxStatus.SENT and message.attempts == 1 and message.parked_at is None
    assert len(smtp.mailbox.messages) == 1
    with pytest.raises(outbox_service.OutboxError):
        outbox_service.resend(message.id, actor="cli:test")  # only parked messages


def test_a_refused_recipient_is_parked_at_once_and_the_rest_still_go(smtp: SmtpServer):
    smtp.mailbox.refuse.add("gone@example.org")
    context = {"url": "https://x.example/l", "expires_at_iso": "2026-05-01T00:00:00+00:00"}
    for address in ("gone@example.org", "here@example.org"):
        service.queue("magic_link", address, context)
    db.session.commit()
    report = OutboxWorker().drain()
    assert (report.sent, report.parked) == (1, 1)
    gone, here = outbox()
    assert gone.status == OutboxStatus.PARKED and "550" in gone.last_error and gone.attempts == 1
    assert here.status == OutboxStatus.SENT
    assert [m["To"] for m in smtp.mailbox.messages] == ["here@example.org"]


def test_a_message_whose_row_is_gone_is_parked_and_does_not_block_the_queue(smtp: SmtpServer):
    service.queue("gift_receipt", "x@example.org", {"gift_id": 987_654})
    service.queue("refund_confirmed", "x@example.org", {"reversal_id": "not-a-number"})
    service.queue("no_such_kind", "x@example.org", {})
    service.queue("magic_link", "y@example.org", {"url": "https://x.example/l", "expires_at_iso": "2026-05-01"})
    db.session.commit()
    report = OutboxWorker().drain()
    assert (report.sent, report.parked) == (1, 3)
    errors = [m.last_error for m in outbox(OutboxStatus.PARKED)]
    assert "Gift 987654 no longer exists" in errors[0]
    assert "integer reversal_id" in errors[1]
    assert "unknown message kind" in errors[2]
    assert [m["To"] for m in smtp.mailbox.messages] == ["y@example.org"]


def test_a_gift_whose_transaction_rolls_back_leaves_no_message(smtp: SmtpServer, fund):
    session = se.checkout_session(amount_cents=4_200, email="roll@example.org")
    checkout_paid(StripeEventData.from_payload(se.event("checkout.session.completed", session)))
    db.session.flush()
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1  # queued with the gift...
    db.session.rollback()  # ...and gone with it

    assert db.session.scalar(select(func.count()).select_from(Gift)) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert OutboxWorker().drain().total == 0
    assert smtp.mailbox.messages == []


def _drain_in_threads(app, workers: int) -> None:
    run_released_together(app, [OutboxWorker(name=f"worker-{n}").drain for n in range(workers)])


@pytest.mark.postgresql_only
def test_two_workers_send_each_of_500_messages_exactly_once(app, smtp: SmtpServer):
    queue_magic_links(500)
    _drain_in_threads(app, 2)
    counts, received = smtp.mailbox.by_message_id(), len(smtp.mailbox.messages)
    assert received == 500
    assert len(counts) == 500 and set(counts.values()) == {1}
    assert {m.status for m in outbox()} == {OutboxStatus.SENT}
    assert {m.attempts for m in outbox()} == {1}


def test_two_workers_take_turns_without_sending_twice(app, smtp: SmtpServer):
    queue_magic_links(60)
    _drain_in_threads(app, 2)
    counts, received = smtp.mailbox.by_message_id(), len(smtp.mailbox.messages)
    assert received == 60 and len(counts) == 60
    assert {m.status for m in outbox()} == {OutboxStatus.SENT}


def test_work_runs_until_stopped(app, smtp: SmtpServer):
    stop = threading.Event()

    def run() -> None:
        with app.app_context():
            run_until_stopped(stop, poll_seconds=0.05)
            db.session.remove()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        service.queue("magic_link", "late@example.org", {"url": "https://x.example/l", "expires_at_iso": "2026-05-01"})
        db.session.commit()
        deadline = time.monotonic() + 10
        while not smtp.mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    assert [m["To"] for m in smtp.mailbox.messages] == ["late@example.org"]
    assert outbox()[0].status == OutboxStatus.SENT


def test_without_smtp_url_mail_is_logged_and_written_as_eml_files(app, monkeypatch, tmp_path, caplog, fund):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    monkeypatch.setitem(app.config, "MAIL_DIR", str(tmp_path))
    gift = make_gift(make_donor("dev@example.org"), fund, 2_500)
    service.queue("gift_receipt", "dev@example.org", {"gift_id": gift.id})
    service.queue("magic_link", "dev@example.org", {"url": "http://127.0.0.1:5000/m/x", "expires_at_iso": "2026-05-01"})
    db.session.commit()
    with caplog.at_level("INFO", logger="donations.mail.mailer"):
        assert OutboxWorker().drain().sent == 2
    files = sorted(tmp_path.glob("*.eml"))
    assert len(files) == 2
    mails = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert {str(m["Message-ID"]) for m in mails} == {m.message_id for m in outbox()}
    assert all("not tax deductible" in text_and_html(m)[0].lower() for m in mails if "receipt" in m["Subject"])
    assert "http://127.0.0.1:5000/m/x" in caplog.text  # the link is in the log, for `make run`


def test_starttls_with_login_and_implicit_tls(app, monkeypatch, localhost_certificate):
    import ssl

    cert, key = localhost_certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts our test certificate
    context = {"url": "https://x.example/l", "expires_at_iso": "2026-05-01"}

    starttls = SmtpServer(tls_context=server_context, require_starttls=True)
    starttls.start()
    try:
        monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://mailer:s3cret%2Fpw@localhost:{starttls.port}")
        service.queue("magic_link", "tls@example.org", context)
        db.session.commit()
        assert OutboxWorker().drain().sent == 1
    finally:
        starttls.stop()
    assert starttls.mailbox.logins == ["mailer"]
    assert [m["To"] for m in starttls.mailbox.messages] == ["tls@example.org"]

    implicit = SmtpServer(ssl_context=server_context)
    implicit.start()
    try:
        monkeypatch.setitem(app.config, "SMTP_URL", f"smtps://localhost:{implicit.port}")
        service.queue("magic_link", "smtps@example.org", context)
        db.session.commit()
        assert OutboxWorker().drain().sent == 1
    finally:
        implicit.stop()
    assert [m["To"] for m in implicit.mailbox.messages] == ["smtps@example.org"]


def test_smtp_url_forms():
    plain = SmtpSettings.from_url("smtp://mail.example.org", 5)
    assert (plain.host, plain.port, plain.implicit_tls, plain.username) == ("mail.example.org", 587, False, None)
    secure = SmtpSettings.from_url("smtps://me%40example.org:p%2Fw@mail.example.org", 5)
    assert (secure.port, secure.implicit_tls, secure.username, secure.password) == (465, True, "me@example.org", "p/w")
    assert SmtpSettings.from_url("smtp://127.0.0.1:2525", 5).is_loopback
    assert SmtpSettings.from_url("smtp://localhost", 5).is_loopback and not plain.is_loopback
    for bad in ("http://mail.example.org", "smtp://", "smtp://host:notaport"):
        with pytest.raises(MailConfigError):
            SmtpSettings.from_url(bad, 5)


def test_backoff_doubles_up_to_six_hours():
    assert [backoff(n, 60).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(30, 60) == timedelta(hours=6)


def test_worker_refuses_to_start_in_production_without_smtp(app, monkeypatch):
    monkeypatch.setitem(app.config, "CONFIG_NAME", "production")
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    result = app.test_cli_runner().invoke(args=["receipts", "work", "--once"])
    assert result.exit_code != 0 and "SMTP_URL" in result.output


def test_a_bad_smtp_url_stops_the_worker_with_a_clear_error(app, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_URL", "mailto:someone")
    result = app.test_cli_runner().invoke(args=["receipts", "work", "--once"])
    assert result.exit_code != 0 and "smtp://" in result.output
