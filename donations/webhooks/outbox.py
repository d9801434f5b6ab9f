"""Queueing outgoing webhook events. Like donor mail, an event is only rows added to the caller's
transaction (the Stripe event's apply step, a staff action): if the ledger change rolls back, so
does its event; if a receiver is down, the event waits. The ledger never calls this (it sits
below): its callers do, with what the ledger returned.

Each event is stored once per cause (`dedupe_key`), with its body built now, and one delivery
row per enabled endpoint that asked for its type. With no such endpoint nothing is stored:
an endpoint added later is sent what happens from then on.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import joinedload

from donations.clock import local_date, utcnow
from donations.extensions import db, insert_ignoring
from donations.ledger.models import Donor, Fund, Gift, Membership, MembershipChange, Reversal
from donations.ledger.offline import is_placeholder_email
from donations.money import cents_text
from donations.webhooks.models import (
    EVENT_WORDS,
    DeliveryStatus,
    EventType,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

_quiet: ContextVar[bool] = ContextVar("outgoing_webhooks_quiet", default=False)

FREQUENCY_WORDS = {"one_time": "One time", "monthly": "Monthly", "annual": "Every year"}
SOURCE_WORDS = {"stripe": "Card or bank, online (Stripe)", "check": "Check", "cash": "Cash", "other": "Other"}
GIFT_STATUS_WORDS = {
    "paid": "Received",
    "refunded": "Refunded",
    "partially_refunded": "Partly refunded",
    "disputed": "Disputed",
    "pending": "Not paid yet",
    "failed": "Payment failed",
    "expired": "Checkout abandoned",
}
REVERSAL_WORDS = {
    "refund": "Refund",
    "refund_failed": "Refund failed: the money is back",
    "dispute_lost": "Dispute lost",
    "dispute_won": "Dispute won: the money is back",
}
MEMBERSHIP_STATUS_WORDS = {
    "active": "Active",
    "past_due": "Payment overdue",
    "canceled": "Canceled",
    "incomplete": "Not paid yet",
}
INTERVAL_WORDS = {"month": "Monthly", "year": "Every year"}


@contextmanager
def no_outgoing_webhooks() -> Iterator[None]:
    """Within it nothing is queued: history brought in from Stripe or a CSV is years old, and a
    receiver would take it for news."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _money(cents: int, currency: str) -> dict[str, Any]:
    return {"amount": cents_text(cents), "amount_cents": cents, "currency": currency.upper()}


def donor_data(donor: Donor) -> dict[str, Any]:
    erased = donor.erased_at is not None
    # A donor without an address (a check with none) has a placeholder: not for a CRM.
    no_email = erased or is_placeholder_email(donor.email)
    return {
        "id": donor.id,
        "name": donor.name,
        "email": None if no_email else donor.email,
        "organization": donor.organization,
        "address": {
            "line1": donor.address_line1,
            "line2": donor.address_line2,
            "city": donor.city,
            "region": donor.region,
            "postal_code": donor.postal_code,
            "country": donor.country,
        },
        "email_allowed": donor.contact_by_email,
        "postal_mail_allowed": donor.contact_by_mail,
        "merged_into_donor_id": donor.merged_into_id,
        "erased": erased,
    }


def gift_data(gift: Gift) -> dict[str, Any]:
    tribute = None
    if gift.tribute_kind and gift.tribute_name:
        tribute = f"In {'memory' if gift.tribute_kind == 'memory' else 'honor'} of {gift.tribute_name}"
    return {
        "id": gift.id,
        **_money(gift.amount_cents, gift.currency),
        "frequency": FREQUENCY_WORDS.get(gift.frequency, gift.frequency),
        "paid_by": SOURCE_WORDS.get(gift.source, gift.source),
        "status": GIFT_STATUS_WORDS.get(gift.status, gift.status),
        "received_at": _time(gift.received_at),
        "received_on_local_date": local_date(gift.received_at).isoformat() if gift.received_at else None,
        "fund": {"id": gift.fund.id, "name": gift.fund.name},
        "membership_id": gift.membership_id,
        "anonymous": gift.anonymous,
        "organization": gift.organization,
        "tribute": tribute,
        "check_number": gift.check_number,
        "tax_deductible": False,
    }


def membership_data(membership: Membership) -> dict[str, Any]:
    return {
        "id": membership.id,
        **_money(membership.amount_cents, membership.currency),
        "frequency": INTERVAL_WORDS.get(membership.interval, membership.interval),
        "status": MEMBERSHIP_STATUS_WORDS.get(membership.status, membership.status),
        "ends_at_period_end": membership.cancel_at_period_end,
        "started_at": _time(membership.started_at),
        "canceled_at": _time(membership.canceled_at),
        "current_period_end": _time(membership.current_period_end),
        "fund": {"id": membership.fund.id, "name": membership.fund.name},
    }


def _subscribers(event_type: EventType) -> list[int]:
    """Enabled endpoints that asked for this type (a small table: read whole, filtered here, as
    a JSON list is queried differently on each database). On PostgreSQL they are read FOR KEY
    SHARE, the lock a delivery's foreign key takes anyway: an admin deleting one of them waits
    for this transaction instead of making its delivery INSERT fail."""
    rows = db.session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types)
        .where(WebhookEndpoint.enabled.is_(True))
        .with_for_update(read=True, key_share=True)
    ).all()
    return [endpoint_id for endpoint_id, types in rows if event_type in (types or [])]


