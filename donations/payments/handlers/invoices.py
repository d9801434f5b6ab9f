"""Invoice events: every paid subscription invoice is one installment gift.

The subscription is at `parent.subscription_details.subscription` in current API versions (at
`subscription` in older ones). An invoice may be the first thing we hear of a subscription
(made in the Stripe dashboard, or delivered before its checkout): it carries the customer's
email and the subscription's metadata, enough to record the membership.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from donations.ledger import installments, memberships
from donations.ledger.currency import ForeignCurrency
from donations.payments.handlers import EventDeferred, StripeEventData, handles
from donations.payments.handlers.payload import cents, currency, field, metadata_of, object_id, text, timestamp
from donations.payments.handlers.subscriptions import frequency_interval, gift_id_from, supported_interval, tell_member

DAY = 86_400


def _subscription_details(invoice: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    details = field(invoice, "parent", "subscription_details") or field(invoice, "subscription_details")
    subscription = object_id(field(details, "subscription")) or object_id(invoice.get("subscription"))
    return subscription, metadata_of(field(details, "metadata"))


def _subscription_line(invoice: dict[str, Any]) -> dict[str, Any]:
    """The line that bills the subscription's price (not a proration or a one-off item)."""
    lines = field(invoice, "lines", "data")
    lines = [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []
    for line in lines:
        item = field(line, "parent", "subscription_item_details")
        if field(line, "parent", "type") == "subscription_item_details" and item and not field(item, "proration"):
            return line
    for line in lines:
        if line.get("type") == "subscription" or isinstance(line.get("price"), dict) or line.get("plan"):
            return line
    return lines[0] if lines else {}


def _line_interval(line: dict[str, Any]) -> str | None:
    interval = field(line, "price", "recurring", "interval") or field(line, "plan", "interval")
    if interval:
        count = field(line, "price", "recurring", "interval_count") or field(line, "plan", "interval_count")
        return supported_interval(interval, count)
    # Current API versions name the price only by id: the period's length tells the interval.
    start, end = timestamp(field(line, "period", "start")), timestamp(field(line, "period", "end"))
    if start is None or end is None:
        return None
    days = (end - start).total_seconds() / DAY
    if 27 <= days <= 32:
        return "month"
    if 364 <= days <= 367:
        return "year"
    return None


def _origin(invoice: dict[str, Any], event: StripeEventData, subscription_id: str) -> memberships.MembershipOrigin:
    _, metadata = _subscription_details(invoice)
    line = _subscription_line(invoice)
    first = invoice.get("billing_reason") == "subscription_create"
    fund = metadata.get("fund")
    return memberships.MembershipOrigin(
        subscription_id=subscription_id,
        as_of=event.created,
        customer_id=object_id(invoice.get("customer")),
        email=text(invoice.get("customer_email"), 254),
        name=text(invoice.get("customer_name"), 200),
        postal_code=text(field(invoice, "customer_address", "postal_code"), 20),
        amount_cents=cents(line.get("amount")) or None,
        currency=currency(invoice.get("currency")),
        interval=frequency_interval(metadata) or _line_interval(line),
        gift_id=gift_id_from(metadata),
        fund_slug=fund if isinstance(fund, str) else None,
        started_at=timestamp(field(line, "period", "start")) if first else None,
    )


def _invoice_id(invoice: dict[str, Any]) -> str:
    invoice_id = object_id(invoice.get("id"))
    if invoice_id is None:
        raise ValueError("invoice has no id")
    return invoice_id


def _paid_at(invoice: dict[str, Any], event: StripeEventData) -> datetime:
    return timestamp(field(invoice, "status_transitions", "paid_at")) or event.created


@handles("invoice.paid")
def invoice_paid(event: StripeEventData) -> None:
    invoice = event.object
    subscription_id, _ = _subscription_details(invoice)
    if subscription_id is None:
        return  # a one-off invoice, not a membership's
    amount = cents(invoice.get("amount_paid"))
    if amount is None:
        raise ValueError("invoice has no amount_paid")
    payment = installments.InstallmentPayment(
        invoice_id=_invoice_id(invoice),
        amount_cents=amount,
        currency=currency(invoice.get("currency")),
        paid_at=_paid_at(invoice, event),
        first=invoice.get("billing_reason") == "subscription_create",
        period_end=timestamp(field(_subscription_line(invoice), "period", "end")),
        # Older API versions name it on the invoice; current ones through invoice_payment.paid.
        payment_intent_id=object_id(invoice.get("payment_intent")),
    )
    try:
        news = installments.record_installment(_origin(invoice, event, subscription_id), payment)
    except (memberships.MembershipNotKnown, ForeignCurrency) as exc:
        raise EventDeferred(str(exc)) from None
    tell_member(news)


@handles("invoice.payment_failed")
def invoice_payment_failed(event: StripeEventData) -> None:
    invoice = event.object
    subscription_id, _ = _subscription_details(invoice)
    if subscription_id is None:
        return
    try:
        news = memberships.record_failed_payment(_origin(invoice, event, subscription_id), _invoice_id(invoice))
    except memberships.MembershipNotKnown as exc:
        raise EventDeferred(str(exc)) from None
    tell_member(news)


@handles("invoice_payment.paid")
def invoice_payment_paid(event: StripeEventData) -> None:
    invoice_payment = event.object
    invoice_id = object_id(invoice_payment.get("invoice"))
    payment_intent_id = object_id(field(invoice_payment, "payment", "payment_intent"))
    if invoice_id and payment_intent_id:
        installments.link_invoice_payment(invoice_id, payment_intent_id)
