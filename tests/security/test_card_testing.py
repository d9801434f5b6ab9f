"""Card testing: a bot tries many small checkouts to learn which stolen cards work. The limits
refuse the excess before any checkout is opened at the gateway, declines pause the address,
email and card they came from, and every refusal is counted for the dashboard."""

from __future__ import annotations

import itertools
import logging
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus
from donations.protection import card_testing as protection
from tests import stripe_events as se
from tests.forms import extract_csrf_token, page_text
from tests.giving.support import gift_form
from tests.http_recorder import Answer, HTTPRecorder
from tests.security.support import all_gifts, blocked, browser, csrf_token, pending_gifts, signed_in

DECLINES = "4000 0000 0000 0002"
PAYS = "4242 4242 4242 4242"


@pytest.fixture
def stripe_api(app, monkeypatch):
    """The Stripe gateway, pointed at a recording stand-in for Stripe's API."""
    numbers = itertools.count(1)

    def new_session(_request):
        number = next(numbers)
        return Answer(
            json={
                "id": f"cs_test_{number}",
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/cs_test_{number}",
            }
        )

    with HTTPRecorder() as api:
        api.route("POST", "/v1/checkout/sessions", new_session)
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_card_testing")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 2)
        yield api


def test_fifty_checkouts_from_one_address_in_a_minute_open_ten_at_stripe(app, fund, strict_limits, stripe_api):
    bot = browser(app, "203.0.113.50")
    token = csrf_token(bot, "/give")
    statuses = [
        bot.post("/give", data=gift_form(token, email=f"card{n}@example.org", amount_choice="2500")).status_code
        for n in range(50)
    ]
    assert statuses == [303] * 10 + [429] * 40
    assert len(stripe_api.requests_to("POST", "/v1/checkout/sessions")) == 10  # no Stripe call for the excess
    assert pending_gifts() == 10
    assert blocked("rate_limit_address") == 40

    # A reader elsewhere is not affected, nor is anyone merely looking at the page.
    reader = browser(app, "198.51.100.7")
    assert reader.post("/give", data=gift_form(csrf_token(reader, "/give"))).status_code == 303
    assert [bot.get("/give").status_code for _ in range(20)] == [200] * 20


def test_reading_the_gift_page_spends_none_of_the_limit(app, fund, strict_limits, stripe_api):
    reader = browser(app, "203.0.113.52")
    assert [reader.get("/give").status_code for _ in range(30)] == [200] * 30
    assert reader.head("/give").status_code == 200
    token = csrf_token(reader, "/give")
    statuses = [reader.post("/give", data=gift_form(token, email=f"r{n}@example.org")).status_code for n in range(11)]
    assert statuses == [303] * 10 + [429]  # the whole budget was still there for the forms


def test_the_refusal_is_a_clear_page_with_retry_after(app, fund, strict_limits):
    bot = browser(app, "203.0.113.51")
    token = csrf_token(bot, "/give")
    for n in range(10):
        assert bot.post("/give", data=gift_form(token, email=f"p{n}@example.org")).status_code == 303
    refused = bot.post("/give", data=gift_form(token, email="p11@example.org"))
    assert refused.status_code == 429
    assert "Too many attempts" in page_text(refused.get_data(as_text=True))
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert all_gifts() == 10


def test_mistakes_do_not_count_as_checkout_attempts(app, fund, strict_limits):
    reader = browser(app, "203.0.113.53")
    token = csrf_token(reader, "/give")
    typos = [
        reader.post("/give", data=gift_form(token, email=f"typo{n}@example", custom_amount="")).status_code
        for n in range(10)
    ] + [reader.post("/give", data=gift_form(token, amount_choice="other", custom_amount="2O")).status_code]
    assert typos == [400] * 11
    assert reader.post("/give", data=gift_form(token, email="fixed@example.org")).status_code == 303
    assert blocked("rate_limit_address") == 0 and blocked("rate_limit_email") == 0


def test_the_refusal_says_how_long_to_wait_and_keeps_what_was_typed(app, fund, strict_limits):
    reader = browser(app, "203.0.113.54")
    token = csrf_token(reader, "/give")
    for n in range(10):
        assert reader.post("/give", data=gift_form(token, email=f"k{n}@example.org")).status_code == 303
    typed = gift_form(
        token, amount_choice="other", custom_amount="42.50", name="Kim Keeps", email="kim@example.org", cover_fee="y"
    )
    refused = reader.post("/give", data=typed)
    assert refused.status_code == 429
    html = refused.get_data(as_text=True)
    text = page_text(html)
    assert "Too many attempts" in text and "per 1 minute" not in text
    assert re.search(r"Please wait about (1 minute|\d+ seconds), then send the form again", text), text
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert 'value="Kim Keeps"' in html and 'value="kim@example.org"' in html and 'value="42.50"' in html
    assert re.search(r'<input[^>]*checked[^>]*value="other"|<input[^>]*value="other"[^>]*checked', html)
    assert all_gifts() == 10


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "about 1 second"),
        (42, "about 42 seconds"),
        (60, "about 1 minute"),
        (61, "about 2 minutes"),
        (1800, "about 30 minutes"),
        (3600, "about 1 hour"),
        (5400, "about 2 hours"),
    ],
)
def test_waits_are_said_in_words(seconds, words):
    assert protection.wait_in_words(seconds) == words


