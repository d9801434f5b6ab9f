"""The Stripe gateway: Checkout Sessions through `stripe.StripeClient` (no global api_key)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe

from donations.payments.gateway import CheckoutRequest, CheckoutSession, GatewayError

RECURRING_INTERVAL = {"monthly": "month", "annual": "year"}


@dataclass
class StripeGateway:
    client: stripe.StripeClient
    name: str = "stripe"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StripeGateway:
        base = config.get("STRIPE_API_BASE")
        client = stripe.StripeClient(
            config["STRIPE_SECRET_KEY"],
            base_addresses={"api": base} if base else {},
            # Bounded: a slow Stripe must not hold a reader (or a worker) hostage.
            http_client=stripe.RequestsClient(timeout=config["STRIPE_TIMEOUT_SECONDS"]),
            max_network_retries=1,
        )
        return cls(client=client)

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {
            "gift_id": str(request.gift_id),
            "fund": request.fund_slug,
            "frequency": request.frequency,
            **request.metadata,
        }
        price_data: dict[str, Any] = {
            "currency": request.currency,
            "unit_amount": request.amount_cents,
            "product_data": {"name": request.description},
        }
        params: dict[str, Any] = {
            "line_items": [{"price_data": price_data, "quantity": 1}],
            "customer_email": request.donor_email,
            "client_reference_id": str(request.gift_id),
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": metadata,
        }
        if request.frequency in RECURRING_INTERVAL:
            price_data["recurring"] = {"interval": RECURRING_INTERVAL[request.frequency]}
            params["mode"] = "subscription"
            params["subscription_data"] = {"metadata": metadata, "description": request.description}
        else:
            params["mode"] = "payment"
            params["submit_type"] = "donate"
            params["customer_creation"] = "always"
            params["payment_intent_data"] = {"metadata": metadata, "description": request.description}
        if request.for_organization:
            params["name_collection"] = {"business": {"enabled": True, "optional": False}}
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout-gift-{request.gift_id}"},
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe refused or did not answer: {type(exc).__name__}") from exc
        if not session.url:
            raise GatewayError("Stripe returned a session without a URL")
        return CheckoutSession(id=session.id, url=session.url)
