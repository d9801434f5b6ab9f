"""Reconciliation with Stripe's balance: each online gift's fee and net, and each payout with the
gifts, refunds and disputes it settles.

Payouts are recorded from their `payout.paid` event alone; the balance transactions behind them
are fetched later by `payments sync` (a webhook never waits on a call back to Stripe). Amounts
are Stripe's own, signed as Stripe signs them: a refund or a dispute withdrawal is negative.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from donations.clock import from_timestamp, utcnow
from donations.extensions import db
from donations.ledger import reversals
from donations.ledger.models import Dispute, Gift, Reversal
from donations.payments.gateway import GatewayRefused, PaymentGateway, get_gateway
from donations.payments.handlers.payload import object_id
from donations.payments.models import Payout, PayoutTransaction

CHARGE_TYPES = ("charge", "payment")
REFUND_TYPES = ("refund", "payment_refund")
REFUND_FAILURE_TYPES = ("refund_failure", "payment_failure_refund")
DISPUTE_CATEGORIES = ("dispute", "dispute_reversal")
FINAL_PAYOUT_STATUSES = ("failed", "canceled")

log = logging.getLogger(__name__)


def record_payout(payout: dict[str, Any]) -> Payout:
    """A payout as its event tells it (paid, failed, canceled); a replay changes nothing."""
    row = db.session.get(Payout, payout["id"], with_for_update=True)
    if row is None:
        row = Payout(id=payout["id"], created_at=from_timestamp(payout["created"]))
        db.session.add(row)
    row.amount_cents = int(payout["amount"])
    row.currency = payout["currency"]
    # A payout can fail after it was paid, never the other way: a late `paid` changes nothing.
    if row.status not in FINAL_PAYOUT_STATUSES:
        row.status = payout["status"]
    arrival = payout.get("arrival_date")
    row.arrival_date = from_timestamp(arrival).date() if arrival else None
    db.session.flush()
    return row


def _link(line: PayoutTransaction) -> None:
    """Tie one balance transaction to its gift, reversal or dispute, where the ledger has them."""
    if line.type in CHARGE_TYPES:
        gift = reversals.find_gift(line.source_id, line.payment_intent_id)
        if gift is not None:
            line.gift_id = gift.id
            gift.stripe_fee_cents = line.fee_cents
            gift.net_cents = line.net_cents
            gift.stripe_balance_transaction_id = line.id
            gift.stripe_payout_id = line.payout_id
            gift.stripe_charge_id = gift.stripe_charge_id or line.source_id
        return
    key = None
    if line.type in REFUND_TYPES:
        key = f"refund:{line.source_id}"
    elif line.type in REFUND_FAILURE_TYPES:
        key = f"refund_failed:{line.source_id}"
    elif line.reporting_category in DISPUTE_CATEGORIES and line.source_id:
        dispute = db.session.get(Dispute, line.source_id)
        if dispute is not None:
            line.dispute_id = dispute.id
            line.gift_id = dispute.gift_id
        if line.reporting_category == "dispute":
            key = f"dispute_lost:{line.source_id}"
    if key is not None:
        reversal = db.session.scalar(select(Reversal).where(Reversal.stripe_key == key))
        if reversal is not None:
            line.reversal_id = reversal.id
            line.gift_id = reversal.gift_id
            reversal.stripe_payout_id = line.payout_id


def _record_transaction(payout: Payout, transaction: dict[str, Any]) -> PayoutTransaction:
    source = transaction.get("source")
    line = db.session.get(PayoutTransaction, transaction["id"])
    if line is None:
        line = PayoutTransaction(id=transaction["id"])
        db.session.add(line)
    line.payout_id = payout.id
    line.type = transaction["type"]
    line.reporting_category = transaction.get("reporting_category") or transaction["type"]
    line.source_id = object_id(source)
    line.payment_intent_id = object_id(source.get("payment_intent")) if isinstance(source, dict) else None
    line.amount_cents = int(transaction["amount"])
    line.fee_cents = int(transaction["fee"])
    line.net_cents = int(transaction["net"])
    line.currency = transaction["currency"]
    line.created_at = from_timestamp(transaction["created"])
    _link(line)
    return line


def reconcile_payouts(gateway: PaymentGateway | None = None, limit: int = 50) -> int:
    """Fetch the balance transactions of paid payouts not reconciled yet; returns how many payouts.

    Each payout commits on its own: a failure half-way keeps what was done, and the payout
    is fetched again whole next time (its lines are keyed by Stripe's id)."""
    gateway = gateway or get_gateway()
    payout_ids = db.session.scalars(
        select(Payout.id)
        .where(Payout.status == "paid", Payout.reconciled_at.is_(None))
        .order_by(Payout.created_at)
        .limit(limit)
    ).all()
    for payout_id in payout_ids:
        payout = db.session.get(Payout, payout_id)
        assert payout is not None
        for transaction in gateway.list_payout_balance_transactions(payout_id):
            if transaction["type"] == "payout":  # the payout itself, not money it settles
                continue
            _record_transaction(payout, transaction)
        payout.reconciled_at = utcnow()
        db.session.commit()
    return len(payout_ids)


def relink_transactions(limit: int = 500) -> int:
    """Link payout lines whose gift or refund was not in the ledger when they were fetched, and
    dispute withdrawals paid out before the dispute was lost."""
    line = PayoutTransaction
    lines = db.session.scalars(
        select(line)
        .where(
            line.source_id.is_not(None),
            line.gift_id.is_(None)
            | (line.reporting_category == "dispute") & line.reversal_id.is_(None) & line.dispute_id.is_not(None),
        )
        .order_by(line.created_at)
        .limit(limit)
    ).all()
    for line in lines:
        _link(line)
    db.session.commit()
    return sum(1 for line in lines if line.gift_id is not None)


def fill_fees(gateway: PaymentGateway | None = None, limit: int = 200) -> int:
    """Fee and net for gifts whose balance transaction is known but not yet paid out."""
    gateway = gateway or get_gateway()
    gifts = db.session.scalars(
        select(Gift)
        .where(Gift.stripe_balance_transaction_id.is_not(None), Gift.stripe_fee_cents.is_(None))
        .order_by(Gift.id)
        .limit(limit)
    ).all()
    for gift in gifts:
        try:
            transaction = gateway.retrieve_balance_transaction(gift.stripe_balance_transaction_id or "")
        except GatewayRefused as exc:
            # One unknown id must not stop every sync; its payout will bring the fee anyway.
            log.warning("gift %s: balance transaction not available: %s", gift.id, exc)
            continue
        gift.stripe_fee_cents = int(transaction["fee"])
        gift.net_cents = int(transaction["net"])
        db.session.commit()
    return len(gifts)


@dataclass(frozen=True)
class PayoutRow:
    """One payout for the reconciliation report. Signed as Stripe signs: refunds and dispute
    withdrawals are negative; `net_cents` equals `amount_cents` when every line was fetched."""

    payout_id: str
    arrival_date: date | None
    currency: str
    status: str
    amount_cents: int
    gross_cents: int
    fee_cents: int
    refunds_cents: int
    disputes_cents: int
    other_cents: int
    net_cents: int
    gift_count: int
    unmatched_count: int  # charges that are no gift in the ledger (yet)
    reconciled_at: datetime | None

    @property
    def balanced(self) -> bool:
        return self.reconciled_at is not None and self.net_cents == self.amount_cents


def _sum_where(condition: Any, column: Any = None) -> Any:
    value = PayoutTransaction.amount_cents if column is None else column
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def payout_reconciliation_rows(first: date | None = None, last: date | None = None) -> Iterator[PayoutRow]:
    """Per payout (arriving between the local dates first..last, inclusive, when given): gross,
    fees, refunds, disputes, other, net and gifts, aggregated by the database."""
    line = PayoutTransaction
    is_charge = line.reporting_category == "charge"
    is_refund = line.reporting_category.in_(("refund", "refund_failure"))
    is_dispute = line.reporting_category.in_(DISPUTE_CATEGORIES)
    query = (
        select(
            Payout.id,
            Payout.arrival_date,
            Payout.currency,
            Payout.status,
            Payout.amount_cents,
            _sum_where(is_charge),
            func.coalesce(func.sum(line.fee_cents), 0),
            _sum_where(is_refund),
            _sum_where(is_dispute),
            _sum_where(~(is_charge | is_refund | is_dispute)),
            func.coalesce(func.sum(line.net_cents), 0),
            func.count(func.distinct(case((is_charge, line.gift_id)))),
            func.count(case((and_(is_charge, line.gift_id.is_(None)), line.id))),
            Payout.reconciled_at,
        )
        .select_from(Payout)
        .outerjoin(line, line.payout_id == Payout.id)
        .where(Payout.status == "paid")
        .group_by(Payout.id)
        .order_by(Payout.arrival_date, Payout.id)
    )
    if first is not None:
        query = query.where(Payout.arrival_date >= first)
    if last is not None:
        query = query.where(Payout.arrival_date <= last)
    for row in db.session.execute(query):
        yield PayoutRow(*row)
