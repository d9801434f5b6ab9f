"""Test fixtures. The suite runs once on SQLite (default) and once on PostgreSQL
(TEST_DATABASE_URL). The schema is made by the Alembic migrations, as in production."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import create_engine, text

from donations import create_app
from donations.extensions import db, limiter

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"

# In CI every run tries the same examples, so a red build is reproducible and never a fluke;
# locally Hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if IN_CI:
    settings.load_profile("ci")


def _database_url() -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{Path(tempfile.mkdtemp(prefix='donations-test-')) / 'test.sqlite'}"


def is_postgresql() -> bool:
    return bool(TEST_DATABASE_URL and TEST_DATABASE_URL.startswith("postgres"))


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {'PostgreSQL ' + TEST_DATABASE_URL if is_postgresql() else 'SQLite'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_postgresql():
        return
    # PostgreSQL-only tests (row locks, concurrency, volume) run in the PostgreSQL pass.
    deselected = [item for item in items if item.get_closest_marker("postgresql_only")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql_only")]


def _reset_postgresql(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    except Exception as exc:
        message = f"PostgreSQL at {url} is not reachable: {exc}"
        if IN_CI:
            pytest.exit(message, returncode=3)  # in CI a missing PostgreSQL is a failure
        raise
    finally:
        engine.dispose()


TEST_CONFIG = {
    "SERVER_NAME": "localhost",
    "RATELIMIT_STORAGE_URI": "memory://",
    # Loose, so that tests posting many gifts are not refused; tests/security sets the real ones.
    "GIVE_RATE_LIMIT": "1000 per minute",
    "DECLINE_COOLDOWN": "1000 per minute",
}


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _database_url()
    if is_postgresql():
        _reset_postgresql(url)
    return url


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    from flask_migrate import upgrade

    application = create_app("testing", {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with application.app_context():
        upgrade()
    yield application


BULK_ROWS = 10_000  # a table with more rows than this is truncated rather than deleted from


def _empty_all_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]  # children before parents
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # DELETE is about ten times faster than TRUNCATE (which makes new files for every
            # table) on the few rows a test writes; a volume test's big tables are truncated.
            bulky = [
                table
                for table in tables
                if connection.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {table} OFFSET {BULK_ROWS})"))
            ]
            if bulky:
                connection.execute(text(f"TRUNCATE {', '.join(bulky)} CASCADE"))
        for table in tables:
            connection.execute(text(f"DELETE FROM {table}"))
        if connection.dialect.name == "postgresql":
            # Ids start again from 1, as after TRUNCATE ... RESTART IDENTITY.
            connection.execute(
                text(
                    "SELECT setval(oid, 1, false) FROM pg_class"
                    " WHERE relkind = 'S' AND relnamespace = current_schema()::regnamespace"
                )
            )


@pytest.fixture(autouse=True)
def _clean_database(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()
        _empty_all_tables()
        limiter.reset()  # rate-limit and decline counters start afresh in every test


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def webhook_secret(app: Flask) -> str:
    return app.config["STRIPE_WEBHOOK_SECRET"]
