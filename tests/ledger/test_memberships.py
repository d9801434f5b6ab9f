"""The ledger's membership writer, called directly: levels, installments, order, history. The
member is told what happened as a handler tells them (`tell_member`), in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger import installments, memberships
from donations.ledger import service as ledger
from donations.ledger.models import Gift, GiftStatus, Membership, MembershipChange, MembershipStatus
from donations.mail.models import OutboxMessage
from donations.payments.handlers.subscriptions import tell_member
from tests import stripe_events as se
from tests.factories import make_donor, make_fund

T0 = datetime(2026, 3, 1, 17, 0, tzinfo=UTC)


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def origin(subscription_id: str = "sub_ledger_1", at: datetime = T0, **kwargs) -> memberships.MembershipOrigin:
    values = {"email": "rae@example.org", "amount_cents": 1500, "interval": "month", **kwargs}
    return memberships.MembershipOrigin(subscription_id=subscription_id, as_of=at, **values)


def payment(invoice_id: str, amount: int = 1500, paid_at: datetime = T0, first: bool = False):
    return installments.InstallmentPayment(
        invoice_id=invoice_id,
        amount_cents=amount,
        currency="usd",
        paid_at=paid_at,
        first=first,
        period_end=paid_at + timedelta(days=31),
        payment_intent_id=None,
    )


def state(amount: int, at: datetime, event_id: str, status: str | None = "active", previous: int | None = None):
    return memberships.SubscriptionState(
        origin=origin(at=at, amount_cents=amount),
        event_id=event_id,
        status=status,
        cancel_at_period_end=False,
        current_period_end=None,
        ended_at=None,
        previous_amount_cents=previous,
    )


def record_installment(
    origin: memberships.MembershipOrigin, payment: installments.InstallmentPayment
) -> tuple[int | None, bool]:
    """The ledger's installment and the mail it calls for: (gift id, newly recorded)."""
    news = installments.record_installment(origin, payment)
    tell_member(news)
    return news.gift_id, news.gift_recorded


def apply_subscription(state: memberships.SubscriptionState) -> None:
    tell_member(memberships.apply_subscription(state))


def record_failed_payment(origin: memberships.MembershipOrigin, invoice_id: str) -> None:
    tell_member(memberships.record_failed_payment(origin, invoice_id))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("amount", "interval", "level"),
    [
        (999, "month", "Supporter"),  # $119.88 a year
        (1000, "month", "Sustainer"),  # $120 a year: the threshold itself
        (4999, "month", "Sustainer"),
        (5000, "month", "Champion"),  # $600 a year
        (11_999, "year", "Supporter"),
        (12_000, "year", "Sustainer"),
        (60_000, "year", "Champion"),
    ],
)
def test_levels_by_annualized_amount(app, amount, interval, level):
    assert memberships.level_for(memberships.annualized_cents(amount, interval)) == level


def test_levels_come_from_configuration(app, monkeypatch):
    monkeypatch.setitem(app.config, "MEMBERSHIP_LEVELS", [(50_000, "Patron"), (0, "Friend")])  # any order
    assert memberships.level_for(49_999) == "Friend"
    assert memberships.level_for(50_000) == "Patron"


def test_an_invoice_is_recorded_once(fund):
    first, new = record_installment(origin(), payment("in_ledger_1", first=True))
    again, new_again = record_installment(origin(), payment("in_ledger_1", first=True))
    db.session.commit()
    assert (new, new_again) == (True, False)
    assert first is not None and first == again
    assert count(Gift) == 1 and count(Membership) == 1
    assert count(OutboxMessage) == 2  # the welcome and one receipt


def test_the_pending_gift_becomes_the_first_installment_and_lends_its_details(fund):
    donor = make_donor("rae@example.org")
    details = ledger.GiftDetails(1575, 75, "monthly", "Corner Bakery LLC", True, "memory", "Grandpa Joe", {"ref": "x"})
    anchor = ledger.start_gift(donor, fund, details)
    db.session.commit()
    subscription = origin(gift_id=anchor.id, amount_cents=1575)
    later_id, _ = record_installment(subscription, payment("in_ledger_2", 1575, T0 + timedelta(days=31)))
    raised_id, _ = record_installment(subscription, payment("in_ledger_3", 2000, T0 + timedelta(days=62)))
    first_id, _ = record_installment(subscription, payment("in_ledger_1", 1575, T0, first=True))
    db.session.commit()
    first, later, raised = (db.session.get(Gift, gift_id) for gift_id in (first_id, later_id, raised_id))
    assert first.id == anchor.id and first.status == GiftStatus.PAID and first.received_at == T0
    assert count(Gift) == 3
    for gift in (first, later, raised):
        assert (gift.organization, gift.anonymous, gift.tribute_name) == ("Corner Bakery LLC", True, "Grandpa Joe")
        assert gift.attribution == {"ref": "x"}
        assert gift.tax_deductible is False
    # The fee cover belongs to the amount it was added to: kept at $15.75, not at a raised $20.
    assert (first.fee_covered_cents, later.fee_covered_cents, raised.fee_covered_cents) == (75, 75, 0)


