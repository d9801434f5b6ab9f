"""What is a gift on a shared Stripe account.

A payment is a gift only if the app created it (its metadata names this installation, or, for
objects made before installation ids, carries the app's `gift_id`), or it came through a
Payment Link, Product or Price that staff marked as a gift source, or carries a metadata
KEY=VALUE they marked. A subscription is a membership when the app created it, its price or
product is a gift source, or a gift source's checkout started it. Everything else is the
newsroom's other business: its events are stored, acknowledged and counted apart (`NotGift`),
and the refunds and disputes of those payments are "not ours", never failing events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import select

from donations.extensions import db, insert_ignoring
from donations.ledger.models import Fund, Gift, Membership
from donations.payments.installation import METADATA_KEY, installation_id
from donations.payments.models import ClaimedSubscription, GiftSourceRule, NotGift

KIND_PREFIXES = {"plink_": "payment_link", "prod_": "product", "price_": "price"}
KIND_WORDS = {
    "payment_link": "Payment Link",
    "product": "Product",
    "price": "Price",
    "metadata": "Metadata value",
}
# What NotGift rows hold, in words for staff.
KINDS = {
    "one_time": "One-time payment (Checkout)",
    "subscription_checkout": "Subscription checkout",
    "invoice": "Subscription invoice",
    "subscription": "Subscription",
    "charge": "Charge",
    "refund": "Refund of a payment that is not a gift",
    "dispute": "Dispute of a payment that is not a gift",
}


class GiftSourceError(ValueError):
    """A gift source staff cannot add or remove (a clear message, never a 500)."""


@dataclass(frozen=True)
class Keys:
    """What in a Stripe object can make it a gift."""

    metadata: dict[str, Any] = field(default_factory=dict)
    payment_link: str | None = None
    products: tuple[str, ...] = ()
    prices: tuple[str, ...] = ()
    session_id: str | None = None  # a Checkout Session the app may have opened
    subscription_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "payment_link": self.payment_link,
            "products": list(self.products),
            "prices": list(self.prices),
            "metadata": {str(k): str(v)[:200] for k, v in self.metadata.items()} if self.metadata else {},
        }


@dataclass(frozen=True)
class Verdict:
    gift: bool
    ours: bool = False  # the app created it (its own metadata carries the fund)
    fund_slug: str | None = None  # the gift source's fund, when a source made it a gift


NOT_A_GIFT = Verdict(gift=False)


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def price_keys(prices: Iterable[Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(product ids, price ids) of price objects or ids (the product may be expanded or an id)."""
    products: list[str] = []
    price_ids: list[str] = []
    for price in prices:
        price_id = _id(price)
        if price_id:
            price_ids.append(price_id)
        product = _id(price.get("product")) if isinstance(price, dict) else None
        if product:
            products.append(product)
    return tuple(products), tuple(price_ids)


def made_by_app(metadata: dict[str, Any]) -> bool:
    """Its metadata names this installation (or, made before installation ids, our gift id)."""
    named = metadata.get(METADATA_KEY)
    if isinstance(named, str):
        return named == installation_id()
    return isinstance(metadata.get("gift_id"), str)


def rules() -> list[GiftSourceRule]:
    return list(db.session.scalars(select(GiftSourceRule).order_by(GiftSourceRule.id)))


@dataclass(frozen=True)
class _HeldRule:
    kind: str
    value: str
    fund_slug: str | None


_held: ContextVar[list[_HeldRule] | None] = ContextVar("held_gift_source_rules", default=None)


@contextmanager
def rules_held() -> Iterator[None]:
    """Within it, the gift sources are read once instead of for every payment classified
    (`history stripe` holds them for a page of objects, inside the page's transaction)."""
    slugs = {row.id: row.slug for row in db.session.execute(select(Fund.id, Fund.slug))}
    token = _held.set([_HeldRule(r.kind, r.value, slugs.get(r.fund_id) if r.fund_id else None) for r in rules()])
    try:
        yield
    finally:
        _held.reset(token)


