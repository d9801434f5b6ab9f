"""Stripe's webhook signature scheme, both ways.

Verification is the `stripe` library's own (`WebhookSignature.verify_header`); signing is used
by the local gateway, and by the tests, to produce exactly what Stripe would send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import stripe


class InvalidEvent(ValueError):
    """The request is not a genuine, fresh, well-formed Stripe event: answer 400."""


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(payload: bytes, header: str | None, secret: str, tolerance: int) -> dict[str, Any]:
    if not header:
        raise InvalidEvent("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret, tolerance)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"bad signature: {exc}") from None
    try:
        event = json.loads(payload)
    except ValueError:
        raise InvalidEvent("body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
        and 0 < len(event["type"]) <= 100
        and isinstance(event.get("created"), int)
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidEvent("body is not a Stripe event")
    return event
