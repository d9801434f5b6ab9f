"""Command-line interface: `flask --app wsgi GROUP COMMAND`. Each area owns its commands."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from donations.accounts import service as accounts
from donations.accounts.audit import cli_actor
from donations.extensions import db, unit_of_work
from donations.staff import service as staff_service

staff_cli = AppGroup("staff", help="Staff accounts.")
funds_cli = AppGroup("funds", help="Funds (designations and campaigns).")
demo_cli = AppGroup("demo", help="Demo data for development.")


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "finance", "viewer"]), required=True)
@click.option("--name", default=None)
@click.option("--ask", is_flag=True, help="Ask for the password instead of printing a one-time one.")
def staff_create(email: str, role: str, name: str | None, ask: bool) -> None:
    """Create a staff user and print a one-time password (or ask for one with --ask)."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True) if ask else accounts.new_password()
    try:
        with unit_of_work():
            # A printed password is one-time: the first sign-in asks for the user's own.
            user = accounts.create_staff_user(email, role, password, name=name, must_change_password=not ask)
            staff_service.audit(
                "staff.create", actor=cli_actor(), target_type="staff_user", target_id=user.id, details={"role": role}
            )
    except accounts.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {role} {user.email}.")
    if not ask:
        click.echo(f"One-time password: {password}")


def _parse_amounts(text: str) -> list[int]:
    from donations.money import AmountError, parse_dollars

    try:
        return [parse_dollars(part) for part in text.split(",") if part.strip()]
    except AmountError as exc:
        raise click.BadParameter(str(exc)) from None


@funds_cli.command("add")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--description", default="")
@click.option("--goal", "goal", default=None, help="Goal in dollars, e.g. 25000.")
@click.option("--suggested", default=None, help="One-time suggested amounts in dollars, comma separated.")
@click.option("--default", "is_default", is_flag=True, help="Receive gifts that name no fund.")
@click.option("--show-progress", is_flag=True, help="Show a progress bar on the fund's gift page.")
def funds_add(
    slug: str,
    name: str,
    description: str,
    goal: str | None,
    suggested: str | None,
    is_default: bool,
    show_progress: bool,
) -> None:
    """Add a fund people can give to at /give/SLUG."""
    from donations.ledger import funds

    try:
        with unit_of_work():
            fund = funds.create_fund(
                slug=slug,
                name=name,
                description=description,
                goal_cents=_parse_amounts(goal)[0] if goal else None,
                suggested_amounts={"one_time": _parse_amounts(suggested)} if suggested else {},
                is_default=is_default,
                show_progress=show_progress,
            )
            staff_service.audit(
                "fund.create", actor=cli_actor(), target_type="fund", target_id=fund.id, details={"slug": slug}
            )
    except funds.FundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added fund {fund.slug}: /give/{fund.slug}")


@demo_cli.command("seed")
@click.option("--reset", is_flag=True, help="Delete everything in the database first and seed it afresh.")
def demo_seed(reset: bool) -> None:
    """A living demo newsroom (about eighteen months of giving) and an admin (DEMO_STAFF_EMAIL)
    whose new password is printed last. Development only: refused in production. Running it
    again leaves a seeded database as it is (only the admin's password is new)."""
    from sqlalchemy import select

    from donations import demo
    from donations.accounts.models import StaffUser

    if current_app.config["CONFIG_NAME"] == "production":
        raise click.ClickException("demo data is never seeded in production")
    with unit_of_work():
        if reset:
            demo.wipe()
        summary = demo.seed()
        email = os.environ.get("DEMO_STAFF_EMAIL", "admin@example.org")
        password = accounts.new_password()
        user = db.session.scalar(select(StaffUser).where(StaffUser.email == email))
        if user is None:
            accounts.create_staff_user(email, "admin", password, name="Demo Admin")
        else:
            user.password_hash = accounts.hash_password(password)
            user.must_change_password = False
    if summary is None:
        click.echo("The demo newsroom is already seeded: nothing changed (`demo seed --reset` starts over).")
    else:
        click.echo(
            f"Seeded the demo newsroom: {summary.one_time} one-time gifts online, {summary.members} members "
            f"({summary.installments} installments, {summary.paused} paused), {summary.checks} mailed checks, "
            f"{summary.sponsor_gifts} gifts through a fiscal sponsor, {summary.refunds} refunds, "
            f"{summary.disputes} disputes (one lost, one won), {summary.payouts} payouts, three funds (one held "
            "by a fiscal sponsor), and NewsMatch and Report for America programs."
        )
    click.echo("Gift page: /give/community-forums")
    click.echo(f"Staff sign-in at /staff/: {email} / {password}")


def register(app: Flask) -> None:
    for group in (staff_cli, funds_cli, demo_cli):
        app.cli.add_command(group)
    from donations.payments.cli import payments_cli

    app.cli.add_command(payments_cli)
    from donations.payments.history.cli import history_cli

    app.cli.add_command(history_cli)
    from donations.mail.cli import receipts_cli

    app.cli.add_command(receipts_cli)
    from donations.grants.cli import grants_cli

    app.cli.add_command(grants_cli)
    from donations.privacy.service import privacy_cli

    app.cli.add_command(privacy_cli)
    from donations.operations.cli import ledger_cli, worker_command

    app.cli.add_command(ledger_cli)
    app.cli.add_command(worker_command)
