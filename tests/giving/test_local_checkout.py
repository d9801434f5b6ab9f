"""The whole one-time journey with the local gateway, through the test client: the form, the
local checkout page, the signed webhook it delivers, and the thank-you page."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import GiftStatus
from donations.mail import render
from donations.mail.models import OutboxMessage
from donations.payments.models import StripeEvent
from tests.factories import make_fund
from tests.forms import checked_values, extract_csrf_token, input_value, page_text
from tests.giving.support import counted_gifts, expected_fee, only_gift, post_gift, row_counts

PAYS = "4242 4242 4242 4242"
DECLINES = "4000 0000 0000 0002"


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def open_checkout(client, **overrides) -> tuple[str, str]:
    """Post the gift form; return (checkout path, checkout page html)."""
    response = post_gift(client, **overrides)
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    checkout = response.headers["Location"]
    page = client.get(checkout)
    assert page.status_code == 200
    return checkout, page.get_data(as_text=True)


def pay(client, checkout: str, html: str, card: str):
    return client.post(checkout, data={"csrf_token": extract_csrf_token(html), "card_number": card})


def test_paying_with_4242_records_the_gift_and_thanks_the_reader(client, fund):
    checkout, html = open_checkout(client, amount_choice="5000", cover_fee="y")
    fee = expected_fee(5000)
    assert f"Pay ${(5000 + fee) / 100:.2f}" in html
    assert "4242 4242 4242 4242" in html  # the page says how to test

    response = pay(client, checkout, html, PAYS)
    assert response.status_code == 302
    thanks = response.headers["Location"]
    gift = only_gift()
    assert thanks == f"/give/thanks?session_id={gift.stripe_checkout_session_id}"

    assert gift.status == GiftStatus.PAID
    assert (gift.amount_cents, gift.fee_covered_cents) == (5000 + fee, fee)
    assert gift.received_at is not None
    assert gift.stripe_payment_intent_id and gift.stripe_payment_intent_id.startswith("pi_local_")
    assert gift.tax_deductible is False
    assert counted_gifts() == 1
    # It came through the real webhook: verified, stored by id, applied once.
    charge, stored = db.session.scalars(select(StripeEvent).order_by(StripeEvent.received_at)).all()
    assert charge.type == "charge.succeeded" and charge.applied_at is not None
    assert (stored.type, stored.received_via, stored.error) == ("checkout.session.completed", "webhook", None)
    assert stored.applied_at is not None
    assert stored.payload["data"]["object"]["metadata"]["gift_id"] == str(gift.id)
    receipt = db.session.scalars(select(OutboxMessage)).one()
    assert (receipt.kind, receipt.to_address, receipt.context) == (
        "gift_receipt",
        "rae@example.org",
        {"gift_id": gift.id},
    )

    page = client.get(thanks)
    assert page.status_code == 200
    text = page_text(page.get_data(as_text=True))
    assert f"Your gift of ${(5000 + fee) / 100:.2f} to Community Forums Reporting has been received." in text
    assert f"It includes ${fee / 100:.2f} to cover the processing fee." in text
    assert "Your gift is not tax deductible." in text


def test_paying_twice_changes_nothing(client, fund):
    checkout, html = open_checkout(client)
    assert pay(client, checkout, html, PAYS).status_code == 302
    before = row_counts()
    # The paid checkout page only points to the thank-you page now.
    again = client.get(checkout)
    assert again.status_code == 302
    assert again.headers["Location"].startswith("/give/thanks")
    assert pay(client, checkout, html, PAYS).status_code == 302
    assert row_counts() == before
    assert counted_gifts() == 1


def test_declined_card_fails_the_gift_until_another_card_pays_it(client, fund):
    """Issue 13, finding 5: the declined card's gift stayed pending forever."""
    checkout, html = open_checkout(client)
    response = pay(client, checkout, html, DECLINES)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Your card was declined. No money was taken; try another card." in page_text(page)
    assert 'aria-invalid="true"' in page
    gift = only_gift()
    assert gift.status == GiftStatus.FAILED
    assert gift.received_at is None
    assert counted_gifts() == 0
    assert row_counts()["stripe_events"] == 0
    assert row_counts()["outbox_messages"] == 0
    # The reader can try again with a good card.
    assert pay(client, checkout, page, PAYS).status_code == 302
    assert only_gift().status == GiftStatus.PAID
    assert counted_gifts() == 1


