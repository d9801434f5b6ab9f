"""The ledger's membership writer: memberships, their status and their amount history (their
installments are in installments.py).

Events arrive in any order: a membership's amount and status take the values of the latest
event that spoke of them (`amount_as_of`, `status_as_of`), a cancellation is final, and amount
changes are kept as history rows taken from each event's own before/after values, so the
history is the same in any order.

Callers own the transaction: nothing here commits. Nothing here queues mail either: each
writer returns `MembershipNews`, what happened, and the caller tells the member.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from flask import current_app
from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.orm import joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger import service as ledger
from donations.ledger.currency import newsroom_currency
from donations.ledger.models import (
    FREQUENCY_INTERVAL,
    Donor,
    Frequency,
    Gift,
    GiftSource,
    Membership,
    MembershipChange,
    MembershipStatus,
)


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
    currency: str = field(default_factory=newsroom_currency)
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
    previous_interval: str | None = None  # ... the frequency before it (month | year)
    previous_fund_slug: str | None = None  # ... the fund before it (the metadata's "fund")
    # Whether the object says anything of a pause (older payloads may not), and until when.
    pause_known: bool = False
    paused_until: datetime | None = None


@dataclass
class MembershipNews:
    """What one event did to a membership, for the caller to tell the member (the mail is
    queued in the same transaction by the caller, never here)."""

    membership: Membership
    created: bool = False  # first heard of by this event
    canceled: bool = False  # ended by this event (or first heard of at its end)
    failed_invoice_id: str | None = None  # a renewal's payment failed and the membership is past due
    gift_id: int | None = None  # the installment gift of the paid invoice (new or recorded before)
    gift_recorded: bool = False  # that gift was recorded by this event
    # The MembershipChange this event recorded (the amount, frequency or fund changed).
    amount_change_id: int | None = None
    paused_until: datetime | None = None  # this event paused the membership until then
    resumed_from: datetime | None = None  # this event ended the pause that ran until then


# Finding and creating -----------------------------------------------------------------------


def find_membership(subscription_id: str) -> Membership | None:
    """The membership, locked until the transaction ends (so concurrent events queue up), with
    its donor read in the same query (receipts go to the donor); the donor row is not locked."""
    return db.session.scalar(_find_membership_query(), {"subscription_id": subscription_id})


@cache
def _find_membership_query() -> Select[Membership]:
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
    membership, created, _ = ensure_with_anchor(origin, status, ended_at, period_end)
    if not created:
        for key, value in filled_in(membership, origin).items():
            setattr(membership, key, value)
    return membership, created


def ensure_with_anchor(
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
    return membership, True, anchor


def news_of(membership: Membership, created: bool) -> MembershipNews:
    """The news of finding or creating a membership: one first heard of at its end (events
    arrive in any order) is news of its end only."""
    return MembershipNews(
        membership, created=created, canceled=created and membership.status == MembershipStatus.CANCELED
    )


def filled_in(membership: Membership, origin: MembershipOrigin) -> dict[str, object]:
    """Details a later event knows better: the earliest start, the customer."""
    changes: dict[str, object] = {}
    if origin.started_at and (membership.started_at is None or origin.started_at < membership.started_at):
        changes["started_at"] = origin.started_at
    if origin.customer_id and not membership.stripe_customer_id:
        changes["stripe_customer_id"] = origin.customer_id
    return changes


def write_now(membership: Membership, changes: dict[str, object]) -> None:
    """Write the changed columns with one Core UPDATE (the row is locked by `find_membership`)
    and tell the loaded object, so no ORM flush has to find and write them later."""
    changes = {key: value for key, value in changes.items() if getattr(membership, key) != value}
    if changes:
        table = Membership.__table__
        db.session.execute(update(table).where(table.c.id == membership.id).values(changes))
        for key, value in changes.items():
            set_committed_value(membership, key, value)


def _set_status(news: MembershipNews, status: str, as_of: datetime) -> None:
    """Take `status` unless a newer event already spoke; a cancellation is final (and news)."""
    membership = news.membership
    if membership.status == MembershipStatus.CANCELED:
        return
    if status != MembershipStatus.CANCELED and membership.status_as_of and as_of < membership.status_as_of:
        return
    membership.status = status
    membership.status_as_of = as_of
    if status == MembershipStatus.CANCELED:
        membership.canceled_at = as_of
        membership.cancel_at_period_end = False
        news.canceled = True


def _advance_period(membership: Membership, period_end: datetime | None) -> None:
    if period_end and (membership.current_period_end is None or period_end > membership.current_period_end):
        membership.current_period_end = period_end


# Events -------------------------------------------------------------------------------------


def start_from_checkout(origin: MembershipOrigin) -> MembershipNews:
    """A completed subscription checkout: the membership, and no money (invoices bring it)."""
    news = news_of(*ensure_membership(origin, MembershipStatus.ACTIVE))
    if not news.created:
        _set_status(news, MembershipStatus.ACTIVE, origin.as_of)
    return news


def record_failed_payment(origin: MembershipOrigin, invoice_id: str) -> MembershipNews:
    """A renewal failed: past due (news for the member, whose mail is keyed by the invoice). A
    failure that an invoice.paid for the same invoice has already overtaken changes nothing."""
    news = news_of(*ensure_membership(origin, MembershipStatus.PAST_DUE))
    if db.session.scalar(select(Gift.id).where(Gift.stripe_invoice_id == invoice_id)) is not None:
        return news
    _set_status(news, MembershipStatus.PAST_DUE, origin.as_of)
    if news.membership.status == MembershipStatus.PAST_DUE:
        news.failed_invoice_id = invoice_id
    return news


def apply_subscription(state: SubscriptionState) -> MembershipNews:
    """A customer.subscription.created/updated/deleted: the amount, frequency and fund (with
    their history), the pause, status, cancel_at_period_end and period, each taken only from an
    event newer than the last."""
    origin = state.origin
    news = news_of(*ensure_membership(origin, state.status or MembershipStatus.INCOMPLETE, state.ended_at))
    membership = news.membership
    fund = ledger.fund_by_slug(origin.fund_slug) if origin.fund_slug else None
    _record_change(news, state, fund.id if fund else None)
    if membership.amount_as_of is None or origin.as_of >= membership.amount_as_of:
        # The plan (amount, frequency, fund, pause) of the newest event that spoke of it.
        plan: dict[str, object] = {}
        if origin.amount_cents:
            plan["amount_cents"] = origin.amount_cents
        if origin.interval:
            plan["interval"] = origin.interval
        if fund is not None:
            plan["fund_id"] = fund.id
        if state.pause_known:
            _note_pause(news, state.paused_until)
            plan["paused_until"] = state.paused_until
        if plan:
            for key, value in plan.items():
                setattr(membership, key, value)
            membership.amount_as_of = origin.as_of
    if state.status == MembershipStatus.CANCELED:
        _set_status(news, MembershipStatus.CANCELED, state.ended_at or origin.as_of)
    elif membership.status != MembershipStatus.CANCELED and (
        membership.status_as_of is None or origin.as_of >= membership.status_as_of
    ):
        if state.status is not None:
            _set_status(news, state.status, origin.as_of)
        membership.cancel_at_period_end = state.cancel_at_period_end
    _advance_period(membership, state.current_period_end)
    db.session.flush()
    return news


def _record_change(news: MembershipNews, state: SubscriptionState, new_fund_id: int | None) -> None:
    """A history row for an event whose previous_attributes show the amount, frequency or fund
    changed (once per event: a replay records nothing more). Each row keeps all three, before
    and after, so the history says exactly what was billed when, in any order of arrival."""
    origin = state.origin
    membership = news.membership
    new_amount = origin.amount_cents or membership.amount_cents
    new_interval = origin.interval or membership.interval
    old_amount = state.previous_amount_cents or new_amount
    old_interval = state.previous_interval or new_interval
    old_fund = ledger.fund_by_slug(state.previous_fund_slug) if state.previous_fund_slug else None
    new_fund = new_fund_id or membership.fund_id
    old_fund_id = old_fund.id if old_fund else new_fund
    if (old_amount, old_interval, old_fund_id) == (new_amount, new_interval, new_fund):
        return
    if db.session.scalar(select(MembershipChange.id).where(MembershipChange.stripe_event_id == state.event_id)):
        return
    change = MembershipChange(
        membership=membership,
        changed_at=origin.as_of,
        old_amount_cents=old_amount,
        new_amount_cents=new_amount,
        old_interval=old_interval,
        new_interval=new_interval,
        old_fund_id=old_fund_id,
        new_fund_id=new_fund,
        stripe_event_id=state.event_id,
    )
    db.session.add(change)
    db.session.flush()
    news.amount_change_id = change.id


def _note_pause(news: MembershipNews, paused_until: datetime | None) -> None:
    """News of a pause that begins, moves or ends (the member is told of each once)."""
    before = news.membership.paused_until
    if paused_until == before:
        return
    if paused_until is not None:
        news.paused_until = paused_until
    elif before is not None:
        news.resumed_from = before
