"""The one worker applies a stored Stripe event and delivers the webhook event it caused in the
same turn; /metrics counts the attempt and shows the queue."""

from __future__ import annotations

import json
import re

from donations.operations.worker import Worker
from tests import stripe_events as se
from tests.webhooks.support import Receiver, make_endpoint

AUTH = {"Authorization": "Bearer s3cret-token"}


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_a_worker_turn_applies_then_delivers(app, client, webhook_secret, fund, receiver: Receiver, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-token")
    endpoint = make_endpoint(receiver.url)
    receiver.secret = endpoint.secret
    body = json.dumps(se.event("checkout.session.completed", se.checkout_session(amount_cents=1_200))).encode()
    assert client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, webhook_secret)).status_code == 200
    assert receiver.received == [], "the webhook only stores"
    delivered = 'donations_outgoing_webhook_deliveries_total{outcome="delivered"}'
    before = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    count_before = _metric(before, delivered) if delivered in before else 0.0

    tally = Worker(name="turn", schedules_on=False, mail_on=False).run_once()
    assert (tally.events, tally.webhooks) == (1, 1)
    assert [r.type for r in receiver.received] == ["gift.recorded"]

    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert _metric(text, delivered) == count_before + 1
    assert _metric(text, "donations_outgoing_webhooks_waiting") == 0
    assert _metric(text, "donations_outgoing_webhooks_parked") == 0
