"""Test fixtures. The suite runs once on SQLite (default) and once on PostgreSQL
(TEST_DATABASE_URL). The schema is made by the Alembic migrations, as in production.

Each test runs in an app context of its own (its database session, its `g`), and every request
a test client makes runs in another one of its own, as in production: two clients in one test
are two browsers, sharing nothing with each other or with the test but the database."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import create_engine, make_url, text
from werkzeug.test import TestResponse

from donations import create_app
from donations.extensions import db, limiter
from tests.stripe_events import insert_test_installation


class RequestClient(FlaskClient):
    """A test client whose every request pushes an app context of its own. (Flask's request
    context reuses the app context it finds, which in a test is the test's own.)"""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        with self.application.app_context():
            return super().open(*args, **kwargs)


# Every app a test makes (create_app in a test, too) hands out such clients.
Flask.test_client_class = RequestClient

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"

# In CI every run tries the same examples, so a red build is reproducible and never a fluke;
# locally Hypothesis keeps exploring new ones.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if IN_CI:
    settings.load_profile("ci")


def _database_url() -> str:
    if TEST_DATABASE_URL:
        return _worker_database(TEST_DATABASE_URL)
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


def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker has a PostgreSQL database of its own, the given one's name
    with the worker's id appended (`test_gw0`, made on first use); alone, the given one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not url.startswith("postgres"):
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _create_database(url: str) -> None:
    """Make the worker's database through the given one (which must exist), if it is missing."""
    name = make_url(url).database
    engine = create_engine(_psycopg(TEST_DATABASE_URL or url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # One at a time: concurrent CREATE DATABASE from one template can refuse each other.
            connection.execute(text("SELECT pg_advisory_lock(1414)"))
            if not connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            connection.execute(text("SELECT pg_advisory_unlock(1414)"))
    finally:
        engine.dispose()


def _reset_postgresql(url: str) -> None:
    engine = create_engine(_psycopg(url))
    try:
        if url != TEST_DATABASE_URL:
            _create_database(url)
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
    """The test's own app context, and an empty database after it."""
    with app.app_context():
        with db.engine.begin() as connection:  # this database's installation id, known to tests
            insert_test_installation(connection)
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
