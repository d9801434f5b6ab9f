"""Stripe events for tests, built from Stripe's own example objects, vendored in
tests/fixtures/stripe/fixtures3.json with their MIT notice (copied, then ids, amounts, emails and times overridden), and
signed with Stripe's real scheme."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from donations.payments import events
from donations.payments.signing import sign

# The installation id tests/conftest.py gives every test database: objects carrying it in their
# metadata are the app's own. Pass `metadata={}` (or another) for the account's other business.
TEST_INSTALLATION_ID = "inst_tests0000000001"
OURS = {"installation": TEST_INSTALLATION_ID}


def insert_test_installation(connection: Any) -> None:
    """Give an emptied test database its installation id (tests/conftest.py does it per test)."""
    from datetime import datetime

    from sqlalchemy import text

    connection.execute(
        text("INSERT INTO installation (key, installation_id, created_at) VALUES ('this', :id, :now)"),
        {"id": TEST_INSTALLATION_ID, "now": datetime(2026, 1, 1)},
    )


FIXTURES_PATH = Path(__file__).resolve().parent / "fixtures" / "stripe" / "fixtures3.json"
_counter = itertools.count(1)


@functools.cache
def _resources() -> dict[str, Any]:
    with FIXTURES_PATH.open() as handle:
        return json.load(handle)["resources"]


def unique(prefix: str) -> str:
    return f"{prefix}_test{next(_counter):08d}{int(time.time() * 1000) % 10**8}"


def _merge(target: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict) and value:
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def stripe_object(resource: str, **overrides: Any) -> dict[str, Any]:
    """A copy of Stripe's example `resource` object with `overrides` merged in (nested dicts merge;
    an empty dict or any other value replaces)."""
    return _merge(copy.deepcopy(_resources()[resource]), overrides)


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return stripe_object(
        "event",
        id=event_id or unique("evt"),
        type=event_type,
        created=int(time.time()) if created is None else created,
        api_version="2026-10-28.endive",
        data={},
    ) | {"data": data}


def checkout_session(
    *,
    amount_cents: int = 5000,
    email: str = "reader@example.org",
    name: str | None = "Rae Reader",
    session_id: str | None = None,
    payment_intent: str | None = None,
    metadata: dict[str, str] | None = None,
    mode: str = "payment",
    payment_status: str = "paid",
    business_name: str | None = None,
    subscription: str | None = None,
    customer: str | None = None,
) -> dict[str, Any]:
    return stripe_object(
        "checkout.session",
        id=session_id or unique("cs"),
        amount_subtotal=amount_cents,
        amount_total=amount_cents,
        currency="usd",
        mode=mode,
        payment_status=payment_status,
        status="complete",
        payment_intent=payment_intent or (unique("pi") if mode == "payment" else None),
        subscription=subscription,
        customer=customer or unique("cus"),
        metadata=dict(OURS) if metadata is None else metadata,
        customer_details={
            "email": email,
            "name": name,
            "business_name": business_name,
            "address": {"postal_code": "94110", "country": "US"},
        },
        customer_email=email,
    )


def subscription(
    *,
    subscription_id: str | None = None,
    amount_cents: int = 1500,
    interval: str = "month",
    status: str = "active",
    customer: str | None = None,
    metadata: dict[str, str] | None = None,
    start_date: int = 1_767_225_600,
    current_period_start: int | None = None,
    current_period_end: int | None = None,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    ended_at: int | None = None,
    pause_collection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A subscription with one item (current API: the period lives on the item), not paused
    unless `pause_collection` says so (Stripe's example object is paused)."""
    subscription_id = subscription_id or unique("sub")
    period_start = current_period_start or start_date
    period_end = current_period_end or period_start + (31 if interval == "month" else 365) * 86_400
    item = _merge(
        copy.deepcopy(_resources()["subscription"]["items"]["data"][0]),
        {
            "id": unique("si"),
            "subscription": subscription_id,
            "quantity": 1,
            "current_period_start": period_start,
            "current_period_end": period_end,
            "price": {
                "id": unique("price"),
                "unit_amount": amount_cents,
                "unit_amount_decimal": str(amount_cents),
                "recurring": {"interval": interval, "interval_count": 1},
            },
            "plan": {"amount": amount_cents, "currency": "usd", "interval": interval, "interval_count": 1},
        },
    )
    return stripe_object(
        "subscription",
        id=subscription_id,
        customer=customer or unique("cus"),
        status=status,
        metadata=dict(OURS) if metadata is None else metadata,
        start_date=start_date,
        created=start_date,
        billing_cycle_anchor=start_date,
        cancel_at_period_end=cancel_at_period_end,
        cancel_at=None,
        canceled_at=canceled_at,
        ended_at=(ended_at or canceled_at) if status == "canceled" else None,
        trial_start=None,
        trial_end=None,
        pending_update=None,
        pause_collection=pause_collection,
        items={"object": "list", "data": [item], "has_more": False},
    )


