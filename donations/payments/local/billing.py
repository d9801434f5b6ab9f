"""The local gateway's stand-in for Stripe Billing: subscriptions on this machine.

Everything here happens the way Stripe would tell it: Stripe-shaped subscription, invoice and
invoice-payment objects, in signed events taken as the webhook takes them (`local.deliver`), so
the real verification and handlers record the memberships and their installments. Only the card
on file is written directly, in the local gateway's own table (Stripe would keep it, not the
ledger). Never used with the stripe gateway.
"""

from __future__ import annotations

import calendar
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.models import FREQUENCY_INTERVAL, INTERVAL_FREQUENCY, Gift, Membership, MembershipStatus
from donations.payments.installation import METADATA_KEY, installation_id
from donations.payments.local import gateway as local
from donations.payments.local.models import LocalCard

LOCAL_SUBSCRIPTION_PREFIX = "sub_local_"
# Cards the local gateway keeps on file: the paying one, and the one that declines renewals.
CARD_LAST4 = {local.PAYING_CARD: "4242", local.DECLINING_CARD: "0002"}
DECLINING_LAST4 = "0002"


class LocalBillingError(RuntimeError):
    """An event was not taken (the webhook would have answered an error); nothing more was sent."""


def shift(moment: datetime, interval: str, periods: int, anchor_day: int) -> datetime:
    """`periods` months or years later (or earlier), on the anchor day, clamped to the month's
    length (Jan 31 -> Feb 28 -> Mar 31), as Stripe bills."""
    months = periods * (12 if interval == "year" else 1)
    year, month_index = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    day = min(anchor_day, calendar.monthrange(year, month_index + 1)[1])
    return moment.replace(year=year, month=month_index + 1, day=day)


def _ts(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def _derived_id(prefix: str, *parts: object) -> str:
    """An id that is the same each time for the same thing (a period's invoice), so that two
    runs billing it at once name one invoice and the ledger records it once."""
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode()).hexdigest()[:24]
    return f"{prefix}_local_{digest}"


