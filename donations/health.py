"""GET /healthz: is the database answering? Is Stripe's event stream being kept up with, are the
worker's schedules running, and does the ledger keep its invariants?"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from donations.extensions import db
from donations.operations.schedules import latest_runs
from donations.payments.account_setup import last_check
from donations.payments.sync import sync_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        db.session.execute(text("SELECT 1"))
        stripe = sync_health()
        runs = latest_runs()
        setup_check = last_check()
    except SQLAlchemyError:
        db.session.rollback()
        response = jsonify(status="unavailable", database="unreachable")
        response.status_code = 503
        response.headers["Retry-After"] = "30"
        return response
    # Reported, not failing the check: a stale sync or a stuck event needs staff, not a restart.
    return jsonify(
        status="ok",
        database="ok",
        last_successful_sync=stripe.last_success_at.isoformat() if stripe.last_success_at else None,
        events_failing_to_apply=stripe.failing_events,
        events_waiting=stripe.waiting_events,
        oldest_event_waiting_since=stripe.oldest_waiting_at.isoformat() if stripe.oldest_waiting_at else None,
        schedules={
            run.job: {
                "period": run.period,
                "started_at": run.started_at.isoformat(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "succeeded": run.succeeded,
                "summary": run.summary,
            }
            for run in runs
        },
        # `payments check-stripe`'s last run: does the account have what the app needs?
        stripe_setup_check=(
            {
                "checked_at": setup_check.checked_at.isoformat(),
                "ok": not setup_check.problems,
                "problems": setup_check.problems,
            }
            if setup_check
            else None
        ),
        ledger_violations=next((run.problems for run in runs if run.job == "ledger-verify"), None),
    )
