"""Storing and applying Stripe events exactly once, whoever delivers them and however often.

A webhook delivery and `payments sync` both come through `receive`. In one transaction the
event's row is inserted if new (ON CONFLICT DO NOTHING); a row that already existed is then
locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite serialises writers), while one just inserted
is locked by its insert until the commit. So of several workers receiving the same event at
the same moment exactly one applies it and the others find it applied.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError, InvalidRequestError, ProgrammingError
from sqlalchemy.orm import make_transient_to_detached

from donations.clock import from_timestamp, utcnow
from donations.extensions import db, insert_ignoring
from donations.payments.handlers import EventDeferred, StripeEventData, handler_for
from donations.payments.models import StripeEvent

log = logging.getLogger(__name__)


# What a malformed or hostile payload makes a handler raise: a missing key, a value of the wrong
# type (which the database driver may be the one to refuse) or out of range. Database outages
# (OperationalError) are not among them: they propagate, the caller answers 5xx, Stripe retries.
PAYLOAD_ERRORS = (
    *(LookupError, TypeError, ValueError, AttributeError, ArithmeticError),
    *(DataError, ProgrammingError, InvalidRequestError),
)


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already applied: nothing more happens
    IGNORED = "ignored"  # a type we do not act on: stored and acknowledged
    DEFERRED = "deferred"  # could not be applied yet: kept with its error, retried later


class EventRaceError(RuntimeError):
    """Two workers wrote the same ledger row at once; the caller should retry (5xx)."""


# After each applied webhook, events waiting at most this long are re-tried (Stripe itself
# gives up retrying after three days); older ones are left to `payments sync` and the staff page.
RETRY_ON_RECEIVE_WINDOW = timedelta(days=3)


def receive(event: dict[str, Any], via: str = "webhook") -> Outcome:
    """Store and apply one verified event. Database errors propagate: the caller answers 5xx."""
    for _ in range(3):
        try:
            outcome = _receive_once(event, via)
        except IntegrityError:
            # Another worker inserted the same gift or reversal between our read and write;
            # the retry finds its row and does nothing twice.
            db.session.rollback()
            continue
        if outcome is Outcome.APPLIED and via == "webhook":
            # This event may be what a waiting one needed (a refund that came before its gift).
            # `payments sync` runs its own retry pass after all its events.
            _retry_waiting()
        return outcome
    raise EventRaceError(f"event {event['id']} kept colliding with concurrent writers")


def _retry_waiting() -> None:
    try:
        while retry_deferred(limit=20, received_since=utcnow() - RETRY_ON_RECEIVE_WINDOW):
            pass
    except IntegrityError:
        # A concurrent worker is writing the same rows; the waiting event stays for the next try.
        db.session.rollback()


def _receive_once(event: dict[str, Any], via: str) -> Outcome:
    row = {
        "id": event["id"],
        "type": event["type"],
        "created_at": from_timestamp(event["created"]),
        "payload": event,
        "received_at": utcnow(),
        "received_via": via,
        "attempts": 0,
    }
    inserted = db.session.execute(
        insert_ignoring(StripeEvent, "id").returning(StripeEvent.id), row
    ).scalar_one_or_none()
    if inserted is not None:
        # A new event: the row is ours until we commit (another worker inserting the same id
        # waits for us, then finds it applied), so it need not be read back and locked.
        fresh = StripeEvent(**row, applied_at=None, error=None)
        make_transient_to_detached(fresh)
        stored = db.session.merge(fresh, load=False)
    else:
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
    outcome = _apply(stored)
    # Counted after the handler ran, so that it is written by the same UPDATE as the outcome.
    stored.attempts += 1
    return outcome


def _apply(stored: StripeEvent) -> Outcome:
    handler = handler_for(stored.type)
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
    except IntegrityError as exc:
        if not _breaks_a_value_rule(exc):
            raise  # a unique key a concurrent worker took: `receive` tries again
        # A value the database refuses (a CHECK or NOT NULL): retrying cannot help.
        stored.error = f"could not apply: the database refused a value: {type(exc.orig).__name__}"
        log.warning("event %s (%s) failed to apply: %s", stored.id, stored.type, stored.error)
        return Outcome.DEFERRED
    except PAYLOAD_ERRORS as exc:
        # A payload we cannot read: keep it, with the reason, for staff and the next sync.
        stored.error = f"could not apply: {type(exc).__name__}: {exc}"
        log.warning("event %s (%s) failed to apply: %s", stored.id, stored.type, stored.error)
        return Outcome.DEFERRED
    stored.applied_at = utcnow()
    stored.error = None
    return Outcome.APPLIED


def _breaks_a_value_rule(exc: IntegrityError) -> bool:
    """A CHECK or NOT NULL constraint (hostile or malformed values in the payload), as opposed
    to a unique key (a concurrent writer got there first)."""
    text = str(exc.orig)
    return type(exc.orig).__name__ in ("CheckViolation", "NotNullViolation") or text.startswith(
        ("CHECK constraint failed", "NOT NULL constraint failed")
    )


def retry_deferred(limit: int = 100, received_since: datetime | None = None) -> int:
    """Re-apply events kept with an error (their gift may exist now). Returns how many applied.

    The least-tried first: an event that just started waiting is not starved behind old ones
    that keep failing (an unknown gift that will never come).
    """
    query = select(StripeEvent.id).where(StripeEvent.applied_at.is_(None))
    if received_since is not None:
        query = query.where(StripeEvent.received_at >= received_since)
    query = query.order_by(StripeEvent.attempts, StripeEvent.created_at, StripeEvent.id).limit(limit)
    ids = db.session.scalars(query).all()
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


def retry_one(event_id: str) -> Outcome | None:
    """Re-apply one stored event now (staff's retry button). None: no such unapplied event."""
    stored = db.session.execute(
        select(StripeEvent)
        .where(StripeEvent.id == event_id, StripeEvent.applied_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if stored is None:
        db.session.rollback()
        return None
    outcome = apply_stored(stored)
    db.session.commit()
    return outcome
