"""The six reports: their numbers agree with each other, and each export (CSV, XLSX) reads back
to the numbers shown on screen, with formula injection neutralized."""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.grants import service
from donations.grants.comparison import compare_with_now, edits_after
from donations.grants.models import GrantProgram, ProgramSettings, ReportRun
from donations.grants.rules import RecurringRule
from donations.ledger.models import Donor, Frequency, Fund, Gift, Membership, MembershipChange, Reversal
from donations.payments.models import Payout
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import extract_csrf_token
from tests.grants.support import (
    change_amount,
    donor_rows,
    html_table,
    ledger_rows,
    local,
    make_membership,
    make_program,
    reverse,
    rows,
    summary,
)
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


# --- the numbers agree ------------------------------------------------------------------------------


def _clear_ledger() -> None:
    for model in (Reversal, Gift, MembershipChange, Membership, Donor):
        db.session.execute(delete(model))
    db.session.commit()


gift_specs = st.lists(
    st.fixed_dictionaries(
        {
            "donor": st.integers(0, 4),
            "membership": st.none() | st.integers(0, 1),
            "amount": st.integers(100, 80_000),
            "day": st.integers(-40, 75),  # days from Nov 1, 2026
            "other_fund": st.booleans(),
            "source": st.sampled_from(["stripe", "stripe", "check", "cash"]),
            "organization": st.booleans(),
            "anonymous": st.booleans(),
            "reversed": st.sampled_from([None, "part", "all"]),
        }
    ),
    min_size=1,
    max_size=14,
)


