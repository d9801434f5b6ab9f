"""Checkout Session events: one-time gifts (subscription sessions are memberships')."""

from __future__ import annotations

from typing import Any

from donations.ledger import service as ledger
from donations.payments.handlers import StripeEventData, handles
from donations.receipts import service as receipts


def _payment_from_session(session: dict[str, Any], event: StripeEventData) -> ledger.CheckoutPayment:
    details = session.get("customer_details") or {}
    address = details.get("address") or {}
    metadata = session.get("metadata") or {}
    email = details.get("email") or session.get("customer_email")
    if not email:
        raise ValueError("checkout session has no customer email")
    gift_id = metadata.get("gift_id")
    return ledger.CheckoutPayment(
        session_id=session["id"],
        amount_cents=int(session["amount_total"]),
        currency=session["currency"],
        paid_at=event.created,
        email=email,
        name=details.get("individual_name") or details.get("name"),
        postal_code=address.get("postal_code"),
        business_name=details.get("business_name"),
        payment_intent_id=session.get("payment_intent"),
        customer_id=session.get("customer"),
        gift_id=int(gift_id) if gift_id and str(gift_id).isdigit() else None,
        fund_slug=metadata.get("fund"),
    )


@handles("checkout.session.completed", "checkout.session.async_payment_succeeded")
def checkout_paid(event: StripeEventData) -> None:
    session = event.object
    if session.get("mode") != "payment" or session.get("payment_status") != "paid":
        # Subscriptions are recorded from their invoices; unpaid sessions (bank debits) wait
        # for async_payment_succeeded.
        return
    gift, newly_paid = ledger.record_checkout_payment(_payment_from_session(session, event))
    if newly_paid:
        receipts.queue(
            "gift_receipt",
            gift.donor.email,
            {"gift_id": gift.id},
            dedupe_key=f"gift_receipt:{gift.id}",
            donor_id=gift.donor_id,
        )


@handles("checkout.session.async_payment_failed", "checkout.session.expired")
def checkout_failed(event: StripeEventData) -> None:
    ledger.fail_checkout(event.object["id"])
