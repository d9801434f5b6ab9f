"""`history stripe` against a stand-in of an account with history and other business: every gift
exactly once whatever the order and repetition of import, webhooks and sync; nothing of the
paper's other business counted; no "not ours" refund left failing; resumable; dry-run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Gift, Membership, MembershipChange, Reversal
from donations.mail.models import OutboxMessage
from donations.payments.models import ImportCursor, NotGift, Payout, StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund
from tests.http_recorder import HTTPRecorder
from tests.payments import support as me
from tests.stripe_account import StripeAccount

DAY = 86_400
Y2024 = 1_704_067_200  # 2024-01-01, long before the app


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@pytest.fixture
def stripe_api(app, monkeypatch) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_history")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 5)
        yield api


def count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def failing() -> int:
    return db.session.scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.applied_at.is_(None)))


def history(app, *args: str):
    result = app.test_cli_runner().invoke(args=["history", "stripe", *args])
    db.session.expire_all()
    return result


def gift_sources(app) -> None:
    for source in ("plink_gifts", "prod_membership"):
        assert app.test_cli_runner().invoke(args=["payments", "gift-sources", "add", source]).exit_code == 0


def link_session(link: str, amount: int, email: str, created: int) -> dict[str, Any]:
    session = se.checkout_session(amount_cents=amount, email=email, metadata={})
    session.update(payment_link=link, created=created)
    return session


def member_invoices(sub: str, product: str, amounts: list[int], start: int, email: str) -> list[dict[str, Any]]:
    invoices = []
    for number, amount in enumerate(amounts):
        begin = start + number * 31 * DAY
        invoice = se.invoice(
            subscription=sub,
            amount_cents=amount,
            paid_at=begin,
            period_start=begin,
            billing_reason="subscription_create" if number == 0 else "subscription_cycle",
            email=email,
            metadata={},
        )
        invoice["lines"]["data"][0]["pricing"]["price_details"] = {"price": f"price_{product}", "product": product}
        invoice["created"] = begin
        invoices.append(invoice)
    return invoices


def newsroom_account(shop_sales: int = 0) -> tuple[StripeAccount, dict[str, Any]]:
    """Two years of a newsroom's account: gifts through a Payment Link, a membership on the
    membership product (its amount raised once), the paper's own digital subscription, event
    tickets through Checkout (a refund and a dispute of them), a shop's plain PaymentIntents
    (one refunded), a refund and a lost dispute of gifts, and a payout. Reader Rae is a donor,
    a subscriber to the paper and a ticket buyer."""
    account = StripeAccount()
    gifts = [link_session("plink_gifts", 2_500 * (n + 1), f"donor{n}@example.org", Y2024 + n * DAY) for n in range(3)]
    rae_gift = link_session("plink_gifts", 10_000, "Rae@Example.org", Y2024 + 10 * DAY)
    tickets = [link_session("plink_tickets", 4_000, "rae@example.org", Y2024 + (20 + n) * DAY) for n in range(2)]
    account.add("checkout_sessions", *gifts, rae_gift, *tickets)

    member_sub = se.subscription(amount_cents=2_000, metadata={}, start_date=Y2024, customer="cus_member")
    member_sub["items"]["data"][0]["price"].update(id="price_prod_membership", product="prod_membership")
    paper_sub = se.subscription(amount_cents=999, metadata={}, start_date=Y2024, customer="cus_rae")
    paper_sub["items"]["data"][0]["price"].update(id="price_prod_paper", product="prod_paper")
    account.add("subscriptions", member_sub, paper_sub)
    member = member_invoices(member_sub["id"], "prod_membership", [1_500, 1_500, 2_000], Y2024, "member@example.org")
    paper = member_invoices(paper_sub["id"], "prod_paper", [999, 999], Y2024, "rae@example.org")
    account.add("invoices", *member, *paper)
    intents = {invoice["id"]: se.unique("pi") for invoice in [*member, *paper]}
    account.add(
        "invoice_payments",
        *[
            se.invoice_payment(invoice_id=i, amount_cents=100, payment_intent=pi, paid_at=Y2024) | {"created": Y2024}
            for i, pi in intents.items()
        ],
    )
    shop = [
        se.stripe_object(
            "payment_intent",
            id=se.unique("pi"),
            amount=1_200,
            amount_received=1_200,
            currency="usd",
            status="succeeded",
            metadata={"order": str(n)},
            created=Y2024 + n,
            latest_charge=se.unique("ch"),
        )
        for n in range(max(shop_sales, 2))
    ]
    own_intents = [
        se.stripe_object(
            "payment_intent",
            id=s["payment_intent"],
            amount=s["amount_total"],
            currency="usd",
            status="succeeded",
            metadata={},
            created=s["created"],
            latest_charge=None,
        )
        for s in [*gifts, rae_gift, *tickets]
    ]
    account.add("payment_intents", *shop, *own_intents)
    account.add(
        "refunds",
        me.refund(amount=1_000, payment_intent=gifts[0]["payment_intent"], created=Y2024 + 40 * DAY),
        me.refund(amount=4_000, payment_intent=tickets[0]["payment_intent"], created=Y2024 + 41 * DAY),
        me.refund(amount=1_200, payment_intent=shop[0]["id"], created=Y2024 + 42 * DAY),
        me.refund(amount=999, payment_intent=intents[paper[1]["id"]], created=Y2024 + 43 * DAY),
    )
    account.add(
        "disputes",
        me.dispute(amount=5_000, payment_intent=gifts[1]["payment_intent"], status="lost", created=Y2024 + 50 * DAY),
        me.dispute(amount=4_000, payment_intent=tickets[1]["payment_intent"], created=Y2024 + 51 * DAY),
    )
    account.add("payouts", me.payout(amount=50_000, arrival=Y2024 + 60 * DAY), me.payout(amount=1, status="in_transit"))
    return account, {"gifts": gifts, "rae": rae_gift, "member_sub": member_sub, "tickets": tickets}


def assert_exact_ledger() -> None:
    """Four Payment Link gifts and three membership installments, once each; none of the
    paper's, the tickets' or the shop's money; the gifts' refund and lost dispute once."""
    amounts = sorted(db.session.scalars(select(Gift.amount_cents)))
    assert amounts == sorted([2_500, 5_000, 7_500, 10_000, 1_500, 1_500, 2_000])
    membership = db.session.scalars(select(Membership)).one()
    assert membership.donor.email_key == "member@example.org"
    assert sorted(db.session.scalars(select(Reversal.amount_cents))) == [1_000, 5_000]
    assert failing() == 0


def test_history_records_every_gift_once_and_keeps_the_other_business_apart(app, fund, stripe_api):
    account, _ = newsroom_account(shop_sales=130)  # more than a page of PaymentIntents
    account.serve(stripe_api, throttle_every=7)
    gift_sources(app)
    result = history(app)
    assert result.exit_code == 0, result.output
    assert_exact_ledger()
    assert "rate-limited" in result.output and account.throttled > 0
    assert "payment intent of a checkout or invoice" in result.output
    # Paged with starting_after, the window filter absent, Stripe's parameters.
    pages = stripe_api.requests_to("GET", "/v1/payment_intents")
    assert any("starting_after" in r.query for r in pages) and all(r.query["limit"] == "100" for r in pages)
    assert stripe_api.requests_to("GET", "/v1/subscriptions")[0].query["status"] == "all"
    kinds = dict(db.session.execute(select(NotGift.kind, func.count()).group_by(NotGift.kind)).all())
    assert kinds["one_time"] == 2 and kinds["charge"] == 130 and kinds["subscription"] == 1
    assert kinds["invoice"] == 2 and kinds["refund"] == 3 and kinds["dispute"] == 1
    assert db.session.scalars(select(Payout.id)).one()
    assert count(OutboxMessage) == 0  # no donor is mailed about history
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "history.stripe")) is not None
    # The same donor gave, subscribed to the paper and bought tickets: only the gift counts.
    rae = db.session.scalars(select(Gift).where(Gift.amount_cents == 10_000)).one()
    assert rae.donor.email_key == "rae@example.org"
    # Its amount history came from its invoices.
    changes = db.session.scalars(select(MembershipChange)).all()
    assert [(c.old_amount_cents, c.new_amount_cents) for c in changes] == [(1_500, 2_000)]

    again = history(app)
    assert again.exit_code == 0 and "nothing new" in again.output
    assert_exact_ledger()


def test_history_webhooks_and_repeats_in_any_order_give_one_gift_per_payment(
    app, client, webhook_secret, fund, stripe_api
):
    account, objects = newsroom_account()
    account.serve(stripe_api)
    gift_sources(app)
    # Some gifts arrive by webhook before the import, one after it, each twice.
    for session in objects["gifts"][:2]:
        for _ in range(2):
            se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    assert history(app).exit_code == 0
    se.post_event(client, se.event("checkout.session.completed", objects["rae"]), webhook_secret)
    se.post_event(client, se.event("customer.subscription.updated", objects["member_sub"]), webhook_secret)
    assert history(app).exit_code == 0
    db.session.expire_all()
    assert_exact_ledger()


def test_a_dry_run_writes_nothing_and_tells_the_same(app, fund, stripe_api):
    account, _ = newsroom_account()
    account.serve(stripe_api)
    gift_sources(app)
    before = {model: count(model) for model in (Gift, StripeEvent, NotGift, ImportCursor, AuditEntry)}
    dry = history(app, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run: nothing was written" in dry.output
    assert {model: count(model) for model in before} == before
    real = history(app)
    tail = lambda text: text.split("\n", 1)[1].split("Listed:")[0]  # noqa: E731
    assert tail(dry.output) == tail(real.output)
    assert_exact_ledger()


def test_a_stopped_import_resumes_from_its_cursor(app, fund, stripe_api):
    account, _ = newsroom_account()
    account.failures["refunds"] = 1
    account.serve(stripe_api)
    gift_sources(app)
    stopped = history(app)
    assert stopped.exit_code != 0 and "run it again" in stopped.output
    sessions_listed = len(stripe_api.requests_to("GET", "/v1/checkout/sessions"))
    resumed = history(app)
    assert resumed.exit_code == 0 and "Went on from where the last run stopped" in resumed.output
    assert len(stripe_api.requests_to("GET", "/v1/checkout/sessions")) == sessions_listed  # not listed again
    assert_exact_ledger()


def test_since_filters_by_creation_and_no_key_is_a_clear_error(app, fund, stripe_api, monkeypatch):
    account, _ = newsroom_account()
    account.serve(stripe_api)
    assert history(app, "--since", "2030-01-01").exit_code == 0
    assert all("created[gte]" in r.query for r in stripe_api.requests_to("GET", "/v1/refunds"))
    assert count(Gift) == 0
    monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", None)
    result = history(app)
    assert result.exit_code != 0 and "STRIPE_SECRET_KEY" in result.output


def test_a_batch_that_fails_is_rolled_back_and_recorded_an_object_at_a_time(app, fund, stripe_api, monkeypatch):
    """A page is recorded in one transaction; should it fail (a concurrent webhook took a gift's
    key first, a deadlock), all of it is rolled back and its objects are recorded one at a time,
    with the same result."""
    from sqlalchemy.exc import IntegrityError

    from donations.payments.history.stripe_import import Importer

    account, _ = newsroom_account(shop_sales=130)
    account.serve(stripe_api)
    gift_sources(app)
    dry = history(app, "--dry-run")
    batched = Importer._apply_built
    batches: list[int] = []

    def collide(built, tally) -> None:
        batches.append(len(built))
        batched(built, tally)  # all of it written, then the failure: all of it rolled back
        if len(batches) % 2:
            raise IntegrityError("INSERT INTO gifts", {}, Exception("a concurrent writer took the key"))

    monkeypatch.setattr(Importer, "_apply_built", staticmethod(collide))
    real = history(app)
    assert real.exit_code == 0, real.output
    assert len(batches) >= 4
    tail = lambda text: text.split("\n", 1)[1].split("Listed:")[0]  # noqa: E731
    assert tail(dry.output) == tail(real.output)
    assert_exact_ledger()
