"""Sign-in (password, then the two-factor code), sign-out, the session's gates, and a staff
user's own account: password and two-factor sign-in.

Sign-in, the two-factor step and sign-out are the only staff views open without a session.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from donations import forms as shared_forms
from donations.accounts import service as accounts
from donations.accounts.models import StaffUser
from donations.accounts.roles import READ, role_required
from donations.extensions import db, limiter, login_manager, unit_of_work
from donations.staff import forms
from donations.staff.views.console import bp, current_actor, remote_addr

login_manager.login_view = "staff.login"
login_manager.login_message = "Sign in to use the staff console."
login_manager.login_message_category = "info"

PENDING_KEY = "staff_pending_sign_in"  # password checked, waiting for the two-factor code
PENDING_SECONDS = 300
SIGNED_IN_AT_KEY = "staff_signed_in_at"
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


def _open_session(user: StaffUser, next_url: str | None) -> Response:
    """After the sign-in is committed (accounts.complete_sign_in): this browser's new session."""
    session.clear()  # nothing from before sign-in survives it (the CSRF token is renewed too)
    session.permanent = True
    login_user(user)
    session[SIGNED_IN_AT_KEY] = int(time.time())
    return redirect(_safe_next(next_url))


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.shared_limit(_signin_limit, scope="staff-sign-in", methods=["POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("staff.dashboard"))
    form = forms.SignInForm()
    next_url = request.args.get("next")
    error = None
    if form.validate_on_submit():
        user = None
        # The refusal is caught inside the unit of work: its failure count and audit entry commit.
        with unit_of_work():
            try:
                user = accounts.check_credentials(form.email.data, form.password.data, remote_addr())
            except accounts.SignInRefused as exc:
                error = str(exc)
            else:
                if not user.two_factor_enabled:
                    accounts.complete_sign_in(user, remote_addr())
        if user is not None and user.two_factor_enabled:
            session[PENDING_KEY] = {"id": user.id, "v": user.session_version, "at": int(time.time())}
            return redirect(url_for("staff.login_code", next=next_url))
        if user is not None:
            return _open_session(user, next_url)
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
def login_code() -> ResponseReturnValue:
    user = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        flash("Sign in again: the code must follow the password within five minutes.", "info")
        return redirect(url_for("staff.login"))
    form = forms.CodeForm()
    error = None
    if form.validate_on_submit():
        # As at the password: a refusal commits its failure count and audit entry.
        with unit_of_work():
            try:
                accounts.check_sign_in_code(user, form.code.data, remote_addr())
            except accounts.SignInRefused as exc:
                error = str(exc)
            else:
                accounts.complete_sign_in(user, remote_addr())
        if error is None:
            return _open_session(user, request.args.get("next"))
        if accounts.is_locked(user.email, remote_addr()):
            session.pop(PENDING_KEY, None)
    status = 400 if request.method == "POST" else 200
    return render_template("staff/login_code.html", form=form, error=error), status


@bp.post("/sign-out")
def logout() -> ResponseReturnValue:
    # CSRF protection (app-wide) has already checked the form's token.
    if current_user.is_authenticated:
        with unit_of_work():
            accounts.record_sign_out(current_actor(), remote_addr())
    _end_session()
    flash("You are signed out, in this browser and any other.", "info")
    return redirect(url_for("staff.login"))


# --- Own account -----------------------------------------------------------------------------


@bp.get("/account")
@role_required(*READ)
def account() -> ResponseReturnValue:
    return render_template("staff/account.html", required=accounts.two_factor_required(current_user))


@bp.route("/account/password", methods=["GET", "POST"])
@role_required(*READ)
def password() -> ResponseReturnValue:
    form = forms.PasswordForm()
    if form.validate_on_submit():
        user = current_actor()
        try:
            with unit_of_work():
                accounts.change_password(user, form.current.data, form.new.data, remote_addr())
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
def two_factor() -> ResponseReturnValue:
    user = current_actor()
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
def two_factor_start() -> ResponseReturnValue:
    try:
        with unit_of_work():
            accounts.begin_two_factor(current_actor())
    except accounts.StaffError as exc:
        flash(str(exc), "error")
    return redirect(url_for("staff.two_factor"))


@bp.post("/account/two-factor/confirm")
@role_required(*READ)
def two_factor_confirm() -> ResponseReturnValue:
    form = forms.CodeForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                accounts.confirm_two_factor(current_actor(), form.code.data, remote_addr())
        except accounts.StaffError as exc:
            flash(str(exc), "error")
            return redirect(url_for("staff.two_factor"), 303)
        flash("Two-factor sign-in is on: from now on, sign-in asks for a code.", "success")
        return redirect(url_for("staff.account"), 303)
    flash("Enter the 6-digit code.", "error")
    return redirect(url_for("staff.two_factor"), 303)


@bp.post("/account/two-factor/off")
@role_required(*READ)
def two_factor_off() -> ResponseReturnValue:
    form = forms.CodeForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                accounts.turn_off_two_factor(current_actor(), form.code.data, remote_addr())
        except accounts.StaffError as exc:
            flash(str(exc), "error")
        else:
            flash("Two-factor sign-in is off.", "success")
    return redirect(url_for("staff.account"))
