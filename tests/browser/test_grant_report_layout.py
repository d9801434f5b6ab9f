"""The gift ledger report on screen, in headless Chromium at 1280 and 375 px wide: its caption
is read whole (never cut by the sideways scroll), its rows stay one or two lines tall (no
260-px rows of wrapped words), codes are never shown, and axe finds nothing serious. The
screenshots are written to the test's directory for a person to look at."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from donations.grants.rules import RecurringRule
from donations.ledger import funds
from donations.ledger.models import Frequency
from tests.factories import make_donor, make_fund, make_gift
from tests.grants.support import local, make_membership, make_program
from tests.staff.support import PASSWORD, make_staff

pytestmark = pytest.mark.browser

MAX_ROW_PX = 120  # a cell of the Explanation column wraps onto a few lines, no more


@pytest.fixture
def ledger(app):
    fund = make_fund("community-forums", name="Community Forums Reporting", is_default=True)
    held = make_fund("schools", name="Schools Fund", sponsor=funds.Sponsor("Valley Community Foundation", "12-3456789"))
    program = make_program(
        "newsmatch-2026",
        first_day=date(2026, 11, 1),
        last_day=date(2026, 12, 31),
        recurring_rule=RecurringRule.NEW_RECURRING_X12,
    )
    for n in range(8):
        donor = make_donor(f"reader{n}@example.org", name=f"Reader Number {n}")
        make_gift(donor, fund, 2_500 + n, received_at=local(2026, 11, 3 + n), vehicle="donor_advised_fund")
    member = make_donor("member@example.org", name="Mia Member")
    membership = make_membership(member, fund, 1_500)
    make_gift(
        member, fund, 1_500, received_at=local(2026, 11, 20), membership_id=membership.id, frequency=Frequency.MONTHLY
    )
    make_gift(
        make_donor("biz@example.org"), fund, 90_000, received_at=local(2026, 11, 21), organization="Acme Hardware"
    )
    make_gift(make_donor("sp@example.org"), held, 50_000, received_at=local(2026, 11, 22), source="sponsor")
    make_staff("finance", email="finance@newsroom.example")
    return program


@pytest.mark.parametrize("width", [1280, 375])
def test_the_ledger_report_reads_on_screen(page: Page, ledger, width, tmp_path: Path, assert_accessible):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/staff/sign-in")
    page.get_by_label("Email").fill("finance@newsroom.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/staff/grants/{ledger.slug}/reports/ledger")
    caption = page.locator("#report-caption")
    expect(caption).to_be_visible()
    page.screenshot(path=str(tmp_path / f"ledger-{width}.png"), full_page=True)
    scroller = page.locator(".table-scroll")
    scroller.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    scroller.screenshot(path=str(tmp_path / f"ledger-{width}-right.png"))
    print(f"screenshots: {tmp_path}")

    # The caption is inside the viewport, whole: not centred over a table wider than the screen.
    box = caption.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, box
    heights = page.locator("#report tbody tr").evaluate_all("rows => rows.map(r => r.getBoundingClientRect().height)")
    assert len(heights) == 11
    assert max(heights) <= MAX_ROW_PX, heights
    text = page.locator("#report").inner_text()
    assert "Fiscal sponsor" in text and "Counted as 12 x a new recurring gift" in text
    for code in ("new_recurring_x12", "reason_code", "donor_advised_fund", "one_time"):
        assert code not in text
    assert_accessible(page)
