"""Storing and applying Stripe events exactly once, whoever delivers them and however often.

A webhook delivery and `payments sync` both come through `receive`. In one transaction the
event's row is inserted if new (ON CONFLICT DO NOTHING), then locked (SELECT ... FOR UPDATE on
PostgreSQL; SQLite serialises writers), so that of several workers receiving the same event at
the same moment exactly one applies it and the others find it applied.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from donations.clock import from_timestamp, utcnow
from donations.extensions import db
from donations.payments.handlers import EventDeferred, StripeEventData, handler_for
from donations.payments.models import StripeEvent

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already applied: nothing more happens
    IGNORED = "ignored"  # a type we do not act on: stored and acknowledged
    DEFERRED = "deferred"  # could not be applied yet: kept with its error, retried later


class EventRaceError(RuntimeError):
    """Two workers wrote the same ledger row at once; the caller should retry (5xx)."""


def receive(event: dict[str, Any], via: str = "webhook") -> Outcome:
    """Store and apply one verified event. Database errors propagate: the caller answers 5xx."""
    for _ in range(3):
        try:
            return _receive_once(event, via)
        except IntegrityError:
            # Another worker inserted the same gift or reversal between our read and write;
            # the retry finds its row and does nothing twice.
            db.session.rollback()
    raise EventRaceError(f"event {event['id']} kept colliding with concurrent writers")


def _insert_ignoring_conflict():  # type: ignore[no-untyped-def]
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(StripeEvent).on_conflict_do_nothing(index_elements=["id"])


def _receive_once(event: dict[str, Any], via: str) -> Outcome:
    db.session.execute(
        _insert_ignoring_conflict(),
        {
            "id": event["id"],
            "type": event["type"],
            "created_at": from_timestamp(event["created"]),
            "payload": event,
            "received_at": utcnow(),
            "received_via": via,
            "attempts": 0,
        },
    )
    stored = db.session.execute(
        select(StripeEvent)
        .where(StripeEvent.id == event["id"])
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if stored.applied_at is not None:
        db.session.commit()
        return Outcome.DUPLICATE
    outcome = apply_stored(stored)
    db.session.commit()
    return outcome


def apply_stored(stored: StripeEvent) -> Outcome:
    """Apply a stored, locked, unapplied event inside the caller's transaction."""
    handler = handler_for(stored.type)
    stored.attempts += 1
    if handler is None:
        stored.applied_at = utcnow()
        stored.error = None
        return Outcome.IGNORED
    try:
        with db.session.begin_nested():
            handler(StripeEventData.from_payload(stored.payload))
    except EventDeferred as exc:
        stored.error = str(exc)
        log.info("event %s (%s) deferred: %s", stored.id, stored.type, exc)
        return Outcome.DEFERRED
    except IntegrityError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        # A payload we cannot read: keep it, with the reason, for staff and the next sync.
        stored.error = f"could not apply: {type(exc).__name__}: {exc}"
        log.warning("event %s (%s) failed to apply: %s", stored.id, stored.type, stored.error)
        return Outcome.DEFERRED
    stored.applied_at = utcnow()
    stored.error = None
    return Outcome.APPLIED


def retry_deferred(limit: int = 100) -> int:
    """Re-apply events kept with an error (their gift may exist now). Returns how many applied."""
    ids = db.session.scalars(
        select(StripeEvent.id)
        .where(StripeEvent.applied_at.is_(None))
        .order_by(StripeEvent.created_at, StripeEvent.id)
        .limit(limit)
    ).all()
    applied = 0
    for event_id in ids:
        stored = db.session.execute(
            select(StripeEvent)
            .where(StripeEvent.id == event_id, StripeEvent.applied_at.is_(None))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        if stored is not None and apply_stored(stored) in (Outcome.APPLIED, Outcome.IGNORED):
            applied += 1
        db.session.commit()
    return applied
