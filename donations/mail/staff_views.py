"""Staff pages for donor mail: the outbox (parked messages, with resend for finance and admins)
and a donor's printable annual statement."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from donations.accounts.roles import MONEY, READ, role_required
from donations.extensions import MAX_ROW_ID, db, unit_of_work
from donations.forms import ButtonForm
from donations.ledger.models import Donor
from donations.mail import outbox as outbox_service
from donations.mail import statements
from donations.mail.render import statement_values

bp = Blueprint("receipts_staff", __name__, url_prefix="/staff")


def _check_form() -> None:
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")


@bp.get("/outbox")
@role_required(*MONEY)
def outbox() -> ResponseReturnValue:
    return render_template(
        "receipts/outbox.html",
        counts=outbox_service.status_counts(),
        parked=outbox_service.parked_messages(),
        retrying=outbox_service.retrying_messages(),
        form=ButtonForm(),
    )


@bp.post("/outbox/<row_id:message_id>/resend")
@role_required(*MONEY)
def resend(message_id: int) -> ResponseReturnValue:
    _check_form()
    try:
        with unit_of_work():
            outbox_service.resend(message_id, actor=current_user, remote_addr=request.remote_addr)
    except outbox_service.MessageNotFound:
        abort(404)
    except outbox_service.OutboxError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for(".outbox"), 303)
    flash(f"Message {message_id} is queued again; the worker sends it within moments.", "success")
    return redirect(url_for(".outbox"), 303)


@bp.get("/donors/<row_id:donor_id>/statement")
@role_required(*READ)
def statement_years(donor_id: int) -> ResponseReturnValue:
    donor = db.session.get(Donor, donor_id)
    if donor is None:
        abort(404)
    return render_template("receipts/statement_years.html", donor=donor, years=statements.statement_years(donor_id))


# A year is no row id, but the same bound keeps a huge number from the URL off the database's
# integer; a year the statement cannot cover is a 404 from the view.
@bp.get(f"/donors/<row_id:donor_id>/statement/<int(max={MAX_ROW_ID}):year>")
@role_required(*READ)
def statement(donor_id: int, year: int) -> ResponseReturnValue:
    try:
        found = statements.statement_for(donor_id, year)
    except statements.StatementError:
        abort(404)
    return render_template(
        "receipts/statement.html",
        can_email=current_user.role in MONEY,
        form=ButtonForm(),
        **statement_values(found),
    )


@bp.post(f"/donors/<row_id:donor_id>/statement/<int(max={MAX_ROW_ID}):year>/email")
@role_required(*MONEY)
def email_statement(donor_id: int, year: int) -> ResponseReturnValue:
    _check_form()
    try:
        with unit_of_work():
            message = statements.queue_statement(donor_id, year, actor=current_user, remote_addr=request.remote_addr)
    except statements.StatementError:
        abort(404)
    if message is None:
        flash(f"The {year} statement was already queued for this donor today.", "info")
    else:
        flash(f"The {year} statement is queued to be emailed to the donor.", "success")
    return redirect(url_for(".statement", donor_id=donor_id, year=year), 303)
