"""Invoice events: every paid subscription invoice is one installment gift.

The subscription is at `parent.subscription_details.subscription` in current API versions (at
`subscription` in older ones). An invoice may be the first thing we hear of a subscription
(made in the Stripe dashboard, or delivered before its checkout): it carries the customer's
email and the subscription's metadata, enough to record the membership.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from donations.ledger import installments, memberships
from donations.ledger.currency import ForeignCurrency
from donations.payments import gift_sources
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


def invoice_keys(invoice: dict[str, Any], subscription_id: str) -> gift_sources.Keys:
    """The invoice's subscription metadata, and the prices and products of its lines (current
    API versions under `pricing.price_details`, older ones as `price`)."""
    _, metadata = _subscription_details(invoice)
    lines = field(invoice, "lines", "data")
    prices: list[Any] = []
    for line in lines if isinstance(lines, list) else []:
        details = field(line, "pricing", "price_details")
        if isinstance(details, dict):
            prices.append({"id": object_id(details.get("price")), "product": details.get("product")})
        elif isinstance(field(line, "price"), dict):
            prices.append(line["price"])
    products, price_ids = gift_sources.price_keys(prices)
    return gift_sources.Keys(metadata=metadata, products=products, prices=price_ids, subscription_id=subscription_id)


def _gift_or_kept(invoice: dict[str, Any], event: StripeEventData, subscription_id: str) -> gift_sources.Verdict:
    """Whether the invoice is a membership's; one that is not is kept apart, as not a gift."""
    keys = invoice_keys(invoice, subscription_id)
    verdict = gift_sources.classify(keys)
    if not verdict.gift:
        gift_sources.record_not_gift(
            event_id=event.id,
            object_id=_invoice_id(invoice),
            kind="invoice",
            keys=keys,
            amount_cents=cents(invoice.get("amount_paid")),
            currency=currency(invoice.get("currency")),
            payment_intent_id=object_id(invoice.get("payment_intent")),
            subscription_id=subscription_id,
            invoice_id=_invoice_id(invoice),
        )
    return verdict


def _with_fund(origin: memberships.MembershipOrigin, verdict: gift_sources.Verdict) -> memberships.MembershipOrigin:
    return replace(origin, fund_slug=verdict.fund_slug) if verdict.fund_slug else origin


@handles("invoice.paid")
def invoice_paid(event: StripeEventData) -> None:
    invoice = event.object
    subscription_id, _ = _subscription_details(invoice)
    if subscription_id is None:
        return  # a one-off invoice, not a membership's
    verdict = _gift_or_kept(invoice, event, subscription_id)
    if not verdict.gift:
        return
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
        news = installments.record_installment(_with_fund(_origin(invoice, event, subscription_id), verdict), payment)
    except (memberships.MembershipNotKnown, ForeignCurrency) as exc:
        raise EventDeferred(str(exc)) from None
    tell_member(news)


@handles("invoice.payment_failed")
def invoice_payment_failed(event: StripeEventData) -> None:
    invoice = event.object
    subscription_id, _ = _subscription_details(invoice)
    if subscription_id is None:
        return
    verdict = _gift_or_kept(invoice, event, subscription_id)
    if not verdict.gift:
        return
    try:
        origin = _with_fund(_origin(invoice, event, subscription_id), verdict)
        news = memberships.record_failed_payment(origin, _invoice_id(invoice))
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
        gift_sources.note_invoice_payment(invoice_id, payment_intent_id)
