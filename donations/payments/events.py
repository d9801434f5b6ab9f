"""Storing and applying Stripe events exactly once, whoever delivers them and however often.

A webhook delivery (Stripe's, through the view, or the local gateway's, called directly) comes
through `receive_signed`, `payments sync` through `receive`. In one transaction the
event's row is inserted if new (ON CONFLICT DO NOTHING); a row that already existed is then
locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite serialises writers), while one just inserted
is locked by its insert until the commit. So of several workers receiving the same event at
the same moment exactly one applies it and the others find it applied.

The event store owns its transactions, whoever calls it (the webhook, `payments sync`, staff's
retry): each event commits on its own, so one event's failure never undoes another's, and a
caller's own writes (a retry's audit entry) commit after it, in the caller's unit of work.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError, InvalidRequestError, ProgrammingError

from donations.clock import from_timestamp, utcnow
from donations.extensions import db, insert_ignoring
from donations.payments import signing
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
# Looking for waiting events costs a query and a transaction; nearly always none wait. So a
# process looks after every applied webhook only while it knows some wait (it deferred one, or
# its last look found some), and otherwise at most this often: an event deferred by another
# process is re-tried at most this many seconds late (and by `payments sync` in any case).
RETRY_CHECK_SECONDS = 5.0


class _Waiting:
    """This process's knowledge of waiting events. Threads share it without a lock: a lost
    update costs at most one extra look, or one look RETRY_CHECK_SECONDS late."""

    known = True  # a new process knows nothing: look at the first chance
    looked_at = float("-inf")  # monotonic() of the last look


def receive_signed(body: bytes, signature: str | None) -> tuple[dict[str, Any], Outcome]:
    """A webhook delivery: verify its signature (raises signing.InvalidEvent), then store and
    apply the event (`receive`). Returns the event and what became of it."""
    config = current_app.config
    event = signing.verify(body, signature, config["STRIPE_WEBHOOK_SECRET"], config["WEBHOOK_TOLERANCE_SECONDS"])
    return event, receive(event)


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
        if outcome is Outcome.DEFERRED:
            _Waiting.known = True
        elif outcome is Outcome.APPLIED and via == "webhook" and _should_look():
            # This event may be what a waiting one needed (a refund that came before its gift).
            # `payments sync` runs its own retry pass after all its events.
            _retry_waiting()
        return outcome
    raise EventRaceError(f"event {event['id']} kept colliding with concurrent writers")


def _should_look() -> bool:
    return _Waiting.known or monotonic() - _Waiting.looked_at >= RETRY_CHECK_SECONDS


def _retry_waiting() -> None:
    _Waiting.known = False  # before the look: a deferral during it sets it again
    _Waiting.looked_at = monotonic()
    try:
        while True:
            applied, still_waiting = _retry_deferred(20, utcnow() - RETRY_ON_RECEIVE_WINDOW)
            if still_waiting:
                _Waiting.known = True
            if not applied:
                break
    except IntegrityError:
        # A concurrent worker is writing the same rows; the waiting event stays for the next try.
        db.session.rollback()
        _Waiting.known = True


def _receive_once(event: dict[str, Any], via: str) -> Outcome:
    # Whether this transaction holds nothing but what we are about to write (a webhook's request
    # does: its session is new), so that undoing the handler may roll all of it back.
    session = db.session()  # the scoped proxy does not forward in_transaction()
    alone = not (session.in_transaction() or session.new or session.dirty or session.deleted)
    if not _insert_as_applied(event, via):
        return _receive_stored(event)
    if alone:
        outcome = _apply_alone(event)
        if outcome is not None:
            db.session.commit()
            return outcome
        # It did not apply, and everything was rolled back, the event's row too: store it again
        # and apply it the careful way below, to keep it with its reason.
        if not _insert_as_applied(event, via):
            return _receive_stored(event)  # another delivery stored it meanwhile
    outcome = _apply_new(event)
    db.session.commit()
    return outcome


def _insert_as_applied(event: dict[str, Any], via: str) -> bool:
    """Store a new event, written as applied at its first attempt, which is what nearly every
    new event comes to: then no UPDATE follows. Nobody else sees the row before our commit (a
    concurrent delivery of the same id waits for it, then finds it applied); if the handler
    defers the event, the same transaction unmarks it. False: the event was stored before."""
    now = utcnow()
    row = {
        "id": event["id"],
        "type": event["type"],
        "created_at": from_timestamp(event["created"]),
        "payload": event,
        "received_at": now,
        "received_via": via,
        "applied_at": now,
        "attempts": 1,
    }
    # On the table, not the mapped class: a Core INSERT skips the ORM's bulk-insert machinery.
    table = StripeEvent.__table__
    inserted = db.session.execute(insert_ignoring(table, "id").returning(table.c.id), row).scalar_one_or_none()
    return inserted is not None


def _receive_stored(event: dict[str, Any]) -> Outcome:
    """An event stored before: lock its row; apply it unless it was applied."""
    # Only the column that decides first: a repeat of an applied event (nearly every repeat)
    # needs no row object, nor its payload decoded.
    applied_at = db.session.execute(
        select(StripeEvent.applied_at).where(StripeEvent.id == event["id"]).with_for_update()
    ).scalar_one()
    if applied_at is not None:
        db.session.commit()
        return Outcome.DUPLICATE
    stored = db.session.execute(
        select(StripeEvent).where(StripeEvent.id == event["id"]).execution_options(populate_existing=True)
    ).scalar_one()  # locked above
    outcome = apply_stored(stored)
    db.session.commit()
    return outcome


def _apply_alone(event: dict[str, Any]) -> Outcome | None:
    """Run the handler in the event's own transaction with no SAVEPOINT (two statements fewer
    per event). None when it did not apply: the whole transaction is then rolled back, so
    nothing is half-written, and the caller starts again the careful way (`_apply_new`)."""
    handler = handler_for(event["type"])
    if handler is None:
        return Outcome.IGNORED
    try:
        handler(StripeEventData.from_payload(event))
        db.session.flush()  # a value the database refuses fails here, not in the COMMIT
    except (EventDeferred, IntegrityError, *PAYLOAD_ERRORS):
        db.session.rollback()
        return None
    return Outcome.APPLIED


def _apply_new(event: dict[str, Any]) -> Outcome:
    """Apply an event just inserted as applied, in a SAVEPOINT; one UPDATE if it was deferred."""
    outcome, error = _run_handler(event["type"], event)
    if outcome is Outcome.DEFERRED:
        db.session.execute(
            update(StripeEvent).where(StripeEvent.id == event["id"]).values(applied_at=None, error=error)
        )
    return outcome


def apply_stored(stored: StripeEvent) -> Outcome:
    """Apply a stored, locked, unapplied event inside the caller's transaction."""
    outcome = _apply(stored)
    # Counted after the handler ran, so that it is written by the same UPDATE as the outcome.
    stored.attempts += 1
    return outcome


