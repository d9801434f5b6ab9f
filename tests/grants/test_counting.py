"""The rules through the database: window edges at local midnight (across daylight-saving
changes), postmarks, reversals, organizations, anonymity, memberships, donor identity."""

from __future__ import annotations

from datetime import date

import pytest

from donations.extensions import db
from donations.grants.rules import RecurringRule
from donations.ledger import service as ledger
from donations.ledger.models import Frequency, GiftSource, MembershipChange
from tests.factories import make_donor, make_fund, make_gift
from tests.grants.support import (
    change_amount,
    donor_rows,
    ledger_rows,
    local,
    make_membership,
    make_program,
    reverse,
    summary,
)


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


# (name, window, the gift's local wall-clock time, counted?). In 2026 America/Los_Angeles leaves
# daylight-saving time on Sun Nov 1 at 02:00 and enters it on Sun Mar 8 at 02:00.
AUTUMN = (date(2026, 11, 1), date(2026, 12, 31))  # opens on the day DST ends
SPRING_END = (date(2026, 3, 1), date(2026, 3, 8))  # closes on the day DST starts
SPRING_START = (date(2026, 3, 8), date(2026, 3, 31))  # opens on the day DST starts
OCTOBER = (date(2026, 10, 1), date(2026, 11, 1))  # closes on the day DST ends
EDGES = [
    ("23:59 PDT before a window opening the day DST ends", AUTUMN, (2026, 10, 31, 23, 59), False),
    ("00:00 PDT opening the window the day DST ends", AUTUMN, (2026, 11, 1, 0, 0), True),
    ("after the repeated 1 a.m. hour on the first day", AUTUMN, (2026, 11, 1, 1, 30), True),
    ("23:59 PST on the last day", AUTUMN, (2026, 12, 31, 23, 59), True),
    ("00:00 the day after the last day", AUTUMN, (2027, 1, 1, 0, 0), False),
    ("23:59 PDT on a last day that is the day DST starts", SPRING_END, (2026, 3, 8, 23, 59), True),
    ("00:00 after a last day that is the day DST starts", SPRING_END, (2026, 3, 9, 0, 0), False),
    ("23:59 PST before a window opening the day DST starts", SPRING_START, (2026, 3, 7, 23, 59), False),
    ("00:00 PST opening a window the day DST starts", SPRING_START, (2026, 3, 8, 0, 0), True),
    ("23:59 PST on a last day that is the day DST ends", OCTOBER, (2026, 11, 1, 23, 59), True),
    ("00:00 after a last day that is the day DST ends", OCTOBER, (2026, 11, 2, 0, 0), False),
]


@pytest.mark.parametrize(("name", "window", "when", "counted"), EDGES, ids=[e[0] for e in EDGES])
def test_window_edges_are_local_midnights(fund, name, window, when, counted):
    program = make_program(first_day=window[0], last_day=window[1])
    gift = make_gift(make_donor(), fund, 5_000, received_at=local(*when))
    expected = 5_000 if counted else 0
    assert summary(program)["Raised: counted toward the program"].cents == expected
    [line] = ledger_rows(program, first_day=date(2026, 1, 1), last_day=date(2027, 12, 31))
    assert line["Gift ID"] == gift.id
    assert line["reason_code"] == ("counted" if counted else "outside_window")
    assert line["Date counted"] == date(*when[:3])


POSTMARKS = [
    ("received after the window, postmarked on its last day", (2027, 1, 4), date(2026, 12, 31), True),
    ("received in the window, postmarked before it", (2026, 11, 3), date(2026, 10, 31), False),
    ("received and postmarked in the window", (2026, 12, 1), date(2026, 11, 28), True),
    ("received after the window, postmarked the day after it", (2027, 1, 4), date(2027, 1, 1), False),
]


