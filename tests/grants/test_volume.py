"""A million gifts on PostgreSQL: the donors report is aggregated by the database and streamed.

No timing assertions (bench/ measures speed); this proves the shape: the query aggregates gifts
server-side, rows come through a server-side cursor, the file grows while rows are still being
produced, and the process's peak memory (resident set, so psycopg's buffers count too) stays far
below what holding the rows would take.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from sqlalchemy import event, text

from donations.extensions import db
from donations.grants import export, queries, reports, service
from tests.factories import make_fund
from tests.grants.support import make_program

pytestmark = pytest.mark.postgresql_only

GIFTS = 1_000_000
DONORS = 250_000


def _generate(fund_id: int) -> None:
    """250,000 donors and 1,000,000 gifts from Sep 1 to Dec 29, 2026, every 40th partly refunded.

    Loaded as a bulk load is: the gifts' secondary indexes are dropped and rebuilt after, and (as
    a superuser) foreign-key triggers are skipped for rows that reference rows made just before.
    All in one transaction, so that a failure leaves the schema as it was."""
    with db.engine.begin() as connection:
        if connection.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one():
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        secondary = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'gifts' AND indexname NOT IN "
                "(SELECT conname FROM pg_constraint WHERE conrelid = 'gifts'::regclass)"
            )
        ).all()
        for name, _ in secondary:
            connection.execute(text(f'DROP INDEX "{name}"'))
        connection.execute(
            text(
                "INSERT INTO donors (id, email, email_key, name, created_at) "
                "SELECT n, 'donor' || n || '@example.org', 'donor' || n || '@example.org', 'Donor ' || n, now() "
                "FROM generate_series(1, :donors) AS n"
            ),
            {"donors": DONORS},
        )
        connection.execute(text("SELECT setval('donors_id_seq', :donors)"), {"donors": DONORS})
        connection.execute(
            text(
                "INSERT INTO gifts (donor_id, fund_id, amount_cents, fee_covered_cents, currency, frequency, source, "
                "status, tax_deductible, received_at, anonymous, attribution, created_at) "
                "SELECT n % :donors + 1, :fund, 500 + (n::bigint * 7919) % 200000, 0, 'usd', 'one_time', "
                "CASE WHEN n % 10 = 0 THEN 'check' ELSE 'stripe' END, 'paid', false, "
                "timestamptz '2026-09-01 08:00+00' + (n % 120) * interval '1 day' + (n % 86400) * interval '1 second', "
                "n % 17 = 0, '{}', now() "
                "FROM generate_series(1, :gifts) AS n"
            ),
            {"donors": DONORS, "gifts": GIFTS, "fund": fund_id},
        )
        connection.execute(
            text(
                "INSERT INTO reversals (gift_id, kind, amount_cents, reversed_at, stripe_key, created_at) "
                "SELECT id, 'refund', amount_cents / 2, received_at + interval '3 days', 're_volume_' || id, now() "
                "FROM gifts WHERE id % 40 = 0"
            )
        )
        for _, definition in secondary:
            connection.execute(text(definition))
    with db.engine.begin() as connection:
        for table in ("donors", "gifts", "reversals"):
            connection.execute(text(f"ANALYZE {table}"))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak_memory() -> int:
    """Reset the kernel's resident-set high-water mark (VmHWM); return the current size, bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") * 1024


def _peak_memory() -> int:
    return _status_kb("VmHWM") * 1024


def _explain(stmt) -> str:
    compiled = stmt.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    plan = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    return "\n".join(row[0] for row in plan)


def test_donors_report_of_a_million_gifts_streams_in_constant_memory(app, tmp_path: Path):
    fund = make_fund("community-forums", is_default=True)
    program = make_program(cap_cents=100_000)
    _generate(fund.id)

    settings = program.settings()
    ctx = reports.context(settings, program.id, "donors", reports.ReportParams())
    plan = _explain(queries.donor_groups_stmt(ctx.window))
    assert "HashAggregate" in plan or "GroupAggregate" in plan, plan
    assert "on gifts" in plan, plan

    # The export reads through server-side (named) cursors: see which cursors run statements.
    cursors: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        cursors.append(type(cursor).__name__)

    event.listen(db.engine, "before_cursor_execute", record)
    out = tmp_path / "donors.csv"
    sizes: list[int] = []
    open_cursors: list[int] = []
    rows_seen = 0

    def progress(rows: int) -> None:
        nonlocal rows_seen
        rows_seen += rows
        if len(sizes) < 400:
            sizes.append(os.path.getsize(out))
            if len(sizes) % 50 == 1:  # the export's cursor is open on the server between batches
                open_cursors.append(
                    db.session.connection().exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar_one()
                )

    baseline = _reset_peak_memory()
    try:
        report = service.build_report(program, "donors")
        with out.open("wb") as handle:
            result = export.write_csv(report, handle, progress)
        peak = _peak_memory()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)

    assert result.row_count == rows_seen > 200_000
    assert "ServerCursor" in cursors, cursors
    assert open_cursors and min(open_cursors) >= 1
    # The file was already growing while rows were still being produced.
    assert 0 < sizes[0] < sizes[-1] < out.stat().st_size
    assert sizes == sorted(sizes)
    # Holding the 500,000 donor-group rows takes about 580 MB here; the export grows by about 6.
    assert peak - baseline < 60 * 1024 * 1024, f"grew {(peak - baseline) / 1e6:.1f} MB"

    with out.open(encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        matchable = sum(int(row["Matchable ($)"].replace(".", "")) for row in reader)
    assert matchable == report.totals["matchable_cents"] <= 100_000 * report.totals["donors_counted"]
