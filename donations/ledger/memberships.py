"""The ledger's membership writer: memberships, their installments and their amount history.

Money is recorded only from paid invoices, one installment gift per invoice (the invoice id is
unique on the gift), so that the first payment is never counted twice whichever of the
checkout and the invoice arrives first. Events arrive in any order: a membership's amount and
status take the values of the latest event that spoke of them (`amount_as_of`,
`status_as_of`), a cancellation is final, and amount changes are kept as history rows taken
from each event's own before/after values, so the history is the same in any order.

Callers own the transaction: nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from flask import current_app
from sqlalchemy import ScalarSelect, Select, bindparam, insert, select, update
from sqlalchemy.orm import joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from donations.clock import utcnow
from donations.extensions import db, insert_ignoring
from donations.ledger import service as ledger
from donations.ledger.currency import refuse_foreign
from donations.ledger.models import (
    FREQUENCY_INTERVAL,
    INTERVAL_FREQUENCY,
    UNPAID_STATUSES,
    Donor,
    Frequency,
    Gift,
    GiftSource,
    GiftStatus,
    InvoicePaymentLink,
    Membership,
    MembershipChange,
    MembershipStatus,
)
from donations.mail import service as receipts


class MembershipNotKnown(Exception):
    """The event names a subscription we cannot record yet (no donor or no interval known):
    the caller keeps the event and retries it when more has arrived."""


# Levels ------------------------------------------------------------------------------------


def annualized_cents(amount_cents: int, interval: str) -> int:
    """What an amount billed every `interval` ("month" or "year") comes to in a year."""
    return amount_cents * 12 if interval == "month" else amount_cents


def level_for(annual_cents: int) -> str:
    """The name of the highest level whose yearly threshold (cents) the amount reaches."""
    levels = sorted(current_app.config["MEMBERSHIP_LEVELS"])
    name = levels[0][1]
    for threshold, level in levels:
        if annual_cents >= threshold:
            name = level
    return name


def level_of(membership: Membership) -> str:
    return level_for(annualized_cents(membership.amount_cents, membership.interval))


def level_for_gift(gift: Gift) -> str | None:
    """A recurring gift's level, from its membership or, before that exists, from the gift."""
    if gift.membership is not None:
        return level_of(gift.membership)
    interval = FREQUENCY_INTERVAL.get(Frequency(gift.frequency))
    return level_for(annualized_cents(gift.amount_cents, interval)) if interval else None


# What events tell us ------------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipOrigin:
    """What an event says about a subscription, enough to record it if it is new to us."""

    subscription_id: str
    as_of: datetime  # the event's time
    customer_id: str | None = None
    email: str | None = None
    name: str | None = None
    postal_code: str | None = None
    amount_cents: int | None = None
    currency: str = "usd"
    interval: str | None = None  # month | year
    gift_id: int | None = None  # our pending gift, from the metadata we set
    fund_slug: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription object from a customer.subscription.* event."""

    origin: MembershipOrigin
    event_id: str
    status: str | None  # ours (MembershipStatus), None when Stripe's does not map to one
    cancel_at_period_end: bool
    current_period_end: datetime | None
    ended_at: datetime | None
    previous_amount_cents: int | None  # from previous_attributes: the amount before this change


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


# Finding and creating -----------------------------------------------------------------------


def find_membership(subscription_id: str) -> Membership | None:
    """The membership, locked until the transaction ends (so concurrent events queue up), with
    its donor read in the same query (receipts go to the donor); the donor row is not locked."""
    return db.session.scalar(_find_membership_query(), {"subscription_id": subscription_id})


@cache
def _find_membership_query() -> Select[tuple[Membership]]:
    """Built once (webhooks run it on every invoice); the id is bound at execution."""
    return (
        select(Membership)
        .options(joinedload(Membership.donor, innerjoin=True))
        .where(Membership.stripe_subscription_id == bindparam("subscription_id"))
        .with_for_update(of=Membership)
        .execution_options(populate_existing=True)
    )


def _anchor_gift(gift_id: int | None) -> Gift | None:
    """Our pending recurring gift named by the subscription's metadata."""
    if gift_id is None:
        return None
    return db.session.scalar(
        select(Gift)
        .where(Gift.id == gift_id, Gift.frequency != Frequency.ONE_TIME, Gift.source == GiftSource.STRIPE)
        .with_for_update()
    )


