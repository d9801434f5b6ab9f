"""`flask --app wsgi payments ...`"""

from __future__ import annotations

from datetime import datetime, timedelta

import click
from flask.cli import AppGroup

payments_cli = AppGroup("payments", help="Stripe events, billing and reconciliation.")

# Stripe retries a webhook for three days: a daily sync looking back as far overlaps safely.
DEFAULT_SYNC_DAYS = 3


@payments_cli.command("sync")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help=f"Local date (YYYY-MM-DD) of the oldest events to look at; default: {DEFAULT_SYNC_DAYS} days ago. "
    "Stripe keeps events for 30 days.",
)
def sync_command(since: datetime | None) -> None:
    """Apply every Stripe event not applied yet, retry failed ones, reconcile payouts."""
    from flask import current_app

    from donations.clock import local_day_bounds, utcnow
    from donations.payments.sync import run_sync

    if current_app.config["PAYMENTS_GATEWAY"] == "local":
        # Stripe expires abandoned checkouts itself; the local gateway does it here.
        from donations.payments.local.gateway import expire_stale_checkouts

        click.echo(f"Expired {expire_stale_checkouts(utcnow())} local checkouts left unpaid for 24 hours.")
    start = local_day_bounds(since.date(), since.date())[0] if since else utcnow() - timedelta(days=DEFAULT_SYNC_DAYS)
    run = run_sync(start)
    click.echo(f"Sync {run.id}: {run.events_seen} events listed, {run.events_applied} applied.")
    if not run.succeeded:
        raise click.ClickException(f"sync failed: {run.error}")


@payments_cli.command("refund")
@click.argument("gift_id", type=int)
@click.option("--amount", type=click.IntRange(min=1), default=None, help="Cents to refund; default: all that is left.")
@click.option("--reason", required=True, help="Why (kept in the audit log and on the refund).")
def refund_command(gift_id: int, amount: int | None, reason: str) -> None:
    """Ask Stripe to refund a gift; the ledger records it when Stripe's events arrive."""
    from donations.accounts.audit import cli_actor
    from donations.payments.refunds import RefundError, request_refund

    try:
        refund_id = request_refund(gift_id, amount, reason, actor=cli_actor())
    except RefundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Refund {refund_id} requested for gift {gift_id}.")


@payments_cli.command("bill-due")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Bill as if it were the end of this local date (YYYY-MM-DD); default: now.",
)
def bill_due_command(as_of: datetime | None) -> None:
    """Local gateway only: renew every membership whose period has ended, as Stripe would."""
    from flask import current_app

    from donations.clock import local_day_bounds, utcnow
    from donations.payments.local.billing import bill_due

    if current_app.config["PAYMENTS_GATEWAY"] != "local":
        raise click.ClickException("bill-due is for the local gateway: Stripe bills its own subscriptions")
    moment = local_day_bounds(as_of.date(), as_of.date())[1] if as_of else utcnow()
    summary = bill_due(moment)
    click.echo(f"Billed {summary.billed}, declined {summary.declined}, ended {summary.ended}.")
    if summary.errors:
        raise click.ClickException("; ".join(summary.errors))
