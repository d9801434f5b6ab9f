"""The staff page of what is not a gift: counts by kind, the Payment Links, Products and Prices
seen on them, and the gift sources (admins add and remove them; audited)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from donations.accounts.roles import ADMIN, role_required
from donations.extensions import unit_of_work
from donations.forms import ButtonForm
from donations.ledger import funds as fund_ledger
from donations.payments import gift_source_admin as admin
from donations.payments.gift_sources import KIND_WORDS, GiftSourceError
from donations.payments.staff_views import bp


def _page(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    return (
        render_template(
            "payments/gift_sources.html",
            counts=admin.counts_by_kind(),
            seen=admin.top_sources(),
            sources=admin.list_sources(),
            kind_words=KIND_WORDS,
            funds=fund_ledger.funds_for_choice(),
            form=ButtonForm(),
            error=error,
        ),
        status,
    )


@bp.get("/gift-sources")
@role_required(*ADMIN)
def gift_sources() -> ResponseReturnValue:
    return _page()


@bp.post("/gift-sources")
@role_required(*ADMIN)
def gift_source_add() -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    source = (request.form.get("source") or "").strip()
    fund_slug = (request.form.get("fund") or "").strip() or None
    try:
        with unit_of_work():
            added = admin.add_source(source, fund_slug, current_user, request.remote_addr)
            value = added.rule.value
    except GiftSourceError as exc:
        return _page(str(exc), 400)
    flash(
        f"{value} is now a gift source: {added.events_applied} stored payments applied as gifts"
        + (f", {added.events_waiting} waiting." if added.events_waiting else "."),
        "success",
    )
    return redirect(url_for(".gift_sources"), 303)


@bp.post("/gift-sources/<row_id:source_id>/remove")
@role_required(*ADMIN)
def gift_source_remove(source_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")
    try:
        with unit_of_work():
            value = admin.remove_source(source_id, current_user, request.remote_addr).value
    except GiftSourceError as exc:
        return _page(str(exc), 404)
    flash(f"{value} is no longer a gift source; the gifts already recorded stay.", "success")
    return redirect(url_for(".gift_sources"), 303)
