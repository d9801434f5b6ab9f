"""The worker's side of outgoing webhooks: POST each due delivery to its endpoint, signed; retry
failures with exponential back-off and jitter; park what keeps failing; log every attempt.

One transaction per delivery, as for donor mail: claim the row (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, so two workers never hold the same one), POST while holding it, then record the
attempt and the outcome and COMMIT. A delivery leaves `pending` only in a committed transaction,
so nothing is lost, and once a 2xx is recorded it is never sent again (unless an admin resends
it). The one at-least-once window: a worker that dies after the receiver answered and before
its COMMIT sends it again; the event id in the body lets a receiver spot that.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic, time

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from donations.clock import utcnow
from donations.extensions import claim_next_due, db, work_one_claimed
from donations.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from donations.webhooks.signing import HEADER, header_value

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
ERROR_LIMIT = 500  # characters of an error (or a receiver's answer) kept


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"
    PARKED = "parked"


@dataclass
class DrainReport:
    delivered: int = 0
    retrying: int = 0
    parked: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def total(self) -> int:
        return self.delivered + self.retrying + self.parked


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... at most six hours, each
    between 75% and 125% of that, so receivers coming back up are not hit by every retry at once."""
    wait = base_seconds * 2 ** min(max(attempts - 1, 0), 30) * random.uniform(0.75, 1.25)
    return min(timedelta(seconds=wait), MAX_BACKOFF)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure to deliver: the signed body is never sent anywhere but the URL an
    admin entered."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (https, or http to loopback: endpoints.check_url)
    started = monotonic()
    try:
        with _opener.open(request, timeout=timeout) as response:
            status, error = response.status, None
    except urllib.error.HTTPError as exc:
        answer = exc.read(ERROR_LIMIT).decode("utf-8", "replace").strip()
        status, error = exc.code, f"answered {exc.code} {exc.reason}" + (f": {answer}" if answer else "")
        if 300 <= exc.code < 400:
            error = f"answered {exc.code} (a redirect to {exc.headers.get('Location')}, which webhooks do not follow)"
        exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        status, error = None, f"{type(reason).__name__}: {reason}"
    duration_ms = round((monotonic() - started) * 1000)
    return Answer(status, error[:ERROR_LIMIT] if error else None, duration_ms)


class WebhookWorker:
    def __init__(self, name: str) -> None:
        config = current_app.config
        self.name = name
        self.timeout = float(config["WEBHOOK_TIMEOUT_SECONDS"])
        self.backoff_seconds = float(config["WEBHOOK_BACKOFF_SECONDS"])
        self.max_attempts = int(config["WEBHOOK_MAX_ATTEMPTS"])
        self.user_agent = f"donations-webhooks ({config['NEWSROOM_NAME']})"

    def drain(self, stop: threading.Event | None = None, limit: int | None = None) -> DrainReport:
        """Try every delivery due now once (at most `limit`); failures wait for their next attempt."""
        cutoff = utcnow()
        report = DrainReport()
        while (stop is None or not stop.is_set()) and (limit is None or report.total < limit):
            outcome = self.deliver_next(cutoff)
            if outcome is None:
                break
            report.add(outcome)
        return report

    def deliver_next(self, cutoff: datetime) -> Outcome | None:
        """Claim, send and settle one delivery due by `cutoff`; None when there is none."""
        return work_one_claimed(lambda: self._claim(cutoff), self._deliver)

    def _claim(self, cutoff: datetime) -> WebhookDelivery | None:
        claimed_id = claim_next_due(WebhookDelivery, DeliveryStatus.PENDING, cutoff, self.name)
        if claimed_id is None:
            return None
        return db.session.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.id == claimed_id)
            .options(joinedload(WebhookDelivery.endpoint), joinedload(WebhookDelivery.event))
            .execution_options(populate_existing=True)
        ).scalar_one()

    def _deliver(self, delivery: WebhookDelivery) -> Outcome:
        endpoint, event = delivery.endpoint, delivery.event
        if not endpoint.enabled:
            # Turned off after the event was queued: nothing is sent; resend once it is on again.
            return self._park(delivery, Answer(None, "the endpoint is turned off", 0))
        body = event.body.encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": self.user_agent,
            HEADER: header_value(endpoint.secret, int(time()), body),
            "Donations-Event-Id": event.public_id,
            "Donations-Event-Type": event.type,
        }
        answer = post(endpoint.url, body, headers, self.timeout)
        db.session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=utcnow(),
                status_code=answer.status_code,
                error=answer.error,
                duration_ms=answer.duration_ms,
                worker=self.name,
            )
        )
        delivery.last_status_code = answer.status_code
        if answer.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = utcnow()
            delivery.last_error = None
            log.info("webhook delivery %s (%s) delivered to endpoint %s", delivery.id, event.type, endpoint.id)
            return Outcome.DELIVERED
        if delivery.attempts >= self.max_attempts:
            return self._park(delivery, answer)
        delivery.last_error = answer.error
        delivery.next_attempt_at = utcnow() + backoff(delivery.attempts, self.backoff_seconds)
        log.warning(
            "webhook delivery %s to endpoint %s failed (attempt %s), next try at %s: %s",
            delivery.id,
            endpoint.id,
            delivery.attempts,
            delivery.next_attempt_at.isoformat(),
            answer.error,
        )
        return Outcome.RETRYING

    def _park(self, delivery: WebhookDelivery, answer: Answer) -> Outcome:
        delivery.status = DeliveryStatus.PARKED
        delivery.parked_at = utcnow()
        delivery.last_error = answer.error
        log.error(
            "webhook delivery %s to endpoint %s parked after %s attempts: %s",
            delivery.id,
            delivery.endpoint_id,
            delivery.attempts,
            answer.error,
        )
        return Outcome.PARKED
