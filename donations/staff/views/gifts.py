"""Gifts: the filtered list, a gift's page, refunds and changes of designation."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations import forms as shared_forms
from donations.accounts.audit import audit
from donations.accounts.roles import MONEY, READ, role_required
from donations.extensions import db, unit_of_work
from donations.ledger import funds as fund_ledger
from donations.ledger import reversals
from donations.ledger.edits import Designation
from donations.ledger.models import UNPAID_STATUSES, Gift
from donations.money import format_money
from donations.payments import refunds
from donations.payments.gateway import GatewayError
from donations.staff import exports, forms, queries, service
from donations.staff.views.console import USER_ERRORS, bp, current_actor, fund_choices, remote_addr


def _filter_form() -> forms.GiftFilterForm:
    form = forms.GiftFilterForm(formdata=request.args)
    form.fund.choices = shared_forms.choices(
        [("", "Any fund"), *((str(fund.id), fund.name) for fund in fund_ledger.funds_for_choice())]
    )
    return form


def _filters(form: forms.GiftFilterForm) -> queries.GiftFilters:
    return queries.GiftFilters(
        first=form.first.data,
        last=form.last.data,
        fund_id=int(form.fund.data) if form.fund.data else None,
        source=form.source.data or None,
        frequency=form.frequency.data or None,
        status=form.status.data or None,
        min_cents=form.min_amount.cents,
        max_cents=form.max_amount.cents,
        email=(form.email.data or "").strip() or None,
    )


@bp.get("/gifts")
@role_required(*READ)
def gifts() -> ResponseReturnValue:
    form = _filter_form()
    page = queries.GiftPage([], None)
    status = 200
    if form.validate():
        try:
            after = queries.GiftCursor.decode(form.after.data) if form.after.data else None
        except queries.BadCursor as exc:
            form.after.errors = [str(exc)]
            status = 400
        else:
            page = queries.gift_page(_filters(form), after)
    else:
        status = 400
    arguments: dict[str, Any] = {key: value for key, value in request.args.items() if key != "after" and value}
    next_url = None
    if page.next_cursor is not None:
        next_url = url_for("staff.gifts", **arguments, after=page.next_cursor.encode())
    first_url = url_for("staff.gifts", **arguments)
    return render_template(
        "staff/gifts.html",
        form=form,
        page=page,
        by_start=form.status.data in UNPAID_STATUSES,
        next_url=next_url,
        first_url=first_url if form.after.data else None,
        export_urls=_export_urls("staff.gifts_export", arguments),
    ), status


def _export_urls(endpoint: str, arguments: dict[str, Any]) -> dict[str, str]:
    return {fmt: url_for(endpoint, **arguments, format=fmt) for fmt in exports.FORMATS}


@bp.get("/gifts/export")
@role_required(*MONEY)
def gifts_export() -> ResponseReturnValue:
    """The gifts list as shown (its filters, every page) as CSV or XLSX; audited."""
    form = _filter_form()
    if not form.validate():
        errors = "; ".join(f"{form[name].label.text}: {' '.join(messages)}" for name, messages in form.errors.items())
        abort(400, f"The filters are not valid: {errors}")
    filters = _filters(form)
    fmt = request.args.get("format", "csv")
    try:
        download = exports.download(exports.gifts_report(filters), fmt)
    except exports.ExportError as exc:
        abort(400, str(exc))
    with unit_of_work():
        audit(
            "gifts.export",
            actor=current_actor(),
            target_type="export",
            details={"list": "gifts", "format": fmt, "filters": exports.filters_in_words(filters)},
            remote_addr=remote_addr(),
        )
    return exports.response(download)


def _gift_or_404(gift_id: int) -> Gift:
    gift = queries.gift_with_everything(gift_id)
    if gift is None:
        abort(404, "There is no such gift.")
    return gift


def _render_gift(
    gift: Gift,
    refund_form: forms.RefundForm | None = None,
    designation_form: forms.DesignationForm | None = None,
    status: int = 200,
) -> tuple[str, int]:
    if designation_form is None:
        designation_form = forms.DesignationForm(
            data={"fund": gift.fund_id, "tribute_kind": gift.tribute_kind or "", "tribute_name": gift.tribute_name}
        )
    designation_form.fund.choices = fund_choices()
    return render_template(
        "staff/gift.html",
        gift=gift,
        reversed_cents=reversals.reversed_cents(gift.id),
        refundable=refunds.refundable(gift),
        refundable_cents=refunds.refundable_cents(gift),
        disputes=queries.disputes_of(gift.id),
        history=queries.history_of("gift", gift.id),
        refund_form=refund_form or forms.RefundForm(),
        designation_form=designation_form,
    ), status


@bp.get("/gifts/<row_id:gift_id>")
@role_required(*READ)
def gift(gift_id: int) -> ResponseReturnValue:
    return _render_gift(_gift_or_404(gift_id))


@bp.post("/gifts/<row_id:gift_id>/refund")
@role_required(*MONEY)
def gift_refund(gift_id: int) -> ResponseReturnValue:
    gift = _gift_or_404(gift_id)
    form = forms.RefundForm()
    if not form.validate_on_submit():
        return _render_gift(gift, refund_form=form, status=400)
    if form.confirmed.data != "yes":
        return _confirm_refund(gift, form)
    try:
        refund_id = refunds.request_refund(
            gift.id, form.amount.cents, form.reason.data, actor=current_actor(), remote_addr=remote_addr()
        )
    except (refunds.RefundError, GatewayError) as exc:
        db.session.rollback()
        form.amount.errors = [*form.amount.errors, f"The refund was not made: {exc}."]
        return _render_gift(_gift_or_404(gift_id), refund_form=form, status=400)
    flash(
        f"Refund {refund_id} of {format_money(form.amount.cents or 0) if form.amount.cents else 'everything left'}"
        " requested. Its reversal appears here when Stripe confirms it.",
        "success",
    )
    return redirect(url_for("staff.gift", gift_id=gift_id), 303)


def _confirm_refund(gift: Gift, form: forms.RefundForm) -> ResponseReturnValue:
    """The step before a refund: the amount, what the gift keeps, what is left to refund after."""
    if not refunds.refundable(gift):
        form.amount.errors = [*form.amount.errors, f"The refund was not made: {refunds.refusal(gift)}."]
        return _render_gift(gift, refund_form=form, status=400)
    left = refunds.refundable_cents(gift)
    amount = form.amount.cents if form.amount.cents is not None else left
    if amount > left:
        form.amount.errors = [
            *form.amount.errors,
            f"The refund was not made: only {format_money(left, gift.currency)} is left to refund.",
        ]
        return _render_gift(gift, refund_form=form, status=400)
    form.confirmed.data = "yes"
    return render_template(
        "staff/refund_confirm.html",
        gift=gift,
        form=form,
        amount_cents=amount,
        left_cents=left,
        left_after_cents=left - amount,
        kept_after_cents=reversals.net_cents(gift) - amount,
    )


@bp.post("/gifts/<row_id:gift_id>/designation")
@role_required(*MONEY)
def gift_designation(gift_id: int) -> ResponseReturnValue:
    gift = _gift_or_404(gift_id)
    form = forms.DesignationForm()
    form.fund.choices = fund_choices()
    if form.validate_on_submit():
        designation = Designation(form.fund.data, form.tribute_kind.data or None, form.tribute_name.data)
        try:
            with unit_of_work():
                service.change_gift_designation(gift.id, designation, form.reason.data, current_actor(), remote_addr())
        except USER_ERRORS as exc:
            form.reason.errors = [*form.reason.errors, str(exc)]
        else:
            flash("The gift is changed; the change is in its history below.", "success")
            return redirect(url_for("staff.gift", gift_id=gift_id), 303)
    return _render_gift(_gift_or_404(gift_id), designation_form=form, status=400)
