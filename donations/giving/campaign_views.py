"""/staff/campaigns (any staff role): the campaigns report for local dates, on screen; its CSV
and XLSX files for finance and admins, each download audited (`campaigns.export`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms import DateField
from wtforms.validators import Optional

from donations.accounts.audit import audit
from donations.accounts.roles import MONEY, READ, role_required
from donations.clock import local_date, utcnow
from donations.extensions import unit_of_work
from donations.forms import GetForm, supported_date
from donations.giving import campaigns
from donations.grants import downloads

bp = Blueprint("campaigns_staff", __name__)

DEFAULT_DAYS = 30


class CampaignDatesForm(GetForm):
    first = DateField("From", validators=[Optional(), supported_date])
    last = DateField("To", validators=[Optional(), supported_date])


def _dates() -> tuple[CampaignDatesForm, campaigns.Campaigns | None, str | None]:
    form = CampaignDatesForm(request.args)
    if not form.validate():
        return form, None, None
    today = local_date(utcnow())
    last = form.last.data or today
    first = form.first.data or last - timedelta(days=DEFAULT_DAYS - 1)
    try:
        return form, campaigns.campaigns(first, last), None
    except campaigns.CampaignsError as exc:
        return form, None, str(exc)


@bp.get("/staff/campaigns")
@role_required(*READ)
def report() -> ResponseReturnValue:
    form, found, error = _dates()
    arguments: dict[str, Any] = {}
    if found is not None:
        arguments = {"first": found.first.isoformat(), "last": found.last.isoformat()}
    page = render_template(
        "staff/campaigns.html",
        form=form,
        found=found,
        error=error,
        in_words=campaigns.in_words,
        views_in_words=campaigns.views_in_words,
        export_urls={fmt: url_for("campaigns_staff.export", **arguments, format=fmt) for fmt in downloads.FORMATS},
    )
    return page, 200 if found is not None else 400


@bp.get("/staff/campaigns/export")
@role_required(*MONEY)
def export() -> ResponseReturnValue:
    form, found, error = _dates()
    if found is None:
        abort(400, error or " ".join(message for errors in form.errors.values() for message in errors))
    fmt = request.args.get("format", "csv")
    try:
        download = downloads.download(campaigns.report(found), fmt)
    except downloads.ExportError as exc:
        abort(400, str(exc))
    dates = {"first": found.first.isoformat(), "last": found.last.isoformat()}
    with unit_of_work():
        audit(
            "campaigns.export",
            actor=current_user._get_current_object(),
            target_type="export",
            details={"list": "campaigns", "format": fmt, **dates},
            remote_addr=request.remote_addr,
        )
    return downloads.response(download)
