"""A donor's privacy requests, for administrators: download everything held about them (JSON),
or erase their personal data (the ledger keeps the money, anonymized). Both are audited."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired

from donations.accounts.audit import audit
from donations.accounts.roles import ADMIN, role_required
from donations.extensions import db, unit_of_work
from donations.forms import ButtonForm
from donations.ledger.models import Donor
from donations.privacy import service as privacy

bp = Blueprint("privacy", __name__, url_prefix="/staff/donors")

CONFIRMATION = "ERASE"


class EraseForm(FlaskForm):
    confirm = StringField(f"Type {CONFIRMATION} to confirm", validators=[InputRequired("Type ERASE to confirm.")])


def _donor_or_404(donor_id: int) -> Donor:
    donor = db.session.get(Donor, donor_id)
    if donor is None:
        abort(404)
    return donor


@bp.get("/<row_id:donor_id>/privacy")
@role_required(*ADMIN)
def privacy_page(donor_id: int) -> ResponseReturnValue:
    return render_template(
        "staff/privacy.html", donor=_donor_or_404(donor_id), export_form=ButtonForm(), erase_form=EraseForm()
    )


@bp.post("/<row_id:donor_id>/privacy/export")
@role_required(*ADMIN)
def export(donor_id: int) -> ResponseReturnValue:
    _donor_or_404(donor_id)
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    with unit_of_work():
        data = privacy.export_donor(donor_id)
        audit(
            "donor.privacy_export",
            actor=current_user,
            target_type="donor",
            target_id=data["donor"]["id"],
            remote_addr=request.remote_addr,
        )
    body = json.dumps(data, indent=2, ensure_ascii=False)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="donor-{data["donor"]["id"]}-personal-data.json"'},
    )


@bp.post("/<row_id:donor_id>/privacy/erase")
@role_required(*ADMIN)
def erase(donor_id: int) -> ResponseReturnValue:
    donor = _donor_or_404(donor_id)
    form = EraseForm()
    if not form.validate_on_submit() or form.confirm.data.strip() != CONFIRMATION:
        if not form.errors:
            form.confirm.errors = [f"Type {CONFIRMATION} in capitals to confirm."]
        return render_template("staff/privacy.html", donor=donor, export_form=ButtonForm(), erase_form=form), 400
    try:
        with unit_of_work():
            done = privacy.erase_donor(donor_id)
            audit(
                "donor.erase",
                actor=current_user,
                target_type="donor",
                target_id=done["donor_ids"][0],
                details=done,
                remote_addr=request.remote_addr,
            )
    except privacy.PrivacyError as exc:
        flash(str(exc), "error")
        return redirect(url_for("privacy.privacy_page", donor_id=donor_id))
    flash(f"Donor #{done['donor_ids'][0]}'s personal data was erased; {done['gifts_kept']} gifts kept.", "success")
    return redirect(url_for("privacy.privacy_page", donor_id=done["donor_ids"][0]))
