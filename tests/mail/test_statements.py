"""Annual statements: the arithmetic, the CLI that queues them, the staff's printable page, the
donor's own request link, and the email."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from flask import url_for
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Donor, GiftStatus, Reversal, ReversalKind
from donations.mail import statements
from donations.mail.models import OutboxMessage
from donations.mail.worker import OutboxWorker
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, extract_csrf_token, page_text
from tests.mail.support import sign_in


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def reversal(gift, kind: str, cents: int, when: datetime) -> Reversal:
    entry = Reversal(gift=gift, kind=kind, amount_cents=cents, reversed_at=when, stripe_key=f"re_{gift.id}_{cents}")
    db.session.add(entry)
    db.session.commit()
    return entry


@pytest.fixture
def giving_year(app):
    """A donor's 2025, with the edges that matter: local year boundaries, refunds dated in
    another year, failed gifts, another donor."""
    fund = make_fund("forums", name="Community Forums Reporting")
    donor = make_donor("rae@example.org", name="Rae Reader")
    other = make_donor("other@example.org")
    make_gift(donor, fund, 9_900, received_at=at(2025, 1, 1, 7, 0))  # Dec 31, 2024 in Los Angeles
    june = make_gift(donor, fund, 5_000, received_at=at(2025, 6, 1), card_last4="4242")
    late = make_gift(donor, fund, 2_500, received_at=at(2026, 1, 1, 7, 30))  # Dec 31, 2025 local
    make_gift(donor, fund, 7_000, received_at=at(2025, 7, 1), status=GiftStatus.FAILED)
    make_gift(other, fund, 100_000, received_at=at(2025, 6, 1))
    reversal(june, ReversalKind.DISPUTE_LOST, 5_000, at(2025, 8, 1))
    reversal(june, ReversalKind.DISPUTE_WON, -5_000, at(2025, 9, 1))  # restored
    reversal(june, ReversalKind.REFUND, 1_000, at(2025, 10, 1))
    reversal(late, ReversalKind.REFUND, 2_500, at(2026, 1, 5))  # counts in 2026
    return donor


def test_statement_has_the_local_years_gifts_and_reversals_and_the_net(giving_year):
    statement = statements.statement_for(giving_year.id, 2025)
    assert [(g.amount_cents, g.received_on.isoformat()) for g in statement.gifts] == [
        (5_000, "2025-06-01"),
        (2_500, "2025-12-31"),
    ]
    assert [(r.kind, r.amount_cents) for r in statement.reversals] == [
        ("dispute_lost", 5_000),
        ("dispute_won", -5_000),
        ("refund", 1_000),
    ]
    assert (statement.gifts_total_cents, statement.reversals_total_cents, statement.net_cents) == (7_500, 1_000, 6_500)
    assert statement.gifts[0].card_last4 == "4242" and statement.gifts[0].fund_name == "Community Forums Reporting"


def test_a_reversal_counts_in_the_year_it_happened(giving_year):
    previous = statements.statement_for(giving_year.id, 2024)
    assert [g.amount_cents for g in previous.gifts] == [9_900] and previous.net_cents == 9_900
    following = statements.statement_for(giving_year.id, 2026)
    assert following.gifts == () and [r.amount_cents for r in following.reversals] == [2_500]
    assert following.net_cents == -2_500


def test_statement_years_and_bad_requests(giving_year):
    assert statements.statement_years(giving_year.id) == [2026, 2025, 2024]
    assert statements.statement_years(make_donor("new@example.org").id) == []
    with pytest.raises(statements.StatementError):
        statements.statement_for(999_999, 2025)
    with pytest.raises(statements.StatementError):
        statements.statement_for(giving_year.id, 1066)


def test_cli_queues_one_statement_per_donor_who_gave_and_never_twice(app, giving_year):
    lapsed = make_donor("lapsed@example.org")
    make_gift(lapsed, make_fund(), 1_000, received_at=at(2024, 5, 1))
    runner = app.test_cli_runner()
    first = runner.invoke(args=["receipts", "statements", "--year", "2025"])
    assert first.exit_code == 0, first.output
    assert "Queued 2" in first.output  # Rae and the other donor; not the lapsed one
    again = runner.invoke(args=["receipts", "statements", "--year", "2025"])
    assert "Queued 0" in again.output
    queued = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.to_address)).all()
    assert [(m.kind, m.to_address, m.context["year"]) for m in queued] == [
        ("annual_statement", "other@example.org", 2025),
        ("annual_statement", "rae@example.org", 2025),
    ]
    assert queued[1].context["donor_id"] == giving_year.id and queued[1].donor_id == giving_year.id
    audits = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "statements.queue").order_by(AuditEntry.id)
    ).all()
    assert [a.details["queued"] for a in audits] == [2, 0]
    bad = runner.invoke(args=["receipts", "statements", "--year", "1800"])
    assert bad.exit_code != 0 and "1800" in bad.output


def test_statement_email_lists_every_gift_and_the_net_total(app, giving_year, smtp):
    statements.queue_statement(giving_year.id, 2025)
    db.session.commit()
    assert OutboxWorker().drain().sent == 1
    (mail,) = smtp.mailbox.messages
    assert "2025" in mail["Subject"]
    for subtype in ("plain", "html"):
        body = " ".join(mail.get_body((subtype,)).get_content().split())
        for phrase in ("$50.00", "Dec 31, 2025", "$25.00", "Card dispute", "-$10.00", "$75.00", "$65.00"):
            assert phrase in body, (subtype, phrase)
        assert "not tax deductible" in body.lower()
        assert "$99.00" not in body and "$1,000.00" not in body  # other years, other donors


def test_staff_statement_page_is_printable_and_finance_can_email_it(app, client, giving_year):
    sign_in(client, "finance")
    page_url = url_for("receipts_staff.statement", donor_id=giving_year.id, year=2025)
    response = client.get(page_url)
    assert response.status_code == 200
    text = page_text(response.get_data(as_text=True))
    for phrase in ("Giving statement for 2025", "Rae Reader", "Jun 1, 2025", "$50.00", "$65.00", "not tax deductible"):
        assert phrase in text, phrase

    email_url = url_for("receipts_staff.email_statement", donor_id=giving_year.id, year=2025)
    assert client.post(email_url).status_code == 400  # no CSRF token
    token = csrf_token(client, page_url)
    assert client.post(email_url, data={"csrf_token": token}).status_code == 303
    assert client.post(email_url, data={"csrf_token": token}).status_code == 303  # same day: not twice
    (message,) = db.session.scalars(select(OutboxMessage)).all()
    assert (message.kind, message.context) == ("annual_statement", {"donor_id": giving_year.id, "year": 2025})
    audits = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "statement.email").order_by(AuditEntry.id)
    ).all()
    assert [a.details for a in audits] == [{"year": 2025, "queued": True}, {"year": 2025, "queued": False}]

    years = page_text(client.get(url_for("receipts_staff.statement_years", donor_id=giving_year.id)).get_data(True))
    assert "2026 statement" in years and "2024 statement" in years
    assert client.get(url_for("receipts_staff.statement", donor_id=999_999, year=2025)).status_code == 404
    assert client.get(url_for("receipts_staff.statement", donor_id=giving_year.id, year=1066)).status_code == 404


def test_a_viewer_sees_the_statement_but_cannot_email_it(app, client, giving_year):
    sign_in(client, "viewer")
    response = client.get(url_for("receipts_staff.statement", donor_id=giving_year.id, year=2025))
    assert response.status_code == 200 and "Email this statement" not in response.get_data(as_text=True)
    token = csrf_token(client, url_for("receipts_staff.statement_years", donor_id=giving_year.id))
    email_url = url_for("receipts_staff.email_statement", donor_id=giving_year.id, year=2025)
    assert client.post(email_url, data={"csrf_token": token}).status_code == 403
    assert db.session.scalars(select(OutboxMessage)).all() == []


def donor_link(app, donor_id: int) -> str:
    with app.test_request_context():
        return statements.statement_link(donor_id)


def test_donor_requests_a_statement_from_the_self_service_link(app, client, giving_year):
    link = donor_link(app, giving_year.id)
    page = client.get(link)
    assert page.status_code == 200
    assert "2025" in page_text(page.get_data(as_text=True))
    token = extract_csrf_token(page.get_data(as_text=True))

    done = client.post(link, data={"csrf_token": token, "year": "2025"})
    assert done.status_code == 200
    assert "r***@example.org" in page_text(done.get_data(as_text=True))
    client.post(link, data={"csrf_token": token, "year": "2025"})  # a second click sends nothing more
    (message,) = db.session.scalars(select(OutboxMessage)).all()
    assert (message.to_address, message.context) == ("rae@example.org", {"donor_id": giving_year.id, "year": 2025})


@pytest.mark.parametrize("year", ["1999", "2030", "twenty", ""])
def test_a_year_the_donor_did_not_give_in_is_refused(app, client, giving_year, year):
    link = donor_link(app, giving_year.id)
    token = csrf_token(client, link)
    response = client.post(link, data={"csrf_token": token, "year": year})
    assert response.status_code == 400
    assert db.session.scalars(select(OutboxMessage)).all() == []


def test_forged_altered_or_expired_links_show_nothing(app, client, giving_year):
    link = donor_link(app, giving_year.id)
    altered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")

    class YesterdaysSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 25 * 3600

    expired_token = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="receipts.statement-request", signer=YesterdaysSigner
    ).dumps(giving_year.id)
    forged_token = URLSafeTimedSerializer("not-our-secret", salt="receipts.statement-request").dumps(giving_year.id)
    for url in (altered, f"/statements/{expired_token}", f"/statements/{forged_token}"):
        response = client.get(url)
        assert response.status_code == 404, url
        text = page_text(response.get_data(as_text=True))
        assert "can't be used" in text and "2025" not in text
    assert "expired" in page_text(client.get(f"/statements/{expired_token}").get_data(as_text=True))


def test_an_organization_named_on_one_gift_stays_on_that_gift(app, client, webhook_secret):
    """Issue 13, finding 6: "Acme Hardware", given once on its behalf, was printed on the
    donor's personal annual statement as though it were the donor's."""
    make_fund("news", is_default=True)
    for business_name in ("Acme Hardware", None):
        session = se.checkout_session(email="jane@example.com", name="Jane Doe", business_name=business_name)
        se.post_event(
            client,
            se.event("checkout.session.completed", session, created=int(at(2026, 3, 1).timestamp())),
            webhook_secret,
        )
    donor = db.session.scalars(select(Donor)).one()
    assert donor.organization is None
    assert sorted(g.organization or "" for g in donor.gifts) == ["", "Acme Hardware"]

    sign_in(client, "finance")
    page = page_text(client.get(url_for("receipts_staff.statement", donor_id=donor.id, year=2026)).get_data(True))
    header = page.split("Gifts in 2026")[0]
    assert "Jane Doe" in header and "Acme Hardware" not in header
    assert page.count("Acme Hardware") == 1 and "one-time gift on behalf of Acme Hardware" in page
