"""Donors: search, a donor's page, and merging a duplicate into it."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations.accounts.audit import audit
from donations.accounts.roles import MONEY, READ, role_required
from donations.extensions import db, unit_of_work
from donations.ledger import donors as donor_ledger
from donations.ledger.donor_edits import DonorRecord, EmailBelongsToAnother
from donations.ledger.models import Donor
from donations.staff import exports, forms, queries, service
from donations.staff.views.console import USER_ERRORS, bp, current_actor, remote_addr


@bp.get("/donors")
@role_required(*READ)
def donors() -> ResponseReturnValue:
    form = forms.DonorSearchForm(formdata=request.args)
    if not form.validate():
        return render_template("staff/donors.html", form=form, matches=[]), 400
    matches = donor_ledger.search(form.q.data or "")
    arguments = {"q": form.q.data} if form.q.data else {}
    export_urls = {fmt: url_for("staff.donors_export", **arguments, format=fmt) for fmt in exports.FORMATS}
    return render_template("staff/donors.html", form=form, matches=matches, export_urls=export_urls)


@bp.get("/donors/export")
@role_required(*MONEY)
def donors_export() -> ResponseReturnValue:
    """Donors matching the search (every donor when it is empty) as CSV or XLSX; audited."""
    form = forms.DonorSearchForm(formdata=request.args)
    if not form.validate():
        abort(400, "The search is not valid: " + " ".join(form.q.errors))
    query = (form.q.data or "").strip()
    fmt = request.args.get("format", "csv")
    try:
        download = exports.download(exports.donors_report(query), fmt)
    except exports.ExportError as exc:
        abort(400, str(exc))
    with unit_of_work():
        audit(
            "donors.export",
            actor=current_actor(),
            target_type="export",
            details={"list": "donors", "format": fmt, "filters": {"search": query} if query else {}},
            remote_addr=remote_addr(),
        )
    return exports.response(download)


def _donor_or_404(donor_id: int) -> Donor:
    donor = db.session.get(Donor, donor_id)
    if donor is None:
        abort(404, "There is no such donor.")
    return donor


def _statement_url(donor_id: int, year: int | None = None) -> str:
    """The receipts area's annual statement page for this donor (and year)."""
    endpoint = "receipts_staff.statement_years" if year is None else "receipts_staff.statement"
    return url_for(endpoint, donor_id=donor_id) if year is None else url_for(endpoint, donor_id=donor_id, year=year)


def _render_donor(donor: Donor, merge_form: forms.MergeForm | None = None, status: int = 200) -> tuple[str, int]:
    if merge_form is None:
        # "Merge instead" from a correction whose email is this donor's: the duplicate is named.
        offered = request.args.get("merge", "")
        merge_form = forms.MergeForm(
            data={"duplicate": int(offered)} if offered.isdigit() and len(offered) < 10 else None
        )
    merged_from = donor_ledger.merged_from(donor.id)
    # A gift recorded for a duplicate's email after the merge is still this person's.
    donor_ids = [donor.id, *(other.id for other in merged_from)]
    # Checkouts never paid clutter the page: shown only when asked for.
    show_unpaid = request.args.get("unpaid") == "1"
    return render_template(
        "staff/donor.html",
        donor=donor,
        merged_into=db.session.get(Donor, donor.merged_into_id) if donor.merged_into_id else None,
        merged_from=merged_from,
        gifts=queries.donor_gifts(donor_ids, unpaid=show_unpaid),
        gifts_shown=queries.DONOR_GIFTS_SHOWN,
        giving=queries.donor_giving(donor_ids),
        show_unpaid=show_unpaid,
        memberships=queries.donor_memberships(donor_ids),
        years=queries.totals_by_year(donor_ids),
        statement_url=_statement_url(donor.id),
        statement_year_url=lambda year: _statement_url(donor.id, year),
        history=queries.history_of("donor", donor.id),
        merge_form=merge_form,
    ), status


@bp.get("/donors/<row_id:donor_id>")
@role_required(*READ)
def donor(donor_id: int) -> ResponseReturnValue:
    return _render_donor(_donor_or_404(donor_id))


