"""Monthly recurring revenue is integer cents, half a cent rounded up, at any size (a float
would round half to even, and lose cents beyond 2**53); times on staff pages are shown in the
newsroom's zone by one app-wide filter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import render_template_string

from donations.extensions import db
from donations.ledger.models import Membership
from donations.staff import dashboard
from tests.factories import make_donor, make_fund


def add_active(amounts: list[tuple[int, str]]) -> None:
    fund, donor = make_fund(), make_donor()
    for amount, interval in amounts:
        db.session.add(
            Membership(donor_id=donor.id, fund_id=fund.id, amount_cents=amount, interval=interval, status="active")
        )
    db.session.commit()


@pytest.mark.parametrize(
    ("amounts", "monthly"),
    [
        ([(6, "year")], 1),  # half a cent: up, where round() would give 0
        ([(30, "year")], 3),  # 2.5 cents: up, where round() would give 2
        ([(5, "year")], 0),
        ([(1_000, "month"), (12_000, "year")], 2_000),
        # 2**55 / 12 = ...330.67, which a float holds only to the half: it came out ...330.
        ([(2**55, "year")], 3_002_399_751_580_331),
    ],
)
def test_monthly_recurring_revenue_is_exact_integer_cents(app, amounts, monthly):
    add_active(amounts)
    assert dashboard.members().monthly_recurring_cents == monthly


def test_staff_time_is_one_app_wide_filter_in_the_newsroom_zone(app):
    with app.test_request_context("/give"):  # outside the staff console too
        shown = render_template_string(
            "{{ winter|staff_time }} / {{ summer|staff_time }} / {{ none|staff_time }}",
            winter=datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
            summer=datetime(2026, 7, 15, 12, 0, tzinfo=UTC),
            none=None,
        )
    assert shown == "2026-01-15 04:00 PST / 2026-07-15 05:00 PDT / —"
