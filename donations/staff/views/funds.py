"""Funds: the list, a new fund, and a fund's settings."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations.accounts.roles import ADMIN, READ, role_required
from donations.extensions import db, unit_of_work
from donations.ledger import funds as fund_ledger
from donations.ledger.models import Fund
from donations.staff import forms, service
from donations.staff.views.console import USER_ERRORS, bp, current_actor, remote_addr


@bp.get("/funds")
@role_required(*READ)
def funds() -> ResponseReturnValue:
    all_funds = fund_ledger.funds_for_choice()
    return render_template("staff/funds.html", funds=all_funds, raised=fund_ledger.raised_by_fund())


def _fund_settings(form: forms.FundForm) -> service.FundSettings:
    return service.FundSettings(
        slug=(form.slug.data or "").strip(),
        name=form.name.data.strip(),
        description=(form.description.data or "").strip(),
        goal_cents=form.goal.cents,
        suggested_amounts=form.suggested_amounts(),
        active=form.active.data,
        is_default=form.is_default.data,
        show_progress=form.show_progress.data,
        default_frequency=form.default_frequency.data or None,
        amount_notes=forms.parse_amount_notes(form.amount_notes.data or ""),
        monthly_prompt=(form.monthly_prompt.data or "").strip(),
        newsletter_offer=form.newsletter_offer.data or "",
        newsletter_wording=" ".join((form.newsletter_wording.data or "").split()),
        sponsor=form.sponsor(),
    )


@bp.route("/funds/new", methods=["GET", "POST"])
@role_required(*ADMIN)
def fund_new() -> ResponseReturnValue:
    form = forms.FundForm()
    error = None
    if form.validate_on_submit():
        try:
            with unit_of_work():
                fund = service.create_fund(_fund_settings(form), current_actor(), remote_addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            flash(f"Fund {fund.name} created: gifts at /give/{fund.slug}.", "success")
            return redirect(url_for("staff.funds"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/fund_form.html", form=form, fund=None, error=error), status


@bp.route("/funds/<row_id:fund_id>", methods=["GET", "POST"])
@role_required(*ADMIN)
def fund_edit(fund_id: int) -> ResponseReturnValue:
    fund = db.session.get(Fund, fund_id)
    if fund is None:
        abort(404, "There is no such fund.")
    if request.method == "GET":
        suggested = fund.suggested_amounts or {}
        form = forms.FundForm(
            data={
                "name": fund.name,
                "slug": fund.slug,
                "description": fund.description,
                "goal": "" if fund.goal_cents is None else f"{fund.goal_cents / 100:.2f}",
                "one_time": suggested.get("one_time", []),
                "monthly": suggested.get("monthly", []),
                "annual": suggested.get("annual", []),
                "active": fund.active,
                "is_default": fund.is_default,
                "show_progress": fund.show_progress,
                "default_frequency": fund.default_frequency or "",
                "amount_notes": forms.amount_notes_text(fund.amount_notes or {}),
                "monthly_prompt": fund.monthly_prompt or "",
                "newsletter_offer": fund.newsletter_offer or "",
                "newsletter_wording": fund.newsletter_wording or "",
                "tax_status": "sponsor" if fund.sponsor_held else "own",
                "sponsor_name": fund.sponsor_name or "",
                "sponsor_ein": fund.sponsor_ein or "",
                "sponsor_receipt_wording": fund.sponsor_receipt_wording or "",
            }
        )
    else:
        form = forms.FundForm()
    error = None
    if form.validate_on_submit():
        try:
            with unit_of_work():
                service.update_fund(fund.id, _fund_settings(form), current_actor(), remote_addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            flash("Fund saved.", "success")
            return redirect(url_for("staff.funds"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/fund_form.html", form=form, fund=fund, error=error), status
