"""The Stripe gateway: Checkout Sessions through `stripe.StripeClient` (no global api_key)."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from stripe.params import (
    BalanceTransactionListParams,
    EventListParams,
    RefundCreateParams,
    SubscriptionUpdateParams,
    SubscriptionUpdateParamsItemPriceData,
)
from stripe.params.billing_portal import SessionCreateParams as PortalSessionCreateParams
from stripe.params.checkout import (
    SessionCreateParams,
    SessionCreateParamsLineItem,
    SessionCreateParamsLineItemPriceData,
)

from donations.ledger.models import FREQUENCY_INTERVAL, Membership
from donations.payments.gateway import (
    AccountCheck,
    AccountPlan,
    AccountSetUp,
    CheckoutRequest,
    CheckoutSession,
    EventPage,
    GatewayError,
    GatewayRefused,
    MembershipUpdate,
    RefundParams,
)
from donations.payments.installation import METADATA_KEY, idempotency_key, installation_id
from donations.payments.stripe_setup import StripeAccountSetUp

# Stripe's own refund reasons; any other words go in the refund's metadata only.
STRIPE_REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# Stripe answered, and the same request would get the same answer.
_REFUSALS = (
    stripe.InvalidRequestError,
    stripe.CardError,
    stripe.IdempotencyError,
    stripe.AuthenticationError,
    stripe.PermissionError,
)


@dataclass
class StripeGateway:
    client: stripe.StripeClient
    name: str = "stripe"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StripeGateway:
        return cls(
            client=_client(
                config["STRIPE_SECRET_KEY"], config.get("STRIPE_API_BASE") or None, config["STRIPE_TIMEOUT_SECONDS"]
            )
        )

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {
            METADATA_KEY: installation_id(),
            "gift_id": str(request.gift_id),
            "fund": request.fund_slug,
            "frequency": request.frequency,
            **request.metadata,
        }
        price_data: SessionCreateParamsLineItemPriceData = {
            "currency": request.currency,
            "unit_amount": request.amount_cents,
            "product_data": {"name": request.description},
        }
        # The fund's own Price for a suggested amount (the Billing Portal switches among those);
        # any other amount an inline one.
        line_item: SessionCreateParamsLineItem = (
            {"price": request.price_id, "quantity": 1}
            if request.price_id
            else {"price_data": price_data, "quantity": 1}
        )
        params: SessionCreateParams = {
            "line_items": [line_item],
            "customer_email": request.donor_email,
            "client_reference_id": str(request.gift_id),
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "metadata": metadata,
        }
        if request.frequency in FREQUENCY_INTERVAL:
            price_data["recurring"] = {"interval": FREQUENCY_INTERVAL[request.frequency]}
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
                params=params,
                options={"idempotency_key": idempotency_key("checkout-gift", request.gift_id)},
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe refused or did not answer: {type(exc).__name__}") from exc
        if not session.url:
            raise GatewayError("Stripe returned a session without a URL")
        return CheckoutSession(id=session.id, url=session.url)

    def refund(self, request: RefundParams) -> str:
        words = request.reason.strip()
        params: RefundCreateParams = {
            "amount": request.amount_cents,
            "reason": words.lower() if words.lower() in STRIPE_REFUND_REASONS else "requested_by_customer",
            "metadata": {METADATA_KEY: installation_id(), "gift_id": str(request.gift_id), "reason": words[:500]},
        }
        if request.payment_intent_id:
            params["payment_intent"] = request.payment_intent_id
        elif request.charge_id:
            params["charge"] = request.charge_id
        try:
            refund = self.client.v1.refunds.create(
                params=params,
                options={"idempotency_key": request.idempotency_key},
            )
        except _REFUSALS as exc:
            raise GatewayRefused(f"Stripe refused the refund: {exc.user_message or type(exc).__name__}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe did not answer: {type(exc).__name__}") from exc
        return refund.id

    def list_events(self, *, created_gte: int, starting_after: str | None = None, limit: int = 100) -> EventPage:
        params: EventListParams = {"created": {"gte": created_gte}, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        try:
            page = self.client.v1.events.list(params=params)
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's Events list failed: {type(exc).__name__}") from exc
        return EventPage(events=[event.to_dict(for_json=True) for event in page.data], has_more=bool(page.has_more))

    def retrieve_balance_transaction(self, balance_transaction_id: str) -> dict[str, Any]:
        try:
            return self.client.v1.balance_transactions.retrieve(balance_transaction_id).to_dict(for_json=True)
        except _REFUSALS as exc:
            raise GatewayRefused(f"Stripe refused: {exc.user_message or type(exc).__name__}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's balance transaction failed: {type(exc).__name__}") from exc

    def list_payout_balance_transactions(self, payout_id: str) -> Iterator[dict[str, Any]]:
        params: BalanceTransactionListParams = {"payout": payout_id, "limit": 100, "expand": ["data.source"]}
        try:
            page = self.client.v1.balance_transactions.list(params=params)
            for transaction in page.auto_paging_iter():
                yield transaction.to_dict(for_json=True)
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's payout transactions failed: {type(exc).__name__}") from exc

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        try:
            page = self.client.v1.invoice_payments.list(params={"invoice": invoice_id, "status": "paid", "limit": 10})
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's invoice payments did not answer: {type(exc).__name__}") from exc
        for payment in page.data:
            intent = (payment.to_dict(for_json=True).get("payment") or {}).get("payment_intent")
            if isinstance(intent, dict):
                intent = intent.get("id")
            if isinstance(intent, str) and intent:
                return intent
        return None

    def create_billing_portal_session(
        self, customer_id: str, return_url: str, configuration_id: str | None = None
    ) -> str:
        params: PortalSessionCreateParams = {"customer": customer_id, "return_url": return_url}
        if configuration_id:
            params["configuration"] = configuration_id
        try:
            session = self.client.v1.billing_portal.sessions.create(params=params)
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's Billing Portal did not answer: {type(exc).__name__}") from exc
        return session.url

    def set_up_account(self, plan: AccountPlan) -> AccountSetUp:
        return StripeAccountSetUp(self.client, installation_id()).apply(plan)

    def check_account(self, plan: AccountPlan) -> AccountCheck:
        return StripeAccountSetUp(self.client, installation_id()).compare(plan)

    def card_update_url(self, membership: Membership, return_url: str) -> str:
        """The Billing Portal opened straight at the card form (its payment_method_update flow)."""
        try:
            session = self.client.v1.billing_portal.sessions.create(
                params={
                    "customer": membership.stripe_customer_id or "",
                    "return_url": return_url,
                    "flow_data": {
                        "type": "payment_method_update",
                        "after_completion": {"type": "redirect", "redirect": {"return_url": return_url}},
                    },
                }
            )
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's Billing Portal did not answer: {type(exc).__name__}") from exc
        return session.url

    def update_membership(self, membership: Membership, update: MembershipUpdate) -> None:
        """One item's price replaced by new price_data on the same product, and the metadata's
        fund and frequency, with no proration: the member pays the new plan from the next
        renewal. A new frequency would restart the billing cycle today and charge at once
        (Stripe's rule when the interval changes); a trial until the current period's end
        keeps the paid period and starts the new frequency at the renewal instead."""
        subscription_id = membership.stripe_subscription_id or ""
        item = self._subscription_item(subscription_id)
        price = item.get("price") or {}
        product = price.get("product")
        product = product.get("id") if isinstance(product, dict) else product
        if not (isinstance(product, str) and product):  # a price without a product: refuse, not guess
            raise GatewayRefused("Stripe named no product for this membership's price")
        interval = FREQUENCY_INTERVAL[update.frequency]
        price_data: SubscriptionUpdateParamsItemPriceData = {
            "currency": membership.currency,
            "product": product,
            "unit_amount": update.amount_cents,
            "recurring": {"interval": interval},
        }
        params: SubscriptionUpdateParams = {
            "items": [{"id": item["id"], "price_data": price_data}],
            "metadata": {METADATA_KEY: installation_id(), "fund": update.fund_slug, "frequency": update.frequency},
            "proration_behavior": "none",
        }
        period_end = membership.current_period_end
        if interval != (price.get("recurring") or {}).get("interval", membership.interval) and period_end:
            params["trial_end"] = int(period_end.replace(tzinfo=UTC).timestamp())
        as_of = int((membership.amount_as_of or membership.created_at).replace(tzinfo=UTC).timestamp())
        key = idempotency_key(
            "membership-change", membership.id, as_of, update.amount_cents, interval, update.fund_slug
        )
        self._update_subscription(subscription_id, params, key)

    supports_pause = True

    def pause_membership(self, membership: Membership, resumes_at: datetime) -> None:
        """pause_collection with `void`: the invoices of the skipped periods are voided, nothing
        is owed for them; collection resumes by itself at `resumes_at`."""
        resumes = int(resumes_at.replace(tzinfo=UTC).timestamp())
        params: SubscriptionUpdateParams = {"pause_collection": {"behavior": "void", "resumes_at": resumes}}
        key = idempotency_key("membership-pause", membership.id, resumes)
        self._update_subscription(membership.stripe_subscription_id or "", params, key)

    def resume_membership(self, membership: Membership) -> None:
        until = int((membership.paused_until or datetime(1970, 1, 1)).replace(tzinfo=UTC).timestamp())
        key = idempotency_key("membership-resume", membership.id, until)
        self._update_subscription(membership.stripe_subscription_id or "", {"pause_collection": ""}, key)

    def _subscription_item(self, subscription_id: str) -> dict[str, Any]:
        try:
            subscription = self.client.v1.subscriptions.retrieve(subscription_id).to_dict(for_json=True)
        except _REFUSALS as exc:
            raise GatewayRefused(f"Stripe refused: {exc.user_message or type(exc).__name__}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe's subscription did not answer: {type(exc).__name__}") from exc
        items = [item for item in (subscription.get("items") or {}).get("data") or [] if isinstance(item, dict)]
        if len(items) != 1:
            # A subscription of several items was made in the dashboard: its staff change it there.
            raise GatewayRefused(f"this subscription has {len(items)} items, not one")
        return items[0]

    def _update_subscription(self, subscription_id: str, params: SubscriptionUpdateParams, key: str) -> None:
        try:
            self.client.v1.subscriptions.update(subscription_id, params=params, options={"idempotency_key": key})
        except _REFUSALS as exc:
            raise GatewayRefused(f"Stripe refused the change: {exc.user_message or type(exc).__name__}") from exc
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe did not answer: {type(exc).__name__}") from exc


@functools.lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str | None, timeout: float) -> stripe.StripeClient:
    """One client per process and configuration: its HTTP connections are kept and reused
    (a TLS handshake with Stripe per checkout otherwise). StripeClient is thread-safe."""
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else {},
        # Bounded: a slow Stripe must not hold a reader (or a worker) hostage.
        http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=1,
    )