def test_another_card_number_is_explained(client, fund):
    checkout, html = open_checkout(client)
    response = pay(client, checkout, html, "5555 5555 5555 4444")
    assert response.status_code == 400
    assert "Use the test card 4242 4242 4242 4242" in page_text(response.get_data(as_text=True))
    assert only_gift().status == GiftStatus.PENDING


def test_thank_you_before_payment_says_it_is_being_confirmed(client, fund):
    open_checkout(client)
    page = client.get(f"/give/thanks?session_id={only_gift().stripe_checkout_session_id}")
    assert page.status_code == 200
    text = page_text(page.get_data(as_text=True))
    assert "your payment is being confirmed" in text
    assert "Your gift is not tax deductible." in text


def test_thank_you_for_an_unknown_session_is_not_found(client, fund):
    assert client.get("/give/thanks?session_id=cs_local_nope").status_code == 404
    assert client.get("/give/thanks").status_code == 404


def test_unknown_checkout_session_is_not_found(client, fund):
    assert client.get("/pay/local/cs_local_unknown").status_code == 404


def test_cancel_returns_to_the_filled_form(client, fund):
    make_fund("elections", name="Elections")
    response = post_gift(
        client,
        "/give/elections",
        amount_choice="other",
        custom_amount="42.50",
        cover_fee="y",
        name="Cam Cancel",
        email="cam@example.org",
        postal_code="60601",
        on_behalf_of_organization="y",
        organization="Cam's Cafe",
        anonymous="y",
        tribute_kind="honor",
        tribute_name="Grace Hopper",
    )
    assert response.status_code == 303
    checkout = client.get(response.headers["Location"]).get_data(as_text=True)
    cancel = _cancel_link(checkout)
    assert urlsplit(cancel).path == "/give/elections"
    assert "resume" in parse_qs(urlsplit(cancel).query)

    form = client.get(cancel)
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert checked_values(html, "amount_choice") == ["other"]
    assert input_value(html, "custom_amount") == "42.50"  # the amount before the fee cover
    assert checked_values(html, "cover_fee") == ["y"]
    assert input_value(html, "name") == "Cam Cancel"
    assert input_value(html, "email") == "cam@example.org"
    assert input_value(html, "postal_code") == "60601"
    assert checked_values(html, "on_behalf_of_organization") == ["y"]
    assert input_value(html, "organization") == "Cam's Cafe"
    assert checked_values(html, "anonymous") == ["y"]
    assert checked_values(html, "tribute_kind") == ["honor"]
    assert input_value(html, "tribute_name") == "Grace Hopper"
    # The gift that was abandoned is still only pending: nothing counted.
    assert counted_gifts() == 0


def test_a_tampered_resume_token_gives_an_empty_form(client, fund):
    checkout = client.get(post_gift(client, name="Private Person").headers["Location"]).get_data(as_text=True)
    cancel = _cancel_link(checkout)
    html = client.get(cancel.replace("resume=", "resume=x")).get_data(as_text=True)
    assert input_value(html, "name") in (None, "")
    assert "Private Person" not in html


def test_a_paid_gift_cannot_be_resumed(client, fund):
    response = post_gift(client, name="Paid Already")
    checkout = response.headers["Location"]
    page = client.get(checkout).get_data(as_text=True)
    cancel = _cancel_link(page)
    assert pay(client, checkout, page, PAYS).status_code == 302
    html = client.get(cancel).get_data(as_text=True)
    assert "Paid Already" not in html


def test_cancel_link_never_leaves_the_site(client, fund):
    response = post_gift(client)
    checkout = response.headers["Location"]
    path = urlsplit(checkout).path
    html = client.get(f"{path}?cancel=https://evil.example/phish").get_data(as_text=True)
    assert "evil.example" not in html
    assert _cancel_link(html).endswith("/give/community-forums")


def _cancel_link(html: str) -> str:
    match = re.search(r'<a href="([^"]+)">Cancel and return to the form</a>', html)
    assert match
    return unescape(match.group(1))


def test_the_local_receipt_names_the_cards_last_four_digits(client, fund):
    """Issue 13, finding 8: the local gateway sends charge.succeeded as Stripe does."""
    checkout, html = open_checkout(client, amount_choice="5000")
    pay(client, checkout, html, PAYS)
    gift = only_gift()
    assert gift.card_last4 == "4242"
    message = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "gift_receipt")).one()
    assert "card ending in 4242" in render.render(message.kind, message.context).text