@pytest.mark.parametrize(("name", "received", "postmarked", "counted"), POSTMARKS, ids=[p[0] for p in POSTMARKS])
def test_checks_count_by_postmark_date(fund, name, received, postmarked, counted):
    program = make_program()
    make_gift(
        make_donor(),
        fund,
        20_000,
        received_at=local(*received),
        source=GiftSource.CHECK,
        postmarked_on=postmarked,
        check_number="1001",
    )
    assert summary(program)["Raised: counted toward the program"].cents == (20_000 if counted else 0)
    [line] = ledger_rows(program, first_day=date(2026, 10, 1), last_day=date(2027, 1, 31))
    assert line["Date counted"] == postmarked
    assert line["Postmarked"] == postmarked


def test_refunds_and_lost_disputes_reduce_totals_even_when_dated_after_the_window(fund):
    program = make_program()
    donor = make_donor()
    refunded = make_gift(donor, fund, 40_000, received_at=local(2026, 11, 10))
    disputed = make_gift(donor, fund, 30_000, received_at=local(2026, 12, 10))
    kept = make_gift(donor, fund, 10_000, received_at=local(2026, 12, 20))
    reverse(refunded, 15_000, at=local(2027, 2, 1))  # after the window
    reverse(disputed, 30_000, kind="dispute_lost", at=local(2027, 1, 20))
    [row] = donor_rows(program)
    assert row["Paid in window ($)"].cents == 80_000
    assert row["Reversed ($)"].cents == 45_000
    assert row["Counted ($)"].cents == 35_000
    reasons = {line["Gift ID"]: line["reason_code"] for line in ledger_rows(program) if line["Reversal ID"] is None}
    assert reasons == {refunded.id: "counted", disputed.id: "refunded", kept.id: "counted"}


def test_a_dispute_won_restores_but_never_above_the_gift(fund):
    program = make_program()
    gift = make_gift(make_donor(), fund, 10_000, received_at=local(2026, 11, 10))
    reverse(gift, 10_000, kind="dispute_lost")
    assert summary(program)["Raised: counted toward the program"].cents == 0
    reverse(gift, -10_000, kind="dispute_won")
    reverse(gift, -5_000, kind="refund_failed")  # a stray restore must not raise it above the gift
    assert summary(program)["Raised: counted toward the program"].cents == 10_000


def test_cap_reached_by_several_gifts(fund):
    program = make_program(cap_cents=100_000)
    donor = make_donor()
    for day, cents in ((2, 60_000), (3, 30_000), (4, 40_000)):
        make_gift(donor, fund, cents, received_at=local(2026, 11, day))
    [row] = donor_rows(program)
    assert (row["Counted ($)"].cents, row["Matchable ($)"].cents) == (130_000, 100_000)
    assert row["Not counted, and why"] == "part over the per-donor cap"
    lines = ledger_rows(program)
    assert [(line["Matchable ($)"].cents, line["Over the cap ($)"].cents) for line in lines] == [
        (60_000, 0),
        (30_000, 0),
        (10_000, 30_000),
    ]


def test_organizations_excluded_individuals_and_anonymous_kept(fund):
    program = make_program()
    person = make_donor(name="Pat Person")
    bakery = make_donor(name="Ann Owner")
    hidden = make_donor(name="Quiet Donor")
    make_gift(person, fund, 5_000, received_at=local(2026, 11, 5))
    make_gift(bakery, fund, 50_000, received_at=local(2026, 11, 5), organization="Corner Bakery LLC")
    make_gift(hidden, fund, 7_000, received_at=local(2026, 11, 6), anonymous=True)
    rows = {row["Donor ID"]: row for row in donor_rows(program)}
    assert rows[bakery.id]["Counted ($)"].cents == 0
    assert rows[bakery.id]["Not counted, and why"].startswith("given by a business, a foundation or a government")
    assert rows[hidden.id]["Name"] == "Anonymous"
    assert rows[hidden.id]["Counted ($)"].cents == 7_000
    assert rows[person.id]["Counted ($)"].cents == 5_000
    assert summary(program)["Donors counted"] == 2


