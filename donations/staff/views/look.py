"""The newsroom's look (/staff/look, admins): name, logo, accent colour, footer line, and the
newsletter opt-in's default. Saving is audited (`newsroom.look`, before and after)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations import newsroom
from donations.accounts.audit import audit
from donations.accounts.roles import ADMIN, role_required
from donations.extensions import unit_of_work
from donations.staff import forms
from donations.staff.views.console import bp, current_actor, remote_addr


@bp.route("/look", methods=["GET", "POST"])
@role_required(*ADMIN)
def look() -> ResponseReturnValue:
    form = forms.LookForm(data=newsroom.stored_settings()) if request.method == "GET" else forms.LookForm()
    error = None
    if form.validate_on_submit():
        upload = form.logo.data
        logo = upload.read(newsroom.LOGO_MAX_BYTES + 1) if upload and upload.filename else None
        settings = newsroom.LookSettings(
            name=form.name.data or "",
            accent=form.accent.data or "",
            footer=form.footer.data or "",
            newsletter_offered=bool(form.newsletter_offered.data),
            newsletter_wording=form.newsletter_wording.data or "",
            logo=logo,
            remove_logo=bool(form.remove_logo.data),
        )
        try:
            with unit_of_work():
                before, after = newsroom.save_look(settings)
                audit(
                    "newsroom.look",
                    actor=current_actor(),
                    target_type="newsroom",
                    details={"before": before, "after": after},
                    remote_addr=remote_addr(),
                )
        except newsroom.LookError as exc:
            error = str(exc)
        else:
            flash("The newsroom's look is saved. Gift pages show it within a minute.", "success")
            return redirect(url_for("staff.look"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/look.html", form=form, error=error), status