def test_a_zero_amount_invoice_records_no_gift(fund):
    gift, new = record_installment(origin(), payment("in_trial", amount=0, first=True))
    db.session.commit()
    assert (gift, new) == (None, False)
    assert count(Gift) == 0 and count(Membership) == 1


def test_a_membership_without_a_donor_or_interval_is_not_known_yet(fund):
    with pytest.raises(memberships.MembershipNotKnown):
        memberships.ensure_membership(origin(email=None), MembershipStatus.ACTIVE)
    with pytest.raises(memberships.MembershipNotKnown):
        memberships.ensure_membership(origin(interval=None), MembershipStatus.ACTIVE)
    customer = make_donor("known@example.org")
    customer.stripe_customer_id = "cus_known"
    db.session.commit()
    membership, created = memberships.ensure_membership(
        origin(email=None, customer_id="cus_known"), MembershipStatus.ACTIVE
    )
    assert created and membership.donor_id == customer.id


def test_an_older_event_never_undoes_a_newer_one(fund):
    apply_subscription(state(3000, T0 + timedelta(days=40), "evt_new", previous=1500))
    apply_subscription(state(1500, T0, "evt_old", status="incomplete"))
    record_failed_payment(origin(at=T0 + timedelta(days=5)), "in_old_failure")
    db.session.commit()
    membership = db.session.scalars(select(Membership)).one()
    assert (membership.amount_cents, membership.status) == (3000, MembershipStatus.ACTIVE)
    # The welcome and the raise to $30 (evt_new): a failure already overtaken tells no one.
    kinds = sorted(db.session.scalars(select(OutboxMessage.kind)))
    assert kinds == ["membership_changed", "membership_welcome"]


def test_a_cancellation_is_final(fund):
    apply_subscription(state(1500, T0 + timedelta(days=90), "evt_end", status="canceled"))
    apply_subscription(state(1500, T0 + timedelta(days=95), "evt_late", status="active"))
    record_installment(origin(at=T0 + timedelta(days=96)), payment("in_after"))
    db.session.commit()
    membership = db.session.scalars(select(Membership)).one()
    assert membership.status == MembershipStatus.CANCELED
    assert membership.canceled_at == T0 + timedelta(days=90)
    assert count(Gift) == 1  # money that arrived is recorded all the same


def test_an_amount_change_is_recorded_once_per_event(fund):
    for _ in range(2):
        apply_subscription(state(2500, T0 + timedelta(days=3), "evt_raise", previous=1500))
    apply_subscription(state(2500, T0 + timedelta(days=4), "evt_other"))  # no previous amount
    db.session.commit()
    (change,) = db.session.scalars(select(MembershipChange)).all()
    assert (change.old_amount_cents, change.new_amount_cents, change.changed_at) == (1500, 2500, T0 + timedelta(days=3))
    assert change.membership.changes == [change]  # the membership's amount history


def test_the_invoice_payment_link_reaches_the_installment_whichever_comes_first(fund):
    installments.link_invoice_payment("in_a", "pi_a")
    installments.link_invoice_payment("in_a", "pi_a")  # a replay
    gift_a_id, _ = record_installment(origin(), payment("in_a", first=True))
    gift_b_id, _ = record_installment(origin(), payment("in_b", paid_at=T0 + timedelta(days=31)))
    installments.link_invoice_payment("in_b", "pi_b")
    db.session.commit()
    gift_a, gift_b = db.session.get(Gift, gift_a_id), db.session.get(Gift, gift_b_id)
    assert (gift_a.stripe_payment_intent_id, gift_b.stripe_payment_intent_id) == ("pi_a", "pi_b")


@pytest.mark.postgresql_only
def test_the_first_invoice_and_its_checkout_at_the_same_moment_make_one_of_each(app, webhook_secret, fund):
    """Eight workers: four deliver the checkout, four the first invoice, all at once."""
    subscription_id = se.unique("sub")
    anchor = ledger.start_gift(
        make_donor("rae@example.org"), fund, ledger.GiftDetails(1500, 0, "monthly", None, False, None, None, {})
    )
    db.session.commit()
    metadata = {"gift_id": str(anchor.id), "fund": fund.slug, "frequency": "monthly"}
    session = se.checkout_session(
        amount_cents=1500, mode="subscription", subscription=subscription_id, metadata=metadata
    )
    invoice = se.invoice(
        subscription=subscription_id,
        paid_at=int(T0.timestamp()),
        billing_reason="subscription_create",
        metadata=metadata,
    )
    payloads = [se.event("checkout.session.completed", session), se.event("invoice.paid", invoice)] * 4
    statuses = [status for status, _outcome in se.post_at_once(app, payloads, webhook_secret)]
    assert statuses == [200] * len(payloads)
    assert count(Membership) == 1 and count(Gift) == 1
    assert db.session.scalars(select(Gift.status).execution_options(populate_existing=True)).one() == GiftStatus.PAID
    assert db.session.scalar(select(func.count()).where(OutboxMessage.kind == "membership_welcome")) == 1
