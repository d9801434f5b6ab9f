"""The gift page's HTML cache (donations/giving/page_cache.py): one render serves every reader,
each with a CSRF token of their own session that the form then accepts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from donations import ttl_cache
from donations.extensions import db
from donations.giving import page_cache
from donations.ledger.models import Fund
from tests.factories import make_fund
from tests.forms import extract_csrf_token, page_text
from tests.giving.support import gift_form, only_gift


@pytest.fixture
def caching(app) -> Iterator[None]:
    before = app.config["GIFT_PAGE_CACHE_SECONDS"]
    app.config["GIFT_PAGE_CACHE_SECONDS"] = 60
    page_cache.clear()
    yield
    app.config["GIFT_PAGE_CACHE_SECONDS"] = before
    page_cache.clear()


def page(client: FlaskClient, url: str = "/give") -> str:
    return client.get(url).get_data(as_text=True)


@pytest.fixture
def fund(app) -> Fund:
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def rename(fund: Fund, name: str) -> None:
    fund.name = name
    db.session.commit()


def test_a_second_reader_gets_the_stored_page_with_a_token_of_their_own(app, caching, fund):
    first, second = app.test_client(), app.test_client()
    page_one = page(first, "/give")
    rename(fund, "Renamed Meanwhile")
    page_two = page(second, "/give")

    assert "Community Forums Reporting" in page_text(page_two)  # served from the cache
    assert "Renamed Meanwhile" not in page_two
    token_one, token_two = extract_csrf_token(page_one), extract_csrf_token(page_two)
    assert token_one != token_two
    assert page_two.replace(token_two, "TOKEN") == page_one.replace(token_one, "TOKEN")
    assert page_cache.TOKEN_PLACEHOLDER not in page_two


def test_the_token_from_a_stored_page_is_accepted_by_the_form(app, caching, fund):
    page(app.test_client())  # fills the cache
    reader = app.test_client()
    token = extract_csrf_token(page(reader, "/give"))
    response = reader.post("/give", data=gift_form(token, email="cached@example.org"))
    assert response.status_code == 303
    assert only_gift().donor.email == "cached@example.org"


def test_a_token_from_another_session_is_still_refused(app, caching, fund):
    token = extract_csrf_token(page(app.test_client()))
    stranger = app.test_client()
    page(stranger)
    assert stranger.post("/give", data=gift_form(token)).status_code == 400


def test_pages_are_kept_per_fund_and_frequency(app, caching, fund):
    other = make_fund("investigations", name="Investigations Desk")
    client = app.test_client()
    page(client)
    page(client, "/give/investigations")
    page(client, "/give?frequency=monthly")
    rename(fund, "Renamed Meanwhile")
    rename(other, "Desk Renamed")
    assert "Community Forums Reporting" in page(client, "/give")
    assert "Investigations Desk" in page(client, "/give/investigations")
    assert "Community Forums Reporting" in page(client, "/give?frequency=monthly")
    # Not seen before: rendered now, with the new name.
    assert "Renamed Meanwhile" in page(client, "/give?frequency=annual")


def test_an_unknown_frequency_shares_the_default_page(app, caching, fund):
    client = app.test_client()
    page(client, "/give?frequency=nonsense")
    rename(fund, "Renamed Meanwhile")
    assert "Community Forums Reporting" in page(client, "/give")
    assert "Community Forums Reporting" in page(client, "/give?frequency=whatever")


def test_a_stored_page_expires(app, caching, fund, monkeypatch):
    client = app.test_client()
    page(client)
    rename(fund, "Renamed Meanwhile")
    later = ttl_cache.time.monotonic() + 61
    monkeypatch.setattr(ttl_cache.time, "monotonic", lambda: later)
    assert "Renamed Meanwhile" in page(client, "/give")


def test_form_errors_and_missing_funds_are_never_stored(app, caching, fund):
    client = app.test_client()
    token = extract_csrf_token(page(client, "/give"))
    page_cache.clear()
    invalid = client.post("/give", data=gift_form(token, email="not an address"))
    assert invalid.status_code == 400
    assert client.get("/give/no-such-fund").status_code == 404
    rename(fund, "Renamed Meanwhile")
    assert "Renamed Meanwhile" in page(client, "/give")


def test_off_when_the_period_is_zero(app, fund):
    assert app.config["GIFT_PAGE_CACHE_SECONDS"] == 0  # the testing configuration
    client = app.test_client()
    page(client)
    rename(fund, "Renamed Meanwhile")
    assert "Renamed Meanwhile" in page(client, "/give")
