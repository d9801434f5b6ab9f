"""The one dialect-aware INSERT ... ON CONFLICT DO NOTHING: a second insert of the same key
writes nothing and returns no row, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import func, select

from donations.clock import utcnow
from donations.extensions import db, insert_ignoring
from donations.ledger.models import InvoicePaymentLink


def test_a_second_insert_of_the_same_key_is_ignored(app):
    statement = insert_ignoring(InvoicePaymentLink, "stripe_invoice_id").returning(
        InvoicePaymentLink.stripe_payment_intent_id
    )
    first = db.session.execute(
        statement, {"stripe_invoice_id": "in_1", "stripe_payment_intent_id": "pi_first", "created_at": utcnow()}
    ).scalar_one_or_none()
    second = db.session.execute(
        statement, {"stripe_invoice_id": "in_1", "stripe_payment_intent_id": "pi_second", "created_at": utcnow()}
    ).scalar_one_or_none()
    db.session.commit()
    assert (first, second) == ("pi_first", None)
    assert db.session.scalar(select(func.count()).select_from(InvoicePaymentLink)) == 1
    assert db.session.get(InvoicePaymentLink, "in_1").stripe_payment_intent_id == "pi_first"
