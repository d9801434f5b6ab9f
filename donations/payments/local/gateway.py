"""The local gateway: the embedded default when no Stripe key is configured.

It stands in for Stripe Checkout on this machine. Its checkout page takes a test card number;
paying builds a Stripe-shaped event, signs it with the webhook secret and hands it to the
webhook's own path (`events.receive_signed`: verify, store), so the real verification runs,
without HTTP to itself; then it runs the worker's apply step (`events.apply_pending`) at once,
standing in for a worker on this machine, so a local payment shows on the thank-you page at
once. Never allowed in production.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus, Membership
from donations.payments import events, signing
from donations.payments.gateway import (
    AccountCheck,
    AccountPlan,
    AccountSetUp,
    CheckoutRequest,
    CheckoutSession,
    EventPage,
    GatewayError,
    MembershipUpdate,
    RefundParams,
)

PAYING_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000002"
# Stripe expires an unpaid Checkout Session 24 hours after it was created (its default).
SESSION_LIFETIME = timedelta(hours=24)
NOTHING_TO_SET_UP = (
    "The local gateway has nothing to set up: its checkout, portal and events are this app's own. "
    "Set STRIPE_SECRET_KEY to set up a Stripe account."
)

log = logging.getLogger(__name__)


class LocalGateway:
    name = "local"

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = f"cs_local_{secrets.token_urlsafe(24)}"
        url = url_for("payments.local_checkout", session_id=session_id, cancel=request.cancel_url)
        return CheckoutSession(id=session_id, url=url)

    def invoice_payment_intent(self, invoice_id: str) -> str | None:
        """The local gateway's renewals name their payment intent on the invoice itself."""
        return None

    def refund(self, request: RefundParams) -> str:
        """Refund as Stripe would tell us: refund.created, then charge.refunded, both signed and
        delivered as the webhook's are. The refund id derives from the idempotency key, so a retried
        request names the same refund and the ledger records it once."""
        gift = db.session.get(Gift, request.gift_id)
        if gift is None or not request.payment_intent_id:
            raise GatewayError("the local gateway refunds only its own gifts")
        refund_id = "re_local_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        charge_id = gift.stripe_charge_id or request.payment_intent_id.replace("pi_", "ch_", 1)
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": request.amount_cents,
            "balance_transaction": None,
            "charge": charge_id,
            "created": int(time.time()),
            "currency": request.currency,
            "metadata": {"gift_id": str(request.gift_id), "reason": request.reason[:500]},
            "payment_intent": request.payment_intent_id,
            "reason": "requested_by_customer",
            "status": "succeeded",
        }
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": gift.amount_cents,
            "currency": gift.currency,
            "paid": True,
            "payment_intent": request.payment_intent_id,
            "refunds": {"object": "list", "data": [refund], "has_more": False},
            "status": "succeeded",
        }
        for payload in (event("refund.created", refund), event("charge.refunded", charge)):
            if not deliver(payload):
                raise GatewayError(f"the local gateway's {payload['type']} event was not taken")
        return refund_id

    def list_events(self, *, created_gte: int, starting_after: str | None = None, limit: int = 100) -> EventPage:
        # Every local event is delivered as it happens: there is nothing to recover.
        return EventPage(events=[], has_more=False)

    def retrieve_balance_transaction(self, balance_transaction_id: str) -> dict[str, Any]:
        raise GatewayError("the local gateway keeps no balance transactions")

    def list_payout_balance_transactions(self, payout_id: str) -> Iterator[dict[str, Any]]:
        return iter(())

    def create_billing_portal_session(
        self, customer_id: str, return_url: str, configuration_id: str | None = None
    ) -> str:
        # The local stand-in for Stripe's Billing Portal (see donations/giving/membership_views.py).
        return url_for("membership.local_portal", customer_id=customer_id)

    def set_up_account(self, plan: AccountPlan) -> AccountSetUp:
        return AccountSetUp(note=NOTHING_TO_SET_UP)

    def check_account(self, plan: AccountPlan) -> AccountCheck:
        return AccountCheck(note=NOTHING_TO_SET_UP)

    def card_update_url(self, membership: Membership, return_url: str) -> str:
        return url_for("membership.local_portal", customer_id=membership.stripe_customer_id or "")

    def update_membership(self, membership: Membership, update: MembershipUpdate) -> None:
        from donations.payments.local import billing

        try:
            billing.change_plan(membership, update.amount_cents, update.frequency, update.fund_slug)
        except billing.LocalBillingError as exc:
            raise GatewayError(str(exc)) from exc

    supports_pause = True

    def pause_membership(self, membership: Membership, resumes_at: datetime) -> None:
        self._pause(membership, resumes_at)

    def resume_membership(self, membership: Membership) -> None:
        self._pause(membership, None)

    def _pause(self, membership: Membership, resumes_at: datetime | None) -> None:
        from donations.payments.local import billing

        try:
            billing.pause(membership, resumes_at)
        except billing.LocalBillingError as exc:
            raise GatewayError(str(exc)) from exc


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
    payment_intent_id: str | None = None,
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
        "payment_intent": (payment_intent_id or new_id("pi")) if mode == "payment" else None,
        "payment_link": None,
        "payment_status": "paid",
        "status": "complete",
        "subscription": subscription_id,
        "invoice": None,
        "created": int(time.time()),
    }


