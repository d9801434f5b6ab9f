"""The donor's own statement request, reached by a signed link from the self-service page:
GET shows the years to choose from (no side effect, so mail scanners that follow links send
nothing); POST queues the statement by email."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from donations.extensions import db, unit_of_work
from donations.ledger.models import Donor
from donations.mail import statements
from donations.mail.forms import StatementRequestForm

bp = Blueprint("statements", __name__, url_prefix="/statements")


def masked(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


@bp.route("/<token>", methods=["GET", "POST"])
def request_statement(token: str) -> ResponseReturnValue:
    try:
        donor_id = statements.donor_from_link(token)
    except statements.StatementError as exc:
        return render_template("receipts/statement_link_invalid.html", reason=str(exc)), 404
    years = statements.statement_years(donor_id)
    form = StatementRequestForm()
    form.year.choices = [(year, str(year)) for year in years]
    if form.validate_on_submit():
        with unit_of_work():
            statements.queue_statement(donor_id, form.year.data)
        email = db.session.get_one(Donor, donor_id).email
        return render_template("receipts/statement_requested.html", year=form.year.data, email=masked(email))
    return render_template("receipts/request_statement.html", form=form, years=years), 400 if form.errors else 200
