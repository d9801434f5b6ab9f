"""Memberships from the reader's side: monthly and annual on the gift page, the local checkout's
subscription, the thank-you page's level, and self-service through an emailed link."""

from __future__ import annotations

import re
import time
from datetime import datetime
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from donations.extensions import db
from donations.giving import membership_service
from donations.ledger.models import Gift, GiftStatus, Membership, MembershipChange, MembershipStatus
from donations.mail.models import OutboxMessage
from donations.mail.render import render
from donations.payments.local import billing as local_billing
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import checked_values, csrf_token, extract_csrf_token, page_text
from tests.giving.support import (
    magic_links,
    open_account,
    post_gift,
    shown_amounts,
    start_local_membership,
    stripe_membership,
)
from tests.http_recorder import Answer, HTTPRecorder

PORTAL_URL = "https://billing.stripe.com/p/session/test_recorded"


@pytest.fixture
def fund(app):
    return make_fund(
        "community-forums",
        name="Community Forums Reporting",
        is_default=True,
        suggested_amounts={"one_time": [2500, 5000], "monthly": [700, 1500, 3000], "annual": [9000, 18000]},
    )


# The gift page and the local checkout ---------------------------------------------------------


def test_the_gift_page_offers_monthly_and_annual_with_their_own_suggestions(client, fund):
    html = client.get("/give").get_data(as_text=True)
    assert list(re.findall(r'name="frequency"[^>]*value="([^"]+)"', html)) == ["one_time", "monthly", "annual"]
    monthly = client.get("/give?frequency=monthly").get_data(as_text=True)
    assert checked_values(monthly, "frequency") == ["monthly"]
    assert checked_values(monthly, "amount_choice") == ["1500"]  # the second monthly suggestion
    assert shown_amounts(monthly) == ["700", "1500", "3000", "other"]
    annual = client.get("/give?frequency=annual").get_data(as_text=True)
    assert shown_amounts(annual) == ["9000", "18000", "other"]


