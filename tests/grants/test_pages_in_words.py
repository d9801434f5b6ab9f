"""A program's page and a saved run's page say settings, totals and reversal kinds in words,
never the codes and keys they are stored by."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sqlalchemy import select

from donations.extensions import db
from donations.grants import service
from donations.grants.models import ReportRun
from donations.grants.rules import RecurringRule
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import page_text
from tests.grants.support import local, make_program, reverse
from tests.staff.support import make_staff, sign_in

CODES = ("new_recurring_x12", "['stripe'", "counted_cents", "gifts_by_reason", "first_day", "dispute_lost")


def test_the_program_and_a_saved_runs_pages_are_in_words(client, app, tmp_path):
    fund = make_fund("general", is_default=True)
    program = make_program(
        recurring_rule=RecurringRule.NEW_RECURRING_X12,
        sources=("stripe", "check", "other", "sponsor"),
        anonymous_limit_cents=500_000,
    )
    gift = make_gift(make_donor(), fund, 5_000, received_at=local(2026, 11, 5))
    run = service.export_to_file(program, "summary", "csv", tmp_path / "summary.csv", actor="cli:tester")
    db.session.commit()
    reverse(gift, 5_000, kind="dispute_lost")
    service.update_program(program, replace(program.settings(), last_day=date(2027, 1, 15)), actor="cli:tester")
    db.session.commit()
    sign_in(client, make_staff("viewer"))

    page = page_text(client.get(f"/staff/grants/{program.slug}/").get_data(as_text=True))
    for words in ("Online (Stripe), Check, Other, Fiscal sponsor", "New recurring donors count 12 x", "$5,000.00"):
        assert words in page
    run_id = db.session.scalars(select(ReportRun.id)).one()
    assert run_id == run.id
    page = page_text(client.get(f"/staff/grants/runs/{run_id}?compare=1").get_data(as_text=True))
    for words in (
        "Window (local dates, inclusive)",
        "2026-11-01 to 2026-12-31",
        "2026-11-01 to 2027-01-15",
        "Raised: counted toward the program",
        "Gifts: Counted",
        "Dispute lost",
    ):
        assert words in page, words
    for code in CODES:
        assert code not in page, code
