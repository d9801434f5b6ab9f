"""Staff console views under /staff/. Thin: validate a form, call one service function, redirect.

Who may do what is declared on each view with `role_required` (see auth.py); sign-in, the
two-factor step and sign-out are the only views open without a session.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote, urlsplit

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
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response
from wtforms.fields.choices import SelectChoice

from donations import forms as shared_forms
from donations.accounts import service as accounts
from donations.accounts.models import Role, StaffUser
from donations.accounts.roles import ADMIN, MONEY, READ, role_required
from donations.clock import utcnow
from donations.extensions import db, limiter, login_manager
from donations.ledger import donors as donor_ledger
from donations.ledger import funds as fund_ledger
from donations.ledger import offline, reversals
from donations.ledger.edits import Designation
from donations.ledger.models import UNPAID_STATUSES, Donor, Fund, Gift, GiftSource
from donations.ledger.service import LedgerError
from donations.money import format_money
from donations.payments import refunds
from donations.payments.gateway import GatewayError
from donations.staff import dashboard as dashboard_queries
from donations.staff import forms, queries, service

bp = Blueprint("staff", __name__, url_prefix="/staff")

login_manager.login_view = "staff.login"
login_manager.login_message = "Sign in to use the staff console."
login_manager.login_message_category = "info"

PENDING_KEY = "staff_pending_sign_in"  # password checked, waiting for the two-factor code
PENDING_SECONDS = 300
SIGNED_IN_AT_KEY = "staff_signed_in_at"
# Errors a person can fix: shown with a 400, nothing written.
USER_ERRORS = (accounts.StaffError, LedgerError, fund_ledger.FundError, donor_ledger.MergeError)
# Views a signed-in user may reach before changing a one-time password or enrolling two-factor.
GATE_FREE_ENDPOINTS = {
    "staff.logout",
    "staff.account",
    "staff.password",
    "staff.two_factor",
    "staff.two_factor_start",
    "staff.two_factor_confirm",
}


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    """The session holds "id:version": sign-out, a new password or deactivation bumps the
    version and so ends every session of the account at once, on the server."""
    raw_id, _, version = user_id.partition(":")
    if not (raw_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(StaffUser, int(raw_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _signin_limit() -> str:
    return current_app.config["STAFF_SIGNIN_LIMIT"]


def _actor() -> StaffUser:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _addr() -> str | None:
    return request.remote_addr


def _end_session() -> None:
    logout_user()
    session.clear()


@bp.before_app_request
def staff_gates() -> Response | None:
    """Every /staff page (whichever area serves it): end sessions past their lifetime, and hold
    a user who must first change a one-time password or turn on two-factor sign-in."""
    if not request.path.startswith("/staff") or not current_user.is_authenticated:
        return None
    signed_in_at = session.get(SIGNED_IN_AT_KEY)
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if not isinstance(signed_in_at, int) or time.time() - signed_in_at > lifetime:
        _end_session()
        flash("Your session expired. Sign in again.", "info")
        next_url = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("staff.login", next=next_url))
    if request.endpoint in GATE_FREE_ENDPOINTS:
        return None
    if current_user.must_change_password:
        flash("Choose your own password before you go on.", "info")
        return redirect(url_for("staff.password"))
    if accounts.two_factor_required(current_user) and not current_user.two_factor_enabled:
        flash("Administrators must turn on two-factor sign-in before they go on.", "info")
        return redirect(url_for("staff.two_factor"))
    return None


@bp.app_context_processor
def staff_helpers() -> dict[str, Any]:
    return {"staff_can": _can, "now_utc": utcnow}


@bp.app_template_filter("pretty_json")
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@bp.app_template_global("stripe_dashboard_url")
def stripe_dashboard_url(kind: str | None, object_id: str | None) -> str | None:
    """A link to the object in Stripe's dashboard (test mode when the key is a test key); none
    for the local gateway's stand-in ids or objects the dashboard has no page for."""
    if not kind or not object_id or "_local_" in object_id:
        return None
    key = current_app.config.get("STRIPE_SECRET_KEY") or ""
    base = "https://dashboard.stripe.com/test" if "_test_" in key else "https://dashboard.stripe.com"
    return f"{base}/{kind}/{quote(object_id, safe='')}"


