"""The Stripe gateway, against a local server that records what stripe-python sends and answers
as Stripe would (or fails as Stripe can: a 500, a time-out)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe

from donations.ledger.models import GiftStatus
from donations.payments.stripe_gateway import StripeGateway
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import extract_csrf_token, page_text
from tests.giving.support import counted_gifts, expected_fee, gift_form, only_gift, post_gift, row_counts
from tests.http_recorder import Answer, HTTPRecorder, stripe_error

SESSIONS = "/v1/checkout/sessions"
CHECKOUT_URL = "https://checkout.stripe.com/c/pay/cs_test_recorded"


@pytest.fixture
def stripe_api(app, monkeypatch) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_x")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 1)
        yield api


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


def session_answer(session_id: str = "cs_test_recorded") -> Answer:
    return Answer(json={"id": session_id, "object": "checkout.session", "url": CHECKOUT_URL, "mode": "payment"})


def test_gift_opens_a_checkout_session_with_the_intended_parameters(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, session_answer())
    response = post_gift(client, amount_choice="5000", cover_fee="y", email="Rae@Example.org")

    assert response.status_code == 303
    assert response.headers["Location"] == CHECKOUT_URL
    gift = only_gift()
    assert gift.status == GiftStatus.PENDING
    assert gift.stripe_checkout_session_id == "cs_test_recorded"

    [request] = stripe_api.requests_to("POST", SESSIONS)
    assert request.headers["Authorization"] == "Bearer sk_test_x"
    assert request.headers["Idempotency-Key"] == f"{se.TEST_INSTALLATION_ID}-checkout-gift-{gift.id}"
    assert request.headers["Stripe-Version"] == stripe.api_version  # the pinned library's version
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = request.form
    total = 5000 + expected_fee(5000)
    assert form["mode"] == "payment"
    assert form["line_items[0][price_data][unit_amount]"] == str(total)
    assert form["line_items[0][price_data][currency]"] == "usd"
    assert form["line_items[0][quantity]"] == "1"
    assert "not tax deductible" in form["line_items[0][price_data][product_data][name]"]
    assert "line_items[0][price_data][recurring][interval]" not in form
    assert form["customer_email"] == "Rae@Example.org"
    assert form["client_reference_id"] == str(gift.id)
    assert form["success_url"] == "http://localhost/give/thanks?session_id={CHECKOUT_SESSION_ID}"
    assert form["cancel_url"].startswith("http://localhost/give?resume=")
    assert form["metadata[gift_id]"] == str(gift.id)
    assert form["metadata[fund]"] == "community-forums"
    assert form["metadata[frequency]"] == "one_time"
    assert form["payment_intent_data[metadata][gift_id]"] == str(gift.id)
    assert form["submit_type"] == "donate"
    assert "name_collection[business][enabled]" not in form
    # The same, read as the nested structure Stripe rebuilds from it.
    assert request.nested_form["line_items"][0]["price_data"]["unit_amount"] == str(total)
    assert request.nested_form["metadata"] == {
        "installation": se.TEST_INSTALLATION_ID,
        "gift_id": str(gift.id),
        "fund": "community-forums",
        "frequency": "one_time",
    }


def test_a_gift_for_an_organization_asks_checkout_for_the_business_name(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, session_answer())
    response = post_gift(client, on_behalf_of_organization="y", organization="Corner Bakery LLC")
    assert response.status_code == 303
    form = stripe_api.requests_to("POST", SESSIONS)[0].form
    assert form["name_collection[business][enabled]"] == "true"
    assert form["name_collection[business][optional]"] == "false"


def test_the_cancel_url_returns_to_the_filled_form(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, session_answer())
    post_gift(client, "/give/community-forums", name="Cam Cancel")
    cancel = stripe_api.requests_to("POST", SESSIONS)[0].form["cancel_url"]
    assert cancel.startswith("http://localhost/give/community-forums?resume=")
    assert 'value="Cam Cancel"' in client.get(cancel).get_data(as_text=True)


@pytest.mark.parametrize(
    ("public_url", "server_name", "base"),
    [("https://give.example.org", None, "https://give.example.org"), (None, "localhost", "http://localhost")],
)
def test_checkout_return_addresses_ignore_a_forged_host_header(
    client, fund, stripe_api, app, monkeypatch, public_url, server_name, base
):
    # TRUSTED_HOSTS unset, as in the finding: the request is answered whatever its Host.
    monkeypatch.setitem(app.config, "PUBLIC_URL", public_url)
    monkeypatch.setitem(app.config, "SERVER_NAME", server_name)
    stripe_api.route("POST", SESSIONS, session_answer())
    evil = "http://evil.example.net"
    token = extract_csrf_token(client.get("/give", base_url=evil).get_data(as_text=True))
    response = client.post("/give", data=gift_form(token), base_url=evil)
    assert response.status_code == 303
    form = stripe_api.requests_to("POST", SESSIONS)[0].form
    assert form["success_url"] == f"{base}/give/thanks?session_id={{CHECKOUT_SESSION_ID}}"
    assert form["cancel_url"].startswith(f"{base}/give?resume=")
    assert "evil" not in form["success_url"] + form["cancel_url"]


def test_each_gift_has_its_own_idempotency_key(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, lambda request: session_answer(f"cs_test_{len(stripe_api.requests)}"))
    post_gift(client)
    post_gift(client)
    keys = [r.headers["Idempotency-Key"] for r in stripe_api.requests_to("POST", SESSIONS)]
    assert len(keys) == len(set(keys)) == 2


def test_the_paid_session_is_recorded_from_stripes_webhook(client, fund, stripe_api, webhook_secret):
    stripe_api.route("POST", SESSIONS, session_answer("cs_test_paid"))
    post_gift(client, amount_choice="2500")
    gift_id = only_gift().id
    session = se.checkout_session(
        session_id="cs_test_paid",
        amount_cents=2500,
        email="rae@example.org",
        metadata={"gift_id": str(gift_id), "fund": "community-forums", "frequency": "one_time"},
    )
    assert se.post_event(client, se.event("checkout.session.completed", session), webhook_secret).status_code == 200
    gift = only_gift()
    assert (gift.id, gift.status, gift.amount_cents) == (gift_id, GiftStatus.PAID, 2500)
    assert counted_gifts() == 1
    page = client.get("/give/thanks?session_id=cs_test_paid")
    assert "Your gift of $25.00 to Community Forums Reporting has been received." in page_text(
        page.get_data(as_text=True)
    )


def assert_retry_page_and_failed_gift(response) -> None:
    assert response.status_code == 503
    text = page_text(response.get_data(as_text=True))
    assert "We couldn't reach our payment processor" in text
    assert "No money was taken" in text
    gift = only_gift()
    assert gift.status == GiftStatus.FAILED
    assert gift.received_at is None
    assert gift.stripe_checkout_session_id is None
    assert counted_gifts() == 0
    assert row_counts()["stripe_events"] == 0
    assert row_counts()["outbox_messages"] == 0


def test_a_500_from_stripe_gives_the_retry_page(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, status=500, json=stripe_error("An unknown error occurred"))
    response = post_gift(client)
    assert_retry_page_and_failed_gift(response)
    # max_network_retries=1: one retry, with the same idempotency key so Stripe cannot make two.
    attempts = stripe_api.requests_to("POST", SESSIONS)
    assert len(attempts) == 2
    assert {r.headers["Idempotency-Key"] for r in attempts} == {
        f"{se.TEST_INSTALLATION_ID}-checkout-gift-{only_gift().id}"
    }


def test_a_500_that_stripe_says_not_to_retry_is_sent_once(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, status=500, json=stripe_error("no"), headers={"Stripe-Should-Retry": "false"})
    assert_retry_page_and_failed_gift(post_gift(client))
    assert len(stripe_api.requests_to("POST", SESSIONS)) == 1


def test_a_500_then_success_is_retried_into_a_checkout(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, [Answer(status=500, json=stripe_error("blip")), session_answer()])
    response = post_gift(client)
    assert response.status_code == 303
    assert response.headers["Location"] == CHECKOUT_URL
    assert only_gift().status == GiftStatus.PENDING


def test_stripe_refusing_the_request_gives_the_retry_page(client, fund, stripe_api):
    stripe_api.route(
        "POST", SESSIONS, status=400, json=stripe_error("Invalid email", "invalid_request_error", "email_invalid")
    )
    assert_retry_page_and_failed_gift(post_gift(client))
    assert len(stripe_api.requests_to("POST", SESSIONS)) == 1  # a 4xx is not retried


def test_a_session_without_url_gives_the_retry_page(client, fund, stripe_api):
    stripe_api.route("POST", SESSIONS, json={"id": "cs_test_no_url", "object": "checkout.session", "url": None})
    assert_retry_page_and_failed_gift(post_gift(client))


def test_a_stripe_time_out_gives_the_retry_page(client, fund, stripe_api):
    # A good session, but only after 4 seconds, past STRIPE_TIMEOUT_SECONDS = 1: a client that
    # waited for it would redirect to the checkout, so the retry page shows that it gave up.
    delayed = session_answer()
    stripe_api.route("POST", SESSIONS, Answer(json=delayed.json, delay=4))
    assert_retry_page_and_failed_gift(post_gift(client))
    # The time-out is retried once, with the same idempotency key, then the reader is told.
    attempts = stripe_api.requests_to("POST", SESSIONS)
    assert len(attempts) == 2
    assert {r.headers["Idempotency-Key"] for r in attempts} == {
        f"{se.TEST_INSTALLATION_ID}-checkout-gift-{only_gift().id}"
    }


def test_stripe_unreachable_gives_the_retry_page(app, client, fund, stripe_api, monkeypatch):
    closed = HTTPRecorder().start()
    address = closed.url
    closed.stop()  # nothing listens there any more: the connection is refused
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", address)
    assert_retry_page_and_failed_gift(post_gift(client))


def test_checkouts_share_one_stripe_client_per_configuration(app, stripe_api, monkeypatch):
    # Kept per process, so its HTTP connections to Stripe are reused across checkouts.
    first = StripeGateway.from_config(app.config).client
    assert StripeGateway.from_config(app.config).client is first
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_rotated")
    rotated = StripeGateway.from_config(app.config).client
    assert rotated is not first  # a new key (or API base, or time-out) gets its own client


@pytest.mark.parametrize("frequency", ["one_time", "monthly"])
def test_checkout_is_left_to_offer_the_wallets_the_account_enables(
    app, client, fund, stripe_api, frequency, monkeypatch
):
    """Apple Pay and Google Pay show in Checkout when the Stripe account turns them on (Dashboard
    -> Settings -> Payment methods): the request names no payment method types, configuration or
    options that would narrow Checkout to typed-in cards."""
    monkeypatch.setitem(app.config, "GIFT_FREQUENCIES", ["one_time", "monthly"])
    stripe_api.route("POST", SESSIONS, session_answer())
    amount = "5000" if frequency == "one_time" else "1000"
    assert post_gift(client, frequency=frequency, amount_choice=amount).status_code == 303
    [request] = stripe_api.requests_to("POST", SESSIONS)
    narrowing = [
        key
        for key in request.form
        if key.startswith(("payment_method_types", "payment_method_configuration", "payment_method_options"))
    ]
    assert narrowing == []
