"""The payment gateway interface. The app talks to Stripe (or the local stand-in) only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app


class GatewayError(RuntimeError):
    """The gateway could not be reached or refused the request: nothing was charged; retry."""


@dataclass(frozen=True)
class CheckoutRequest:
    gift_id: int  # the pending gift: the idempotency key and metadata derive from it
    amount_cents: int
    currency: str
    frequency: str  # one_time | monthly | annual
    fund_slug: str
    description: str
    donor_email: str
    for_organization: bool
    success_url: str
    cancel_url: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


class PaymentGateway(Protocol):
    name: str

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...


def get_gateway() -> PaymentGateway:
    """The gateway chosen by configuration (PAYMENTS_GATEWAY)."""
    if current_app.config["PAYMENTS_GATEWAY"] == "stripe":
        from donations.payments.stripe_gateway import StripeGateway

        return StripeGateway.from_config(current_app.config)
    from donations.payments.local import LocalGateway

    return LocalGateway()
