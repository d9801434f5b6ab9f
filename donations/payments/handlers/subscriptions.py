"""Subscription events: customer.subscription.created / .updated / .deleted, and the membership
a subscription-mode checkout starts (its money comes from invoices, see invoices.py).

A subscription we have not met and cannot place yet (no donor known for its customer) is
deferred: the event is kept and retried once its invoice or checkout has arrived. What the
ledger says happened, the member is told of (`tell_member`) in the event's transaction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from donations.ledger import memberships
from donations.ledger.models import FREQUENCY_INTERVAL, MembershipStatus
from donations.mail import service as mail
from donations.payments import gift_sources
from donations.payments.handlers import EventDeferred, StripeEventData, handles
from donations.payments.handlers.payload import cents, currency, field, metadata_of, object_id, text, timestamp
from donations.webhooks import outbox as webhooks

# A pause without an end (pause_collection with no resumes_at) lasts until it is lifted.
INDEFINITE_PAUSE = datetime(9999, 12, 31, tzinfo=UTC)
# Stripe's subscription statuses, as ours. Others (paused) leave the status alone.
STATUSES = {
    "active": MembershipStatus.ACTIVE,
    "trialing": MembershipStatus.ACTIVE,
    "past_due": MembershipStatus.PAST_DUE,
    "unpaid": MembershipStatus.PAST_DUE,
    "incomplete": MembershipStatus.INCOMPLETE,
    "canceled": MembershipStatus.CANCELED,
    "incomplete_expired": MembershipStatus.CANCELED,
}


def tell_member(news: memberships.MembershipNews) -> None:
    """Queue the mail a membership event calls for: a welcome (not for one first heard of at
    its end), the installment's receipt, the new amount, the goodbye, the failed renewal; and the
    outgoing webhook events, which tell every fact (a start heard of at the end included)."""
    membership = news.membership
    if news.created and not news.canceled:
        mail.queue_membership_welcome(membership)
    if news.gift_recorded and news.gift_id is not None:
        mail.queue_installment_receipt(news.gift_id, membership.donor_id, membership.donor.email)
    # A change is told once, when recorded, unless the membership has ended by then (events
    # arrive in any order: its end may be known first).
    if news.amount_change_id is not None and membership.status != MembershipStatus.CANCELED:
        mail.queue_membership_changed(membership, news.amount_change_id)
    if news.canceled:
        mail.queue_membership_canceled(membership)
    if news.failed_invoice_id is not None:
        mail.queue_payment_failed(membership, news.failed_invoice_id)
    if news.created:
        webhooks.membership_started(membership)
    if news.gift_recorded and news.gift_id is not None:
        webhooks.gift_recorded(news.gift_id)
    if news.amount_change_id is not None:
        webhooks.membership_changed(membership, news.amount_change_id)
    if news.canceled:
        webhooks.membership_canceled(membership)
    if membership.status != MembershipStatus.CANCELED:
        if news.paused_until is not None:
            mail.queue_membership_paused(membership, news.paused_until)
        if news.resumed_from is not None:
            mail.queue_membership_resumed(membership, news.resumed_from)


def gift_id_from(metadata: dict[str, Any]) -> int | None:
    gift_id = metadata.get("gift_id")
    if isinstance(gift_id, str) and gift_id.isascii() and gift_id.isdigit() and len(gift_id) < 16:
        return int(gift_id)
    return None


def frequency_interval(metadata: dict[str, Any]) -> str | None:
    frequency = metadata.get("frequency")
    return FREQUENCY_INTERVAL.get(frequency) if isinstance(frequency, str) else None


def supported_interval(interval: Any, count: Any = 1) -> str | None:
    if not isinstance(interval, str):
        return None
    if interval not in ("month", "year") or (count or 1) != 1:
        # Memberships are monthly or annual; anything else is kept, with this reason, for staff.
        raise ValueError(f"unsupported billing interval: every {count or 1} {interval[:20]}")
    return interval


def _items(items: Any) -> list[dict[str, Any]]:
    data = field(items, "data")
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def items_amount(items: Any) -> int | None:
    """The subscription's amount per period: each item's unit amount times its quantity."""
    total = 0
    data = _items(items)
    for item in data:
        unit = cents(field(item, "price", "unit_amount"))
        if unit is None:
            unit = cents(field(item, "plan", "amount"))
        quantity = field(item, "quantity")
        if unit is None:
            raise ValueError("a subscription item has no unit amount")
        total += unit * (quantity if isinstance(quantity, int) and 0 < quantity < 1000 else 1)
    return cents(total) if data else None


def _items_interval(items: Any) -> str | None:
    for item in _items(items):
        interval = field(item, "price", "recurring", "interval") or field(item, "plan", "interval")
        count = field(item, "price", "recurring", "interval_count") or field(item, "plan", "interval_count")
        if interval:
            return supported_interval(interval, count)
    return None


def _period_end(subscription: dict[str, Any]) -> datetime | None:
    # Current API versions keep the period on each item; older ones on the subscription.
    ends = [field(item, "current_period_end") for item in _items(subscription.get("items"))]
    ends.append(subscription.get("current_period_end"))
    moments = [moment for moment in (timestamp(end) for end in ends) if moment]
    return max(moments) if moments else None


def subscription_state(event: StripeEventData) -> memberships.SubscriptionState:
    subscription = event.object
    subscription_id = object_id(subscription.get("id"))
    if subscription_id is None:
        raise ValueError("subscription has no id")
    metadata = metadata_of(subscription.get("metadata"))
    items = subscription.get("items")
    previous = event.previous_attributes if isinstance(event.previous_attributes, dict) else {}
    previous_items = previous.get("items")
    previous_fund = metadata_of(previous.get("metadata")).get("fund") if "metadata" in previous else None
    status = subscription.get("status")
    mapped = STATUSES.get(status) if isinstance(status, str) else None
    if event.type == "customer.subscription.deleted":
        mapped = MembershipStatus.CANCELED
    fund = metadata.get("fund")
    return memberships.SubscriptionState(
        origin=memberships.MembershipOrigin(
            subscription_id=subscription_id,
            as_of=event.created,
            customer_id=object_id(subscription.get("customer")),
            amount_cents=items_amount(items) or None,
            currency=currency(subscription.get("currency")),
            interval=_items_interval(items) or frequency_interval(metadata),
            gift_id=gift_id_from(metadata),
            fund_slug=fund if isinstance(fund, str) else None,
            started_at=timestamp(subscription.get("start_date")),
        ),
        event_id=event.id,
        status=mapped,
        # The Billing Portal may schedule the end with cancel_at instead of the flag.
        cancel_at_period_end=subscription.get("cancel_at_period_end") is True
        or bool(timestamp(subscription.get("cancel_at"))),
        current_period_end=_period_end(subscription),
        ended_at=timestamp(subscription.get("ended_at")) or timestamp(subscription.get("canceled_at")),
        previous_amount_cents=(items_amount(previous_items) or None) if previous_items else None,
        previous_interval=_items_interval(previous_items) if previous_items else None,
        previous_fund_slug=previous_fund if isinstance(previous_fund, str) else None,
        pause_known="pause_collection" in subscription,
        paused_until=_resumes_at(subscription.get("pause_collection")),
    )


def _resumes_at(pause: Any) -> datetime | None:
    """Until when a paused subscription skips its installments. A pause with no end date (made
    in the Stripe dashboard) counts as paused far ahead: nothing is billed until it is lifted."""
    if not isinstance(pause, dict):
        return None
    return timestamp(pause.get("resumes_at")) or INDEFINITE_PAUSE


def subscription_keys(subscription: dict[str, Any]) -> gift_sources.Keys:
    prices = [field(item, "price") or field(item, "plan") for item in _items(subscription.get("items"))]
    products, price_ids = gift_sources.price_keys(price for price in prices if price)
    return gift_sources.Keys(
        metadata=metadata_of(subscription.get("metadata")),
        products=products,
        prices=price_ids,
        subscription_id=object_id(subscription.get("id")),
    )


@handles("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
def subscription_changed(event: StripeEventData) -> None:
    keys = subscription_keys(event.object)
    verdict = gift_sources.classify(keys)
    if not verdict.gift:
        gift_sources.record_not_gift(
            event_id=event.id,
            object_id=keys.subscription_id or "",
            kind="subscription",
            keys=keys,
            amount_cents=items_amount(event.object.get("items")),
            currency=currency(event.object.get("currency")),
            subscription_id=keys.subscription_id,
        )
        return
    state = subscription_state(event)
    if verdict.fund_slug:  # the gift source's fund, whatever the metadata says (or said)
        state = replace(state, origin=replace(state.origin, fund_slug=verdict.fund_slug), previous_fund_slug=None)
    try:
        news = memberships.apply_subscription(state)
    except memberships.MembershipNotKnown as exc:
        raise EventDeferred(str(exc)) from None
    tell_member(news)


def start_membership_from_checkout(event: StripeEventData, source_fund: str | None = None) -> None:
    """checkout.session.completed in subscription mode: the membership only, never a gift."""
    session = event.object
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return
    subscription_id = object_id(session.get("subscription"))
    if subscription_id is None:
        raise ValueError("subscription checkout session names no subscription")
    metadata = metadata_of(session.get("metadata"))
    fund = metadata.get("fund")
    origin = memberships.MembershipOrigin(
        subscription_id=subscription_id,
        as_of=event.created,
        customer_id=object_id(session.get("customer")),
        email=text(field(session, "customer_details", "email") or session.get("customer_email"), 254),
        name=text(
            field(session, "customer_details", "individual_name") or field(session, "customer_details", "name"), 200
        ),
        postal_code=text(field(session, "customer_details", "address", "postal_code"), 20),
        amount_cents=cents(session.get("amount_total")) or None,
        currency=currency(session.get("currency")),
        interval=frequency_interval(metadata),
        gift_id=gift_id_from(metadata),
        fund_slug=source_fund or (fund if isinstance(fund, str) else None),
        started_at=event.created,
    )
    try:
        news = memberships.start_from_checkout(origin)
    except memberships.MembershipNotKnown:
        # A Payment Link we did not make, whose interval the session does not carry: its
        # first invoice (which does) records the membership.
        return
    tell_member(news)
