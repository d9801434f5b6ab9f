"""The payment gateway interface. The app talks to Stripe (or the local stand-in) only here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask import current_app

from donations.forms import FREQUENCY_CHOICES
from donations.ledger.models import Membership
from donations.money import format_money


class GatewayError(RuntimeError):
    """The gateway could not be reached or refused the request: nothing was charged; retry."""


class GatewayRefused(GatewayError):
    """The gateway answered and said no (already refunded, bad amount): retrying will not help."""


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
    # The Price `setup-stripe` made for this fund, frequency and amount; None: an inline price.
    price_id: str | None = None


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class RefundParams:
    gift_id: int
    payment_intent_id: str | None  # one of these two names the payment to refund
    charge_id: str | None
    amount_cents: int
    currency: str
    reason: str  # the staff member's words; sent as metadata
    idempotency_key: str


@dataclass(frozen=True)
class MembershipUpdate:
    """A member's new plan: what each renewal bills from the next one on."""

    amount_cents: int
    frequency: str  # monthly | annual
    fund_slug: str
    description: str  # the product's name where a new price is made


@dataclass(frozen=True)
class EventPage:
    """One page of Stripe's Events list, newest first."""

    events: list[dict[str, Any]]
    has_more: bool


@dataclass(frozen=True)
class PriceNeed:
    """A suggested amount of a fund and frequency, which the account needs a Price for."""

    fund_id: int
    fund_slug: str
    fund_name: str
    frequency: str  # one_time | monthly | annual
    amount_cents: int
    currency: str

    @property
    def key(self) -> tuple[int, str, int, str]:
        return (self.fund_id, self.frequency, self.amount_cents, self.currency)

    @property
    def words(self) -> str:
        """ "Investigative Reporting Fund, Monthly, $10.00": for people reading a command's output."""
        frequency = dict(FREQUENCY_CHOICES).get(self.frequency, self.frequency)
        return f"{self.fund_name}, {frequency}, {format_money(self.amount_cents, self.currency)}"


@dataclass(frozen=True)
class AccountPlan:
    """What the app needs of the payment account."""

    prices: list[PriceNeed]
    webhook_url: str
    events: list[str]  # exactly the event types the handlers registry handles


@dataclass(frozen=True)
class SetUpPrice:
    need: PriceNeed
    price_id: str
    product_id: str


@dataclass
class AccountSetUp:
    """What `set_up_account` did (in words) and the ids the app keeps."""

    prices: list[SetUpPrice] = field(default_factory=list)
    portal_configuration_id: str | None = None
    webhook_endpoint_id: str | None = None
    webhook_secret: str | None = None  # only when the endpoint was created now
    changes: list[str] = field(default_factory=list)
    note: str | None = None  # a gateway with nothing to set up says so


@dataclass(frozen=True)
class Difference:
    """Something the account lacks or has wrong, and what fixes it, in words."""

    problem: str
    fix: str


@dataclass
class AccountCheck:
    differences: list[Difference] = field(default_factory=list)
    prices: dict[tuple[int, str, int, str], str] = field(default_factory=dict)  # need key -> price id found
    portal_configuration_id: str | None = None
    note: str | None = None


class PaymentGateway(Protocol):
    name: str

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...

    def refund(self, request: RefundParams) -> str:
        """Ask for a refund; returns Stripe's refund id. The ledger learns of it from events."""
        ...

    def list_events(self, *, created_gte: int, starting_after: str | None = None, limit: int = 100) -> EventPage: ...

    def retrieve_balance_transaction(self, balance_transaction_id: str) -> dict[str, Any]: ...

    def list_payout_balance_transactions(self, payout_id: str) -> Iterator[dict[str, Any]]:
        """Every balance transaction the payout settles, its `source` expanded."""
        ...

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The PaymentIntent that paid an invoice, from the invoice's payments (a renewal's,
        when `invoice_payment.paid` has not come); None when Stripe names none."""
        ...

    def create_billing_portal_session(
        self, customer_id: str, return_url: str, configuration_id: str | None = None
    ) -> str:
        """Where a member manages their subscriptions (amount, card, cancel): its address."""
        ...

    def set_up_account(self, plan: AccountPlan) -> AccountSetUp:
        """Create or update, idempotently, what the plan needs (products and prices, the portal
        configuration, the webhook endpoint); objects are found by the app's metadata."""
        ...

    def check_account(self, plan: AccountPlan) -> AccountCheck:
        """Compare the account with the plan, changing nothing."""
        ...

    def card_update_url(self, membership: Membership, return_url: str) -> str:
        """Where a member replaces the card that pays this membership (a failed renewal)."""
        ...

    def update_membership(self, membership: Membership, update: MembershipUpdate) -> None:
        """Change the subscription's amount, frequency and fund from its next renewal on. The
        ledger learns of it from the subscription's event, as of any change made elsewhere."""
        ...

    # Whether the gateway can skip installments (`pause_membership`, `resume_membership`).
    supports_pause: bool

    def pause_membership(self, membership: Membership, resumes_at: datetime) -> None:
        """Skip every installment due before `resumes_at` (none is charged, none is owed)."""
        ...

    def resume_membership(self, membership: Membership) -> None:
        """End a pause now: the next renewal is charged as usual."""
        ...


def get_gateway() -> PaymentGateway:
    """The gateway chosen by configuration (PAYMENTS_GATEWAY)."""
    if current_app.config["PAYMENTS_GATEWAY"] == "stripe":
        from donations.payments.stripe_gateway import StripeGateway

        return StripeGateway.from_config(current_app.config)
    from donations.payments.local.gateway import LocalGateway

    return LocalGateway()