@dataclass(frozen=True)
class _Subscription:
    """What the local gateway knows of one subscription: enough to build Stripe's objects."""

    subscription_id: str
    customer_id: str
    email: str
    name: str | None
    amount_cents: int
    currency: str
    interval: str
    started_at: datetime
    metadata: dict[str, str]
    paused_until: datetime | None = None

    @classmethod
    def of(cls, membership: Membership) -> _Subscription:
        return cls(
            paused_until=membership.paused_until,
            subscription_id=membership.stripe_subscription_id or "",
            customer_id=membership.stripe_customer_id or "",
            email=membership.donor.email,
            name=membership.donor.name,
            amount_cents=membership.amount_cents,
            currency=membership.currency,
            interval=membership.interval,
            started_at=membership.started_at or membership.created_at,
            metadata={
                METADATA_KEY: installation_id(),
                "fund": membership.fund.slug,
                "frequency": INTERVAL_FREQUENCY[membership.interval],
            },
        )

    def period_before(self, end: datetime) -> datetime:
        return shift(end, self.interval, -1, self.started_at.day)

    def subscription(
        self,
        *,
        status: str,
        period_end: datetime,
        amount_cents: int | None = None,
        cancel_at_period_end: bool = False,
        ended_at: datetime | None = None,
    ) -> dict[str, Any]:
        amount = self.amount_cents if amount_cents is None else amount_cents
        return {
            "id": self.subscription_id,
            "object": "subscription",
            "customer": self.customer_id,
            "currency": self.currency,
            "status": status,
            "metadata": self.metadata,
            "collection_method": "charge_automatically",
            "livemode": False,
            "created": _ts(self.started_at),
            "start_date": _ts(self.started_at),
            "cancel_at_period_end": cancel_at_period_end,
            "pause_collection": (
                {"behavior": "void", "resumes_at": _ts(self.paused_until)} if self.paused_until else None
            ),
            "cancel_at": _ts(period_end) if cancel_at_period_end else None,
            "canceled_at": _ts(ended_at),
            "ended_at": _ts(ended_at),
            "items": {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": _derived_id("si", self.subscription_id),
                        "object": "subscription_item",
                        "quantity": 1,
                        "subscription": self.subscription_id,
                        "current_period_start": _ts(self.period_before(period_end)),
                        "current_period_end": _ts(period_end),
                        "price": {
                            "id": _derived_id("price", self.subscription_id, amount),
                            "object": "price",
                            "currency": self.currency,
                            "type": "recurring",
                            "unit_amount": amount,
                            "recurring": {"interval": self.interval, "interval_count": 1},
                        },
                    }
                ],
            },
        }

    def invoice(
        self, *, period_start: datetime, billing_reason: str, paid_at: datetime | None, attempt_count: int = 1
    ) -> dict[str, Any]:
        invoice_id = _derived_id("in", self.subscription_id, _ts(period_start))
        period_end = shift(period_start, self.interval, 1, self.started_at.day)
        paid = paid_at is not None
        return {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": self.amount_cents,
            "amount_paid": self.amount_cents if paid else 0,
            "amount_remaining": 0 if paid else self.amount_cents,
            "attempt_count": attempt_count,
            "attempted": True,
            "billing_reason": billing_reason,
            "collection_method": "charge_automatically",
            "currency": self.currency,
            "customer": self.customer_id,
            "customer_email": self.email,
            "customer_name": self.name,
            "created": _ts(period_start),
            "livemode": False,
            "lines": {
                "object": "list",
                "has_more": False,
                "data": [
                    {
                        "id": _derived_id("il", invoice_id),
                        "object": "line_item",
                        "amount": self.amount_cents,
                        "currency": self.currency,
                        "invoice": invoice_id,
                        "quantity": 1,
                        "period": {"start": _ts(period_start), "end": _ts(period_end)},
                        "parent": {
                            "type": "subscription_item_details",
                            "subscription_item_details": {
                                "subscription": self.subscription_id,
                                "subscription_item": _derived_id("si", self.subscription_id),
                                "proration": False,
                            },
                        },
                        "pricing": {
                            "type": "price_details",
                            "price_details": {
                                "price": _derived_id("price", self.subscription_id, self.amount_cents),
                                "product": _derived_id("prod", self.subscription_id),
                            },
                        },
                    }
                ],
            },
            "parent": {
                "type": "subscription_details",
                "subscription_details": {"subscription": self.subscription_id, "metadata": self.metadata},
            },
            "period_start": _ts(period_start),
            "period_end": _ts(period_start),
            "status": "paid" if paid else "open",
            "status_transitions": {"finalized_at": _ts(period_start), "paid_at": _ts(paid_at)},
            "subtotal": self.amount_cents,
            "total": self.amount_cents,
        }


def _invoice_payment(invoice: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _derived_id("inpay", invoice["id"]),
        "object": "invoice_payment",
        "amount_paid": invoice["amount_paid"],
        "amount_requested": invoice["amount_due"],
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": _derived_id("pi", invoice["id"])},
        "status": "paid",
        "status_transitions": {"paid_at": invoice["status_transitions"]["paid_at"], "canceled_at": None},
    }


def _send(*payloads: dict[str, Any]) -> None:
    for payload in payloads:
        if not local.deliver(payload):
            raise LocalBillingError(f"the {payload['type']} event was not taken")


def _paid(subscription: _Subscription, period_start: datetime, billing_reason: str, paid_at: datetime) -> None:
    invoice = subscription.invoice(period_start=period_start, billing_reason=billing_reason, paid_at=paid_at)
    _send(local.event("invoice.paid", invoice), local.event("invoice_payment.paid", _invoice_payment(invoice)))


# What readers do ----------------------------------------------------------------------------


