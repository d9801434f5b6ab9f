"""Issue 16, items 4 and 5 in the grant reports: each counted membership's status and
cancellation (ledger and donors), the summary's count of new recurring donors who canceled
within the window; gifts a fiscal sponsor received counted where their fund is, and marked
deductible with the sponsor named, the not-deductible statement kept for every other gift."""

from __future__ import annotations

from datetime import date

import pytest

from donations.extensions import db
from donations.grants.rules import RecurringRule
from donations.ledger import funds
from donations.ledger.models import Frequency, Membership
from tests.factories import make_donor, make_fund, make_gift
from tests.grants.support import donor_rows, ledger_rows, local, make_membership, make_program, summary

SPONSOR = funds.Sponsor("Valley Community Foundation", "12-3456789")


@pytest.fixture
def fund(app):
    return make_fund("general", is_default=True)


def installment(donor, fund, membership, cents, when):
    return make_gift(donor, fund, cents, received_at=when, membership_id=membership.id, frequency=Frequency.MONTHLY)


def cancel(membership: Membership, when) -> None:
    membership.status = "canceled"
    membership.canceled_at = when
    db.session.commit()


def test_canceled_memberships_show_their_status_and_date_and_the_summary_counts_them(fund):
    program = make_program(recurring_rule=RecurringRule.NEW_RECURRING_X12)
    quitter, stayer, later = make_donor("quit@example.org"), make_donor("stay@example.org"), make_donor()
    quit_m = make_membership(quitter, fund, 2_000)
    stay_m = make_membership(stayer, fund, 1_000)
    later_m = make_membership(later, fund, 1_500)
    installment(quitter, fund, quit_m, 2_000, local(2026, 11, 5))
    installment(stayer, fund, stay_m, 1_000, local(2026, 11, 6))
    installment(later, fund, later_m, 1_500, local(2026, 12, 20))
    cancel(quit_m, local(2026, 12, 2, 9))
    cancel(later_m, local(2027, 1, 10))  # after the window: not counted as canceled within it

    by_donor = {row["Donor ID"]: row for row in donor_rows(program)}
    assert (by_donor[quitter.id]["Membership status"], by_donor[quitter.id]["Membership canceled"]) == (
        "Canceled",
        date(2026, 12, 2),
    )
    assert (by_donor[stayer.id]["Membership status"], by_donor[stayer.id]["Membership canceled"]) == ("Active", None)
    assert by_donor[later.id]["Membership canceled"] == date(2027, 1, 10)
    # Still 12 x: no published rule says a cancellation undoes it; the reader sees it.
    assert by_donor[quitter.id]["Counted ($)"].cents == 24_000

    [line] = [row for row in ledger_rows(program) if row["Donor ID"] == quitter.id]
    assert (line["Membership status"], line["Membership canceled"]) == ("Canceled", date(2026, 12, 2))
    assert line["Reason"] == "Counted as 12 x a new recurring gift"
    assert line["reason_code"] == "new_recurring_x12"

    totals = summary(program)
    assert totals["New recurring donors"] == 3
    assert totals["New recurring donors who canceled within the window"] == 1


def test_a_sponsors_gifts_count_where_their_fund_counts_and_say_they_are_deductible(fund):
    held = make_fund("schools", name="Schools Reporting Fund", sponsor=SPONSOR)
    everything = make_program("local-2026", name="Local match")
    own_only = make_program("own-2026", name="Own funds", fund_ids=(fund.id,))
    donor, plain = make_donor("give@example.org"), make_donor()
    make_gift(donor, held, 40_000, received_at=local(2026, 11, 10), source="sponsor")
    make_gift(plain, fund, 5_000, received_at=local(2026, 11, 11), source="check", check_number="7")

    lines = {row["Donor ID"]: row for row in ledger_rows(everything)}
    sponsored = lines[donor.id]
    assert (sponsored["Source"], sponsored["source_code"], sponsored["reason_code"]) == (
        "Fiscal sponsor",
        "sponsor",
        "counted",
    )
    assert (
        sponsored["Tax deductible"] == "Yes: received by Valley Community Foundation (EIN 12-3456789), fiscal sponsor"
    )
    assert sponsored["tax_deductible"] == "true"
    assert (lines[plain.id]["Tax deductible"], lines[plain.id]["tax_deductible"]) == ("No", "false")
    assert summary(everything)["Raised: counted toward the program"].cents == 45_000
    assert summary(everything)["Tax deductible: Schools Reporting Fund"].startswith("Yes: received by Valley")
    assert summary(everything)["Tax deductible: every other gift"].startswith("No. Gifts to")
    by_donor = {row["Donor ID"]: row for row in donor_rows(everything)}
    assert by_donor[donor.id]["Tax deductible, through a fiscal sponsor ($)"].cents == 40_000
    assert by_donor[plain.id]["Tax deductible, through a fiscal sponsor ($)"] is None

    # A program that does not count the sponsor-held fund neither counts its gifts nor speaks of it.
    assert summary(own_only)["Raised: counted toward the program"].cents == 5_000
    assert summary(own_only)["Tax deductible"].startswith("No. Gifts to")
    assert {row["Donor ID"]: row["reason_code"] for row in ledger_rows(own_only)}[donor.id] == "fund_not_counted"
