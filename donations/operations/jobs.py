"""What the worker's schedules run: each area's own service, as its CLI command would."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from donations.accounts.audit import audit
from donations.clock import local_date, utcnow
from donations.extensions import unit_of_work
from donations.operations.schedules import Job, JobResult, prune_runs

WORKER_ACTOR = "worker"  # who the audit log says queued what the schedules queued
SYNC_LOOKBACK = timedelta(days=3)  # as `payments sync`'s default: Stripe retries for three days


def payments_sync() -> JobResult:
    from donations.payments.sync import run_sync

    run = run_sync(utcnow() - SYNC_LOOKBACK)
    if not run.succeeded:
        raise RuntimeError(f"sync {run.id} failed: {run.error}")
    return JobResult(f"sync {run.id}: {run.events_seen} events listed, {run.events_applied} applied")


def expire_checkouts() -> JobResult:
    if current_app.config["PAYMENTS_GATEWAY"] != "local":
        # Stripe expires its sessions itself and says so (checkout.session.expired), which the
        # worker applies; a missed one comes back with the daily sync.
        return JobResult("Stripe expires its own checkouts (checkout.session.expired)")
    from donations.payments.local.gateway import expire_stale_checkouts

    return JobResult(f"expired {expire_stale_checkouts(utcnow())} local checkouts left unpaid for 24 hours")


def annual_statements() -> JobResult:
    from donations.mail import statements

    year = local_date(utcnow()).year - 1
    with unit_of_work():
        queued = statements.queue_annual_statements(year)
        audit("statements.queue", actor=WORKER_ACTOR, target_type="year", target_id=year, details={"queued": queued})
    return JobResult(f"queued {queued} statements for {year}")


def renewal_reminders() -> JobResult:
    from donations.mail.reminders import queue_renewal_reminders

    with unit_of_work():
        queued = queue_renewal_reminders(utcnow())
        audit("reminders.queue", actor=WORKER_ACTOR, target_type="renewal", details={"queued": queued})
    return JobResult(f"queued {queued} reminders of annual renewals")


def housekeeping() -> JobResult:
    with unit_of_work():
        pruned = prune_runs()
    return JobResult(f"removed {pruned} schedule run records older than 400 days")


def ledger_verify() -> JobResult:
    from donations.operations.verify import verify_ledger

    violations = verify_ledger()
    if not violations:
        return JobResult("the ledger keeps every invariant", problems=0)
    kinds = sorted({violation.check for violation in violations})
    return JobResult(f"{len(violations)} violations: {', '.join(kinds)}", problems=len(violations))


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("payments-sync", payments_sync, "Apply Stripe events webhooks missed; reconcile payouts"),
        Job("expire-checkouts", expire_checkouts, "Expire checkouts left unpaid (local gateway)"),
        Job("annual-statements", annual_statements, "Queue last year's statements (in January)"),
        Job("housekeeping", housekeeping, "Remove old schedule run records"),
        Job("ledger-verify", ledger_verify, "Check the ledger's invariants"),
        Job("renewal-reminders", renewal_reminders, "Remind annual members a week before they renew"),
    )
}
