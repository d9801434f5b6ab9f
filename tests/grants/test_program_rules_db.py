"""The published programs' rules through the database (SQLite and PostgreSQL): vehicles, the
anonymous limit, fair market value, exclusive programs by priority, the local area and the
program-level cap, on a NewsMatch-like and a local program a reader can check by hand."""

from __future__ import annotations

from datetime import date

import pytest

from tests.factories import make_donor, make_fund, make_gift
from tests.grants.support import donor_rows, ledger_rows, local, make_program, reverse, summary


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def test_newsmatch_rules_on_a_small_ledger_checked_by_hand(fund):
    newsmatch = make_program(
        "newsmatch-2026",
        sources=("stripe", "check", "other"),
        anonymous_limit_cents=500_000,
        program_cap_cents=120_000,
        priority=10,
    )
    pat = make_donor(name="Pat Person", postal_code="97201")
    daf = make_donor(name="Dana Advised", postal_code="98101")
    bakery = make_donor(name="Ann Owner")
    quiet = make_donor(name="Quiet Big Giver")
    fan = make_donor(name="Gala Guest")
    fan.region = "OR"
    make_gift(pat, fund, 60_000, received_at=local(2026, 11, 5))
    make_gift(pat, fund, 5_000, received_at=local(2026, 11, 6), source="cash")  # cash: not counted
    make_gift(daf, fund, 80_000, received_at=local(2026, 11, 7), vehicle="donor_advised_fund", organization="DAF")
    make_gift(bakery, fund, 50_000, received_at=local(2026, 11, 8), organization="Corner Bakery LLC")
    make_gift(quiet, fund, 600_000, received_at=local(2026, 11, 9), anonymous=True)  # over $5,000 anonymous
    ticket = make_gift(fan, fund, 15_000, received_at=local(2026, 11, 10), fair_market_value_cents=4_000)
    reverse(ticket, 1_000)

    totals = summary(newsmatch)
    # Pat $600 + the DAF's $800 + the gala ticket ($150 - $40 of value - $10 refunded) = $1,500.
    assert totals["Raised: counted toward the program"].cents == 150_000
    assert totals["Matchable before the program-level cap"].cents == 150_000
    assert totals["Matchable after the program-level cap"].cents == 120_000
    assert totals["Gifts not counted: an anonymous gift above the program's limit for anonymous gifts (number)"] == 1

    rows = {row["Donor ID"]: row for row in donor_rows(newsmatch)}
    assert rows[quiet.id]["Name"] == "Anonymous" and rows[quiet.id]["Email"] is None
    assert "anonymous gift above" in rows[quiet.id]["Not counted, and why"]
    assert rows[bakery.id]["Counted ($)"].cents == 0
    lines = {line["Gift ID"]: line for line in ledger_rows(newsmatch) if line["Reversal ID"] is None}
    daf_line = next(line for line in lines.values() if line["Donor ID"] == daf.id)
    assert daf_line["Given as"] == "Donor-advised fund"
    assert "through a donor-advised fund (counted as the individual's gift)" in daf_line["Explanation"]
    assert lines[ticket.id]["Counted ($)"].cents == 10_000
    assert "Less $40.00 of fair market value" in lines[ticket.id]["Explanation"]
    assert lines[ticket.id]["Frequency"] == "One time"


def test_a_gift_counts_in_one_exclusive_program_only_by_priority_and_the_local_share(fund):
    newsmatch = make_program("newsmatch-2026", priority=10, sources=("stripe",))
    local_match = make_program(
        "local-2026",
        name="Portland local match",
        first_day=date(2026, 10, 1),
        cap_cents=None,
        exclusive_with=("newsmatch-2026",),
        priority=50,
        local_postal_prefixes=("972",),
    )
    near = make_donor(name="Near", postal_code="97214")
    far = make_donor(name="Far", postal_code="10001")
    online = make_gift(near, fund, 20_000, received_at=local(2026, 11, 5))
    check = make_gift(near, fund, 30_000, received_at=local(2026, 11, 6), source="check", check_number="12")
    october = make_gift(far, fund, 10_000, received_at=local(2026, 10, 20))

    assert summary(newsmatch)["Raised: counted toward the program"].cents == 20_000
    totals = summary(local_match)
    # The online gift is NewsMatch's; the check (not a NewsMatch source) and October's gift are local's.
    assert totals["Raised: counted toward the program"].cents == 40_000
    assert totals["Exclusive with (a gift they count is not counted here)"] == "NewsMatch 2026"
    assert totals["Local donors counted"] == 1
    assert totals["Raised from local donors"].cents == 30_000
    assert float(totals["Local share of the money raised"].fraction) == 0.75
    lines = {line["Gift ID"]: line for line in ledger_rows(local_match) if line["Reversal ID"] is None}
    assert lines[online.id]["reason_code"] == "counted_by_other_program"
    assert "counted by NewsMatch 2026" in lines[online.id]["Explanation"]
    assert lines[check.id]["Counted ($)"].cents == 30_000
    assert lines[october.id]["Counted ($)"].cents == 10_000
    donors = {row["Donor ID"]: row for row in donor_rows(local_match)}
    assert (donors[near.id]["Local donor"], donors[far.id]["Local donor"]) == (True, False)