def _can(area: str) -> bool:
    roles = {"read": READ, "money": MONEY, "admin": ADMIN}[area]
    return current_user.is_authenticated and current_user.role in roles


# --- Sign-in, sign-out -----------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (no open redirect)."""
    default = url_for("staff.dashboard")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/staff") or target.startswith("//"):
        return default
    return target


def _finish_sign_in(user: StaffUser, next_url: str | None) -> Response:
    accounts.complete_sign_in(user, _addr())
    session.clear()  # nothing from before sign-in survives it (the CSRF token is renewed too)
    session.permanent = True
    login_user(user)
    session[SIGNED_IN_AT_KEY] = int(time.time())
    return redirect(_safe_next(next_url))


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.shared_limit(_signin_limit, scope="staff-sign-in", methods=["POST"])
def login():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        return redirect(url_for("staff.dashboard"))
    form = forms.SignInForm()
    next_url = request.args.get("next")
    error = None
    if form.validate_on_submit():
        try:
            user = accounts.check_credentials(form.email.data, form.password.data, _addr())
        except accounts.SignInRefused as exc:
            error = str(exc)
        else:
            if user.two_factor_enabled:
                session[PENDING_KEY] = {"id": user.id, "v": user.session_version, "at": int(time.time())}
                return redirect(url_for("staff.login_code", next=next_url))
            return _finish_sign_in(user, next_url)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/login.html", form=form, error=error), status


def _pending_user() -> StaffUser | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    user = db.session.get(StaffUser, pending.get("id"))
    if user is None or user.session_version != pending.get("v"):
        return None
    return user


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.shared_limit(_signin_limit, scope="staff-sign-in", methods=["POST"])
def login_code():  # type: ignore[no-untyped-def]
    user = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        flash("Sign in again: the code must follow the password within five minutes.", "info")
        return redirect(url_for("staff.login"))
    form = forms.CodeForm()
    error = None
    if form.validate_on_submit():
        try:
            accounts.check_sign_in_code(user, form.code.data, _addr())
        except accounts.SignInRefused as exc:
            error = str(exc)
            if accounts.is_locked(user.email, _addr()):
                session.pop(PENDING_KEY, None)
        else:
            return _finish_sign_in(user, request.args.get("next"))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/login_code.html", form=form, error=error), status


@bp.post("/sign-out")
def logout():  # type: ignore[no-untyped-def]
    # CSRF protection (app-wide) has already checked the form's token.
    if current_user.is_authenticated:
        accounts.record_sign_out(_actor(), _addr())
    _end_session()
    flash("You are signed out, in this browser and any other.", "info")
    return redirect(url_for("staff.login"))


# --- Own account -----------------------------------------------------------------------------


@bp.get("/account")
@role_required(*READ)
def account():  # type: ignore[no-untyped-def]
    return render_template("staff/account.html", required=accounts.two_factor_required(current_user))


@bp.route("/account/password", methods=["GET", "POST"])
@role_required(*READ)
def password():  # type: ignore[no-untyped-def]
    form = forms.PasswordForm()
    if form.validate_on_submit():
        user = _actor()
        try:
            accounts.change_password(user, form.current.data, form.new.data, _addr())
        except accounts.StaffError as exc:
            form.current.errors = [*form.current.errors, str(exc)]
        else:
            # The old session id died with the old version: sign this browser in again.
            signed_in_at = session.get(SIGNED_IN_AT_KEY)
            login_user(user)
            session[SIGNED_IN_AT_KEY] = signed_in_at
            flash("Your password is changed. Other sessions of your account have ended.", "success")
            return redirect(url_for("staff.account"))
    status = 400 if request.method == "POST" else 200
    return render_template("staff/password.html", form=form), status


