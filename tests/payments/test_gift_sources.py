"""A shared Stripe account: only the app's own payments and those of gift sources are gifts;
everything else is kept apart, and its refunds and disputes are "not ours", never failing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Gift, Membership, Reversal
from donations.payments.models import GiftSourceRule, NotGift, StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import extract_csrf_token
from tests.payments import support as me
from tests.staff.support import make_staff, sign_in

T0 = 1_767_225_600  # 2026-01-01


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def failing() -> int:
    return db.session.scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.applied_at.is_(None)))


def post(client, secret, event_type, obj, **kwargs):
    response = se.post_event(client, se.event(event_type, obj, **kwargs), secret)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json["outcome"]


def ticket_session(payment_link: str = "plink_tickets", **kwargs):
    """An event ticket sold through a Payment Link: no metadata of ours."""
    session = se.checkout_session(amount_cents=2_500, metadata={}, email="fan@example.org", **kwargs)
    session["payment_link"] = payment_link
    return session


def paper_invoice(**kwargs):
    """The paper's $9.99 digital subscription, billed by Stripe: empty metadata, its own product."""
    invoice = se.invoice(
        subscription=kwargs.pop("subscription", se.unique("sub")), amount_cents=999, metadata={}, **kwargs
    )
    invoice["lines"]["data"][0]["pricing"]["price_details"] = {"price": "price_paper", "product": "prod_paper"}
    return invoice


def test_payments_the_app_did_not_make_are_kept_apart_and_their_refunds_are_not_ours(client, webhook_secret, fund):
    session = ticket_session()
    assert post(client, webhook_secret, "checkout.session.completed", session) == "applied"
    invoice = paper_invoice(paid_at=T0, billing_reason="subscription_create")
    assert post(client, webhook_secret, "invoice.paid", invoice) == "applied"
    paper = se.subscription(subscription_id=invoice["parent"]["subscription_details"]["subscription"], metadata={})
    paper["items"]["data"][0]["price"]["product"] = "prod_paper"
    assert post(client, webhook_secret, "customer.subscription.created", paper) == "applied"
    assert count(Gift) == 0 and count(Membership) == 0

    # The ticket's refund and dispute, and the paper's renewal refund (its payment intent is
    # learned from invoice_payment.paid): not ours, applied, never failing.
    refund = me.refund(amount=2_500, payment_intent=session["payment_intent"])
    assert post(client, webhook_secret, "refund.created", refund) == "applied"
    intent = se.unique("pi")
    post(
        client,
        webhook_secret,
        "invoice_payment.paid",
        se.invoice_payment(invoice_id=invoice["id"], payment_intent=intent),
    )
    assert post(client, webhook_secret, "refund.created", me.refund(amount=999, payment_intent=intent)) == "applied"
    dispute = se.stripe_object(
        "dispute",
        id=se.unique("du"),
        amount=2_500,
        currency="usd",
        status="needs_response",
        charge=se.unique("ch"),
        payment_intent=session["payment_intent"],
        created=T0,
    )
    assert post(client, webhook_secret, "charge.dispute.created", dispute) == "applied"
    assert count(Reversal) == 0 and failing() == 0
    kinds = dict(db.session.execute(select(NotGift.kind, func.count()).group_by(NotGift.kind)).all())
    assert kinds == {"one_time": 1, "invoice": 1, "subscription": 1, "refund": 2, "dispute": 1}


def test_a_refund_of_an_unknown_payment_still_waits_for_its_gift(client, webhook_secret, fund):
    assert post(client, webhook_secret, "refund.created", me.refund(amount=100, payment_intent=se.unique("pi"))) == (
        "deferred"
    )


def test_another_installations_objects_are_not_gifts_here(client, webhook_secret, fund):
    session = se.checkout_session(metadata={"installation": "inst_staging", "gift_id": "1", "fund": fund.slug})
    assert post(client, webhook_secret, "checkout.session.completed", session) == "applied"
    assert count(Gift) == 0 and count(NotGift) == 1


def test_the_apps_own_and_legacy_metadata_are_gifts(client, webhook_secret, fund):
    post(client, webhook_secret, "checkout.session.completed", se.checkout_session())  # this installation's
    legacy = se.checkout_session(metadata={"gift_id": "999", "fund": fund.slug})  # made before installation ids
    post(client, webhook_secret, "checkout.session.completed", legacy)
    assert count(Gift) == 2 and count(NotGift) == 0


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["payments", "gift-sources", *args])


