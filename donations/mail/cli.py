"""`flask --app wsgi receipts ...`: the outbox worker and annual statements."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from donations.extensions import unit_of_work
from donations.mail import statements
from donations.mail.mailer import MailConfigError, transport_for
from donations.mail.worker import OutboxWorker, run_until_stopped

receipts_cli = AppGroup("receipts", help="Donor mail: the outbox worker and annual statements.")


def check_mail_config() -> None:
    config = current_app.config
    try:
        transport_for(current_app)
    except MailConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config["CONFIG_NAME"] == "production":
        if not config.get("SMTP_URL"):
            raise click.ClickException("production needs SMTP_URL: mail would only be written to files")
        if not config.get("PUBLIC_URL"):
            raise click.ClickException("production needs PUBLIC_URL for the links in donor mail")


@receipts_cli.command("work")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def work(once: bool) -> None:
    """Send queued mail until stopped (SIGTERM or Ctrl-C finish the message in hand first)."""
    check_mail_config()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if once:
        report = OutboxWorker().drain()
        click.echo(f"Sent {report.sent}, retrying later {report.retrying}, parked {report.parked}.")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo("Outbox worker running; stop with SIGTERM or Ctrl-C.")
    run_until_stopped(stop, float(current_app.config["RECEIPTS_POLL_SECONDS"]))


@receipts_cli.command("statements")
@click.option("--year", type=int, required=True, help="Calendar year, in the newsroom's time zone.")
def queue_statements(year: int) -> None:
    """Queue an annual statement for every donor who gave in YEAR (never twice per year)."""
    from donations.accounts.audit import audit, cli_actor

    try:
        with unit_of_work():
            queued = statements.queue_annual_statements(year)
            audit("statements.queue", actor=cli_actor(), target_type="year", target_id=year, details={"queued": queued})
    except statements.StatementError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Queued {queued} annual statement(s) for {year}; `receipts work` sends them.")
