"""The local gateway: the embedded default when no Stripe key is configured.

It stands in for Stripe Checkout on this machine. Its checkout page takes a test card number;
paying builds a Stripe-shaped event, signs it with the webhook secret and posts it to
/stripe/webhook, so the real verification and handlers run. Never allowed in production.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from flask import current_app, url_for

from donations.payments import signing
from donations.payments.gateway import CheckoutRequest, CheckoutSession

PAYING_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000002"


class LocalGateway:
    name = "local"

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = f"cs_local_{secrets.token_urlsafe(24)}"
        url = url_for("payments.local_checkout", session_id=session_id, cancel=request.cancel_url)
        return CheckoutSession(id=session_id, url=url)


def new_id(prefix: str) -> str:
    return f"{prefix}_local_{secrets.token_hex(12)}"


def event(event_type: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """A Stripe-shaped event around `obj` (the shape of Stripe's `event` object)."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()) if created is None else created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def paid_checkout_session(
    *,
    session_id: str,
    amount_cents: int,
    currency: str,
    email: str,
    name: str | None,
    postal_code: str | None,
    business_name: str | None,
    metadata: dict[str, str],
    mode: str = "payment",
    subscription_id: str | None = None,
    customer_id: str | None = None,
) -> dict[str, Any]:
    """A completed Checkout Session with the fields Stripe's own object carries."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount_cents,
        "amount_total": amount_cents,
        "currency": currency,
        "customer": customer_id or new_id("cus"),
        "customer_details": {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": postal_code,
                "state": None,
            },
            "email": email,
            "name": name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
            "business_name": business_name,
            "individual_name": name if business_name else None,
        },
        "customer_email": email,
        "livemode": False,
        "metadata": metadata,
        "mode": mode,
        "payment_intent": new_id("pi") if mode == "payment" else None,
        "payment_link": None,
        "payment_status": "paid",
        "status": "complete",
        "subscription": subscription_id,
        "invoice": None,
        "created": int(time.time()),
    }


def deliver(event_payload: dict[str, Any]) -> int:
    """Sign the event as Stripe would and post it to our own webhook endpoint."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    body = json.dumps(event_payload).encode()
    header = signing.sign(body, app.config["STRIPE_WEBHOOK_SECRET"])
    # A fresh app context: the webhook runs in its own database session and transaction,
    # as it would in the separate request Stripe makes.
    with app.app_context(), app.test_client() as client:
        response = client.post(
            "/stripe/webhook",
            data=body,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
    return response.status_code
