"""Stripe events: stored at once by whoever receives them, applied exactly once by the worker.

Receiving (`receive_signed` for a webhook delivery, Stripe's through the view or the local
gateway's called directly; `store` for `payments sync`) only verifies and stores: the event's
row is inserted if new (ON CONFLICT DO NOTHING) and committed, due at once. Nothing is applied
in the request, so Stripe is answered in a few milliseconds.

Applying (`apply_next`, run by the worker in a loop, `apply_pending` to drain) is the one apply
path. In one transaction a worker claims the oldest-created due event (SELECT ... FOR UPDATE
SKIP LOCKED on PostgreSQL, so any number of workers on any number of machines each take a
different one; SQLite serialises writers), runs its handler in a SAVEPOINT, marks it applied
(or keeps it with its error and a later `next_attempt_at`) and commits. A worker that dies
mid-event rolls back: the event is due again, nothing half-written. An event that needs another
(a refund before its gift) is deferred; once any event applies, the waiting ones are made due
again (at once by the worker that deferred them, by another within RETRY_CHECK_SECONDS).
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import TYPE_CHECKING, Any, cast

from flask import current_app
from sqlalchemy import JSON, ColumnElement, CursorResult, Insert, Result, Text, Update, bindparam, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InvalidRequestError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.types import TypeEngine

from donations.clock import from_timestamp, utcnow
from donations.extensions import db, insert_ignoring
from donations.payments import signing
from donations.payments.handlers import EventDeferred, StripeEventData, handler_for
from donations.payments.models import StripeEvent

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import DBAPIConnection

log = logging.getLogger(__name__)


# What a malformed or hostile payload makes a handler raise: a missing key, a value of the wrong
# type (which the database driver may be the one to refuse) or out of range. Database outages
# (OperationalError) are not among them: they propagate, the worker rolls back and tries later.
PAYLOAD_ERRORS = (
    *(LookupError, TypeError, ValueError, AttributeError, ArithmeticError),
    *(DataError, ProgrammingError, InvalidRequestError),
)


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already applied: nothing more happens
    IGNORED = "ignored"  # a type we do not act on: stored and acknowledged
    DEFERRED = "deferred"  # could not be applied yet: kept with its error, retried later


class Stored(enum.StrEnum):
    """What receiving did: the webhook's answer."""

    NEW = "stored"
    DUPLICATE = "duplicate"  # stored before (a repeat that was not applied yet is made due now)


# Events waiting at most this long are re-tried by the worker (Stripe itself gives up retrying
# after three days); older ones are left to `payments sync` and the staff page.
RETRY_ON_RECEIVE_WINDOW = timedelta(days=3)
# Making waiting events due again costs a statement; nearly always none wait. So a worker does it
# after each applied event only while it knows some wait (it deferred one, or its last look found
# some), and otherwise at most this often: an event deferred by another worker is re-tried at
# most this many seconds late once events flow (and after its own back-off in any case).
RETRY_CHECK_SECONDS = 5.0
# A deferred event's own back-off: this many seconds, doubling with each attempt, at most an hour.
DEFERRED_BACKOFF_SECONDS = 30.0
MAX_DEFERRED_BACKOFF = timedelta(hours=1)


class _Waiting:
    """This process's knowledge of waiting events. Threads share it without a lock: a lost
    update costs at most one extra look, or one look RETRY_CHECK_SECONDS late."""

    known = True  # a new process knows nothing: look at the first chance
    looked_at = float("-inf")  # monotonic() of the last look


# Set whenever this process stores an event: a worker thread in the same process (development's
# WORKER_IN_APP) wakes at once instead of at its next poll.
stored_signal = threading.Event()


def receive_signed(body: bytes, signature: str | None) -> tuple[dict[str, Any], Stored]:
    """A webhook delivery: verify its signature (raises signing.InvalidEvent), then store the
    event as `store` does. Returns the event and whether it was new."""
    config = current_app.config
    event = signing.verify(body, signature, config["STRIPE_WEBHOOK_SECRET"], config["WEBHOOK_TOLERANCE_SECONDS"])
    # On a pooled connection of its own, in autocommit: the INSERT is its own transaction,
    # committed when it returns, so a new event costs one round trip instead of three (BEGIN,
    # INSERT, COMMIT). A repeat's UPDATE is a second statement; it needs no atomicity with the
    # INSERT. The verified body is stored as it came (verify decoded it as UTF-8 and parsed it as
    # a JSON object): Stripe's own bytes, and no second serialization of a few KB.
    dialect = db.engine.dialect
    try:
        pooled = db.engine.raw_connection()
    except dialect.loaded_dbapi.Error as exc:  # the database is down: raised as SQLAlchemy raises it
        raise DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect) from exc
    try:
        dialect.set_isolation_level(cast("DBAPIConnection", pooled.dbapi_connection), "AUTOCOMMIT")
        stored = _store(pooled, dialect, event, "webhook", body.decode("utf-8"))
    finally:
        _hand_back(pooled, dialect)
    stored_signal.set()
    return event, stored


