"""Staff console views under /staff/."""

from __future__ import annotations

from flask import Blueprint

from donations.extensions import db, login_manager
from donations.staff.models import StaffUser

bp = Blueprint("staff", __name__, url_prefix="/staff")


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    return db.session.get(StaffUser, int(user_id)) if user_id.isdigit() else None
