"""Faults in what the app depends on.

- PostgreSQL refusing connections (a TCP proxy between the app and the server is cut) in the
  middle of a webhook burst: deliveries answer 5xx with nothing half-written, pages answer 503
  with Retry-After, /healthz says so; when the proxy is restored the app recovers by itself,
  and Stripe's retries (the failed deliveries posted again, and some successful ones twice)
  leave every event applied exactly once.
- Stripe answering 500 or not in time: a bounded wait, the retry page, no pending gift.
- The SMTP server down: the receipt waits in the outbox and goes out once it is back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from donations import create_app
from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.mail.worker import OutboxWorker
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.conftest import TEST_CONFIG
from tests.forms import page_text
from tests.giving.support import gift_form
from tests.http_recorder import Answer, HTTPRecorder, stripe_error
from tests.security.support import all_gifts, browser, csrf_token
from tests.security.tcp_proxy import TcpProxy, free_port

BURST = 30
CUT_AFTER = 10


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with TcpProxy() as forwarder:
        yield forwarder


def app_through(proxy: TcpProxy, database_url: str, **config: object) -> Flask:
    """A second app instance on the same database, reaching it only through the proxy, with the
    configuration's own pooling (connections idle DATABASE_PING_IDLE_SECONDS pinged before use)."""
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    return create_app(
        "testing",
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 3}},
            **config,
        },
    )


@pytest.fixture
def app_via_proxy(database_url: str, proxy: TcpProxy) -> Iterator[Flask]:
    instance = app_through(proxy, database_url)
    yield instance
    with instance.app_context():
        db.engine.dispose()


def stored_and_gifts(payload: dict) -> tuple[StripeEvent | None, int]:
    """The stored event, and how many gifts its checkout session has, as the database has them now."""
    stored = db.session.get(StripeEvent, payload["id"], populate_existing=True)
    session_id = payload["data"]["object"]["id"]
    count = select(func.count()).select_from(Gift).where(Gift.stripe_checkout_session_id == session_id)
    return stored, db.session.scalar(count)


def applied_once(payload: dict) -> bool:
    stored, gifts = stored_and_gifts(payload)
    return stored is not None and stored.applied_at is not None and gifts == 1


def nothing_written(payload: dict) -> bool:
    stored, gifts = stored_and_gifts(payload)
    return stored is None and gifts == 0


@pytest.mark.postgresql_only
def test_database_refusing_connections_during_a_webhook_burst(app_via_proxy, proxy, fund, webhook_secret):
    payloads = [
        se.event(
            "checkout.session.completed", se.checkout_session(amount_cents=1_000 + n, email=f"r{n % 7}@example.org")
        )
        for n in range(BURST)
    ]
    finished = 0
    lock = threading.Lock()

    def deliver(payload: dict) -> int:
        # Only the webhook: it stores and answers. The worker applies later, once the database
        # is back (a worker's apply step meeting the outage waits and tries again).
        nonlocal finished
        body = json.dumps(payload).encode()
        headers = se.signed_headers(body, webhook_secret)
        status = app_via_proxy.test_client().post("/stripe/webhook", data=body, headers=headers).status_code
        with lock:
            finished += 1
            if finished == CUT_AFTER:
                proxy.cut()  # mid-burst: requests in flight lose their connections
        return status

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(deliver, payloads))

    assert set(statuses) <= {200, 503}
    failed = [p for p, status in zip(payloads, statuses, strict=True) if status != 200]
    assert len(failed) >= BURST - CUT_AFTER - 3  # at most the requests in flight got through
    for payload, status in zip(payloads, statuses, strict=True):
        if status == 200:
            assert stored_and_gifts(payload)[0] is not None  # acknowledged: stored, to be applied
        else:
            # A commit whose answer was lost is whole too; anything else left nothing behind.
            assert stored_and_gifts(payload)[0] is not None or nothing_written(payload)

    reader = app_via_proxy.test_client()
    health = reader.get("/healthz")
    assert (health.status_code, health.json["status"]) == (503, "unavailable")
    page = reader.get("/give")
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "nothing was saved or charged" in page_text(page.get_data(as_text=True))
    webhook = se.post_event(reader, failed[0], webhook_secret)
    assert webhook.status_code == 503 and webhook.headers["Retry-After"]

    proxy.restore()
    health = reader.get("/healthz")
    assert (health.status_code, health.json["status"], health.json["database"]) == (200, "ok", "ok")  # no restart

    # Stripe retries what failed (and, as it may, delivers some successful ones again).
    retries = failed + payloads[:5]
    assert [se.post_event(reader, p, webhook_secret).status_code for p in retries] == [200] * len(retries)
    assert all(applied_once(p) for p in payloads)
    assert db.session.scalar(select(func.count()).select_from(StripeEvent)) == BURST
    assert all_gifts() == BURST
    assert db.session.scalar(select(func.sum(Gift.amount_cents))) == sum(1_000 + n for n in range(BURST))
    receipts = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "gift_receipt")
    assert db.session.scalar(receipts) == BURST


@pytest.mark.postgresql_only
def test_connection_lost_after_the_answer_is_ready_still_answers(app_via_proxy, proxy, fund):
    # The page's reads are done and its answer built when the database goes away: closing the
    # session must drop the dead connection, not fail the request rolling back over it.
    cut_once = threading.Event()

    @app_via_proxy.after_request
    def cut_after_the_work(response):
        if not cut_once.is_set():
            cut_once.set()
            proxy.cut()
        return response

    reader = app_via_proxy.test_client()
    assert reader.get("/give").status_code == 200
    assert cut_once.is_set()
    proxy.restore()
    health = reader.get("/healthz")
    assert (health.status_code, health.json["database"]) == (200, "ok")  # the pool let the dead one go


