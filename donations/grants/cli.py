"""`flask --app wsgi grants ...`: grant programs and their reports from the command line."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import cast

import click
from flask.cli import AppGroup

from donations.extensions import unit_of_work
from donations.grants import service
from donations.grants.models import ALL_SOURCES, REPORT_FORMATS, REPORT_KINDS, ProgramSettings
from donations.grants.packet import build_packet
from donations.grants.presets import PRESETS, PresetError, preset
from donations.grants.reports import ReportError, ReportParams
from donations.grants.rules import RecurringRule
from donations.ledger.service import fund_by_slug
from donations.money import AmountError, parse_dollars

grants_cli = AppGroup("grants", help="Matching-grant programs and their reports.")


def _actor() -> str:
    from donations.accounts.audit import cli_actor

    return cli_actor()


def _dollars(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return parse_dollars(value)
    except AmountError as exc:
        raise click.BadParameter(str(exc)) from None


def _fund_id(slug: str) -> int:
    fund = fund_by_slug(slug)
    if fund is None:
        raise click.BadParameter(f"no fund {slug}")
    return fund.id


@grants_cli.command("add-program")
@click.argument("slug")
@click.option("--preset", "preset_name", type=click.Choice(PRESETS), help="Start from a program's published rules.")
@click.option("--name", default=None, help="Required without --preset.")
@click.option("--first", "first_day", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First local day.")
@click.option("--last", "last_day", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Last local day.")
@click.option("--cap", default=None, help="Per-donor cap in dollars, e.g. 1000.")
@click.option("--goal", default=None, help="Local-match goal in dollars.")
@click.option("--fund", "funds", multiple=True, help="A fund slug to count (repeat; default: every fund).")
@click.option("--source", "sources", multiple=True, type=click.Choice(ALL_SOURCES), help="Repeat; default: all.")
@click.option("--include-organizations", is_flag=True, help="Count gifts given for organizations too.")
@click.option("--recurring-rule", type=click.Choice([rule.value for rule in RecurringRule]), default=None)
@click.option("--anonymous-limit", default=None, help="Anonymous gifts above these dollars are not matched.")
@click.option("--program-cap", default=None, help="The most the program matches in all, in dollars.")
@click.option("--exclusive-with", multiple=True, help="A program slug a gift may count in instead (repeat).")
@click.option("--priority", type=click.IntRange(0, 1000), default=None, help="Lower first among exclusive programs.")
@click.option("--local-prefix", "local_prefixes", multiple=True, help="A local postal-code prefix (repeat).")
@click.option("--local-state", "local_states", multiple=True, help="A local state, e.g. OR (repeat).")
@click.option("--salary", default=None, help="rfa: the corps member's salary in dollars (sets the goal).")
@click.option("--corps-year", type=click.IntRange(1, 3), default=1, show_default=True, help="rfa: year 1, 2 or 3.")
@click.option("--notes", default=None)
@click.option("--public-fund", default=None, help="Show the progress bar on this fund's gift page.")
def add_program(slug: str, preset_name: str | None = None, **options: object) -> None:
    """Add a grant program counting gifts from --first to --last (local dates, inclusive)."""
    try:
        data = _program_settings(slug, preset_name, options)
        with unit_of_work():
            program = service.create_program(data, actor=_actor())
    except (service.GrantError, PresetError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Added grant program {program.slug}: {program.first_day} to {program.last_day}.")


def _program_settings(slug: str, preset_name: str | None, o: dict[str, object]) -> ProgramSettings:
    first = cast(datetime, o["first_day"]).date()
    last = cast(datetime, o["last_day"]).date() if o["last_day"] else None
    name = cast(str | None, o["name"])
    if preset_name is None:
        if not name or last is None:
            raise click.UsageError("--name and --last are required without --preset.")
        data = ProgramSettings(name=name, slug=slug, first_day=first, last_day=last)
    else:
        salary = _dollars(cast(str | None, o["salary"]))
        default_name = {"newsmatch": "NewsMatch", "rfa": "Report for America", "local": "Local match"}[preset_name]
        data = preset(
            preset_name,
            name=name or f"{default_name} {first.year}",
            slug=slug,
            first_day=first,
            last_day=last,
            salary_cents=salary,
            corps_year=cast(int, o["corps_year"]),
        )
    changes: dict[str, object] = {}
    for option, field in (("cap", "cap_cents"), ("goal", "goal_cents"), ("anonymous_limit", "anonymous_limit_cents")):
        if o[option] is not None:
            changes[field] = _dollars(cast(str, o[option]))
    if o["program_cap"] is not None:
        changes["program_cap_cents"] = _dollars(cast(str, o["program_cap"]))
    if o["funds"]:
        changes["fund_ids"] = tuple(_fund_id(f) for f in cast(tuple[str, ...], o["funds"]))
    if o["sources"]:
        changes["sources"] = o["sources"]
    if o["include_organizations"]:
        changes["individuals_only"] = False
    for option in ("recurring_rule", "priority", "notes"):
        if o[option] is not None:
            changes[option] = o[option]
    for option, field in (
        ("exclusive_with", "exclusive_with"),
        ("local_prefixes", "local_postal_prefixes"),
        ("local_states", "local_states"),
    ):
        if o[option]:
            changes[field] = tuple(cast(tuple[str, ...], o[option]))
    if o["public_fund"]:
        changes["public_fund_id"] = _fund_id(cast(str, o["public_fund"]))
    return replace(data, **changes)  # type: ignore[arg-type]


@grants_cli.command("list")
def list_programs() -> None:
    """The grant programs, latest window first."""
    for program in service.list_programs():
        click.echo(f"{program.slug}\t{program.first_day} to {program.last_day}\t{program.name}")


def _day(value: datetime | None) -> date | None:
    return None if value is None else value.date()


@grants_cli.command("report")
@click.argument("program_slug", metavar="PROGRAM")
@click.option("--kind", type=click.Choice(REPORT_KINDS), required=True)
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
@click.option(
    "--from",
    "first_day",
    type=click.DateTime(["%Y-%m-%d"]),
    help="ledger: first local day; payouts: first arrival date.",
)
@click.option(
    "--to", "last_day", type=click.DateTime(["%Y-%m-%d"]), help="ledger: last local day; payouts: last arrival date."
)
@click.option("--year", type=int, help="disclosure: the calendar year (default: the window's).")
def report(
    program_slug: str,
    kind: str,
    fmt: str,
    output: Path,
    first_day: datetime | None,
    last_day: datetime | None,
    year: int | None,
) -> None:
    """Export one of PROGRAM's reports to a file, saved as a report run (who, when, SHA-256)."""
    program = service.program_by_slug(program_slug)
    if program is None:
        raise click.ClickException(f"no grant program {program_slug}")
    params = ReportParams(first_day=_day(first_day), last_day=_day(last_day), year=year)
    try:
        with unit_of_work():
            rows = service.estimate_rows(program, kind, params) if sys.stderr.isatty() else None
            if rows:
                with click.progressbar(length=rows, label=f"Writing {kind}", show_pos=True, file=sys.stderr) as bar:
                    run = service.export_to_file(
                        program, kind, fmt, output, actor=_actor(), params=params, progress=bar.update
                    )
            else:
                run = service.export_to_file(program, kind, fmt, output, actor=_actor(), params=params)
    except (service.GrantError, ReportError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote {run.row_count} rows to {output} (report run #{run.id}, sha256 {run.sha256}).")


@grants_cli.command("packet")
@click.argument("program_slug", metavar="PROGRAM")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), required=True)
def packet(program_slug: str, output: Path) -> None:
    """Write PROGRAM's funder packet to a ZIP file: a one-page PDF cover sheet (rules, money
    raised, donors, local share, pledges, and the SHA-256 of every other file), the donors,
    gift ledger and refunds reports as CSV and XLSX, and the pledge documents. Saved as a
    report run (a funder link can share it) and audited."""
    program = service.program_by_slug(program_slug)
    if program is None:
        raise click.ClickException(f"no grant program {program_slug}")
    try:
        with unit_of_work():
            built = build_packet(program, actor=_actor())
            output.write_bytes(built.content)
    except service.GrantError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"Wrote the funder packet to {output}: {built.run.row_count} files "
        f"(report run #{built.run.id}, sha256 {built.run.sha256})."
    )
