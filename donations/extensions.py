"""Extensions, created unbound and bound to an app in `create_app`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import DateTime, Engine, MetaData, Table, TypeDecorator, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from werkzeug.routing import IntegerConverter

# The largest id an INTEGER primary key holds: a bigger number from a URL or a form is no row of
# ours (and would overflow the database's integer), so it is refused before any query.
MAX_ROW_ID = 2_147_483_647


class RowIdConverter(IntegerConverter):
    """`<row_id:gift_id>` in a route: a positive integer up to MAX_ROW_ID, anything bigger a 404."""

    def __init__(self, map: Any) -> None:
        super().__init__(map, max=MAX_ROW_ID)


# Named constraints so that Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime},
    )
    if TYPE_CHECKING:
        # Every model here maps a Table (none a join or a select), so Core inserts take it.
        __table__: ClassVar[Table]


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()


class FiltersFirstLimiter(Limiter):
    """Flask-Limiter, consulting its request filters before anything else: it otherwise resolves
    and evaluates the limits of every request, page views included, and only then finds a filter
    exempts it all (about 7% of a webhook delivery's CPU when Flask answered those, bench/FINDINGS.md).
    Equivalent while no meta limits are configured (none are): a filtered request has no limits."""

    def _check_request_limit(self, callable_name: str | None = None, in_middleware: bool = True) -> None:
        if any(exempt() for exempt in self._request_filters):
            return
        super()._check_request_limit(callable_name, in_middleware)


limiter = FiltersFirstLimiter(key_func=get_remote_address, default_limits=[])


@limiter.request_filter
def _reads_are_never_limited() -> bool:
    # Every limit here counts form posts (checkouts, membership links). Exempting reads up front
    # spares each page view the limiter's per-request bookkeeping (bench/, part 1).
    return request.method in ("GET", "HEAD", "OPTIONS")


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only when it has sat idle `idle_seconds` or more.

    A database restart (or a dropped connection) leaves the pool holding dead connections; a
    ping on checkout finds them and the pool replaces them, so the app recovers by itself.
    SQLAlchemy's pool_pre_ping does it on every checkout: one more round trip per request, a
    third of a webhook delivery's (bench/FINDINGS.md). A connection used moments ago is alive
    unless the database died since; then the statement fails, the request answers 503 (Stripe
    delivers again), and SQLAlchemy's disconnect handling recycles every older connection."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _last_used(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["last_used"] = monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        if monotonic() - record.info.get("last_used", float("-inf")) < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("the pooled connection is dead") from exc  # the pool tries a new one


@contextmanager
def unit_of_work() -> Iterator[None]:
    """The one transaction of a request or a CLI command: everything the block writes commits
    together at its end, or, on any exception, nothing is written (rolled back, then raised).
    Services and the ledger never commit; they flush when they need ids."""
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def insert_ignoring(target: Any, *index_elements: str, dialect: str | None = None) -> postgresql.Insert | sqlite.Insert:
    """INSERT ... ON CONFLICT (index_elements) DO NOTHING in the current session's dialect (or
    the one named, for a statement built once and kept): two transactions inserting the same row
    at once never fail each other. Add values, a SELECT or RETURNING to it like to any insert."""
    dialect = dialect or db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(target).on_conflict_do_nothing(index_elements=list(index_elements))


Claimed = TypeVar("Claimed")
Done = TypeVar("Done")


def work_one_claimed(claim: Callable[[], Claimed | None], work: Callable[[Claimed], Done]) -> Done | None:
    """One outbox row in a transaction of its own (the mail and outgoing-webhook workers): claim
    it, work it, commit; None (and nothing written) when none is due. On any error, the claim
    and the work are rolled back together: the row is due again, its attempt not counted."""
    try:
        claimed = claim()
        if claimed is None:
            db.session.rollback()
            return None
        done = work(claimed)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return done


def claim_next_due(model: Any, pending: Any, cutoff: datetime, claimed_by: str) -> int | None:
    """Claim the oldest row of an outbox table (mail, outgoing webhooks) that is `pending` and due
    by `cutoff`, counting its attempt; its id, or None when none is due. Workers never claim the
    same row: PostgreSQL skips rows another worker has locked, SQLite serializes writers."""
    due = (
        select(model.id)
        .where(model.status == pending, model.next_attempt_at <= cutoff)
        .order_by(model.next_attempt_at, model.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed: int | None = db.session.execute(
        update(model)
        .where(model.id == due, model.status == pending)
        .values(attempts=model.attempts + 1, claimed_by=claimed_by)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return claimed