def test_fifty_checkouts_for_one_email_from_many_addresses(app, fund, strict_limits):
    statuses = []
    for n in range(50):
        client = browser(app, f"192.0.2.{n + 1}")
        statuses.append(
            client.post("/give", data=gift_form(csrf_token(client, "/give"), email="Victim@Example.org")).status_code
        )
    assert statuses == [303] * 10 + [429] * 40
    assert all_gifts() == 10
    assert blocked("rate_limit_email") == 40


def test_the_email_limit_ignores_case(app, fund, strict_limits):
    for n in range(10):
        client = browser(app, f"192.0.2.{100 + n}")
        email = "victim@example.org" if n % 2 else "VICTIM@Example.ORG"
        assert client.post("/give", data=gift_form(csrf_token(client, "/give"), email=email)).status_code == 303
    last = browser(app, "192.0.2.199")
    assert last.post("/give", data=gift_form(csrf_token(last, "/give"), email="Victim@example.ORG")).status_code == 429


def test_the_webhook_is_never_rate_limited(app, client, fund, strict_limits, webhook_secret):
    for _ in range(30):
        payload = se.event("checkout.session.completed", se.checkout_session(amount_cents=500))
        assert se.post_event(client, payload, webhook_secret).status_code == 200
    assert all_gifts() == 30


def test_a_small_probe_below_the_minimum_is_refused(app, client, fund):
    response = client.post(
        "/give", data=gift_form(csrf_token(client, "/give"), amount_choice="other", custom_amount="1.00")
    )
    assert response.status_code == 400
    assert "Gifts can be from $5.00" in page_text(response.get_data(as_text=True))
    assert all_gifts() == 0


def test_honeypot_hits_are_logged_without_personal_data_and_counted(app, client, fund, caplog):
    caplog.set_level(logging.INFO)
    response = client.post("/give", data=gift_form(csrf_token(client, "/give"), website="http://spam.example"))
    assert response.status_code == 302  # looks like success to the bot
    assert all_gifts() == 0
    assert blocked("honeypot") == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "donations.protection.card_testing"]
    assert lines == ["blocked attempt: honeypot at giving.give"]
    assert "rae@example.org" not in caplog.text and "127.0.0.1" not in caplog.text


# -- declines ----------------------------------------------------------------------------------


def open_checkout(client, email: str = "rae@example.org") -> tuple[str, str]:
    response = client.post("/give", data=gift_form(csrf_token(client, "/give"), email=email))
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    return response.headers["Location"], extract_csrf_token(page.get_data(as_text=True))


def test_three_declines_pause_the_address_the_email_and_the_card(app, fund, strict_limits):
    tester = browser(app, "203.0.113.60")
    checkout, token = open_checkout(tester, email="tester@example.org")
    for _ in range(3):
        declined = tester.post(checkout, data={"csrf_token": token, "card_number": DECLINES})
        assert declined.status_code == 400
        assert "declined" in page_text(declined.get_data(as_text=True))

    # The same address can neither pay (even with a good card) nor open a new checkout.
    paused = tester.post(checkout, data={"csrf_token": token, "card_number": PAYS})
    assert paused.status_code == 429
    assert "paused" in page_text(paused.get_data(as_text=True))
    assert 0 < int(paused.headers["Retry-After"]) <= 30 * 60
    assert tester.post("/give", data=gift_form(token, email="new@example.org")).status_code == 429

    # The same email from elsewhere is paused too; another reader is not.
    elsewhere = browser(app, "198.51.100.61")
    assert (
        elsewhere.post("/give", data=gift_form(csrf_token(elsewhere, "/give"), email="TESTER@example.org")).status_code
        == 429
    )
    reader = browser(app, "198.51.100.62")
    checkout2, token2 = open_checkout(reader, email="reader@example.org")
    assert reader.post(checkout2, data={"csrf_token": token2, "card_number": PAYS}).status_code == 302

    assert blocked("decline_cooldown") == 3
    statuses = dict(db.session.execute(select(Gift.donor_id, Gift.status)).all())
    assert sorted(statuses.values()) == [GiftStatus.FAILED, GiftStatus.PAID]  # the declined gift never counted


