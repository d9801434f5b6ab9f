"""The newsroom takes one currency (CURRENCY). Issue 13, finding 2: a signed
`checkout.session.completed` with `currency: "jpy"` and `amount_total: 5000` was applied and
counted as $50.00 in the grant ledger, the dashboard and the fund totals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.ledger import donors, funds
from donations.ledger import service as ledger
from donations.ledger.models import Gift, GiftStatus
from donations.mail import statements
from donations.payments.models import StripeEvent
from donations.staff import dashboard, queries
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import page_text
from tests.grants.support import ledger_rows, local, make_program, summary
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def foreign_session(currency: str, **kwargs) -> dict:
    session = se.checkout_session(amount_cents=5000, **kwargs)
    session["currency"] = currency
    return session


def gift_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Gift))


@pytest.mark.parametrize(("currency", "code"), [("jpy", "JPY"), ("eur", "EUR"), ("EUR", "EUR")])
def test_a_payment_in_another_currency_is_kept_failed_with_its_reason(client, webhook_secret, fund, currency, code):
    payload = se.event("checkout.session.completed", foreign_session(currency))
    response = se.post_event(client, payload, webhook_secret)
    assert response.status_code == 200  # acknowledged: Stripe need not retry what cannot change
    assert response.json["outcome"] == "deferred"
    stored = db.session.get(StripeEvent, payload["id"])
    reason = f"paid in {code}; this newsroom takes USD"
    assert stored.applied_at is None and stored.error == reason
    assert gift_count() == 0
    assert funds.raised_by_fund() == {}

    sign_in(client, make_staff("finance"))
    html = page_text(client.get("/staff/events").get_data(as_text=True))
    assert payload["id"] in html and reason in html


def test_our_pending_gift_paid_in_another_currency_stays_unpaid(client, webhook_secret, fund):
    donor = make_donor("ann@example.org")
    gift = ledger.start_gift(donor, fund, ledger.GiftDetails(5000, 0, "one_time", None, False, None, None, {}))
    gift.stripe_checkout_session_id = "cs_test_yen"
    db.session.commit()
    assert gift.currency == "usd"
    session = foreign_session(
        "jpy", session_id="cs_test_yen", email="ann@example.org", metadata={"gift_id": str(gift.id)}
    )
    assert (
        se.post_event(client, se.event("checkout.session.completed", session), webhook_secret).json["outcome"]
        == "deferred"
    )
    db.session.expire_all()
    assert (gift.status, gift.currency, gift.received_at) == (GiftStatus.PENDING, "usd", None)


def test_an_installment_in_another_currency_is_kept_failed(client, webhook_secret, fund):
    invoice = se.invoice(subscription=se.unique("sub"), billing_reason="subscription_create")
    invoice["currency"] = "jpy"
    payload = se.event("invoice.paid", invoice)
    assert se.post_event(client, payload, webhook_secret).json["outcome"] == "deferred"
    assert db.session.get(StripeEvent, payload["id"]).error == "paid in JPY; this newsroom takes USD"
    assert gift_count() == 0


def test_every_total_adds_only_the_newsroom_currency(app, client, monkeypatch, fund):
    """A gift in another currency already in the ledger (recorded before the rule) is in no total,
    report or chart: 5000 yen are not $50.00."""
    day = local_date(utcnow())
    monkeypatch.setattr(dashboard, "utcnow", lambda: local(day.year, day.month, day.day))
    donor = make_donor("mixed@example.org", name="Mixed Currencies")
    at = local(day.year, day.month, day.day, 9)
    dollars = make_gift(donor, fund, 2_500, received_at=at, currency="usd")
    make_gift(donor, fund, 5_000, received_at=at, currency="jpy")
    make_gift(donor, fund, 5_000, received_at=at, currency="eur", status=GiftStatus.PARTIALLY_REFUNDED)

    assert funds.raised_by_fund() == {fund.id: 2_500}
    today = dashboard.period_totals(day)[0]
    assert (today.gifts, today.gross_cents) == (1, 2_500)
    assert [(d.gifts, d.cents) for d in dashboard.gifts_per_day(day) if d.day == day] == [(1, 2_500)]
    [year] = queries.totals_by_year([donor.id])
    assert (year.gift_count, year.gross_cents) == (1, 2_500)
    [match] = donors.search("Mixed")
    assert (match.gift_count, match.given_cents) == (1, 2_500)
    statement = statements.statement_for(donor.id, day.year)
    assert [g.gift_id for g in statement.gifts] == [dollars.id] and statement.gifts_total_cents == 2_500

    program = make_program(first_day=day - timedelta(days=1), last_day=day + timedelta(days=1))
    assert [row["Gift ID"] for row in ledger_rows(program)] == [dollars.id]
    assert summary(program)["Gifts counted"] == 1


def test_the_currency_is_the_configured_one(app, client, webhook_secret, fund, monkeypatch):
    monkeypatch.setitem(app.config, "CURRENCY", "eur")
    gift = ledger.start_gift(make_donor(), fund, ledger.GiftDetails(5000, 0, "one_time", None, False, None, None, {}))
    db.session.commit()  # as the request that starts a checkout does, before the webhook's request
    assert gift.currency == "eur"
    in_euros = se.event("checkout.session.completed", foreign_session("eur"))
    assert se.post_event(client, in_euros, webhook_secret).json["outcome"] == "applied"
    in_dollars = se.event("checkout.session.completed", se.checkout_session())
    assert se.post_event(client, in_dollars, webhook_secret).json["outcome"] == "deferred"
    assert db.session.get(StripeEvent, in_dollars["id"]).error == "paid in USD; this newsroom takes EUR"
    assert funds.raised_by_fund() == {fund.id: 5000}
