"""The outbox worker: sends due messages, retries failures with exponential backoff, parks what
keeps failing, and never sends a message twice, however many workers run.

One transaction per message:
1. Claim: `UPDATE outbox_messages SET attempts = attempts + 1, claimed_by = :me WHERE id =
   (SELECT id ... WHERE status = 'pending' AND next_attempt_at <= :cutoff ORDER BY
   next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id`. The row stays locked until
   the transaction ends, so another worker skips it (PostgreSQL) or waits for SQLite's single
   writer lock and then finds it no longer pending.
2. Build the message and hand it to the SMTP server, still holding the lock.
3. In the same transaction mark it sent (or record the error and the next attempt, or park
   it), and COMMIT.

The only at-least-once window: if the worker dies (or loses its database connection) after the
SMTP server accepted the message and before the COMMIT, the transaction rolls back, the message
is pending again and the next worker sends it a second time. Both copies carry the same
Message-ID, so mail clients can recognise the duplicate. Nothing is ever lost: a message leaves
`pending` only in a committed transaction that records what happened to it.
"""

from __future__ import annotations

import enum
import logging
import os
import smtplib
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from donations.clock import utcnow
from donations.extensions import claim_next_due, db, work_one_claimed
from donations.mail.mailer import MailConfigError, PermanentDeliveryError, Transport, transport_for
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.mail.render import build_email

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)
ERROR_LIMIT = 2000  # characters of an error kept on the row


class Outcome(enum.StrEnum):
    SENT = "sent"
    RETRYING = "retrying"
    PARKED = "parked"


@dataclass
class DrainReport:
    sent: int = 0
    retrying: int = 0
    parked: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def total(self) -> int:
        return self.sent + self.retrying + self.parked


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """Wait after the `attempts`-th failure: base, 2 x base, 4 x base, ... at most six hours."""
    return min(timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


class OutboxWorker:
    def __init__(self, transport: Transport | None = None, name: str | None = None) -> None:
        config = current_app.config
        self.transport = transport or transport_for(current_app)
        self.name = name or worker_name()
        self.backoff_seconds = float(config["RECEIPTS_BACKOFF_SECONDS"])
        self.max_attempts = int(config["RECEIPTS_MAX_ATTEMPTS"])

    def drain(self, stop: threading.Event | None = None) -> DrainReport:
        """Try every message due now once; messages that fail wait for their next attempt."""
        cutoff = utcnow()
        report = DrainReport()
        try:
            while stop is None or not stop.is_set():
                outcome = self.send_next(cutoff)
                if outcome is None:
                    break
                report.add(outcome)
        finally:
            self.transport.close()
        return report

    def send_next(self, cutoff: datetime) -> Outcome | None:
        """Claim, send and settle one message due by `cutoff`; None when there is none."""
        return work_one_claimed(lambda: self._claim(cutoff), self._deliver)

    def _claim(self, cutoff: datetime) -> OutboxMessage | None:
        claimed_id = claim_next_due(OutboxMessage, OutboxStatus.PENDING, cutoff, self.name)
        if claimed_id is None:
            return None
        return db.session.execute(
            select(OutboxMessage).where(OutboxMessage.id == claimed_id).execution_options(populate_existing=True)
        ).scalar_one()

    def _deliver(self, message: OutboxMessage) -> Outcome:
        try:
            mail = build_email(message)
        except SQLAlchemyError:
            raise  # the database, not the message: roll back and try again later
        except Exception as exc:  # missing row, bad context, template bug: parked, never a stalled queue
            log.exception("outbox message %s (%s) could not be built", message.id, message.kind)
            return self._park(message, f"could not build: {type(exc).__name__}: {exc}")
        message.message_id = mail["Message-ID"]
        try:
            self.transport.send(mail)
        except PermanentDeliveryError as exc:
            return self._park(message, str(exc))
        except (smtplib.SMTPException, OSError, MailConfigError) as exc:
            return self._retry_or_park(message, f"{type(exc).__name__}: {exc}")
        message.status = OutboxStatus.SENT
        message.sent_at = utcnow()
        message.last_error = None
        # The row's id and kind find the message; the address stays out of the logs.
        log.info("sent outbox message %s (%s)", message.id, message.kind)
        return Outcome.SENT

    def _retry_or_park(self, message: OutboxMessage, error: str) -> Outcome:
        if message.attempts >= self.max_attempts:
            return self._park(message, error)
        message.last_error = error[:ERROR_LIMIT]
        message.next_attempt_at = utcnow() + backoff(message.attempts, self.backoff_seconds)
        log.warning(
            "outbox message %s failed (attempt %s), next try at %s: %s",
            message.id,
            message.attempts,
            message.next_attempt_at.isoformat(),
            error,
        )
        return Outcome.RETRYING

    def _park(self, message: OutboxMessage, error: str) -> Outcome:
        message.status = OutboxStatus.PARKED
        message.parked_at = utcnow()
        message.last_error = error[:ERROR_LIMIT]
        log.error("outbox message %s parked after %s attempts: %s", message.id, message.attempts, error)
        return Outcome.PARKED


def run_until_stopped(stop: threading.Event, poll_seconds: float) -> None:
    """Drain, then wait for new mail; a database outage is waited out, not fatal."""
    worker = OutboxWorker()
    while not stop.is_set():
        try:
            report = worker.drain(stop)
        except SQLAlchemyError:
            log.exception("outbox worker: database error, trying again in %s seconds", poll_seconds)
            db.session.remove()
            report = DrainReport()
        db.session.close()
        if report.total == 0:
            stop.wait(poll_seconds)


def show_mail_log() -> None:
    """The development server configures no logging: print the mail log (links included)."""
    logger = logging.getLogger("donations.mail")
    logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
