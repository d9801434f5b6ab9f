"""The ledger's writer of reversals: refunds, failed refunds and lost disputes, and the gift
status they imply.

Append-only: every change is a new dated row, keyed by what Stripe calls it
(`refund:<re_id>`, `refund_failed:<re_id>`, `dispute_lost:<du_id>`), so that a replayed or
reordered event finds its row and writes nothing twice. A refund that Stripe could not complete
is never deleted: a restoring entry with a negative amount follows it. Callers own the
transaction: nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import joinedload

from donations.extensions import db
from donations.ledger.models import (
    RECEIVED_STATUSES,
    Dispute,
    Gift,
    GiftStatus,
    InvoicePaymentLink,
    Reversal,
    ReversalKind,
)


class GiftNotYetKnown(LookupError):
    """No received gift matches this charge yet (its own event may still be on its way)."""


class ReversalRefused(ValueError):
    """The reversal does not fit its gift (another currency, more than what is left)."""


# Stripe refund statuses under which the money is (or was about to be) leaving.
REFUND_FAILED_STATUSES = frozenset({"failed", "canceled"})
# Dispute statuses that end a dispute without a loss.
DISPUTE_LOST_STATUS = "lost"


@dataclass(frozen=True)
class RefundFacts:
    """A Stripe refund object, as the ledger needs it."""

    refund_id: str
    amount_cents: int
    currency: str
    status: str
    created_at: datetime  # when the refund was made: the reversal's date
    observed_at: datetime  # when we learned its current status: a failure's date
    charge_id: str | None
    payment_intent_id: str | None
    reason: str | None


@dataclass(frozen=True)
class DisputeFacts:
    """A Stripe dispute object, as the ledger needs it."""

    dispute_id: str
    amount_cents: int
    currency: str
    status: str
    reason: str | None
    evidence_due_by: datetime | None
    created_at: datetime
    observed_at: datetime
    charge_id: str | None
    payment_intent_id: str | None


def find_gift(charge_id: str | None, payment_intent_id: str | None, *, lock: bool = False) -> Gift | None:
    """The received gift paid by this charge or payment intent: one-time gifts carry the payment
    intent (or the charge); installments are found through the invoice-payment link."""
    conditions = []
    if payment_intent_id:
        conditions.append(Gift.stripe_payment_intent_id == payment_intent_id)
        linked_invoice = select(InvoicePaymentLink.stripe_invoice_id).where(
            InvoicePaymentLink.stripe_payment_intent_id == payment_intent_id
        )
        conditions.append(Gift.stripe_invoice_id.in_(linked_invoice))
    if charge_id:
        conditions.append(Gift.stripe_charge_id == charge_id)
    if not conditions:
        return None
    query = select(Gift).where(or_(*conditions), Gift.status.in_(RECEIVED_STATUSES)).order_by(Gift.id).limit(1)
    if lock:
        # Serialises reversals of one gift, so that two refunds at once cannot both pass the cap.
        query = query.with_for_update()
    return db.session.scalars(query).first()


def link_charge(
    charge_id: str | None, payment_intent_id: str | None, balance_transaction_id: str | None = None
) -> Gift:
    """The gift paid by this charge, locked, with the charge's ids filled in where missing (so
    that reconciliation finds its fee). Raises GiftNotYetKnown."""
    gift = find_gift(charge_id, payment_intent_id, lock=True)
    if gift is None:
        raise GiftNotYetKnown(f"no received gift yet for charge {charge_id} / payment intent {payment_intent_id}")
    if charge_id and gift.stripe_charge_id is None:
        gift.stripe_charge_id = charge_id
    if balance_transaction_id and gift.stripe_balance_transaction_id is None:
        gift.stripe_balance_transaction_id = balance_transaction_id
    return gift


def reversed_cents(gift_id: int) -> int:
    """The gift's net reversal: refunds and lost disputes, less failed refunds."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Reversal.amount_cents), 0)).where(Reversal.gift_id == gift_id)
    )
    return int(total or 0)


def net_cents(gift: Gift) -> int:
    """What the gift still holds after its reversals."""
    return gift.amount_cents - reversed_cents(gift.id)


def _existing_keys(keys: list[str]) -> set[str]:
    return set(db.session.scalars(select(Reversal.stripe_key).where(Reversal.stripe_key.in_(keys))))


def _append(gift: Gift, entries: list[Reversal]) -> list[Reversal]:
    """Add the entries not yet in the ledger; refuse any that would take more than the gift."""
    existing = _existing_keys([entry.stripe_key for entry in entries if entry.stripe_key])
    new = [entry for entry in entries if entry.stripe_key not in existing]
    if not new:
        return []
    already = reversed_cents(gift.id)
    change = sum(entry.amount_cents for entry in new)
    if already + change > gift.amount_cents:
        raise ReversalRefused(
            f"{', '.join(e.stripe_key or e.kind for e in new)} of {change} cents would take gift {gift.id} "
            f"beyond its {gift.amount_cents} cents ({already} already reversed)"
        )
    for entry in new:
        entry.gift = gift
        db.session.add(entry)
    db.session.flush()
    return new


