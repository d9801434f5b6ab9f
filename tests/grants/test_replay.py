"""Delivering the same Stripe events twice changes no number of any grant report.

Signed events built from Stripe's own example objects (tests/stripe_events.py) go through the
real webhook: one-time gifts, membership installments and refunds, then all of them again in
another order.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from donations.extensions import db
from donations.grants.rules import RecurringRule
from tests import stripe_events as se
from tests.factories import make_fund
from tests.grants.support import donor_rows, ledger_rows, make_program, summary
from tests.payments import support as me

EMAILS = ["Ann@Example.org", "ann@example.ORG", "bo@example.org", "cy@example.org"]
WINDOW_START = datetime(2026, 11, 1, 8, tzinfo=UTC)  # midnight Pacific


def _empty_database() -> None:
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())
        se.insert_test_installation(connection)
    db.session.expire_all()


def _stamp(day: int) -> int:
    return int((WINDOW_START + timedelta(days=day, hours=5)).timestamp())


payments = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.sampled_from(EMAILS),
            "amount": st.integers(500, 150_000),
            "day": st.integers(-20, 70),
            "business": st.booleans(),
            "refund": st.sampled_from([None, None, "part", "all"]),
        }
    ),
    max_size=6,
)
memberships = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.sampled_from(EMAILS),
            "amount": st.integers(500, 10_000),
            "first_day": st.integers(-40, 50),
            "installments": st.integers(1, 3),
        }
    ),
    max_size=3,
)


def _events(one_time: list[dict[str, Any]], recurring: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events = []
    for spec in one_time:
        session = se.checkout_session(
            amount_cents=spec["amount"],
            email=spec["email"],
            business_name="Acme LLC" if spec["business"] else None,
        )
        events.append(se.event("checkout.session.completed", session, created=_stamp(spec["day"])))
        if spec["refund"]:
            amount = spec["amount"] if spec["refund"] == "all" else spec["amount"] // 4
            refund = me.refund(amount=amount, payment_intent=session["payment_intent"], created=_stamp(spec["day"] + 2))
            events.append(se.event("refund.created", refund, created=_stamp(spec["day"] + 2)))
    for spec in recurring:
        subscription = se.unique("sub")
        for n in range(spec["installments"]):
            day = spec["first_day"] + 30 * n
            invoice = se.invoice(
                subscription=subscription,
                amount_cents=spec["amount"],
                paid_at=_stamp(day),
                period_start=_stamp(day),
                billing_reason="subscription_create" if n == 0 else "subscription_cycle",
                email=spec["email"],
                name=None,
            )
            events.append(se.event("invoice.paid", invoice, created=_stamp(day)))
    return events


def _numbers(program) -> tuple[Any, ...]:
    return (
        summary(program),
        [tuple(row.values()) for row in donor_rows(program)],
        [tuple(row.values()) for row in ledger_rows(program)],
    )


@given(
    one_time=payments,
    recurring=memberships,
    rule=st.sampled_from(list(RecurringRule)),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_delivering_the_same_events_twice_changes_no_number(client, webhook_secret, one_time, recurring, rule, seed):
    _empty_database()
    make_fund("community-forums", is_default=True)
    program = make_program(recurring_rule=rule)
    events = _events(one_time, recurring)
    for payload in events:
        response = se.post_event(client, payload, webhook_secret)
        assert response.status_code == 200, response.get_data(as_text=True)
    once = _numbers(program)

    again = list(events)
    random.Random(seed).shuffle(again)
    for payload in again:
        assert se.post_event(client, payload, webhook_secret).status_code == 200
    db.session.expire_all()
    assert _numbers(program) == once
    # Every event was applied (none left deferred): each payment dated in the window is there.
    in_window = range(0, 61)
    paid = sum(spec["day"] in in_window for spec in one_time)
    paid += sum(spec["first_day"] + 30 * n in in_window for spec in recurring for n in range(spec["installments"]))
    assert once[0]["Gifts paid in the window"] == paid
