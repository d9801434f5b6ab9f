"""Checkout Session events: one-time gifts (subscription sessions are memberships')."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from donations.ledger import service as ledger
from donations.ledger.currency import ForeignCurrency
from donations.ledger.models import GiftStatus
from donations.mail import service as mail
from donations.payments import gift_sources
from donations.payments.handlers import EventDeferred, StripeEventData, handles
from donations.payments.handlers.payload import field, object_id
from donations.payments.handlers.subscriptions import start_membership_from_checkout
from donations.webhooks import outbox as webhooks

MAX_AMOUNT_CENTS = 10**12  # far above any gift, far below the BIGINT column's limit


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str | None:
    """A string of the session, as the ledger's columns can hold it. Anything else is a payload
    we cannot read (ValueError: the event is kept with the reason, never half-applied)."""
    if value is None or value == "":
        if required:
            raise ValueError(f"checkout session has no {field}")
        return None
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise ValueError(f"checkout session {field} is not a text of at most {limit} characters")
    return value


def _label(value: Any, limit: int) -> str | None:
    """Descriptive text (a name, a postal code), cut to what its column holds: a paid gift is
    never refused for its payer's name."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "").strip()[:limit] or None


def _dict(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"checkout session {field} is not an object")
    return value


def session_keys(session: dict[str, Any]) -> gift_sources.Keys:
    """What in a Checkout Session can make it a gift: its metadata, its Payment Link, and the
    prices of its line items when the payload carries them (the history import expands them)."""
    lines = field(session, "line_items", "data")
    prices = [line.get("price") for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []
    products, price_ids = gift_sources.price_keys(price for price in prices if price)
    return gift_sources.Keys(
        metadata=_dict(session.get("metadata"), "metadata"),
        payment_link=object_id(session.get("payment_link")),
        products=products,
        prices=price_ids,
        session_id=object_id(session.get("id")),
        subscription_id=object_id(session.get("subscription")),
    )


def keep_not_gift(session: dict[str, Any], event: StripeEventData, keys: gift_sources.Keys) -> None:
    amount = session.get("amount_total")
    gift_sources.record_not_gift(
        event_id=event.id,
        object_id=object_id(session.get("id")) or "",
        kind="subscription_checkout" if session.get("mode") == "subscription" else "one_time",
        keys=keys,
        amount_cents=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=(session.get("currency") or None) if isinstance(session.get("currency"), str) else None,
        payment_intent_id=object_id(session.get("payment_intent")),
        subscription_id=keys.subscription_id,
    )


def _payment_from_session(session: dict[str, Any], event: StripeEventData) -> ledger.CheckoutPayment:
    details = _dict(session.get("customer_details"), "customer_details")
    address = _dict(details.get("address"), "address")
    metadata = _dict(session.get("metadata"), "metadata")
    email = _text(details.get("email") or session.get("customer_email"), "customer email", 320, required=True)
    amount = session.get("amount_total")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_AMOUNT_CENTS:
        raise ValueError(f"checkout session amount_total {amount!r} is not a positive number of cents")
    currency = _text(session.get("currency"), "currency", 3, required=True)
    if not (currency and currency.isascii() and currency.isalpha() and len(currency) == 3):
        raise ValueError(f"checkout session currency {currency!r} is not an ISO code")
    gift_id = metadata.get("gift_id")
    return ledger.CheckoutPayment(
        session_id=_text(session.get("id"), "id", 255, required=True) or "",
        amount_cents=amount,
        currency=currency.lower(),
        paid_at=event.created,
        email=email or "",
        name=_label(details.get("individual_name") or details.get("name"), 200),
        postal_code=_label(address.get("postal_code"), 20),
        business_name=_label(details.get("business_name"), 200),
        payment_intent_id=_text(session.get("payment_intent"), "payment_intent", 255),
        customer_id=_text(session.get("customer"), "customer", 255),
        gift_id=int(gift_id)
        if isinstance(gift_id, str) and gift_id.isascii() and gift_id.isdigit() and len(gift_id) < 19
        else None,
        fund_slug=_text(metadata.get("fund"), "fund", 80),
    )


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded")
def checkout_paid(event: StripeEventData) -> None:
    session = event.object
    if session.get("mode") not in ("subscription", "payment"):
        return  # setup mode: no money
    keys = session_keys(session)
    verdict = gift_sources.classify(keys)
    if not verdict.gift:
        # The account's other business (a subscription to the paper, a ticket): kept apart.
        keep_not_gift(session, event, keys)
        return
    if session.get("mode") == "subscription":
        if not verdict.ours and keys.subscription_id:
            # Its invoices and subscription events do not name the Payment Link: remember it.
            gift_sources.claim_subscription(keys.subscription_id, verdict.fund_slug)
        # The membership only: its money is recorded from its invoices, never from here.
        start_membership_from_checkout(event, verdict.fund_slug)
        return
    if session.get("payment_status") != "paid":
        # Unpaid sessions (bank debits) wait for async_payment_succeeded.
        return
    payment = _payment_from_session(session, event)
    if not verdict.ours:
        payment = replace(payment, fund_slug=verdict.fund_slug, gift_id=None)
    try:
        paid = ledger.record_checkout_payment(payment)
    except ForeignCurrency as exc:
        # Kept, not applied, with the reason staff read on /staff/events: never a gift in totals.
        raise EventDeferred(str(exc)) from None
    if paid is not None:  # None: a replay, its receipt (and webhook event) was queued the first time
        mail.queue_gift_receipt(paid.gift_id, paid.donor_id, paid.donor_email)
        webhooks.gift_recorded(paid.gift_id)


@handles("checkout.session.async_payment_failed")
def checkout_failed(event: StripeEventData) -> None:
    ledger.fail_checkout(event.object["id"])


@handles("checkout.session.expired")
def checkout_expired(event: StripeEventData) -> None:
    ledger.fail_checkout(event.object["id"], GiftStatus.EXPIRED)
