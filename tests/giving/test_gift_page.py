"""The gift page: /give and /give/<fund-slug>, with CSRF on, as a reader's browser posts it."""

from __future__ import annotations

import re
from html import unescape

import pytest

from donations.extensions import db
from donations.ledger.models import Frequency, GiftSource, GiftStatus
from donations.money import format_money
from tests.factories import make_fund
from tests.forms import checked_values, csrf_token, input_value, inputs, page_text
from tests.giving.support import (
    NOTHING_WRITTEN,
    expected_fee,
    gift_form,
    only_gift,
    post_gift,
    row_counts,
    shown_amounts,
)


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def field_error(html: str, field_id: str) -> str:
    """The error shown right after the field (the template's `<id>-error` paragraph)."""
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert match, f"no error shown for {field_id}"
    return unescape(match.group(1))


def _radio(html: str, name: str) -> list[dict[str, str | None]]:
    return [i for i in inputs(html) if i.get("name") == name and i.get("type") == "radio"]


def fee_sentence(html: str) -> tuple[str, str]:
    """(fee, base) as the page states them in 'Add <fee> to a <base> gift'."""
    fee = re.search(r"<strong data-fee-amount>([^<]+)</strong>", html)
    base = re.search(r"<span data-fee-base>([^<]+)</span>", html)
    assert fee and base
    return fee.group(1), base.group(1)


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert (response.json["status"], response.json["database"]) == ("ok", "ok")


def test_give_shows_the_default_fund(client, fund):
    make_fund("other-fund", name="Other Fund")
    response = client.get("/give")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Support Community Forums Reporting" in html
    assert checked_values(html, "amount_choice") == ["5000"]  # the second suggestion


def test_root_sends_readers_to_the_gift_page(client, fund):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/give")


def test_fund_page_by_slug(client, fund):
    make_fund("school-board", name="School Board Coverage")
    response = client.get("/give/school-board")
    assert response.status_code == 200
    assert "Support School Board Coverage" in response.get_data(as_text=True)


def test_unknown_and_inactive_funds_are_not_found(client, fund):
    closed = make_fund("closed-campaign")
    closed.active = False
    db.session.commit()
    assert client.get("/give/no-such-fund").status_code == 404
    assert client.get("/give/closed-campaign").status_code == 404
    token = csrf_token(client, "/give")
    assert client.post("/give/closed-campaign", data=gift_form(token)).status_code == 404
    assert row_counts() == NOTHING_WRITTEN


def test_no_active_fund_is_not_found(client):
    assert client.get("/give").status_code == 404


def test_suggested_amounts_are_set_per_fund(client, fund):
    make_fund("elections", suggested_amounts={"one_time": [1500, 3000, 7500]})
    html = client.get("/give/elections").get_data(as_text=True)
    assert shown_amounts(html) == ["1500", "3000", "7500", "other"]
    assert checked_values(html, "amount_choice") == ["3000"]
    for label in ("$15", "$30", "$75"):
        assert label in html
    # The default fund keeps the default suggestions.
    assert shown_amounts(client.get("/give").get_data(as_text=True)) == ["2500", "5000", "10000", "25000", "other"]


def test_an_amount_the_fund_does_not_suggest_is_refused(client, fund):
    make_fund("elections", suggested_amounts={"one_time": [1500, 3000]})
    response = post_gift(client, "/give/elections", amount_choice="5000")
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "amount_choice")
    assert row_counts() == NOTHING_WRITTEN


