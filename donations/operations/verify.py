"""`ledger verify`: the invariants the design promises, checked against the database.

Each check returns its violations, each with the rows involved, so that staff can look them up.
Run by hand (`flask --app wsgi ledger verify`, non-zero exit on any violation), after a restore,
and daily by the worker (its result is on /healthz, /metrics and the staff schedules page).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, exists, func, literal, or_, select

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.currency import newsroom_currency
from donations.ledger.models import RECEIVED_STATUSES, Gift, GiftSource, GiftStatus, Membership, Reversal
from donations.payments.models import StripeEvent

# Stripe keeps a checkout open 24 hours and then sends checkout.session.expired; the worker (or
# the daily sync) applies it. A pending gift older than this is one whose expiry was missed.
PENDING_GRACE = timedelta(hours=24) + timedelta(hours=6)
SHOWN = 50  # rows listed per violation kind; the count is always complete


@dataclass(frozen=True)
class Violation:
    check: str
    message: str
    rows: dict[str, Any]

    def __str__(self) -> str:
        rows = ", ".join(f"{key}={value}" for key, value in self.rows.items())
        return f"[{self.check}] {self.message} ({rows})"


def _object_id() -> Any:
    return StripeEvent.payload["data"]["object"]["id"].as_string()


def paid_stripe_gifts_have_their_event() -> Iterator[Violation]:
    """Every received Stripe gift came from an applied event naming its checkout session or its
    invoice (a gift is recorded from an event alone)."""
    applied = StripeEvent.applied_at.is_not(None)
    has_event = or_(
        exists().where(applied, _object_id() == Gift.stripe_checkout_session_id),
        exists().where(applied, _object_id() == Gift.stripe_invoice_id),
        exists().where(applied, StripeEvent.payload["data"]["object"]["invoice"].as_string() == Gift.stripe_invoice_id),
    )
    query = select(Gift.id, Gift.stripe_checkout_session_id, Gift.stripe_invoice_id).where(
        Gift.source == GiftSource.STRIPE,
        Gift.status.in_(RECEIVED_STATUSES),
        or_(Gift.stripe_checkout_session_id.is_not(None), Gift.stripe_invoice_id.is_not(None)),
        ~has_event,
    )
    for gift_id, session_id, invoice_id in db.session.execute(query.order_by(Gift.id).limit(SHOWN)):
        yield Violation(
            "gift-without-event",
            "a paid Stripe gift has no applied event",
            {"gift": gift_id, "session": session_id, "invoice": invoice_id},
        )


def reversals_never_exceed_their_gift() -> Iterator[Violation]:
    reversed_total = func.sum(Reversal.amount_cents)
    query = (
        select(Gift.id, Gift.amount_cents, reversed_total)
        .join(Reversal, Reversal.gift_id == Gift.id)
        .group_by(Gift.id, Gift.amount_cents)
        .having(reversed_total > Gift.amount_cents)
        .order_by(Gift.id)
        .limit(SHOWN)
    )
    for gift_id, amount, total in db.session.execute(query):
        yield Violation(
            "reversals-exceed-gift",
            "reversals add up to more than the gift",
            {"gift": gift_id, "gift_cents": amount, "reversed_cents": total},
        )


def installments_match_paid_invoices() -> Iterator[Violation]:
    """Each membership's installments are exactly its paid invoices: one gift per invoice.paid
    event applied for its subscription (in the newsroom's currency, for a positive amount)."""
    invoice = StripeEvent.payload["data"]["object"]
    # The JSON paths in a subquery first: PostgreSQL cannot group by an expression whose path is
    # a bound parameter (each mention is another parameter).
    paid = (
        select(
            func.coalesce(  # current API versions, then older ones
                invoice["parent"]["subscription_details"]["subscription"].as_string(),
                invoice["subscription"].as_string(),
            ).label("subscription"),
            invoice["id"].as_string().label("invoice"),
        )
        .where(
            StripeEvent.type == "invoice.paid",
            StripeEvent.applied_at.is_not(None),
            StripeEvent.error.is_(None),
            invoice["amount_paid"].as_integer() > 0,
            func.lower(invoice["currency"].as_string()) == newsroom_currency(),
        )
        .subquery()
    )
    paid_invoices = (
        select(paid.c.subscription, func.count(func.distinct(paid.c.invoice)).label("invoices"))
        .group_by(paid.c.subscription)
        .subquery()
    )
    installments = (
        select(Gift.membership_id, func.count(Gift.id).label("gifts"))
        .where(Gift.membership_id.is_not(None), Gift.stripe_invoice_id.is_not(None), Gift.status.in_(RECEIVED_STATUSES))
        .group_by(Gift.membership_id)
        .subquery()
    )
    gifts = func.coalesce(installments.c.gifts, literal(0, Integer))
    invoices = func.coalesce(paid_invoices.c.invoices, literal(0, Integer))
    query = (
        select(Membership.id, Membership.stripe_subscription_id, gifts, invoices)
        .outerjoin(installments, installments.c.membership_id == Membership.id)
        .outerjoin(paid_invoices, paid_invoices.c.subscription == Membership.stripe_subscription_id)
        .where(Membership.stripe_subscription_id.is_not(None), gifts != invoices)
        .order_by(Membership.id)
        .limit(SHOWN)
    )
    for membership_id, subscription_id, gift_count, invoice_count in db.session.execute(query):
        yield Violation(
            "installments-mismatch",
            "a membership's installments differ from its paid invoices",
            {
                "membership": membership_id,
                "subscription": subscription_id,
                "installments": gift_count,
                "paid_invoices": invoice_count,
            },
        )


def totals_only_in_the_newsroom_currency() -> Iterator[Violation]:
    """A payment in another currency is never a gift that counts: none is received."""
    query = (
        select(Gift.id, Gift.currency, Gift.amount_cents)
        .where(Gift.status.in_(RECEIVED_STATUSES), func.lower(Gift.currency) != newsroom_currency())
        .order_by(Gift.id)
        .limit(SHOWN)
    )
    for gift_id, currency, amount in db.session.execute(query):
        yield Violation(
            "foreign-currency-gift",
            f"a received gift is not in {newsroom_currency().upper()}",
            {"gift": gift_id, "currency": currency, "amount_cents": amount},
        )


def no_pending_gift_past_its_checkout() -> Iterator[Violation]:
    cutoff = utcnow() - PENDING_GRACE
    query = (
        select(Gift.id, Gift.stripe_checkout_session_id, Gift.created_at)
        .where(
            Gift.status == GiftStatus.PENDING,
            Gift.created_at < cutoff,
            Gift.stripe_checkout_session_id.is_not(None),
        )
        .order_by(Gift.id)
        .limit(SHOWN)
    )
    for gift_id, session_id, created_at in db.session.execute(query):
        yield Violation(
            "pending-past-expiry",
            "a gift is still pending after its checkout expired",
            {"gift": gift_id, "session": session_id, "created_at": created_at.isoformat()},
        )


def report_totals_agree() -> Iterator[Violation]:
    """For every grant program: the summary's counted and matchable totals equal the sums of
    the donors report and of the ledger report's gift lines."""
    from donations.operations.report_check import disagreements

    yield from disagreements()


CHECKS: list[Callable[[], Iterator[Violation]]] = [
    paid_stripe_gifts_have_their_event,
    reversals_never_exceed_their_gift,
    installments_match_paid_invoices,
    totals_only_in_the_newsroom_currency,
    no_pending_gift_past_its_checkout,
    report_totals_agree,
]


def verify_ledger() -> list[Violation]:
    """Every violation found (read only; the transaction is rolled back)."""
    try:
        return [violation for check in CHECKS for violation in check()]
    finally:
        db.session.rollback()
