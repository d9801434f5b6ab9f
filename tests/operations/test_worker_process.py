"""The worker as a process (`flask --app wsgi worker`): killed with SIGKILL in the middle of a
burst it loses and doubles nothing; SIGTERM lets it finish and exit cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus, Reversal
from donations.mail.models import OutboxMessage
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund
from tests.payments import support as me

ROOT = Path(__file__).resolve().parents[2]
GIFTS = 120
REFUNDED = 12


@pytest.fixture
def fund(app):
    return make_fund("burst", is_default=True)


def start_worker(database_url: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "DONATIONS_CONFIG": "testing", "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--no-schedules", "--no-mail"]
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def scalar(query):
    db.session.expire_all()
    value = db.session.scalar(query)
    db.session.rollback()
    return value


def applied() -> int:
    return scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.applied_at.is_not(None)))


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def burst() -> list[dict]:
    """GIFTS paid checkouts, a partial refund of the first REFUNDED, every tenth delivered twice."""
    payloads, intents = [], []
    for n in range(GIFTS):
        intent = se.unique("pi")
        intents.append(intent)
        session = se.checkout_session(amount_cents=1_000 + n, email=f"burst{n}@example.org", payment_intent=intent)
        payloads.append(se.event("checkout.session.completed", session))
    for intent in intents[:REFUNDED]:
        payloads.append(se.event("refund.created", me.refund(amount=100, payment_intent=intent)))
    return [payload for n, payload in enumerate(payloads) for _ in range(2 if n % 10 == 0 else 1)]


def test_a_worker_killed_mid_burst_loses_and_doubles_nothing(app, client, webhook_secret, fund, database_url):
    victim, survivor = start_worker(database_url), start_worker(database_url)
    try:
        payloads = burst()
        killed_at = None
        for n, payload in enumerate(payloads):
            body = json.dumps(payload).encode()
            response = client.post("/stripe/webhook", data=body, headers=se.signed_headers(body, webhook_secret))
            assert response.status_code == 200
            if killed_at is None and n >= len(payloads) // 3 and wait_for(lambda: applied() >= 10, 60):
                victim.send_signal(signal.SIGKILL)  # in the middle of whatever it was applying
                killed_at = applied()
        assert victim.wait(10) == -signal.SIGKILL and killed_at is not None and killed_at < GIFTS + REFUNDED

        distinct = GIFTS + REFUNDED
        assert wait_for(lambda: applied() == distinct, 180), survivor.stderr and "the survivor did not finish"
    finally:
        for process in (victim, survivor):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
    assert survivor.wait(30) == 0  # SIGTERM: it finishes the job in hand and exits cleanly

    assert scalar(select(func.count()).select_from(StripeEvent)) == GIFTS + REFUNDED
    assert scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.applied_at.is_(None))) == 0
    assert scalar(select(func.count()).select_from(Gift)) == GIFTS
    assert scalar(select(func.sum(Gift.amount_cents))) == sum(1_000 + n for n in range(GIFTS))
    assert scalar(select(func.count()).select_from(Reversal)) == REFUNDED
    assert scalar(select(func.sum(Reversal.amount_cents))) == 100 * REFUNDED
    partly = select(func.count()).select_from(Gift).where(Gift.status == GiftStatus.PARTIALLY_REFUNDED)
    assert scalar(partly) == REFUNDED
    # One receipt per gift and one notice per refund, none twice (the ledger writes them with it).
    receipts = scalar(select(func.count()).select_from(OutboxMessage))
    assert receipts == scalar(select(func.count(func.distinct(OutboxMessage.dedupe_key))))
    assert receipts >= GIFTS
