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
    refund, dispute and payout, a page of 100 per transaction (safe to run again; resumes where a
    stopped run stopped)."""
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


@history_cli.command("csv")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["generic", "npsp", "donorbox"]), default="generic", show_default=True
)
@click.option("--dry-run", is_flag=True, help="Check every row and print what would be imported; write nothing.")
def history_csv(file: str, fmt: str, dry_run: bool) -> None:
    """Import past donors and gifts from another system's CSV export. Every row is checked
    first: with any error nothing is written and each error is listed (line, column, value,
    reason). Running it again imports nothing twice, and a check already recorded (by hand or
    by another import: same number, amount and donor) is skipped, naming its gift. Rows for a
    fund held by a fiscal sponsor are the sponsor's report of its gifts: recorded with source
    `sponsor`, tax deductible."""
    from donations.accounts.audit import audit, cli_actor
    from donations.extensions import unit_of_work
    from donations.money import format_money
    from donations.payments.history.csv_import import dry_run_summary, import_rows, parse

    try:
        with open(file, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise click.ClickException("the file is not UTF-8 text: export it as CSV UTF-8") from None
    parsed = parse(text, fmt)
    if parsed.errors:
        for error in parsed.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(f"{len(parsed.errors)} errors: nothing was imported. Fix them and run it again.")
    if dry_run:
        summary = dry_run_summary(parsed)
        head = "Dry run: nothing was written. It would import"
    else:
        with unit_of_work():
            summary = import_rows(parsed)
            audit(
                "history.csv",
                actor=cli_actor(),
                details={"file": file[-200:], "format": fmt, "imported": summary.imported, "already": summary.already},
            )
        head = "Imported"
    for words in summary.same_check_words(dry_run=dry_run):
        click.echo(words)
    click.echo(
        f"{head} {summary.imported} gifts ({format_money(summary.amount_cents)}); "
        f"{summary.already} imported before; {len(summary.same_checks)} checks already recorded; "
        f"{summary.skipped} skipped (not won or not paid); {summary.rows} valid rows."
    )