def test_suggested_amount_makes_a_pending_gift(client, fund):
    response = post_gift(client, amount_choice="10000")
    assert response.status_code == 303
    gift = only_gift()
    assert (gift.amount_cents, gift.fee_covered_cents) == (10000, 0)
    assert gift.status == GiftStatus.PENDING
    assert gift.received_at is None
    assert gift.tax_deductible is False
    assert gift.source == GiftSource.STRIPE
    assert gift.frequency == Frequency.ONE_TIME
    assert gift.fund_id == fund.id
    assert gift.donor.email == "rae@example.org"
    assert gift.donor.name == "Rae Reader"
    assert gift.donor.postal_code == "94110"
    assert response.headers["Location"].startswith(f"/pay/local/{gift.stripe_checkout_session_id}")


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("37", 3700),
        ("37.5", 3750),
        ("$1,234.56", 123456),
        (" 5 ", 500),
        ("25000.00", 2_500_000),
        ("1,000", 100_000),
        ("1,000.50", 100_050),
    ],
)
def test_custom_amount(client, fund, typed, cents):
    response = post_gift(client, amount_choice="other", custom_amount=typed)
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    assert only_gift().amount_cents == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("4.99", "Gifts can be from $5.00 to $25,000.00."),
        ("25000.01", "Gifts can be from $5.00 to $25,000.00."),
        ("0", "Gifts can be from $5.00 to $25,000.00."),
        ("-20", "Enter an amount in dollars, like 25 or 25.50."),
        ("twenty", "Enter an amount in dollars, like 25 or 25.50."),
        ("12.345", "Enter an amount in dollars, like 25 or 25.50."),
        ("", "Enter the amount you would like to give."),
        # A decimal comma is refused, not read as thousands (issue 13, finding 4: "20,5" was $205).
        ("20,5", "Use a period for cents, like 20.50."),
        ("1,00", "Use a period for cents, like 20.50."),
        ("10,50", "Use a period for cents, like 20.50."),
    ],
)
def test_custom_amount_out_of_range_or_unreadable(client, fund, typed, message):
    response = post_gift(
        client,
        amount_choice="other",
        custom_amount=typed,
        name="Sam Typed",
        email="sam@example.org",
        postal_code="97201",
        organization="Typed Org",
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert field_error(html, "custom_amount") == message
    # The error is announced, linked from the summary, and tied to the field.
    assert 'aria-describedby="amount-range custom_amount-error"' in html
    # What the reader typed is kept.
    assert input_value(html, "custom_amount") == typed
    assert input_value(html, "name") == "Sam Typed"
    assert input_value(html, "email") == "sam@example.org"
    assert input_value(html, "postal_code") == "97201"
    assert input_value(html, "organization") == "Typed Org"
    assert checked_values(html, "amount_choice") == ["other"]
    assert row_counts() == NOTHING_WRITTEN


def test_minimum_and_maximum_are_configurable(app, client, fund, monkeypatch):
    monkeypatch.setitem(app.config, "GIFT_MINIMUM_CENTS", 1000)
    monkeypatch.setitem(app.config, "GIFT_MAXIMUM_CENTS", 20000)
    html = client.get("/give").get_data(as_text=True)
    assert "From $10 to $200." in html
    low = post_gift(client, amount_choice="other", custom_amount="9.99")
    assert low.status_code == 400
    assert field_error(low.get_data(as_text=True), "custom_amount") == "Gifts can be from $10.00 to $200.00."
    # A suggested amount above the maximum is refused too.
    high = post_gift(client, amount_choice="25000")
    assert high.status_code == 400
    assert row_counts() == NOTHING_WRITTEN
    assert post_gift(client, amount_choice="other", custom_amount="200").status_code == 303
    assert only_gift().amount_cents == 20000


@pytest.mark.parametrize("amount_cents", [500, 2500, 5000, 12345, 2_500_000])
def test_fee_cover_shows_the_exact_extra(client, fund, amount_cents):
    # An error elsewhere re-renders the page with the typed amount: the sentence follows it.
    typed = f"{amount_cents // 100}.{amount_cents % 100:02d}"
    response = post_gift(client, amount_choice="other", custom_amount=typed, name="")
    assert response.status_code == 400
    fee, base = fee_sentence(response.get_data(as_text=True))
    assert fee == format_money(expected_fee(amount_cents))
    assert base == format_money(amount_cents)


def test_fee_cover_sentence_on_the_fresh_page(client, fund):
    fee, base = fee_sentence(client.get("/give").get_data(as_text=True))
    assert (fee, base) == ("$1.81", "$50.00")  # ceil(5030 / 0.971) = 5181 cents
    assert expected_fee(5000) == 181


def test_fee_cover_follows_configured_rate(app, client, fund, monkeypatch):
    monkeypatch.setitem(app.config, "FEE_PERCENT", "2.2")
    monkeypatch.setitem(app.config, "FEE_FIXED_CENTS", 30)
    html = client.get("/give").get_data(as_text=True)
    assert fee_sentence(html)[0] == format_money(expected_fee(5000, "2.2", 30))
    assert "2.2% + 30¢" in html
    assert post_gift(client, cover_fee="y").status_code == 303
    assert only_gift().fee_covered_cents == expected_fee(5000, "2.2", 30)


@pytest.mark.parametrize("amount_cents", [2500, 10000])
def test_fee_cover_is_stored(client, fund, amount_cents):
    response = post_gift(client, amount_choice=str(amount_cents), cover_fee="y")
    assert response.status_code == 303
    gift = only_gift()
    fee = expected_fee(amount_cents)
    assert gift.fee_covered_cents == fee
    assert gift.amount_cents == amount_cents + fee


def test_fee_cover_on_a_custom_amount(client, fund):
    assert post_gift(client, amount_choice="other", custom_amount="123.45", cover_fee="y").status_code == 303
    gift = only_gift()
    assert gift.fee_covered_cents == expected_fee(12345)
    assert gift.amount_cents == 12345 + expected_fee(12345)


def test_organization_anonymous_and_tribute_are_stored(client, fund):
    response = post_gift(
        client,
        on_behalf_of_organization="y",
        organization="  Corner Bakery LLC ",
        anonymous="y",
        tribute_kind="memory",
        tribute_name="Ada Lovelace",
    )
    assert response.status_code == 303
    gift = only_gift()
    assert gift.organization == "Corner Bakery LLC"
    assert gift.anonymous is True
    assert (gift.tribute_kind, gift.tribute_name) == ("memory", "Ada Lovelace")


def test_organization_name_without_the_box_is_not_an_organization_gift(client, fund):
    assert post_gift(client, organization="Typed but not ticked").status_code == 303
    gift = only_gift()
    assert gift.organization is None
    assert gift.anonymous is False
    assert gift.tribute_kind is None


def test_tribute_name_without_a_dedication_is_dropped(client, fund):
    assert post_gift(client, tribute_kind="", tribute_name="Someone").status_code == 303
    assert (only_gift().tribute_kind, only_gift().tribute_name) == (None, None)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"on_behalf_of_organization": "y", "organization": " "}, "organization", "Enter the organization's name"),
        ({"tribute_kind": "honor", "tribute_name": ""}, "tribute_name", "Enter the name of the person"),
        ({"name": ""}, "name", "Enter your name."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"email": None}, "email", "Enter your email address."),
        ({"name": "Bell\x07Ringer"}, "name", "Remove the special characters"),
        ({"amount_choice": None}, "amount_choice", "Choose an amount."),
        ({"tribute_kind": "spite", "tribute_name": "X"}, "tribute_kind", "Not a valid choice"),
    ],
)
def test_errors_show_next_to_their_field(client, fund, overrides, field, message):
    response = post_gift(client, **overrides)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert field_error(html, field).startswith(message)
    assert 'role="alert"' in html  # the summary at the top is announced
    assert row_counts() == NOTHING_WRITTEN


