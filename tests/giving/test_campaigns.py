"""/staff/campaigns: gifts, donors, dollars and conversion by campaign, source, medium, content
and referring article, for local dates; each fund's embed box with its views; CSV and XLSX
(formula-safe, audited, finance and admins)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.giving.campaigns import COLUMNS, campaigns, in_words, views_in_words
from donations.giving.models import EmbedView
from donations.ledger.models import GiftStatus
from tests.factories import make_donor, make_fund, make_gift
from tests.staff.support import make_staff, sign_in

ARTICLE = "https://news.example.org/2026/12/forums-story"
SPRING = {"utm_campaign": "spring-drive", "utm_source": "newsletter", "utm_medium": "email", "utm_content": "top"}
EMBED = {"utm_medium": "embed", "ref": ARTICLE}


@pytest.fixture
def fund(app):
    return make_fund("forums", name="Community Forums Reporting", is_default=True)


def checkout(donor, fund, cents, attribution, status=GiftStatus.PAID, days_ago=0, session=[0]):  # noqa: B006
    session[0] += 1
    paid = status == GiftStatus.PAID
    gift = make_gift(
        donor,
        fund,
        cents,
        status=status,
        received_at=utcnow() - timedelta(days=days_ago) if paid else None,
        attribution=attribution,
        stripe_checkout_session_id=f"cs_test_{session[0]}",
    )
    gift.created_at = utcnow() - timedelta(days=days_ago)
    db.session.commit()
    return gift


@pytest.fixture
def gifts(fund):
    rae, sam, kay = make_donor("rae@example.org"), make_donor("sam@example.org"), make_donor("kay@example.org")
    checkout(rae, fund, 5000, SPRING)
    checkout(rae, fund, 2500, SPRING)
    checkout(sam, fund, 10000, SPRING, status=GiftStatus.EXPIRED)  # opened, never paid
    checkout(kay, fund, 2500, EMBED)
    checkout(sam, fund, 2500, EMBED, status=GiftStatus.PENDING)
    checkout(kay, fund, 7500, {})
    checkout(kay, fund, 9900, SPRING, days_ago=60)  # before the dates asked for
    make_gift(kay, fund, 4000)  # a check or renewal: no checkout, not in the report
    today = local_date(utcnow())
    db.session.add_all(
        [
            EmbedView(day=today, fund_id=fund.id, views=300),
            EmbedView(day=today - timedelta(days=1), fund_id=fund.id, views=100),
        ]
    )
    db.session.commit()
    return today


def test_gifts_are_grouped_by_where_they_came_from(gifts):
    found = campaigns(gifts - timedelta(days=29), gifts)
    by_campaign = {(line.campaign, line.medium, line.article): line.tally for line in found.lines}
    spring = by_campaign[("spring-drive", "email", "Not given")]
    assert (spring.opened, spring.paid, len(spring.donors), spring.given_cents) == (3, 2, 1, 7500)
    embed = by_campaign[("Not given", "embed", ARTICLE)]
    assert (embed.opened, embed.paid, embed.given_cents) == (2, 1, 2500)
    plain = by_campaign[("Not given", "Not given", "Not given")]
    assert (plain.opened, plain.paid, plain.given_cents) == (1, 1, 7500)
    # Most given first; spring-drive and the plain line both gave $75: more checkouts first.
    assert next(line.campaign for line in found.lines) == "spring-drive"
    (box,) = found.embeds
    assert (box.fund, box.views, box.tally.opened, box.tally.paid) == ("Community Forums Reporting", 400, 2, 1)


def test_conversion_in_words():
    assert in_words(2, 3) == "2 of 3 checkouts paid (67%)"
    assert in_words(0, 1) == "0 of 1 checkout paid (0%)"
    assert in_words(0, 0) == "no checkouts opened"
    assert views_in_words(1, 400) == "1 gift from 400 views (0.25%)"
    assert views_in_words(3, 1200) == "3 gifts from 1,200 views (0.25%)"
    assert views_in_words(0, 0) == "no views counted"


def test_the_page_for_any_staff_role(client, gifts):
    sign_in(client, make_staff("viewer"))
    page = client.get("/staff/campaigns")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "spring-drive" in html and "2 of 3 checkouts paid (67%)" in html
    assert "1 gift from 400 views (0.25%)" in html
    assert "Download this report" not in html  # files are for finance and admins
    assert client.get("/staff/campaigns/export?format=csv").status_code == 403
    older = client.get(f"/staff/campaigns?first={(gifts - timedelta(days=90)).isoformat()}&last={gifts.isoformat()}")
    assert "$174.00" in older.get_data(as_text=True)  # spring-drive with its checkout of 60 days ago


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("first=2026-12-10&last=2026-12-01", "The last day comes before the first day."),
        ("first=2020-01-01&last=2026-01-01", "Choose at most three years at a time."),
        ("first=yesterday", "Not a valid date value."),
    ],
)
def test_bad_dates_are_a_clear_400(client, fund, query, says):
    sign_in(client, make_staff("finance"))
    page = client.get(f"/staff/campaigns?{query}")
    assert page.status_code == 400 and says in page.get_data(as_text=True)
    assert client.get(f"/staff/campaigns/export?{query}&format=csv").status_code == 400


def test_csv_and_xlsx_are_formula_safe_and_audited(client, fund, gifts):
    checkout(make_donor("eve@example.org"), fund, 2500, {"utm_campaign": '=HYPERLINK("http://evil")'})
    sign_in(client, make_staff("finance"))
    answer = client.get("/staff/campaigns/export?format=csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.get_data().decode("utf-8-sig"))))
    assert rows[0] == list(COLUMNS)
    assert [
        "spring-drive",
        "newsletter",
        "email",
        "top",
        "Not given",
        "3",
        "2",
        "1",
        "75.00",
        "",
        "2 of 3 checkouts paid (67%)",
    ] in rows
    assert [
        "Embed box of Community Forums Reporting",
        "",
        "embed",
        "",
        "",
        "2",
        "1",
        "1",
        "25.00",
        "400",
        "1 gift from 400 views (0.25%)",
    ] in rows
    assert any(row[0] == '\'=HYPERLINK("http://evil")' for row in rows)

    xlsx = client.get("/staff/campaigns/export?format=xlsx")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.data)).active
    cells = [cell.value for cell in sheet[1]]
    assert cells == list(COLUMNS)
    assert client.get("/staff/campaigns/export?format=pdf").status_code == 400

    entries = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "campaigns.export")).all()
    assert [entry.details["format"] for entry in entries] == ["csv", "xlsx"]
    assert entries[0].details["list"] == "campaigns" and entries[0].details["last"] == gifts.isoformat()
