"""Small helpers shared by the security tests."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from donations.accounts.models import StaffUser
from donations.accounts.service import create_staff_user
from donations.clock import utcnow
from donations.extensions import db
from donations.ledger.models import Gift, GiftStatus
from donations.protection import card_testing as protection
from donations.staff.views.account import SIGNED_IN_AT_KEY
from tests import forms

_numbers = itertools.count(1)


class Browser(FlaskClient):
    """A test client that can be used beside others in one test. Each test runs inside one app
    context, which the requests share, and Flask-WTF and Flask-Login cache the CSRF token and
    the signed-in user in its `g`: without this, every client would get the first one's."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:  # type: ignore[override]
        for cached in ("csrf_token", "_login_user"):
            g.pop(cached, None)
        return super().open(*args, **kwargs)


def browser(app: Flask, address: str = "127.0.0.1") -> Browser:
    """A client whose requests come from `address`."""
    client = Browser(app, app.response_class, use_cookies=True)
    client.environ_base["REMOTE_ADDR"] = address
    return client


def csrf_token(client: FlaskClient, url: str = "/give") -> str:
    g.pop("csrf_token", None)
    return forms.csrf_token(client, url)


def signed_in(app: Flask, role: str, email: str | None = None) -> tuple[Browser, StaffUser]:
    """A client signed in (through Flask-Login's session keys) as a new staff user of `role`."""
    user = create_staff_user(email or f"{role}-{next(_numbers)}@newsroom.example", role, "correct horse battery staple")
    db.session.commit()
    client = browser(app)
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[SIGNED_IN_AT_KEY] = int(time.time())
    return client, user


def all_gifts() -> int:
    return db.session.scalar(select(func.count()).select_from(Gift))


def pending_gifts() -> int:
    return db.session.scalar(select(func.count()).select_from(Gift).where(Gift.status == GiftStatus.PENDING))


def blocked(reason: str) -> int:
    """Attempts blocked for `reason` in the last few minutes, as the dashboard reads them."""
    return protection.blocked_attempt_counts(utcnow() - timedelta(minutes=5)).get(reason, 0)