def _donor_for(origin: MembershipOrigin, anchor: Gift | None) -> Donor | None:
    if origin.email:
        return ledger.find_or_create_donor(
            origin.email,
            name=origin.name,
            postal_code=origin.postal_code,
            stripe_customer_id=origin.customer_id,
        )
    if anchor is not None:
        return anchor.donor
    if origin.customer_id:
        return db.session.scalar(
            select(Donor).where(Donor.stripe_customer_id == origin.customer_id).order_by(Donor.id).limit(1)
        )
    return None


def ensure_membership(
    origin: MembershipOrigin,
    status: str,
    ended_at: datetime | None = None,
    *,
    period_end: datetime | None = None,
) -> tuple[Membership, bool]:
    """The subscription's membership, created (with `status`, and `period_end` as its current
    period's end) if new. Returns (membership, created).

    Raises MembershipNotKnown when the event alone cannot say whose it is or how often it renews.
    """
    membership, created, _ = _ensure_membership(origin, status, ended_at, period_end)
    if not created:
        for key, value in _filled_in(membership, origin).items():
            setattr(membership, key, value)
    return membership, created


def _ensure_membership(
    origin: MembershipOrigin, status: str, ended_at: datetime | None, period_end: datetime | None
) -> tuple[Membership, bool, Gift | None]:
    """`ensure_membership` without filling in an existing membership's details, and the
    pending gift a new membership took as its anchor."""
    membership = find_membership(origin.subscription_id)
    if membership is not None:
        return membership, False, None

    anchor = _anchor_gift(origin.gift_id)
    donor = _donor_for(origin, anchor)
    interval = origin.interval or (FREQUENCY_INTERVAL.get(Frequency(anchor.frequency)) if anchor else None)
    amount = origin.amount_cents or (anchor.amount_cents if anchor else None)
    if donor is None or interval is None or not amount:
        raise MembershipNotKnown(f"subscription {origin.subscription_id} is not known yet")
    if origin.customer_id and not donor.stripe_customer_id:  # a donor found by the anchor gift
        donor.stripe_customer_id = origin.customer_id
    fund = ledger.fund_by_slug(origin.fund_slug)
    # Written whole by one Core INSERT ... RETURNING (no flush machinery); the object the
    # callers use is then attached as already saved, with every column and its donor loaded.
    values = {
        "donor_id": donor.id,
        "fund_id": fund.id if fund else anchor.fund_id if anchor else ledger.default_fund_id(),
        "stripe_subscription_id": origin.subscription_id,
        "stripe_customer_id": origin.customer_id,
        "amount_cents": amount,
        "currency": origin.currency,
        "interval": interval,
        "status": status,
        "cancel_at_period_end": False,
        "started_at": origin.started_at or origin.as_of,
        "canceled_at": (ended_at or origin.as_of) if status == MembershipStatus.CANCELED else None,
        "amount_as_of": origin.as_of,
        "status_as_of": origin.as_of,
        "current_period_end": period_end,
        "local_card_last4": None,
        "created_at": utcnow(),
    }
    table = Membership.__table__
    membership = Membership(id=db.session.execute(insert(table).returning(table.c.id), values).scalar_one(), **values)
    make_transient_to_detached(membership)
    db.session.add(membership)
    set_committed_value(membership, "donor", donor)
    if "memberships" in donor.__dict__:  # a donor's loaded list learns of it, as the backref did
        set_committed_value(donor, "memberships", [*donor.memberships, membership])
    if anchor is not None and anchor.membership_id is None:
        anchor.membership = membership
        anchor.stripe_subscription_id = origin.subscription_id
    if status == MembershipStatus.CANCELED:
        # First heard of at its end (events arrive in any order): no welcome, only the goodbye.
        _queue_canceled(membership)
    else:
        receipts.enqueue(
            "membership_welcome",
            donor.email,
            {"membership_id": membership.id},
            dedupe_key=f"membership_welcome:{membership.id}",
            donor_id=donor.id,
        )
    return membership, True, anchor


