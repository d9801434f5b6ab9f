"""Staff pages for the payment pipeline: Stripe events that failed to apply (with a retry
button for finance and admins) and open disputes with their evidence deadlines."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from donations.accounts.roles import MONEY, READ, role_required
from donations.extensions import unit_of_work
from donations.forms import ButtonForm
from donations.ledger.reversals import open_disputes
from donations.payments import sync
from donations.payments.events import Outcome

bp = Blueprint("payments_staff", __name__, url_prefix="/staff")


@bp.get("/events")
@role_required(*READ)
def failed_events() -> ResponseReturnValue:
    return render_template(
        "payments/failed_events.html",
        events=sync.failing_events(),
        health=sync.sync_health(),
        can_retry=current_user.role in MONEY,
        form=ButtonForm(),
    )


@bp.post("/events/<event_id>/retry")
@role_required(*MONEY)
def retry_event(event_id: str) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        with unit_of_work():
            outcome = sync.retry_failed_event(event_id, current_user, remote_addr=request.remote_addr)
    except IntegrityError:
        flash(f"Event {event_id} is being applied by another worker; try again in a moment.", "error")
        return redirect(url_for(".failed_events"))
    if outcome is None:
        flash(f"Event {event_id} is not waiting to be applied.", "error")
    elif outcome is Outcome.DEFERRED:
        flash(f"Event {event_id} still cannot be applied; its error is updated below.", "error")
    else:
        flash(f"Event {event_id} applied.", "success")
    return redirect(url_for(".failed_events"))


@bp.get("/disputes")
@role_required(*READ)
def disputes() -> ResponseReturnValue:
    return render_template("payments/disputes.html", disputes=open_disputes())


# Its routes are on this blueprint.
from donations.payments import gift_source_views  # noqa: E402, F401
from donations.payments.history import views as _history_views  # noqa: E402, F401
