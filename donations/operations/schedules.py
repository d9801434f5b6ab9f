"""The worker's schedules: each job runs once per period however many workers run.

Why a lease table rather than a scheduling library: APScheduler, Celery beat or cron each run
jobs from one process (a second instance runs them twice, or needs its own lock service); the
database every worker already shares gives the lock for free. A job's run for a period is one
row, unique by (job, period): the worker whose INSERT wins runs it; the others see the row and
skip. A run whose worker died keeps its lease until `lease_until`, then the next worker to look
takes it over; a failed run is tried again after RETRY_FAILED. Each row is also the record
/healthz and the staff page show. Periods are in NEWSROOM_TIMEZONE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, and_, delete, func, or_, select, update

from donations.clock import newsroom_zone, utcnow
from donations.extensions import db, insert_ignoring, unit_of_work
from donations.operations.models import ScheduleRun

log = logging.getLogger(__name__)

LEASE = timedelta(hours=1)  # longer than any job takes; a dead worker's job waits this long
RETRY_FAILED = timedelta(minutes=15)
KEEP_RUNS = timedelta(days=400)  # housekeeping: older run records go (each job's last stays)
PERIODS = ("hourly", "daily", "january")


@dataclass(frozen=True)
class JobResult:
    summary: str
    problems: int | None = None  # `ledger verify`: violations (a run with problems still succeeded)


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], JobResult]
    description: str


def period_of(every: str, now: datetime) -> str | None:
    """The period `now` falls in, as the run's key; None: the job does not run in it."""
    local = now.astimezone(newsroom_zone())
    if every == "hourly":
        return local.strftime("%Y-%m-%dT%H")
    if every == "daily":
        return local.strftime("%Y-%m-%d")
    if every == "january":  # annual statements: once a year, in January, for the year before
        return str(local.year) if local.month == 1 else None
    raise ValueError(f"unknown schedule period {every!r}: use one of {', '.join(PERIODS)}")


def configured() -> list[tuple[Job, str]]:
    """The jobs turned on in WORKER_SCHEDULES ({job: period or None}), in a stable order."""
    from donations.operations.jobs import JOBS

    settings: dict[str, str | None] = current_app.config["WORKER_SCHEDULES"]
    return [(JOBS[name], every) for name, every in settings.items() if every]


def take_lease(job: str, period: str, worker: str, now: datetime | None = None) -> ScheduleRun | None:
    """The run of `job` for `period`, if this worker may run it now (committed); else None."""
    now = now or utcnow()
    table = ScheduleRun.__table__
    row = {"job": job, "period": period, "worker": worker, "started_at": now, "lease_until": now + LEASE}
    run_id = db.session.execute(
        insert_ignoring(table, "job", "period").values(**row).returning(table.c.id)
    ).scalar_one_or_none()
    if run_id is None:
        run_id = db.session.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.job == job,
                ScheduleRun.period == period,
                or_(
                    and_(ScheduleRun.finished_at.is_(None), ScheduleRun.lease_until < now),  # its worker died
                    and_(ScheduleRun.succeeded.is_(False), ScheduleRun.finished_at < now - RETRY_FAILED),
                ),
            )
            .values(worker=worker, started_at=now, lease_until=now + LEASE, finished_at=None, succeeded=None)
            .returning(ScheduleRun.id)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
    db.session.commit()
    return db.session.get(ScheduleRun, run_id) if run_id is not None else None


def run_job(job: Job, run: ScheduleRun) -> ScheduleRun:
    """Run `job` under the lease `run` and record what came of it."""
    run_id = run.id
    log.info("schedule: %s for %s started", job.name, run.period)
    try:
        result = job.run()
    except Exception as exc:  # any failure is recorded on the run and retried later, never fatal
        db.session.rollback()
        log.exception("schedule: %s failed", job.name)
        result, succeeded = JobResult(f"failed: {type(exc).__name__}: {exc}"[:2000]), False
    else:
        succeeded = True
    with unit_of_work():
        run = db.session.get(ScheduleRun, run_id, populate_existing=True) or run
        run.finished_at = utcnow()
        run.succeeded = succeeded
        run.summary = result.summary
        run.problems = result.problems
    log.info("schedule: %s for %s finished: %s", job.name, run.period, result.summary)
    return run


def run_due(worker: str, stop: threading.Event | None = None, now: datetime | None = None) -> list[ScheduleRun]:
    """Run every configured job whose period has no finished run yet (and no live lease)."""
    done = []
    for job, every in configured():
        if stop is not None and stop.is_set():
            break
        period = period_of(every, now or utcnow())
        if period is None:
            continue
        run = take_lease(job.name, period, worker, now)
        if run is not None:
            done.append(run_job(job, run))
    return done


def latest_runs() -> list[ScheduleRun]:
    """Each job's most recent run."""
    newest = (
        select(ScheduleRun.job, func.max(ScheduleRun.started_at).label("started_at"))
        .group_by(ScheduleRun.job)
        .subquery()
    )
    return list(
        db.session.scalars(
            select(ScheduleRun)
            .join(newest, and_(ScheduleRun.job == newest.c.job, ScheduleRun.started_at == newest.c.started_at))
            .order_by(ScheduleRun.job)
        )
    )


def recent_runs(limit: int = 100) -> list[ScheduleRun]:
    return list(db.session.scalars(select(ScheduleRun).order_by(ScheduleRun.started_at.desc()).limit(limit)))


def prune_runs(now: datetime | None = None) -> int:
    """Housekeeping: delete run records older than KEEP_RUNS, except each job's latest."""
    cutoff = (now or utcnow()) - KEEP_RUNS
    keep = {run.id for run in latest_runs()}
    query = delete(ScheduleRun).where(ScheduleRun.started_at < cutoff, ScheduleRun.finished_at.is_not(None))
    if keep:
        query = query.where(ScheduleRun.id.not_in(keep))
    result = db.session.execute(query.execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], result).rowcount or 0)  # DML gives a CursorResult
