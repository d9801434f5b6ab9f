"""The gift list at volume, on PostgreSQL: 200,000 generated gifts. The first page and a deep
page are each an index range scan (EXPLAIN of the very statements the page ran) and take a
small, fixed number of queries. No timing assertions: plans and query counts do not flake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text

from donations.extensions import db
from donations.ledger.models import Gift
from donations.staff.queries import PAGE_SIZE, GiftCursor
from tests.factories import make_fund
from tests.staff.support import make_staff, sign_in

pytestmark = pytest.mark.postgresql_only

GIFTS = 200_000
DONORS = 20_000
MAX_QUERIES = 4  # the signed-in user, the funds for the filter, the page; one to spare


@pytest.fixture
def many_gifts(app) -> dict[str, int]:
    funds = [make_fund(f"fund-{n}").id for n in range(3)]
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO donors (email, email_key, name, created_at) "
                "SELECT 'donor' || n || '@example.org', 'donor' || n || '@example.org', 'Donor ' || n, now() "
                "FROM generate_series(1, :donors) AS n"
            ),
            {"donors": DONORS},
        )
        first_donor = connection.execute(text("SELECT min(id) FROM donors")).scalar_one()
        connection.execute(
            text(
                "INSERT INTO gifts (donor_id, fund_id, amount_cents, fee_covered_cents, currency, frequency, source, "
                "status, tax_deductible, received_at, anonymous, attribution, created_at) "
                "SELECT :first_donor + (n % :donors), (ARRAY[:f0, :f1, :f2])[1 + n % 3], 500 + (n % 400) * 25, 0, "
                "'usd', 'one_time', (ARRAY['stripe', 'stripe', 'stripe', 'check'])[1 + n % 4], 'paid', false, "
                "timestamptz '2024-01-01 00:00:00+00' + n * interval '7 minutes', false, '{}', now() "
                "FROM generate_series(1, :gifts) AS n"
            ),
            {
                "first_donor": first_donor,
                "donors": DONORS,
                "gifts": GIFTS,
                "f0": funds[0],
                "f1": funds[1],
                "f2": funds[2],
            },
        )
        connection.execute(text("ANALYZE donors"))
        connection.execute(text("ANALYZE gifts"))
    return {"fund_id": funds[1]}


@pytest.fixture
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement sent to the database while the test runs."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    yield seen
    event.remove(db.engine, "before_cursor_execute", record)


def page_ids(html: str) -> list[int]:
    links = [part.split('"')[0] for part in html.split('href="/staff/gifts/')[1:]]
    return [int(link) for link in links if not link.startswith("export")]  # the download links


def list_statement(seen: list[tuple[str, Any]]) -> tuple[str, Any]:
    (found,) = [(sql, params) for sql, params in seen if "FROM gifts JOIN donors" in sql and "LIMIT" in sql]
    return found


def plan_of(sql: str, parameters: Any) -> str:
    with db.engine.connect() as connection:
        return "\n".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, parameters))


def assert_index_scan(plan: str) -> None:
    assert "Seq Scan on gifts" not in plan, plan
    assert "Index Scan Backward using ix_gifts_received_at_id on gifts" in plan, plan


def request_page(client, query: str, statements: list) -> tuple[list[int], tuple[str, Any], int]:
    statements.clear()
    response = client.get(f"/staff/gifts{query}")
    assert response.status_code == 200
    return page_ids(response.get_data(as_text=True)), list_statement(statements), len(statements)


def expected_ids(offset: int, **where: Any) -> list[int]:
    query = select(Gift.id).order_by(Gift.received_at.desc(), Gift.id.desc()).offset(offset).limit(PAGE_SIZE)
    for column, value in where.items():
        query = query.where(getattr(Gift, column) == value)
    return list(db.session.scalars(query))


def test_first_and_deep_pages_are_index_scans_with_few_queries(client, many_gifts, statements):
    sign_in(client, make_staff("viewer"))

    ids, (sql, params), count = request_page(client, "", statements)
    assert ids == expected_ids(0)
    assert count <= MAX_QUERIES
    assert_index_scan(plan_of(sql, params))

    deep = db.session.execute(
        select(Gift.received_at, Gift.id).order_by(Gift.received_at.desc(), Gift.id.desc()).offset(150_000).limit(1)
    ).one()
    after = GiftCursor(deep.received_at, deep.id).encode()
    ids, (sql, params), deep_count = request_page(client, f"?after={after}", statements)
    assert ids == expected_ids(150_001)
    assert deep_count == count
    plan = plan_of(sql, params)
    assert_index_scan(plan)
    assert "Index Cond" in plan  # the cursor is an index bound, not a filter over skipped rows


def test_a_filtered_deep_page_lists_the_right_gifts_with_few_queries(client, many_gifts, statements):
    # No plan assertion here: a quarter of the gifts are checks and no index covers the source,
    # so whether the planner walks the received_at index or sorts is its choice, not ours.
    sign_in(client, make_staff("viewer"))
    deep = db.session.execute(
        select(Gift.received_at, Gift.id)
        .where(Gift.source == "check")
        .order_by(Gift.received_at.desc(), Gift.id.desc())
        .offset(30_000)
        .limit(1)
    ).one()
    after = GiftCursor(deep.received_at, deep.id).encode()
    ids, (sql, _), count = request_page(client, f"?source=check&after={after}", statements)
    assert ids == expected_ids(30_001, source="check")
    assert len(ids) == PAGE_SIZE
    assert count <= MAX_QUERIES
    assert "gifts.source = " in sql  # filtered by the list query itself, not after it