def _apply(stored: StripeEvent) -> Outcome:
    outcome, error = _run_handler(stored.type, stored.payload)
    stored.error = error
    if outcome is not Outcome.DEFERRED:
        stored.applied_at = utcnow()
    return outcome


def _run_handler(event_type: str, payload: dict[str, Any]) -> tuple[Outcome, str | None]:
    """Run the type's handler in a SAVEPOINT. Returns the outcome and, when deferred, why."""
    handler = handler_for(event_type)
    if handler is None:
        return Outcome.IGNORED, None
    try:
        with db.session.begin_nested():
            handler(StripeEventData.from_payload(payload))
    except EventDeferred as exc:
        log.info("event %s (%s) deferred: %s", payload.get("id"), event_type, exc)
        return Outcome.DEFERRED, str(exc)
    except IntegrityError as exc:
        if not _breaks_a_value_rule(exc):
            raise  # a unique key a concurrent worker took: `receive` tries again
        # A value the database refuses (a CHECK or NOT NULL): retrying cannot help.
        error = f"could not apply: the database refused a value: {type(exc.orig).__name__}"
        log.warning("event %s (%s) failed to apply: %s", payload.get("id"), event_type, error)
        return Outcome.DEFERRED, error
    except PAYLOAD_ERRORS as exc:
        # A payload we cannot read: keep it, with the reason, for staff and the next sync.
        error = f"could not apply: {type(exc).__name__}: {exc}"
        log.warning("event %s (%s) failed to apply: %s", payload.get("id"), event_type, error)
        return Outcome.DEFERRED, error
    return Outcome.APPLIED, None


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
    return _retry_deferred(limit, received_since)[0]


def _retry_deferred(limit: int, received_since: datetime | None) -> tuple[int, bool]:
    """(how many applied, whether any looked at is still waiting)."""
    query = select(StripeEvent.id).where(StripeEvent.applied_at.is_(None))
    if received_since is not None:
        query = query.where(StripeEvent.received_at >= received_since)
    query = query.order_by(StripeEvent.attempts, StripeEvent.created_at, StripeEvent.id).limit(limit)
    ids = db.session.scalars(query).all()
    if not ids:
        return 0, False
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
    return applied, applied < len(ids)


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


def reapply(stored: StripeEvent) -> Outcome:
    """Run a stored event's handler again (a gift source was added after it was kept as not a
    gift); handlers are idempotent. A deferral leaves it waiting, with its reason."""
    outcome, error = _run_handler(stored.type, stored.payload)
    stored.error = error
    stored.applied_at = None if outcome is Outcome.DEFERRED else (stored.applied_at or utcnow())
    return outcome


def try_apply(event: dict[str, Any]) -> tuple[Outcome, str | None]:
    """Run an event's handler in a SAVEPOINT without storing the event (a dry run, whose caller
    rolls everything back): the outcome and, when deferred, why."""
    return _run_handler(event["type"], event)