@given(specs=gift_specs, rule=st.sampled_from(list(RecurringRule)), raise_by=st.integers(0, 3_000))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_summary_totals_equal_the_sums_of_the_donors_report_and_of_the_ledger(fund, specs, rule, raise_by):
    _clear_ledger()
    program = db.session.scalar(select(GrantProgram).where(GrantProgram.slug == "agree")) or make_program(
        "agree", fund_ids=(fund.id,), sources=("stripe", "check")
    )
    program.recurring_rule = rule
    other_fund = db.session.scalar(select(Fund).where(Fund.slug == "agree-other")) or make_fund("agree-other")
    db.session.commit()
    donors = [make_donor(f"agree{n}@example.org", name=f"Donor {n}") for n in range(5)]
    memberships: dict[tuple[int, int], Membership] = {}
    for spec in sorted(specs, key=lambda s: s["day"]):
        donor = donors[spec["donor"]]
        membership = None
        if spec["membership"] is not None:
            key = (spec["donor"], spec["membership"])
            membership = memberships.get(key) or make_membership(donor, fund, spec["amount"])
            memberships[key] = membership
        gift = make_gift(
            donor,
            other_fund if spec["other_fund"] and not membership else fund,
            spec["amount"],
            received_at=local(2026, 11, 1) + timedelta(days=spec["day"]),
            source="stripe" if membership else spec["source"],
            organization="Acme LLC" if spec["organization"] else None,
            anonymous=spec["anonymous"],
            membership_id=membership.id if membership else None,
            frequency=Frequency.MONTHLY if membership else Frequency.ONE_TIME,
        )
        if spec["reversed"] == "all":
            reverse(gift, gift.amount_cents)
        elif spec["reversed"] == "part":
            reverse(gift, gift.amount_cents // 3 or 1)
    for membership in memberships.values():
        if raise_by:
            change_amount(membership, membership.amount_cents + raise_by, local(2026, 11, 20))

    report = service.build_report(program, "summary")
    measures = dict(report.rows)
    totals = report.totals
    donors_report = donor_rows(program)
    ledger = ledger_rows(program)
    gift_lines = [line for line in ledger if line["Reversal ID"] is None]

    counted = measures["Raised: counted toward the program"].cents
    matchable = measures["Matchable: counted, each donor capped"].cents
    assert (
        counted
        == sum(r["Counted ($)"].cents for r in donors_report)
        == sum(line["Counted ($)"].cents for line in gift_lines)
    )
    assert (
        matchable
        == sum(r["Matchable ($)"].cents for r in donors_report)
        == sum(line["Matchable ($)"].cents for line in gift_lines)
    )
    assert measures["Donors counted"] == sum(1 for r in donors_report if r["Counted ($)"].cents > 0)
    assert measures["Gifts paid in the window"] == sum(r["Gifts in window"] for r in donors_report) == len(gift_lines)
    assert totals["gifts_by_reason"] == dict(Counter(line["reason_code"] for line in gift_lines))
    assert measures["Paid in the window, before reversals"].cents == sum(line["Gross ($)"].cents for line in gift_lines)


# --- the files read back to the numbers on screen ----------------------------------------------------

INJECTED = '=HYPERLINK("http://x","y")'


def _normal(text: str) -> str:
    """A cell as comparable text: '$1,234.50' and '1234.50' are the same number."""
    text = text.strip()
    if text.startswith("'") and text[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        text = text[1:]
    money = text.replace("$", "").replace(",", "")
    try:
        return f"{Decimal(money):.2f}" if "." in money and "%" not in money else text
    except ArithmeticError:
        return text


def _xlsx_text(cell) -> str:
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if cell.number_format == "0.00%":
        return f"{Decimal(str(value)) * 100:.2f}%"
    if cell.number_format == "#,##0.00":
        return f"{Decimal(str(value)):.2f}"
    return str(value)


def _seed(fund) -> GrantProgram:
    program = make_program(goal_cents=500_000)
    tricky = make_donor("tricky@example.org", name=INJECTED)
    plain = make_donor("plain@example.org", name="Plain Person")
    minus = make_donor("minus@example.org", name="-2+3")
    quiet = make_donor("quiet@example.org", name="Quiet Donor")
    make_gift(tricky, fund, 250_000, received_at=local(2026, 11, 3))
    refunded = make_gift(plain, fund, 12_345, received_at=local(2026, 12, 24, 23, 59), fee_covered_cents=345)
    make_gift(minus, fund, 600_000, received_at=local(2026, 12, 1))
    make_gift(quiet, fund, 150_000, received_at=local(2026, 12, 2), anonymous=True)
    reverse(refunded, 2_345, at=local(2027, 1, 5))
    payout = Payout(
        id="po_test_1",
        amount_cents=240_000,
        currency="usd",
        status="paid",
        arrival_date=date(2026, 11, 6),
        created_at=local(2026, 11, 5),
    )
    db.session.add(payout)
    for gift in db.session.scalars(select(Gift).where(Gift.donor_id == tricky.id)):
        gift.stripe_payout_id = payout.id
        gift.stripe_fee_cents = 7_280
        gift.net_cents = gift.amount_cents - 7_280
    db.session.commit()
    return program


@pytest.mark.parametrize("kind", ["summary", "donors", "ledger", "reversals", "disclosure", "payouts"])
def test_csv_and_xlsx_read_back_to_the_numbers_on_screen(client, fund, kind):
    program = _seed(fund)
    sign_in(client, make_staff("finance"))
    page = client.get(f"/staff/grants/{program.slug}/reports/{kind}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    screen = [[_normal(cell) for cell in row] for row in html_table(html)]
    assert screen and screen[0] != ["Nothing to report."]
    token = extract_csrf_token(html)

    export_url = f"/staff/grants/{program.slug}/reports/{kind}/export"
    as_csv = client.post(export_url, data={"csrf_token": token, "format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["Content-Disposition"].startswith("attachment;")
    body = as_csv.get_data()
    header, *csv_rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    # The codes (reason_code, source_code, ...) are CSV's alone, after the columns in words.
    codes = [i for i, name in enumerate(header) if name == name.lower() and "_" in name]
    assert bool(codes) == (kind in ("donors", "ledger", "reversals"))
    assert codes == list(range(len(header) - len(codes), len(header)))
    words = [i for i in range(len(header)) if i not in codes]
    assert [[_normal(row[i]) for i in words] for row in csv_rows] == screen

    as_xlsx = client.post(export_url, data={"csrf_token": token, "format": "xlsx"})
    assert as_xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.get_data())).active
    xlsx_rows = [[_normal(_xlsx_text(cell)) for cell in row] for row in sheet.iter_rows(min_row=2)]
    assert [c.value for c in sheet[1]] == [header[i] for i in words]
    assert xlsx_rows == screen
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value  # no formula anywhere

    runs = list(db.session.scalars(select(ReportRun).order_by(ReportRun.id)))
    assert [(r.kind, r.format, r.row_count) for r in runs] == [(kind, "csv", len(screen)), (kind, "xlsx", len(screen))]
    assert runs[0].sha256 == hashlib.sha256(body).hexdigest()
    assert runs[1].sha256 == hashlib.sha256(as_xlsx.get_data()).hexdigest()
    assert runs[0].byte_size == len(body)
    exports = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "grant_report.export")).all()
    assert {entry.target_id for entry in exports} == {str(r.id) for r in runs}


def test_a_donor_named_like_a_formula_comes_out_inert(client, fund):
    program = _seed(fund)
    sign_in(client, make_staff("admin"))
    html = client.get(f"/staff/grants/{program.slug}/reports/donors").get_data(as_text=True)
    token = extract_csrf_token(html)
    body = client.post(
        f"/staff/grants/{program.slug}/reports/donors/export", data={"csrf_token": token, "format": "csv"}
    ).get_data()
    names = [row[1] for row in csv.reader(io.StringIO(body.decode("utf-8-sig")))]
    assert "'" + INJECTED in names
    assert "'-2+3" in names
    assert INJECTED not in names
    assert "Anonymous" in names
    assert "Quiet Donor" not in names
    xlsx = client.post(
        f"/staff/grants/{program.slug}/reports/donors/export", data={"csrf_token": token, "format": "xlsx"}
    ).get_data()
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx)).active
    cells = [row[1] for row in sheet.iter_rows(min_row=2)]
    assert any(cell.value == "'" + INJECTED and cell.data_type == "s" for cell in cells)


