"""The signature every delivery carries, `Donations-Signature: t=TIMESTAMP,v1=HEX`, where HEX is
HMAC-SHA256 of f"{TIMESTAMP}.{BODY}" under the endpoint's secret (README "Outgoing webhooks"
has a receiver's side of it). The timestamp is the attempt's, so a receiver refuses replays of
an old request; the body (and the event id in it) is the same on every attempt."""

from __future__ import annotations

import hashlib
import hmac
import secrets

HEADER = "Donations-Signature"
SECRET_PREFIX = "whsec_"
REPLAY_TOLERANCE_SECONDS = 300  # what the README tells receivers to accept


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header_value(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = REPLAY_TOLERANCE_SECONDS) -> bool:
    """A receiver's check (the README's example, and the tests' receiver): a v1 signature of
    this body at a timestamp within `tolerance` seconds of `now`."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), signature(secret, timestamp, body))
