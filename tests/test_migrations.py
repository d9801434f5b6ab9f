"""The schema the migrations make is the one the models declare (types included), on SQLite and
on PostgreSQL; and on PostgreSQL every timestamp keeps its instant whatever the session's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from donations import create_app
from donations.extensions import db
from donations.payments import events
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.conftest import TEST_CONFIG


def test_the_migrated_schema_is_the_models_schema(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


@pytest.mark.postgresql_only
def test_timestamps_keep_their_instant_in_a_session_outside_utc(app, database_url):
    # A PostgreSQL server whose time zone is not UTC (a newsroom's own machine): a column without
    # its time zone stored the instant as that zone's wall-clock time and read it back as UTC.
    elsewhere = create_app(
        "testing",
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"options": "-c timezone=America/Los_Angeles"}},
        },
    )
    payload = se.event("checkout.session.completed", se.checkout_session())
    try:
        with elsewhere.app_context():
            events.store(payload, via="sync")
            stored = db.session.scalars(select(StripeEvent).where(StripeEvent.id == payload["id"])).one()
            assert stored.next_attempt_at == stored.received_at  # the same instant, written together
            assert abs(stored.received_at - datetime.now(UTC)).total_seconds() < 60
    finally:
        with elsewhere.app_context():
            db.engine.dispose()
