"""Schedules run once per period however many workers run (a lease in the database), each run
recorded and shown on /healthz and the staff page; `ledger verify` finds what breaks the
ledger's invariants."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import GiftStatus, Reversal
from donations.mail.models import OutboxMessage
from donations.operations import schedules
from donations.operations.models import ScheduleRun
from donations.operations.verify import verify_ledger
from tests.factories import make_donor, make_fund, make_gift
from tests.staff.support import make_staff, sign_in

NOON = datetime(2027, 1, 15, 20, 0, tzinfo=UTC)  # noon in Los Angeles, in January


@pytest.fixture
def only(app, monkeypatch):
    """Turn on just the named jobs."""

    def configure(**jobs: str) -> None:
        monkeypatch.setitem(app.config, "WORKER_SCHEDULES", jobs)

    return configure


class Clock:
    def __init__(self) -> None:
        self.now = NOON

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(schedules, "utcnow", fake)  # leases and the runs' records
    return fake


def runs(job: str | None = None) -> list[ScheduleRun]:
    db.session.expire_all()
    query = select(ScheduleRun).order_by(ScheduleRun.id)
    if job:
        query = query.where(ScheduleRun.job == job)
    return list(db.session.scalars(query))


def test_periods_are_local_days_hours_and_january():
    with_app = datetime(2027, 1, 1, 7, 30, tzinfo=UTC)  # still 31 December in Los Angeles
    assert schedules.period_of("daily", with_app) == "2026-12-31"
    assert schedules.period_of("hourly", with_app) == "2026-12-31T23"
    assert schedules.period_of("january", with_app) is None
    assert schedules.period_of("january", NOON) == "2027"
    with pytest.raises(ValueError, match="unknown schedule period"):
        schedules.period_of("weekly", NOON)


def test_a_job_runs_once_per_period_however_many_workers_look(app, only, clock):
    only(**{"housekeeping": "daily"})
    done: list[list[ScheduleRun]] = []

    def worker(name: str) -> None:
        with app.app_context():
            done.append([run.job for run in schedules.run_due(name)])

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(jobs) for jobs in done) == [0, 0, 0, 1]
    [run] = runs()
    assert (run.job, run.period, run.succeeded) == ("housekeeping", "2027-01-15", True)
    clock.now = NOON + timedelta(hours=3)
    assert schedules.run_due("late") == []  # the same local day
    clock.now = NOON + timedelta(days=1)
    assert [r.job for r in schedules.run_due("tomorrow")] == ["housekeeping"]


def test_a_dead_workers_lease_is_taken_over_and_a_failed_run_retried(app, only, monkeypatch, clock):
    only(**{"housekeeping": "daily"})
    assert schedules.take_lease("housekeeping", "2027-01-15", "dies") is not None  # then it dies
    clock.now = NOON + timedelta(minutes=30)
    assert schedules.run_due("other") == []  # its lease still holds
    clock.now = NOON + schedules.LEASE + timedelta(seconds=1)
    [run] = schedules.run_due("other")
    assert (run.worker, run.succeeded) == ("other", True)

    def broken() -> schedules.JobResult:
        raise RuntimeError("the mail server is down")

    from donations.operations import jobs

    monkeypatch.setitem(jobs.JOBS, "housekeeping", schedules.Job("housekeeping", broken, "x"))
    clock.now = NOON + timedelta(days=1)
    [failed] = schedules.run_due("w")
    assert failed.succeeded is False and "RuntimeError: the mail server is down" in failed.summary
    clock.now += timedelta(minutes=5)
    assert schedules.run_due("w") == []
    clock.now += timedelta(minutes=15)
    [again] = schedules.run_due("w")
    assert again.id == failed.id and again.succeeded is False  # retried, recorded on the same row


def test_annual_statements_are_queued_in_january_for_the_year_before(app, only, monkeypatch, clock):
    only(**{"annual-statements": "january"})
    fund = make_fund("statements")
    make_gift(make_donor("gave@example.org"), fund, 2_000, received_at=datetime(2026, 6, 1, tzinfo=UTC))
    db.session.commit()
    monkeypatch.setattr("donations.operations.jobs.utcnow", lambda: NOON)
    clock.now = NOON - timedelta(days=20)
    assert schedules.run_due("w") == []  # December: not the period
    clock.now = NOON
    [run] = schedules.run_due("w")
    assert run.summary == "queued 1 statements for 2026"
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    clock.now = NOON + timedelta(days=10)
    assert schedules.run_due("w") == []  # once a year


def test_healthz_and_the_staff_page_show_each_jobs_last_run(app, client, only):
    only(**{"housekeeping": "daily", "ledger-verify": "daily"})
    schedules.run_due("w")
    health = client.get("/healthz").json
    assert health["schedules"]["housekeeping"]["succeeded"] is True
    assert health["schedules"]["ledger-verify"]["summary"] == "the ledger keeps every invariant"
    assert health["ledger_violations"] == 0

    sign_in(client, make_staff("viewer"))
    page = client.get("/staff/schedules")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Check the ledger&#39;s invariants" in html and "done: the ledger keeps every invariant" in html


def test_ledger_verify_prints_each_violation_and_exits_non_zero(app):
    fund = make_fund("verify")
    gift = make_gift(make_donor("v@example.org"), fund, 1_000)
    db.session.add(Reversal(gift_id=gift.id, kind="refund", amount_cents=1_500, reversed_at=gift.received_at))
    make_gift(make_donor("yen@example.org"), fund, 500, currency="jpy")
    make_gift(
        make_donor("left@example.org"),
        fund,
        700,
        status=GiftStatus.PENDING,
        stripe_checkout_session_id="cs_test_left",
        created_at=datetime.now(UTC) - timedelta(days=3),
    )
    db.session.commit()
    found = {violation.check for violation in verify_ledger()}
    assert {"reversals-exceed-gift", "foreign-currency-gift", "pending-past-expiry"} <= found

    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"[reversals-exceed-gift] reversals add up to more than the gift (gift={gift.id}" in result.output
    assert "currency=jpy" in result.output and "session=cs_test_left" in result.output


def test_ledger_verify_passes_on_an_exact_ledger(app, client, webhook_secret):
    from tests import stripe_events as se

    make_fund("exact", is_default=True)
    session = se.checkout_session(amount_cents=2_000)
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    result = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "The ledger keeps all" in result.output


def test_ledger_verify_finds_an_installment_without_its_paid_invoice(app, client, webhook_secret):
    import time

    from donations.ledger.models import Membership
    from tests import stripe_events as se

    fund = make_fund("members", is_default=True)
    paid_at = int(time.time()) - 60
    invoice = se.invoice(
        subscription=se.unique("sub"),
        customer=se.unique("cus"),
        amount_cents=1_500,
        paid_at=paid_at,
        period_start=paid_at,
        billing_reason="subscription_create",
        email="member@example.org",
        name="Mia Member",
    )
    assert se.post_event(client, se.event("invoice.paid", invoice), webhook_secret).json["outcome"] == "applied"
    assert verify_ledger() == []

    membership = db.session.scalars(select(Membership)).one()
    make_gift(membership.donor, fund, 1_500, membership_id=membership.id, stripe_invoice_id=se.unique("in"))
    db.session.commit()
    found = {violation.check: violation for violation in verify_ledger()}
    assert set(found) == {"installments-mismatch", "gift-without-event"}  # the extra one has no event either
    violation = found["installments-mismatch"]
    assert (violation.rows["installments"], violation.rows["paid_invoices"]) == (2, 1)