def _fund_slug(rule: GiftSourceRule) -> str | None:
    return db.session.scalar(select(Fund.slug).where(Fund.id == rule.fund_id)) if rule.fund_id else None


class _Rule(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> str: ...


AnyRule = TypeVar("AnyRule", bound=_Rule)


def matching_rule(keys: Keys, candidates: Sequence[AnyRule]) -> AnyRule | None:
    for rule in candidates:
        if rule.kind == "payment_link" and keys.payment_link == rule.value:
            return rule
        if rule.kind == "product" and rule.value in keys.products:
            return rule
        if rule.kind == "price" and rule.value in keys.prices:
            return rule
        if rule.kind == "metadata":
            key, _, value = rule.value.partition("=")
            if str(keys.metadata.get(key, "")) == value and key in keys.metadata:
                return rule
    return None


def classify(keys: Keys) -> Verdict:
    if made_by_app(keys.metadata):
        return Verdict(gift=True, ours=True)
    if keys.session_id and db.session.scalar(select(Gift.id).where(Gift.stripe_checkout_session_id == keys.session_id)):
        return Verdict(gift=True, ours=True)  # a session the app opened, whatever its metadata says
    held = _held.get()
    if held is not None:
        if (found := matching_rule(keys, held)) is not None:
            return Verdict(gift=True, fund_slug=found.fund_slug)
    elif (rule := matching_rule(keys, rules())) is not None:
        return Verdict(gift=True, fund_slug=_fund_slug(rule))
    if keys.subscription_id:
        claimed = db.session.get(ClaimedSubscription, keys.subscription_id)
        if claimed is not None:
            return Verdict(gift=True, fund_slug=claimed.fund_slug)
        if db.session.scalar(select(Membership.id).where(Membership.stripe_subscription_id == keys.subscription_id)):
            return Verdict(gift=True, ours=True)  # recorded as a membership before: it stays one
    return NOT_A_GIFT


def claim_subscription(subscription_id: str, fund_slug: str | None) -> None:
    db.session.execute(
        insert_ignoring(ClaimedSubscription.__table__, "subscription_id"),
        {"subscription_id": subscription_id, "fund_slug": fund_slug},
    )


def record_not_gift(
    *,
    event_id: str,
    object_id: str,
    kind: str,
    keys: Keys | None = None,
    amount_cents: int | None = None,
    currency: str | None = None,
    payment_intent_id: str | None = None,
    charge_id: str | None = None,
    subscription_id: str | None = None,
    invoice_id: str | None = None,
) -> None:
    """Keep an event of the account's other business, once per event."""
    db.session.execute(
        insert_ignoring(NotGift.__table__, "event_id"),
        {
            "event_id": event_id,
            "object_id": object_id,
            "kind": kind,
            "payment_intent_id": payment_intent_id,
            "charge_id": charge_id,
            "subscription_id": subscription_id,
            "invoice_id": invoice_id,
            "amount_cents": amount_cents,
            "currency": currency,
            "sources": (keys or Keys()).as_json(),
        },
    )


def note_invoice_payment(invoice_id: str, payment_intent_id: str) -> None:
    """invoice_payment.paid of an invoice that is not a gift: its refunds are not ours."""
    for row in db.session.scalars(select(NotGift).where(NotGift.invoice_id == invoice_id)):
        if not row.payment_intent_id:
            row.payment_intent_id = payment_intent_id


def not_ours(*, charge_id: str | None, payment_intent_id: str | None) -> bool:
    """Whether a charge or payment intent belongs to a payment kept as not a gift."""
    conditions = []
    if payment_intent_id:
        conditions.append(NotGift.payment_intent_id == payment_intent_id)
    if charge_id:
        conditions.append(NotGift.charge_id == charge_id)
    if not conditions:
        return False
    from sqlalchemy import or_

    kinds = ("one_time", "invoice", "charge")
    return db.session.scalar(select(NotGift.id).where(or_(*conditions), NotGift.kind.in_(kinds)).limit(1)) is not None
