"""Stripe events for tests, built from Stripe's own example objects in
../shared/stripe/fixtures3.json (copied, then ids, amounts, emails and times overridden), and
signed with Stripe's real scheme."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import time
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from donations.payments.signing import sign

FIXTURES_PATH = Path(__file__).resolve().parents[2] / "shared" / "stripe" / "fixtures3.json"
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
        metadata=metadata or {},
        customer_details={
            "email": email,
            "name": name,
            "business_name": business_name,
            "address": {"postal_code": "94110", "country": "US"},
        },
        customer_email=email,
    )


def signed_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    return {"Stripe-Signature": sign(body, secret, timestamp), "Content-Type": "application/json"}


def post_event(client: FlaskClient, payload: dict[str, Any], secret: str, timestamp: int | None = None):  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode()
    return client.post("/stripe/webhook", data=body, headers=signed_headers(body, secret, timestamp))
