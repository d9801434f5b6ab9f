"""This installation's id: read once and kept by the app, but never kept from a transaction that
created it and may still roll back."""

from __future__ import annotations

from sqlalchemy import delete, event, func, select

from donations.extensions import db
from donations.payments import installation
from donations.payments.models import Installation
from tests.stripe_events import TEST_INSTALLATION_ID


def stored_ids() -> list[str]:
    return list(db.session.scalars(select(Installation.installation_id)))


def test_the_id_is_read_once_and_kept(app):
    installation.forget_kept_id()
    assert installation.installation_id() == TEST_INSTALLATION_ID
    statements: list[str] = []

    def count(*args) -> None:
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert installation.installation_id() == TEST_INSTALLATION_ID
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert statements == []  # kept: no query


def test_an_id_created_in_a_transaction_that_rolls_back_is_not_kept(app):
    installation.forget_kept_id()
    db.session.execute(delete(Installation))
    db.session.commit()
    try:
        first = installation.installation_id()  # created in this transaction...
        assert installation.installation_id() == first  # ...and read back in it
        db.session.rollback()  # ...which is rolled back
        assert stored_ids() == []
        second = installation.installation_id()
        assert second != first  # the rolled-back id was not kept
        db.session.commit()
        db.session.remove()  # the next request's session reads the committed row and keeps it
        assert installation.installation_id() == second
        assert db.session.scalar(select(func.count()).select_from(Installation)) == 1
    finally:
        installation.forget_kept_id()  # the other tests' database has the test id again