@pytest.mark.postgresql_only
@pytest.mark.parametrize("idle_seconds", [0, 3600])
def test_pooled_connections_dead_after_a_restart_are_replaced(database_url, proxy, idle_seconds):
    # The pool pings only connections idle DATABASE_PING_IDLE_SECONDS or more (a ping on every
    # checkout would be one more round trip per request). Idle ones are replaced before use;
    # one used moments ago fails its request once, and the pool then lets every dead one go.
    instance = app_through(proxy, database_url, DATABASE_PING_IDLE_SECONDS=idle_seconds)
    try:
        reader = instance.test_client()
        assert reader.get("/healthz").status_code == 200  # a pooled connection, through the proxy
        proxy.cut()
        proxy.restore()  # a restart: the pooled connection is dead, the database is back
        first, second = reader.get("/healthz"), reader.get("/healthz")
        if idle_seconds == 0:
            assert first.status_code == 200
        else:
            assert first.status_code in (200, 503)
        assert (second.status_code, second.json["database"]) == (200, "ok")  # no restart of the app
    finally:
        with instance.app_context():
            db.engine.dispose()


@pytest.mark.postgresql_only
def test_webhooks_on_connections_dead_after_a_restart_fail_once_then_are_stored(database_url, proxy, webhook_secret):
    # The webhook stores on the pooled connection's own driver cursor (not through SQLAlchemy's
    # execution): the first dead connection it meets must make the pool let every dead one go,
    # as SQLAlchemy's own execution does, or each would fail a delivery in turn.
    instance = app_through(proxy, database_url, DATABASE_PING_IDLE_SECONDS=3600)
    payloads = [se.event("checkout.session.completed", se.checkout_session(amount_cents=1_500 + n)) for n in range(4)]

    def deliver(payload: dict) -> int:
        body = json.dumps(payload).encode()
        headers = se.signed_headers(body, webhook_secret)
        return instance.test_client().post("/stripe/webhook", data=body, headers=headers).status_code

    try:
        assert deliver(payloads[0]) == 200
        with instance.app_context():  # two connections pooled, both used moments ago (not pinged)
            both = [db.engine.raw_connection(), db.engine.raw_connection()]
            for connection in both:
                connection.close()
        proxy.cut()
        proxy.restore()  # a restart: both pooled connections are dead, the database is back
        first = deliver(payloads[1])
        assert first in (200, 503)  # 503 with nothing stored: Stripe delivers again
        assert deliver(payloads[2]) == 200  # the other dead connection was let go too
        assert deliver(payloads[3]) == 200
        if first == 503:
            assert deliver(payloads[1]) == 200
        stored = db.session.scalars(select(StripeEvent.id).where(StripeEvent.id.in_([p["id"] for p in payloads])))
        assert sorted(stored) == sorted(p["id"] for p in payloads)
    finally:
        with instance.app_context():
            db.engine.dispose()


@pytest.fixture
def stripe_api(app, monkeypatch) -> Iterator[HTTPRecorder]:
    with HTTPRecorder() as api:
        monkeypatch.setitem(app.config, "PAYMENTS_GATEWAY", "stripe")
        monkeypatch.setitem(app.config, "STRIPE_SECRET_KEY", "sk_test_faults")
        monkeypatch.setitem(app.config, "STRIPE_API_BASE", api.url)
        monkeypatch.setitem(app.config, "STRIPE_TIMEOUT_SECONDS", 1)
        yield api


@pytest.mark.parametrize(
    "answer",
    [Answer(status=500, json=stripe_error("An unknown error occurred")), Answer(json={"id": "cs_late"}, delay=4)],
    ids=["500", "slow"],
)
def test_stripe_failing_or_slow_shows_the_retry_page_and_counts_nothing(app, client, fund, stripe_api, answer):
    stripe_api.route("POST", "/v1/checkout/sessions", answer)
    response = client.post("/give", data=gift_form(csrf_token(client)))
    assert response.status_code == 503
    assert "We couldn't reach our payment processor" in page_text(response.get_data(as_text=True))
    # The time-out bounds each try (the slow answer never arrives) and one retry at most.
    tries = stripe_api.requests_to("POST", "/v1/checkout/sessions")
    assert 1 <= len(tries) <= 2
    assert len({t.headers["Idempotency-Key"] for t in tries}) == 1  # a retry can never open two sessions
    statuses = db.session.scalars(select(Gift.status)).all()
    assert statuses == [GiftStatus.FAILED]  # recorded, never pending, never counted


class _Inbox:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


def test_mail_server_down_the_receipt_waits_in_the_outbox(app, fund, webhook_secret, monkeypatch):
    port = free_port()  # nothing listens here yet: the mail server is down
    monkeypatch.setitem(app.config, "SMTP_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setitem(app.config, "RECEIPTS_BACKOFF_SECONDS", 0)
    payload = se.event("checkout.session.completed", se.checkout_session(email="waits@example.org"))
    assert se.post_event(browser(app), payload, webhook_secret).status_code == 200  # the gift does not wait for mail

    assert OutboxWorker().drain().retrying == 1
    message = db.session.scalars(select(OutboxMessage).execution_options(populate_existing=True)).one()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert "Connection" in (message.last_error or "") or "refused" in (message.last_error or "")
    assert db.session.scalars(select(Gift.status)).all() == [GiftStatus.PAID]

    inbox = _Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        assert OutboxWorker().drain().sent == 1
    finally:
        server.stop()
    assert inbox.recipients == ["waits@example.org"]
    message = db.session.scalars(select(OutboxMessage).execution_options(populate_existing=True)).one()
    assert (message.status, message.attempts) == (OutboxStatus.SENT, 2)