def _hand_back(pooled: PoolProxiedConnection, dialect: Dialect) -> None:
    """Return the connection to the pool in its usual isolation; one that cannot be reset is
    discarded instead (the event, if stored, is committed either way)."""
    try:
        if pooled.is_valid:
            dialect.reset_isolation_level(cast("DBAPIConnection", pooled.dbapi_connection))
    except dialect.loaded_dbapi.Error as exc:
        pooled.invalidate(exc)
    finally:
        pooled.close()


def store(event: dict[str, Any], via: str = "webhook") -> Stored:
    """Store one verified event in the session's transaction and commit, due now. A repeat of an
    event not applied yet makes it due now (as a repeated delivery used to retry it). Database
    errors propagate: the webhook answers 5xx and Stripe delivers again."""
    connection = db.session.connection()
    stored = _store(connection.connection, connection.dialect, event, via, json.dumps(event))
    db.session.commit()
    stored_signal.set()
    return stored


def _store(
    pooled: PoolProxiedConnection, dialect: Dialect, event: dict[str, Any], via: str, payload_json: str
) -> Stored:
    """`store`'s statements on the given connection; the caller commits (or it autocommits)."""
    now = utcnow()
    inserted = _insert_event(dialect).first_row(pooled, dialect, _row(event, via, now, payload_json))
    if inserted is None:
        _make_repeat_due(dialect).first_row(pooled, dialect, {"event_id": event["id"], "now": now})
    return Stored.NEW if inserted is not None else Stored.DUPLICATE


@dataclass(frozen=True)
class _DriverStatement:
    """A statement SQLAlchemy compiles once per dialect, executed on the driver's own cursor.

    The store runs for every delivery Stripe makes, and SQLAlchemy's per-execution work
    (execution context, parameter and result handling) was a quarter of a delivery's
    instructions (bench/FINDINGS.md). SQLAlchemy still writes the SQL and converts the values
    (its column types' bind processors: aware UTC datetimes, SQLite's datetime text); only the
    execution is the driver's."""

    sql: str
    positions: tuple[str, ...] | None  # the parameters' order, for a positional paramstyle
    processors: dict[str, Callable[[Any], Any]]

    @classmethod
    def compile(
        cls, statement: Insert | Update, dialect: Dialect, processors: dict[str, TypeEngine[Any]]
    ) -> _DriverStatement:
        compiled = statement.compile(dialect=dialect, column_keys=list(processors))
        return cls(
            sql=compiled.string,
            positions=tuple(compiled.positiontup) if compiled.positiontup else None,
            processors={
                key: process
                for key, type_ in processors.items()
                # The dialect's own implementation (SQLite's DATETIME writes text), as SQLAlchemy's
                # execution would use it; a TypeDecorator's plain bind_processor would not.
                if (process := type_.dialect_impl(dialect).bind_processor(dialect)) is not None
            },
        )

    def first_row(self, pooled: PoolProxiedConnection, dialect: Dialect, values: dict[str, Any]) -> Any:
        """Execute with these values; the first row returned, or None. A driver error is raised
        as SQLAlchemy raises it (a DBAPIError: OperationalError for an outage), and on a
        disconnect the pool lets the dead connections go, as it does for SQLAlchemy's own."""
        for key, process in self.processors.items():
            values[key] = process(values[key])
        params = tuple(values[key] for key in self.positions) if self.positions else values
        cursor = pooled.cursor()
        try:
            cursor.execute(self.sql, params)
            return cursor.fetchone() if cursor.description else None
        except dialect.loaded_dbapi.Error as exc:
            dead = dialect.is_disconnect(exc, pooled, cursor)
            if dead:
                # As SQLAlchemy's own execution does on a disconnect: this connection is discarded
                # and every one checked out before it is replaced at its next checkout (after a
                # database restart they are all dead). The pool has no public call for the second.
                db.engine.pool._invalidate(pooled, exc)
            raise DBAPIError.instance(
                self.sql, params, exc, dialect.loaded_dbapi.Error, dialect=dialect, connection_invalidated=dead
            ) from exc
        finally:
            cursor.close()


