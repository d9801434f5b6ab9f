"""Who may see what: every staff view is wrapped in `role_required`."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user, login_required

from donations.accounts.models import Role

F = TypeVar("F", bound=Callable[..., Any])

READ = (Role.ADMIN, Role.FINANCE, Role.VIEWER)
MONEY = (Role.ADMIN, Role.FINANCE)  # gifts, refunds, offline gifts, exports
ADMIN = (Role.ADMIN,)


def role_required(*roles: str) -> Callable[[F], F]:
    """Signed out: redirect to sign-in. Signed in without one of `roles`: 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate
