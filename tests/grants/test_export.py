"""The export writers' shortcuts give exactly what the slower general paths gave."""

from __future__ import annotations

import re
import tempfile
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st

from donations.grants import export
from donations.grants.reports import Money, Report
from donations.money import cents_to_decimal
from tests.factories import make_donor, make_fund, make_gift
from tests.grants.support import local, make_program, rows


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_xlsx_amounts_are_the_doubles_the_decimals_gave(cents):
    # The XLSX writer divides integer cents; it used to convert the Decimal amount to a float.
    assert cents / 100 == float(cents_to_decimal(cents))


DATES = [date(1900, 1, 1), date(1900, 2, 28), date(1900, 3, 1), date(2000, 2, 29), date(2025, 3, 9), date(9999, 12, 31)]


def _serials(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as book:
        return re.findall(r'<c r="A\d+" s="\d+"><v>([^<]*)</v>', book.read("xl/worksheets/sheet1.xml").decode())


def test_xlsx_dates_are_the_serials_xlsxwriter_computes():
    # The writer computes Excel's day numbers itself; they must be the ones write_datetime gave.
    report = Report(kind="ledger", title="t", columns=("Day", "Amount ($)"), rows=iter([]))
    report.rows = iter([(day, Money(-1205)) for day in DATES])
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.xlsx", Path(tmp) / "theirs.xlsx"
        assert export.write_xlsx(report, ours).row_count == len(DATES)
        book = xlsxwriter.Workbook(str(theirs))
        sheet, day_format = book.add_worksheet(), book.add_format({"num_format": "yyyy-mm-dd"})
        for row, day in enumerate(DATES, start=1):
            sheet.write_datetime(row, 0, datetime.combine(day, time.min), day_format)
        book.close()
        assert _serials(ours) == _serials(theirs)
        assert len(_serials(ours)) == len(DATES)
        sheet = openpyxl.load_workbook(ours).active
        later = [(row[0].value, row[0].number_format, row[1].value) for row in sheet.iter_rows(min_row=4)]
    # From 1900-03-01 on openpyxl reads them back as the same days (before, Excel's phantom
    # 1900-02-29 gets in the way of any reader).
    assert [(value.date(), fmt, amount) for value, fmt, amount in later] == [
        (day, "yyyy-mm-dd", -12.05) for day in DATES[2:]
    ]


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def test_disclosure_totals_when_nobody_reaches_1000(fund):
    program = make_program()
    for n, cents in enumerate((99_999, 50_000)):
        donor = make_donor(email=f"d{n}@example.org", name=f"Donor {n}")
        make_gift(donor, fund, cents, received_at=local(2026, 11, 5), anonymous=n == 1)
    lines = rows(program, "disclosure")
    assert [line[0] for line in lines] == [None, None]  # no donor listed, only the year's totals
    total, anonymous = lines
    assert (total[3].cents, total[4]) == (149_999, "2 donors")
    assert anonymous[3].cents == 50_000
    assert anonymous[4].fraction == Decimal(50_000) / Decimal(149_999)


def test_disclosure_of_a_year_without_gifts(fund):
    program = make_program()
    make_gift(make_donor(email="d@example.org"), fund, 200_000, received_at=local(2026, 11, 5))
    total, anonymous = rows(program, "disclosure", year=2020)
    assert (total[3].cents, total[4], anonymous[3].cents, anonymous[4].fraction) == (0, "0 donors", 0, Decimal(0))


def test_xlsx_columns_are_as_wide_as_their_content_and_codes_stay_in_csv():
    long_name = "Friends of the Valley Library and Historical Society"
    report = Report(
        kind="ledger",
        title="t",
        columns=("Gift ID", "Donor", "Gross ($)", "Day", "Counted or not, and why it was", "reason_code"),
        rows=iter([(7, "Ann", Money(5), date(2026, 11, 2), "Counted", "counted")]),
        csv_only=("reason_code",),
    )
    report.rows = iter(
        [
            (7, "Ann", Money(5), date(2026, 11, 2), "Counted", "counted"),
            (123456789012, long_name, Money(-123_456_789), None, "Not counted: outside the window", "outside_window"),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "widths.xlsx"
        export.write_xlsx(report, path)
        sheet = openpyxl.load_workbook(path).active
    headers = ["Gift ID", "Donor", "Gross ($)", "Day", "Counted or not, and why it was"]
    assert [cell.value for cell in sheet[1]] == headers
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDE"}
    # Each column at least as wide as its widest text (ids, names, -1,234,567.89, dates);
    # a long header wraps at its words rather than widening its column.
    assert widths["A"] >= len("123456789012")
    assert widths["B"] >= len(long_name)
    assert widths["C"] >= len("-1,234,567.89")
    assert widths["D"] >= len("2026-11-02")
    assert len("Not counted: outside the window") <= widths["E"] < len("Not counted: outside the window") + 5
    assert widths["A"] < 20 and widths["D"] < 15  # and no wider than they need


def test_csv_keeps_the_code_columns(tmp_path):
    report = Report(
        kind="ledger",
        title="t",
        columns=("Reason", "reason_code"),
        rows=iter([("Counted", "counted")]),
        csv_only=("reason_code",),
    )
    out = tmp_path / "r.csv"
    with out.open("wb") as handle:
        export.write_csv(report, handle)
    assert out.read_text(encoding="utf-8-sig").splitlines() == ["Reason,reason_code", "Counted,counted"]
