"""Membership events through the webhook: a subscription checkout, its invoices, amount changes,
a failed payment and its recovery, and the end, in any order and however often delivered."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from donations.clock import local_date
from donations.extensions import db
from donations.ledger import memberships
from donations.ledger import service as ledger
from donations.ledger.models import (
    Fund,
    Gift,
    GiftStatus,
    InvoicePaymentLink,
    Membership,
    MembershipChange,
    MembershipStatus,
)
from donations.mail.models import OutboxMessage
from donations.payments.local import billing as local_billing
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_donor, make_fund
from tests.giving.support import start_local_membership

DAY = 86_400
# Events that say what state a membership is in (invoice_payment.paid says nothing of it).
STATE_EVENTS = {
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
}
T0 = int(datetime(2026, 1, 15, 18, 30, tzinfo=UTC).timestamp())


@pytest.fixture
def fund(app) -> Fund:
    return make_fund("community-forums", is_default=True)


def month(n: int) -> int:
    """The n-th monthly renewal after T0 (calendar months, as Stripe bills them)."""
    moment = datetime.fromtimestamp(T0, UTC)
    year, index = divmod(moment.month - 1 + n, 12)
    return int(moment.replace(year=moment.year + year, month=index + 1).timestamp())


def pending_recurring_gift(fund: Fund, amount_cents: int = 1500, email: str = "rae@example.org") -> Gift:
    """What the gift page leaves behind when a reader starts a monthly membership."""
    donor = make_donor(email, name="Rae Reader")
    gift = ledger.start_gift(
        donor, fund, ledger.GiftDetails(amount_cents, 0, "monthly", None, False, "honor", "Ms. Alvarez", {})
    )
    gift.stripe_checkout_session_id = se.unique("cs")
    db.session.commit()
    return gift


@dataclass
class Life:
    """A monthly membership's events from checkout to cancellation, in the order they happened."""

    gift: Gift
    subscription_id: str
    customer: str
    events: list[dict[str, Any]] = field(default_factory=list)
    paid: list[tuple[int, int]] = field(default_factory=list)  # (amount, paid_at) per installment
    raised_at: int = 0
    ended_at: int = 0
    failure: dict[str, Any] = field(default_factory=dict)  # the invoice.payment_failed event
    past_due: dict[str, Any] = field(default_factory=dict)  # the subscription.updated it goes with
    deleted: dict[str, Any] = field(default_factory=dict)
    raise_event: dict[str, Any] = field(default_factory=dict)  # the subscription.updated of the raise

    def welcome_is_due(self, deliveries: list[dict[str, Any]]) -> bool:
        """A membership first heard of at its end gets no welcome."""
        first = next(event for event in deliveries if event["type"] in STATE_EVENTS)
        return first != self.deleted

    def change_is_news(self, deliveries: list[dict[str, Any]]) -> bool:
        """The member is told of the raise when it arrives before the membership's end."""
        return deliveries.index(self.raise_event) < deliveries.index(self.deleted)

    def failure_is_news(self, deliveries: list[dict[str, Any]]) -> bool:
        """Whether the member is told of the failed payment: only if, when the failure arrives,
        nothing newer about the membership's state (its recovery, its end) has arrived yet."""
        before = deliveries[: deliveries.index(self.failure)]
        return not any(
            event["type"] in STATE_EVENTS and event["created"] > self.failure["created"] and event != self.past_due
            for event in before
        )


