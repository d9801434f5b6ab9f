"""Staff page: the worker's schedules, each job's last run and the recent ones; and the last
`payments check-stripe` result."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from donations.accounts.roles import READ, role_required
from donations.operations import schedules
from donations.operations.jobs import JOBS
from donations.payments import account_setup

bp = Blueprint("operations", __name__, url_prefix="/staff")


@bp.get("/schedules")
@role_required(*READ)
def schedule_runs() -> ResponseReturnValue:
    from flask import current_app

    return render_template(
        "operations/schedules.html",
        jobs=JOBS,
        settings=current_app.config["WORKER_SCHEDULES"],
        latest={run.job: run for run in schedules.latest_runs()},
        runs=schedules.recent_runs(),
        stripe_check=account_setup.last_check(),
    )
