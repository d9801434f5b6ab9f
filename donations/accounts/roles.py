"""Who may see what: every staff view is wrapped in `role_required`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import abort
from flask_login import current_user, login_required

from donations.accounts.models import Role

P = ParamSpec("P")
R = TypeVar("R")

READ = (Role.ADMIN, Role.FINANCE, Role.VIEWER)
MONEY = (Role.ADMIN, Role.FINANCE)  # gifts, refunds, offline gifts, exports
ADMIN = (Role.ADMIN,)


def role_required(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Signed out: redirect to sign-in. Signed in without one of `roles`: 403."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        @login_required
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate
