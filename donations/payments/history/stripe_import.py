"""`history stripe`: the account's past, read through Stripe's list APIs (not Events, which Stripe
keeps 30 days), recorded through the very handlers the webhooks use.

Each listed object becomes an event-shaped record (`history_<object id>[_<state>]`) that goes
through `events.store` and the worker's apply step: it is stored once, applied once, and the
ledger's own keys (session, invoice, refund, dispute ids) make any order and any repetition of
history, webhooks and `payments sync` give each payment exactly one gift. Payments that are not
gifts are kept apart as the webhooks keep them; plain PaymentIntents (a shop's) are noted so their refunds are not ours.
No donor is mailed about history. The cursor of each list is saved after every page, so a run
stopped by a crash or Ctrl-C resumes where it stopped; `dry_run` writes nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.models import Gift, InvoicePaymentLink, Membership, MembershipChange
from donations.mail.service import no_donor_mail
from donations.payments import events, gift_sources
from donations.payments.history.stripe_lists import LISTINGS, PAGE_SIZE, Lister, Listing
from donations.payments.models import ImportCursor, NotGift, StripeEvent
from donations.webhooks.outbox import no_outgoing_webhooks

PREFIX = "history_"
log = logging.getLogger(__name__)
Progress = Callable[[str, int], None]


@dataclass
class Summary:
    listed: Counter[str] = field(default_factory=Counter)  # by list
    recorded: Counter[str] = field(default_factory=Counter)  # by what it became
    not_gifts: Counter[str] = field(default_factory=Counter)  # by kind
    already: int = 0  # recorded by an earlier run (or the same state seen again)
    skipped: Counter[str] = field(default_factory=Counter)  # by reason
    waiting: Counter[str] = field(default_factory=Counter)  # by reason
    requests: int = 0
    rate_limited: int = 0
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": dict(self.listed),
            "recorded": dict(self.recorded),
            "not_gifts": dict(self.not_gifts),
            "already": self.already,
            "skipped": dict(self.skipped),
            "waiting": dict(self.waiting),
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "resumed": self.resumed,
        }


def _state(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _event(event_id: str, event_type: str, obj: dict[str, Any], created: Any) -> dict[str, Any]:
    created = created if isinstance(created, int) and not isinstance(created, bool) else int(utcnow().timestamp())
    return {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": created,
        "data": {"object": obj},
        "livemode": bool(obj.get("livemode")),
    }


# What each object becomes: (event, what it records) or (None, why it is skipped).
Built = tuple[dict[str, Any] | None, str]


def as_event(listing: str, obj: dict[str, Any], now: int) -> Built:
    oid = obj["id"]
    if listing == "checkout_sessions":
        if obj.get("mode") not in ("payment", "subscription"):
            return None, "checkout session that takes no money"
        if obj.get("payment_status") not in ("paid", "no_payment_required"):
            return None, "checkout session not paid"
        kind = "membership checkout" if obj.get("mode") == "subscription" else "one-time payment"
        return _event(PREFIX + oid, "checkout.session.completed", obj, obj.get("created")), kind
    if listing == "subscriptions":
        items = [(i.get("price") or {}).get("id") for i in (obj.get("items") or {}).get("data") or []]
        version = _state(
            obj.get("status"),
            obj.get("cancel_at_period_end"),
            obj.get("cancel_at"),
            items,
            [i.get("quantity") for i in (obj.get("items") or {}).get("data") or []],
        )
        ended = obj.get("status") in ("canceled", "incomplete_expired")
        kind = "customer.subscription.deleted" if ended else "customer.subscription.updated"
        # Its state now: newer than any event Stripe sent before it.
        return _event(f"{PREFIX}{oid}_{version}", kind, obj, now), "subscription"
    if listing == "invoices":
        if obj.get("status") != "paid":
            return None, "invoice not paid"
        paid_at = (obj.get("status_transitions") or {}).get("paid_at") or obj.get("created")
        return _event(PREFIX + oid, "invoice.paid", obj, paid_at), "paid invoice"
    if listing == "invoice_payments":
        if obj.get("status") != "paid":
            return None, "invoice payment not paid"
        return _event(PREFIX + oid, "invoice_payment.paid", obj, obj.get("created")), "invoice payment"
    if listing == "refunds":
        return _event(f"{PREFIX}{oid}_{obj.get('status')}", "refund.updated", obj, obj.get("created")), "refund"
    if listing == "disputes":
        closed = obj.get("status") in ("won", "lost", "warning_closed")
        kind = "charge.dispute.closed" if closed else "charge.dispute.updated"
        return _event(f"{PREFIX}{oid}_{obj.get('status')}", kind, obj, obj.get("created")), "dispute"
    if listing == "payouts":
        status = obj.get("status")
        if status not in ("paid", "failed", "canceled"):
            return None, f"payout {status or 'not final'}"
        return _event(f"{PREFIX}{oid}_{status}", f"payout.{status}", obj, obj.get("created")), "payout"
    raise ValueError(f"no history for {listing}")


def _plain_payment(obj: dict[str, Any], event_id: str, known: set[str]) -> str:
    """A PaymentIntent that no gift, membership invoice or kept payment names (`known`, from
    `_known_payment_intents`): the account's other business (a shop's sale), noted so that its
    refunds and disputes are not ours."""
    if obj.get("status") != "succeeded":
        return "payment intent not succeeded"
    pi = obj["id"]
    if pi in known:
        return "payment intent of a checkout or invoice"
    if gift_sources.made_by_app(obj.get("metadata") or {}):
        return "payment intent of the app's own checkout"
    gift_sources.record_not_gift(
        event_id=event_id,
        object_id=pi,
        kind="charge",
        keys=gift_sources.Keys(metadata=obj.get("metadata") or {}),
        amount_cents=obj.get("amount_received") if isinstance(obj.get("amount_received"), int) else None,
        currency=obj.get("currency") if isinstance(obj.get("currency"), str) else None,
        payment_intent_id=pi,
        charge_id=obj.get("latest_charge") if isinstance(obj.get("latest_charge"), str) else None,
    )
    return ""


def _known_payment_intents(ids: list[str]) -> set[str]:
    """Which of these PaymentIntents a gift, a kept payment or a membership invoice names."""
    found: set[str] = set()
    for column in (
        Gift.stripe_payment_intent_id,
        NotGift.payment_intent_id,
        InvoicePaymentLink.stripe_payment_intent_id,
    ):
        found.update(i for i in db.session.scalars(select(column).where(column.in_(ids))) if i)
    return found


def _not_gift_kinds(event_ids: list[str]) -> dict[str, str]:
    if not event_ids:
        return {}
    rows = db.session.execute(select(NotGift.event_id, NotGift.kind).where(NotGift.event_id.in_(event_ids)))
    return {row.event_id: row.kind for row in rows}


def _advance(cursor: ImportCursor | None, page: list[dict[str, Any]], done: int) -> None:
    if cursor is not None:
        cursor.last_id, cursor.listed, cursor.updated_at = page[-1]["id"], done, utcnow()


@dataclass
class _PageTally:
    """What a page recorded, added to the run's summary once its transaction commits."""

    recorded: Counter[str] = field(default_factory=Counter)
    not_gifts: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    already: int = 0
    waiting: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    subscriptions: set[str] = field(default_factory=set)

    def add_to(self, summary: Summary) -> None:
        summary.recorded.update(self.recorded)
        summary.not_gifts.update(self.not_gifts)
        summary.skipped.update(self.skipped)
        summary.already += self.already


