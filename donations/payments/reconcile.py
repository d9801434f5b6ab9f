"""Reconciliation with Stripe's balance: each online gift's fee and net, and each payout with the
gifts, refunds and disputes it settles (the payout reconciliation report is computed here).

Payouts are recorded from their `payout.paid` event alone; the balance transactions behind them
are fetched later by `payments sync` (a webhook never waits on a call back to Stripe). Amounts
are Stripe's own, signed as Stripe signs them: a refund or a dispute withdrawal is negative.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import BigInteger, case, cast, func, select

from donations.clock import from_timestamp, utcnow
from donations.extensions import db
from donations.ledger import reversals, settlement
from donations.ledger.models import Dispute, Gift, Reversal, ReversalKind
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
    if payout.get("automatic") is False and row.reconciled_at is None:
        # A manual payout: Stripe lists balance transactions by payout for automatic payouts
        # only, so there is nothing to fetch (each gift's fee still comes from its own balance
        # transaction): recorded, and never asked for.
        row.reconciled_at = utcnow()
    db.session.flush()
    return row


def _link(line: PayoutTransaction) -> None:
    """Tie one balance transaction to its gift, reversal or dispute, where the ledger has them."""
    if line.type in CHARGE_TYPES:
        gift = reversals.find_gift(line.source_id, line.payment_intent_id)
        if gift is not None:
            line.gift_id = gift.id
            settlement.record_settlement(
                gift,
                fee_cents=line.fee_cents,
                net_cents=line.net_cents,
                balance_transaction_id=line.id,
                payout_id=line.payout_id,
                charge_id=line.source_id,
            )
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
            settlement.record_reversal_payout(reversal, line.payout_id)


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


def record_transaction(payout: Payout, transaction: dict[str, Any]) -> PayoutTransaction:
    """One balance transaction of a payout, linked to the ledger (the demo newsroom's payouts)."""
    return _record_transaction(payout, transaction)


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
        # A sync job owns its transactions: each payout is kept as it is reconciled, so a gateway
        # error later in the run (a 429, a timeout) loses none of the work already done.
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
    for transaction in lines:
        _link(transaction)
    db.session.commit()
    return sum(1 for transaction in lines if transaction.gift_id is not None)


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
        settlement.record_fee(gift, fee_cents=int(transaction["fee"]), net_cents=int(transaction["net"]))
        db.session.commit()  # each fee kept as fetched, like each payout above
    return len(gifts)


@dataclass(frozen=True)
class PayoutRow:
    """One payout as the ledger accounts for it: the gifts and reversals tied to it, against what
    Stripe paid out. Refunds and disputes are the ledger's reversal amounts (positive; a failed
    refund or a won dispute counts negative)."""

    payout_id: str
    arrival_date: date | None
    status: str
    currency: str
    amount_cents: int  # what Stripe paid out: 0 unless the payout's status is paid
    gift_count: int
    gross_cents: int
    fee_cents: int
    refunds_cents: int
    disputes_cents: int

    @property
    def net_cents(self) -> int:
        return self.gross_cents - self.fee_cents - self.refunds_cents - self.disputes_cents

    @property
    def difference_cents(self) -> int:
        """Paid out less the ledger's net: payout lines that are no gift or reversal here (a
        charge sold elsewhere, Stripe's dispute fee, other balance activity), or lines not synced yet."""
        return self.amount_cents - self.net_cents


def _bigsum(column: Any) -> Any:
    # PostgreSQL's sum(bigint) is numeric; cents stay integers.
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


def payout_reconciliation_rows(first: date, last: date) -> Iterator[PayoutRow]:
    """Per payout arriving between first and last (Stripe's calendar dates, inclusive), whatever
    its status: the ledger's gifts and reversals it settled, aggregated by the database.

    From the ledger, not from Stripe's balance transactions: their net is the payout by
    construction, so only the ledger's side can show money a payout holds that the ledger lacks."""
    gifts = (
        select(
            Gift.stripe_payout_id.label("payout_id"),
            func.count().label("gifts"),
            _bigsum(Gift.amount_cents).label("gross"),
            _bigsum(Gift.stripe_fee_cents).label("fees"),
        )
        .where(Gift.stripe_payout_id.is_not(None))
        .group_by(Gift.stripe_payout_id)
        .subquery("payout_gifts")
    )
    is_refund = Reversal.kind.in_([ReversalKind.REFUND.value, ReversalKind.REFUND_FAILED.value])
    is_dispute = Reversal.kind.in_([ReversalKind.DISPUTE_LOST.value, ReversalKind.DISPUTE_WON.value])
    reversed_ = (
        select(
            Reversal.stripe_payout_id.label("payout_id"),
            _bigsum(case((is_refund, Reversal.amount_cents), else_=0)).label("refunds"),
            _bigsum(case((is_dispute, Reversal.amount_cents), else_=0)).label("disputes"),
        )
        .where(Reversal.stripe_payout_id.is_not(None))
        .group_by(Reversal.stripe_payout_id)
        .subquery("payout_reversals")
    )
    query = (
        select(
            Payout.id,
            Payout.arrival_date,
            Payout.status,
            Payout.currency,
            # A payout that failed or was canceled never reached the bank: nothing was paid out.
            case((Payout.status == "paid", Payout.amount_cents), else_=0),
            func.coalesce(gifts.c.gifts, 0),
            func.coalesce(gifts.c.gross, 0),
            func.coalesce(gifts.c.fees, 0),
            func.coalesce(reversed_.c.refunds, 0),
            func.coalesce(reversed_.c.disputes, 0),
        )
        .outerjoin(gifts, gifts.c.payout_id == Payout.id)
        .outerjoin(reversed_, reversed_.c.payout_id == Payout.id)
        .where(Payout.arrival_date.between(first, last))
        .order_by(Payout.arrival_date, Payout.id)
    )
    # Core on the session's connection, in batches: plain columns need no ORM result handling.
    for row in db.session.connection().execute(query, execution_options={"yield_per": 2000}):
        yield PayoutRow(*row)
