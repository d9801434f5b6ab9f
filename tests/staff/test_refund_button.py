"""The gift page offers the refund form exactly when the refund service would accept a refund,
and says how much is left to refund: both ask payments.refunds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Dispute, GiftSource, GiftStatus, Reversal
from donations.payments import refunds
from donations.payments.models import RefundRequest
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import page_text
from tests.staff.support import make_staff, sign_in

NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
REFUND_BUTTON = "Refund through Stripe"


@pytest.fixture
def finance(client):
    user = make_staff("finance")
    sign_in(client, user)
    return user


def stripe_gift(amount_cents: int = 10_000, **kwargs):
    return make_gift(
        make_donor(), make_fund(), amount_cents, received_at=NOW, stripe_payment_intent_id="pi_test_button", **kwargs
    )


def reverse(gift, amount_cents: int, key: str) -> None:
    db.session.add(Reversal(gift_id=gift.id, kind="refund", amount_cents=amount_cents, reversed_at=NOW, stripe_key=key))
    db.session.commit()


def open_dispute(gift) -> None:
    db.session.add(
        Dispute(id="du_button", gift_id=gift.id, amount_cents=gift.amount_cents, status="needs_response", opened_at=NOW)
    )
    db.session.commit()


def paid():
    return stripe_gift()


def partly_refunded():
    gift = stripe_gift(status=GiftStatus.PARTIALLY_REFUNDED)
    reverse(gift, 2_500, "refund:re_part")
    return gift


def disputed():
    gift = stripe_gift(status=GiftStatus.DISPUTED)
    open_dispute(gift)
    return gift


def paid_with_a_dispute_just_opened():
    gift = stripe_gift()
    open_dispute(gift)
    return gift


def refunded_in_full():
    gift = stripe_gift(status=GiftStatus.REFUNDED)
    reverse(gift, 10_000, "refund:re_all")
    return gift


def check():
    return make_gift(make_donor(), make_fund(), 10_000, received_at=NOW, source=GiftSource.CHECK, check_number="12")


def stripe_without_ids():
    return make_gift(make_donor(), make_fund(), 10_000, received_at=NOW)


@pytest.mark.parametrize(
    ("make", "offered"),
    [
        (paid, True),
        (partly_refunded, True),
        (disputed, False),
        (paid_with_a_dispute_just_opened, False),
        (refunded_in_full, False),
        (check, False),
        (stripe_without_ids, False),
    ],
)
def test_the_refund_form_is_offered_exactly_when_the_service_would_refund(client, finance, make, offered):
    gift = make()
    page = page_text(client.get(f"/staff/gifts/{gift.id}").get_data(as_text=True))
    assert (REFUND_BUTTON in page) is offered
    assert refunds.refundable(gift) is offered
    if not offered:
        reason = refunds.refusal(gift)
        with pytest.raises(refunds.RefundError) as refused:
            refunds.request_refund(gift.id, None, "Asked for it", actor="test")
        assert str(refused.value) == reason
        assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0


def test_the_form_says_how_much_is_left_to_refund(client, finance):
    gift = partly_refunded()
    assert refunds.refundable_cents(gift) == 7_500
    page = page_text(client.get(f"/staff/gifts/{gift.id}").get_data(as_text=True))
    assert "Up to $75.00." in page
    assert "Reversed $25.00; net $75.00" in page
