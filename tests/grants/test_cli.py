"""`flask --app wsgi grants add-program` and `grants report`."""

from __future__ import annotations

import csv
import getpass
import hashlib
from datetime import date

import openpyxl
import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.grants import service
from donations.grants.models import GrantProgram, ReportRun
from tests.factories import make_donor, make_fund, make_gift
from tests.grants.support import local


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def report(runner, *args: str):
    return runner.invoke(args=["grants", "report", "newsmatch-2026", *args])


def add_program(runner, *extra: str):
    return runner.invoke(
        args=[
            "grants",
            "add-program",
            "newsmatch-2026",
            "--name",
            "NewsMatch 2026",
            "--first",
            "2026-11-01",
            "--last",
            "2026-12-31",
            "--cap",
            "1000",
            "--goal",
            "25,000",
            *extra,
        ]
    )


def test_add_program(runner, fund):
    result = add_program(
        runner, "--fund", fund.slug, "--source", "stripe", "--source", "check", "--recurring-rule", "new_recurring_x12"
    )
    assert result.exit_code == 0, result.output
    program = db.session.scalars(select(GrantProgram)).one()
    assert (program.first_day, program.last_day) == (date(2026, 11, 1), date(2026, 12, 31))
    assert (program.cap_cents, program.goal_cents, program.fund_ids) == (100_000, 2_500_000, [fund.id])
    assert (program.sources, program.individuals_only, program.recurring_rule) == (
        ["stripe", "check"],
        True,
        "new_recurring_x12",
    )
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.actor) == ("grant_program.create", f"cli:{getpass.getuser()}")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--fund", "nope"), "no fund nope"),
        (("--cap", "ten"), "Enter an amount"),
        (("--last", "2026-10-01"), "before its first day"),
    ],
)
def test_add_program_refuses_bad_input(runner, fund, extra, message):
    result = add_program(runner, *extra)
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(select(GrantProgram.id)) is None


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_report_to_a_file_is_saved_as_a_run(runner, fund, tmp_path, fmt):
    assert add_program(runner).exit_code == 0
    make_gift(make_donor(name="Ada"), fund, 150_000, received_at=local(2026, 11, 5))
    make_gift(make_donor(name="Bo"), fund, 2_500, received_at=local(2026, 12, 31, 23, 59))
    out = tmp_path / f"donors.{fmt}"
    result = report(runner, "--kind", "donors", "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.output
    run = db.session.scalars(select(ReportRun)).one()
    assert run.actor == f"cli:{getpass.getuser()}"
    assert run.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert f"report run #{run.id}" in result.output
    if fmt == "csv":
        lines = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
        matchable = [line["Matchable ($)"] for line in lines]
    else:
        sheet = openpyxl.load_workbook(out).active
        header = [cell.value for cell in sheet[1]]
        column = header.index("Matchable ($)")
        matchable = [f"{row[column].value:.2f}" for row in sheet.iter_rows(min_row=2)]
    assert matchable == ["1000.00", "25.00"]
    assert run.row_count == 2
    assert run.totals["matchable_cents"] == 102_500


def test_report_ledger_for_any_date_range_and_disclosure_year(runner, fund, tmp_path):
    assert add_program(runner).exit_code == 0
    make_gift(make_donor(), fund, 5_000, received_at=local(2027, 1, 3))
    out = tmp_path / "ledger.csv"
    result = report(runner, "--kind", "ledger", "-o", str(out), "--from", "2027-01-01", "--to", "2027-01-31")
    assert result.exit_code == 0, result.output
    [line] = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert (line["Date counted"], line["reason_code"], line["tax_deductible"]) == (
        "2027-01-03",
        "outside_window",
        "false",
    )
    assert (line["Reason"], line["Tax deductible"]) == ("Not counted: outside the window", "No")
    out = tmp_path / "disclosure.csv"
    result = report(runner, "--kind", "disclosure", "--year", "2027", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert db.session.scalars(select(ReportRun.parameters).order_by(ReportRun.id)).all() == [
        {"first_day": "2027-01-01", "last_day": "2027-01-31"},
        {"year": 2027},
    ]


def test_report_refuses_an_unknown_program_or_a_bad_range(runner, fund, tmp_path):
    out = tmp_path / "x.csv"
    result = runner.invoke(args=["grants", "report", "nope", "--kind", "summary", "-o", str(out)])
    assert result.exit_code != 0
    assert "no grant program nope" in result.output
    assert add_program(runner).exit_code == 0
    result = report(runner, "--kind", "ledger", "-o", str(out), "--from", "2027-01-31", "--to", "2027-01-01")
    assert result.exit_code != 0
    assert "before the first day" in result.output
    assert db.session.scalar(select(ReportRun.id)) is None


def test_add_program_with_the_newsmatch_preset_sets_its_published_rules(runner) -> None:
    args = ["grants", "add-program", "newsmatch-2026", "--preset", "newsmatch", "--first", "2026-11-01"]
    result = runner.invoke(args=[*args, "--program-cap", "20000"])
    assert result.exit_code == 0, result.output
    settings = service.program_by_slug("newsmatch-2026").settings()
    assert (settings.name, settings.last_day) == ("NewsMatch 2026", date(2026, 12, 31))
    assert (settings.cap_cents, settings.anonymous_limit_cents, settings.program_cap_cents) == (
        100_000,
        500_000,
        2_000_000,
    )
    assert "cash" not in settings.sources and settings.individuals_only
    assert settings.recurring_rule == "new_recurring_x12" and settings.deduct_fair_market_value
    assert "help center" in settings.notes


def test_add_program_with_the_rfa_preset_sets_a_june_to_may_year_and_the_local_share(runner) -> None:
    args = ["grants", "add-program", "rfa-2026", "--preset", "rfa", "--first", "2026-06-01", "--salary", "50000"]
    result = runner.invoke(
        args=[*args, "--corps-year", "2", "--local-state", "OR", "--exclusive-with", "newsmatch-2026"]
    )
    assert result.exit_code == 0, result.output
    settings = service.program_by_slug("rfa-2026").settings()
    assert (settings.first_day, settings.last_day) == (date(2026, 6, 1), date(2027, 5, 31))
    assert settings.goal_cents == 1_666_666  # a third of $50,000
    assert settings.local_states == ("OR",) and settings.exclusive_with == ("newsmatch-2026",)
    assert "Report for America" in settings.notes


def test_add_program_without_a_preset_still_needs_a_name_and_a_last_day(runner) -> None:
    result = runner.invoke(args=["grants", "add-program", "x-2026", "--first", "2026-06-01"])
    assert result.exit_code != 0 and "--name and --last" in result.output
