"""The staff page for `history csv`: an upload, a check of every row (with a preview of the
first rows, or the error list), then the import (finance and admins; audited)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from donations.accounts.audit import audit
from donations.accounts.roles import MONEY, role_required
from donations.extensions import db, unit_of_work
from donations.forms import ButtonForm
from donations.money import format_money
from donations.payments.history.csv_import import FORMATS, dry_run_summary, import_rows, parse
from donations.payments.staff_views import bp

PREVIEW_ROWS = 10


def _page(**context: object) -> ResponseReturnValue:
    status = 400 if context.get("errors") or context.get("problem") else 200
    return render_template("payments/history_csv.html", form=ButtonForm(), formats=list(FORMATS), **context), status


@bp.route("/history-import", methods=["GET", "POST"])
@role_required(*MONEY)
def history_csv() -> ResponseReturnValue:
    if request.method == "GET":
        return _page()
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    fmt = request.form.get("format", "generic")
    if fmt not in FORMATS:
        return _page(problem="Choose generic, npsp or donorbox.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page(problem="Choose a CSV file to upload.", fmt=fmt)
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return _page(problem="The file is not UTF-8 text: export it as CSV UTF-8.", fmt=fmt)
    parsed = parse(text, fmt)
    db.session.rollback()  # parsing reads only
    if parsed.errors:
        return _page(errors=parsed.errors, fmt=fmt, filename=upload.filename)
    if request.form.get("action") != "import":
        summary = dry_run_summary(parsed)
        preview = [row for _, row in parsed.rows[:PREVIEW_ROWS]]
        return _page(preview=preview, summary=summary, fmt=fmt, filename=upload.filename)
    with unit_of_work():
        summary = import_rows(parsed)
        audit(
            "history.csv",
            actor=current_user,
            details={
                "file": upload.filename[-200:],
                "format": fmt,
                "imported": summary.imported,
                "already": summary.already,
            },
            remote_addr=request.remote_addr,
        )
    same = "".join(f" {words}" for words in summary.same_check_words(dry_run=False))
    flash(
        f"Imported {summary.imported} gifts ({format_money(summary.amount_cents)}); "
        f"{summary.already} were imported before.{same}",
        "success",
    )
    return redirect(url_for(".history_csv"), 303)