def test_organizations_count_when_the_program_allows_them(fund):
    program = make_program(individuals_only=False)
    make_gift(make_donor(), fund, 50_000, received_at=local(2026, 11, 5), organization="Corner Bakery LLC")
    assert summary(program)["Raised: counted toward the program"].cents == 50_000


def test_funds_and_sources_not_counted(fund):
    other = make_fund("general")
    program = make_program(fund_ids=(fund.id,), sources=("stripe", "check"))
    donor = make_donor()
    make_gift(donor, other, 1_000, received_at=local(2026, 11, 5))
    make_gift(donor, fund, 2_000, received_at=local(2026, 11, 5), source=GiftSource.CASH)
    make_gift(donor, fund, 4_000, received_at=local(2026, 11, 5))
    [row] = donor_rows(program)
    assert row["Counted ($)"].cents == 4_000
    assert row["Not counted, and why"] == "the program does not count this fund, the program does not count this source"


def test_pending_and_failed_gifts_are_never_money(fund):
    program = make_program()
    donor = make_donor()
    make_gift(donor, fund, 9_000, received_at=local(2026, 11, 5), status="pending")
    make_gift(donor, fund, 9_000, received_at=local(2026, 11, 5), status="failed")
    assert donor_rows(program) == []


def test_same_email_in_different_cases_and_merged_donors_count_as_one(fund):
    program = make_program(cap_cents=100_000)
    jane = make_donor("Jane.Doe@Example.org", name="Jane Doe")
    again = ledger.find_or_create_donor("jane.doe@EXAMPLE.ORG")
    assert again.id == jane.id
    duplicate = make_donor("jdoe@work.example")
    make_gift(jane, fund, 60_000, received_at=local(2026, 11, 5))
    make_gift(again, fund, 30_000, received_at=local(2026, 11, 6))
    make_gift(duplicate, fund, 30_000, received_at=local(2026, 11, 7))
    duplicate.merged_into_id = jane.id  # gifts not moved: still counted as the survivor's
    db.session.commit()
    [row] = donor_rows(program)
    assert row["Donor ID"] == jane.id
    assert row["Gifts in window"] == 3
    assert (row["Counted ($)"].cents, row["Matchable ($)"].cents) == (120_000, 100_000)


def installment(donor, fund, membership, cents, when, **kwargs):
    return make_gift(
        donor, fund, cents, received_at=when, membership_id=membership.id, frequency=Frequency.MONTHLY, **kwargs
    )


def test_new_recurring_x12_valued_once_and_capped(fund):
    program = make_program(recurring_rule=RecurringRule.NEW_RECURRING_X12, cap_cents=100_000)
    small, big = make_donor(), make_donor()
    m1 = make_membership(small, fund, 2_500)
    installment(small, fund, m1, 2_500, local(2026, 11, 15))
    installment(small, fund, m1, 2_500, local(2026, 12, 15))
    m2 = make_membership(big, fund, 10_000)
    installment(big, fund, m2, 10_000, local(2026, 11, 20))
    rows = {row["Donor ID"]: row for row in donor_rows(program)}
    assert rows[small.id]["Counted ($)"].cents == 30_000
    assert rows[small.id]["New recurring donor"] is True
    assert (rows[big.id]["Counted ($)"].cents, rows[big.id]["Matchable ($)"].cents) == (120_000, 100_000)
    reasons = [line["reason_code"] for line in ledger_rows(program) if line["Donor ID"] == small.id]
    assert reasons == ["new_recurring_x12", "in_recurring_value"]
    assert summary(program)["New recurring donors"] == 2


def test_an_annual_new_membership_counts_its_annual_amount(fund):
    program = make_program(recurring_rule=RecurringRule.NEW_RECURRING_X12)
    donor = make_donor()
    membership = make_membership(donor, fund, 12_000, interval="year")
    make_gift(
        donor, fund, 12_000, received_at=local(2026, 11, 3), membership_id=membership.id, frequency=Frequency.ANNUAL
    )
    assert summary(program)["Raised: counted toward the program"].cents == 12_000


