"""Fees, net and payouts from Stripe's balance transactions, fetched from a local server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import Gift, Reversal
from donations.payments.models import Payout, PayoutTransaction
from donations.payments.reconcile import payout_reconciliation_rows
from donations.payments.sync import run_sync
from tests import stripe_events as se
from tests.factories import make_fund
from tests.http_recorder import Answer, HTTPRecorder, RecordedRequest
from tests.payments import support as me

TRANSACTIONS = "/v1/balance_transactions"
ARRIVAL = 1_767_571_200  # 2026-01-05: Stripe sends the arrival day as midnight UTC
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@pytest.fixture
def stripe_api(app, monkeypatch) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_reconcile")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        api.route("GET", "/v1/events", json=me.page([], has_more=False, url="/v1/events"))
        yield api


def serve_transactions(api: HTTPRecorder, transactions: list[dict], page_size: int = 2) -> None:
    def answer(request: RecordedRequest) -> Answer:
        listed = transactions
        if "starting_after" in request.query:
            ids = [t["id"] for t in listed]
            listed = listed[ids.index(request.query["starting_after"]) + 1 :]
        return Answer(json=me.page(listed[:page_size], has_more=len(listed) > page_size, url=TRANSACTIONS))

    api.route("GET", TRANSACTIONS, answer)


def gift_paid(client, secret, amount: int, email: str) -> tuple[str, str]:
    payment_intent, charge_id = se.unique("pi"), se.unique("ch")
    session = se.checkout_session(amount_cents=amount, email=email, payment_intent=payment_intent)
    assert se.post_event(client, se.event("checkout.session.completed", session), secret).status_code == 200
    return payment_intent, charge_id


def test_payout_records_gifts_refunds_and_disputes_it_settles(client, webhook_secret, fund, stripe_api):
    pi_a, ch_a = gift_paid(client, webhook_secret, 10_000, "ann@example.org")
    pi_b, ch_b = gift_paid(client, webhook_secret, 5_000, "bo@example.org")
    refund = me.refund(amount=2_000, payment_intent=pi_a, charge=ch_a)
    dispute = me.dispute(amount=5_000, payment_intent=pi_b, charge=ch_b)
    for payload in [
        se.event("refund.created", refund),
        se.event("charge.dispute.created", dispute),
        se.event("charge.dispute.closed", dict(dispute, status="lost")),
    ]:
        assert se.post_event(client, payload, webhook_secret).status_code == 200
    charge_a = me.charge(amount=10_000, payment_intent=pi_a, charge_id=ch_a)
    charge_b = me.charge(amount=5_000, payment_intent=pi_b, charge_id=ch_b)
    stranger = me.charge(amount=1_000, payment_intent=se.unique("pi"))  # sold elsewhere: no gift
    transactions = [
        me.balance_transaction(amount=10_000, fee=320, type="charge", source=charge_a),
        me.balance_transaction(amount=5_000, fee=175, type="charge", source=charge_b),
        me.balance_transaction(amount=1_000, fee=59, type="charge", source=stranger),
        me.balance_transaction(amount=-2_000, fee=0, type="refund", source=refund),
        me.balance_transaction(
            amount=-5_000, fee=1_500, type="adjustment", reporting_category="dispute", source=dispute
        ),
    ]
    net = sum(t["net"] for t in transactions)
    payout_bt = me.balance_transaction(amount=-net, fee=0, type="payout", source=se.unique("po"))
    serve_transactions(stripe_api, [*transactions, payout_bt])
    payout = me.payout(amount=net, arrival=ARRIVAL)
    assert se.post_event(client, se.event("payout.paid", payout), webhook_secret).status_code == 200
    # The webhook records the payout from its payload; nothing is fetched yet.
    assert db.session.get(Payout, payout["id"]).reconciled_at is None
    assert stripe_api.requests_to("GET", TRANSACTIONS) == []
    # Until the sync ties its gifts to it, the whole payout is unexplained by the ledger.
    (unsynced,) = payout_reconciliation_rows(date(2026, 1, 5), date(2026, 1, 5))
    assert (unsynced.gift_count, unsynced.net_cents, unsynced.difference_cents) == (0, 0, net)

    run = run_sync(SINCE)

    assert run.succeeded, run.error
    pages = stripe_api.requests_to("GET", TRANSACTIONS)
    assert len(pages) == 3
    assert all(r.query["payout"] == payout["id"] and r.query["expand[0]"] == "data.source" for r in pages)
    gift_a = db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == pi_a)).one()
    gift_b = db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == pi_b)).one()
    assert (gift_a.stripe_fee_cents, gift_a.net_cents, gift_a.stripe_payout_id) == (320, 9_680, payout["id"])
    assert (gift_b.stripe_fee_cents, gift_b.net_cents, gift_b.stripe_charge_id) == (175, 4_825, ch_b)
    reversal_payouts = db.session.execute(select(Reversal.kind, Reversal.stripe_payout_id).order_by(Reversal.kind))
    assert [tuple(r) for r in reversal_payouts] == [("dispute_lost", payout["id"]), ("refund", payout["id"])]
    lines = db.session.scalars(select(PayoutTransaction).order_by(PayoutTransaction.amount_cents)).all()
    assert [(line.amount_cents, line.gift_id) for line in lines] == [
        (-5_000, gift_b.id),
        (-2_000, gift_a.id),
        (1_000, None),
        (5_000, gift_b.id),
        (10_000, gift_a.id),
    ]

    # The arrival day is Stripe's calendar date, not shifted into Los Angeles' previous evening.
    assert list(payout_reconciliation_rows(date(2026, 1, 4), date(2026, 1, 4))) == []
    (row,) = payout_reconciliation_rows(date(2026, 1, 5), date(2026, 1, 5))
    assert (row.payout_id, row.arrival_date, row.status) == (payout["id"], date(2026, 1, 5), "paid")
    # The ledger's side: the two gifts, their fees, the refund and the lost dispute...
    assert (row.gift_count, row.gross_cents, row.fee_cents) == (2, 15_000, 495)
    assert (row.refunds_cents, row.disputes_cents, row.net_cents) == (2_000, 5_000, 7_505)
    # ...against what Stripe paid out: the difference is the charge that is no gift here
    # (1,000 less its 59 fee) and Stripe's 1,500 dispute fee, which staff must account for.
    assert (row.amount_cents, row.difference_cents) == (net, 941 - 1_500)
    assert list(payout_reconciliation_rows(date(2026, 1, 6), date(2026, 12, 31))) == []

    # A second sync fetches nothing more and changes nothing.
    run_sync(SINCE)
    assert len(stripe_api.requests_to("GET", TRANSACTIONS)) == 3
    assert list(payout_reconciliation_rows(date(2026, 1, 5), date(2026, 1, 5))) == [row]


def test_fee_of_a_gift_not_yet_paid_out_comes_from_its_balance_transaction(client, webhook_secret, fund, stripe_api):
    payment_intent, charge_id = gift_paid(client, webhook_secret, 4_000, "cat@example.org")
    refund = me.refund(amount=1_000, payment_intent=payment_intent, charge=charge_id)
    charge = me.charge(amount=4_000, payment_intent=payment_intent, charge_id=charge_id, refunds=[refund])
    assert se.post_event(client, se.event("charge.refunded", charge), webhook_secret).status_code == 200
    txn = charge["balance_transaction"]
    stripe_api.route(
        "GET",
        f"{TRANSACTIONS}/{txn}",
        json=me.balance_transaction(amount=4_000, fee=146, type="charge", source=charge_id, txn_id=txn),
    )

    assert run_sync(SINCE).succeeded

    gift = db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == payment_intent)).one()
    assert (gift.stripe_balance_transaction_id, gift.stripe_fee_cents, gift.net_cents) == (txn, 146, 3_854)
    run_sync(SINCE)
    assert len(stripe_api.requests_to("GET", f"{TRANSACTIONS}/{txn}")) == 1


def test_dispute_paid_out_while_open_is_tied_to_its_reversal_once_lost(client, webhook_secret, fund, stripe_api):
    payment_intent, charge_id = gift_paid(client, webhook_secret, 3_000, "dot@example.org")
    dispute = me.dispute(amount=3_000, payment_intent=payment_intent, charge=charge_id)
    se.post_event(client, se.event("charge.dispute.created", dispute), webhook_secret)
    withdrawal = me.balance_transaction(
        amount=-3_000, fee=1_500, type="adjustment", reporting_category="dispute", source=dispute
    )
    serve_transactions(stripe_api, [withdrawal])
    payout = me.payout(amount=-4_500)
    se.post_event(client, se.event("payout.paid", payout), webhook_secret)
    assert run_sync(SINCE).succeeded
    line = db.session.get(PayoutTransaction, withdrawal["id"])
    assert (line.dispute_id, line.reversal_id) == (dispute["id"], None)

    se.post_event(client, se.event("charge.dispute.closed", dict(dispute, status="lost")), webhook_secret)
    assert run_sync(SINCE).succeeded
    db.session.expire_all()
    reversal = db.session.scalars(select(Reversal)).one()
    assert db.session.get(PayoutTransaction, withdrawal["id"]).reversal_id == reversal.id
    assert reversal.stripe_payout_id == payout["id"]


def test_a_payout_that_failed_stays_failed_and_the_report_says_so(client, webhook_secret, fund, stripe_api):
    payout = me.payout(amount=1_000)
    se.post_event(client, se.event("payout.failed", dict(payout, status="failed")), webhook_secret)
    se.post_event(client, se.event("payout.paid", payout), webhook_secret)  # delivered late
    assert db.session.get(Payout, payout["id"]).status == "failed"
    assert run_sync(SINCE).succeeded
    # Listed with its status: the bank never saw it, and staff must see why.
    (row,) = payout_reconciliation_rows(date(2026, 1, 5), date(2026, 1, 5))
    assert (row.payout_id, row.status, row.gift_count) == (payout["id"], "failed", 0)
    assert (row.amount_cents, row.difference_cents) == (0, 0)  # its 1,000 never reached the bank
    assert stripe_api.requests_to("GET", TRANSACTIONS) == []


def test_an_unknown_balance_transaction_does_not_stop_the_sync(client, webhook_secret, fund, stripe_api):
    payment_intent, charge_id = gift_paid(client, webhook_secret, 4_000, "eli@example.org")
    charge = me.charge(amount=4_000, payment_intent=payment_intent, charge_id=charge_id)
    se.post_event(client, se.event("charge.refunded", charge), webhook_secret)
    stripe_api.route(
        "GET",
        f"{TRANSACTIONS}/{charge['balance_transaction']}",
        status=404,
        json={"error": {"type": "invalid_request_error", "message": "No such balance transaction"}},
    )
    run = run_sync(SINCE)
    assert (run.succeeded, run.error) == (True, None)
    gift = db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == payment_intent)).one()
    assert gift.stripe_fee_cents is None and gift.stripe_balance_transaction_id == charge["balance_transaction"]


def test_a_manual_payout_is_recorded_and_never_listed_by_payout(client, webhook_secret, fund, stripe_api):
    """Stripe lists balance transactions by payout for automatic payouts only."""
    manual = dict(me.payout(amount=3_000), automatic=False)
    assert se.post_event(client, se.event("payout.paid", manual), webhook_secret).status_code == 200
    assert run_sync(SINCE).succeeded
    assert stripe_api.requests_to("GET", TRANSACTIONS) == []
    payout = db.session.get(Payout, manual["id"], populate_existing=True)
    assert payout.status == "paid" and payout.reconciled_at is not None