@bp.get("/account/two-factor")
@role_required(*READ)
def two_factor():  # type: ignore[no-untyped-def]
    user = _actor()
    pending = user.totp_secret is not None and not user.two_factor_enabled
    return render_template(
        "staff/two_factor.html",
        pending=pending,
        secret=user.totp_secret if pending else None,
        uri=accounts.provisioning_uri(user) if pending else None,
        required=accounts.two_factor_required(user),
        form=forms.CodeForm(),
        start_form=shared_forms.ButtonForm(),
    )


@bp.post("/account/two-factor/start")
@role_required(*READ)
def two_factor_start():  # type: ignore[no-untyped-def]
    try:
        accounts.begin_two_factor(_actor())
    except accounts.StaffError as exc:
        flash(str(exc), "error")
    return redirect(url_for("staff.two_factor"))


@bp.post("/account/two-factor/confirm")
@role_required(*READ)
def two_factor_confirm():  # type: ignore[no-untyped-def]
    form = forms.CodeForm()
    if form.validate_on_submit():
        try:
            accounts.confirm_two_factor(_actor(), form.code.data, _addr())
        except accounts.StaffError as exc:
            flash(str(exc), "error")
            return redirect(url_for("staff.two_factor"), 303)
        flash("Two-factor sign-in is on: from now on, sign-in asks for a code.", "success")
        return redirect(url_for("staff.account"), 303)
    flash("Enter the 6-digit code.", "error")
    return redirect(url_for("staff.two_factor"), 303)


@bp.post("/account/two-factor/off")
@role_required(*READ)
def two_factor_off():  # type: ignore[no-untyped-def]
    form = forms.CodeForm()
    if form.validate_on_submit():
        try:
            accounts.turn_off_two_factor(_actor(), form.code.data, _addr())
        except accounts.StaffError as exc:
            flash(str(exc), "error")
        else:
            flash("Two-factor sign-in is off.", "success")
    return redirect(url_for("staff.account"))


# --- Dashboard -------------------------------------------------------------------------------


@bp.get("/")
@role_required(*READ)
def dashboard():  # type: ignore[no-untyped-def]
    return render_template("staff/dashboard.html", board=dashboard_queries.dashboard())


# --- Gifts -----------------------------------------------------------------------------------


def _fund_choices(first: tuple[Any, str] | None = None, *, active_only: bool = False) -> list[SelectChoice]:
    pairs = [
        (fund.id, fund.name if fund.active else f"{fund.name} (inactive)")
        for fund in fund_ledger.funds_for_choice(active_only=active_only)
    ]
    return shared_forms.choices([first, *pairs] if first else pairs)


