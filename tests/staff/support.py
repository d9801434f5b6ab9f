"""Staff users and signed-in clients for tests.

`sign_in` puts the user's id in the test client's session as Flask-Login does after a real
sign-in (fast: no Argon2 verification, no sign-in rate limit); the sign-in form itself is
tested in test_signin.py through `sign_in_with_form`.
"""

from __future__ import annotations

import functools
import itertools
import time
from datetime import UTC, date, datetime
from datetime import time as clock_time

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from donations.accounts import service as accounts
from donations.accounts.models import StaffUser
from donations.clock import newsroom_zone
from donations.extensions import db
from donations.staff import dashboard
from tests.forms import csrf_token

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)
_addresses = itertools.count(1)


@functools.cache
def _default_hash() -> str:
    return accounts.hash_password(PASSWORD)


def make_staff(role: str = "admin", email: str | None = None, password: str = PASSWORD, **kwargs: object) -> StaffUser:
    """A staff user; with the default password its Argon2 hash is computed once per run."""
    if password != PASSWORD:
        user = accounts.create_staff_user(email or f"{role}{next(_seq)}@newsroom.example", role, password)
    else:
        user = StaffUser(
            email=email or f"{role}{next(_seq)}@newsroom.example", role=role, password_hash=_default_hash()
        )
        db.session.add(user)
    for name, value in kwargs.items():
        setattr(user, name, value)
    db.session.commit()
    return user


def sign_in(client: FlaskClient, user: StaffUser) -> FlaskClient:
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session["staff_signed_in_at"] = int(time.time())
        session.permanent = True
    return client


def fresh_address() -> str:
    """A client address of its own (TEST-NET-3), so per-address sign-in limits of one test never
    reach another."""
    n = next(_addresses)
    return f"203.0.{113 + n // 250}.{n % 250 + 1}"


def sign_in_with_form(
    client: FlaskClient, email: str, password: str = PASSWORD, *, address: str = "198.51.100.7"
) -> TestResponse:
    token = csrf_token(client, "/staff/sign-in")
    return client.post(
        "/staff/sign-in",
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, object]) -> TestResponse:
    """Post `data` to `action` with the CSRF token of the form on `page`, as a browser would."""
    return client.post(action, data={"csrf_token": csrf_token(client, page), **data})


def local_noon(day: date) -> datetime:
    """Noon, the newsroom's time, on `day`, as the UTC moment the ledger stores."""
    return datetime.combine(day, clock_time(12), newsroom_zone()).astimezone(UTC)


def freeze_dashboard_day(monkeypatch: pytest.MonkeyPatch, day: date) -> datetime:
    """Stop the dashboard's clock at noon on `day` (returned): its "Today" is `day` however long
    the test runs, even across local midnight."""
    noon = local_noon(day)
    monkeypatch.setattr(dashboard, "utcnow", lambda: noon)
    return noon
