"""`payments sync` against a local server serving Stripe's Events list, paged with
has_more/starting_after: webhooks that never arrived are recovered, and a second run changes
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus, Reversal
from donations.payments.models import StripeEvent
from donations.payments.sync import run_sync
from tests import stripe_events as se
from tests.factories import make_fund
from tests.http_recorder import Answer, HTTPRecorder, RecordedRequest
from tests.payments import support as me

EVENTS = "/v1/events"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
BASE_TIME = int(SINCE.timestamp()) + 3_600


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@pytest.fixture
def stripe_api(app, monkeypatch) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_sync")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        yield api


def serve_events(api: HTTPRecorder, events: list[dict]) -> None:
    """Stripe's Events list: newest first, `limit` per page, continuing after `starting_after`."""
    newest_first = sorted(events, key=lambda e: (e["created"], e["id"]), reverse=True)

    def answer(request: RecordedRequest) -> Answer:
        since = int(request.query["created[gte]"])
        listed = [e for e in newest_first if e["created"] >= since]
        if "starting_after" in request.query:
            ids = [e["id"] for e in listed]
            listed = listed[ids.index(request.query["starting_after"]) + 1 :]
        limit = int(request.query["limit"])
        return Answer(json=me.page(listed[:limit], has_more=len(listed) > limit, url=EVENTS))

    api.route("GET", EVENTS, answer)


def history() -> tuple[list[dict], dict[str, str]]:
    """Seven events: three gifts, two refunds, a dispute opened and lost."""
    events, intents = [], {}
    for n, (name, amount) in enumerate([("ann", 4_000), ("bo", 2_500), ("cat", 9_000)]):
        intents[name] = se.unique("pi")
        session = se.checkout_session(amount_cents=amount, email=f"{name}@example.org", payment_intent=intents[name])
        events.append(se.event("checkout.session.completed", session, created=BASE_TIME + n))
    events.append(
        se.event("refund.created", me.refund(amount=1_000, payment_intent=intents["ann"]), created=BASE_TIME + 10)
    )
    events.append(
        se.event("refund.created", me.refund(amount=2_500, payment_intent=intents["bo"]), created=BASE_TIME + 11)
    )
    dispute = me.dispute(amount=9_000, payment_intent=intents["cat"])
    events.append(se.event("charge.dispute.created", dispute, created=BASE_TIME + 12))
    events.append(se.event("charge.dispute.closed", dict(dispute, status="lost"), created=BASE_TIME + 13))
    return events, intents


def ledger_snapshot() -> dict:
    db.session.expire_all()
    return {
        "gifts": db.session.execute(select(Gift.id, Gift.status, Gift.amount_cents).order_by(Gift.id)).all(),
        "reversals": db.session.execute(
            select(Reversal.id, Reversal.kind, Reversal.amount_cents, Reversal.stripe_key).order_by(Reversal.id)
        ).all(),
        "events": db.session.execute(
            select(StripeEvent.id, StripeEvent.applied_at, StripeEvent.attempts, StripeEvent.received_via).order_by(
                StripeEvent.id
            )
        ).all(),
    }


def test_sync_applies_only_the_missing_events_and_a_second_run_changes_nothing(
    client, webhook_secret, fund, stripe_api
):
    events, intents = history()
    serve_events(stripe_api, events)
    # Webhooks delivered some: ann's gift and the dispute's close (which waits for cat's gift),
    # bo's refund (waits for bo's gift).
    delivered = [events[0], events[6], events[4]]
    for payload in delivered:
        assert se.post_event(client, payload, webhook_secret).status_code == 200
    before = {row.id: row for row in ledger_snapshot()["events"]}
    assert before[events[0]["id"]].applied_at is not None
    assert before[events[4]["id"]].applied_at is None and before[events[6]["id"]].applied_at is None

    run = run_sync(SINCE, page_size=3)

    assert (run.succeeded, run.error, run.events_seen) == (True, None, 7)
    assert run.events_applied == 6  # four never delivered, and the two kept waiting
    pages = stripe_api.requests_to("GET", EVENTS)
    assert [r.query.get("starting_after") for r in pages] == [None, _nth_newest(events, 2), _nth_newest(events, 5)]
    assert all(r.query["created[gte]"] == str(int(SINCE.timestamp())) and r.query["limit"] == "3" for r in pages)
    after = ledger_snapshot()
    rows = {row.id: row for row in after["events"]}
    assert all(row.applied_at is not None for row in rows.values())
    # The event applied by its webhook was not applied again; the missing ones came by sync.
    assert rows[events[0]["id"]] == before[events[0]["id"]]
    assert {e["id"] for e in events if rows[e["id"]].received_via == "sync"} == {e["id"] for e in events} - {
        p["id"] for p in delivered
    }
    statuses = {
        name: db.session.scalars(select(Gift.status).where(Gift.stripe_payment_intent_id == pi)).one()
        for name, pi in intents.items()
    }
    assert statuses == {"ann": GiftStatus.PARTIALLY_REFUNDED, "bo": GiftStatus.REFUNDED, "cat": GiftStatus.REFUNDED}
    assert sorted(r.amount_cents for r in after["reversals"]) == [1_000, 2_500, 9_000]

    second = run_sync(SINCE, page_size=3)
    assert (second.succeeded, second.events_seen, second.events_applied) == (True, 7, 0)
    assert ledger_snapshot() == after


def _nth_newest(events: list[dict], n: int) -> str:
    return sorted(events, key=lambda e: (e["created"], e["id"]), reverse=True)[n]["id"]