def test_one_card_declined_from_three_addresses_is_paused_everywhere(app, fund, strict_limits):
    for n in range(3):
        client = browser(app, f"203.0.113.{70 + n}")
        checkout, token = open_checkout(client, email=f"mule{n}@example.org")
        assert client.post(checkout, data={"csrf_token": token, "card_number": DECLINES}).status_code == 400
    fresh = browser(app, "203.0.113.80")
    checkout, token = open_checkout(fresh, email="mule9@example.org")
    assert fresh.post(checkout, data={"csrf_token": token, "card_number": DECLINES}).status_code == 429  # the card
    assert fresh.post(checkout, data={"csrf_token": token, "card_number": PAYS}).status_code == 302  # another card


def test_the_cool_down_ends_by_itself(app, fund, strict_limits):
    strict_limits["DECLINE_COOLDOWN"] = "3 per 3 seconds"
    tester = browser(app, "203.0.113.90")
    checkout, token = open_checkout(tester)
    for _ in range(3):
        tester.post(checkout, data={"csrf_token": token, "card_number": DECLINES})
    assert tester.post("/give", data=gift_form(token, email="later@example.org")).status_code == 429
    time.sleep(3.2)
    assert tester.post("/give", data=gift_form(token, email="later@example.org")).status_code == 303


def test_stripe_declines_pause_the_email_they_came_with(app, client, fund, strict_limits, webhook_secret):
    def failed_charge(fingerprint: str, email: str) -> dict:
        return se.stripe_object(
            "charge",
            id=se.unique("ch"),
            status="failed",
            paid=False,
            failure_code="card_declined",
            billing_details={"email": email},
            payment_method_details={"card": {"fingerprint": fingerprint}},
        )

    # payment_intent.payment_failed reports the same declines: it is not counted a second time.
    for _ in range(3):
        intent = se.stripe_object("payment_intent", id=se.unique("pi"), status="requires_payment_method")
        assert (
            se.post_event(client, se.event("payment_intent.payment_failed", intent), webhook_secret).status_code == 200
        )
    assert (
        client.post("/give", data=gift_form(csrf_token(client, "/give"), email="stolen@example.org")).status_code == 303
    )

    for n in range(3):
        event = se.event("charge.failed", failed_charge(f"FpCard{n}", "Stolen@example.org"))
        response = se.post_event(client, event, webhook_secret)
        assert response.status_code == 200 and response.json["outcome"] == "applied"
    bot = browser(app, "203.0.113.99")
    refused = bot.post("/give", data=gift_form(csrf_token(bot, "/give"), email="stolen@example.org"))
    assert refused.status_code == 429
    assert all_gifts() == 1


def test_blocked_attempt_counts_since(app, fund):
    with app.test_request_context("/give", method="POST"):
        for reason in ("honeypot", "honeypot", "captcha"):
            protection.record_blocked(protection.BlockReason(reason))
    old = protection.BlockedAttempt(
        reason="honeypot", minute=utcnow().replace(second=0, microsecond=0) - timedelta(days=2), count=7
    )
    db.session.add(old)
    db.session.commit()
    assert protection.blocked_attempt_counts(utcnow() - timedelta(hours=1)) == {"honeypot": 2, "captcha": 1}
    assert protection.blocked_attempt_counts(utcnow() - timedelta(days=3)) == {"honeypot": 9, "captcha": 1}
    assert protection.blocked_attempt_counts(utcnow() + timedelta(minutes=2)) == {}


def test_the_dashboard_shows_blocked_attempts(app, fund, strict_limits):
    bot = browser(app, "203.0.113.120")
    token = csrf_token(bot)
    for n in range(12):
        bot.post("/give", data=gift_form(token, email=f"dash{n}@example.org"))
    bot.post("/give", data=gift_form(token, website="spam"))
    admin, _user = signed_in(app, "admin")
    page = admin.get("/staff/").get_data(as_text=True)
    assert "Too many checkouts from one address" in page
    assert 'data-testid="blocked-rate_limit_address">2<' in page  # two over the limit (the honeypot opens nothing)
    assert 'data-testid="blocked-honeypot">1<' in page


def test_every_block_reason_has_a_label_for_staff():
    # The dashboard shows each reason by its label; a new reason without one would fail here.
    assert {reason: reason.label for reason in protection.BlockReason}.keys() == set(protection.BlockReason)
    assert all(reason.label and reason.label != reason.value for reason in protection.BlockReason)
