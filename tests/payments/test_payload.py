"""Reading ids out of Stripe payloads: one validated reader for every handler and for
reconciliation, so that an id no column can hold is kept with its reason, never written."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.payments.handlers.payload import object_id
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.payments import support as me


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ch_1", "ch_1"),
        ({"id": "ch_1", "object": "charge"}, "ch_1"),
        (None, None),
        ("", None),
        ({}, None),
        ({"id": 5}, None),  # an id of the wrong type reads as missing
        (5, None),
    ],
)
def test_object_id_reads_an_id_or_its_expanded_object(value, expected):
    assert object_id(value) == expected


@pytest.mark.parametrize("value", ["x" * 256, {"id": "x" * 256}, "ch_\x00"])
def test_object_id_refuses_what_no_column_can_hold(value):
    with pytest.raises(ValueError, match="255 characters or holds a NUL"):
        object_id(value)


def test_a_refund_naming_an_oversized_charge_is_kept_with_the_reason(client, webhook_secret):
    refund = me.refund(amount=1_000, payment_intent=None, charge="ch_" + "x" * 300)
    payload = se.event("refund.created", refund)
    response = se.post_event(client, payload, webhook_secret)
    assert (response.status_code, response.json["outcome"]) == (200, "deferred")
    stored = db.session.scalars(select(StripeEvent).where(StripeEvent.id == payload["id"])).one()
    assert stored.error.startswith("could not apply: ValueError: a text field is longer than 255")
