"""`flask --app wsgi worker` and `flask --app wsgi ledger verify`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

ledger_cli = AppGroup("ledger", help="The gift ledger's own checks.")


@click.command("worker")
@click.option("--once", is_flag=True, help="One turn (due events, mail, webhook deliveries and schedules), then exit.")
@click.option("--no-schedules", is_flag=True, help="Leave the schedules to other workers.")
@click.option("--no-mail", is_flag=True, help="Leave the outbox to other workers.")
def worker_command(once: bool, no_schedules: bool, no_mail: bool) -> None:
    """Apply Stripe events, send mail, deliver outgoing webhooks and run the schedules until
    SIGTERM (or Ctrl-C), which finishes the job in hand first. Run as many as you like."""
    from donations.mail.cli import check_mail_config
    from donations.operations.observability import configure_logging
    from donations.operations.worker import Worker, run_from_cli

    if not no_mail:
        check_mail_config()
    configure_logging(current_app.config.get("LOG_FORMAT"))
    if once:
        tally = Worker(schedules_on=not no_schedules, mail_on=not no_mail).run_once()
        ran = len(tally.schedule_runs)
        click.echo(
            f"Applied {tally.events} events, handled {tally.mail} messages and {tally.webhooks} webhook deliveries,"
            f" ran {ran} schedules."
        )
        return
    click.echo("Worker running; stop with SIGTERM or Ctrl-C (the job in hand finishes first).")
    run_from_cli(schedules_on=not no_schedules, mail_on=not no_mail)


@ledger_cli.command("verify")
def verify_command() -> None:
    """Check the ledger's invariants; print each violation with its rows; exit 1 if any."""
    from donations.operations.verify import CHECKS, verify_ledger

    violations = verify_ledger()
    for violation in violations:
        click.echo(str(violation))
    if violations:
        raise click.ClickException(f"{len(violations)} violations of the ledger's invariants")
    click.echo(f"The ledger keeps all {len(CHECKS)} invariants.")
