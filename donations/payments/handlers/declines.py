"""Declined card payments, as Stripe reports them, feed the card-testing cool-down.

Stripe sends both `payment_intent.payment_failed` and `charge.failed` for one declined attempt;
only `charge.failed` is counted, so that each decline counts once. It carries the card's
fingerprint (the same card always has the same one) and the email Checkout collected. The
client's address is not in Stripe's events, so with the Stripe gateway the cool-down at
POST /give applies per email; the per-card count is kept for the same card coming back.
"""

from __future__ import annotations

from typing import Any

from donations.extensions import db
from donations.ledger import service as ledger
from donations.ledger.models import Gift
from donations.payments.handlers import StripeEventData, handles
from donations.payments.handlers.payload import field
from donations.protection import card_testing as protection


def _email_of(charge: dict[str, Any]) -> str | None:
    email = field(charge, "billing_details", "email") or field(charge, "receipt_email")
    if isinstance(email, str) and email:
        return email
    gift_id = _gift_id_of(charge)
    gift = db.session.get(Gift, gift_id) if gift_id is not None else None
    return gift.donor.email if gift is not None else None


def _gift_id_of(charge: dict[str, Any]) -> int | None:
    gift_id = str(field(charge, "metadata", "gift_id") or "")
    return int(gift_id) if gift_id.isascii() and gift_id.isdigit() and len(gift_id) < 19 else None


@handles("charge.failed")
def charge_failed(event: StripeEventData) -> None:
    gift_id = _gift_id_of(event.object)
    if gift_id is not None:
        ledger.decline_gift(gift_id)
    fingerprint = field(event.object, "payment_method_details", "card", "fingerprint")
    card = fingerprint if isinstance(fingerprint, str) and fingerprint else None
    email = _email_of(event.object)
    if card or email:
        protection.record_decline(email=email, card=card)
