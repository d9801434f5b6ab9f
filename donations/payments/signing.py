"""Stripe's webhook signature scheme, both ways.

Verification is the `stripe` library's own (`WebhookSignature.verify_header`); signing is used
by the local gateway, and by the tests, to produce exactly what Stripe would send.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

import stripe

# The shapes of Stripe's event ids and type names: only these are stored and dispatched.
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,251}", re.ASCII)
EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,100}", re.ASCII)
MAX_CREATED = 2**33  # seconds: the year 2242; a later `created` is no real event's


class InvalidEvent(ValueError):
    """The request is not a genuine, fresh, well-formed Stripe event: answer 400."""


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python reads them, JSON (and PostgreSQL's json type) does not."""
    raise ValueError(f"{constant} is not JSON")


def _timestamp(header: str) -> int:
    """The header's t= value (already checked to be there and an integer by Stripe's library)."""
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            return int(value)
    raise InvalidEvent("bad signature: no timestamp")


def verify(payload: bytes, header: str | None, secret: str, tolerance: int) -> dict[str, Any]:
    if not header:
        raise InvalidEvent("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret, tolerance)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"bad signature: {exc}") from None
    # Stripe's check refuses only old timestamps; one from the future is no fresher (a replay
    # signed ahead of time, or a clock far off), so it is refused the same way.
    if _timestamp(header) > time.time() + tolerance:
        raise InvalidEvent("bad signature: timestamp outside the tolerance zone")
    try:
        event = json.loads(payload, parse_constant=_not_json)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any event's
        raise InvalidEvent("body is not JSON") from None
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and EVENT_ID.fullmatch(event["id"])
        and isinstance(event.get("type"), str)
        and EVENT_TYPE.fullmatch(event["type"])
        and type(event.get("created")) is int  # not a bool
        and 0 < event["created"] < MAX_CREATED
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise InvalidEvent("body is not a Stripe event")
    return event