def test_a_monthly_gift_on_the_local_checkout_becomes_a_membership(client, fund):
    membership = start_local_membership(client, amount="1500")
    assert (membership.amount_cents, membership.interval, membership.status) == (1500, "month", "active")
    assert local_billing.card_on_file(membership.id) == "4242"
    assert membership.stripe_subscription_id.startswith("sub_local_")
    assert membership.current_period_end > membership.started_at
    (gift,) = db.session.scalars(select(Gift)).all()  # the pending gift became installment #1
    assert (gift.status, gift.amount_cents, gift.membership_id) == (GiftStatus.PAID, 1500, membership.id)
    assert gift.stripe_invoice_id and gift.stripe_payment_intent_id
    kinds = set(db.session.scalars(select(OutboxMessage.kind)))
    assert kinds == {"membership_welcome", "installment_receipt"}

    thanks = client.get(f"/give/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True)
    text = page_text(thanks)
    assert "$15.00 a month makes you a Sustainer member" in text  # $180 a year
    assert "not tax deductible" in text


def test_paying_twice_makes_one_membership(client, fund):
    response = post_gift(client, frequency="annual", amount_choice="9000")
    checkout = urlsplit(response.headers["Location"])
    token = extract_csrf_token(client.get(f"{checkout.path}?{checkout.query}").get_data(as_text=True))
    gift = db.session.scalars(select(Gift)).one()
    from donations.payments.local import billing as local_billing

    local_billing.start_subscription(gift, "4242424242424242")  # a double click got there first
    client.post(checkout.path, data={"csrf_token": token, "card_number": "4242424242424242"})
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 1
    assert db.session.scalars(select(Membership)).one().interval == "year"


def test_levels_follow_the_configured_thresholds(client, fund, app, monkeypatch):
    monkeypatch.setitem(app.config, "MEMBERSHIP_LEVELS", [(0, "Reader"), (5_000, "Friend"), (100_000, "Patron")])
    membership = start_local_membership(client, amount="700")  # $84 a year
    gift = db.session.scalars(select(Gift)).one()
    thanks = page_text(client.get(f"/give/thanks?session_id={gift.stripe_checkout_session_id}").get_data(as_text=True))
    assert "makes you a Friend member" in thanks
    assert membership.amount_cents == 700


def test_the_stripe_gateway_opens_a_subscription_checkout(client, fund, app, monkeypatch):
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_x")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        api.route(
            "POST",
            "/v1/checkout/sessions",
            json={"id": "cs_test_sub", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/x"},
        )
        response = post_gift(client, frequency="monthly", amount_choice="3000")
        assert response.status_code == 303
        form = api.requests_to("POST", "/v1/checkout/sessions")[0].nested_form
    gift = db.session.scalars(select(Gift)).one()
    assert form["mode"] == "subscription"
    assert form["line_items"][0]["price_data"]["unit_amount"] == "3000"
    assert form["line_items"][0]["price_data"]["recurring"] == {"interval": "month"}
    assert form["subscription_data"]["metadata"] == {
        "installation": se.TEST_INSTALLATION_ID,
        "gift_id": str(gift.id),
        "fund": "community-forums",
        "frequency": "monthly",
    }


# The emailed link -------------------------------------------------------------------------


def test_the_request_page_answers_the_same_for_known_and_unknown_emails(client, fund):
    make_donor("known@example.org", name="Kim Known")
    answers = []
    for email in ("Known@Example.org", "stranger@example.org"):
        response = client.post("/membership", data={"csrf_token": csrf_token(client, "/membership"), "email": email})
        followed = client.get(response.headers["Location"])
        answers.append((response.status_code, response.headers["Location"], followed.get_data(as_text=True)))
    assert answers[0] == answers[1]
    assert answers[0][0] == 303
    (link,) = magic_links()  # only the known donor is sent a link
    assert link.to_address == "known@example.org"
    assert link.context["url"].startswith("http://localhost/membership/link/")
    expires = link.context["expires_at_iso"]
    assert abs(time.time() + 24 * 3600 - datetime.fromisoformat(expires).timestamp()) < 5


def test_a_bad_email_is_refused_and_nothing_queued(client, fund):
    response = client.post(
        "/membership", data={"csrf_token": csrf_token(client, "/membership"), "email": "not-an-email"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address." in response.get_data(as_text=True)
    assert magic_links() == []


def test_the_link_shows_the_members_memberships_and_gifts(client, fund):
    start_local_membership(client, email="rae@example.org", amount="3000")
    make_gift(make_donor("someone@example.org"), fund, 99_999)
    page = page_text(open_account(client, "RAE@example.org"))
    assert "$30.00 a month to Community Forums Reporting: Sustainer member" in page
    assert "Status: active" in page
    assert "$30.00" in page and "Monthly installment" in page
    assert "$999.99" not in page  # another donor's gift


def test_an_expired_link_gets_a_clear_page_and_no_data(client, fund):
    donor = make_donor("rae@example.org", name="Rae Reader")
    issued = int(time.time()) - 24 * 3600 - 1
    token = membership_service.make_link_token(donor, issued_at=issued)
    db.session.commit()
    response = client.get(f"/membership/link/{token}")
    assert response.status_code == 410
    text = page_text(response.get_data(as_text=True))
    assert "This link has expired" in text and "Ask for a new link" in text
    assert "rae@example.org" not in text and "Rae" not in text
    assert client.get("/membership/account").status_code == 303  # and no session was opened


def test_a_link_within_its_life_works(client, fund):
    donor = make_donor("rae@example.org")
    token = membership_service.make_link_token(donor, issued_at=int(time.time()) - 23 * 3600)
    db.session.commit()
    assert client.get(f"/membership/link/{token}").status_code == 303
    assert "Signed in as rae@example.org" in page_text(client.get("/membership/account").get_data(as_text=True))


def test_a_link_opens_one_browser_once(client, fund, app):
    """Issue 13, finding 12: a link worked again and again for 24 hours, from any browser."""
    make_donor("rae@example.org", name="Rae Reader")
    open_account(client, "rae@example.org")
    (link,) = magic_links()
    path = urlsplit(link.context["url"]).path
    another_browser = app.test_client()
    for browser in (another_browser, client):
        again = browser.get(path)
        assert again.status_code == 410
        text = page_text(again.get_data(as_text=True))
        assert "This link has already been used" in text and "Ask for a new link" in text
        assert "rae@example.org" not in text and "Rae" not in text
    assert another_browser.get("/membership/account").status_code == 303  # no session for a copy
    assert client.get("/membership/account").status_code == 200  # the first opening's session stays
    # The page offers a new link, and the new link works (once).
    assert 'href="/membership"' in client.get(path).get_data(as_text=True)
    assert "Signed in as rae@example.org" in page_text(open_account(client, "rae@example.org"))


def test_a_member_cookie_saved_before_sign_out_no_longer_opens_the_page(client, fund, app):
    """Issue 13, finding 10: sign-out only dropped the key from the browser's cookie."""
    make_donor("rae@example.org", name="Rae Reader")
    open_account(client, "rae@example.org")
    saved = client.get_cookie("session").value
    signed_out = client.post("/membership/sign-out", data={"csrf_token": csrf_token(client, "/membership/account")})
    assert signed_out.status_code == 303
    assert client.get("/membership/account").status_code == 303
    copy = app.test_client()
    copy.set_cookie("session", saved, domain="localhost")
    response = copy.get("/membership/account")
    assert response.status_code == 303 and response.headers["Location"].endswith("/membership")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"), id="signature"),
        pytest.param(lambda token: "x" + token, id="payload"),
        pytest.param(lambda token: "not-a-token", id="garbage"),
    ],
)
def test_a_tampered_link_gets_a_clear_page_and_no_data(client, fund, tamper):
    donor = make_donor("rae@example.org", name="Rae Reader")
    response = client.get(f"/membership/link/{tamper(membership_service.make_link_token(donor))}")
    assert response.status_code == 400
    text = page_text(response.get_data(as_text=True))
    assert "This link is not valid" in text
    assert "rae@example.org" not in text
    assert client.get("/membership/account").status_code == 303


def test_a_link_signed_for_another_purpose_is_not_accepted(client, fund, app):
    from itsdangerous import URLSafeSerializer

    donor = make_donor("rae@example.org")
    data = {"donor": donor.id, "email": donor.email_key, "issued": int(time.time())}
    resume_token = URLSafeSerializer(app.config["SECRET_KEY"], salt="resume-gift").dumps(data)
    assert client.get(f"/membership/link/{resume_token}").status_code == 400


def test_a_link_dies_when_the_donor_email_changes(client, fund):
    donor = make_donor("rae@example.org")
    token = membership_service.make_link_token(donor)
    donor.email, donor.email_key = "new@example.org", "new@example.org"
    db.session.commit()
    assert client.get(f"/membership/link/{token}").status_code == 400


def test_the_member_page_needs_a_link(client, fund):
    response = client.get("/membership/account")
    assert response.status_code == 303 and response.headers["Location"].endswith("/membership")


def test_link_requests_are_rate_limited(client, fund, app):
    limit = int(app.config["MAGIC_LINK_RATE_LIMIT"].split(" ")[0])
    token = csrf_token(client, "/membership")
    statuses = [
        client.post("/membership", data={"csrf_token": token, "email": f"r{n}@example.org"}).status_code
        for n in range(limit + 1)
    ]
    assert statuses == [303] * limit + [429]
    assert client.get("/membership").status_code == 200  # reading the page is never limited


def test_mistyped_link_requests_do_not_count_and_a_refusal_keeps_the_email(client, fund, app):
    limit = int(app.config["MAGIC_LINK_RATE_LIMIT"].split(" ")[0])
    token = csrf_token(client, "/membership")
    typos = [client.post("/membership", data={"csrf_token": token, "email": f"r{n}@example"}) for n in range(limit * 2)]
    assert [response.status_code for response in typos] == [400] * (limit * 2)
    sent = [
        client.post("/membership", data={"csrf_token": token, "email": f"r{n}@example.org"}).status_code
        for n in range(limit)
    ]
    assert sent == [303] * limit
    refused = client.post("/membership", data={"csrf_token": token, "email": "kim@example.org"})
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    html = refused.get_data(as_text=True)
    assert 'value="kim@example.org"' in html
    assert re.search(r"Please wait about (1 minute|\d+ seconds), then send the form again", page_text(html))


# Changing and canceling (local gateway) ---------------------------------------------------------


def _local_portal(client: FlaskClient, membership: Membership) -> tuple[str, str]:
    response = client.post(
        f"/membership/account/{membership.id}/manage", data={"csrf_token": csrf_token(client, "/membership/account")}
    )
    assert response.status_code == 303
    portal = urlsplit(response.headers["Location"]).path
    assert portal == f"/membership/local/{membership.stripe_customer_id}"
    page = client.get(portal)
    assert page.status_code == 200
    assert "Card on file ends in 4242." in page_text(page.get_data(as_text=True))  # the local gateway's own table
    return portal, extract_csrf_token(page.get_data(as_text=True))


def test_a_member_raises_the_amount_and_the_history_keeps_it(client, fund):
    membership = start_local_membership(client, amount="1500")
    open_account(client, "rae@example.org")
    portal, token = _local_portal(client, membership)
    response = client.post(f"{portal}/{membership.id}/amount", data={"csrf_token": token, "amount": "25"})
    assert response.status_code == 303
    db.session.expire_all()
    changed = db.session.get(Membership, membership.id)
    assert changed.amount_cents == 2500
    (change,) = db.session.scalars(select(MembershipChange)).all()
    assert (change.old_amount_cents, change.new_amount_cents) == (1500, 2500)
    assert "$25.00 a month" in page_text(client.get("/membership/account").get_data(as_text=True))
    # The member is told, once, by email: the new amount and when it is charged.
    (message,) = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "membership_changed")).all()
    assert message.to_address == "rae@example.org"
    rendered = render("membership_changed", message.context)
    assert rendered.subject == "Your membership changed to $25.00 a month"
    assert "changed from $15.00 to $25.00 a month" in rendered.text
    assert "charged from your next renewal" in rendered.text