def test_marking_a_payment_link_a_gift_source_applies_its_stored_events_once(app, client, webhook_secret, fund):
    other = make_fund("newsroom-events")
    session = ticket_session("plink_gala")
    post(client, webhook_secret, "checkout.session.completed", session)
    post(client, webhook_secret, "refund.created", me.refund(amount=500, payment_intent=session["payment_intent"]))
    post(client, webhook_secret, "checkout.session.completed", ticket_session("plink_shop"))
    assert count(Gift) == 0

    result = cli(app, "add", "plink_gala", "--fund", "newsroom-events")
    assert result.exit_code == 0, result.output
    assert "2 stored events applied" in result.output
    gift = db.session.scalars(select(Gift)).one()
    assert (gift.amount_cents, gift.fund_id, gift.stripe_checkout_session_id) == (2_500, other.id, session["id"])
    assert db.session.scalars(select(Reversal)).one().amount_cents == 500
    assert count(NotGift) == 1  # the shop's sale stays apart

    # Later payments through it are gifts at once; a repeat of the old event changes nothing.
    post(client, webhook_secret, "checkout.session.completed", ticket_session("plink_gala"))
    post(client, webhook_secret, "checkout.session.completed", session)
    assert count(Gift) == 2

    listed = cli(app, "list")
    assert "Payment Link\tplink_gala\tnewsroom-events" in listed.output
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "gift_source.add")) is not None
    rule_id = db.session.scalars(select(GiftSourceRule.id)).one()
    assert cli(app, "remove", str(rule_id)).exit_code == 0
    post(client, webhook_secret, "checkout.session.completed", ticket_session("plink_gala"))
    assert count(Gift) == 2  # no longer a source; the gifts recorded stay


@pytest.mark.parametrize(
    ("spec", "message"),
    [("cus_123456", "is not a gift source"), ("metadata:novalue", "is not a gift source"), ("plink_abcdef", "no fund")],
)
def test_bad_gift_sources_are_refused_in_words(app, fund, spec, message):
    result = cli(app, "add", spec, "--fund", "nowhere") if message == "no fund" else cli(app, "add", spec)
    assert result.exit_code != 0 and message in result.output
    assert count(GiftSourceRule) == 0


def test_a_product_source_makes_its_subscriptions_memberships(app, client, webhook_secret, fund):
    assert cli(app, "add", "prod_members").exit_code == 0
    invoice = paper_invoice(paid_at=T0, billing_reason="subscription_create", email="member@example.org")
    invoice["lines"]["data"][0]["pricing"]["price_details"] = {"price": "price_m", "product": "prod_members"}
    post(client, webhook_secret, "invoice.paid", invoice)
    membership = db.session.scalars(select(Membership)).one()
    assert membership.donor.email == "member@example.org"
    assert db.session.scalars(select(Gift)).one().amount_cents == 999
    # The paper's own subscription, on another product, is still not a gift.
    post(client, webhook_secret, "invoice.paid", paper_invoice(paid_at=T0, billing_reason="subscription_create"))
    assert count(Membership) == 1


def test_a_metadata_source(app, client, webhook_secret, fund):
    assert cli(app, "add", "metadata:campaign=spring-drive").exit_code == 0
    post(
        client, webhook_secret, "checkout.session.completed", se.checkout_session(metadata={"campaign": "spring-drive"})
    )
    post(client, webhook_secret, "checkout.session.completed", se.checkout_session(metadata={"campaign": "reprints"}))
    assert count(Gift) == 1 and count(NotGift) == 1


def test_the_staff_page_is_for_admins_and_turns_a_source_into_gifts(client, webhook_secret, fund):
    post(client, webhook_secret, "checkout.session.completed", ticket_session("plink_gala"))
    sign_in(client, make_staff("viewer"))
    assert client.get("/staff/gift-sources").status_code == 403
    sign_in(client, make_staff("admin"))
    page = client.get("/staff/gift-sources")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "One-time payment (Checkout)" in text and "plink_gala" in text
    token = extract_csrf_token(text)
    assert client.post("/staff/gift-sources", data={"source": "plink_gala"}).status_code == 400  # no CSRF token
    bad = client.post("/staff/gift-sources", data={"source": "nonsense", "csrf_token": token})
    assert bad.status_code == 400 and "is not a gift source" in bad.get_data(as_text=True)
    done = client.post("/staff/gift-sources", data={"source": "plink_gala", "fund": "", "csrf_token": token})
    assert done.status_code == 303
    assert count(Gift) == 1
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gift_source.add")).one()
    assert entry.actor.startswith("admin")
    rule_id = db.session.scalars(select(GiftSourceRule.id)).one()
    assert client.post(f"/staff/gift-sources/{rule_id}/remove", data={"csrf_token": token}).status_code == 303
    assert client.post("/staff/gift-sources/999/remove", data={"csrf_token": token}).status_code == 404
