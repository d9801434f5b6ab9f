"""Local (newsroom time zone) dates computed by the database, for GROUP BY day or year.

PostgreSQL converts with its own time zone database. SQLite has none, so each SQLite connection
gets two small functions backed by Python's zoneinfo: the grouping still runs in the database,
and both are exact across daylight-saving changes.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Integer, cast, event, extract, func
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from donations.clock import newsroom_zone
from donations.extensions import db


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _sqlite_local(value: str | None, zone_name: str) -> date | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:  # UTCDateTime stores naive UTC on SQLite
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_zone(zone_name)).date()


def _sqlite_local_date(value: str | None, zone_name: str) -> str | None:
    local = _sqlite_local(value, zone_name)
    return None if local is None else local.isoformat()


def _sqlite_local_year(value: str | None, zone_name: str) -> int | None:
    local = _sqlite_local(value, zone_name)
    return None if local is None else local.year


@event.listens_for(Engine, "connect")
def _register_sqlite_functions(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("local_date", 2, _sqlite_local_date, deterministic=True)
        dbapi_connection.create_function("local_year", 2, _sqlite_local_year, deterministic=True)


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def local_date(column: Any) -> ColumnElement[date]:
    """The newsroom-local calendar date of a UTC timestamp column."""
    zone = newsroom_zone().key
    if _is_postgresql():
        return func.date(func.timezone(zone, column), type_=Date)
    return func.local_date(column, zone, type_=Date)


def local_year(column: Any) -> ColumnElement[int]:
    """The newsroom-local calendar year of a UTC timestamp column."""
    zone = newsroom_zone().key
    if _is_postgresql():
        return cast(extract("year", func.timezone(zone, column)), Integer)
    return func.local_year(column, zone, type_=Integer)