@bp.get("/gifts")
@role_required(*READ)
def gifts():  # type: ignore[no-untyped-def]
    form = forms.GiftFilterForm(formdata=request.args)
    form.fund.choices = shared_forms.choices(
        [("", "Any fund"), *((str(fund.id), fund.name) for fund in fund_ledger.funds_for_choice())]
    )
    page = queries.GiftPage([], None)
    status = 200
    if form.validate():
        try:
            after = queries.GiftCursor.decode(form.after.data) if form.after.data else None
        except queries.BadCursor as exc:
            form.after.errors = [str(exc)]
            status = 400
        else:
            filters = queries.GiftFilters(
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
            page = queries.gift_page(filters, after)
    else:
        status = 400
    next_url = None
    if page.next_cursor is not None:
        arguments = {key: value for key, value in request.args.items() if key != "after" and value}
        next_url = url_for("staff.gifts", **arguments, after=page.next_cursor.encode())
    first_url = url_for("staff.gifts", **{k: v for k, v in request.args.items() if k != "after" and v})
    return render_template(
        "staff/gifts.html",
        form=form,
        page=page,
        by_start=form.status.data in UNPAID_STATUSES,
        next_url=next_url,
        first_url=first_url if form.after.data else None,
    ), status


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
    designation_form.fund.choices = _fund_choices()
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
def gift(gift_id: int):  # type: ignore[no-untyped-def]
    return _render_gift(_gift_or_404(gift_id))


@bp.post("/gifts/<row_id:gift_id>/refund")
@role_required(*MONEY)
def gift_refund(gift_id: int):  # type: ignore[no-untyped-def]
    gift = _gift_or_404(gift_id)
    form = forms.RefundForm()
    if not form.validate_on_submit():
        return _render_gift(gift, refund_form=form, status=400)
    try:
        refund_id = refunds.request_refund(
            gift.id, form.amount.cents, form.reason.data, actor=_actor(), remote_addr=_addr()
        )
    except (refunds.RefundError, GatewayError) as exc:
        db.session.rollback()
        form.amount.errors = [*form.amount.errors, f"The refund was not made: {exc}."]
        return _render_gift(_gift_or_404(gift_id), refund_form=form, status=400)
    flash(f"Refund {refund_id} requested. Its reversal appears here when Stripe confirms it.", "success")
    return redirect(url_for("staff.gift", gift_id=gift_id), 303)


@bp.post("/gifts/<row_id:gift_id>/designation")
@role_required(*MONEY)
def gift_designation(gift_id: int):  # type: ignore[no-untyped-def]
    gift = _gift_or_404(gift_id)
    form = forms.DesignationForm()
    form.fund.choices = _fund_choices()
    if form.validate_on_submit():
        designation = Designation(form.fund.data, form.tribute_kind.data or None, form.tribute_name.data)
        try:
            service.change_gift_designation(gift.id, designation, form.reason.data, _actor(), _addr())
        except USER_ERRORS as exc:
            form.reason.errors = [*form.reason.errors, str(exc)]
        else:
            flash("The gift is changed; the change is in its history below.", "success")
            return redirect(url_for("staff.gift", gift_id=gift_id), 303)
    return _render_gift(_gift_or_404(gift_id), designation_form=form, status=400)


# --- Donors ----------------------------------------------------------------------------------


@bp.get("/donors")
@role_required(*READ)
def donors():  # type: ignore[no-untyped-def]
    form = forms.DonorSearchForm(formdata=request.args)
    if not form.validate():
        return render_template("staff/donors.html", form=form, matches=[]), 400
    matches = donor_ledger.search(form.q.data or "")
    return render_template("staff/donors.html", form=form, matches=matches)


def _donor_or_404(donor_id: int) -> Donor:
    donor = db.session.get(Donor, donor_id)
    if donor is None:
        abort(404, "There is no such donor.")
    return donor


def _statement_url(donor_id: int, year: int | None = None) -> str:
    """The receipts area's annual statement page for this donor (and year)."""
    endpoint = "receipts_staff.statement_years" if year is None else "receipts_staff.statement"
    return url_for(endpoint, donor_id=donor_id, **({} if year is None else {"year": year}))


def _render_donor(donor: Donor, merge_form: forms.MergeForm | None = None, status: int = 200) -> tuple[str, int]:
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
        merge_form=merge_form or forms.MergeForm(),
    ), status


@bp.get("/donors/<row_id:donor_id>")
@role_required(*READ)
def donor(donor_id: int):  # type: ignore[no-untyped-def]
    return _render_donor(_donor_or_404(donor_id))


@bp.post("/donors/<row_id:donor_id>/merge")
@role_required(*MONEY)
def donor_merge(donor_id: int):  # type: ignore[no-untyped-def]
    kept = _donor_or_404(donor_id)
    form = forms.MergeForm()
    if form.validate_on_submit():
        try:
            result = service.merge_donors(form.duplicate.data, kept.id, _actor(), _addr())
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


# --- Offline gifts ---------------------------------------------------------------------------


