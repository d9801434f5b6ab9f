"""Staff users (add, change role, deactivate, reset) and the audit log."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from donations import forms as shared_forms
from donations.accounts import service as accounts
from donations.accounts.models import Role, StaffUser
from donations.accounts.roles import ADMIN, MONEY, role_required
from donations.extensions import db, unit_of_work
from donations.staff import forms, queries
from donations.staff.views.console import bp, current_actor, remote_addr


@bp.get("/audit")
@role_required(*MONEY)
def audit() -> ResponseReturnValue:
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
        arguments: dict[str, Any] = {key: value for key, value in request.args.items() if key != "before" and value}
        next_url = url_for("staff.audit", **arguments, before=page.next_before)
    return render_template("staff/audit.html", form=form, page=page, next_url=next_url)


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
def users() -> ResponseReturnValue:
    return _render_users()


@bp.post("/users")
@role_required(*ADMIN)
def user_new() -> ResponseReturnValue:
    form = forms.StaffUserForm()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user, one_time = accounts.add_staff_user(
                    form.email.data, form.role.data, form.name.data or None, current_actor(), remote_addr()
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
        with unit_of_work():
            if action == "role":
                form = forms.RoleForm()
                if not form.validate_on_submit():
                    raise accounts.StaffError("Choose a role.")
                accounts.change_role(user, form.role.data, current_actor(), remote_addr())
                flash(f"{user.email} is now {user.role}.", "success")
            elif action == "deactivate":
                accounts.set_active(user, False, current_actor(), remote_addr())
                flash(f"{user.email} is deactivated and signed out everywhere.", "success")
            elif action == "activate":
                accounts.set_active(user, True, current_actor(), remote_addr())
                flash(f"{user.email} is active again.", "success")
            elif action == "reset-two-factor":
                accounts.reset_two_factor(user, current_actor(), remote_addr())
                flash(f"Two-factor sign-in of {user.email} is reset.", "success")
    except accounts.StaffError as exc:
        flash(str(exc), "error")
    return redirect(url_for("staff.users"), 303)


@bp.post("/users/<row_id:user_id>/role")
@role_required(*ADMIN)
def user_role(user_id: int) -> ResponseReturnValue:
    return _user_action(user_id, "role")


@bp.post("/users/<row_id:user_id>/deactivate")
@role_required(*ADMIN)
def user_deactivate(user_id: int) -> ResponseReturnValue:
    return _user_action(user_id, "deactivate")


@bp.post("/users/<row_id:user_id>/activate")
@role_required(*ADMIN)
def user_activate(user_id: int) -> ResponseReturnValue:
    return _user_action(user_id, "activate")


@bp.post("/users/<row_id:user_id>/reset-two-factor")
@role_required(*ADMIN)
def user_reset_two_factor(user_id: int) -> ResponseReturnValue:
    return _user_action(user_id, "reset-two-factor")


@bp.post("/users/<row_id:user_id>/reset-password")
@role_required(*ADMIN)
def user_reset_password(user_id: int) -> ResponseReturnValue:
    user = _staff_user_or_404(user_id)
    with unit_of_work():
        one_time = accounts.reset_password(user, current_actor(), remote_addr())
    return _render_users(reset=user, one_time_password=one_time)[0]