def _queue_canceled(membership: Membership) -> None:
    receipts.enqueue(
        "membership_canceled",
        membership.donor.email,
        {"membership_id": membership.id},
        dedupe_key=f"membership_canceled:{membership.id}",
        donor_id=membership.donor_id,
    )


def _filled_in(membership: Membership, origin: MembershipOrigin) -> dict[str, object]:
    """Details a later event knows better: the earliest start, the customer."""
    changes: dict[str, object] = {}
    if origin.started_at and (membership.started_at is None or origin.started_at < membership.started_at):
        changes["started_at"] = origin.started_at
    if origin.customer_id and not membership.stripe_customer_id:
        changes["stripe_customer_id"] = origin.customer_id
    return changes


def _write_now(membership: Membership, changes: dict[str, object]) -> None:
    """Write the changed columns with one Core UPDATE (the row is locked by `find_membership`)
    and tell the loaded object, so no ORM flush has to find and write them later."""
    changes = {key: value for key, value in changes.items() if getattr(membership, key) != value}
    if changes:
        table = Membership.__table__
        db.session.execute(update(table).where(table.c.id == membership.id).values(changes))
        for key, value in changes.items():
            set_committed_value(membership, key, value)


def _set_status(membership: Membership, status: str, as_of: datetime) -> bool:
    """Take `status` unless a newer event already spoke; a cancellation is final."""
    if membership.status == MembershipStatus.CANCELED:
        return False
    if status != MembershipStatus.CANCELED and membership.status_as_of and as_of < membership.status_as_of:
        return False
    changed = membership.status != status
    membership.status = status
    membership.status_as_of = as_of
    if status == MembershipStatus.CANCELED:
        membership.canceled_at = as_of
        membership.cancel_at_period_end = False
        _queue_canceled(membership)
    return changed


def _advance_period(membership: Membership, period_end: datetime | None) -> None:
    if period_end and (membership.current_period_end is None or period_end > membership.current_period_end):
        membership.current_period_end = period_end


# Events -------------------------------------------------------------------------------------


def start_from_checkout(origin: MembershipOrigin) -> Membership:
    """A completed subscription checkout: the membership, and no money (invoices bring it)."""
    membership, created = ensure_membership(origin, MembershipStatus.ACTIVE)
    if not created:
        _set_status(membership, MembershipStatus.ACTIVE, origin.as_of)
    return membership


def record_installment(origin: MembershipOrigin, payment: InstallmentPayment) -> tuple[int | None, bool]:
    """One installment gift per paid invoice. Returns (gift id, newly_recorded); a replay, or the
    same invoice met again, changes nothing. A zero-amount invoice (a trial) records no gift.
    Raises ForeignCurrency for money in another currency than the newsroom's."""
    if payment.amount_cents > 0:
        refuse_foreign(payment.currency)
    # A new membership is written with this invoice's status and period: no UPDATE follows.
    membership, created, anchor = _ensure_membership(origin, MembershipStatus.ACTIVE, None, payment.period_end)
    # A membership created just now without an anchor has no gift yet: nothing to look up.
    has_gifts = not created or anchor is not None
    existing_id, linked_intent, template = _invoice_state(membership, payment.invoice_id, has_gifts)
    if not created:  # `_set_status` to active (never a cancellation), `_advance_period`, in one UPDATE
        changes = _filled_in(membership, origin)
        as_of, period_end = origin.as_of, payment.period_end
        if membership.status != MembershipStatus.CANCELED and not (
            membership.status_as_of and as_of < membership.status_as_of
        ):
            changes.update(status=MembershipStatus.ACTIVE, status_as_of=as_of)
        if period_end and (membership.current_period_end is None or period_end > membership.current_period_end):
            changes["current_period_end"] = period_end
        _write_now(membership, changes)
    if existing_id is not None:
        return existing_id, False
    if payment.amount_cents <= 0:
        return None, False

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
    receipts.enqueue(
        "installment_receipt",
        donor.email,
        {"gift_id": gift_id},
        dedupe_key=f"installment_receipt:{gift_id}",
        donor_id=donor.id,
    )
    return gift_id, True


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
def _invoice_state_queries() -> tuple[ScalarSelect[int], ScalarSelect[str], Select[Any]]:
    """`_invoice_state`'s statements, built once; the ids are bound at execution."""
    invoice_id = bindparam("invoice_id")
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