def start_subscription(gift: Gift, card_number: str) -> None:
    """A reader paid a recurring gift on the local checkout page: as Stripe, the completed
    subscription checkout, then its first invoice paid; and the card kept for renewals."""
    now = utcnow()
    session_id = gift.stripe_checkout_session_id or ""
    subscription = _Subscription(
        # From the session: paying twice (a double click) names the same subscription.
        subscription_id=_derived_id("sub", session_id),
        customer_id=gift.donor.stripe_customer_id or _derived_id("cus", session_id),
        email=gift.donor.email,
        name=gift.donor.name,
        amount_cents=gift.amount_cents,
        currency=gift.currency,
        interval=FREQUENCY_INTERVAL[gift.frequency],
        started_at=now,
        metadata={
            METADATA_KEY: installation_id(),
            "gift_id": str(gift.id),
            "fund": gift.fund.slug,
            "frequency": gift.frequency,
        },
    )
    session = local.paid_checkout_session(
        session_id=session_id,
        amount_cents=gift.amount_cents,
        currency=gift.currency,
        email=gift.donor.email,
        name=gift.donor.name,
        postal_code=gift.donor.postal_code,
        business_name=gift.organization,
        metadata=subscription.metadata,
        mode="subscription",
        subscription_id=subscription.subscription_id,
        customer_id=subscription.customer_id,
    )
    _send(local.event("checkout.session.completed", session))
    _paid(subscription, now, "subscription_create", now)
    keep_card(subscription.subscription_id, CARD_LAST4[card_number])


def keep_card(subscription_id: str, last4: str) -> None:
    """The card on file for the subscription's renewals; nothing while no membership has it."""
    # The membership's row lock queues two changes of the same card one after the other.
    membership_id = db.session.scalar(
        select(Membership.id).where(Membership.stripe_subscription_id == subscription_id).with_for_update()
    )
    if membership_id is not None:
        card = db.session.get(LocalCard, membership_id, populate_existing=True)
        if card is None:
            db.session.add(LocalCard(membership_id=membership_id, last4=last4))
        else:
            card.last4 = last4
    # Stripe's record, not ours: kept at once, as Stripe would, apart from any caller's transaction.
    db.session.commit()


def card_on_file(membership_id: int) -> str | None:
    """The last four digits of the card that renews the membership, if it has one."""
    return db.session.scalar(select(LocalCard.last4).where(LocalCard.membership_id == membership_id))


def cards_on_file(membership_ids: list[int]) -> dict[int, str]:
    """`card_on_file` of each membership that has one, in one query."""
    query = select(LocalCard.membership_id, LocalCard.last4).where(LocalCard.membership_id.in_(membership_ids))
    return {row.membership_id: row.last4 for row in db.session.execute(query)}


def change_plan(membership: Membership, amount_cents: int, frequency: str, fund_slug: str) -> None:
    """As Stripe tells a subscription update: customer.subscription.updated with the old
    items (amount and frequency) and metadata (fund) in previous_attributes. Renewals bill the
    new plan from the next one; the current period, paid, stays as it is."""
    before = _Subscription.of(membership)
    after = replace(
        before,
        amount_cents=amount_cents,
        interval=FREQUENCY_INTERVAL[frequency],
        metadata={**before.metadata, "fund": fund_slug, "frequency": frequency},
    )
    period_end = membership.current_period_end or utcnow()
    old = before.subscription(status=_stripe_status(membership), period_end=period_end)
    payload = local.event(
        "customer.subscription.updated", after.subscription(status=old["status"], period_end=period_end)
    )
    payload["data"]["previous_attributes"] = {"items": old["items"], "metadata": old["metadata"]}
    _send(payload)


def _stripe_status(membership: Membership) -> str:
    return "past_due" if membership.status == MembershipStatus.PAST_DUE else "active"


def pause(membership: Membership, resumes_at: datetime | None) -> None:
    """Skip renewals until `resumes_at` (None: resume now), as Stripe's pause_collection with
    `void`: customer.subscription.updated with the pause. `bill_due` skips the periods."""
    subscription = replace(_Subscription.of(membership), paused_until=resumes_at)
    period_end = membership.current_period_end or utcnow()
    payload = local.event(
        "customer.subscription.updated",
        subscription.subscription(status=_stripe_status(membership), period_end=period_end),
    )
    payload["data"]["previous_attributes"] = {"pause_collection": None}
    _send(payload)


