"""The staff console's Blueprint and what all its pages share: the signed-in actor, the
template helpers, the fund choices, and the dashboard."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from donations import forms as shared_forms
from donations.accounts import service as accounts
from donations.accounts.models import StaffUser
from donations.accounts.roles import ADMIN, MONEY, READ, role_required
from donations.clock import utcnow
from donations.ledger import donors as donor_ledger
from donations.ledger import funds as fund_ledger
from donations.ledger.service import LedgerError
from donations.staff import dashboard as dashboard_queries

bp = Blueprint("staff", __name__, url_prefix="/staff")

# Errors a person can fix: shown with a 400, nothing written.
USER_ERRORS = (accounts.StaffError, LedgerError, fund_ledger.FundError, donor_ledger.MergeError)


def current_actor() -> StaffUser:
    return current_user._get_current_object()


def remote_addr() -> str | None:
    return request.remote_addr


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


def fund_choices(first: tuple[Any, str] | None = None, *, active_only: bool = False) -> list[SelectChoice]:
    pairs = [
        (fund.id, fund.name if fund.active else f"{fund.name} (inactive)")
        for fund in fund_ledger.funds_for_choice(active_only=active_only)
    ]
    return shared_forms.choices([first, *pairs] if first else pairs)


@bp.get("/")
@role_required(*READ)
def dashboard() -> ResponseReturnValue:
    return render_template("staff/dashboard.html", board=dashboard_queries.dashboard())
