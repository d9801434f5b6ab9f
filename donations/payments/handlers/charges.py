"""`charge.succeeded`: the card a gift was paid with, for its receipt and statements.

Stripe sends it around the gift's checkout event, before or after it: a charge of our own
checkout names its gift in the metadata we set; any other waits (deferred) for its gift.
"""

from __future__ import annotations

from donations.ledger import service as ledger
from donations.payments import gift_sources
from donations.payments.handlers import EventDeferred, StripeEventData, handles
from donations.payments.handlers.payload import field, object_id, text


@handles("charge.succeeded")
def charge_succeeded(event: StripeEventData) -> None:
    charge = event.object
    last4 = field(charge, "payment_method_details", "card", "last4")
    if not (isinstance(last4, str) and len(last4) == 4 and last4.isascii() and last4.isdigit()):
        return  # not a card (a bank debit): nothing to note
    gift_id = str(field(charge, "metadata", "gift_id") or "")
    payment_intent_id = object_id(charge.get("payment_intent"))
    gift = ledger.record_card(
        charge_id=text(charge.get("id"), 255),
        payment_intent_id=payment_intent_id,
        gift_id=int(gift_id) if gift_id.isascii() and gift_id.isdigit() and len(gift_id) < 19 else None,
        last4=last4,
    )
    if gift is None:
        if gift_sources.not_ours(charge_id=text(charge.get("id"), 255), payment_intent_id=payment_intent_id):
            return  # the card of a payment that is not a gift: nothing to note
        raise EventDeferred(f"no gift is recorded for payment intent {payment_intent_id} yet")
