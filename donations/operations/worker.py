"""`flask --app wsgi worker`: the one worker process. It applies stored Stripe events, sends the
outbox's mail, delivers outgoing webhooks and runs the schedules, in turn, until SIGTERM (or
Ctrl-C), which lets the job in hand finish (one event, one message, one delivery, one scheduled
job) before it exits. Run as many as you like, on as many machines: events, mail and webhook
deliveries are claimed with SKIP LOCKED, schedules by lease.

With WORKER_IN_APP (development) the web process runs the same loop in a thread.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from time import monotonic

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from donations.extensions import db
from donations.mail.worker import DrainReport, OutboxWorker, worker_name
from donations.operations import metrics, schedules
from donations.payments import events
from donations.webhooks.delivery import WebhookWorker

log = logging.getLogger(__name__)

EVENT_BATCH = 200  # events applied before the worker looks at mail and schedules again
# Deliveries tried per turn: a receiver that never answers costs its timeout each time, and
# Stripe's events must not wait behind a long queue of those.
WEBHOOK_BATCH = 50


@dataclass
class Tally:
    events: int = 0
    mail: int = 0
    webhooks: int = 0
    schedule_runs: list[str] = field(default_factory=list)


class Worker:
    def __init__(self, name: str | None = None, schedules_on: bool = True, mail_on: bool = True) -> None:
        config = current_app.config
        self.name = name or worker_name()
        self.poll_seconds = float(config["WORKER_POLL_SECONDS"])
        self.schedule_seconds = float(config["WORKER_SCHEDULE_CHECK_SECONDS"])
        self.schedules_on = schedules_on
        self.mail_on = mail_on
        self._next_schedule_check = float("-inf")

    def run_once(self, stop: threading.Event | None = None) -> Tally:
        """One turn: due events (a batch), due mail, due webhook deliveries, due schedules. Raises
        database errors."""
        tally = Tally()
        for _, outcome in events.apply_pending(stop, limit=EVENT_BATCH):
            metrics.EVENTS_APPLIED.labels(outcome=outcome.value).inc()
            tally.events += 1
        if self.mail_on and (stop is None or not stop.is_set()):
            report: DrainReport = OutboxWorker(name=self.name).drain(stop)
            tally.mail = report.total
        if stop is None or not stop.is_set():
            sent = WebhookWorker(self.name).drain(stop, limit=WEBHOOK_BATCH)
            for name in ("delivered", "retrying", "parked"):
                if count := getattr(sent, name):
                    metrics.OUTGOING_WEBHOOKS.labels(outcome=name).inc(count)
            tally.webhooks = sent.total
        if self.schedules_on and monotonic() >= self._next_schedule_check and (stop is None or not stop.is_set()):
            self._next_schedule_check = monotonic() + self.schedule_seconds
            for run in schedules.run_due(self.name, stop):
                metrics.SCHEDULE_RUNS.labels(job=run.job, succeeded=str(bool(run.succeeded)).lower()).inc()
                tally.schedule_runs.append(run.job)
        return tally

    def run_until_stopped(self, stop: threading.Event) -> None:
        log.info("worker %s running", self.name)
        while not stop.is_set():
            try:
                tally = self.run_once(stop)
            except SQLAlchemyError:
                log.exception("worker: database error, trying again in %s seconds", self.poll_seconds)
                db.session.remove()
                tally = Tally()
                stop.wait(self.poll_seconds)
            except Exception:  # never let one bad turn end the worker (or development's thread)
                log.exception("worker: unexpected error, trying again in %s seconds", self.poll_seconds)
                db.session.remove()
                tally = Tally()
                stop.wait(self.poll_seconds)
            db.session.close()
            if not (tally.events or tally.mail or tally.webhooks) and not stop.is_set():
                # An event stored by this process wakes it at once; others are found at the poll.
                events.stored_signal.wait(self.poll_seconds)
                events.stored_signal.clear()
        log.info("worker %s stopped", self.name)


def run_from_cli(schedules_on: bool = True, mail_on: bool = True) -> None:
    """`flask --app wsgi worker`: SIGTERM and SIGINT finish the job in hand, then exit."""
    stop = threading.Event()

    def stop_soon(*_: object) -> None:
        stop.set()
        events.stored_signal.set()  # out of an idle wait at once

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop_soon)
    Worker(schedules_on=schedules_on, mail_on=mail_on).run_until_stopped(stop)


START_WORKER = "donations.start_worker"  # app.extensions: the starter, for requests Flask does not see


def init_app(app: Flask) -> None:
    """With WORKER_IN_APP (development), the first request starts the worker in a thread of the
    web process, so `make run` needs nothing else."""
    if not app.config["WORKER_IN_APP"]:
        return
    from donations.mail.worker import show_mail_log

    show_mail_log()
    lock = threading.Lock()
    started = False

    def start_worker() -> None:
        nonlocal started
        if started:
            return
        with lock:
            if started:
                return
            started = True

        def run() -> None:
            with app.app_context():
                Worker().run_until_stopped(threading.Event())

        threading.Thread(target=run, name="worker", daemon=True).start()

    app.before_request(start_worker)
    app.extensions[START_WORKER] = start_worker