def test_a_bad_amount_is_refused_on_the_local_portal(client, fund):
    membership = start_local_membership(client, amount="1500")
    open_account(client, "rae@example.org")
    portal, token = _local_portal(client, membership)
    for amount, message in (("abc", "Enter an amount in dollars"), ("1", "Gifts can be from $5.00")):
        response = client.post(f"{portal}/{membership.id}/amount", data={"csrf_token": token, "amount": amount})
        assert response.status_code == 400
        assert message in page_text(response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(MembershipChange)) == 0


def test_a_member_cancels(client, fund):
    membership = start_local_membership(client)
    open_account(client, "rae@example.org")
    portal, token = _local_portal(client, membership)
    confirm = client.post(f"{portal}/{membership.id}/cancel", data={"csrf_token": token})
    assert confirm.status_code == 200  # first the question: nothing is canceled yet
    assert "Cancel your membership?" in page_text(confirm.get_data(as_text=True))
    db.session.expire_all()
    assert db.session.get(Membership, membership.id).status == MembershipStatus.ACTIVE
    response = client.post(f"{portal}/{membership.id}/cancel", data={"csrf_token": token, "confirmed": "yes"})
    assert response.status_code == 303
    db.session.expire_all()
    canceled = db.session.get(Membership, membership.id)
    assert canceled.status == MembershipStatus.CANCELED and canceled.canceled_at is not None
    assert (
        db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "membership_canceled")
        )
        == 1
    )
    page = page_text(client.get("/membership/account").get_data(as_text=True))
    assert "Your membership is canceled" in page and "Status: canceled" in page
    again = client.post(f"{portal}/{membership.id}/cancel", data={"csrf_token": token, "confirmed": "yes"})
    assert again.status_code == 400
    asked = client.post(f"{portal}/{membership.id}/cancel", data={"csrf_token": token})
    assert asked.status_code == 400 and "already ended" in page_text(
        asked.get_data(as_text=True)
    )  # it has ended: nothing more to cancel


