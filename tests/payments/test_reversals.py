"""Refunds and disputes from Stripe's events: one dated reversal per refund id or dispute
outcome, whatever the order and however often the events arrive."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from donations.clock import from_timestamp
from donations.extensions import db
from donations.ledger.models import Dispute, Gift, GiftStatus, InvoicePaymentLink, Reversal
from donations.mail.models import OutboxMessage
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_donor, make_fund, make_gift
from tests.payments import support as me

GIFT_TIME = 1_767_225_600  # 2026-01-01 00:00 UTC


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


def post(client, secret, payload) -> dict[str, Any]:
    response = se.post_event(client, payload, secret)
    assert response.status_code == 200, response.data
    return response.json


def reversals_of(gift_id: int) -> list[tuple[str, int, str | None]]:
    rows = db.session.execute(
        select(Reversal.kind, Reversal.amount_cents, Reversal.stripe_key)
        .where(Reversal.gift_id == gift_id)
        .order_by(Reversal.stripe_key)
    )
    return [tuple(row) for row in rows]


def net_of(gift_id: int) -> int:
    gift = db.session.get(Gift, gift_id)
    reversed_total = db.session.scalar(
        select(func.coalesce(func.sum(Reversal.amount_cents), 0)).where(Reversal.gift_id == gift_id)
    )
    return gift.amount_cents - reversed_total


def gift_by_intent(payment_intent: str) -> Gift:
    return db.session.scalars(select(Gift).where(Gift.stripe_payment_intent_id == payment_intent)).one()


@dataclass
class Story:
    """The events of several gifts' lives, and what the ledger must say once all have arrived."""

    events: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment intent -> facts


def one_time_gift(story: Story, amount: int, email: str) -> str:
    payment_intent = se.unique("pi")
    session = se.checkout_session(amount_cents=amount, email=email, payment_intent=payment_intent)
    story.events.append(se.event("checkout.session.completed", session, created=GIFT_TIME))
    return payment_intent


def build_story() -> Story:
    story = Story()
    # A: two partial refunds (one told by refund.created and charge.refunded, one by
    # refund.created and refund.updated).
    pi_a = one_time_gift(story, 10_000, "ana@example.org")
    ch_a = se.unique("ch")
    a1 = me.refund(amount=3_000, payment_intent=pi_a, charge=ch_a, created=GIFT_TIME + 86_400)
    a2 = me.refund(amount=2_000, payment_intent=pi_a, charge=ch_a, status="pending", created=GIFT_TIME + 2 * 86_400)
    story.events += [
        se.event("refund.created", a1),
        se.event("charge.refunded", me.charge(amount=10_000, payment_intent=pi_a, charge_id=ch_a, refunds=[a1])),
        se.event("refund.created", a2),
        se.event("refund.updated", dict(a2, status="succeeded")),
    ]
    story.expected[pi_a] = {
        "status": GiftStatus.PARTIALLY_REFUNDED,
        "net": 5_000,
        "reversals": [("refund", 3_000, f"refund:{a1['id']}"), ("refund", 2_000, f"refund:{a2['id']}")],
    }
    # B: a partial refund, and a second one that fails (restored, never deleted).
    pi_b = one_time_gift(story, 5_000, "ben@example.org")
    b1 = me.refund(amount=1_500, payment_intent=pi_b)
    b2 = me.refund(amount=1_000, payment_intent=pi_b, created=GIFT_TIME + 3 * 86_400)
    story.events += [
        se.event("refund.created", b1),
        se.event("refund.created", b2),
        se.event("refund.failed", dict(b2, status="failed")),
    ]
    story.expected[pi_b] = {
        "status": GiftStatus.PARTIALLY_REFUNDED,
        "net": 3_500,
        "reversals": sorted(
            [
                ("refund", 1_500, f"refund:{b1['id']}"),
                ("refund", 1_000, f"refund:{b2['id']}"),
                ("refund_failed", -1_000, f"refund_failed:{b2['id']}"),
            ],
            key=lambda r: r[2],
        ),
    }
    # C: refunded in full; the refund is delivered first in every shuffle (see below).
    pi_c = one_time_gift(story, 2_500, "cy@example.org")
    c1 = me.refund(amount=2_500, payment_intent=pi_c)
    story.events.append(se.event("refund.created", c1))
    story.expected[pi_c] = {
        "status": GiftStatus.REFUNDED,
        "net": 0,
        "reversals": [("refund", 2_500, f"refund:{c1['id']}")],
    }
    # F: a dispute, lost.
    pi_f = one_time_gift(story, 7_500, "fay@example.org")
    lost = me.dispute(amount=7_500, payment_intent=pi_f)
    story.events += [
        se.event("charge.dispute.created", lost),
        se.event("charge.dispute.closed", dict(lost, status="lost"), created=GIFT_TIME + 40 * 86_400),
    ]
    story.expected[pi_f] = {
        "status": GiftStatus.REFUNDED,
        "net": 0,
        "reversals": [("dispute_lost", 7_500, f"dispute_lost:{lost['id']}")],
        "dispute": (lost["id"], "lost"),
    }
    # G: partly refunded, then disputed for the rest, and the dispute won: the status is again
    # what the refund made it.
    pi_g = one_time_gift(story, 6_000, "gus@example.org")
    g1 = me.refund(amount=1_000, payment_intent=pi_g)
    won = me.dispute(amount=5_000, payment_intent=pi_g)
    story.events += [
        se.event("refund.created", g1),
        se.event("charge.dispute.created", won),
        se.event("charge.dispute.closed", dict(won, status="won"), created=GIFT_TIME + 50 * 86_400),
    ]
    story.expected[pi_g] = {
        "status": GiftStatus.PARTIALLY_REFUNDED,
        "net": 5_000,
        "reversals": [("refund", 1_000, f"refund:{g1['id']}")],
        "dispute": (won["id"], "won"),
    }
    return story