@functools.cache
def _insert_event(dialect: Dialect) -> _DriverStatement:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id; the payload bound as JSON text (which
    PostgreSQL casts to its json type)."""
    table = StripeEvent.__table__
    payload: ColumnElement[Any] = bindparam("payload", type_=Text())
    if dialect.name == "postgresql":
        payload = sql_cast(payload, JSON)
    insert = insert_ignoring(table, "id", dialect=dialect.name).values(payload=payload).returning(table.c.id)
    columns = {key: table.c[key].type for key in _ROW_KEYS}
    columns["payload"] = Text()  # bound as text (see above), not as the column's JSON type
    return _DriverStatement.compile(insert, dialect, columns)


@functools.cache
def _make_repeat_due(dialect: Dialect) -> _DriverStatement:
    """A repeat of an event not applied yet makes it due now; one a worker is applying right
    now (its row locked) needs nothing."""
    waiting = (
        select(StripeEvent.id)
        .where(StripeEvent.id == bindparam("event_id"), StripeEvent.applied_at.is_(None))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = update(StripeEvent).where(StripeEvent.id == waiting).values(next_attempt_at=bindparam("now"))
    table = StripeEvent.__table__
    return _DriverStatement.compile(
        statement, dialect, {"event_id": table.c.id.type, "now": table.c.next_attempt_at.type}
    )


def store_many(many: list[dict[str, Any]], via: str) -> set[str]:
    """Store events in the caller's transaction, by one statement (`history stripe`'s page,
    which applies them itself before it commits). Returns the ids that were new."""
    if not many:
        return set()
    now = utcnow()
    table = StripeEvent.__table__
    inserted = db.session.execute(
        insert_ignoring(table, "id").returning(table.c.id), [_row(event, via, now, event) for event in many]
    )
    return set(inserted.scalars())


_ROW_KEYS = ("id", "type", "created_at", "payload", "received_at", "received_via", "attempts", "next_attempt_at")


def _row(event: dict[str, Any], via: str, now: datetime, payload: str | dict[str, Any]) -> dict[str, Any]:
    """One stored event's row; its payload as JSON text (`store`) or as the parsed event."""
    return {
        "id": event["id"],
        "type": event["type"],
        "created_at": from_timestamp(event["created"]),
        "payload": payload,
        "received_at": now,
        "received_via": via,
        "attempts": 0,
        "next_attempt_at": now,
    }


def apply_next() -> tuple[str, Outcome] | None:
    """Claim the oldest-created due event, apply it and commit. None: nothing is due.

    Database outages propagate (rolled back: the event stays due). An event whose handler keeps
    colliding with concurrent writers, or fails in a way no payload should make it (a bug), is
    kept with the error and its back-off, so that it never blocks the events behind it."""
    claimed: list[str] = []
    for _ in range(3):
        try:
            return _apply_next_once(claimed)
        except IntegrityError:
            # Another worker inserted the same gift or reversal between our read and write;
            # the retry finds its row and does nothing twice.
            db.session.rollback()
        except OperationalError:
            db.session.rollback()
            raise
        except Exception as exc:
            db.session.rollback()
            log.exception("event %s could not be applied", claimed[-1] if claimed else "?")
            if not claimed:
                raise
            return claimed[-1], _keep_failed(claimed[-1], f"could not apply: {type(exc).__name__}: {exc}")
    log.warning("event %s kept colliding with concurrent writers; it waits for its back-off", claimed[-1])
    return claimed[-1], _keep_failed(claimed[-1], "kept colliding with concurrent writers; will try again")


def _keep_failed(event_id: str, error: str) -> Outcome:
    """Record a failed attempt on an event (its own transaction), with its back-off."""
    stored = db.session.execute(
        select(StripeEvent).where(StripeEvent.id == event_id, StripeEvent.applied_at.is_(None)).with_for_update()
    ).scalar_one_or_none()
    if stored is not None:
        stored.attempts += 1
        stored.error = error[:2000]
        _schedule_retry(stored, utcnow())
    db.session.commit()
    return Outcome.DEFERRED


