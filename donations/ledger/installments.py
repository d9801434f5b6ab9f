"""The ledger's installment writer: one gift per paid invoice of a membership.

Money is recorded only from paid invoices, one installment gift per invoice (the invoice id is
unique on the gift), so that the first payment is never counted twice whichever of the
checkout and the invoice arrives first. The pending gift a reader's checkout began becomes
installment #1; later installments take its details.

Callers own the transaction: nothing here commits, and nothing queues mail (the caller tells
the member from the `MembershipNews` returned).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, ScalarSelect, Select, bindparam, insert, select

from donations.clock import utcnow
from donations.extensions import db, insert_ignoring
from donations.ledger.currency import refuse_foreign
from donations.ledger.memberships import MembershipNews, MembershipOrigin, ensure_with_anchor, filled_in, write_now
from donations.ledger.models import (
    INTERVAL_FREQUENCY,
    UNPAID_STATUSES,
    Gift,
    GiftSource,
    GiftStatus,
    InvoicePaymentLink,
    Membership,
    MembershipStatus,
)


@dataclass(frozen=True)
class InstallmentPayment:
    """A paid invoice of a subscription."""

    invoice_id: str
    amount_cents: int
    currency: str
    paid_at: datetime
    first: bool  # billing_reason subscription_create: the payment the checkout began
    period_end: datetime | None
    payment_intent_id: str | None


def record_installment(origin: MembershipOrigin, payment: InstallmentPayment) -> MembershipNews:
    """One installment gift per paid invoice (the news's `gift_id`, `gift_recorded` when new); a
    replay, or the same invoice met again, changes nothing. A zero-amount invoice (a trial)
    records no gift. Raises ForeignCurrency for money in another currency than the newsroom's."""
    if payment.amount_cents > 0:
        refuse_foreign(payment.currency)
    # A new membership is written with this invoice's status and period: no UPDATE follows.
    membership, created, anchor = ensure_with_anchor(origin, MembershipStatus.ACTIVE, None, payment.period_end)
    # A new membership is written active here, never canceled: its only news is that it is new.
    news = MembershipNews(membership, created=created)
    # A membership created just now without an anchor has no gift yet: nothing to look up.
    has_gifts = not created or anchor is not None
    existing_id, linked_intent, template = _invoice_state(membership, payment.invoice_id, has_gifts)
    if not created:  # set active (never a cancellation) and the period advanced, in one UPDATE
        changes = filled_in(membership, origin)
        as_of, period_end = origin.as_of, payment.period_end
        if membership.status != MembershipStatus.CANCELED and not (
            membership.status_as_of and as_of < membership.status_as_of
        ):
            changes.update(status=MembershipStatus.ACTIVE, status_as_of=as_of)
        if period_end and (membership.current_period_end is None or period_end > membership.current_period_end):
            changes["current_period_end"] = period_end
        write_now(membership, changes)
    if existing_id is not None:
        news.gift_id = existing_id
        return news
    if payment.amount_cents <= 0:
        return news

    intent = payment.payment_intent_id or linked_intent
    donor = membership.donor  # checkout lets the reader change the email: the money is the member's
    # The pending gift the checkout began is the anchor only: the first invoice makes it
    # installment #1, so it is counted once, with the details the reader gave on the form.
    # The anchor, linked when the membership was made, is its earliest gift: while that one is
    # paid already there is no anchor to lock and look for.
    gift = _pending_anchor(membership) if payment.first and template is not None and template.may_be_anchor else None
    if gift is not None:
        if gift.fee_covered_cents >= payment.amount_cents:
            gift.fee_covered_cents = 0
        gift.donor = donor
        gift.frequency = INTERVAL_FREQUENCY[membership.interval]
        gift.amount_cents = payment.amount_cents
        gift.currency = payment.currency
        gift.status = GiftStatus.PAID
        gift.received_at = payment.paid_at
        gift.stripe_invoice_id = payment.invoice_id
        gift.stripe_subscription_id = membership.stripe_subscription_id
        if intent:
            gift.stripe_payment_intent_id = intent
        gift_id = gift.id
    else:
        # Every other installment: one INSERT ... RETURNING, no ORM object to flush. The first
        # gift lends its details; its fee cover only while the amount is the one it was added to.
        values: dict[str, object] = {"organization": None, "anonymous": False, "tribute_kind": None}
        values.update(tribute_name=None, attribution={}, fee_covered_cents=0)
        if template is not None:
            values.update(template.details)
            values["attribution"] = dict(template.attribution or {})
            if template.amount_cents == payment.amount_cents:
                values["fee_covered_cents"] = template.fee_covered_cents
        table = Gift.__table__
        # Parameters given at execution: the statement is the same every time (cached).
        gift_id = db.session.execute(
            insert(table).returning(table.c.id),
            dict(
                donor_id=donor.id,
                fund_id=membership.fund_id,
                membership_id=membership.id,
                frequency=INTERVAL_FREQUENCY[membership.interval],
                amount_cents=payment.amount_cents,
                currency=payment.currency,
                source=GiftSource.STRIPE,
                status=GiftStatus.PAID,
                tax_deductible=False,
                received_at=payment.paid_at,
                stripe_invoice_id=payment.invoice_id,
                stripe_subscription_id=membership.stripe_subscription_id,
                stripe_payment_intent_id=intent or None,
                **values,
            ),
        ).scalar_one()
    news.gift_id, news.gift_recorded = gift_id, True
    return news


@dataclass(frozen=True)
class _Template:
    """The details a membership's first gift lends to its later installments."""

    details: dict[str, object]  # organization, anonymous, tribute_kind, tribute_name
    attribution: dict[str, str] | None
    amount_cents: int
    fee_covered_cents: int
    may_be_anchor: bool  # still pending (or failed) and not an invoice's


def _invoice_state(
    membership: Membership, invoice_id: str, has_gifts: bool
) -> tuple[int | None, str | None, _Template | None]:
    """Whether the invoice was recorded, the payment intent invoice_payment.paid may have told
    before it, and the membership's first gift's details: one query while it has a gift."""
    recorded, linked, with_first_gift = _invoice_state_queries()
    if has_gifts:
        row = db.session.execute(with_first_gift, {"invoice_id": invoice_id, "membership_id": membership.id}).first()
        if row is not None:
            template = _Template(
                {"organization": row[2], "anonymous": row[3], "tribute_kind": row[4], "tribute_name": row[5]},
                row[6],
                row[7],
                row[8],
                bool(row[9]),
            )
            return row[0], row[1], template
    existing_id, linked_intent = db.session.execute(select(recorded, linked), {"invoice_id": invoice_id}).one()
    return existing_id, linked_intent, None


@cache
def _invoice_state_queries() -> tuple[ScalarSelect[int], ScalarSelect[str], Select[*tuple[Any, ...]]]:
    """`_invoice_state`'s statements, built once; the ids are bound at execution."""
    invoice_id: BindParameter[str] = bindparam("invoice_id")
    recorded = select(Gift.id).where(Gift.stripe_invoice_id == invoice_id).scalar_subquery()
    linked = (
        select(InvoicePaymentLink.stripe_payment_intent_id)
        .where(InvoicePaymentLink.stripe_invoice_id == invoice_id)
        .scalar_subquery()
    )
    # The earliest gift (the pending anchor, or else the first installment) is the row.
    with_first_gift = (
        select(
            recorded,
            linked,
            Gift.organization,
            Gift.anonymous,
            Gift.tribute_kind,
            Gift.tribute_name,
            Gift.attribution,
            Gift.amount_cents,
            Gift.fee_covered_cents,
            Gift.stripe_invoice_id.is_(None) & Gift.status.in_(UNPAID_STATUSES),
        )
        .where(Gift.membership_id == bindparam("membership_id"))
        .order_by(Gift.id)
        .limit(1)
    )
    return recorded, linked, with_first_gift


def _pending_anchor(membership: Membership) -> Gift | None:
    return db.session.scalar(
        select(Gift)
        .where(
            Gift.membership_id == membership.id,
            Gift.stripe_invoice_id.is_(None),
            Gift.status.in_(UNPAID_STATUSES),
        )
        .order_by(Gift.id)
        .limit(1)
        .with_for_update()
    )


def link_invoice_payment(invoice_id: str, payment_intent_id: str) -> None:
    """invoice_payment.paid: which payment intent paid an invoice, whichever arrives first."""
    db.session.execute(
        insert_ignoring(InvoicePaymentLink, "stripe_invoice_id"),
        {"stripe_invoice_id": invoice_id, "stripe_payment_intent_id": payment_intent_id, "created_at": utcnow()},
    )
    gift = db.session.scalar(select(Gift).where(Gift.stripe_invoice_id == invoice_id).with_for_update())
    if gift is not None and not gift.stripe_payment_intent_id:
        gift.stripe_payment_intent_id = payment_intent_id
