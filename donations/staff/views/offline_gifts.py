"""Offline gifts: one check or cash gift, or a batch of checks."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations.accounts.roles import MONEY, role_required
from donations.extensions import unit_of_work
from donations.ledger import offline
from donations.ledger.models import GiftSource
from donations.money import format_money
from donations.staff import forms, service
from donations.staff.views.console import USER_ERRORS, bp, current_actor, fund_choices, remote_addr


@bp.route("/offline/new", methods=["GET", "POST"])
@role_required(*MONEY)
def offline_gift() -> ResponseReturnValue:
    form = forms.OfflineGiftForm()
    form.fund.choices = fund_choices(active_only=True)
    if request.method == "GET":
        form.donor_id.data = request.args.get("donor_id", type=int)
    error = None
    if form.validate_on_submit():
        entry = offline.OfflineGift(
            donor=offline.DonorDetails(
                donor_id=form.donor_id.data,
                email=form.email.data,
                name=form.name.data,
                address_line1=form.address_line1.data,
                city=form.city.data,
                region=form.region.data,
                postal_code=form.postal_code.data,
            ),
            fund_id=form.fund.data,
            amount_cents=form.amount.cents or 0,
            source=form.source.data,
            received_on=form.received_on.data,
            check_number=form.check_number.data or None,
            postmarked_on=form.postmarked_on.data,
            organization=form.organization.data,
            vehicle=form.vehicle.data or None,
            fair_market_value_cents=form.fair_market_value.cents,
            anonymous=form.anonymous.data,
            tribute_kind=form.tribute_kind.data or None,
            tribute_name=form.tribute_name.data,
            memo=form.memo.data or None,
            send_receipt=form.send_receipt.data,
        )
        try:
            with unit_of_work():
                gift = service.record_offline_gift(entry, current_actor(), remote_addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            flash(f"Gift #{gift.id} recorded.", "success")
            return redirect(url_for("staff.gift", gift_id=gift.id), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/offline_gift.html", form=form, error=error), status


@bp.route("/offline/batch", methods=["GET", "POST"])
@role_required(*MONEY)
def offline_batch() -> ResponseReturnValue:
    form = forms.BatchForm()
    form.fund.choices = fund_choices(active_only=True)
    error = None
    if form.validate_on_submit():
        entries = [
            offline.OfflineGift(
                donor=offline.DonorDetails(email=row.email.data, name=row.name.data, postal_code=row.postal_code.data),
                fund_id=form.fund.data,
                amount_cents=row.amount.cents or 0,
                source=GiftSource.CHECK,
                received_on=form.received_on.data,
                check_number=row.check_number.data or None,
                postmarked_on=row.postmarked_on.data,
                send_receipt=form.send_receipt.data,
            )
            for row in (entry.form for entry in form.rows)
            if not row.is_blank()
        ]
        try:
            with unit_of_work():
                gifts = service.record_offline_batch(entries, current_actor(), remote_addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            total = sum(gift.amount_cents for gift in gifts)
            flash(f"{len(gifts)} checks recorded, {format_money(total)} in all.", "success")
            return redirect(url_for("staff.gifts", source="check"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/offline_batch.html", form=form, error=error), status
