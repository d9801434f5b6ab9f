"""The local gateway's checkout page. (Stripe's webhook is answered in front of Flask:
operations.acknowledge.)"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from donations.clock import utcnow
from donations.extensions import db, unit_of_work
from donations.ledger import service as ledger
from donations.ledger.models import Frequency, Gift, GiftStatus
from donations.mail.render import public_url
from donations.payments.local import billing as local_billing
from donations.payments.local import gateway as local
from donations.protection import card_testing as protection

bp = Blueprint("payments", __name__)


def _local_gateway_only() -> None:
    if current_app.config["PAYMENTS_GATEWAY"] != "local":
        abort(404)


def _pending_local_gift(session_id: str) -> Gift:
    gift = ledger.gift_for_session(session_id) if session_id.startswith("cs_local_") else None
    if gift is None:
        abort(404)
    return gift


@bp.route("/pay/local/<session_id>", methods=["GET", "POST"])
def local_checkout(session_id: str) -> ResponseReturnValue:
    """Stands in for Stripe's hosted checkout page on this machine."""
    _local_gateway_only()
    gift = _pending_local_gift(session_id)
    thanks = url_for("giving.thanks", session_id=session_id)
    if local.is_stale(gift, utcnow()):
        db.session.rollback()
        if not local.expire_session(session_id):
            return render_template("giving/retry.html"), 503
        return redirect(thanks)  # which says it expired
    if gift.status not in (GiftStatus.PENDING, GiftStatus.FAILED):  # a failed one: try another card
        return redirect(thanks)
    error = None
    if request.method == "POST":
        card = "".join(ch for ch in request.form.get("card_number", "") if ch.isdigit())
        if card == local.PAYING_CARD and gift.frequency != Frequency.ONE_TIME:
            try:
                local_billing.start_subscription(gift, card)
            except local_billing.LocalBillingError:
                return render_template("giving/retry.html"), 503
            return redirect(thanks)
        if card == local.PAYING_CARD:
            session = _session_object(gift)
            charge = local.succeeded_charge(
                payment_intent_id=session["payment_intent"],
                amount_cents=gift.amount_cents,
                currency=gift.currency,
                card_last4=card[-4:],
                metadata=session["metadata"],
            )
            # Stripe sends the charge and the session's completion, usually in this order.
            delivered = local.deliver(local.event("charge.succeeded", charge)) and local.deliver(
                local.event("checkout.session.completed", session)
            )
            if not delivered:
                return render_template("giving/retry.html"), 503
            return redirect(thanks)
        if card == local.DECLINING_CARD:  # card testing shows as declines: count them for the cool-down
            protection.record_decline(
                address=request.remote_addr, email=gift.donor.email, card=protection.local_card_fingerprint(card)
            )
            # As Stripe's charge.failed would: failed, unless another card pays it now.
            with unit_of_work():
                ledger.decline_gift(gift.id)
        error = (
            "Your card was declined. No money was taken; try another card."
            if card == local.DECLINING_CARD
            else "Use the test card 4242 4242 4242 4242 to pay, or 4000 0000 0000 0002 to see a decline."
        )
    cancel = request.args.get("cancel", "")
    if not cancel.startswith(public_url("/")):  # never an open redirect
        cancel = url_for("giving.give", fund_slug=gift.fund.slug)
    return render_template("payments/local_checkout.html", gift=gift, error=error, cancel_url=cancel), (
        400 if error else 200
    )


def _session_object(gift: Gift) -> dict[str, Any]:
    return local.paid_checkout_session(
        session_id=gift.stripe_checkout_session_id or "",
        amount_cents=gift.amount_cents,
        currency=gift.currency,
        email=gift.donor.email,
        name=gift.donor.name,
        postal_code=gift.donor.postal_code,
        business_name=gift.organization,
        metadata={"gift_id": str(gift.id), "fund": gift.fund.slug, "frequency": gift.frequency},
    )