def test_attribution_is_kept(client, fund):
    token = csrf_token(client, "/give")
    response = client.post(
        "/give?utm_source=newsletter&utm_campaign=spring&unrelated=x",
        data=gift_form(token),
        headers={"Referer": "https://news.example.org/story"},
    )
    assert response.status_code == 303
    assert only_gift().attribution == {
        "utm_source": "newsletter",
        "utm_campaign": "spring",
        "referrer": "https://news.example.org/story",
    }


def test_not_deductible_statement_stands_next_to_the_button(client, fund):
    html = client.get("/give").get_data(as_text=True)
    statement = html.index('<p class="not-deductible" id="not-deductible">')
    button = html.index('<button type="submit" class="give-button" aria-describedby="not-deductible">')
    assert statement < button
    between = page_text(html[statement:button])
    assert between.startswith("Your gift is not tax deductible.")
    assert "<input" not in html[statement:button] and "<fieldset" not in html[statement:button]


def test_post_without_csrf_token_is_refused_and_writes_nothing(client, fund):
    client.get("/give")  # a session exists, but the form does not carry its token
    response = client.post("/give", data=gift_form(None))
    assert response.status_code == 400
    assert "This form expired" in response.get_data(as_text=True)
    assert client.post("/give", data=gift_form("forged-token")).status_code == 400
    assert row_counts() == NOTHING_WRITTEN


def test_a_token_from_another_session_is_refused(app, client, fund):
    other = app.test_client()
    token = csrf_token(other, "/give")
    client.get("/give")
    assert client.post("/give", data=gift_form(token)).status_code == 400
    assert row_counts() == NOTHING_WRITTEN


def test_filled_honeypot_writes_nothing(client, fund):
    response = post_gift(client, website="http://spam.example")
    assert response.status_code == 302  # answered as if all were well
    assert response.headers["Location"].endswith("/give")
    assert row_counts() == NOTHING_WRITTEN


def test_honeypot_is_hidden_from_people(client, fund):
    html = client.get("/give").get_data(as_text=True)
    assert re.search(r'<div class="hp" aria-hidden="true">\s*<label for="website">', html)
    assert 'tabindex="-1"' in html[html.index('class="hp"') :]