def record_failed_payment(origin: MembershipOrigin, invoice_id: str) -> Membership:
    """A renewal failed: past due, and the member is told once per invoice. A failure that an
    invoice.paid for the same invoice has already overtaken changes nothing."""
    membership, _ = ensure_membership(origin, MembershipStatus.PAST_DUE)
    if db.session.scalar(select(Gift.id).where(Gift.stripe_invoice_id == invoice_id)) is not None:
        return membership
    _set_status(membership, MembershipStatus.PAST_DUE, origin.as_of)
    if membership.status == MembershipStatus.PAST_DUE:
        receipts.enqueue(
            "payment_failed",
            membership.donor.email,
            {"membership_id": membership.id},
            dedupe_key=f"payment_failed:{invoice_id}",
            donor_id=membership.donor_id,
        )
    return membership


def apply_subscription(state: SubscriptionState) -> Membership:
    """A customer.subscription.created/updated/deleted: the amount (with its history), status,
    cancel_at_period_end and period, each taken only from an event newer than the last."""
    origin = state.origin
    membership, _ = ensure_membership(origin, state.status or MembershipStatus.INCOMPLETE, state.ended_at)
    new_amount = origin.amount_cents
    if (
        new_amount
        and state.previous_amount_cents
        and state.previous_amount_cents != new_amount
        and db.session.scalar(select(MembershipChange.id).where(MembershipChange.stripe_event_id == state.event_id))
        is None
    ):
        db.session.add(
            MembershipChange(
                membership=membership,
                changed_at=origin.as_of,
                old_amount_cents=state.previous_amount_cents,
                new_amount_cents=new_amount,
                stripe_event_id=state.event_id,
            )
        )
    if new_amount and (membership.amount_as_of is None or origin.as_of >= membership.amount_as_of):
        membership.amount_cents = new_amount
        membership.amount_as_of = origin.as_of
    if state.status == MembershipStatus.CANCELED:
        _set_status(membership, MembershipStatus.CANCELED, state.ended_at or origin.as_of)
    elif membership.status != MembershipStatus.CANCELED and (
        membership.status_as_of is None or origin.as_of >= membership.status_as_of
    ):
        if state.status is not None:
            _set_status(membership, state.status, origin.as_of)
        membership.cancel_at_period_end = state.cancel_at_period_end
    _advance_period(membership, state.current_period_end)
    db.session.flush()
    return membership


def link_invoice_payment(invoice_id: str, payment_intent_id: str) -> None:
    """invoice_payment.paid: which payment intent paid an invoice, whichever arrives first."""
    db.session.execute(
        insert_ignoring(InvoicePaymentLink, "stripe_invoice_id"),
        {"stripe_invoice_id": invoice_id, "stripe_payment_intent_id": payment_intent_id, "created_at": utcnow()},
    )
    gift = db.session.scalar(select(Gift).where(Gift.stripe_invoice_id == invoice_id).with_for_update())
    if gift is not None and not gift.stripe_payment_intent_id:
        gift.stripe_payment_intent_id = payment_intent_id


def remember_local_card(subscription_id: str, last4: str) -> Membership | None:
    """The local gateway's card on file for renewals ("4242" pays, "0002" declines)."""
    membership = find_membership(subscription_id)
    if membership is not None:
        membership.local_card_last4 = last4
    return membership
