"""Prometheus metrics (`prometheus-client`) at GET /metrics, answered only with
`Authorization: Bearer <METRICS_TOKEN>` (404 when no token is set).

Counters (webhook deliveries, events applied, schedule runs, requests) live in each process;
with several gunicorn workers set PROMETHEUS_MULTIPROC_DIR and they are added up across them.
What the database knows (events waiting and the oldest one's age, mail waiting and parked,
checkouts by status, blocked attempts, the last schedule runs, `ledger verify`'s violations)
is read at each scrape, so every process answers the same.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from donations.clock import utcnow
from donations.extensions import db

bp = Blueprint("metrics", __name__)

WEBHOOK_DELIVERIES = Counter("donations_webhook_deliveries_total", "Stripe webhook deliveries by outcome", ["outcome"])
OUTGOING_WEBHOOKS = Counter(
    "donations_outgoing_webhook_deliveries_total",
    "Outgoing webhook delivery attempts by this worker, by outcome (delivered, retrying, parked)",
    ["outcome"],
)
EVENTS_APPLIED = Counter("donations_events_applied_total", "Stored events the worker applied, by outcome", ["outcome"])
SCHEDULE_RUNS = Counter("donations_schedule_runs_total", "Scheduled jobs run by this worker", ["job", "succeeded"])
REQUEST_SECONDS = Histogram(
    "donations_request_duration_seconds",
    "Time to answer a request, by route",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time (in the scraping request's app context)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from donations.ledger.models import Gift
        from donations.mail.models import OutboxMessage, OutboxStatus
        from donations.operations.schedules import latest_runs
        from donations.payments.models import StripeEvent
        from donations.protection.card_testing import BlockedAttempt
        from donations.webhooks.models import DeliveryStatus, WebhookDelivery

        now = utcnow()
        waiting, oldest = db.session.execute(
            select(func.count(), func.min(StripeEvent.received_at)).where(StripeEvent.applied_at.is_(None))
        ).one()
        yield _gauge("donations_events_waiting", "Stored events not applied yet", waiting)
        yield _gauge(
            "donations_events_oldest_waiting_seconds",
            "Age of the oldest stored event not applied yet",
            (now - oldest).total_seconds() if oldest else 0,
        )
        mail = dict(
            db.session.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.status.in_((OutboxStatus.PENDING, OutboxStatus.PARKED)))
                .group_by(OutboxMessage.status)
            ).all()
        )
        yield _gauge("donations_mail_waiting", "Outbox messages waiting to be sent", mail.get(OutboxStatus.PENDING, 0))
        yield _gauge("donations_mail_parked", "Outbox messages parked for staff", mail.get(OutboxStatus.PARKED, 0))
        hooks = dict(
            db.session.execute(
                select(WebhookDelivery.status, func.count())
                .where(WebhookDelivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.PARKED)))
                .group_by(WebhookDelivery.status)
            ).all()
        )
        yield _gauge(
            "donations_outgoing_webhooks_waiting",
            "Outgoing webhook deliveries waiting to be sent",
            hooks.get(DeliveryStatus.PENDING, 0),
        )
        yield _gauge(
            "donations_outgoing_webhooks_parked",
            "Outgoing webhook deliveries given up (parked) for an admin",
            hooks.get(DeliveryStatus.PARKED, 0),
        )
        checkouts = GaugeMetricFamily(
            "donations_checkouts", "Checkouts opened, by what became of them", labels=["status"]
        )
        for status, count in db.session.execute(select(Gift.status, func.count()).group_by(Gift.status)):
            checkouts.add_metric([str(status)], count)
        yield checkouts
        blocked = GaugeMetricFamily(
            "donations_blocked_attempts", "Attempts refused by the card-testing defences", labels=["reason"]
        )
        for reason, count in db.session.execute(
            select(BlockedAttempt.reason, func.sum(BlockedAttempt.count)).group_by(BlockedAttempt.reason)
        ):
            blocked.add_metric([reason], count or 0)
        yield blocked
        last = GaugeMetricFamily(
            "donations_schedule_last_run_timestamp_seconds",
            "When each job's last run finished",
            labels=["job", "succeeded"],
        )
        violations = None
        for run in latest_runs():
            if run.finished_at is not None:
                last.add_metric([run.job, str(bool(run.succeeded)).lower()], run.finished_at.timestamp())
            if run.job == "ledger-verify" and run.problems is not None:
                violations = run.problems
        yield last
        if violations is not None:
            yield _gauge("donations_ledger_violations", "Violations found by the last ledger verify", violations)
        db.session.rollback()


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))


def _registry() -> Iterable[CollectorRegistry]:
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        yield registry
    else:
        yield REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    yield database


@bp.get("/metrics")
def metrics() -> Response:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response("Unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    body = b"".join(generate_latest(registry) for registry in _registry())
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
