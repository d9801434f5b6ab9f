"""GET /healthz: is the database answering? And is Stripe's event stream being kept up with?"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from donations.extensions import db
from donations.payments.sync import sync_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        db.session.execute(text("SELECT 1"))
        stripe = sync_health()
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
    )