def test_a_member_cannot_touch_anothers_membership(client, fund):
    theirs = start_local_membership(client, email="other@example.org")
    start_local_membership(client, email="rae@example.org")
    open_account(client, "rae@example.org")
    token = csrf_token(client, "/membership/account")
    assert client.post(f"/membership/account/{theirs.id}/manage", data={"csrf_token": token}).status_code == 404
    assert client.get(f"/membership/local/{theirs.stripe_customer_id}").status_code == 404
    response = client.post(
        f"/membership/local/{theirs.stripe_customer_id}/{theirs.id}/cancel", data={"csrf_token": token}
    )
    assert response.status_code == 404
    response = client.post(
        f"/membership/local/{theirs.stripe_customer_id}/{theirs.id}/cancel",
        data={"csrf_token": token, "confirmed": "yes"},
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert db.session.get(Membership, theirs.id).status == MembershipStatus.ACTIVE


def test_changes_need_the_forms_token(client, fund):
    membership = start_local_membership(client)
    open_account(client, "rae@example.org")
    response = client.post(f"/membership/local/{membership.stripe_customer_id}/{membership.id}/cancel")
    assert response.status_code == 400
    db.session.expire_all()
    assert db.session.get(Membership, membership.id).status == MembershipStatus.ACTIVE


# The Stripe gateway: the Billing Portal --------------------------------------------------------


def test_the_stripe_gateway_sends_members_to_the_billing_portal(client, fund, app, monkeypatch):
    membership, _, customer = stripe_membership(app, client)
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_x")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        portal = se.stripe_object("billing_portal.session", url=PORTAL_URL, customer=customer)
        api.route("POST", "/v1/billing_portal/sessions", Answer(json=portal))
        open_account(client, "rae@example.org")
        account = client.get("/membership/account")
        assert "https://billing.stripe.com" in account.headers["Content-Security-Policy"]
        response = client.post(
            f"/membership/account/{membership.id}/manage",
            data={"csrf_token": extract_csrf_token(account.get_data(as_text=True))},
        )
        (request,) = api.requests_to("POST", "/v1/billing_portal/sessions")
        api.route("POST", "/v1/billing_portal/sessions", Answer(status=500, json={"error": {"type": "api_error"}}))
        failed = client.post(
            f"/membership/account/{membership.id}/manage",
            data={"csrf_token": extract_csrf_token(account.get_data(as_text=True))},
        )
    assert response.status_code == 303 and response.headers["Location"] == PORTAL_URL
    assert request.form == {"customer": customer, "return_url": "http://localhost/membership/account"}
    assert failed.status_code == 503  # Stripe down: the retry page, nothing else
