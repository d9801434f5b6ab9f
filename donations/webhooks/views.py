"""Admins' pages for outgoing webhooks: the endpoints (add, edit, turn on or off, a new secret,
shown once, delete after a confirmation) and each endpoint's delivery log with a resend button.
Every write is audited."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from donations.accounts.roles import ADMIN, role_required
from donations.extensions import unit_of_work
from donations.forms import ButtonForm
from donations.webhooks import admin
from donations.webhooks.forms import EndpointForm
from donations.webhooks.models import DELIVERY_STATUS_WORDS, EVENT_WORDS, WebhookEndpoint
from donations.webhooks.signing import HEADER

bp = Blueprint("webhooks_staff", __name__, url_prefix="/staff/webhooks")


def _check_button() -> None:
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; reload the page and try again.")


def _settings(form: EndpointForm) -> admin.EndpointSettings:
    return admin.EndpointSettings(
        url=form.url.data or "",
        description=form.description.data or "",
        event_types=list(form.event_types.data or []),
        enabled=bool(form.enabled.data),
    )


def _show_secret(endpoint: WebhookEndpoint, what: str) -> ResponseReturnValue:
    """The secret, in this one answer only (never in a redirect, the session or the log)."""
    response = make_response(
        render_template("webhooks/secret.html", endpoint=endpoint, what=what, header=HEADER, words=EVENT_WORDS)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@role_required(*ADMIN)
def endpoints() -> ResponseReturnValue:
    return render_template(
        "webhooks/endpoints.html",
        endpoints=admin.endpoints(),
        counts=admin.delivery_counts(),
        words=EVENT_WORDS,
        form=EndpointForm(formdata=None),
    )


@bp.post("/")
@role_required(*ADMIN)
def create() -> ResponseReturnValue:
    form = EndpointForm()
    error = None
    if form.validate_on_submit():
        try:
            with unit_of_work():
                endpoint = admin.create_endpoint(_settings(form), actor=current_user, remote_addr=request.remote_addr)
        except admin.WebhookAdminError as exc:
            error = str(exc)
        else:
            return _show_secret(endpoint, "added")
    return (
        render_template(
            "webhooks/endpoints.html",
            endpoints=admin.endpoints(),
            counts=admin.delivery_counts(),
            words=EVENT_WORDS,
            form=form,
            error=error,
        ),
        400,
    )


@bp.route("/<row_id:endpoint_id>", methods=["GET", "POST"])
@role_required(*ADMIN)
def endpoint(endpoint_id: int) -> ResponseReturnValue:
    try:
        found = admin.get_endpoint(endpoint_id)
    except admin.NotFound:
        abort(404)
    form = EndpointForm(obj=found) if request.method == "GET" else EndpointForm()
    error, status = None, 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                with unit_of_work():
                    admin.update_endpoint(
                        endpoint_id, _settings(form), actor=current_user, remote_addr=request.remote_addr
                    )
            except admin.WebhookAdminError as exc:
                error = str(exc)
            else:
                flash("The endpoint is saved.", "success")
                return redirect(url_for(".endpoint", endpoint_id=endpoint_id), 303)
        status = 400
        found = admin.get_endpoint(endpoint_id)
    return (
        render_template(
            "webhooks/endpoint.html",
            endpoint=found,
            form=form,
            error=error,
            button=ButtonForm(),
            deliveries=admin.delivery_log(endpoint_id),
            status_words=DELIVERY_STATUS_WORDS,
            words=EVENT_WORDS,
        ),
        status,
    )


@bp.post("/<row_id:endpoint_id>/secret")
@role_required(*ADMIN)
def rotate(endpoint_id: int) -> ResponseReturnValue:
    _check_button()
    try:
        with unit_of_work():
            endpoint = admin.rotate_secret(endpoint_id, actor=current_user, remote_addr=request.remote_addr)
    except admin.NotFound:
        abort(404)
    return _show_secret(endpoint, "given a new secret")


@bp.route("/<row_id:endpoint_id>/delete", methods=["GET", "POST"])
@role_required(*ADMIN)
def delete(endpoint_id: int) -> ResponseReturnValue:
    """GET: what deleting takes away, and the button; POST: delete."""
    try:
        found = admin.get_endpoint(endpoint_id)
    except admin.NotFound:
        abort(404)
    if request.method == "GET":
        counts = admin.delivery_counts().get(endpoint_id, {})
        return render_template(
            "webhooks/delete.html", endpoint=found, deliveries=sum(counts.values()), button=ButtonForm()
        )
    _check_button()
    url = found.url
    try:
        with unit_of_work():
            removed = admin.delete_endpoint(endpoint_id, actor=current_user, remote_addr=request.remote_addr)
    except admin.NotFound:
        abort(404)
    log_words = "1 delivery" if removed == 1 else f"{removed} deliveries"
    flash(f"The endpoint {url} is deleted, with its log of {log_words}.", "success")
    return redirect(url_for(".endpoints"), 303)


@bp.post("/deliveries/<row_id:delivery_id>/resend")
@role_required(*ADMIN)
def resend(delivery_id: int) -> ResponseReturnValue:
    _check_button()
    try:
        with unit_of_work():
            delivery = admin.resend(delivery_id, actor=current_user, remote_addr=request.remote_addr)
            endpoint_id = delivery.endpoint_id
    except admin.NotFound:
        abort(404)
    except admin.WebhookAdminError as exc:
        flash(str(exc).capitalize() + ".", "error")
        return redirect(url_for(".endpoints"), 303)
    flash(f"Delivery {delivery_id} is queued again; the worker sends it within moments.", "success")
    return redirect(url_for(".endpoint", endpoint_id=endpoint_id), 303)
