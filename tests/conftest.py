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
from sqlalchemy import create_engine, text

from donations import create_app
from donations.extensions import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


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
        upgrade(revision="heads")
    yield application


def _empty_all_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        with db.engine.begin() as connection:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _clean_database(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()
        _empty_all_tables()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def webhook_secret(app: Flask) -> str:
    return app.config["STRIPE_WEBHOOK_SECRET"]
