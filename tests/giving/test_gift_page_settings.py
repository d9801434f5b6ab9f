"""The gift page, mobile first: whole dollars, per-fund starting frequency, a line per amount,
the prompt toward monthly, one progress bar; and staff editing those settings."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Fund
from tests.factories import make_fund
from tests.forms import checked_values, csrf_token, page_text
from tests.giving.support import shown_amounts
from tests.staff.support import make_staff, sign_in

AMOUNTS = {"one_time": [2500, 5000, 10000], "monthly": [500, 1500, 3000], "annual": [6000, 12000]}


@pytest.fixture
def fund(app):
    return make_fund(
        "forums",
        name="Community Forums Reporting",
        is_default=True,
        suggested_amounts=AMOUNTS,
        default_frequency="monthly",
        amount_notes={"1500": "A month of meeting coverage"},
        monthly_prompt="A monthly gift keeps the forums running all year.",
    )


def test_amounts_are_whole_dollars(client, fund):
    text = page_text(client.get("/give/forums?frequency=one_time").get_data(as_text=True))
    assert "$25 " in text + " " and "$100" in text
    assert "$25.00" not in text and "$100.00" not in text


def test_the_page_starts_on_the_funds_default_frequency(client, fund):
    html = client.get("/give/forums").get_data(as_text=True)
    assert checked_values(html, "frequency") == ["monthly"]
    assert shown_amounts(html) == ["500", "1500", "3000", "other"]
    assert checked_values(html, "amount_choice") == ["1500"]
    # A link still chooses another.
    assert checked_values(client.get("/give/forums?frequency=annual").get_data(as_text=True), "frequency") == ["annual"]


def test_every_amount_is_rendered_with_the_frequencies_that_suggest_it(client, fund):
    html = client.get("/give/forums").get_data(as_text=True)
    assert 'data-frequencies="one_time"' in html and 'data-frequencies="monthly"' in html
    assert 'data-frequencies="annual"' in html


def test_a_line_says_what_an_amount_pays_for(client, fund):
    html = client.get("/give/forums").get_data(as_text=True)
    assert '<span class="amount-note" id="note-1500">A month of meeting coverage</span>' in html
    assert 'aria-describedby="note-1500"' in html


def test_the_monthly_prompt_shows_only_while_one_time_is_chosen(client, fund):
    one_time = client.get("/give/forums?frequency=one_time").get_data(as_text=True)
    assert '<p class="monthly-prompt" data-monthly-prompt>A monthly gift keeps' in one_time
    monthly = client.get("/give/forums").get_data(as_text=True)
    assert "data-monthly-prompt hidden>" in monthly
    make_fund("quiet", suggested_amounts=AMOUNTS)
    assert "monthly-prompt" not in client.get("/give/quiet").get_data(as_text=True)


def test_the_repeated_suggested_amounts_links_are_gone(client, fund):
    assert "Suggested amounts:" not in client.get("/give/forums").get_data(as_text=True)


def test_staff_edit_the_gift_page_settings(app, client, fund):
    sign_in(client, make_staff("admin"))
    url = f"/staff/funds/{fund.id}"
    page = client.get(url).get_data(as_text=True)
    assert "15 = A month of meeting coverage" in page
    form = {
        "csrf_token": csrf_token(client, url),
        "name": fund.name,
        "slug": "forums",
        "description": "",
        "goal": "",
        "one_time": "25, 50, 100",
        "monthly": "5, 15, 30",
        "annual": "60, 120",
        "active": "y",
        "is_default": "y",
        "default_frequency": "one_time",
        "amount_notes": "25 = Pays a freelancer for an hour\n50 = Prints a forum guide\n",
        "monthly_prompt": "",
    }
    response = client.post(url, data=form)
    assert response.status_code == 303
    saved = db.session.scalars(
        select(Fund).where(Fund.slug == "forums").execution_options(populate_existing=True)
    ).one()
    assert saved.default_frequency == "one_time"
    assert saved.amount_notes == {"2500": "Pays a freelancer for an hour", "5000": "Prints a forum guide"}
    assert saved.monthly_prompt == ""
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "fund.edit")).one()
    assert entry.details["after"]["amount_notes"] == saved.amount_notes


def test_a_bad_amount_note_line_is_refused_with_its_line(client, fund):
    sign_in(client, make_staff("admin"))
    url = f"/staff/funds/{fund.id}"
    form = {
        "csrf_token": csrf_token(client, url),
        "name": fund.name,
        "slug": "forums",
        "one_time": "25",
        "active": "y",
        "is_default": "y",
        "amount_notes": "25 = fine\nabc\n",
    }
    response = client.post(url, data=form)
    assert response.status_code == 400
    assert "Line 2: write an amount, &#39;=&#39;, then what it pays for." in response.get_data(as_text=True)
