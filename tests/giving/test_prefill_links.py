"""Links that prefill the gift page, and where a gift came from kept with it."""

from __future__ import annotations

import pytest

from tests.factories import make_fund
from tests.forms import checked_values, extract_csrf_token, input_value
from tests.giving.support import gift_form, only_gift


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def test_a_suggested_amount_and_frequency_are_preselected(client, fund):
    html = client.get("/give/community-forums?amount=25&frequency=monthly").get_data(as_text=True)
    assert checked_values(html, "frequency") == ["monthly"]
    assert checked_values(html, "amount_choice") == ["2500"]


def test_an_amount_not_suggested_fills_in_other(client, fund):
    html = client.get("/give/community-forums?amount=40").get_data(as_text=True)
    assert checked_values(html, "amount_choice") == ["other"]
    assert input_value(html, "custom_amount") == "40"
    cents = client.get("/give?amount=37.5").get_data(as_text=True)
    assert input_value(cents, "custom_amount") == "37.50"


@pytest.mark.parametrize(
    "query", ["amount=abc", "amount=-5", "amount=1", "amount=9999999", "amount=", "frequency=weekly", "amount=25.999"]
)
def test_invalid_values_are_ignored_never_an_error(client, fund, query):
    response = client.get(f"/give/community-forums?{query}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert checked_values(html, "frequency") == ["one_time"]
    assert checked_values(html, "amount_choice") == ["5000"]  # the page's own default
    assert not input_value(html, "custom_amount")


def test_a_prefilled_link_is_never_served_from_the_page_cache(client, fund):
    client.get("/give/community-forums")  # cached
    html = client.get("/give/community-forums?amount=100").get_data(as_text=True)
    assert checked_values(html, "amount_choice") == ["10000"]


def test_the_article_a_reader_came_from_and_the_campaign_are_kept(client, fund):
    url = "/give/community-forums?amount=25&utm_source=site&utm_medium=article&utm_campaign=spring&utm_content=footer"
    page = client.get(url, headers={"Referer": "https://news.example.org/2026/forums-story"})
    token = extract_csrf_token(page.get_data(as_text=True))
    # The form posts back to the same address; the browser's Referer is now the gift page itself.
    response = client.post(
        url, data=gift_form(token, amount_choice="2500"), headers={"Referer": "http://localhost" + url}
    )
    assert response.status_code == 303
    assert only_gift().attribution == {
        "utm_source": "site",
        "utm_medium": "article",
        "utm_campaign": "spring",
        "utm_content": "footer",
        "referrer": "https://news.example.org/2026/forums-story",
    }


def test_our_own_pages_are_not_a_referrer(client, fund):
    page = client.get("/give", headers={"Referer": "http://localhost/give/thanks"})
    response = client.post("/give", data=gift_form(extract_csrf_token(page.get_data(as_text=True))))
    assert response.status_code == 303
    assert only_gift().attribution == {}


def test_long_values_are_cut_and_unknown_keys_dropped(client, fund):
    url = "/give?utm_source=" + "x" * 500 + "&evil=1"
    token = extract_csrf_token(client.get(url).get_data(as_text=True))
    client.post(url, data=gift_form(token))
    assert only_gift().attribution == {"utm_source": "x" * 200}
