"""Members' self-service, finished: the frequency and fund (with the amount) changed through the
gateway after a confirmation, a pause that skips installments and its resumption, each confirmed
by email; with the local gateway end to end, and with the Stripe stand-in for Stripe's calls."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from donations.clock import local_date
from donations.extensions import db
from donations.ledger.models import Gift, Membership, MembershipChange, MembershipStatus
from donations.mail.models import OutboxMessage
from donations.mail.render import render
from donations.payments.local import billing as local_billing
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import csrf_token, extract_csrf_token, page_text
from tests.giving.support import open_account, start_local_membership, stripe_membership
from tests.http_recorder import Answer, HTTPRecorder


@pytest.fixture
def fund(app):
    return make_fund("community-forums", name="Community Forums Reporting", is_default=True)


@pytest.fixture
def investigative(app):
    return make_fund("investigative", name="Investigative Reporting Fund")


def fresh(membership: Membership) -> Membership:
    return db.session.scalars(
        select(Membership).where(Membership.id == membership.id).execution_options(populate_existing=True)
    ).one()


def mails(kind: str) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)))


def installments(membership: Membership) -> list[Gift]:
    return list(
        db.session.scalars(
            select(Gift)
            .where(Gift.membership_id == membership.id)
            .order_by(Gift.received_at)
            .execution_options(populate_existing=True)
        )
    )


def bill_due(app, as_of: date) -> str:
    result = app.test_cli_runner().invoke(args=["payments", "bill-due", "--as-of", as_of.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def day_after(moment: datetime) -> date:
    return local_date(moment) + timedelta(days=1)


def change_page(client: FlaskClient, membership: Membership) -> str:
    page = client.get(f"/membership/account/{membership.id}/change")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def post_change(client: FlaskClient, membership: Membership, **fields: str):
    token = extract_csrf_token(change_page(client, membership))
    return client.post(f"/membership/account/{membership.id}/change", data={"csrf_token": token, **fields})


# The local gateway ---------------------------------------------------------------------------


def test_monthly_to_annual_and_another_fund_after_a_confirmation(app, client, fund, investigative):
    membership = start_local_membership(client, amount="1500")
    period_end = membership.current_period_end
    account = open_account(client, "rae@example.org")
    assert "Change the amount, frequency or fund, or pause" in page_text(account)
    plan = {"amount": "150", "frequency": "annual", "fund": "investigative"}

    asked = post_change(client, membership, **plan)
    assert asked.status_code == 200  # the question first: nothing is changed yet
    question = page_text(asked.get_data(as_text=True))
    assert "Change your membership?" in question
    assert "$15.00 a month to Community Forums Reporting" in question
    assert "$150.00 a year to Investigative Reporting Fund" in question
    assert "Nothing is charged today" in question
    assert fresh(membership).interval == "month" and not mails("membership_changed")

    done = post_change(client, membership, confirmed="yes", **plan)
    assert done.status_code == 303 and done.headers["Location"].endswith("/membership/account")
    changed = fresh(membership)
    assert (changed.amount_cents, changed.interval, changed.fund.slug) == (15000, "year", "investigative")
    assert changed.current_period_end == period_end  # the paid month stays; the year starts at the renewal
    (change,) = db.session.scalars(select(MembershipChange)).all()
    assert (change.old_amount_cents, change.old_interval, change.old_fund_id) == (1500, "month", fund.id)
    assert (change.new_amount_cents, change.new_interval, change.new_fund_id) == (15000, "year", investigative.id)
    assert "$150.00 a year to Investigative Reporting Fund" in page_text(
        client.get("/membership/account").get_data(as_text=True)
    )

    (message,) = mails("membership_changed")
    rendered = render("membership_changed", message.context)
    assert rendered.subject == "Your membership changed to $150.00 a year"
    assert "changed from $15.00 a month to $150.00 a year, to Investigative Reporting Fund" in rendered.text
    assert "(it went to Community Forums Reporting before)" in rendered.text
    assert "charged from your next renewal" in rendered.text

    # The renewal bills the new plan: an annual installment of $150.00 to the new fund.
    assert bill_due(app, day_after(period_end)) == "Billed 1, declined 0, ended 0."
    first, renewal = installments(membership)
    assert (first.amount_cents, first.frequency, first.fund_id) == (1500, "monthly", fund.id)
    assert (renewal.amount_cents, renewal.frequency, renewal.fund_id) == (15000, "annual", investigative.id)
    assert fresh(membership).current_period_end.year == period_end.year + 1


def test_a_fund_only_change_says_so_and_is_not_an_increase(client, fund, investigative):
    membership = start_local_membership(client, amount="1500")
    open_account(client, "rae@example.org")
    post_change(client, membership, amount="15.00", frequency="monthly", fund="investigative", confirmed="yes")
    (change,) = db.session.scalars(select(MembershipChange)).all()
    assert change.old_amount_cents == change.new_amount_cents == 1500
    (message,) = mails("membership_changed")
    rendered = render("membership_changed", message.context)
    assert rendered.subject == "Your membership now supports Investigative Reporting Fund"
    assert "moved to Investigative Reporting Fund; it went to Community Forums Reporting before" in rendered.text


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": "abc", "frequency": "monthly", "fund": "community-forums"}, "Enter an amount in dollars"),
        ({"amount": "1", "frequency": "monthly", "fund": "community-forums"}, "Gifts can be from $5.00"),
        ({"amount": "20", "frequency": "weekly", "fund": "community-forums"}, "Not a valid choice"),
        ({"amount": "20", "frequency": "monthly", "fund": "nowhere"}, "Not a valid choice"),
        ({"amount": "15", "frequency": "monthly", "fund": "community-forums"}, "nothing to change"),
    ],
)
def test_bad_changes_are_refused_in_words_and_change_nothing(client, fund, fields, message):
    membership = start_local_membership(client, amount="1500")
    open_account(client, "rae@example.org")
    for confirmed in ("", "yes"):
        response = post_change(client, membership, confirmed=confirmed, **fields)
        assert response.status_code == 400
        assert message in page_text(response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(MembershipChange)) == 0
    assert fresh(membership).amount_cents == 1500


def test_changes_are_the_members_own_and_need_the_forms_token(client, fund, investigative):
    theirs = start_local_membership(client, email="other@example.org")
    mine = start_local_membership(client, email="rae@example.org")
    open_account(client, "rae@example.org")
    token = csrf_token(client, "/membership/account")
    plan = {"csrf_token": token, "amount": "50", "frequency": "annual", "fund": "investigative", "confirmed": "yes"}
    assert client.get(f"/membership/account/{theirs.id}/change").status_code == 404
    assert client.post(f"/membership/account/{theirs.id}/change", data=plan).status_code == 404
    assert (
        client.post(f"/membership/account/{theirs.id}/pause", data={"csrf_token": token, "skips": "1"}).status_code
        == 404
    )
    without_token = {key: value for key, value in plan.items() if key != "csrf_token"}
    assert client.post(f"/membership/account/{mine.id}/change", data=without_token).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(MembershipChange)) == 0


def test_a_pause_skips_installments_then_the_membership_renews(app, client, fund):
    membership = start_local_membership(client, amount="1500")
    first_end = membership.current_period_end
    open_account(client, "rae@example.org")
    page = page_text(change_page(client, membership))
    assert "The next 2 payments: charged again on" in page
    token = extract_csrf_token(change_page(client, membership))
    response = client.post(f"/membership/account/{membership.id}/pause", data={"csrf_token": token, "skips": "2"})
    assert response.status_code == 303
    paused = fresh(membership)
    third = local_billing.shift(first_end, "month", 2, paused.started_at.day)
    assert paused.paused_until is not None and first_end < paused.paused_until < third
    assert "Paused: nothing is charged until" in page_text(client.get("/membership/account").get_data(as_text=True))
    (message,) = mails("membership_paused")
    assert "nothing is charged until" in render("membership_paused", message.context).text

    # Two renewals skipped (nothing charged, nothing owed), the third billed as usual.
    second = local_billing.shift(first_end, "month", 1, paused.started_at.day)
    assert bill_due(app, day_after(second)) == "Billed 0, declined 0, ended 0, skipped 2 (paused)."
    assert len(installments(membership)) == 1
    assert fresh(membership).status == MembershipStatus.ACTIVE
    assert bill_due(app, day_after(third)) == "Billed 1, declined 0, ended 0."
    gifts = installments(membership)
    assert [gift.amount_cents for gift in gifts] == [1500, 1500] and gifts[-1].received_at == third
    assert fresh(membership).paused_until is None  # lifted at its end, and the member told
    assert len(mails("membership_resumed")) == 1


def test_resume_early_and_pause_refused_where_it_cannot_be(app, client, fund):
    membership = start_local_membership(client, amount="1500")
    open_account(client, "rae@example.org")
    token = extract_csrf_token(change_page(client, membership))
    client.post(f"/membership/account/{membership.id}/pause", data={"csrf_token": token, "skips": "1"})
    assert "Resume now" in page_text(change_page(client, membership))
    bad = client.post(f"/membership/account/{membership.id}/pause", data={"csrf_token": token, "skips": "4"})
    assert bad.status_code == 400
    resumed = client.post(f"/membership/account/{membership.id}/resume", data={"csrf_token": token})
    assert resumed.status_code == 303
    assert fresh(membership).paused_until is None
    (message,) = mails("membership_resumed")
    assert "active again" in render("membership_resumed", message.context).text
    again = client.post(f"/membership/account/{membership.id}/resume", data={"csrf_token": token})
    assert again.status_code == 400 and "not paused" in page_text(again.get_data(as_text=True))

    # A member whose last payment failed fixes the card first: pausing is refused, in words.
    local_billing.keep_card(membership.stripe_subscription_id, "0002")
    bill_due(app, day_after(membership.current_period_end))
    assert fresh(membership).status == MembershipStatus.PAST_DUE
    page = page_text(change_page(client, membership))
    assert "Your last payment did not go through: please update your card before pausing." in page
    refused = client.post(f"/membership/account/{membership.id}/pause", data={"csrf_token": token, "skips": "1"})
    assert refused.status_code == 400 and fresh(membership).paused_until is None


# Dunning: the failed-payment email's card link ------------------------------------------------


def card_link(message: OutboxMessage) -> str:
    text = render("payment_failed", message.context).text
    (url,) = [word for word in text.split() if "/membership/card/" in word]
    return urlsplit(url).path


def test_the_failed_payment_email_links_to_the_local_card_page(app, client, fund):
    membership = start_local_membership(client, amount="1500")
    local_billing.keep_card(membership.stripe_subscription_id, "0002")
    as_of = day_after(membership.current_period_end)
    assert bill_due(app, as_of) == "Billed 0, declined 1, ended 0."
    (message,) = mails("payment_failed")
    path = card_link(message)

    fresh_client = app.test_client()  # no session: the link alone opens the card page
    page = fresh_client.get(path)
    assert page.status_code == 200
    text = page_text(page.get_data(as_text=True))
    assert "Update your card" in text and "$15.00 a month" in text
    token = extract_csrf_token(page.get_data(as_text=True))
    wrong = fresh_client.post(path, data={"csrf_token": token, "card_number": "1234"})
    assert wrong.status_code == 400 and "Use the test card" in page_text(wrong.get_data(as_text=True))
    assert fresh_client.post(path, data={"card_number": "4242 4242 4242 4242"}).status_code == 400  # no token
    done = fresh_client.post(path, data={"csrf_token": token, "card_number": "4242 4242 4242 4242"})
    assert done.status_code == 200 and "Your card is updated" in page_text(done.get_data(as_text=True))
    assert local_billing.card_on_file(membership.id) == "4242"
    assert bill_due(app, as_of) == "Billed 1, declined 0, ended 0."
    assert fresh(membership).status == MembershipStatus.ACTIVE


def test_card_links_refuse_tampering_expiry_and_ended_memberships(app, client, fund, monkeypatch):
    membership = start_local_membership(client, amount="1500")
    local_billing.keep_card(membership.stripe_subscription_id, "0002")
    bill_due(app, day_after(membership.current_period_end))
    path = card_link(mails("payment_failed")[0])
    assert client.get(path[:-3] + "abc").status_code == 400
    assert client.get("/membership/card/not-a-token").status_code == 400
    monkeypatch.setitem(app.config, "CARD_LINK_MAX_AGE", -1)
    expired = client.get(path)
    assert expired.status_code == 410 and "This link has expired" in page_text(expired.get_data(as_text=True))
    monkeypatch.setitem(app.config, "CARD_LINK_MAX_AGE", 3600)
    local_billing.cancel(fresh(membership))
    ended = client.get(path)
    assert ended.status_code == 400 and "This membership has ended" in page_text(ended.get_data(as_text=True))


# The Stripe gateway (its API stood in for by a local recorder) ---------------------------------

PORTAL_URL = "https://billing.stripe.com/p/session/test_card"


@pytest.fixture
def stripe_member(app, client, fund, investigative, monkeypatch):
    """A monthly Stripe membership of $15.00 (from its first invoice), the member signed in,
    the app pointed at a recorder standing in for Stripe's API."""
    membership, subscription_id, customer = stripe_membership(app, client)
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_x")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        subscription = se.subscription(
            subscription_id=subscription_id, customer=customer, amount_cents=1500, interval="month"
        )
        subscription["items"]["data"][0]["price"]["product"] = "prod_members"
        api.route("GET", f"/v1/subscriptions/{subscription_id}", Answer(json=subscription))
        api.route("POST", f"/v1/subscriptions/{subscription_id}", Answer(json=subscription))
        open_account(client, "rae@example.org")
        yield membership, subscription, api


