"""A program's local-match pledges, its funder packets and their funder links, in the staff
console under /staff/grants (finance and admins; the pledges' list is on the program page for
every staff role). Thin: validate, call grants.pledges, grants.packet or grants.funder_links."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations.accounts.audit import audit
from donations.accounts.roles import MONEY, role_required
from donations.extensions import unit_of_work
from donations.forms import ButtonForm
from donations.grants import funder_links, pledges, service
from donations.grants.forms import FunderLinkForm, PledgeForm
from donations.grants.models import ReportRun
from donations.grants.packet import build_packet, packet_of
from donations.grants.pledges import PledgeData, PledgeError, megabytes
from donations.grants.views import acting_staff, program_or_404
from donations.mail.render import public_url

bp = Blueprint("grant_packets", __name__, url_prefix="/staff/grants")

bp.add_app_template_global(packet_of, "grant_packet_of")  # grants/run.html
bp.add_app_template_global(funder_links.links_of, "funder_links_of")
bp.add_app_template_global(funder_links.is_open, "funder_link_open")
bp.add_app_template_global(pledges.pledges_of, "grant_pledges_of")  # grants/program.html


def _packet_run_or_404(run_id: int) -> ReportRun:
    run = service.run_by_id(run_id)
    if run is None or packet_of(run) is None:
        abort(404, "There is no such funder packet.")
    return run


def _attachment(content: bytes, filename: str, mimetype: str) -> Response:
    return Response(
        content,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# --- pledges ------------------------------------------------------------------------------------


@bp.url_value_preprocessor
def _room_for_a_document(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Room for a pledge's document and the form around it (a larger body is a 413 before it is
    read). Set here because URL value preprocessors run before every before-request hook, and
    the app's CSRF and NUL checks read the form there."""
    if endpoint == "grant_packets.pledge_new":
        request.max_content_length = current_app.config["PLEDGE_DOCUMENT_MAX_BYTES"] + 64 * 1024


@bp.route("/<slug>/pledges/new", methods=["GET", "POST"])
@role_required(*MONEY)
def pledge_new(slug: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    limit = current_app.config["PLEDGE_DOCUMENT_MAX_BYTES"]
    form = PledgeForm()
    error = None
    if form.validate_on_submit():
        upload = request.files.get("document")
        data = PledgeData(
            funder_name=form.funder_name.data or "",
            amount_cents=form.amount.cents or 0,
            pledged_on=form.pledged_on.data,
            document=upload.read(limit + 1) if upload else b"",
            document_name=(upload.filename or "") if upload else "",
        )
        try:
            with unit_of_work():
                pledge = pledges.add_pledge(program, data, actor=acting_staff(), remote_addr=request.remote_addr)
        except PledgeError as exc:
            error = str(exc)
        else:
            flash(f"Pledge by {pledge.funder_name} recorded.", "success")
            return redirect(url_for("grants.program", slug=program.slug) + "#pledges", 303)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "grants/pledge_form.html", program=program, form=form, error=error, limit=megabytes(limit)
    ), status


@bp.get("/<slug>/pledges/<row_id:pledge_id>/document")
@role_required(*MONEY)
def pledge_document(slug: str, pledge_id: int) -> ResponseReturnValue:
    program = program_or_404(slug)
    pledge = pledges.pledge_of(program, pledge_id)
    if pledge is None:
        abort(404, "There is no such pledge.")
    with unit_of_work():
        content = pledges.download_document(pledge, actor=acting_staff(), remote_addr=request.remote_addr)
    return _attachment(content, pledges.document_filename(pledge), pledge.document_type)


@bp.post("/<slug>/pledges/<row_id:pledge_id>/remove")
@role_required(*MONEY)
def pledge_remove(slug: str, pledge_id: int) -> ResponseReturnValue:
    program = program_or_404(slug)
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    pledge = pledges.pledge_of(program, pledge_id)
    if pledge is None:
        abort(404, "There is no such pledge.")
    name = pledge.funder_name
    with unit_of_work():
        pledges.remove_pledge(pledge, actor=acting_staff(), remote_addr=request.remote_addr)
    flash(f"Pledge by {name} removed.", "success")
    return redirect(url_for("grants.program", slug=program.slug) + "#pledges", 303)


# --- packets ------------------------------------------------------------------------------------


@bp.post("/<slug>/packet")
@role_required(*MONEY)
def packet_new(slug: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        with unit_of_work():
            built = build_packet(program, actor=acting_staff(), remote_addr=request.remote_addr)
    except service.GrantError as exc:
        abort(400, str(exc))
    return _attachment(built.content, built.run.filename, "application/zip")


@bp.get("/runs/<row_id:run_id>/packet.zip")
@role_required(*MONEY)
def packet_download(run_id: int) -> ResponseReturnValue:
    """The packet as it was made (not made again): audited as a download."""
    run = _packet_run_or_404(run_id)
    packet = packet_of(run)
    assert packet is not None
    with unit_of_work():
        audit(
            "grant_packet.download",
            actor=acting_staff(),
            target_type="report_run",
            target_id=run.id,
            details={"sha256": run.sha256},
            remote_addr=request.remote_addr,
        )
    return _attachment(packet.content, run.filename, "application/zip")


# --- funder links -------------------------------------------------------------------------------


@bp.post("/runs/<row_id:run_id>/links")
@role_required(*MONEY)
def link_new(run_id: int) -> ResponseReturnValue:
    run = _packet_run_or_404(run_id)
    form = FunderLinkForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400, "The form expired; reload the page and try again.")
        errors = "; ".join(error for field in form.errors.values() for error in field)
        abort(400, f"The link was not made: {errors}")
    try:
        with unit_of_work():
            link, token = funder_links.create_link(
                run, form.days.data or 0, form.label.data or "", actor=acting_staff(), remote_addr=request.remote_addr
            )
    except service.GrantError as exc:
        abort(400, str(exc))
    # Shown once: only the token's hash is kept.
    address = public_url(url_for("funder.packet", token=token))
    return render_template("grants/funder_link_made.html", run=run, link=link, address=address)


@bp.post("/runs/<row_id:run_id>/links/<row_id:link_id>/revoke")
@role_required(*MONEY)
def link_revoke(run_id: int, link_id: int) -> ResponseReturnValue:
    run = _packet_run_or_404(run_id)
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    link = funder_links.link_by_id(run, link_id)
    if link is None:
        abort(404, "There is no such funder link.")
    with unit_of_work():
        funder_links.revoke_link(link, actor=acting_staff(), remote_addr=request.remote_addr)
    flash("The funder link is revoked: it opens nothing now.", "success")
    return redirect(url_for("grants.run", run_id=run.id) + "#funder-links", 303)