def enqueue(event_type: EventType, dedupe_key: str, build: Callable[[], dict[str, Any]]) -> int | None:
    """Store the event and its deliveries in the caller's transaction; the event's id, or None
    when nobody asked for it, it was queued before (same cause), or inside no_outgoing_webhooks.
    `build` makes the payload's `data`, only when someone asked for it."""
    if _quiet.get():
        return None
    endpoints = _subscribers(event_type)
    if not endpoints:
        return None
    data = build()
    now = utcnow()
    public_id = f"evt_{secrets.token_hex(12)}"
    body = json.dumps(
        {
            "id": public_id,
            "type": str(event_type),
            "description": EVENT_WORDS[event_type],
            "created": _time(now),
            "data": data,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    table = WebhookEvent.__table__
    event_id = db.session.execute(
        insert_ignoring(table, "dedupe_key")
        .values(public_id=public_id, type=str(event_type), body=body, dedupe_key=dedupe_key, created_at=now)
        .returning(table.c.id)
    ).scalar_one_or_none()
    if event_id is None:
        return None
    db.session.execute(
        insert(WebhookDelivery),
        [
            {
                "event_id": event_id,
                "endpoint_id": endpoint_id,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in endpoints
        ],
    )
    return event_id


# One function per kind of event; callers pass what the ledger returned. Each dedupe key names
# the cause, so a replayed Stripe event or a repeated request queues nothing twice.


def gift_recorded(gift_id: int) -> None:
    def build() -> dict[str, Any]:
        gift = db.session.get(Gift, gift_id, options=[joinedload(Gift.fund), joinedload(Gift.donor)])
        assert gift is not None, "a gift the caller just recorded"
        return {"gift": gift_data(gift), "donor": donor_data(gift.donor)}

    enqueue(EventType.GIFT_RECORDED, f"gift.recorded:{gift_id}", build=build)


def gift_reversed(reversal: Reversal, gift: Gift) -> None:
    def build() -> dict[str, Any]:
        return {
            "reversal": {
                "id": reversal.id,
                "what": REVERSAL_WORDS.get(reversal.kind, reversal.kind),
                # Positive takes money from the gift; negative gives it back (a failed refund).
                **_money(reversal.amount_cents, gift.currency),
                "reversed_at": _time(reversal.reversed_at),
                "reason": reversal.reason,
            },
            "gift": gift_data(gift),
            "donor": donor_data(gift.donor),
        }

    enqueue(EventType.GIFT_REVERSED, f"gift.reversed:{reversal.id}", build=build)


def _membership_build(membership: Membership, **extra: Any) -> Callable[[], dict[str, Any]]:
    return lambda: {"membership": membership_data(membership), "donor": donor_data(membership.donor), **extra}


def membership_started(membership: Membership) -> None:
    enqueue(EventType.MEMBERSHIP_STARTED, f"membership.started:{membership.id}", build=_membership_build(membership))


def membership_changed(membership: Membership, change_id: int) -> None:
    def build() -> dict[str, Any]:
        change = db.session.get(MembershipChange, change_id)
        assert change is not None, "a change the caller just recorded"
        return _membership_build(
            membership,
            change={
                "from": _money(change.old_amount_cents, membership.currency),
                "to": _money(change.new_amount_cents, membership.currency),
                # A member may change how often they give and which fund, too (older rows: unknown).
                "frequency": {"from": _interval_words(change.old_interval), "to": _interval_words(change.new_interval)},
                "fund": {"from": _fund_words(change.old_fund_id), "to": _fund_words(change.new_fund_id)},
                "changed_at": _time(change.changed_at),
            },
        )()

    enqueue(EventType.MEMBERSHIP_CHANGED, f"membership.changed:{change_id}", build=build)


def _interval_words(interval: str | None) -> str | None:
    return INTERVAL_WORDS.get(interval, interval) if interval else None


def _fund_words(fund_id: int | None) -> dict[str, Any] | None:
    fund = db.session.get(Fund, fund_id) if fund_id is not None else None
    return {"id": fund.id, "name": fund.name} if fund else None


def membership_canceled(membership: Membership) -> None:
    enqueue(EventType.MEMBERSHIP_CANCELED, f"membership.canceled:{membership.id}", build=_membership_build(membership))


def donor_changed(donor: Donor, what: str, changed: list[str], cause: str) -> None:
    """`what` says in words what happened ("Corrected by staff"); `changed` names the fields;
    `cause` makes the dedupe key unique per change (an audit entry's id, say)."""
    enqueue(
        EventType.DONOR_CHANGED,
        f"donor.changed:{donor.id}:{cause}",
        build=lambda: {"donor": donor_data(donor), "what": what, "changed": changed},
    )


ERASED_BODY = {"erased": True, "description": "Withdrawn: the donor's personal data was erased"}


def withdraw_mentioning(emails: set[str]) -> int:
    """Erasure: every stored event naming one of these addresses keeps only its id and type, and
    its deliveries not made yet are parked, never sent. Returns how many events were withdrawn."""
    if not emails:
        return 0
    events = db.session.scalars(
        select(WebhookEvent)
        .where(or_(*(func.lower(WebhookEvent.body).contains(email, autoescape=True) for email in emails)))
        .with_for_update()
    ).all()
    now = utcnow()
    for event in events:
        stub = {"id": event.public_id, "type": event.type, "created": _time(event.created_at), **ERASED_BODY}
        event.body = json.dumps(stub, separators=(",", ":"))
    if events:
        db.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.event_id.in_([event.id for event in events]),
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .values(status=DeliveryStatus.PARKED, parked_at=now, last_error="not sent: the donor's data was erased")
            .execution_options(synchronize_session=False)
        )
    return len(events)