def cancel(membership: Membership, ended_at: datetime | None = None) -> None:
    """The subscription ends now (or at `ended_at`): customer.subscription.deleted."""
    subscription = _Subscription.of(membership)
    ended_at = ended_at or utcnow()
    deleted = subscription.subscription(
        status="canceled", period_end=membership.current_period_end or ended_at, ended_at=ended_at
    )
    _send(local.event("customer.subscription.deleted", deleted))


# Renewals -----------------------------------------------------------------------------------


@dataclass
class BillingSummary:
    billed: int = 0  # installments paid
    declined: int = 0  # renewals whose card declined (the membership is past due)
    ended: int = 0  # memberships that were set to end with their period
    skipped: int = 0  # renewals skipped by a pause (nothing charged)
    errors: list[str] = field(default_factory=list)


def due_memberships(as_of: datetime) -> list[int]:
    """Local memberships whose period ended by `as_of` and that still renew."""
    return list(
        db.session.scalars(
            select(Membership.id)
            .where(
                Membership.status.in_((MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)),
                Membership.current_period_end <= as_of,
                Membership.stripe_subscription_id.startswith(LOCAL_SUBSCRIPTION_PREFIX),
            )
            .order_by(Membership.id)
        )
    )


def bill_due(as_of: datetime) -> BillingSummary:
    """Bill every period that ended by `as_of` of every active (or past due) local membership,
    as Stripe would at each renewal: invoice.paid, or invoice.payment_failed when the card on
    file declines. Canceled memberships are never billed; one set to cancel at the period's
    end is ended instead. Installments are dated at their renewal."""
    summary = BillingSummary()
    for membership_id in due_memberships(as_of):
        try:
            _bill_membership(membership_id, as_of, summary)
        except LocalBillingError as exc:
            summary.errors.append(f"membership {membership_id}: {exc}")
    return summary


def _bill_membership(membership_id: int, as_of: datetime, summary: BillingSummary) -> None:
    while True:
        # Each event is applied in its own transaction: read afresh what it changed.
        db.session.commit()
        membership = db.session.get(Membership, membership_id, populate_existing=True)
        if (
            membership is None
            or membership.status not in (MembershipStatus.ACTIVE, MembershipStatus.PAST_DUE)
            or membership.current_period_end is None
            or membership.current_period_end > as_of
        ):
            return
        period_start = membership.current_period_end
        subscription = _Subscription.of(membership)
        if membership.cancel_at_period_end:
            cancel(membership, ended_at=period_start)
            summary.ended += 1
            return
        paused_until = membership.paused_until
        if paused_until is not None:
            if period_start < paused_until:
                # Paused: Stripe voids the period's invoice (nothing owed) and the period moves on.
                next_end = shift(period_start, subscription.interval, 1, subscription.started_at.day)
                skipped = subscription.subscription(status=_stripe_status(membership), period_end=next_end)
                _send(local.event("customer.subscription.updated", skipped))
                summary.skipped += 1
            else:
                # The pause is over: Stripe lifts it (and says so) before billing again.
                pause(membership, None)
            db.session.commit()
            after = db.session.get(Membership, membership_id, populate_existing=True)
            if after is not None and (after.current_period_end, after.paused_until) == (period_start, paused_until):
                raise LocalBillingError("the subscription event did not move the paused membership on")
            continue
        if card_on_file(membership_id) == DECLINING_LAST4:
            invoice = subscription.invoice(period_start=period_start, billing_reason="subscription_cycle", paid_at=None)
            _send(local.event("invoice.payment_failed", invoice))
            summary.declined += 1
            return
        _paid(subscription, period_start, "subscription_cycle", period_start)
        summary.billed += 1
        db.session.commit()
        renewed = db.session.get(Membership, membership_id, populate_existing=True)
        if renewed is None or renewed.current_period_end is None or renewed.current_period_end <= period_start:
            raise LocalBillingError("the paid invoice did not renew the membership")
