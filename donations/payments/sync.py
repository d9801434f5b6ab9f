"""`payments sync`: recover what webhooks missed, from Stripe's Events list.

Every event created since a date is listed (newest first, paged with has_more/starting_after);
those not applied yet are stored exactly as a webhook stores them (`events.store`); then every
waiting event is made due and applied through the worker's own apply step (`events.apply_pending`,
oldest created first, alongside any worker running), and payouts are reconciled. Running it twice changes
nothing: applied events are skipped, and the ledger's keys make every write idempotent.

A sync is a long job that owns its transactions, so that what it did survives a failure later
on: its run's row commits when it starts and again with its totals, each event commits on its
own (`events.store`, `events.apply_next`), and so does each reconciled payout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import db
from donations.payments import events, reconcile
from donations.payments.gateway import GatewayError, PaymentGateway, get_gateway
from donations.payments.models import StripeEvent, SyncRun

PAGE_SIZE = 100


def _unapplied(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [event["id"] for event in page]
    applied = set(
        db.session.scalars(select(StripeEvent.id).where(StripeEvent.id.in_(ids), StripeEvent.applied_at.is_not(None)))
    )
    return [event for event in page if event["id"] not in applied]


def _apply_everything_waiting() -> int:
    """Make every waiting event due (those older than the worker's window too) and apply until
    none is due: a pass that applies nothing leaves the rest waiting on something else."""
    events.make_all_due()
    done = events.apply_pending()
    return sum(1 for _, outcome in done if outcome in (events.Outcome.APPLIED, events.Outcome.IGNORED))


def run_sync(since: datetime, gateway: PaymentGateway | None = None, page_size: int = PAGE_SIZE) -> SyncRun:
    """Apply every event created since `since` that is not applied yet; record the run."""
    gateway = gateway or get_gateway()
    run = SyncRun(since=since, started_at=utcnow())
    db.session.add(run)
    db.session.commit()
    try:
        missing: list[dict[str, Any]] = []
        starting_after = None
        while True:
            page = gateway.list_events(
                created_gte=int(since.timestamp()), starting_after=starting_after, limit=page_size
            )
            run.events_seen += len(page.events)
            missing.extend(_unapplied(page.events))
            if not page.has_more or not page.events:
                break
            starting_after = page.events[-1]["id"]
        for event in missing:
            events.store(event, via="sync")
        applied = _apply_everything_waiting()  # oldest created first, the order they happened in
        run.events_applied = applied
        db.session.commit()
        reconcile.reconcile_payouts(gateway)
        reconcile.relink_transactions()
        reconcile.fill_fees(gateway)
    except GatewayError as exc:
        db.session.rollback()
        run.error = str(exc)
    else:
        run.succeeded = True
    run.finished_at = utcnow()
    db.session.commit()
    return run


@dataclass(frozen=True)
class SyncHealth:
    last_success_at: datetime | None
    failing_events: int  # kept unapplied with an error (waiting for another event, or unreadable)
    waiting_events: int = 0  # stored and not applied yet, failing or not (the worker's backlog)
    oldest_waiting_at: datetime | None = None


def sync_health() -> SyncHealth:
    """When the last sync succeeded; how many events wait to be applied, and how many failed."""
    last = db.session.scalar(select(func.max(SyncRun.finished_at)).where(SyncRun.succeeded.is_(True)))
    waiting, failing, oldest = db.session.execute(
        select(
            func.count(),
            func.count(StripeEvent.error),
            func.min(StripeEvent.received_at),
        ).where(StripeEvent.applied_at.is_(None))
    ).one()
    return SyncHealth(
        last_success_at=last,
        failing_events=int(failing or 0),
        waiting_events=int(waiting or 0),
        oldest_waiting_at=oldest,
    )


def failing_events(limit: int = 200) -> list[StripeEvent]:
    """Events kept unapplied with their error, most recently received first."""
    return list(
        db.session.scalars(
            select(StripeEvent)
            .where(StripeEvent.applied_at.is_(None))
            .order_by(StripeEvent.received_at.desc(), StripeEvent.id)
            .limit(limit)
        )
    )


def retry_failed_event(event_id: str, actor: StaffUser | str, remote_addr: str | None = None) -> events.Outcome | None:
    """Staff's retry button: re-apply one kept event now, audited. None: it is no longer waiting."""
    outcome = events.retry_one(event_id)
    if outcome is None:
        return None
    audit(
        "stripe_event.retry",
        actor=actor,
        target_type="stripe_event",
        target_id=event_id,
        details={"outcome": outcome.value},
        remote_addr=remote_addr,
    )
    return outcome