def test_stripe_a_change_is_a_subscription_update_then_its_event_records_it(app, client, stripe_member):
    membership, subscription, api = stripe_member
    period_end = fresh(membership).current_period_end
    plan = {"amount": "120", "frequency": "annual", "fund": "investigative", "confirmed": "yes"}
    response = post_change(client, membership, **plan)
    assert response.status_code == 303
    (update,) = api.requests_to("POST", f"/v1/subscriptions/{subscription['id']}")
    form = update.form
    item = subscription["items"]["data"][0]
    assert form["items[0][id]"] == item["id"]
    assert form["items[0][price_data][product]"] == "prod_members"
    assert form["items[0][price_data][unit_amount]"] == "12000"
    assert form["items[0][price_data][recurring][interval]"] == "year"
    assert (form["metadata[fund]"], form["metadata[frequency]"]) == ("investigative", "annual")
    assert form["proration_behavior"] == "none"
    # A new frequency would restart the cycle and charge today: a trial to the period's end instead.
    assert form["trial_end"] == str(int(period_end.timestamp()))
    assert update.headers["Idempotency-Key"].startswith("inst_")
    assert fresh(membership).interval == "month"  # the ledger waits for Stripe's event

    updated = se.subscription(
        subscription_id=subscription["id"],
        customer=subscription["customer"],
        amount_cents=12000,
        interval="year",
        status="trialing",
        metadata={**se.OURS, "fund": "investigative", "frequency": "annual"},
    )
    event = se.event("customer.subscription.updated", updated)
    event["data"]["previous_attributes"] = {"items": subscription["items"], "metadata": dict(se.OURS)}
    assert se.post_event(client, event, app.config["STRIPE_WEBHOOK_SECRET"]).json["outcome"] == "applied"
    changed = fresh(membership)
    assert (changed.amount_cents, changed.interval, changed.fund.slug) == (12000, "year", "investigative")
    assert changed.status == MembershipStatus.ACTIVE  # trialing is active
    (change,) = db.session.scalars(select(MembershipChange)).all()
    assert (change.old_interval, change.new_interval, change.old_amount_cents) == ("month", "year", 1500)
    assert len(mails("membership_changed")) == 1
    se.post_event(client, event, app.config["STRIPE_WEBHOOK_SECRET"])  # a repeat records and mails nothing more
    assert len(mails("membership_changed")) == 1