def membership_life(fund: Fund) -> Life:
    """Checkout at $15/month, six installments, a raise to $25, a failed seventh payment paid
    three days later, five more, then canceled at the end of the period: 12 installments."""
    gift = pending_recurring_gift(fund)
    life = Life(gift=gift, subscription_id=se.unique("sub"), customer=se.unique("cus"))
    metadata = {"gift_id": str(gift.id), "fund": fund.slug, "frequency": "monthly"}

    def sub(amount: int, status: str = "active", period: int = 0, **kwargs: Any) -> dict[str, Any]:
        return se.subscription(
            subscription_id=life.subscription_id,
            customer=life.customer,
            amount_cents=amount,
            status=status,
            metadata=metadata,
            start_date=T0,
            current_period_start=month(period),
            current_period_end=month(period + 1),
            **kwargs,
        )

    def add(event_type: str, obj: dict[str, Any], created: int, **kwargs: Any) -> None:
        life.events.append(se.event(event_type, obj, created=created, **kwargs))

    session = se.checkout_session(
        session_id=gift.stripe_checkout_session_id,
        amount_cents=1500,
        email="rae@example.org",
        mode="subscription",
        subscription=life.subscription_id,
        customer=life.customer,
        metadata=metadata,
    )
    add("customer.subscription.created", sub(1500, status="incomplete"), T0)
    add("customer.subscription.updated", sub(1500), T0 + 2, previous_attributes={"status": "incomplete"})
    add("checkout.session.completed", session, T0 + 3)

    amount = 1500
    for n in range(12):
        if n == 6:  # the reader raises the amount two weeks after the sixth payment
            life.raised_at = month(5) + 14 * DAY
            add(
                "customer.subscription.updated",
                sub(2500, period=5),
                life.raised_at,
                previous_attributes={"items": sub(1500, period=5)["items"]},
            )
            life.raise_event = life.events[-1]
            amount = 2500
        invoice_id = se.unique("in")
        paid_at = month(n) + 60
        invoice_args = {
            "subscription": life.subscription_id,
            "invoice_id": invoice_id,
            "amount_cents": amount,
            "period_start": month(n),
            "period_end": month(n + 1),
            "billing_reason": "subscription_create" if n == 0 else "subscription_cycle",
            "customer": life.customer,
            "email": "rae@example.org",
            "metadata": metadata,
        }
        if n == 6:  # the card declines; Stripe's retry three days later succeeds
            add("invoice.payment_failed", se.invoice(paid=False, **invoice_args), month(n) + 60)
            life.failure = life.events[-1]
            add(
                "customer.subscription.updated",
                sub(amount, status="past_due", period=n),
                month(n) + 61,
                previous_attributes={"status": "active"},
            )
            life.past_due = life.events[-1]
            paid_at = month(n) + 3 * DAY
            add(
                "customer.subscription.updated",
                sub(amount, period=n),
                paid_at + 1,
                previous_attributes={"status": "past_due"},
            )
        add("invoice.paid", se.invoice(paid_at=paid_at, **invoice_args), paid_at)
        add("invoice_payment.paid", se.invoice_payment(invoice_id=invoice_id, amount_cents=amount), paid_at)
        life.paid.append((amount, paid_at))

    asked = month(11) + 20 * DAY
    add(
        "customer.subscription.updated",
        sub(2500, period=11, cancel_at_period_end=True),
        asked,
        previous_attributes={"cancel_at_period_end": False},
    )
    life.ended_at = month(12)
    add(
        "customer.subscription.deleted",
        sub(2500, status="canceled", period=11, canceled_at=asked, ended_at=month(12)),
        life.ended_at + 5,
    )
    life.deleted = life.events[-1]
    return life


def deliver_all(client, secret: str, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        response = se.post_event(client, payload, secret)
        assert response.status_code == 200, response.data


def installments() -> list[Gift]:
    return list(db.session.scalars(select(Gift).order_by(Gift.received_at).execution_options(populate_existing=True)))


def outbox_kinds() -> dict[str, int]:
    rows = db.session.execute(select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind)).all()
    return dict(rows)


