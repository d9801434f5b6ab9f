"""Dispute events: a disputed gift is marked until the dispute closes; a lost one is reversed."""

from __future__ import annotations

from typing import Any

from donations.clock import from_timestamp
from donations.ledger import reversals
from donations.payments.handlers import EventDeferred, StripeEventData, handles
from donations.payments.handlers.payload import object_id
from donations.payments.handlers.refunds import keep_not_ours
from donations.webhooks import outbox as webhooks


def dispute_facts(dispute: dict[str, Any], event: StripeEventData) -> reversals.DisputeFacts:
    due_by = (dispute.get("evidence_details") or {}).get("due_by")
    return reversals.DisputeFacts(
        dispute_id=dispute["id"],
        amount_cents=int(dispute["amount"]),
        currency=dispute["currency"],
        status=dispute["status"],
        reason=dispute.get("reason"),
        evidence_due_by=from_timestamp(due_by) if due_by else None,
        created_at=from_timestamp(dispute["created"]) if dispute.get("created") else event.created,
        observed_at=event.created,
        charge_id=object_id(dispute.get("charge")),
        payment_intent_id=object_id(dispute.get("payment_intent")),
    )


def _not_ours(facts: reversals.DisputeFacts, event: StripeEventData) -> bool:
    return keep_not_ours(
        event, facts.dispute_id, "dispute", facts.charge_id, facts.payment_intent_id, facts.amount_cents
    )


@handles("charge.dispute.created", "charge.dispute.updated")
def dispute_opened(event: StripeEventData) -> None:
    facts = dispute_facts(event.object, event)
    try:
        reversals.open_dispute(facts)
    except reversals.GiftNotYetKnown as exc:
        if _not_ours(facts, event):
            return
        raise EventDeferred(str(exc)) from None
    except reversals.ReversalRefused as exc:
        raise EventDeferred(str(exc)) from None


@handles("charge.dispute.closed")
def dispute_closed(event: StripeEventData) -> None:
    facts = dispute_facts(event.object, event)
    try:
        _, written = reversals.close_dispute(facts)
    except reversals.GiftNotYetKnown as exc:
        if _not_ours(facts, event):
            return
        raise EventDeferred(str(exc)) from None
    except reversals.ReversalRefused as exc:
        raise EventDeferred(str(exc)) from None
    for entry in written:
        webhooks.gift_reversed(entry, entry.gift)