def test_stripe_pause_and_resume_are_pause_collection(app, client, stripe_member):
    membership, subscription, api = stripe_member
    token = extract_csrf_token(change_page(client, membership))
    assert (
        client.post(f"/membership/account/{membership.id}/pause", data={"csrf_token": token, "skips": "3"}).status_code
        == 303
    )
    (pause,) = api.requests_to("POST", f"/v1/subscriptions/{subscription['id']}")
    assert pause.form["pause_collection[behavior]"] == "void"
    resumes_at = int(pause.form["pause_collection[resumes_at]"])
    end = fresh(membership).current_period_end
    third_after = local_billing.shift(end, "month", 3, fresh(membership).started_at.day)
    assert int(end.timestamp()) < resumes_at < int(third_after.timestamp())

    paused = dict(subscription, pause_collection={"behavior": "void", "resumes_at": resumes_at})
    event = se.event("customer.subscription.updated", paused)
    event["data"]["previous_attributes"] = {"pause_collection": None}
    se.post_event(client, event, app.config["STRIPE_WEBHOOK_SECRET"])
    assert int(fresh(membership).paused_until.timestamp()) == resumes_at
    assert len(mails("membership_paused")) == 1

    resumed = client.post(f"/membership/account/{membership.id}/resume", data={"csrf_token": token})
    assert resumed.status_code == 303
    assert api.requests_to("POST", f"/v1/subscriptions/{subscription['id']}")[-1].form == {"pause_collection": ""}


def test_stripe_the_card_link_opens_the_billing_portals_card_form(app, client, stripe_member):
    _, subscription, api = stripe_member
    portal = se.stripe_object("billing_portal.session", url=PORTAL_URL, customer=subscription["customer"])
    api.route("POST", "/v1/billing_portal/sessions", Answer(json=portal))
    failed = se.invoice(
        subscription=subscription["id"],
        customer=subscription["customer"],
        paid=False,
        billing_reason="subscription_cycle",
        email="rae@example.org",
    )
    se.post_event(client, se.event("invoice.payment_failed", failed), app.config["STRIPE_WEBHOOK_SECRET"])
    (message,) = mails("payment_failed")
    path = card_link(message)
    stranger = app.test_client()
    page = stranger.get(path)
    assert page.status_code == 200 and not api.requests_to("POST", "/v1/billing_portal/sessions")  # GET opens nothing
    response = stranger.post(path, data={"csrf_token": extract_csrf_token(page.get_data(as_text=True))})
    assert response.status_code == 303 and response.headers["Location"] == PORTAL_URL
    (request,) = api.requests_to("POST", "/v1/billing_portal/sessions")
    assert request.form["customer"] == subscription["customer"]
    assert request.form["flow_data[type]"] == "payment_method_update"