def test_the_summary_states_the_gifts_are_not_tax_deductible(fund):
    program = _seed(fund)
    measures = summary(program)
    assert "not tax deductible" in measures["Tax deductible"]
    assert measures["Tax deductible"].startswith("No.")
    assert all(line["tax_deductible"] == "false" for line in ledger_rows(program))


def test_ledger_lists_reversals_after_their_gift_with_any_date_range(fund):
    program = _seed(fund)
    lines = ledger_rows(program, first_day=date(2026, 12, 1), last_day=date(2026, 12, 31))
    assert sorted(line["Donor"] for line in lines if line["Reversal ID"] is None) == [
        "-2+3",
        "Anonymous",
        "Plain Person",
    ]
    [at] = [n for n, line in enumerate(lines) if line["Reversal ID"] is not None]
    assert lines[at - 1]["Gift ID"] == lines[at]["Gift ID"]  # right after its gift
    refund_line = lines[at]
    assert refund_line["Reversal ($)"].cents == 2_345
    assert refund_line["Date received"] == date(2027, 1, 5)
    [gift_line] = [line for line in lines if line["Gift ID"] == refund_line["Gift ID"] and not line["Reversal ID"]]
    assert gift_line["Counted ($)"].cents == 10_000
    assert gift_line["Fee covered ($)"].cents == 345
    assert gift_line["Date counted"] == date(2026, 12, 24)


def test_disclosure_lists_donors_over_1000_and_5000_and_the_anonymous_share(fund):
    _seed(fund)
    program = db.session.scalar(select(GrantProgram))
    lines = rows(program, "disclosure")
    donors = [line for line in lines if line[0] is not None]
    assert [(line[1], line[3].cents, line[4], line[5]) for line in donors] == [
        ("-2+3", 600_000, "$5,000 or more", False),
        (INJECTED, 250_000, "$1,000 or more", False),
        ("Anonymous", 150_000, "$1,000 or more", True),
    ]
    total, anonymous = lines[-2], lines[-1]
    assert total[3].cents == 600_000 + 250_000 + 150_000 + 10_000
    assert total[4] == "4 donors"
    assert anonymous[3].cents == 150_000
    assert anonymous[4].fraction == Decimal(150_000) / Decimal(1_010_000)


def test_payout_reconciliation(fund):
    program = _seed(fund)
    [line] = rows(program, "payouts")
    assert line[0] == "po_test_1"
    assert (line[3], line[4].cents, line[5].cents, line[8].cents, line[9].cents, line[10].cents) == (
        1,
        250_000,
        7_280,
        242_720,
        240_000,
        -2_720,
    )


# --- reversals after an export, re-runs, edits after an export ---------------------------------------


