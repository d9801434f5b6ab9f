"""Stripe's charge, refund, dispute, payout and balance-transaction objects for tests, built from
Stripe's own examples in fixtures3.json (through tests/stripe_events.py) with ids, amounts and
times overridden."""

from __future__ import annotations

from typing import Any

from tests import stripe_events as se


def refund(
    *,
    amount: int,
    payment_intent: str | None,
    charge: str | None = None,
    refund_id: str | None = None,
    status: str = "succeeded",
    created: int = 1_767_312_000,
    reason: str | None = "requested_by_customer",
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return se.stripe_object(
        "refund",
        id=refund_id or se.unique("re"),
        amount=amount,
        currency="usd",
        charge=charge or se.unique("ch"),
        payment_intent=payment_intent,
        status=status,
        created=created,
        reason=reason,
        metadata=metadata or {},
    )


def charge(
    *,
    amount: int,
    payment_intent: str | None,
    charge_id: str | None = None,
    refunds: list[dict[str, Any]] | None = None,
    balance_transaction: str | None = None,
) -> dict[str, Any]:
    """A charge as charge.refunded carries it: amount_refunded and refunds from `refunds`."""
    refunds = refunds or []
    refunded = sum(r["amount"] for r in refunds if r["status"] not in ("failed", "canceled"))
    return se.stripe_object(
        "charge",
        id=charge_id or se.unique("ch"),
        amount=amount,
        amount_captured=amount,
        amount_refunded=refunded,
        captured=True,
        currency="usd",
        payment_intent=payment_intent,
        balance_transaction=balance_transaction or se.unique("txn"),
        refunded=refunded >= amount,
        refunds={"data": refunds, "has_more": False},
    )


def dispute(
    *,
    amount: int,
    payment_intent: str | None,
    charge: str | None = None,
    dispute_id: str | None = None,
    status: str = "needs_response",
    due_by: int = 1_768_521_599,
    created: int = 1_767_398_400,
    reason: str = "fraudulent",
) -> dict[str, Any]:
    return se.stripe_object(
        "dispute",
        id=dispute_id or se.unique("du"),
        amount=amount,
        currency="usd",
        charge=charge or se.unique("ch"),
        payment_intent=payment_intent,
        status=status,
        reason=reason,
        created=created,
        evidence_details={"due_by": due_by},
    )


def payout(
    *, amount: int, payout_id: str | None = None, status: str = "paid", arrival: int = 1_767_571_200
) -> dict[str, Any]:
    return se.stripe_object(
        "payout",
        id=payout_id or se.unique("po"),
        amount=amount,
        currency="usd",
        status=status,
        arrival_date=arrival,
        created=arrival - 86_400,
    )


def balance_transaction(
    *,
    amount: int,
    fee: int,
    type: str,
    source: str | dict[str, Any],
    reporting_category: str | None = None,
    txn_id: str | None = None,
    created: int = 1_767_312_000,
) -> dict[str, Any]:
    return se.stripe_object(
        "balance_transaction",
        id=txn_id or se.unique("txn"),
        amount=amount,
        fee=fee,
        net=amount - fee,
        currency="usd",
        type=type,
        reporting_category=reporting_category or type,
        source=source,
        created=created,
        fee_details=[],
    )


def page(data: list[dict[str, Any]], *, has_more: bool, url: str) -> dict[str, Any]:
    """A Stripe list object, as the API answers a list request."""
    return {"object": "list", "data": data, "has_more": has_more, "url": url}