def refresh_status(gift: Gift) -> str:
    """Set the gift's status from its reversals and open disputes (the database adds them up)."""
    disputed = db.session.scalar(select(exists().where(Dispute.gift_id == gift.id, Dispute.closed_at.is_(None))))
    reversed_total = reversed_cents(gift.id)
    if disputed:
        gift.status = GiftStatus.DISPUTED
    elif reversed_total <= 0:
        gift.status = GiftStatus.PAID
    elif reversed_total >= gift.amount_cents:
        gift.status = GiftStatus.REFUNDED
    else:
        gift.status = GiftStatus.PARTIALLY_REFUNDED
    return gift.status


def _check_currency(gift: Gift, currency: str, what: str) -> None:
    if currency.lower() != gift.currency.lower():
        raise ReversalRefused(f"{what} is in {currency}, gift {gift.id} in {gift.currency}")


def apply_refund(refund: RefundFacts) -> tuple[Gift, list[Reversal]]:
    """Record a refund (once, whatever its status) and, if it failed or was canceled, the entry
    that restores it. Returns the gift and the entries newly written (none on a replay)."""
    if refund.amount_cents <= 0:
        raise ReversalRefused(f"refund {refund.refund_id} has no amount")
    gift = link_charge(refund.charge_id, refund.payment_intent_id)
    _check_currency(gift, refund.currency, f"refund {refund.refund_id}")
    entries = [
        Reversal(
            kind=ReversalKind.REFUND,
            amount_cents=refund.amount_cents,
            reversed_at=refund.created_at,
            stripe_key=f"refund:{refund.refund_id}",
            reason=refund.reason,
        )
    ]
    if refund.status in REFUND_FAILED_STATUSES:
        # Seen first as failed, or failing later: either way both facts end up in the ledger.
        entries.append(
            Reversal(
                kind=ReversalKind.REFUND_FAILED,
                amount_cents=-refund.amount_cents,
                reversed_at=refund.observed_at,
                stripe_key=f"refund_failed:{refund.refund_id}",
                reason=f"refund {refund.status}",
            )
        )
    written = _append(gift, entries)
    refresh_status(gift)
    return gift, written


def _dispute_row(gift: Gift, dispute: DisputeFacts) -> Dispute:
    row = db.session.get(Dispute, dispute.dispute_id, with_for_update=True)
    if row is None:
        row = Dispute(
            id=dispute.dispute_id,
            gift=gift,
            stripe_charge_id=dispute.charge_id,
            amount_cents=dispute.amount_cents,
            reason=dispute.reason,
            status=dispute.status,
            evidence_due_by=dispute.evidence_due_by,
            opened_at=dispute.created_at,
        )
        db.session.add(row)
    return row


def open_dispute(dispute: DisputeFacts) -> Dispute:
    """charge.dispute.created / .updated: the gift is disputed until the dispute closes."""
    gift = link_charge(dispute.charge_id, dispute.payment_intent_id)
    _check_currency(gift, dispute.currency, f"dispute {dispute.dispute_id}")
    row = _dispute_row(gift, dispute)
    if row.closed_at is None:  # an update arriving after the close changes nothing
        row.status = dispute.status
        row.amount_cents = dispute.amount_cents
        row.evidence_due_by = dispute.evidence_due_by
        if dispute.reason:
            row.reason = dispute.reason
    db.session.flush()
    refresh_status(gift)
    return row


def close_dispute(dispute: DisputeFacts) -> tuple[Dispute, list[Reversal]]:
    """charge.dispute.closed: lost adds a reversal of the disputed amount; any other outcome
    (won, warning_closed) clears the mark and the gift's status is again what its refunds say."""
    gift = link_charge(dispute.charge_id, dispute.payment_intent_id)
    _check_currency(gift, dispute.currency, f"dispute {dispute.dispute_id}")
    row = _dispute_row(gift, dispute)
    written: list[Reversal] = []
    if dispute.status == DISPUTE_LOST_STATUS:
        written = _append(
            gift,
            [
                Reversal(
                    kind=ReversalKind.DISPUTE_LOST,
                    amount_cents=dispute.amount_cents,
                    reversed_at=dispute.observed_at,
                    stripe_key=f"dispute_lost:{dispute.dispute_id}",
                    reason=dispute.reason,
                )
            ],
        )
    if row.closed_at is None:
        row.status = dispute.status
        row.amount_cents = dispute.amount_cents
        row.closed_at = dispute.observed_at
    db.session.flush()
    refresh_status(gift)
    return row, written


def open_disputes() -> list[Dispute]:
    """Disputes not closed yet, the soonest evidence deadline first (no deadline last)."""
    return list(
        db.session.scalars(
            select(Dispute)
            .where(Dispute.closed_at.is_(None))
            .options(joinedload(Dispute.gift).joinedload(Gift.donor))
            .order_by(Dispute.evidence_due_by.is_(None), Dispute.evidence_due_by, Dispute.id)
        )
    )