@bp.post("/donors/<row_id:donor_id>/merge")
@role_required(*MONEY)
def donor_merge(donor_id: int) -> ResponseReturnValue:
    kept = _donor_or_404(donor_id)
    form = forms.MergeForm()
    if form.validate_on_submit() and form.confirmed.data != "yes":
        duplicate = db.session.get(Donor, form.duplicate.data)
        try:
            if duplicate is None:
                raise donor_ledger.MergeError(f"There is no donor #{form.duplicate.data}.")
            donor_ledger.check_merge(duplicate, kept)
        except donor_ledger.MergeError as exc:
            form.duplicate.errors = [*form.duplicate.errors, str(exc)]
        else:
            return render_template(
                "staff/merge_confirm.html",
                kept=kept,
                duplicate=duplicate,
                form=form,
                gifts=queries.gift_counts(duplicate.id),
                memberships=queries.donor_memberships([duplicate.id]),
            )
    elif form.validate_on_submit():
        try:
            with unit_of_work():
                result = service.merge_donors(form.duplicate.data, kept.id, current_actor(), remote_addr())
        except USER_ERRORS as exc:
            form.duplicate.errors = [*form.duplicate.errors, str(exc)]
        else:
            flash(
                f"Donor #{result.merged_id} is merged into this donor: {len(result.gift_ids)} gifts and "
                f"{len(result.membership_ids)} memberships moved.",
                "success",
            )
            return redirect(url_for("staff.donor", donor_id=kept.id), 303)
    return _render_donor(_donor_or_404(donor_id), merge_form=form, status=400)


def _render_edit(
    donor: Donor, form: forms.DonorEditForm, status: int = 200, owner: Donor | None = None, error: str | None = None
) -> tuple[str, int]:
    return render_template("staff/donor_edit.html", donor=donor, form=form, owner=owner, error=error), status


@bp.route("/donors/<row_id:donor_id>/edit", methods=["GET", "POST"])
@role_required(*MONEY)
def donor_edit(donor_id: int) -> ResponseReturnValue:
    """Correct a donor's name, email, postal address, organization and communication
    preferences; an email that is another donor's offers the merge instead."""
    donor = _donor_or_404(donor_id)
    if request.method == "GET":
        return _render_edit(donor, forms.DonorEditForm(obj=donor))
    form = forms.DonorEditForm()
    if not form.validate_on_submit():
        return _render_edit(donor, form, 400)
    record = DonorRecord(
        **{name: form[name].data for name in DonorRecord.__dataclass_fields__}  # every field is on the form
    )
    try:
        with unit_of_work():
            changed = service.correct_donor(donor.id, record, current_actor(), remote_addr())
    except EmailBelongsToAnother as exc:
        form.email.errors = [*form.email.errors, str(exc)]
        return _render_edit(_donor_or_404(donor_id), form, 409, owner=exc.other)
    except USER_ERRORS as exc:
        return _render_edit(_donor_or_404(donor_id), form, 400, error=str(exc))
    flash(f"Saved: {', '.join(FIELD_WORDS.get(name, name) for name in changed)} changed.", "success")
    return redirect(url_for("staff.donor", donor_id=donor_id), 303)


FIELD_WORDS = {
    "name": "name",
    "email": "email",
    "organization": "organization",
    "address_line1": "street address",
    "address_line2": "address line 2",
    "city": "city",
    "region": "state or region",
    "postal_code": "postal code",
    "country": "country",
    "contact_by_email": "fundraising email preference",
    "contact_by_mail": "postal mail preference",
}


@bp.get("/members/mailchimp.csv")
@role_required(*MONEY)
def members_mailchimp() -> ResponseReturnValue:
    """Members as a CSV in the layout Mailchimp's audience import expects; audited."""
    download = exports.download(exports.mailchimp_members_report(), "csv")
    download.filename = download.filename.replace("members-", "members-mailchimp-")
    with unit_of_work():
        audit(
            "members.export",
            actor=current_actor(),
            target_type="export",
            details={"list": "members", "format": "mailchimp csv", "filters": {}},
            remote_addr=remote_addr(),
        )
    return exports.response(download)
