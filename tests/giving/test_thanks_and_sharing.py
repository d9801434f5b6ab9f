"""The thank-you page closes the loop (what was given, for whom, where the receipt went, how to
share), and a shared gift-page link has its preview tags; the favicon is our own."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from donations.ledger.models import GiftStatus
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import page_text


@pytest.fixture
def fund(app):
    return make_fund(
        "forums", name="Community Forums Reporting", is_default=True, description="Reporters at every forum."
    )


def test_the_thank_you_page_says_what_was_given_and_where_the_receipt_went(client, fund):
    donor = make_donor("rae@example.org")
    make_gift(
        donor,
        fund,
        5181,
        fee_covered_cents=181,
        stripe_checkout_session_id="cs_test_thanks",
        tribute_kind="memory",
        tribute_name="Ada Reader",
        organization="Acme Hardware",
    )
    html = client.get("/give/thanks?session_id=cs_test_thanks").get_data(as_text=True)
    text = page_text(html)
    assert "Your gift of $51.81 to Community Forums Reporting has been received." in text
    assert "Given in memory of Ada Reader" in text
    assert "Given on behalf of Acme Hardware" in text
    assert "A receipt is on its way to rae@example.org" in text
    assert "Your gift is not tax deductible." in text
    share = quote("http://localhost/give/forums", safe="/")
    assert f"https://www.facebook.com/sharer/sharer.php?u={share}" in html
    assert "mailto:?subject=" in html
    assert "<script" not in html.replace('<script src="/static/js/forms.js" defer></script>', "")


def test_a_monthly_gift_says_a_month_and_a_pending_one_no_receipt_yet(client, fund):
    make_gift(make_donor(), fund, 1500, frequency="monthly", stripe_checkout_session_id="cs_test_monthly")
    assert "$15.00 a month to Community Forums Reporting" in page_text(
        client.get("/give/thanks?session_id=cs_test_monthly").get_data(as_text=True)
    )
    make_gift(make_donor(), fund, 2500, status=GiftStatus.PENDING, stripe_checkout_session_id="cs_test_pending")
    text = page_text(client.get("/give/thanks?session_id=cs_test_pending").get_data(as_text=True))
    assert "is being processed" in text and "A receipt is on its way to" not in text


def test_the_gift_page_has_preview_tags_for_a_shared_link(client, fund):
    html = client.get("/give/forums").get_data(as_text=True)
    assert '<meta property="og:title" content="Support Community Forums Reporting">' in html
    assert '<meta property="og:description" content="Reporters at every forum.">' in html
    assert '<meta property="og:url" content="http://localhost/give/forums">' in html
    assert '<meta name="twitter:card" content="summary">' in html


def test_the_favicon_is_served_by_us(client, fund):
    html = client.get("/give/forums").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    response = client.get("/static/favicon.svg")
    assert response.status_code == 200 and b"<svg" in response.data