def succeeded_charge(
    *, payment_intent_id: str, amount_cents: int, currency: str, card_last4: str, metadata: dict[str, str]
) -> dict[str, Any]:
    """The charge of a paid checkout, as Stripe's `charge.succeeded` carries it: the card's last
    four digits are what the receipt shows."""
    return {
        "id": payment_intent_id.replace("pi_", "ch_", 1),
        "object": "charge",
        "amount": amount_cents,
        "currency": currency,
        "metadata": metadata,
        "paid": True,
        "payment_intent": payment_intent_id,
        "payment_method_details": {"type": "card", "card": {"brand": "visa", "last4": card_last4}},
        "status": "succeeded",
        "created": int(time.time()),
    }


def is_stale(gift: Gift, now: datetime) -> bool:
    return gift.status in (GiftStatus.PENDING, GiftStatus.FAILED) and gift.created_at <= now - SESSION_LIFETIME


def expire_session(session_id: str) -> bool:
    """Tell the ledger the session expired, as Stripe does when nobody paid it in time."""
    session = {"id": session_id, "object": "checkout.session", "status": "expired", "payment_status": "unpaid"}
    return deliver(event("checkout.session.expired", session))


def expire_stale_checkouts(now: datetime) -> int:
    """Expire every local checkout left unpaid for longer than Stripe keeps one open (run by
    `payments sync`); returns how many. Stripe sends these events itself."""
    session_ids = db.session.scalars(
        select(Gift.stripe_checkout_session_id).where(
            Gift.stripe_checkout_session_id.like("cs\\_local\\_%", escape="\\"),
            Gift.status.in_((GiftStatus.PENDING, GiftStatus.FAILED)),
            Gift.created_at <= now - SESSION_LIFETIME,
        )
    ).all()
    db.session.rollback()  # end the read: each event is applied in its own transaction
    expired = 0
    for session_id in session_ids:
        if session_id and expire_session(session_id):
            expired += 1
    return expired


def deliver(event_payload: dict[str, Any]) -> bool:
    """Sign the event as Stripe would and take it as the webhook takes a delivery (verified,
    stored), without HTTP; then apply what is due, as a worker would. False where the webhook
    would have answered an error (an event stored but not applied yet is the worker's)."""
    # Flask types current_app as the app itself, not as the proxy it is.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    body = json.dumps(event_payload).encode()
    header = signing.sign(body, app.config["STRIPE_WEBHOOK_SECRET"])
    # A fresh app context: the event is applied in its own database session and transaction,
    # as it would be in the separate request Stripe makes, and committed before this returns.
    with app.app_context():
        try:
            events.receive_signed(body, header)
        except (signing.InvalidEvent, DBAPIError) as exc:
            log.error("the local gateway's %s event was not taken: %s", event_payload["type"], exc)
            return False
    with app.app_context():
        try:
            events.apply_pending()
        except DBAPIError as exc:  # stored: a worker or `payments sync` applies it
            log.warning("the local gateway's %s event waits for the worker: %s", event_payload["type"], exc)
    return True
