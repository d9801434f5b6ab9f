"""Refund events: one reversal per Stripe refund id, whichever of these events tells us first.

`refund.created`, `refund.updated`, `refund.failed` (and the older `charge.refund.updated`) carry
the refund itself; `charge.refunded` carries the charge with its refunds listed. A refund whose
gift is not recorded yet is deferred: the event is kept and re-applied once the gift arrives.
"""

from __future__ import annotations

from typing import Any

from donations.clock import from_timestamp
from donations.ledger import reversals
from donations.ledger.models import ReversalKind
from donations.mail import service as mail
from donations.payments import gift_sources
from donations.payments.handlers import EventDeferred, StripeEventData, handles
from donations.payments.handlers.payload import object_id
from donations.webhooks import outbox as webhooks


def refund_facts(
    refund: dict[str, Any], event: StripeEventData, charge: dict[str, Any] | None = None
) -> reversals.RefundFacts:
    charge = charge or {}
    metadata = refund.get("metadata") or {}
    return reversals.RefundFacts(
        refund_id=refund["id"],
        amount_cents=int(refund["amount"]),
        currency=refund["currency"],
        status=refund.get("status") or "succeeded",
        created_at=from_timestamp(refund["created"]) if refund.get("created") else event.created,
        observed_at=event.created,
        charge_id=object_id(refund.get("charge")) or charge.get("id"),
        payment_intent_id=object_id(refund.get("payment_intent")) or object_id(charge.get("payment_intent")),
        # Our own refunds carry the staff member's words; others have Stripe's reason code.
        reason=metadata.get("reason") or refund.get("reason"),
    )


def apply(facts: reversals.RefundFacts, event: StripeEventData) -> None:
    try:
        gift, written = reversals.apply_refund(facts)
    except reversals.GiftNotYetKnown as exc:
        if keep_not_ours(
            event, facts.refund_id, "refund", facts.charge_id, facts.payment_intent_id, facts.amount_cents
        ):
            return
        raise EventDeferred(str(exc)) from None
    except reversals.ReversalRefused as exc:
        raise EventDeferred(str(exc)) from None
    for entry in written:
        webhooks.gift_reversed(entry, gift)
    if facts.status in reversals.REFUND_FAILED_STATUSES:
        return
    for entry in written:
        if entry.kind == ReversalKind.REFUND:
            mail.queue_refund_confirmed(entry, gift.donor)


def keep_not_ours(
    event: StripeEventData,
    object_id_: str,
    kind: str,
    charge_id: str | None,
    payment_intent_id: str | None,
    amount_cents: int | None = None,
) -> bool:
    """A refund or dispute of a payment kept as not a gift: not ours, kept apart, never failing."""
    if not gift_sources.not_ours(charge_id=charge_id, payment_intent_id=payment_intent_id):
        return False
    gift_sources.record_not_gift(
        event_id=event.id,
        object_id=object_id_,
        kind=kind,
        amount_cents=amount_cents,
        payment_intent_id=payment_intent_id,
        charge_id=charge_id,
    )
    return True


@handles("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
def refund_changed(event: StripeEventData) -> None:
    apply(refund_facts(event.object, event), event)


@handles("charge.refunded")
def charge_refunded(event: StripeEventData) -> None:
    charge = event.object
    try:
        reversals.link_charge(
            charge["id"], object_id(charge.get("payment_intent")), object_id(charge.get("balance_transaction"))
        )
    except reversals.GiftNotYetKnown as exc:
        charge_id, intent = object_id(charge.get("id")), object_id(charge.get("payment_intent"))
        if keep_not_ours(event, charge_id or "", "refund", charge_id, intent, charge.get("amount_refunded")):
            return
        raise EventDeferred(str(exc)) from None
    # Current API versions leave the refunds out of the charge; the refund.* events carry them.
    for refund in (charge.get("refunds") or {}).get("data") or []:
        apply(refund_facts(refund, event, charge), event)