def assert_life_recorded(life: Life, deliveries: list[dict[str, Any]]) -> None:
    gifts = installments()
    assert len(gifts) == 12
    assert [(g.amount_cents, int(g.received_at.timestamp())) for g in gifts] == life.paid
    assert {g.status for g in gifts} == {GiftStatus.PAID}
    assert {g.frequency for g in gifts} == {"monthly"}
    assert len({g.stripe_invoice_id for g in gifts}) == 12
    assert all(g.stripe_payment_intent_id for g in gifts)
    assert {g.tribute_name for g in gifts} == {"Ms. Alvarez"}  # the form's details reach each one
    # The checkout's pending gift is installment #1, never a thirteenth gift.
    assert gifts[0].id == life.gift.id
    assert db.session.scalar(select(func.sum(Gift.amount_cents))) == 6 * 1500 + 6 * 2500

    membership = db.session.scalars(select(Membership).execution_options(populate_existing=True)).one()
    assert {g.membership_id for g in gifts} == {membership.id}
    assert membership.stripe_subscription_id == life.subscription_id
    assert (membership.status, membership.amount_cents, membership.interval) == (
        MembershipStatus.CANCELED,
        2500,
        "month",
    )
    assert membership.cancel_at_period_end is False
    assert int(membership.started_at.timestamp()) == T0
    assert int(membership.canceled_at.timestamp()) == life.ended_at  # when it ended, not when asked
    assert int(membership.current_period_end.timestamp()) == month(12)
    assert membership.donor.email == "rae@example.org"
    assert memberships.level_of(membership) == "Sustainer"  # $300 a year

    history = [(c.old_amount_cents, c.new_amount_cents, int(c.changed_at.timestamp())) for c in membership.changes]
    assert history == [(1500, 2500, life.raised_at)]
    expected_mail = {"installment_receipt": 12, "membership_canceled": 1}
    if life.welcome_is_due(deliveries):
        expected_mail["membership_welcome"] = 1
    if life.failure_is_news(deliveries):
        expected_mail["payment_failed"] = 1
    if life.change_is_news(deliveries):
        expected_mail["membership_changed"] = 1
    assert outbox_kinds() == expected_mail
    unapplied = db.session.scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.applied_at.is_(None)))
    assert unapplied == 0


def test_a_membership_life_in_order(client, webhook_secret, fund):
    life = membership_life(fund)
    deliver_all(client, webhook_secret, life.events)
    assert life.failure_is_news(life.events) and life.welcome_is_due(life.events)
    assert_life_recorded(life, life.events)


