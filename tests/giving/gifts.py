"""Helpers for tests that give through /give: a valid form, the fee computed independently, and
counts of every row a gift can write."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Donor, Gift, GiftStatus
from donations.mail.models import OutboxMessage
from donations.payments.models import StripeEvent
from tests.forms import csrf_token


def expected_fee(amount_cents: int, percent: str = "2.9", fixed_cents: int = 30) -> int:
    """(amount + fixed) / (1 - rate) rounded up to the cent, minus the amount: computed with
    exact fractions, apart from the app's Decimal code."""
    rate = Fraction(percent) / 100
    return math.ceil((amount_cents + fixed_cents) / (1 - rate)) - amount_cents


def gift_form(token: str, **overrides: Any) -> dict[str, Any]:
    """A valid one-time gift of $50; `None` in overrides drops the field."""
    form: dict[str, Any] = {
        "csrf_token": token,
        "frequency": "one_time",
        "amount_choice": "5000",
        "custom_amount": "",
        "name": "Rae Reader",
        "email": "rae@example.org",
        "postal_code": "94110",
        "website": "",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def post_gift(client: FlaskClient, url: str = "/give", **overrides: Any):  # type: ignore[no-untyped-def]
    """Load the form (for its CSRF token) and post it, as a reader's browser would."""
    return client.post(url, data=gift_form(csrf_token(client, url), **overrides))


def row_counts() -> dict[str, int]:
    """How many rows of each kind a gift or an event can write."""
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Donor, Gift, StripeEvent, OutboxMessage)
    }


NOTHING_WRITTEN = {"donors": 0, "gifts": 0, "stripe_events": 0, "outbox_messages": 0}


def counted_gifts() -> int:
    """Gifts whose money arrived: pending and failed ones never count."""
    return db.session.scalar(select(func.count()).select_from(Gift).where(Gift.status == GiftStatus.PAID))


def only_gift() -> Gift:
    """The one gift, as the database has it now (requests may have changed it meanwhile)."""
    return db.session.scalars(select(Gift).execution_options(populate_existing=True)).one()