def add_installment(story: Story, fund) -> Gift:
    """An installment recorded as the memberships code records it (invoice and payment intent),
    refunded through its payment intent."""
    payment_intent = se.unique("pi")
    gift = make_gift(
        make_donor("ida@example.org"),
        fund,
        1_200,
        frequency="monthly",
        stripe_invoice_id=se.unique("in"),
        stripe_payment_intent_id=payment_intent,
        stripe_subscription_id=se.unique("sub"),
        received_at=from_timestamp(GIFT_TIME),
    )
    refund = me.refund(amount=1_200, payment_intent=payment_intent)
    story.events.append(se.event("refund.created", refund))
    story.expected[payment_intent] = {
        "status": GiftStatus.REFUNDED,
        "net": 0,
        "reversals": [("refund", 1_200, f"refund:{refund['id']}")],
    }
    return gift


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_refunds_and_disputes_with_duplicates_leave_an_exact_ledger(client, webhook_secret, fund, seed):
    story = build_story()
    add_installment(story, fund)
    rng = random.Random(seed)
    deliveries = story.events + rng.sample(story.events, len(story.events) // 2)
    rng.shuffle(deliveries)
    # The full refund of C always comes before C's gift: it must wait, then apply.
    refund_c = next(e for e in story.events if e["type"] == "refund.created" and e["data"]["object"]["amount"] == 2_500)
    deliveries.remove(refund_c)
    outcome = post(client, webhook_secret, refund_c)["outcome"]
    assert outcome == "deferred"
    for payload in deliveries:
        post(client, webhook_secret, payload)

    db.session.expire_all()
    unapplied = db.session.scalars(select(StripeEvent).where(StripeEvent.applied_at.is_(None))).all()
    assert [(e.type, e.error) for e in unapplied] == []
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == len(story.events)
    for payment_intent, expected in story.expected.items():
        gift = gift_by_intent(payment_intent)
        assert (gift.status, net_of(gift.id)) == (expected["status"], expected["net"]), payment_intent
        assert reversals_of(gift.id) == sorted(expected["reversals"], key=lambda r: r[2]), payment_intent
        if "dispute" in expected:
            dispute = db.session.get(Dispute, expected["dispute"][0])
            assert (dispute.gift_id, dispute.status) == (gift.id, expected["dispute"][1])
            assert dispute.closed_at is not None and dispute.evidence_due_by == from_timestamp(1_768_521_599)
    total_given = sum(gift_by_intent(pi).amount_cents for pi in story.expected)
    total_net = sum(net_of(gift_by_intent(pi).id) for pi in story.expected)
    assert (total_given, total_net) == (32_200, 13_500)
    # One confirmation per refund, whatever the duplicates (B's failed one only when it was
    # seen before its failure: mail already sent cannot be unsent).
    confirmed = db.session.scalars(
        select(OutboxMessage.dedupe_key).where(OutboxMessage.kind == "refund_confirmed")
    ).all()
    refunded = {key for e in story.expected.values() for kind, _, key in e["reversals"] if kind == "refund"}
    failed = {
        key.replace("refund_failed:", "refund:")
        for e in story.expected.values()
        for _, _, key in e["reversals"]
        if key.startswith("refund_failed:")
    }
    assert len(confirmed) == len(set(confirmed))
    assert refunded - failed <= {key.removeprefix("refund_confirmed:") for key in confirmed} <= refunded
    assert len(refunded - failed) == 6


def test_refund_dated_by_stripe_and_linked_to_its_gift(client, webhook_secret, fund):
    story = Story()
    payment_intent = one_time_gift(story, 4_000, "dee@example.org")
    post(client, webhook_secret, story.events[0])
    refund = me.refund(amount=1_000, payment_intent=payment_intent, created=GIFT_TIME + 7 * 86_400, reason="duplicate")
    post(client, webhook_secret, se.event("refund.created", refund))
    (reversal,) = db.session.scalars(select(Reversal)).all()
    assert reversal.gift.stripe_payment_intent_id == payment_intent
    assert reversal.reversed_at == from_timestamp(GIFT_TIME + 7 * 86_400)
    assert (reversal.kind, reversal.amount_cents, reversal.reason) == ("refund", 1_000, "duplicate")
    assert reversal.gift.stripe_charge_id == refund["charge"]


def test_refund_before_its_gift_waits_with_its_reason_then_applies(client, webhook_secret, fund):
    story = Story()
    payment_intent = one_time_gift(story, 3_000, "eve@example.org")
    refund_event = se.event("refund.created", me.refund(amount=3_000, payment_intent=payment_intent))
    assert post(client, webhook_secret, refund_event)["outcome"] == "deferred"
    kept = db.session.get(StripeEvent, refund_event["id"])
    assert kept.applied_at is None and payment_intent in kept.error
    assert db.session.scalar(select(func.count()).select_from(Reversal)) == 0

    assert post(client, webhook_secret, story.events[0])["outcome"] == "applied"
    db.session.expire_all()
    kept = db.session.get(StripeEvent, refund_event["id"])
    assert kept.applied_at is not None and kept.error is None
    assert gift_by_intent(payment_intent).status == GiftStatus.REFUNDED


def test_a_waiting_refund_is_not_starved_by_hopeless_older_events(client, webhook_secret, fund):
    # 25 refunds of gifts that will never exist, each already tried many times over.
    for _ in range(25):
        hopeless = se.event("refund.created", me.refund(amount=100, payment_intent=se.unique("pi")))
        assert post(client, webhook_secret, hopeless)["outcome"] == "deferred"
    db.session.execute(StripeEvent.__table__.update().values(attempts=50))
    db.session.commit()

    story = Story()
    payment_intent = one_time_gift(story, 3_000, "ivy@example.org")
    refund_event = se.event("refund.created", me.refund(amount=1_000, payment_intent=payment_intent))
    assert post(client, webhook_secret, refund_event)["outcome"] == "deferred"
    assert post(client, webhook_secret, story.events[0])["outcome"] == "applied"

    db.session.expire_all()
    assert db.session.get(StripeEvent, refund_event["id"]).applied_at is not None
    assert gift_by_intent(payment_intent).status == GiftStatus.PARTIALLY_REFUNDED


def test_refund_of_an_installment_found_through_its_invoice_payment_link(client, webhook_secret, fund):
    invoice_id, payment_intent = se.unique("in"), se.unique("pi")
    gift = make_gift(make_donor(), fund, 2_000, frequency="monthly", stripe_invoice_id=invoice_id)
    db.session.add(InvoicePaymentLink(stripe_invoice_id=invoice_id, stripe_payment_intent_id=payment_intent))
    db.session.commit()
    post(client, webhook_secret, se.event("refund.created", me.refund(amount=500, payment_intent=payment_intent)))
    db.session.expire_all()
    assert [(kind, amount) for kind, amount, _ in reversals_of(gift.id)] == [("refund", 500)]
    assert db.session.get(Gift, gift.id).status == GiftStatus.PARTIALLY_REFUNDED


def test_refunds_never_take_more_than_the_gift(client, webhook_secret, fund):
    story = Story()
    payment_intent = one_time_gift(story, 2_000, "fin@example.org")
    post(client, webhook_secret, story.events[0])
    post(client, webhook_secret, se.event("refund.created", me.refund(amount=1_500, payment_intent=payment_intent)))
    too_much = se.event("refund.created", me.refund(amount=1_000, payment_intent=payment_intent))
    assert post(client, webhook_secret, too_much)["outcome"] == "deferred"
    kept = db.session.get(StripeEvent, too_much["id"])
    assert "beyond its 2000 cents" in kept.error and kept.applied_at is None
    assert net_of(gift_by_intent(payment_intent).id) == 500


def test_refund_that_fails_later_is_restored_by_a_new_entry(client, webhook_secret, fund):
    story = Story()
    payment_intent = one_time_gift(story, 2_000, "gil@example.org")
    post(client, webhook_secret, story.events[0])
    refund = me.refund(amount=2_000, payment_intent=payment_intent, status="pending")
    post(client, webhook_secret, se.event("refund.created", refund))
    assert gift_by_intent(payment_intent).status == GiftStatus.REFUNDED
    post(
        client,
        webhook_secret,
        se.event("refund.updated", dict(refund, status="canceled"), created=GIFT_TIME + 9 * 86_400),
    )
    db.session.expire_all()
    gift = gift_by_intent(payment_intent)
    assert gift.status == GiftStatus.PAID and net_of(gift.id) == 2_000
    kinds = db.session.execute(select(Reversal.kind, Reversal.amount_cents, Reversal.reversed_at).order_by(Reversal.id))
    assert [tuple(r) for r in kinds] == [
        ("refund", 2_000, from_timestamp(refund["created"])),
        ("refund_failed", -2_000, from_timestamp(GIFT_TIME + 9 * 86_400)),
    ]


def test_open_dispute_marks_the_gift_and_keeps_its_deadline(client, webhook_secret, fund):
    story = Story()
    payment_intent = one_time_gift(story, 5_000, "hal@example.org")
    post(client, webhook_secret, story.events[0])
    dispute = me.dispute(amount=5_000, payment_intent=payment_intent, due_by=1_768_000_000)
    post(client, webhook_secret, se.event("charge.dispute.created", dispute))
    gift = gift_by_intent(payment_intent)
    row = db.session.get(Dispute, dispute["id"])
    assert gift.status == GiftStatus.DISPUTED
    assert (row.gift_id, row.amount_cents, row.status) == (gift.id, 5_000, "needs_response")
    assert row.evidence_due_by == from_timestamp(1_768_000_000) and row.closed_at is None
    assert db.session.scalar(select(func.count()).select_from(Reversal)) == 0


@pytest.mark.postgresql_only
def test_refunds_of_one_gift_from_eight_workers_at_once_never_exceed_it(app, client, webhook_secret, fund):
    story = Story()
    payment_intent = one_time_gift(story, 5_000, "ivy@example.org")
    post(client, webhook_secret, story.events[0])
    payloads = [se.event("refund.created", me.refund(amount=1_000, payment_intent=payment_intent)) for _ in range(8)]
    outcomes = [outcome or str(status) for status, outcome in se.post_at_once(app, payloads, webhook_secret)]
    assert sorted(outcomes) == ["applied"] * 5 + ["deferred"] * 3
    gift = gift_by_intent(payment_intent)
    assert (gift.status, net_of(gift.id)) == (GiftStatus.REFUNDED, 0)
    assert len(reversals_of(gift.id)) == 5
