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
    """Local gateway only: renew every membership whose period has ended, as Stripe would;
    a paused membership's renewals before its resume date are skipped (nothing charged)."""
    from flask import current_app

    from donations.clock import local_day_bounds, utcnow
    from donations.payments.local.billing import bill_due

    if current_app.config["PAYMENTS_GATEWAY"] != "local":
        raise click.ClickException("bill-due is for the local gateway: Stripe bills its own subscriptions")
    moment = local_day_bounds(as_of.date(), as_of.date())[1] if as_of else utcnow()
    summary = bill_due(moment)
    paused = f", skipped {summary.skipped} (paused)" if summary.skipped else ""
    click.echo(f"Billed {summary.billed}, declined {summary.declined}, ended {summary.ended}{paused}.")
    if summary.errors:
        raise click.ClickException("; ".join(summary.errors))


@payments_cli.group("gift-sources")
def gift_sources_cli() -> None:
    """Payment Links, Products, Prices and metadata values whose payments are gifts."""


@gift_sources_cli.command("add")
@click.argument("source")
@click.option("--fund", "fund_slug", default=None, help="Slug of the fund its gifts go to; default: the default fund.")
def gift_sources_add(source: str, fund_slug: str | None) -> None:
    """SOURCE: plink_..., prod_..., price_... or metadata:KEY=VALUE. The events already kept as
    not a gift that it matches are applied now."""
    from donations.accounts.audit import cli_actor
    from donations.extensions import unit_of_work
    from donations.payments.gift_source_admin import add_source
    from donations.payments.gift_sources import GiftSourceError

    try:
        with unit_of_work():
            added = add_source(source, fund_slug, cli_actor())
            rule_id, value = added.rule.id, added.rule.value
    except GiftSourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Gift source {rule_id} added: {value}.")
    click.echo(f"{added.events_applied} stored events applied as gifts; {added.events_waiting} waiting.")


@gift_sources_cli.command("list")
def gift_sources_list() -> None:
    """Every gift source, with its id and fund."""
    from donations.payments.gift_source_admin import list_sources
    from donations.payments.gift_sources import KIND_WORDS

    sources = list_sources()
    if not sources:
        click.echo("No gift sources: only payments the app created are gifts.")
    for rule, fund_slug in sources:
        click.echo(f"{rule.id}\t{KIND_WORDS[rule.kind]}\t{rule.value}\t{fund_slug or '(default fund)'}")


@gift_sources_cli.command("remove")
@click.argument("source_id", type=int)
def gift_sources_remove(source_id: int) -> None:
    """Later payments through it are not gifts; gifts already recorded stay in the ledger."""
    from donations.accounts.audit import cli_actor
    from donations.extensions import unit_of_work
    from donations.payments.gift_source_admin import remove_source
    from donations.payments.gift_sources import GiftSourceError

    try:
        with unit_of_work():
            value = remove_source(source_id, cli_actor()).value
    except GiftSourceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Gift source {source_id} removed: {value}.")


def _webhook_url(value: str | None) -> str:
    from urllib.parse import urlsplit

    from donations.payments.account_setup import default_webhook_url

    url = value or default_webhook_url()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{url!r} is not a web address such as https://give.example.org/stripe/webhook")
    return url


@payments_cli.command("setup-stripe")
@click.option(
    "--webhook-url",
    required=True,
    help="Where Stripe sends events: this site's /stripe/webhook, e.g. https://give.example.org/stripe/webhook.",
)
def setup_stripe_command(webhook_url: str) -> None:
    """Create or update the Stripe account's set-up; running it again changes nothing.

    Makes a Product per fund and frequency with a Price for each suggested amount (checkouts for
    those amounts use them, and members switch among them in the Billing Portal), the Billing
    Portal configuration (cancel, update card, change amount) and the webhook endpoint sending
    exactly the events the app handles, in the API version of the installed stripe library.
    Objects are found by this installation's metadata, never by name. The signing secret of a
    newly made endpoint is printed once: set STRIPE_WEBHOOK_SECRET to it."""
    from donations.accounts.audit import cli_actor
    from donations.extensions import unit_of_work
    from donations.payments.account_setup import set_up
    from donations.payments.gateway import GatewayError

    url = _webhook_url(webhook_url)
    try:
        with unit_of_work():
            done = set_up(url, cli_actor())
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None
    if done.note:
        click.echo(done.note)
        return
    for change in done.changes:
        click.echo(change)
    if not done.changes:
        click.echo("Nothing to change: the account already has everything the app needs.")
    click.echo(f"{len(done.prices)} prices for the funds' suggested amounts; checkouts for those amounts use them.")
    if done.webhook_secret:
        click.echo("")
        click.echo("The new webhook endpoint's signing secret (shown only now): set STRIPE_WEBHOOK_SECRET to")
        click.echo(done.webhook_secret)


@payments_cli.command("check-stripe")
@click.option(
    "--webhook-url",
    default=None,
    help="The webhook address the endpoint should have; default: PUBLIC_URL's /stripe/webhook.",
)
def check_stripe_command(webhook_url: str | None) -> None:
    """Compare the Stripe account with what the app needs, changing nothing: the products and
    prices of each fund and frequency, the Billing Portal configuration's features, and the
    webhook endpoint's address, events, API version and state. Prints each difference with its
    fix and exits with 1 when there is any. /healthz shows the last result."""
    from donations.extensions import unit_of_work
    from donations.payments.account_setup import check
    from donations.payments.gateway import GatewayError

    url = _webhook_url(webhook_url)
    try:
        with unit_of_work():
            found = check(url)
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None
    if found.note:
        click.echo(found.note)
        return
    if not found.differences:
        click.echo("The Stripe account has everything the app needs.")
        return
    click.echo(f"{len(found.differences)} differences between the Stripe account and what the app needs:")
    for difference in found.differences:
        click.echo(f"- {difference.problem}")
        click.echo(f"  Fix: {difference.fix}")
    raise SystemExit(1)
