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
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from wtforms.fields.choices import SelectChoice

from donations.extensions import unit_of_work
from donations.giving import membership_service as service
from donations.giving.membership_forms import AmountForm, CardForm, ConfirmForm, LinkRequestForm, PauseForm, PlanForm
from donations.ledger.models import Donor, Membership, MembershipStatus
from donations.mail.card_links import CardLinkExpired, CardLinkInvalid
from donations.mail.render import long_date, public_url
from donations.payments.gateway import GatewayError, GatewayRefused
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


# Changes through the gateway: amount, frequency and fund; pause and resume ----------------------


def _plan_form(page: service.ChangePage, *, as_it_is: bool = False) -> PlanForm:
    """The posted form, or (`as_it_is`) one filled in with the membership as it is now."""
    membership = page.row.membership
    form = PlanForm(formdata=None) if as_it_is else PlanForm()
    form.fund.choices = [SelectChoice(fund.slug, fund.name) for fund in page.funds]
    if as_it_is:
        form.amount.data = f"{membership.amount_cents / 100:.2f}"
        form.frequency.data = page.frequency
        form.fund.data = membership.fund.slug
    return form


def _change_page(donor: Donor, membership_id: int) -> service.ChangePage:
    try:
        return service.change_page(donor, membership_id)
    except service.NotYours:
        abort(404)
    except service.ChangeRefused as exc:
        flash(str(exc), "error")
        abort(redirect(url_for("membership.account"), code=303))


def _render_change(page: service.ChangePage, status: int = 200, **forms: object) -> ResponseReturnValue:
    return render_template(
        "giving/membership_change.html",
        page=page,
        plan_form=forms.get("plan_form") or _plan_form(page, as_it_is=True),
        pause_form=forms.get("pause_form") or PauseForm(formdata=None),
        resume_form=ConfirmForm(formdata=None),
    ), status


def _gateway_refused(exc: GatewayError) -> ResponseReturnValue:
    if isinstance(exc, GatewayRefused):
        contact = current_app.config["NEWSROOM_CONTACT"]
        flash(f"The payment service did not accept this change. Please write to us at {contact}.", "error")
        return redirect(url_for("membership.account"), code=303)
    return render_template("giving/retry.html"), 503


@bp.route("/membership/account/<row_id:membership_id>/change", methods=["GET", "POST"])
def change(membership_id: int) -> ResponseReturnValue:
    """The page; posted, first the question (from what to what, from when), then the change."""
    donor = _member()
    page = _change_page(donor, membership_id)
    if request.method == "GET":
        return _render_change(page)
    form = _plan_form(page)
    if not form.validate_on_submit():
        return _render_change(page, 400, plan_form=form)
    try:
        if form.confirmed.data != "yes":
            proposed = service.check_plan_change(
                donor, membership_id, form.amount_cents, form.frequency.data or "", form.fund.data or ""
            )
            return render_template("giving/membership_change_confirm.html", change=proposed, form=form)
        service.change_plan(donor, membership_id, form.amount_cents, form.frequency.data or "", form.fund.data or "")
    except service.ChangeRefused as exc:
        flash(str(exc), "error")
        return _render_change(page, 400, plan_form=form)
    except GatewayError as exc:
        return _gateway_refused(exc)
    flash("Your membership is changed; it applies from your next renewal. We are emailing you the details.", "success")
    return redirect(url_for("membership.account"), code=303)


@bp.post("/membership/account/<row_id:membership_id>/pause")
def pause(membership_id: int) -> ResponseReturnValue:
    donor = _member()
    page = _change_page(donor, membership_id)
    form = PauseForm()
    if not form.validate_on_submit():
        return _render_change(page, 400, pause_form=form)
    try:
        choice = service.pause(donor, membership_id, int(form.skips.data or 0))
    except service.ChangeRefused as exc:
        flash(str(exc), "error")
        return _render_change(page, 400, pause_form=form)
    except GatewayError as exc:
        return _gateway_refused(exc)
    flash(
        f"Your membership is paused: nothing is charged until {long_date(choice.next_charge)}, "
        "when it renews as usual. We are emailing you the details.",
        "success",
    )
    return redirect(url_for("membership.account"), code=303)


@bp.post("/membership/account/<row_id:membership_id>/resume")
def resume(membership_id: int) -> ResponseReturnValue:
    donor = _member()
    page = _change_page(donor, membership_id)
    if not ConfirmForm().validate_on_submit():
        return _render_change(page, 400)
    try:
        service.resume(donor, membership_id)
    except service.ChangeRefused as exc:
        flash(str(exc), "error")
        return _render_change(page, 400)
    except GatewayError as exc:
        return _gateway_refused(exc)
    flash("Your membership is active again: your next renewal is charged as usual.", "success")
    return redirect(url_for("membership.account"), code=303)


# The failed-payment email's link: update the card -------------------------------------------------


def _card_membership(token: str) -> Membership:
    """The link's membership, or the page that says why the link opens nothing (aborted)."""
    try:
        return service.card_link_membership(token)
    except CardLinkExpired:
        page, status = render_template("giving/membership_card_invalid.html", expired=True), 410
    except CardLinkInvalid:
        page, status = render_template("giving/membership_card_invalid.html"), 400
    except service.ChangeRefused as exc:
        page, status = render_template("giving/membership_card_invalid.html", refused=str(exc)), 400
    abort(make_response(page, status))


def _render_card(
    token: str, membership: Membership, status: int = 200, form: CardForm | None = None
) -> ResponseReturnValue:
    return render_template(
        "giving/membership_card.html",
        token=token,
        membership=membership,
        row=service.describe(membership),
        local=service.is_local(membership),
        card_form=form or CardForm(formdata=None),
        button_form=ConfirmForm(formdata=None),
    ), status


@bp.get("/membership/card/<token>")
def fix_card(token: str) -> ResponseReturnValue:
    """What the link opens: a page with the button (or, locally, the card form). Nothing
    happens on GET: mail scanners open links."""
    membership = _card_membership(token)
    return _render_card(token, membership)


@bp.post("/membership/card/<token>")
def fix_card_submit(token: str) -> ResponseReturnValue:
    membership = _card_membership(token)
    if service.is_local(membership):
        form = CardForm()
        if not form.validate_on_submit():
            return _render_card(token, membership, 400, form)
        try:
            service.update_card_from_link(membership, form.digits)
        except service.ChangeRefused as exc:
            form.card_number.errors = [str(exc)]
            return _render_card(token, membership, 400, form)
        return render_template("giving/membership_card_done.html", membership=membership)
    if not ConfirmForm().validate_on_submit():
        return _render_card(token, membership, 400)
    try:
        url = service.card_update_url(membership, public_url(url_for("membership.request_link")))
    except GatewayError:
        return render_template("giving/retry.html"), 503
    return redirect(url, code=303)
