"""Hostile numbers in URLs get a 4xx, never a 500: gift-list cursors with non-ASCII digits or
numbers too big for a datetime or an id, dates outside 2000-2100, and ids in any route's path
beyond what an INTEGER primary key holds (SQLite cannot bind them, PostgreSQL refuses them)."""

from __future__ import annotations

import time

import pytest
from werkzeug.routing import IntegerConverter

from donations.extensions import MAX_ROW_ID
from donations.giving.membership_service import SESSION_KEY
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def admin(client):
    user = make_staff("admin")
    sign_in(client, user)
    return user


BROKEN_LINK = "That page link is broken"


@pytest.mark.parametrize(
    "cursor",
    [
        "\u00b25.1",  # superscript two: str.isdigit() says yes, int() says no
        "5.\u00b2",
        "\u0661\u0662.3",  # Arabic-Indic digits: int() reads them, but no cursor of ours has them
        "9" * 30 + ".1",  # beyond the years a datetime holds
        "-" + "9" * 18 + ".1",
        "1." + "9" * 20,  # an id too big for the database
        f"1.{MAX_ROW_ID + 1}",
        "1.2.3",
        ".1",
    ],
)
def test_a_broken_cursor_is_a_400_with_a_way_back(client, admin, cursor):
    make_gift(make_donor(), make_fund())
    response = client.get("/staff/gifts", query_string={"after": cursor})
    assert response.status_code == 400
    assert BROKEN_LINK in page_text(response.get_data(as_text=True))


def test_a_cursor_at_the_largest_id_is_accepted(client, admin):
    gift = make_gift(make_donor(), make_fund())
    response = client.get("/staff/gifts", query_string={"after": f"9999999999999999.{MAX_ROW_ID}"})
    assert response.status_code == 200
    assert f'href="/staff/gifts/{gift.id}"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["first=9999-12-31", "last=9999-12-31", "first=1999-12-31", "last=2101-01-01", "first=0001-01-01"]
)
def test_dates_outside_2000_to_2100_are_a_clear_400(client, admin, query):
    make_gift(make_donor(), make_fund())
    response = client.get(f"/staff/gifts?{query}")
    assert response.status_code == 400
    assert "Enter a date from 2000-01-01 to 2100-12-31." in page_text(response.get_data(as_text=True))


def test_the_first_and_last_supported_dates_work(client, admin):
    gift = make_gift(make_donor(), make_fund())
    response = client.get("/staff/gifts?first=2000-01-01&last=2100-12-31")
    assert response.status_code == 200
    assert f'href="/staff/gifts/{gift.id}"' in response.get_data(as_text=True)


def int_routes(app):
    """Every route with an integer in its path."""
    for rule in app.url_map.iter_rules():
        ints = [name for name, converter in rule._converters.items() if isinstance(converter, IntegerConverter)]
        if ints:
            yield rule, ints


def url_for_rule(rule, ints, number: int) -> str:
    values = {name: (number if name in ints else "cus_local_x") for name in rule.arguments}
    return rule.build(values)[1]


def test_every_integer_route_is_bounded_to_an_integer_primary_key(app):
    routes = list(int_routes(app))
    assert len(routes) >= 20
    for rule, ints in routes:
        for name in ints:
            assert rule._converters[name].max == MAX_ROW_ID, (rule.rule, name)


def test_ids_beyond_an_integer_are_a_404_on_every_route(app, client, admin):
    """Signed in as staff and as a member, with a CSRF token, so that every view would be reached."""
    donor = make_donor("member@example.org")
    with client.session_transaction() as session:
        session[SESSION_KEY] = {"donor": donor.id, "until": int(time.time()) + 3600}
    token = csrf_token(client, "/staff/gifts")
    for rule, ints in int_routes(app):
        method = "POST" if "POST" in rule.methods else "GET"
        for number in (MAX_ROW_ID + 1, 10**20):
            url = url_for_rule(rule, ints, number)
            response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
            assert response.status_code == 404, (url, response.status_code)
        # The largest id is still routed to the view, which finds no such row.
        url = url_for_rule(rule, ints, MAX_ROW_ID)
        response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code < 500, (url, response.status_code)