def _apply_next_once(claimed: list[str]) -> tuple[str, Outcome] | None:
    now = utcnow()
    stored = db.session.execute(
        select(StripeEvent)
        .where(StripeEvent.applied_at.is_(None), StripeEvent.next_attempt_at <= now)
        .order_by(StripeEvent.created_at, StripeEvent.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if stored is None:
        db.session.rollback()
        return None
    event_id = stored.id
    claimed.append(event_id)
    outcome = apply_stored(stored)
    if outcome is Outcome.APPLIED and _should_look():
        # This event may be what a waiting one needed (a refund that came before its gift).
        _wake_waiting(now)
    db.session.commit()
    return event_id, outcome


def apply_pending(stop: threading.Event | None = None, limit: int | None = None) -> list[tuple[str, Outcome]]:
    """Apply due events until none is due (or `stop` is set, or `limit` were applied): the
    worker's apply step, also run by `payments sync` and the tests."""
    done: list[tuple[str, Outcome]] = []
    while (stop is None or not stop.is_set()) and (limit is None or len(done) < limit):
        result = apply_next()
        if result is None:
            break
        done.append(result)
    return done


def make_all_due(received_since: datetime | None = None) -> int:
    """Make every waiting event due now (`payments sync`'s retry pass); returns how many."""
    query = update(StripeEvent).where(StripeEvent.applied_at.is_(None)).values(next_attempt_at=utcnow())
    if received_since is not None:
        query = query.where(StripeEvent.received_at >= received_since)
    count = _rowcount(db.session.execute(query.execution_options(synchronize_session=False)))
    db.session.commit()
    return int(count or 0)


def _should_look() -> bool:
    return _Waiting.known or monotonic() - _Waiting.looked_at >= RETRY_CHECK_SECONDS


def _wake_waiting(now: datetime) -> None:
    """Make the events waiting on others (received within the window) due now. Rows another
    worker holds are skipped: it is applying them."""
    _Waiting.known = False
    _Waiting.looked_at = monotonic()
    waiting = (
        select(StripeEvent.id)
        .where(
            StripeEvent.applied_at.is_(None),
            StripeEvent.next_attempt_at > now,
            StripeEvent.received_at >= now - RETRY_ON_RECEIVE_WINDOW,
        )
        .with_for_update(skip_locked=True)
    )
    woken = _rowcount(
        db.session.execute(
            update(StripeEvent)
            .where(StripeEvent.id.in_(waiting))
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if woken:
        _Waiting.known = True  # they may be deferred again: look after the next applied event


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)  # DML gives a CursorResult


def apply_stored(stored: StripeEvent) -> Outcome:
    """Apply a stored, locked, unapplied event inside the caller's transaction, and settle its
    row: applied, or kept with its error and when to try again."""
    outcome, error = _run_handler(stored.type, stored.payload)
    stored.error = error
    # Counted after the handler ran, so that it is written by the same UPDATE as the outcome.
    stored.attempts += 1
    now = utcnow()
    if outcome is Outcome.DEFERRED:
        _schedule_retry(stored, now)
    else:
        stored.applied_at = now
        stored.next_attempt_at = None
    return outcome


def _schedule_retry(stored: StripeEvent, now: datetime) -> None:
    _Waiting.known = True
    if stored.received_at < now - RETRY_ON_RECEIVE_WINDOW:
        stored.next_attempt_at = None  # left to `payments sync` and the staff page
    else:
        wait = DEFERRED_BACKOFF_SECONDS * 2 ** min(max(stored.attempts - 1, 0), 16)
        stored.next_attempt_at = now + min(timedelta(seconds=wait), MAX_DEFERRED_BACKOFF)


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
            raise  # a unique key a concurrent worker took: `apply_next` tries again
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


def waiting_objects(object_ids: list[str]) -> set[str]:
    """Which of these Stripe objects (checkout sessions, say) have an event stored and not
    applied yet: pages say "processing" for them rather than "not paid"."""
    if not object_ids:
        return set()
    object_id = StripeEvent.payload["data"]["object"]["id"].as_string()
    return set(
        db.session.scalars(
            select(object_id).where(StripeEvent.applied_at.is_(None), object_id.in_(object_ids)).distinct()
        )
    )


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