@pytest.mark.parametrize("seed", [3, 20261126, 77])
def test_a_membership_life_shuffled_with_duplicates(client, webhook_secret, fund, seed):
    life = membership_life(fund)
    rng = random.Random(seed)
    deliveries = life.events + rng.sample(life.events, len(life.events) // 3)
    rng.shuffle(deliveries)
    deliver_all(client, webhook_secret, deliveries)
    assert_life_recorded(life, deliveries)


def test_events_in_reverse_order(client, webhook_secret, fund):
    life = membership_life(fund)
    deliveries = list(reversed(life.events))
    deliver_all(client, webhook_secret, deliveries)
    assert not life.failure_is_news(deliveries) and not life.welcome_is_due(deliveries)
    assert_life_recorded(life, deliveries)


def test_subscription_checkout_makes_the_membership_and_no_money(client, webhook_secret, fund):
    gift = pending_recurring_gift(fund, amount_cents=2000)
    subscription_id = se.unique("sub")
    session = se.checkout_session(
        session_id=gift.stripe_checkout_session_id,
        amount_cents=2000,
        email="rae@example.org",
        mode="subscription",
        subscription=subscription_id,
        metadata={"gift_id": str(gift.id), "fund": fund.slug, "frequency": "monthly"},
    )
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    membership = db.session.scalars(select(Membership)).one()
    assert (membership.amount_cents, membership.interval, membership.status) == (2000, "month", "active")
    assert membership.stripe_customer_id == session["customer"]
    db.session.expire_all()
    anchor = db.session.get(Gift, gift.id)
    assert anchor.status == GiftStatus.PENDING  # the money comes with the invoice
    assert anchor.membership_id == membership.id
    assert db.session.scalar(select(func.count()).select_from(Gift).where(Gift.status == GiftStatus.PAID)) == 0
    assert outbox_kinds() == {"membership_welcome": 1}


def test_first_invoice_before_its_checkout_counts_once(client, webhook_secret, fund):
    gift = pending_recurring_gift(fund, amount_cents=1000)
    subscription_id = se.unique("sub")
    metadata = {"gift_id": str(gift.id), "fund": fund.slug, "frequency": "monthly"}
    invoice = se.invoice(
        subscription=subscription_id,
        amount_cents=1000,
        paid_at=T0 + 5,
        period_start=T0,
        billing_reason="subscription_create",
        email="rae@example.org",
        metadata=metadata,
    )
    session = se.checkout_session(
        session_id=gift.stripe_checkout_session_id,
        amount_cents=1000,
        email="rae@example.org",
        mode="subscription",
        subscription=subscription_id,
        metadata=metadata,
    )
    se.post_event(client, se.event("invoice.paid", invoice, created=T0 + 5), webhook_secret)
    se.post_event(client, se.event("checkout.session.completed", session, created=T0 + 6), webhook_secret)
    (paid,) = installments()
    assert (paid.id, paid.amount_cents, paid.status) == (gift.id, 1000, GiftStatus.PAID)
    assert int(paid.received_at.timestamp()) == T0 + 5  # dated by status_transitions.paid_at
    assert paid.stripe_invoice_id == invoice["id"]
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


def test_a_dashboard_subscription_is_recorded_from_its_first_invoice(client, webhook_secret, fund):
    """No checkout of ours and no metadata: the donor from the invoice's email, the interval
    from the line's period (a year), the default fund."""
    subscription_id = se.unique("sub")
    customer = se.unique("cus")
    year_later = int(datetime(2027, 1, 15, 18, 30, tzinfo=UTC).timestamp())
    invoice = se.invoice(
        subscription=subscription_id,
        customer=customer,
        amount_cents=12_000,
        paid_at=T0,
        period_start=T0,
        period_end=year_later,
        billing_reason="subscription_create",
        email="Patron@Example.org",
        name="Pat Patron",
    )
    response = se.post_event(client, se.event("invoice.paid", invoice, created=T0), webhook_secret)
    assert response.json["outcome"] == "applied"
    membership = db.session.scalars(select(Membership)).one()
    assert (membership.interval, membership.amount_cents, membership.fund_id) == ("year", 12_000, fund.id)
    assert membership.donor.email_key == "patron@example.org"
    assert int(membership.current_period_end.timestamp()) == year_later
    (gift,) = installments()
    assert (gift.frequency, gift.amount_cents, gift.donor_id) == ("annual", 12_000, membership.donor_id)


def test_a_subscription_event_before_anything_is_known_waits_for_the_invoice(client, webhook_secret, fund):
    subscription_id, customer = se.unique("sub"), se.unique("cus")
    created = se.subscription(subscription_id=subscription_id, customer=customer, amount_cents=900, start_date=T0)
    early = se.event("customer.subscription.created", created, created=T0)
    response = se.post_event(client, early, webhook_secret)
    assert response.json["outcome"] == "deferred"
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0
    invoice = se.invoice(
        subscription=subscription_id,
        customer=customer,
        amount_cents=900,
        paid_at=T0 + 1,
        period_start=T0,
        billing_reason="subscription_create",
        email="new@example.org",
    )
    se.post_event(client, se.event("invoice.paid", invoice, created=T0 + 1), webhook_secret)
    db.session.expire_all()
    assert db.session.get(StripeEvent, early["id"]).applied_at is not None  # retried once it could be
    assert db.session.scalars(select(Membership)).one().donor.email == "new@example.org"


def test_invoice_payment_links_the_payment_intent_whichever_comes_first(client, webhook_secret, fund):
    subscription_id = se.unique("sub")
    early = se.invoice(subscription=subscription_id, paid_at=T0, billing_reason="subscription_create")
    late = se.invoice(subscription=subscription_id, paid_at=month(1), period_start=month(1))
    early_link = se.invoice_payment(invoice_id=early["id"])
    late_link = se.invoice_payment(invoice_id=late["id"])
    se.post_event(client, se.event("invoice_payment.paid", early_link), webhook_secret)  # before its invoice
    se.post_event(client, se.event("invoice.paid", early, created=T0), webhook_secret)
    se.post_event(client, se.event("invoice.paid", late, created=month(1)), webhook_secret)
    se.post_event(client, se.event("invoice_payment.paid", late_link), webhook_secret)  # after its invoice
    intents = {g.stripe_invoice_id: g.stripe_payment_intent_id for g in installments()}
    assert intents == {
        early["id"]: early_link["payment"]["payment_intent"],
        late["id"]: late_link["payment"]["payment_intent"],
    }
    assert db.session.scalar(select(func.count()).select_from(InvoicePaymentLink)) == 2


def test_a_failed_renewal_marks_past_due_and_tells_the_member_once(client, webhook_secret, fund):
    subscription_id = se.unique("sub")
    first = se.invoice(subscription=subscription_id, paid_at=T0, billing_reason="subscription_create")
    se.post_event(client, se.event("invoice.paid", first, created=T0), webhook_secret)
    renewal = se.invoice(subscription=subscription_id, paid=False, period_start=month(1))
    for attempt in (1, 2):  # Stripe retries the card; each failure is its own event
        failed = dict(renewal, attempt_count=attempt)
        se.post_event(client, se.event("invoice.payment_failed", failed, created=month(1) + attempt), webhook_secret)
    membership = db.session.scalars(select(Membership).execution_options(populate_existing=True)).one()
    assert membership.status == MembershipStatus.PAST_DUE
    assert outbox_kinds()["payment_failed"] == 1
    assert len(installments()) == 1


def test_amount_changes_keep_their_history(client, webhook_secret, fund):
    subscription_id = se.unique("sub")
    se.post_event(
        client,
        se.event(
            "invoice.paid",
            se.invoice(subscription=subscription_id, paid_at=T0, billing_reason="subscription_create"),
            created=T0,
        ),
        webhook_secret,
    )
    steps = [(1500, 3000, month(2)), (3000, 2000, month(4)), (2000, 6000, month(7))]
    payloads = []
    for old, new, at in steps:
        before = se.subscription(subscription_id=subscription_id, amount_cents=old)
        after = se.subscription(subscription_id=subscription_id, amount_cents=new)
        payloads.append(
            se.event("customer.subscription.updated", after, created=at, previous_attributes={"items": before["items"]})
        )
    # A change of something else says nothing about the amount.
    unchanged = se.subscription(subscription_id=subscription_id, amount_cents=6000)
    payloads.append(
        se.event(
            "customer.subscription.updated", unchanged, created=month(8), previous_attributes={"metadata": {"x": "y"}}
        )
    )
    for payload in [payloads[2], payloads[0], payloads[3], payloads[1], payloads[0]]:
        se.post_event(client, payload, webhook_secret)
    membership = db.session.scalars(select(Membership).execution_options(populate_existing=True)).one()
    assert membership.amount_cents == 6000  # the newest event's amount, whatever the arrival order
    assert memberships.level_of(membership) == "Champion"  # $720 a year
    changes = db.session.scalars(select(MembershipChange).order_by(MembershipChange.changed_at)).all()
    assert [(c.old_amount_cents, c.new_amount_cents) for c in changes] == [(1500, 3000), (3000, 2000), (2000, 6000)]


def test_an_unsupported_interval_is_kept_with_its_reason(client, webhook_secret, fund):
    weekly = se.subscription(interval="week")
    weekly["items"]["data"][0]["price"]["recurring"]["interval"] = "week"
    payload = se.event("customer.subscription.created", weekly)
    response = se.post_event(client, payload, webhook_secret)
    assert response.status_code == 200 and response.json["outcome"] == "deferred"
    assert "unsupported billing interval" in db.session.get(StripeEvent, payload["id"]).error
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0


def test_a_one_off_invoice_is_not_a_membership(client, webhook_secret, fund):
    invoice = se.invoice(subscription="unused", paid_at=T0)
    invoice["parent"] = {"type": "quote_details", "quote_details": {"quote": "qt_1"}, "subscription_details": None}
    invoice["subscription"] = None
    response = se.post_event(client, se.event("invoice.paid", invoice), webhook_secret)
    assert response.json["outcome"] == "applied"
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 0
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0


# The local gateway's renewals: `flask --app wsgi payments bill-due` ----------------------------


def bill_due(app, as_of: date) -> str:
    result = app.test_cli_runner().invoke(args=["payments", "bill-due", "--as-of", as_of.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def fresh(membership: Membership) -> Membership:
    return db.session.scalars(
        select(Membership).where(Membership.id == membership.id).execution_options(populate_existing=True)
    ).one()


def day_after(moment: datetime) -> date:
    return local_date(moment) + timedelta(days=1)


def test_bill_due_renews_an_active_membership_once_per_period(app, client, fund):
    membership = start_local_membership(client, amount="1500")
    first_end = membership.current_period_end
    assert bill_due(app, local_date(first_end) - timedelta(days=1)) == "Billed 0, declined 0, ended 0."
    assert bill_due(app, day_after(first_end)) == "Billed 1, declined 0, ended 0."
    assert bill_due(app, day_after(first_end)) == "Billed 0, declined 0, ended 0."  # nothing twice
    renewal = installments()[-1]
    assert len(installments()) == 2
    assert (renewal.amount_cents, renewal.received_at, renewal.membership_id) == (1500, first_end, membership.id)
    renewed = fresh(membership)
    assert renewed.current_period_end.month == first_end.month % 12 + 1
    assert renewed.current_period_end.day == renewed.started_at.day or renewed.current_period_end.day >= 28
    assert outbox_kinds()["installment_receipt"] == 2


def test_bill_due_bills_every_period_that_ended(app, client, fund):
    membership = start_local_membership(client, amount="1000", frequency="annual")
    three_years = fresh(membership).current_period_end.replace(year=membership.current_period_end.year + 2)
    assert bill_due(app, day_after(three_years)) == "Billed 3, declined 0, ended 0."
    gifts = installments()
    assert [g.amount_cents for g in gifts] == [1000] * 4
    assert [g.received_at.year - gifts[0].received_at.year for g in gifts] == [0, 1, 2, 3]
    assert {g.frequency for g in gifts} == {"annual"}


def test_a_declining_card_makes_the_membership_past_due_until_the_card_is_updated(app, client, fund):
    membership = start_local_membership(client)
    local_billing.keep_card(membership.stripe_subscription_id, "0002")
    as_of = day_after(membership.current_period_end)
    assert bill_due(app, as_of) == "Billed 0, declined 1, ended 0."
    assert bill_due(app, as_of) == "Billed 0, declined 1, ended 0."  # retried, declined again
    assert fresh(membership).status == MembershipStatus.PAST_DUE
    assert len(installments()) == 1
    assert outbox_kinds()["payment_failed"] == 1  # one notice per failed invoice
    failed_invoice = db.session.scalars(
        select(StripeEvent.payload)
        .where(StripeEvent.type == "invoice.payment_failed")
        .order_by(StripeEvent.received_at, StripeEvent.id)
    ).first()["data"]["object"]["id"]

    local_billing.keep_card(membership.stripe_subscription_id, "4242")
    assert bill_due(app, as_of) == "Billed 1, declined 0, ended 0."
    assert fresh(membership).status == MembershipStatus.ACTIVE
    assert installments()[-1].stripe_invoice_id == failed_invoice  # the same invoice, paid at last


def test_bill_due_never_bills_a_canceled_membership(app, client, fund):
    canceled = start_local_membership(client, email="leaving@example.org", amount="1500")
    staying = start_local_membership(client, email="staying@example.org", amount="3000")
    local_billing.cancel(fresh(canceled))
    as_of = day_after(max(canceled.current_period_end, staying.current_period_end))
    assert bill_due(app, as_of) == "Billed 1, declined 0, ended 0."
    assert [g.membership_id for g in installments()].count(canceled.id) == 1  # its first payment only
    assert [g.membership_id for g in installments()].count(staying.id) == 2


def test_a_membership_set_to_end_with_its_period_ends_instead_of_renewing(app, client, fund):
    membership = start_local_membership(client)
    row = fresh(membership)
    row.cancel_at_period_end = True
    db.session.commit()
    assert bill_due(app, day_after(row.current_period_end)) == "Billed 0, declined 0, ended 1."
    ended = fresh(membership)
    assert (ended.status, ended.canceled_at) == (MembershipStatus.CANCELED, row.current_period_end)
    assert len(installments()) == 1


def test_bill_due_is_for_the_local_gateway_only(app, monkeypatch):
    monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
    result = app.test_cli_runner().invoke(args=["payments", "bill-due"])
    assert result.exit_code != 0 and "local gateway" in result.output


# Hostile payloads: a signed event whose object is malformed is kept, never a server error ---------

hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no NaN or Infinity
    st.text(max_size=40),
    st.text(min_size=300, max_size=400),
    st.just("a\x00b"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["id", "data", "x"]), st.one_of(st.none(), st.text(max_size=5)), max_size=2),
)
INVOICE_FIELDS = [
    "id",
    "amount_paid",
    "currency",
    "customer",
    "customer_email",
    "customer_name",
    "billing_reason",
    "lines",
    "parent",
    "status_transitions",
    "subscription",
    "payment_intent",
]
SUBSCRIPTION_FIELDS = ["id", "customer", "items", "metadata", "status", "start_date", "cancel_at", "currency"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event_type=st.sampled_from(
        [
            "invoice.paid",
            "invoice.payment_failed",
            "invoice_payment.paid",
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
        ]
    ),
    changes=st.dictionaries(
        st.sampled_from(sorted({*INVOICE_FIELDS, *SUBSCRIPTION_FIELDS, "invoice", "payment"})),
        hostile_values,
        max_size=3,
    ),
    previous=st.one_of(st.none(), st.fixed_dictionaries({"items": hostile_values})),
)
def test_hostile_membership_events_never_fail(client, webhook_secret, fund, event_type, changes, previous):
    subscription_id = se.unique("sub")
    if event_type.startswith("invoice."):
        obj = se.invoice(subscription=subscription_id, paid_at=T0, billing_reason="subscription_create")
    elif event_type == "invoice_payment.paid":
        obj = se.invoice_payment(invoice_id=se.unique("in"))
    else:
        obj = se.subscription(subscription_id=subscription_id)
    obj.update(changes)
    gifts_before = db.session.scalar(select(func.count()).select_from(Gift))
    response = se.post_event(client, se.event(event_type, obj, previous_attributes=previous), webhook_secret)
    assert response.status_code == 200, (response.status_code, response.json)
    added = db.session.scalar(select(func.count()).select_from(Gift)) - gifts_before
    assert added in (0, 1)
    if added:
        assert event_type == "invoice.paid"
        assert (
            db.session.scalars(select(Gift).order_by(Gift.id.desc()).limit(1)).one().amount_cents == obj["amount_paid"]
        )
