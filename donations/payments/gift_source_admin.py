"""Adding, listing and removing gift sources (CLI and staff page), audited; adding one applies
the stored events it turns into gifts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.extensions import db
from donations.ledger.models import Fund
from donations.payments import events
from donations.payments.gift_sources import (
    KIND_PREFIXES,
    KINDS,
    GiftSourceError,
    Keys,
    matching_rule,
)
from donations.payments.models import GiftSourceRule, NotGift, StripeEvent

_STRIPE_ID = re.compile(r"^[A-Za-z0-9_]{6,255}$")
_METADATA = re.compile(r"^metadata:([A-Za-z0-9_.\-]{1,40})=(.{1,200})$")
PAYMENT_KINDS = ("one_time", "subscription_checkout", "invoice", "subscription")


def parse_source(spec: str) -> tuple[str, str]:
    """`plink_...`, `prod_...`, `price_...` or `metadata:KEY=VALUE` as (kind, value)."""
    spec = spec.strip()
    matched = _METADATA.match(spec)
    if matched:
        return "metadata", f"{matched.group(1)}={matched.group(2)}"
    for prefix, kind in KIND_PREFIXES.items():
        if spec.startswith(prefix) and _STRIPE_ID.match(spec):
            return kind, spec
    raise GiftSourceError(
        f"{spec[:80]!r} is not a gift source: give a Payment Link (plink_...), a Product (prod_...), "
        "a Price (price_...) or metadata:KEY=VALUE"
    )


@dataclass(frozen=True)
class Added:
    rule: GiftSourceRule
    events_applied: int
    events_waiting: int


def add_source(spec: str, fund_slug: str | None, actor: StaffUser | str, remote_addr: str | None = None) -> Added:
    kind, value = parse_source(spec)
    fund = None
    if fund_slug:
        fund = db.session.scalar(select(Fund).where(Fund.slug == fund_slug.strip()))
        if fund is None:
            raise GiftSourceError(f"there is no fund {fund_slug[:80]!r}")
        if fund.sponsor_held:
            raise GiftSourceError(f"{fund.name} is held by {fund.sponsor_name}: its gifts never come through Stripe")
    if db.session.scalar(select(GiftSourceRule.id).where(GiftSourceRule.value == value)):
        raise GiftSourceError(f"{value} is already a gift source")
    rule = GiftSourceRule(
        kind=kind,
        value=value,
        fund_id=fund.id if fund else None,
        created_by=actor.email if isinstance(actor, StaffUser) else actor,
    )
    db.session.add(rule)
    db.session.flush()
    applied, waiting = apply_stored_events(rule)
    audit(
        "gift_source.add",
        actor=actor,
        target_type="gift_source",
        target_id=rule.id,
        details={"kind": kind, "value": value, "fund": fund.slug if fund else None, "events_applied": applied},
        remote_addr=remote_addr,
    )
    return Added(rule, applied, waiting)


def remove_source(rule_id: int, actor: StaffUser | str, remote_addr: str | None = None) -> GiftSourceRule:
    """Later payments through it are not gifts; the gifts already recorded stay (append-only)."""
    rule = db.session.get(GiftSourceRule, rule_id)
    if rule is None:
        raise GiftSourceError(f"there is no gift source {rule_id}")
    audit(
        "gift_source.remove",
        actor=actor,
        target_type="gift_source",
        target_id=rule.id,
        details={"kind": rule.kind, "value": rule.value},
        remote_addr=remote_addr,
    )
    db.session.delete(rule)
    db.session.flush()
    return rule


def list_sources() -> list[tuple[GiftSourceRule, str | None]]:
    rows = db.session.execute(
        select(GiftSourceRule, Fund.slug).outerjoin(Fund, Fund.id == GiftSourceRule.fund_id).order_by(GiftSourceRule.id)
    )
    return [(rule, slug) for rule, slug in rows]


def _keys_of(row: NotGift) -> Keys:
    sources = row.sources or {}
    return Keys(
        metadata=sources.get("metadata") or {},
        payment_link=sources.get("payment_link"),
        products=tuple(sources.get("products") or ()),
        prices=tuple(sources.get("prices") or ()),
    )


def apply_stored_events(rule: GiftSourceRule) -> tuple[int, int]:
    """Re-apply the stored events a new gift source makes gifts of (and then those of their
    subscriptions, refunds and disputes). Returns (applied, still waiting)."""
    matched = [
        row
        for row in db.session.scalars(select(NotGift).where(NotGift.kind.in_(PAYMENT_KINDS)))
        if matching_rule(_keys_of(row), [rule]) is not None
    ]
    if not matched:
        return 0, 0
    intents = {row.payment_intent_id for row in matched if row.payment_intent_id}
    subscriptions = {row.subscription_id for row in matched if row.subscription_id}
    invoices = {row.invoice_id for row in matched if row.invoice_id}
    related = list(
        db.session.scalars(
            select(NotGift).where(
                NotGift.payment_intent_id.in_(intents)
                | NotGift.subscription_id.in_(subscriptions)
                | NotGift.invoice_id.in_(invoices)
            )
        )
    )
    event_ids = {row.event_id for row in [*matched, *related]}
    db.session.execute(delete(NotGift).where(NotGift.event_id.in_(event_ids)))
    stored = db.session.scalars(
        select(StripeEvent).where(StripeEvent.id.in_(event_ids)).order_by(StripeEvent.created_at, StripeEvent.id)
    ).all()
    # Payments before the refunds and disputes of them, each in Stripe's order.
    stored = sorted(stored, key=lambda event: (event.type.startswith(("refund", "charge.")), event.created_at))
    applied = waiting = 0
    for event in stored:
        if events.reapply(event) is events.Outcome.DEFERRED:
            waiting += 1
        else:
            applied += 1
    return applied, waiting


def counts_by_kind() -> list[tuple[str, int, int]]:
    """(kind in words, objects, events) of what is kept as not a gift."""
    rows = db.session.execute(
        select(NotGift.kind, func.count(func.distinct(NotGift.object_id)), func.count()).group_by(NotGift.kind)
    )
    return [(KINDS.get(kind, kind), objects, count) for kind, objects, count in rows]


def top_sources(limit: int = 50) -> list[tuple[str, str, int]]:
    """(kind, id, objects) of the Payment Links, Products and Prices seen on what is not a gift,
    most used first: what staff may mark as gift sources."""
    seen: dict[tuple[str, str], set[str]] = {}
    for row in db.session.scalars(select(NotGift).where(NotGift.kind.in_(PAYMENT_KINDS))):
        keys = _keys_of(row)
        found = [("payment_link", keys.payment_link)] if keys.payment_link else []
        found += [("product", product) for product in keys.products]
        found += [("price", price) for price in keys.prices]
        for pair in found:
            seen.setdefault(pair, set()).add(row.object_id)
    ranked = sorted(seen.items(), key=lambda item: (-len(item[1]), item[0]))
    return [(kind, value, len(objects)) for (kind, value), objects in ranked[:limit]]
