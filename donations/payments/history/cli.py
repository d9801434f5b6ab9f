"""`flask --app wsgi history ...`: bring a newsroom's past gifts and members in."""

from __future__ import annotations

import sys
from datetime import datetime

import click
from flask.cli import AppGroup

history_cli = AppGroup("history", help="Bring past gifts, members and donors in (from Stripe, or a CSV).")


def _print_summary(summary: dict, dry_run: bool) -> None:
    head = "Dry run: nothing was written. It would record:" if dry_run else "Recorded:"
    click.echo(head)
    for what, count in sorted(summary["recorded"].items()):
        click.echo(f"  {count:>8}  {what}")
    if not summary["recorded"]:
        click.echo("         0  (nothing new)")
    click.echo("Kept apart as not a gift (the account's other business):")
    for what, count in sorted(summary["not_gifts"].items()):
        click.echo(f"  {count:>8}  {what}")
    click.echo(f"Already recorded before: {summary['already']}")
    if summary["skipped"]:
        click.echo("Skipped:")
        for why, count in sorted(summary["skipped"].items()):
            click.echo(f"  {count:>8}  {why}")
    if summary["waiting"]:
        click.echo("Waiting (kept on /staff/events, retried by `payments sync`):")
        for why, count in sorted(summary["waiting"].items()):
            click.echo(f"  {count:>8}  {why}")
    listed = ", ".join(f"{name} {count}" for name, count in summary["listed"].items())
    click.echo(
        f"Listed: {listed or 'nothing'} ({summary['requests']} requests, {summary['rate_limited']} rate-limited)"
    )


@history_cli.command("stripe")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Local date (YYYY-MM-DD) of the oldest objects; default: all.",
)
@click.option("--dry-run", is_flag=True, help="Write nothing; print what would be recorded.")
def history_stripe(since: datetime | None, dry_run: bool) -> None:
    """Read the Stripe account's past through its list APIs and record every gift, membership,
    refund, dispute and payout (safe to run again; resumes where a stopped run stopped)."""
    from flask import current_app

    from donations.accounts.audit import audit, cli_actor
    from donations.clock import local_day_bounds
    from donations.extensions import db
    from donations.payments.gateway import GatewayError
    from donations.payments.history.stripe_import import Importer
    from donations.payments.history.stripe_lists import Lister, Pacer, history_client, requests_per_second

    config = current_app.config
    key = config.get("STRIPE_SECRET_KEY")
    if not key:
        raise click.ClickException("history stripe reads a Stripe account: set STRIPE_SECRET_KEY")
    client = history_client(key, config.get("STRIPE_API_BASE") or None, config["STRIPE_TIMEOUT_SECONDS"])
    start = local_day_bounds(since.date(), since.date())[0] if since else None
    terminal = sys.stdout.isatty()

    def progress(listing: str, done: int) -> None:
        if terminal:
            click.echo(f"\r{listing}: {done} listed ", nl=False)

    importer = Importer(Lister(client, Pacer(requests_per_second(key))), start, dry_run=dry_run, progress=progress)
    try:
        summary = importer.run().as_dict()
    except GatewayError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc} (what was recorded stays; run it again to go on)") from None
    except KeyboardInterrupt:
        db.session.rollback()
        raise click.ClickException("stopped: run it again to go on from where it stopped") from None
    if terminal:
        click.echo()
    if summary["resumed"]:
        click.echo("Went on from where the last run stopped.")
    _print_summary(summary, dry_run)
    if not dry_run:
        audit(
            "history.stripe",
            actor=cli_actor(),
            details={"since": since.date().isoformat() if since else None, **summary},
        )
        db.session.commit()
        click.echo("Run `payments sync` to reconcile the payouts' balance transactions.")