def test_reversal_recorded_after_an_export_is_flagged_after_export(client, fund):
    program = make_program()
    donor = make_donor(name="Refunded Later")
    early = make_gift(donor, fund, 5_000, received_at=local(2026, 11, 5))
    late = make_gift(donor, fund, 7_000, received_at=local(2026, 11, 6))
    reverse(early, 1_000)  # known before the export
    staff = make_staff("finance")
    path = _export(program, "donors", staff)
    reverse(late, 7_000, at=local(2026, 11, 7))  # dated in the window, recorded after the export
    lines = {line[0]: line for line in rows(program, "reversals")}
    by_gift = {line[5]: line for line in lines.values()}
    assert by_gift[early.id][13] is False
    assert by_gift[late.id][13] is True
    assert by_gift[late.id][14].startswith(f"#{path.id} on ")

    sign_in(client, staff)
    page = client.get(f"/staff/grants/runs/{path.id}?compare=1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "after export" in html
    assert ["Raised: counted toward the program", "$110.00", "$40.00"] in html_table(html, "changed")
    assert [row[-1] for row in html_table(html, "late-reversals")] == ["after export"]


def _export(program: GrantProgram, kind: str, actor) -> ReportRun:
    out = Path(tempfile.mkdtemp()) / f"{kind}.csv"
    run = service.export_to_file(program, kind, "csv", out, actor=actor)
    db.session.commit()
    return run


def test_re_running_an_export_shows_what_changed_since(fund):
    program = make_program()
    donor = make_donor()
    gift = make_gift(donor, fund, 5_000, received_at=local(2026, 11, 5))
    run = _export(program, "summary", "cli:tester")
    assert run.totals["counted_cents"] == 5_000
    reverse(gift, 2_000)
    make_gift(make_donor(), fund, 3_000, received_at=local(2026, 11, 9))
    comparison = compare_with_now(run)
    changed = {key: (then, now) for key, then, now in comparison.changed}
    assert changed["counted_cents"] == (5_000, 6_000)
    assert changed["donors_counted"] == (1, 2)
    assert [r.counted_by_run for r in comparison.reversals_after] == [True]
    assert [g.amount_cents for g in comparison.gifts_after] == [3_000]


def test_editing_a_program_after_an_export_is_recorded(fund):
    program = make_program()
    _export(program, "summary", "cli:tester")
    data = ProgramSettings(
        name=program.name,
        slug=program.slug,
        first_day=program.first_day,
        last_day=date(2027, 1, 15),
        cap_cents=program.cap_cents,
    )
    service.update_program(program, data, actor="cli:tester")
    db.session.commit()
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "grant_program.update")).one()
    assert entry.details["after_export"] is True
    assert entry.details["before"] == {"last_day": "2026-12-31"}
    assert entry.details["after"] == {"last_day": "2027-01-15"}
    run = db.session.scalars(select(ReportRun)).one()
    assert run.program_settings["last_day"] == "2026-12-31"
    assert edits_after(run) == [
        ("Window (local dates, inclusive)", "2026-11-01 to 2026-12-31", "2026-11-01 to 2027-01-15")
    ]


@pytest.mark.parametrize("kind", ["donors", "ledger", "reversals", "disclosure"])
def test_an_anonymous_donor_is_only_anonymous_and_an_id_in_every_export(client, fund, kind):
    """Issue 13, finding 7: the donors CSV printed `1,Anonymous,jane@example.com,Acme Hardware`.
    An anonymous gift's donor leaves the newsroom as "Anonymous" and the internal id, on every
    row (a named row with the same id would say who gave); staff pages still show who it is."""
    program = make_program()
    jane = make_donor("jane@example.com", name="Jane Doe", organization="Acme Hardware", postal_code="94110")
    jane.address_line1 = "12 Elm Street"
    db.session.commit()
    make_gift(jane, fund, 150_000, received_at=local(2026, 11, 3), anonymous=True)
    named = make_gift(jane, fund, 20_000, received_at=local(2026, 12, 1))
    reverse(named, 5_000, at=local(2026, 12, 5))
    make_gift(make_donor("plain@example.org", name="Plain Person"), fund, 2_000, received_at=local(2026, 11, 4))
    sign_in(client, make_staff("finance"))
    html = client.get(f"/staff/grants/{program.slug}/reports/{kind}").get_data(as_text=True)
    export_url = f"/staff/grants/{program.slug}/reports/{kind}/export"

    as_csv = client.post(export_url, data={"csrf_token": extract_csrf_token(html), "format": "csv"})
    as_xlsx = client.post(export_url, data={"csrf_token": extract_csrf_token(html), "format": "xlsx"})
    assert (as_csv.status_code, as_xlsx.status_code) == (200, 200)
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.get_data())).active
    for rows_out in (
        list(csv.reader(io.StringIO(as_csv.get_data().decode("utf-8-sig")))),
        [[cell.value for cell in row] for row in sheet.iter_rows()],
    ):
        text = " ".join(str(cell) for row in rows_out for cell in row if cell is not None)
        for secret in ("Jane", "jane@example.com", "Acme", "Elm Street", "94110"):
            assert secret not in text, (kind, secret)
        janes = [row for row in rows_out if "Anonymous" in row]
        assert janes and all(str(jane.id) in [str(cell) for cell in row] for row in janes)
        assert "Plain Person" in text or kind in ("reversals", "disclosure")  # others still named

    staff_page = client.get(f"/staff/donors/{jane.id}").get_data(as_text=True)
    assert "Jane Doe" in staff_page and "jane@example.com" in staff_page