def invoice(
    *,
    subscription: str,
    invoice_id: str | None = None,
    amount_cents: int = 1500,
    paid_at: int | None = None,
    period_start: int = 1_767_225_600,
    period_end: int | None = None,
    billing_reason: str = "subscription_cycle",
    paid: bool = True,
    customer: str | None = None,
    email: str | None = "reader@example.org",
    name: str | None = "Rae Reader",
    metadata: dict[str, str] | None = None,
    attempt_count: int = 1,
) -> dict[str, Any]:
    """A subscription's invoice (current API: the subscription under parent.subscription_details)."""
    invoice_id = invoice_id or unique("in")
    period_end = period_end or period_start + 31 * 86_400
    line = stripe_object(
        "line_item",
        id=unique("il"),
        invoice=invoice_id,
        amount=amount_cents,
        subtotal=amount_cents,
        description="1 x Membership",
        period={"start": period_start, "end": period_end},
        subscription=subscription,
        parent={
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "subscription": subscription,
                "subscription_item": unique("si"),
                "proration": False,
                "proration_details": {"credited_items": None},
            },
        },
        pricing={"type": "price_details", "price_details": {"price": unique("price"), "product": unique("prod")}},
    )
    return stripe_object(
        "invoice",
        id=invoice_id,
        amount_due=amount_cents,
        amount_paid=amount_cents if paid else 0,
        amount_remaining=0 if paid else amount_cents,
        amount_overpaid=0,
        attempt_count=attempt_count,
        attempted=True,
        billing_reason=billing_reason,
        customer=customer or unique("cus"),
        customer_email=email,
        customer_name=name,
        customer_address={"postal_code": "94110", "country": "US"},
        lines={"object": "list", "data": [line], "has_more": False},
        parent={
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "subscription": subscription,
                "metadata": dict(OURS) if metadata is None else metadata,
            },
        },
        period_start=period_start,
        period_end=period_start,
        status="paid" if paid else "open",
        status_transitions={"finalized_at": period_start, "paid_at": paid_at if paid else None},
        subtotal=amount_cents,
        total=amount_cents,
        shipping_cost=None,
        from_invoice=None,
        last_finalization_error=None,
    )


def invoice_payment(
    *, invoice_id: str, amount_cents: int = 1500, payment_intent: str | None = None, paid_at: int | None = None
) -> dict[str, Any]:
    return stripe_object(
        "invoice_payment",
        id=unique("inpay"),
        invoice=invoice_id,
        amount_paid=amount_cents,
        amount_requested=amount_cents,
        currency="usd",
        is_default=True,
        livemode=False,
        payment={"type": "payment_intent", "payment_intent": payment_intent or unique("pi")},
        status="paid",
        status_transitions={"paid_at": paid_at, "canceled_at": None},
    )


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    return {"Stripe-Signature": sign(body, secret, timestamp), "Content-Type": "application/json"}


class Delivery:
    """A webhook's answer, and what the worker's apply step then did with its event: `json`
    is the webhook's body plus `outcome` (applied, ignored, deferred; duplicate when the event
    was applied before). Everything else is the response's."""

    def __init__(self, response: Any, outcome: str | None) -> None:
        self.response = response
        self.json = dict(response.json or {})
        if outcome is not None:
            self.json["outcome"] = outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self.response, name)


def apply_events(app: Flask) -> dict[str, str]:
    """Run the worker's apply step until nothing is due, in an app context (so a database
    session) of its own, as the worker process would: {event id: what became of it}."""
    with app.app_context():
        return {event_id: outcome.value for event_id, outcome in events.apply_pending()}


def post_event(client: FlaskClient, payload: dict[str, Any], secret: str, timestamp: int | None = None) -> Delivery:
    """Deliver a signed event to the webhook (which only stores it), then run the worker's apply
    step, so a test sees the event's effect at once, as a worker running alongside would."""
    body = json.dumps(payload).encode()
    response = client.post("/stripe/webhook", data=body, headers=signed_headers(body, secret, timestamp))
    return Delivery(response, _outcome(client.application, response))


def _outcome(app: Flask, response: Any) -> str | None:
    if response.status_code != 200:
        return None
    applied = apply_events(app)
    return applied.get(response.json["id"], "duplicate")


def post_at_once(
    app: Flask, payloads: list[dict[str, Any]], secret: str, workers: int | None = None
) -> list[tuple[int, str | None]]:
    """Concurrent deliveries: each payload posted from its own thread and app context (so its own
    session and connection), all released together; then as many concurrent workers (threads,
    each with its own session) apply them, all released together. (status, outcome) of each
    delivery: what the workers did with its event, or duplicate for a repeat of an event."""
    barrier = threading.Barrier(len(payloads))
    answers: list[tuple[int, str]] = []

    def deliver(payload: dict[str, Any]) -> None:
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            body = json.dumps(payload).encode()
            response = client.post("/stripe/webhook", data=body, headers=signed_headers(body, secret))
            answers.append((response.status_code, payload["id"]))

    _run_together([functools.partial(deliver, payload) for payload in payloads])
    outcomes: dict[str, str] = {}
    count = workers or len(payloads)
    start = threading.Barrier(count)

    def work() -> None:
        with app.app_context():
            start.wait()
            for event_id, outcome in events.apply_pending():
                outcomes[event_id] = outcome.value

    _run_together([work] * count)
    seen: set[str] = set()
    results: list[tuple[int, str | None]] = []
    for status, event_id in answers:
        if status != 200:
            results.append((status, None))
            continue
        results.append((status, "duplicate" if event_id in seen or event_id not in outcomes else outcomes[event_id]))
        seen.add(event_id)
    return results


def _run_together(targets: list[Any]) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