@dataclass
class Importer:
    lister: Lister
    since: datetime | None
    dry_run: bool = False
    progress: Progress | None = None
    summary: Summary = field(default_factory=Summary)
    _waiting: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # deferred: tried again at the end
    _subscriptions: set[str] = field(default_factory=set)  # of the invoices listed in this run

    def run(self) -> Summary:
        created_gte = int(self.since.timestamp()) if self.since else None
        cursors = {} if self.dry_run else self._cursors()
        # A dry run writes inside one SAVEPOINT it rolls back: on SQLite a handler's own SAVEPOINT
        # would otherwise be what opens the transaction, and releasing it would commit.
        outer = db.session.begin_nested() if self.dry_run else None
        with no_donor_mail(), no_outgoing_webhooks():
            for listing in LISTINGS:
                cursor = cursors.get(listing.name)
                if cursor is not None and cursor.finished_at is not None:
                    continue
                self._list(listing, created_gte, cursor)
            self._retry_waiting()
            self._amount_history()
        if outer is not None:
            outer.rollback()
            db.session.rollback()
        self.summary.requests, self.summary.rate_limited = self.lister.requests, self.lister.rate_limited
        return self.summary

    def _cursors(self) -> dict[str, ImportCursor]:
        names = [f"stripe:{listing.name}" for listing in LISTINGS]
        found = {c.name: c for c in db.session.scalars(select(ImportCursor).where(ImportCursor.name.in_(names)))}
        unfinished = [c for c in found.values() if c.finished_at is None]
        if found and unfinished and all(c.since == self.since for c in found.values()):
            self.summary.resumed = True  # the last run stopped part-way: go on from there
        else:
            for cursor in found.values():
                db.session.delete(cursor)
            db.session.flush()
            found = {}
            for name in names:
                found[name] = ImportCursor(name=name, since=self.since, listed=0)
                db.session.add(found[name])
        db.session.commit()
        return {name.removeprefix("stripe:"): cursor for name, cursor in found.items()}

    def _list(self, listing: Listing, created_gte: int | None, cursor: ImportCursor | None) -> None:
        start = cursor.last_id if cursor is not None else None
        done = cursor.listed if cursor is not None else 0
        for page in self.lister.pages(listing, created_gte=created_gte, starting_after=start):
            now = int(utcnow().timestamp())
            done += len(page)
            if self.dry_run:
                for obj in page:
                    self._one(listing.name, obj, now)
            else:
                self._record_page(listing.name, page, now, cursor, done)
            self.summary.listed[listing.name] += len(page)
            if self.progress:
                self.progress(listing.name, done)
        if cursor is not None:
            cursor.finished_at = cursor.updated_at = utcnow()
            db.session.commit()

    def _one(self, listing: str, obj: dict[str, Any], now: int) -> None:
        if listing == "payment_intents":
            event_id = PREFIX + obj["id"]
            if db.session.scalar(select(NotGift.id).where(NotGift.event_id == event_id)):
                self.summary.already += 1
                return
            reason = _plain_payment(obj, event_id, _known_payment_intents([obj["id"]]))
            if reason:
                self.summary.skipped[reason] += 1
            else:
                self.summary.not_gifts["charge"] += 1
            if not self.dry_run:
                db.session.commit()
            return
        event, what = as_event(listing, obj, now)
        if listing == "invoices" and event is not None:
            subscription = _invoice_subscription(obj)
            if subscription:
                self._subscriptions.add(subscription)
        if event is None:
            self.summary.skipped[what] += 1
            return
        outcome = self._apply(event)
        if outcome is events.Outcome.DUPLICATE:
            self.summary.already += 1
        elif outcome is events.Outcome.DEFERRED:
            self._waiting.append((event, what))
        else:
            self._count_applied(event, what)

    def _record_page(
        self, listing: str, page: list[dict[str, Any]], now: int, cursor: ImportCursor | None, done: int
    ) -> None:
        """A page in one transaction with its cursor (a crash redoes the whole page)."""

        def batch(tally: _PageTally) -> None:
            if listing == "payment_intents":
                self._plain_payments(page, tally)
            else:
                self._apply_page(listing, page, now, tally)

        def one_at_a_time() -> None:
            for obj in page:
                self._one(listing, obj, now)

        self._in_one_transaction(batch, one_at_a_time, lambda: _advance(cursor, page, done))

    def _in_one_transaction(
        self,
        batch: Callable[[_PageTally], None],
        one_at_a_time: Callable[[], None],
        finish: Callable[[], None] = lambda: None,
    ) -> None:
        """Record a batch in one transaction: its events stored by one statement, applied in
        order by the worker's apply step and committed together. Should anything go wrong (a
        concurrent webhook took a gift's key first, a deadlock), it is rolled back and recorded
        an object at a time, the way each object was recorded before batches."""
        tally = _PageTally()
        try:
            with gift_sources.rules_held():
                batch(tally)
            finish()
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.warning("history: a batch is recorded an object at a time", exc_info=True)
            one_at_a_time()
            finish()
            db.session.commit()
            return
        tally.add_to(self.summary)
        self._waiting.extend(tally.waiting)
        self._subscriptions |= tally.subscriptions

    def _plain_payments(self, page: list[dict[str, Any]], tally: _PageTally) -> None:
        """`_plain_payment` for a page of PaymentIntents, with one query per kind of record."""
        ids = [obj["id"] for obj in page]
        kept = set(db.session.scalars(select(NotGift.event_id).where(NotGift.event_id.in_([PREFIX + i for i in ids]))))
        known = _known_payment_intents(ids)
        for obj in page:
            event_id = PREFIX + obj["id"]
            if event_id in kept:
                tally.already += 1
                continue
            reason = _plain_payment(obj, event_id, known)
            if reason:
                tally.skipped[reason] += 1
            else:
                tally.not_gifts["charge"] += 1

    def _apply_page(self, listing: str, page: list[dict[str, Any]], now: int, tally: _PageTally) -> None:
        built: list[tuple[dict[str, Any], str]] = []
        for obj in page:
            event, what = as_event(listing, obj, now)
            if event is None:
                tally.skipped[what] += 1
                continue
            if listing == "invoices" and (subscription := _invoice_subscription(obj)):
                tally.subscriptions.add(subscription)
            built.append((event, what))
        self._apply_built(built, tally)

    @staticmethod
    def _apply_built(built: list[tuple[dict[str, Any], str]], tally: _PageTally) -> None:
        if not built:
            return
        new = events.store_many([event for event, _ in built], via="history")
        ids = [event["id"] for event, _ in built]
        # Locked, as the worker claims an event: one another worker is applying right now is
        # not among them, and is tried again with the waiting ones at the end.
        claimable = {
            stored.id: stored
            for stored in db.session.scalars(
                select(StripeEvent)
                .where(StripeEvent.id.in_(ids), StripeEvent.applied_at.is_(None))
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        }
        applied = set(
            db.session.scalars(
                select(StripeEvent.id).where(StripeEvent.id.in_(ids), StripeEvent.applied_at.is_not(None))
            )
        )
        done: list[tuple[str, str]] = []
        for event, what in built:
            stored = claimable.get(event["id"])
            if stored is None:
                if event["id"] in applied and event["id"] not in new:
                    tally.already += 1
                else:
                    tally.waiting.append((event, what))
            elif events.apply_stored(stored) is events.Outcome.DEFERRED:
                tally.waiting.append((event, what))
            else:
                done.append((event["id"], what))
        kinds = _not_gift_kinds([event_id for event_id, _ in done])
        for event_id, what in done:
            if event_id in kinds:
                tally.not_gifts[kinds[event_id]] += 1
            else:
                tally.recorded[what] += 1

    def _apply(self, event: dict[str, Any]) -> events.Outcome:
        if not self.dry_run:
            # The webhook's own path: stored once, then applied by the worker's apply step (run
            # here, as `payments sync` does), so history, webhooks and sync meet in one store.
            if events.store(event, via="history") is events.Stored.DUPLICATE and self._applied(event):
                return events.Outcome.DUPLICATE
            events.apply_pending()
            return events.Outcome.APPLIED if self._applied(event) else events.Outcome.DEFERRED
        if db.session.scalar(select(StripeEvent.id).where(StripeEvent.id == event["id"])):
            return events.Outcome.DUPLICATE
        return events.try_apply(event)[0]

    @staticmethod
    def _applied(event: dict[str, Any]) -> bool:
        return db.session.scalar(select(StripeEvent.applied_at).where(StripeEvent.id == event["id"])) is not None

    def _count_applied(self, event: dict[str, Any], what: str) -> None:
        kind = db.session.scalar(select(NotGift.kind).where(NotGift.event_id == event["id"]))
        if kind is not None:
            self.summary.not_gifts[kind] += 1
        else:
            self.summary.recorded[what] += 1

    def _retry_waiting(self) -> None:
        """What came before what it needs (a subscription before its first invoice), again."""
        if self.dry_run:
            while self._waiting:
                still: list[tuple[dict[str, Any], str]] = []
                for event, what in self._waiting:
                    outcome, _ = events.try_apply(event)
                    if outcome is events.Outcome.DEFERRED:
                        still.append((event, what))
                    else:
                        self._count_applied(event, what)
                if len(still) == len(self._waiting):
                    for event, _ in still:
                        self.summary.waiting[_reason(events.try_apply(event)[1] or "waiting")] += 1
                    return
                self._waiting = still
            return
        pending = self._waiting
        while pending:
            still = [
                left
                for at in range(0, len(pending), PAGE_SIZE)
                for left in self._retry_chunk(pending[at : at + PAGE_SIZE])
            ]
            if len(still) == len(pending):
                break
            pending = still
        # What is left (and any webhook's event waiting on what history recorded) goes through
        # the worker's own retry, as `payments sync` does it.
        events.make_all_due()
        events.apply_pending()
        for event, what in self._waiting:
            stored = db.session.get(StripeEvent, event["id"])
            if stored is not None and stored.applied_at is not None:
                self._count_applied(event, what)
            else:
                self.summary.waiting[_reason(stored.error if stored and stored.error else "waiting")] += 1
        db.session.commit()

    @staticmethod
    def _retry_chunk(chunk: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
        """Apply waiting events again in one transaction; returns those still waiting. Should
        anything go wrong it is rolled back and they are left to the worker's retry."""
        by_id = {event["id"]: (event, what) for event, what in chunk}
        try:
            claimed = db.session.scalars(
                select(StripeEvent)
                .where(StripeEvent.id.in_(by_id), StripeEvent.applied_at.is_(None))
                .order_by(StripeEvent.created_at, StripeEvent.id)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            ).all()
            for stored in claimed:
                if events.apply_stored(stored) is not events.Outcome.DEFERRED:
                    del by_id[stored.id]
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.warning("history: waiting events are left to the worker's retry", exc_info=True)
            return list(chunk)
        return list(by_id.values())

    def _amount_history(self) -> None:
        """A membership's amount changes, read from its paid invoices (Stripe's events of them
        are long gone), recorded as subscription changes dated by the invoice that first paid
        the new amount; only for memberships with no amount history of their own yet."""
        changes: list[tuple[dict[str, Any], str]] = []
        for subscription_id in sorted(self._subscriptions):
            changes += _amount_changes(subscription_id)
            if len(changes) >= PAGE_SIZE:
                self._record_changes(changes)
                changes = []
        self._record_changes(changes)

    def _record_changes(self, changes: list[tuple[dict[str, Any], str]]) -> None:
        def one_at_a_time() -> None:
            for event, what in changes:
                outcome = self._apply(event)
                if outcome is events.Outcome.APPLIED:
                    self.summary.recorded[what] += 1
                elif outcome is events.Outcome.DUPLICATE:
                    self.summary.already += 1

        if self.dry_run:
            one_at_a_time()
        elif changes:
            self._in_one_transaction(lambda tally: self._apply_built(changes, tally), one_at_a_time)


def _amount_changes(subscription_id: str) -> list[tuple[dict[str, Any], str]]:
    """The events of a membership's amount changes, from its paid installments."""
    membership = db.session.scalar(select(Membership).where(Membership.stripe_subscription_id == subscription_id))
    if membership is None or db.session.scalar(
        select(MembershipChange.id).where(MembershipChange.membership_id == membership.id).limit(1)
    ):
        return []
    paid = db.session.execute(
        select(Gift.stripe_invoice_id, Gift.amount_cents, Gift.received_at)
        .where(Gift.membership_id == membership.id, Gift.received_at.is_not(None))
        .order_by(Gift.received_at, Gift.id)
    ).all()
    changes = []
    for (_, before, _), (invoice_id, after, at) in itertools.pairwise(paid):
        if before == after or at is None:
            continue
        event = _event(
            f"{PREFIX}{invoice_id}_amount",
            "customer.subscription.updated",
            {"id": subscription_id, "object": "subscription", "items": _items(after)},
            int(at.timestamp()),
        ) | {
            "data": {
                "object": {"id": subscription_id, "object": "subscription", "items": _items(after)},
                "previous_attributes": {"items": _items(before)},
            }
        }
        changes.append((event, "membership amount change"))
    return changes


def _items(amount: int) -> dict[str, Any]:
    return {"object": "list", "data": [{"price": {"unit_amount": amount}, "quantity": 1}]}


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    found = details.get("subscription") or invoice.get("subscription")
    return found if isinstance(found, str) else None


def _reason(error: str) -> str:
    """An error without the ids in it, so that like reasons count together."""
    words = [
        word
        for word in error.split()
        if not any(word.startswith(p) for p in ("evt_", "pi_", "ch_", "in_", "sub_", "re_", "du_", "cs_", "history_"))
    ]
    return " ".join(words)[:120]