@bp.route("/offline/new", methods=["GET", "POST"])
@role_required(*MONEY)
def offline_gift():  # type: ignore[no-untyped-def]
    form = forms.OfflineGiftForm()
    form.fund.choices = _fund_choices(active_only=True)
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
            anonymous=form.anonymous.data,
            tribute_kind=form.tribute_kind.data or None,
            tribute_name=form.tribute_name.data,
            memo=form.memo.data or None,
            send_receipt=form.send_receipt.data,
        )
        try:
            gift = service.record_offline_gift(entry, _actor(), _addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            flash(f"Gift #{gift.id} recorded.", "success")
            return redirect(url_for("staff.gift", gift_id=gift.id), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/offline_gift.html", form=form, error=error), status


@bp.route("/offline/batch", methods=["GET", "POST"])
@role_required(*MONEY)
def offline_batch():  # type: ignore[no-untyped-def]
    form = forms.BatchForm()
    form.fund.choices = _fund_choices(active_only=True)
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
            gifts = service.record_offline_batch(entries, _actor(), _addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            total = sum(gift.amount_cents for gift in gifts)
            flash(f"{len(gifts)} checks recorded, {format_money(total)} in all.", "success")
            return redirect(url_for("staff.gifts", source="check"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/offline_batch.html", form=form, error=error), status


# --- Funds -----------------------------------------------------------------------------------


@bp.get("/funds")
@role_required(*READ)
def funds():  # type: ignore[no-untyped-def]
    all_funds = fund_ledger.funds_for_choice()
    return render_template("staff/funds.html", funds=all_funds, raised=fund_ledger.raised_by_fund())


def _fund_settings(form: forms.FundForm) -> service.FundSettings:
    return service.FundSettings(
        slug=(form.slug.data or "").strip(),
        name=form.name.data.strip(),
        description=(form.description.data or "").strip(),
        goal_cents=form.goal.cents,
        suggested_amounts=form.suggested_amounts(),
        active=form.active.data,
        is_default=form.is_default.data,
        show_progress=form.show_progress.data,
    )


@bp.route("/funds/new", methods=["GET", "POST"])
@role_required(*ADMIN)
def fund_new():  # type: ignore[no-untyped-def]
    form = forms.FundForm()
    error = None
    if form.validate_on_submit():
        try:
            fund = service.create_fund(_fund_settings(form), _actor(), _addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            flash(f"Fund {fund.name} created: gifts at /give/{fund.slug}.", "success")
            return redirect(url_for("staff.funds"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/fund_form.html", form=form, fund=None, error=error), status


@bp.route("/funds/<row_id:fund_id>", methods=["GET", "POST"])
@role_required(*ADMIN)
def fund_edit(fund_id: int):  # type: ignore[no-untyped-def]
    fund = db.session.get(Fund, fund_id)
    if fund is None:
        abort(404, "There is no such fund.")
    if request.method == "GET":
        suggested = fund.suggested_amounts or {}
        form = forms.FundForm(
            data={
                "name": fund.name,
                "slug": fund.slug,
                "description": fund.description,
                "goal": "" if fund.goal_cents is None else f"{fund.goal_cents / 100:.2f}",
                "one_time": suggested.get("one_time", []),
                "monthly": suggested.get("monthly", []),
                "annual": suggested.get("annual", []),
                "active": fund.active,
                "is_default": fund.is_default,
                "show_progress": fund.show_progress,
            }
        )
    else:
        form = forms.FundForm()
    error = None
    if form.validate_on_submit():
        try:
            service.update_fund(fund.id, _fund_settings(form), _actor(), _addr())
        except USER_ERRORS as exc:
            error = str(exc)
        else:
            flash("Fund saved.", "success")
            return redirect(url_for("staff.funds"), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/fund_form.html", form=form, fund=fund, error=error), status


# --- Audit log -------------------------------------------------------------------------------


@bp.get("/audit")
@role_required(*MONEY)
def audit():  # type: ignore[no-untyped-def]
    form = forms.AuditFilterForm(formdata=request.args)
    users = queries.staff_users()
    form.user.choices = shared_forms.choices(
        [("", "Anyone"), ("none", "No staff user (CLI, system, unknown)")] + [(str(u.id), u.email) for u in users]
    )
    form.action.choices = shared_forms.choices([("", "Any action")] + [(a, a) for a in queries.audit_actions()])
    if not form.validate():
        return render_template("staff/audit.html", form=form, page=queries.AuditPage([], None), next_url=None), 400
    page = queries.audit_page(
        user_id=int(form.user.data) if form.user.data and form.user.data.isdigit() else None,
        anonymous=form.user.data == "none",
        action=form.action.data or None,
        before=form.before.data,
    )
    next_url = None
    if page.next_before is not None:
        arguments = {key: value for key, value in request.args.items() if key != "before" and value}
        next_url = url_for("staff.audit", **arguments, before=page.next_before)
    return render_template("staff/audit.html", form=form, page=page, next_url=next_url)


# --- Staff users -----------------------------------------------------------------------------


def _staff_user_or_404(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None:
        abort(404, "There is no such staff user.")
    return user


def _render_users(form: forms.StaffUserForm | None = None, status: int = 200, **extra: Any) -> tuple[str, int]:
    return render_template(
        "staff/users.html",
        users=queries.staff_users(),
        form=form or forms.StaffUserForm(),
        role_form=forms.RoleForm(),
        button=shared_forms.ButtonForm(),
        roles=[role.value for role in Role],
        **extra,
    ), status


@bp.get("/users")
@role_required(*ADMIN)
def users():  # type: ignore[no-untyped-def]
    return _render_users()


@bp.post("/users")
@role_required(*ADMIN)
def user_new():  # type: ignore[no-untyped-def]
    form = forms.StaffUserForm()
    if form.validate_on_submit():
        try:
            user, one_time = accounts.add_staff_user(
                form.email.data, form.role.data, form.name.data or None, _actor(), _addr()
            )
        except accounts.StaffError as exc:
            form.email.errors = [*form.email.errors, str(exc)]
        else:
            # Shown once, on this response only (never stored in the session or the log).
            return _render_users(created=user, one_time_password=one_time)
    return _render_users(form, status=400)


def _user_action(user_id: int, action: str) -> Response:
    user = _staff_user_or_404(user_id)
    try:
        if action == "role":
            form = forms.RoleForm()
            if not form.validate_on_submit():
                raise accounts.StaffError("Choose a role.")
            accounts.change_role(user, form.role.data, _actor(), _addr())
            flash(f"{user.email} is now {user.role}.", "success")
        elif action == "deactivate":
            accounts.set_active(user, False, _actor(), _addr())
            flash(f"{user.email} is deactivated and signed out everywhere.", "success")
        elif action == "activate":
            accounts.set_active(user, True, _actor(), _addr())
            flash(f"{user.email} is active again.", "success")
        elif action == "reset-two-factor":
            accounts.reset_two_factor(user, _actor(), _addr())
            flash(f"Two-factor sign-in of {user.email} is reset.", "success")
    except accounts.StaffError as exc:
        flash(str(exc), "error")
    return redirect(url_for("staff.users"), 303)


@bp.post("/users/<row_id:user_id>/role")
@role_required(*ADMIN)
def user_role(user_id: int):  # type: ignore[no-untyped-def]
    return _user_action(user_id, "role")


@bp.post("/users/<row_id:user_id>/deactivate")
@role_required(*ADMIN)
def user_deactivate(user_id: int):  # type: ignore[no-untyped-def]
    return _user_action(user_id, "deactivate")


@bp.post("/users/<row_id:user_id>/activate")
@role_required(*ADMIN)
def user_activate(user_id: int):  # type: ignore[no-untyped-def]
    return _user_action(user_id, "activate")


@bp.post("/users/<row_id:user_id>/reset-two-factor")
@role_required(*ADMIN)
def user_reset_two_factor(user_id: int):  # type: ignore[no-untyped-def]
    return _user_action(user_id, "reset-two-factor")


@bp.post("/users/<row_id:user_id>/reset-password")
@role_required(*ADMIN)
def user_reset_password(user_id: int):  # type: ignore[no-untyped-def]
    user = _staff_user_or_404(user_id)
    one_time = accounts.reset_password(user, _actor(), _addr())
    return _render_users(reset=user, one_time_password=one_time)[0]
