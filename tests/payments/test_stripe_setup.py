"""`payments setup-stripe` and `check-stripe` against a stand-in of a Stripe account: set-up makes
everything once (found again by the app's metadata, never by name), the check passes after it and
names each difference with its fix, and a checkout for a suggested amount pays through its price."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from sqlalchemy import delete, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.payments import account_setup
from donations.payments.gateway import get_gateway
from donations.payments.handlers import handled_types
from donations.payments.models import StripePrice
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import page_text
from tests.giving.support import post_gift
from tests.http_recorder import Answer, HTTPRecorder, stripe_error
from tests.staff.support import make_staff, sign_in
from tests.stripe_account import StripeAccount

HOOK = "https://give.example.org/stripe/webhook"
SESSIONS = "/v1/checkout/sessions"
AMOUNTS = {"one_time": [2500, 5000], "monthly": [500, 1000], "annual": [6000]}


def session_answer() -> Answer:
    session_id = se.unique("cs")
    return Answer(
        json={"id": session_id, "object": "checkout.session", "url": f"https://checkout.stripe.com/c/pay/{session_id}"}
    )


@pytest.fixture
def account(app, monkeypatch) -> Iterator[StripeAccount]:
    account = StripeAccount()
    with HTTPRecorder() as api:
        account.serve_setup(api)
        api.route("POST", SESSIONS, lambda request: session_answer())
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_setup")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 5)
        monkeypatch.setitem(app.config, "PUBLIC_URL", "https://give.example.org")
        account.api = api  # type: ignore[attr-defined]
        yield account


@pytest.fixture
def funds(app):
    return (
        make_fund("community-forums", name="Community Forums Reporting", is_default=True, suggested_amounts=AMOUNTS),
        make_fund("investigations", name="Investigative Reporting Fund", suggested_amounts=AMOUNTS),
    )


def run(app, *args: str):
    result = app.test_cli_runner().invoke(args=["payments", *args])
    db.session.expire_all()
    return result


def setup(app):
    return run(app, "setup-stripe", "--webhook-url", HOOK)


def writes(account: StripeAccount) -> list[Any]:
    api: HTTPRecorder = account.api  # type: ignore[attr-defined]
    return [r for r in api.requests if r.method in ("POST", "DELETE") and r.path != SESSIONS]


def test_setup_on_an_empty_account_makes_everything_the_app_needs(app, account, funds):
    result = setup(app)

    assert result.exit_code == 0, result.output
    products = account.objects["products"]
    assert sorted(p["name"] for p in products) == sorted(
        f"{fund} ({words})"
        for fund in ("Community Forums Reporting", "Investigative Reporting Fund")
        for words in ("One time", "Monthly", "Annual")
    )
    assert all(p["metadata"]["installation"] == se.TEST_INSTALLATION_ID for p in products)
    prices = account.objects["prices"]
    assert sorted((p["unit_amount"], (p.get("recurring") or {}).get("interval")) for p in prices) == sorted(
        [(2500, None), (5000, None), (500, "month"), (1000, "month"), (6000, "year")] * 2
    )
    assert all(p["lookup_key"].startswith(se.TEST_INSTALLATION_ID) for p in prices)

    [portal] = account.objects["billing_portal_configurations"]
    features = portal["features"]
    assert features["subscription_cancel"]["enabled"] is True
    assert features["payment_method_update"]["enabled"] is True
    update = features["subscription_update"]
    assert update["enabled"] is True and update["default_allowed_updates"] == ["price"]
    recurring = {p["id"]: p["product"] for p in prices if p.get("recurring")}
    assert {item["product"] for item in update["products"]} == set(recurring.values())
    assert sorted(price for item in update["products"] for price in item["prices"]) == sorted(recurring)

    [endpoint] = account.objects["webhook_endpoints"]
    assert endpoint["url"] == HOOK
    assert endpoint["enabled_events"] == handled_types()  # the handlers' registry, one source
    assert endpoint["api_version"] == stripe.api_version
    assert "whsec_standin_" in result.output  # the signing secret, printed once

    kept = db.session.scalars(select(StripePrice)).all()
    assert sorted(p.price_id for p in kept) == sorted(p["id"] for p in prices)
    assert db.session.scalars(select(AuditEntry.action)).all() == ["stripe.setup"]


def test_a_second_run_changes_nothing_and_shows_no_secret(app, account, funds):
    assert setup(app).exit_code == 0
    made = len(writes(account))

    again = setup(app)

    assert again.exit_code == 0, again.output
    assert len(writes(account)) == made  # no create, update or delete
    assert "Nothing to change" in again.output
    assert "whsec_" not in again.output
    assert len(account.objects["products"]) == 6 and len(account.objects["webhook_endpoints"]) == 1


def test_objects_are_found_by_metadata_not_by_name(app, account, funds):
    assert setup(app).exit_code == 0
    product = account.objects["products"][0]
    account.change("products", product["id"], name="Renamed in the Dashboard")
    # The paper's own product, named like a fund's: not the app's.
    account.add("products", {"id": "prod_paper", "name": "Community Forums Reporting (Monthly)", "metadata": {}})

    again = setup(app)

    assert again.exit_code == 0, again.output
    assert len(account.objects["products"]) == 7  # nothing made again
    assert account.find("products", product["id"])["name"] != "Renamed in the Dashboard"  # named back
    assert account.find("products", "prod_paper")["name"] == "Community Forums Reporting (Monthly)"


def test_a_changed_amount_gets_its_price_and_the_old_one_is_turned_off(app, account, funds):
    assert setup(app).exit_code == 0
    community, _ = funds
    community.suggested_amounts = {**AMOUNTS, "monthly": [500, 1500]}
    db.session.commit()

    result = setup(app)

    assert result.exit_code == 0, result.output
    assert "Created the price Community Forums Reporting, Monthly, $15.00." in result.output
    assert "Turned off the price of $10.00, Community Forums Reporting (Monthly): no longer suggested." in result.output

    monthly = {
        p["unit_amount"]: p
        for p in account.objects["prices"]
        if p["metadata"]["fund_id"] == str(community.id) and (p.get("recurring") or {}).get("interval") == "month"
    }
    assert monthly[1500]["active"] is True and monthly[1000]["active"] is False
    [portal] = account.objects["billing_portal_configurations"]
    offered = {price for item in portal["features"]["subscription_update"]["products"] for price in item["prices"]}
    assert monthly[1500]["id"] in offered and monthly[1000]["id"] not in offered
    assert run(app, "check-stripe").exit_code == 0


def test_check_passes_after_setup_and_healthz_shows_it(app, client, account, funds):
    assert client.get("/healthz").json["stripe_setup_check"] is None
    assert setup(app).exit_code == 0

    result = run(app, "check-stripe")

    assert result.exit_code == 0, result.output
    assert "has everything the app needs" in result.output
    health = client.get("/healthz").json["stripe_setup_check"]
    assert health["ok"] is True and health["problems"] == 0


def test_check_names_each_difference_with_its_fix_and_fails(app, client, account, funds):
    assert setup(app).exit_code == 0
    [endpoint] = account.objects["webhook_endpoints"]
    events = [e for e in handled_types() if e != "charge.refunded"] + ["customer.created"]
    account.change(
        "webhook_endpoints", endpoint["id"], enabled_events=events, api_version="2024-06-20", status="disabled"
    )
    community, _ = funds
    missing = next(
        p
        for p in account.objects["prices"]
        if p["unit_amount"] == 1000 and p["metadata"]["fund_id"] == str(community.id)
    )
    account.remove("prices", missing["id"])
    [portal] = account.objects["billing_portal_configurations"]
    portal["features"]["payment_method_update"]["enabled"] = False

    result = run(app, "check-stripe")

    assert result.exit_code == 1
    out = result.output
    assert "The webhook endpoint does not send: charge.refunded." in out
    assert "also sends events the app does not handle: customer.created." in out
    assert f"API version 2024-06-20; the app reads {stripe.api_version}" in out
    assert "The webhook endpoint is disabled" in out
    assert "There is no price for Community Forums Reporting, Monthly, $10.00" in out
    assert out.count("There is no price for") == 1
    assert "Members cannot update their card in the Billing Portal." in out
    assert out.count("Fix: ") == out.count("\n- ")
    health = client.get("/healthz").json["stripe_setup_check"]
    assert health["ok"] is False and health["problems"] >= 6

    fixed = setup(app)  # a new endpoint for the API version (its new secret shown), the price again
    assert fixed.exit_code == 0, fixed.output
    assert "whsec_standin_" in fixed.output
    [endpoint] = account.objects["webhook_endpoints"]
    assert endpoint["api_version"] == stripe.api_version and endpoint["status"] == "enabled"
    assert run(app, "check-stripe").exit_code == 0


def test_check_on_an_empty_account_lists_what_is_missing(app, account, funds):
    result = run(app, "check-stripe")

    assert result.exit_code == 1
    assert result.output.count("There is no product for") == 6
    assert "There is no Billing Portal configuration of this app." in result.output
    assert "There is no webhook endpoint of this app" in result.output
    assert "STRIPE_WEBHOOK_SECRET" in result.output


def test_a_checkout_for_a_suggested_amount_pays_through_its_price(app, client, account, funds):
    assert setup(app).exit_code == 0
    community, _ = funds
    api: HTTPRecorder = account.api  # type: ignore[attr-defined]

    assert post_gift(client, "/give/community-forums", amount_choice="5000").status_code == 303
    assert post_gift(client, "/give/community-forums", frequency="monthly", amount_choice="1000").status_code == 303
    assert post_gift(client, "/give/community-forums", amount_choice="other", custom_amount="42").status_code == 303

    one_time, monthly, other = (r.form for r in api.requests_to("POST", SESSIONS))
    price = {
        (p.frequency, p.amount_cents): p.price_id
        for p in db.session.scalars(select(StripePrice).where(StripePrice.fund_id == community.id))
    }
    assert one_time["line_items[0][price]"] == price[("one_time", 5000)]
    assert "line_items[0][price_data][unit_amount]" not in one_time
    assert monthly["line_items[0][price]"] == price[("monthly", 1000)] and monthly["mode"] == "subscription"
    assert other["line_items[0][price_data][unit_amount]"] == "4200"  # not suggested: an inline price
    assert "line_items[0][price]" not in other


def test_the_local_gateway_has_nothing_to_set_up(app, funds, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "local")

    for command in (["setup-stripe", "--webhook-url", HOOK], ["check-stripe"]):
        result = run(app, *command)
        assert result.exit_code == 0 and "nothing to set up" in result.output


def test_a_webhook_url_that_is_not_an_address_is_refused(app, account, funds):
    result = run(app, "setup-stripe", "--webhook-url", "give.example.org")

    assert result.exit_code == 2 and "is not a web address" in result.output
    assert writes(account) == []


def test_portal_sessions_name_the_configuration_setup_made(app, account, funds):
    assert account_setup.portal_configuration_id() is None
    assert setup(app).exit_code == 0
    api: HTTPRecorder = account.api  # type: ignore[attr-defined]
    api.route(
        "POST", "/v1/billing_portal/sessions", Answer(json={"id": "bps_1", "url": "https://billing.stripe.com/p/1"})
    )
    [portal] = account.objects["billing_portal_configurations"]

    configuration = account_setup.portal_configuration_id()
    url = get_gateway().create_billing_portal_session(
        "cus_1", "https://give.example.org/membership/account", configuration
    )

    assert configuration == portal["id"] and url == "https://billing.stripe.com/p/1"
    [request] = api.requests_to("POST", "/v1/billing_portal/sessions")
    assert request.form["configuration"] == portal["id"]


def test_the_schedules_page_shows_the_last_check(app, client, account, funds):
    sign_in(client, make_staff("viewer"))
    assert "Never checked" in client.get("/staff/schedules").get_data(as_text=True)
    assert run(app, "check-stripe").exit_code == 1

    page = page_text(client.get("/staff/schedules").get_data(as_text=True))

    assert "differences between the Stripe account and what the app needs" in page
    assert "There is no webhook endpoint of this app" in page


def test_stripe_refusing_a_request_is_a_clear_error_and_a_rerun_finishes(app, account, funds):
    api: HTTPRecorder = account.api  # type: ignore[attr-defined]
    refusal = stripe_error("Invalid URL: webhooks must use HTTPS.", "invalid_request_error")
    api.route("POST", "/v1/webhook_endpoints", Answer(status=400, json=refusal))

    failed = setup(app)

    assert failed.exit_code == 1 and "Invalid URL: webhooks must use HTTPS." in failed.output
    assert db.session.scalars(select(StripePrice)).all() == []  # nothing kept of a half set-up
    made = len(account.objects["products"])
    account.serve_setup(api)

    assert setup(app).exit_code == 0
    assert len(account.objects["products"]) == made  # found again, not made twice
    assert run(app, "check-stripe").exit_code == 0


def test_check_notices_a_database_whose_checkouts_do_not_name_the_prices(app, account, funds):
    assert setup(app).exit_code == 0
    db.session.execute(delete(StripePrice))  # a database restored from before set-up, say
    db.session.commit()

    result = run(app, "check-stripe")

    assert result.exit_code == 1
    assert result.output.count("Checkouts here do not use the account's price for") == 10
    assert setup(app).exit_code == 0 and run(app, "check-stripe").exit_code == 0