def test_a_membership_started_earlier_counts_only_installments_in_the_window(fund):
    program = make_program(recurring_rule=RecurringRule.NEW_RECURRING_X12)
    donor = make_donor()
    membership = make_membership(donor, fund, 2_500)
    for month, day in ((9, 15), (10, 15), (11, 15), (12, 15)):
        installment(donor, fund, membership, 2_500, local(2026, month, day))
    installment(donor, fund, membership, 2_500, local(2027, 1, 15))
    [row] = donor_rows(program)
    assert row["Counted ($)"].cents == 5_000
    assert row["New donor"] is False
    assert row["New recurring donor"] is False


def test_an_increase_in_the_window_counts_12_times_the_increase(fund):
    program = make_program(recurring_rule=RecurringRule.NEW_RECURRING_X12)
    donor = make_donor()
    membership = make_membership(donor, fund, 1_000)
    installment(donor, fund, membership, 1_000, local(2026, 10, 10))
    installment(donor, fund, membership, 1_000, local(2026, 11, 10))
    change_amount(membership, 1_500, local(2026, 11, 20))
    installment(donor, fund, membership, 1_500, local(2026, 12, 10))
    [row] = donor_rows(program)
    assert row["Counted ($)"].cents == 1_000 + 1_000 + 12 * 500
    lines = [(line["reason_code"], line["Counted ($)"].cents) for line in ledger_rows(program)]
    assert lines == [("installment_at_old_amount", 1_000), ("recurring_increase_x12", 7_000)]


def test_monthly_to_annual_is_no_increase_and_each_installment_keeps_its_frequency(fund):
    """A member moved from $10 a month to $120 a year: the same money a year, not a raise of $110
    counted twelve times; the monthly installments stay monthly in the report."""
    program = make_program(recurring_rule=RecurringRule.NEW_RECURRING_X12)
    donor = make_donor()
    membership = make_membership(donor, fund, 1_000)
    installment(donor, fund, membership, 1_000, local(2026, 10, 10))
    installment(donor, fund, membership, 1_000, local(2026, 11, 10))
    db.session.add(
        MembershipChange(
            membership_id=membership.id,
            changed_at=local(2026, 11, 20),
            old_amount_cents=1_000,
            new_amount_cents=12_000,
            old_interval="month",
            new_interval="year",
        )
    )
    membership.amount_cents, membership.interval = 12_000, "year"
    db.session.commit()
    make_gift(
        donor, fund, 12_000, received_at=local(2026, 12, 10), membership_id=membership.id, frequency=Frequency.ANNUAL
    )
    [row] = donor_rows(program)
    assert row["Counted ($)"].cents == 1_000 + 12_000
    reasons = {line["Reason"] for line in ledger_rows(program)}
    assert "recurring_increase_x12" not in reasons


def test_installments_rule_counts_each_installment_paid(fund):
    program = make_program(recurring_rule=RecurringRule.INSTALLMENTS)
    donor = make_donor()
    membership = make_membership(donor, fund, 2_500)
    installment(donor, fund, membership, 2_500, local(2026, 11, 15))
    installment(donor, fund, membership, 2_500, local(2026, 12, 15))
    [row] = donor_rows(program)
    assert row["Counted ($)"].cents == 5_000
    assert row["New recurring donor"] is True


def test_new_donor_means_no_gift_of_any_kind_before_the_window(fund):
    program = make_program()
    returning, new = make_donor(), make_donor()
    other_fund = make_fund("other")
    make_gift(returning, other_fund, 500, received_at=local(2019, 5, 1), source=GiftSource.CASH)
    for donor in (returning, new):
        make_gift(donor, fund, 5_000, received_at=local(2026, 11, 5))
    rows = {row["Donor ID"]: row["New donor"] for row in donor_rows(program)}
    assert rows == {returning.id: False, new.id: True}
    s = summary(program)
    assert (s["New donors (no gift before the window)"], s["Returning donors"]) == (1, 1)
