"""/membership: members manage their memberships through an emailed link, without a password.

Thin views: validate, call one service function, redirect. The request page answers the same
whether or not the email is a donor's.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask.wrappers import Response

from donations.extensions import unit_of_work
from donations.giving import membership_service as service
from donations.giving.membership_forms import AmountForm, CardForm, LinkRequestForm
from donations.ledger.models import Donor, MembershipStatus
from donations.mail.render import public_url
from donations.payments.gateway import GatewayError
from donations.payments.local.billing import LocalBillingError
from donations.protection import card_testing as protection

bp = Blueprint("membership", __name__)


@bp.after_request
def _headers(response: Response) -> Response:
    # A member's gifts and address: never kept in a shared or browser cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/membership", methods=["GET", "POST"])
def request_link() -> ResponseReturnValue:
    form = LinkRequestForm()
    if form.validate_on_submit():
        # Counted only once the form is accepted (a mistyped address costs nothing), and whether
        # or not the email is a donor's: the answer must not tell which it is.
        wait = protection.spend_link_request()
        if not wait:
            with unit_of_work():
                service.request_link(form.email.data)
            return redirect(url_for("membership.link_sent"), code=303)
        message = protection.too_many_message(wait, "No link was sent this time.")
        page = render_template("giving/membership_request.html", form=form, too_many=message)
        return page, 429, {"Retry-After": str(wait)}
    status = 400 if request.method == "POST" else 200
    return render_template("giving/membership_request.html", form=form), status


@bp.get("/membership/sent")
def link_sent() -> ResponseReturnValue:
    return render_template("giving/membership_link_sent.html", hours=current_app.config["MAGIC_LINK_MAX_AGE"] // 3600)


@bp.get("/membership/link/<token>")
def open_link(token: str) -> ResponseReturnValue:
    try:
        with unit_of_work():
            _, link = service.read_link_token(token)
            service.sign_in(session, link)
    except service.LinkUsed:
        return render_template("giving/membership_link_invalid.html", used=True), 410
    except service.LinkExpired:
        return render_template("giving/membership_link_invalid.html", expired=True), 410
    except service.LinkInvalid:
        return render_template("giving/membership_link_invalid.html"), 400
    # Off the address bar: the token must not travel on in a Referer or a shared screen.
    return redirect(url_for("membership.account"), code=303)


def _member() -> Donor:
    donor = service.signed_in_donor(session)
    if donor is None:
        abort(redirect(url_for("membership.request_link"), code=303))
    return donor


@bp.get("/membership/account")
def account() -> ResponseReturnValue:
    return render_template("giving/membership_account.html", account=service.account(_member()))


@bp.post("/membership/account/<row_id:membership_id>/manage")
def manage(membership_id: int) -> ResponseReturnValue:
    donor = _member()
    try:
        url = service.portal_url(donor, membership_id, public_url(url_for("membership.account")))
    except service.NotYours:
        abort(404)
    except service.ChangeRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("membership.account"), code=303)
    except GatewayError:
        return render_template("giving/retry.html"), 503
    return redirect(url, code=303)


@bp.post("/membership/sign-out")
def sign_out() -> ResponseReturnValue:
    with unit_of_work():
        service.sign_out(session)
    return redirect(url_for("membership.request_link"), code=303)


# The local gateway's stand-in for the Billing Portal ------------------------------------------


def _local_only() -> None:
    if current_app.config["PAYMENTS_GATEWAY"] != "local":
        abort(404)


def _render_local_portal(donor: Donor, customer_id: str, status: int = 200, **forms: object) -> ResponseReturnValue:
    try:
        rows = service.local_portal(donor, customer_id)
    except service.NotYours:
        abort(404)
    return render_template(
        "giving/membership_local_portal.html",
        rows=rows,
        cards=service.local_cards(rows),
        customer_id=customer_id,
        amount_form=forms.get("amount_form") or AmountForm(formdata=None),
        card_form=forms.get("card_form") or CardForm(formdata=None),
        failed_id=forms.get("failed_id"),
    ), status


@bp.get("/membership/local/<customer_id>")
def local_portal(customer_id: str) -> ResponseReturnValue:
    _local_only()
    return _render_local_portal(_member(), customer_id)


def _local_change(customer_id: str, membership_id: int, change, done: str, **forms: object) -> ResponseReturnValue:
    """Apply one change from the local portal, then back to the member's page."""
    donor = _member()
    try:
        change(donor)
    except service.NotYours:
        abort(404)
    except service.ChangeRefused as exc:
        flash(str(exc), "error")
        return _render_local_portal(donor, customer_id, 400, failed_id=membership_id, **forms)
    except LocalBillingError:
        return render_template("giving/retry.html"), 503
    flash(done, "success")
    return redirect(url_for("membership.account"), code=303)


def _local_form_change(customer_id: str, membership_id: int, name: str, form, change, done: str) -> ResponseReturnValue:
    """A change made with a form (`name` in the portal's template): refused with the form's
    errors, or applied as `_local_change` does."""
    _local_only()
    if not form.validate_on_submit():
        return _render_local_portal(_member(), customer_id, 400, failed_id=membership_id, **{name: form})
    return _local_change(customer_id, membership_id, lambda donor: change(donor, form), done, **{name: form})


@bp.post("/membership/local/<customer_id>/<row_id:membership_id>/amount")
def local_amount(customer_id: str, membership_id: int) -> ResponseReturnValue:
    return _local_form_change(
        customer_id,
        membership_id,
        "amount_form",
        AmountForm(),
        lambda donor, form: service.change_amount(donor, membership_id, form.amount_cents),
        "Your new amount applies from your next renewal.",
    )


@bp.post("/membership/local/<customer_id>/<row_id:membership_id>/card")
def local_card(customer_id: str, membership_id: int) -> ResponseReturnValue:
    return _local_form_change(
        customer_id,
        membership_id,
        "card_form",
        CardForm(),
        lambda donor, form: service.update_card(donor, membership_id, form.digits),
        "Your card is updated; it is used from your next renewal.",
    )


@bp.post("/membership/local/<customer_id>/<row_id:membership_id>/cancel")
def local_cancel(customer_id: str, membership_id: int) -> ResponseReturnValue:
    """First a confirmation (what ends, and that nothing more is charged), then the cancellation."""
    _local_only()
    if request.form.get("confirmed") != "yes":
        donor = _member()
        try:
            rows = service.local_portal(donor, customer_id)
        except service.NotYours:
            abort(404)
        row = next((row for row in rows if row.membership.id == membership_id), None)
        if row is None:
            abort(404)
        if row.membership.status == MembershipStatus.CANCELED:
            flash("This membership has already ended: there is nothing to cancel.", "error")
            return _render_local_portal(donor, customer_id, 400, failed_id=membership_id)
        return render_template("giving/membership_cancel_confirm.html", row=row, customer_id=customer_id)
    return _local_change(
        customer_id,
        membership_id,
        lambda donor: service.cancel(donor, membership_id),
        "Your membership is canceled. Thank you for your support.",
    )
