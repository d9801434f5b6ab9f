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
    assert (line["Date counted"], line["Reason"], line["tax_deductible"]) == ("2027-01-03", "outside_window", "false")
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
