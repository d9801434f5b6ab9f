"""/embed/<fund>: the compact box for articles, its frame policy, no cookie, view counts; and
the staff page with its snippets."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.giving.embed import parse_origins
from donations.giving.models import EmbedView
from tests.factories import make_fund
from tests.staff.support import make_staff, sign_in

ARTICLE = "https://news.example.org/2026/12/forums-story"


@pytest.fixture
def fund(app):
    return make_fund(
        "forums",
        name="Community Forums Reporting",
        is_default=True,
        suggested_amounts={"one_time": [2500, 5000, 10000, 25000], "monthly": [500, 1500]},
    )


@pytest.fixture
def origins(app):
    before = app.config["EMBED_ORIGINS"]
    app.config["EMBED_ORIGINS"] = ["https://news.example.org", "https://www.example.org"]
    yield app.config["EMBED_ORIGINS"]
    app.config["EMBED_ORIGINS"] = before


def hidden_inputs(html: str) -> dict[str, str]:
    return {
        name: unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    }


def test_the_box_offers_three_amounts_and_opens_the_gift_page_in_a_new_tab(client, fund, origins):
    response = client.get("/embed/forums?utm_campaign=winter", headers={"Referer": ARTICLE})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.findall(r'name="amount" value="([^"]+)"', html) == ["25", "50", "100"]
    assert '<form method="get" action="/give/forums" target="_blank" rel="noopener">' in html
    assert hidden_inputs(html) == {"utm_campaign": "winter", "utm_medium": "embed", "ref": ARTICLE}
    assert "not tax deductible" in html


def test_the_box_sets_no_cookie_and_loads_nothing_from_elsewhere(client, fund, origins):
    response = client.get("/embed/forums", headers={"Referer": ARTICLE})
    assert "Set-Cookie" not in response.headers
    html = response.get_data(as_text=True)
    assert "<script" not in html
    assert re.findall(r'(?:src|href)="(https?:)?//', html) == []


def test_only_the_embed_may_be_framed_and_only_by_the_allowed_origins(client, fund, origins):
    embed = client.get("/embed/forums")
    policy = embed.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://news.example.org https://www.example.org;" in policy
    assert "X-Frame-Options" not in embed.headers
    give = client.get("/give/forums")
    assert "frame-ancestors 'none'" in give.headers["Content-Security-Policy"]
    assert give.headers["X-Frame-Options"] == "DENY"


def test_unknown_or_inactive_funds_are_not_found(client, fund):
    make_fund("closed", active=False)
    assert client.get("/embed/nope").status_code == 404
    assert client.get("/embed/closed").status_code == 404


def test_views_are_counted_per_day_and_fund(client, fund):
    other = make_fund("elections")
    for _ in range(3):
        client.get("/embed/forums")
    client.get("/embed/elections")
    rows = {(row.fund_id, row.views) for row in db.session.scalars(select(EmbedView))}
    assert rows == {(fund.id, 3), (other.id, 1)}


def test_origins_setting_keeps_only_origins():
    value = "https://news.example.org, http://127.0.0.1:8001/ ,*.example.org, https://x.org/path, ftp://y.org"
    assert parse_origins(value) == ["https://news.example.org", "http://127.0.0.1:8001"]


def test_staff_page_generates_both_snippets_with_a_preview(client, fund, origins):
    sign_in(client, make_staff("viewer"))
    response = client.get(f"/staff/funds/{fund.id}/embed")
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    assert '<iframe src="http://localhost/embed/forums" title="Give to Community Forums Reporting"' in html
    assert 'referrerpolicy="no-referrer-when-downgrade"' in html
    assert (
        '<a href="http://localhost/give/forums?amount=25&frequency=one_time&utm_medium=embed-links">Give $25</a>'
        in html
    )
    assert "Give $15 monthly" in html
    assert "frame-src 'self'" in response.headers["Content-Security-Policy"]
    assert "https://news.example.org, https://www.example.org" in html


def test_the_staff_page_needs_a_sign_in(client, fund):
    response = client.get(f"/staff/funds/{fund.id}/embed")
    assert response.status_code in (302, 303)
