"""Parts 4 and 5: grant reports against the SQL floor, and how their time grows.

Part 4: on 1,000,000 gifts from 250,000 donors in PostgreSQL (bench/generate.py, COPY), each
report kind is exported by the CLI, `flask --app wsgi grants report PROGRAM --kind K --format
csv|xlsx -o FILE`, under `/usr/bin/time -v` (wall time, peak memory), and compared with a
hand-written SQL aggregate producing the same rows through `psql -c "COPY (...) TO STDOUT"`.
The same on SQLite with 100,000 gifts (the floor through the `sqlite3` shell, -csv).
Part 5: the CSV exports at 10k, 100k and 1M gifts on PostgreSQL.

The program is a NewsMatch-like one made by the CLI: the 2025 calendar year (local dates),
$1,000 per-donor cap, individuals only, new recurring donors counted 12 x.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from common import BIN, ROOT, Options, Section, app_env, error_section, flask_cli, fmt, libpq_url, log, median
from generate import Counts, load_postgresql, load_sqlite

KINDS = ("summary", "donors", "ledger", "reversals", "disclosure", "payouts")
QUICK_KINDS = ("donors", "ledger")
FORMATS = ("csv", "xlsx")
PROGRAM = "local-2025"
TIME_TARGET = 1.5
MEMORY_TARGET_MB = 200
CAP_CENTS = 100_000
# The window's UTC bounds: 2025-01-01 .. 2025-12-31 in America/Los_Angeles.
START, END = "2025-01-01 08:00:00", "2026-01-01 08:00:00"
FIRST_DAY, LAST_DAY = "2025-01-01", "2025-12-31"
RECEIVED = "('paid', 'refunded', 'partially_refunded', 'disputed')"


@dataclass(frozen=True)
class Dialect:
    """What differs between the PostgreSQL and SQLite versions of the floor queries."""

    name: str
    least: str
    start: str
    end: str

    def local_date(self, column: str) -> str:
        if self.name == "postgresql":
            return f"({column} AT TIME ZONE 'America/Los_Angeles')::date"
        return f"date({column}, '-8 hours')"  # SQLite has no zones; the cost is what matters here


POSTGRESQL = Dialect("postgresql", "LEAST", f"TIMESTAMPTZ '{START}+00'", f"TIMESTAMPTZ '{END}+00'")
SQLITE = Dialect("sqlite", "MIN", f"'{START}.000000'", f"'{END}.000000'")


def _gifts_cte(d: Dialect) -> str:
    """Each paid gift with its owner (merged donors count as the survivor), clamped net
    reversal and period (-1 before the window, 0 in, 1 after; a check by its postmark)."""
    return f"""
    r AS (SELECT gift_id, sum(amount_cents) AS total FROM reversals GROUP BY gift_id),
    g AS (
      SELECT coalesce(d.merged_into_id, d.id) AS owner, gi.id, gi.amount_cents AS amount,
             CASE WHEN r.total IS NULL OR r.total <= 0 THEN 0
                  WHEN r.total >= gi.amount_cents THEN gi.amount_cents ELSE r.total END AS reversed,
             CASE WHEN gi.postmarked_on IS NOT NULL THEN
                    CASE WHEN gi.postmarked_on < '{FIRST_DAY}' THEN -1
                         WHEN gi.postmarked_on > '{LAST_DAY}' THEN 1 ELSE 0 END
                  WHEN gi.received_at < {d.start} THEN -1 WHEN gi.received_at >= {d.end} THEN 1 ELSE 0 END AS period,
             CASE WHEN coalesce(gi.organization, '') <> '' THEN 1 ELSE 0 END AS org,
             gi.membership_id, gi.received_at, CASE WHEN gi.anonymous THEN 1 ELSE 0 END AS anonymous
      FROM gifts gi JOIN donors d ON d.id = gi.donor_id LEFT JOIN r ON r.gift_id = gi.id
      WHERE gi.status IN {RECEIVED} AND gi.received_at IS NOT NULL)"""


def _per_donor() -> str:
    return """
    per AS (
      SELECT owner,
             count(*) FILTER (WHERE period = 0) AS gifts,
             coalesce(sum(amount) FILTER (WHERE period = 0), 0) AS gross,
             coalesce(sum(reversed) FILTER (WHERE period = 0), 0) AS reversed,
             coalesce(sum(amount - reversed) FILTER (WHERE period = 0 AND org = 0), 0) AS counted,
             max(CASE WHEN period = -1 THEN 1 ELSE 0 END) AS returned,
             max(CASE WHEN period = 0 AND membership_id IS NOT NULL THEN 1 ELSE 0 END) AS recurring
      FROM g WHERE period <= 0 GROUP BY owner HAVING count(*) FILTER (WHERE period = 0) > 0)"""


def floor_sql(kind: str, d: Dialect) -> str:
    """The hand-written equivalent of each report: the same rows, aggregated by the database
    alone (no rules beyond the cap, the window, organizations and reversals)."""
    if kind == "summary":
        return f"""WITH {_gifts_cte(d)}, {_per_donor()}
        SELECT count(*) AS donors, sum(counted) AS raised, sum({d.least}(counted, {CAP_CENTS})) AS matchable,
               sum(CASE WHEN returned = 0 THEN 1 ELSE 0 END) AS new_donors, sum(returned) AS returning_donors,
               sum(recurring) AS recurring_donors, sum(gifts) AS gifts, sum(gross) AS gross, sum(reversed) AS reversed
        FROM per"""
    if kind == "donors":
        return f"""WITH {_gifts_cte(d)}, {_per_donor()}
        SELECT per.owner, p.name, p.email, p.organization, per.gifts, round(per.gross / 100.0, 2),
               round(per.reversed / 100.0, 2), round(per.counted / 100.0, 2),
               round({d.least}(per.counted, {CAP_CENTS}) / 100.0, 2), 1 - per.returned, per.recurring
        FROM per JOIN donors p ON p.id = per.owner ORDER BY per.owner"""
    if kind == "ledger":
        return f"""WITH {_gifts_cte(d)}
        SELECT * FROM (
          SELECT g.owner, g.id AS gift_id, NULL AS reversal_id, {d.local_date("gi.received_at")} AS day,
                 gi.postmarked_on, p.name, f.name AS fund, gi.source, gi.frequency, gi.membership_id,
                 round(gi.amount_cents / 100.0, 2) AS gross, round(gi.fee_covered_cents / 100.0, 2) AS fee_covered,
                 round(gi.stripe_fee_cents / 100.0, 2) AS stripe_fee, round(gi.net_cents / 100.0, 2) AS net,
                 NULL AS reversal, round((g.amount - g.reversed) / 100.0, 2) AS counted, 'false' AS tax_deductible
          FROM g JOIN gifts gi ON gi.id = g.id JOIN donors p ON p.id = g.owner JOIN funds f ON f.id = gi.fund_id
          WHERE g.period = 0
          UNION ALL
          SELECT g.owner, g.id, rv.id, {d.local_date("rv.reversed_at")}, NULL, p.name, f.name, gi.source,
                 gi.frequency, gi.membership_id, NULL, NULL, NULL, NULL, round(rv.amount_cents / 100.0, 2), NULL,
                 'false'
          FROM reversals rv JOIN g ON g.id = rv.gift_id JOIN gifts gi ON gi.id = g.id JOIN donors p ON p.id = g.owner
          JOIN funds f ON f.id = gi.fund_id WHERE g.period = 0
        ) AS ledger ORDER BY owner, gift_id, reversal_id"""
    if kind == "reversals":
        return f"""WITH {_gifts_cte(d)}
        SELECT rv.id, rv.kind, {d.local_date("rv.reversed_at")}, {d.local_date("rv.created_at")},
               round(rv.amount_cents / 100.0, 2), g.id, {d.local_date("g.received_at")}, round(g.amount / 100.0, 2),
               g.owner, p.name, f.name, gi.source
        FROM reversals rv JOIN g ON g.id = rv.gift_id JOIN gifts gi ON gi.id = g.id JOIN donors p ON p.id = g.owner
        JOIN funds f ON f.id = gi.fund_id
        WHERE g.period = 0 ORDER BY rv.reversed_at, rv.id"""
    if kind == "disclosure":
        # The year 2025 is the window: `period` dates a mailed check by its postmark, as the report does.
        return f"""WITH {_gifts_cte(d)},
        year AS (SELECT owner, sum(amount - reversed) AS total, max(anonymous) AS anonymous
                 FROM g WHERE period = 0 GROUP BY owner)
        SELECT year.owner, p.name, p.organization, round(total / 100.0, 2),
               CASE WHEN total >= 500000 THEN '$5,000 or more' ELSE '$1,000 or more' END, anonymous
        FROM year JOIN donors p ON p.id = year.owner WHERE total >= 100000 ORDER BY total DESC, year.owner"""
    if kind == "payouts":
        return f"""
        WITH pg AS (SELECT stripe_payout_id AS id, count(*) AS gifts, sum(amount_cents) AS gross,
                           sum(stripe_fee_cents) AS fees
                    FROM gifts WHERE stripe_payout_id IS NOT NULL GROUP BY stripe_payout_id),
             pr AS (SELECT stripe_payout_id AS id,
                           sum(CASE WHEN kind IN ('refund', 'refund_failed') THEN amount_cents ELSE 0 END) AS refunds,
                           sum(CASE WHEN kind IN ('dispute_lost', 'dispute_won') THEN amount_cents ELSE 0 END)
                             AS disputes
                    FROM reversals WHERE stripe_payout_id IS NOT NULL GROUP BY stripe_payout_id)
        SELECT po.id, po.arrival_date, po.status, coalesce(pg.gifts, 0), coalesce(pg.gross, 0) / 100.0,
               coalesce(pg.fees, 0) / 100.0, coalesce(pr.refunds, 0) / 100.0, coalesce(pr.disputes, 0) / 100.0,
               (coalesce(pg.gross, 0) - coalesce(pg.fees, 0) - coalesce(pr.refunds, 0) - coalesce(pr.disputes, 0))
                 / 100.0, po.amount_cents / 100.0
        FROM payouts po LEFT JOIN pg ON pg.id = po.id LEFT JOIN pr ON pr.id = po.id
        WHERE po.arrival_date BETWEEN '{FIRST_DAY}' AND '{LAST_DAY}' ORDER BY po.arrival_date, po.id"""
    raise ValueError(kind)


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Measure:
    seconds: float
    peak_mb: float
    rows: int


def timed(command: list[str], env: dict[str, str] | None, output: Path, stdout_to_output: bool) -> Measure:
    """Run under /usr/bin/time -v: wall time and peak resident memory of the process."""
    stats = output.with_suffix(output.suffix + ".time")
    with output.open("wb") if stdout_to_output else open("/dev/null", "wb") as out:
        result = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(stats), *command], env=env, cwd=ROOT, stdout=out, stderr=subprocess.PIPE
        )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} ... failed:\n{result.stderr.decode()[-3000:]}")
    text = stats.read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not wall or not peak:
        raise RuntimeError(f"unreadable /usr/bin/time output:\n{text}")
    seconds = 0.0
    for part in wall.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return Measure(seconds, int(peak.group(1)) / 1024, _rows(output))


def _rows(path: Path) -> int:
    """Data rows in a CSV (header excluded; quoted newlines are not used by these reports)."""
    if path.suffix != ".csv" or not path.exists():
        return 0
    with path.open("rb") as handle:
        return max(0, sum(1 for _ in handle) - 1)


def app_report(env: dict[str, str], kind: str, fmt_: str, out: Path) -> Measure:
    command = [
        str(BIN / "flask"),
        "--app",
        "wsgi",
        "grants",
        "report",
        PROGRAM,
        "--kind",
        kind,
        "--format",
        fmt_,
        "-o",
        str(out),
    ]
    measure = timed(command, env, out, stdout_to_output=False)
    if fmt_ == "xlsx":
        measure.rows = _xlsx_rows(out)
    return measure


def _xlsx_rows(path: Path) -> int:
    """Rows in the first sheet, read from its XML dimension (no spreadsheet library needed)."""
    import zipfile

    with zipfile.ZipFile(path) as book:
        head = book.open("xl/worksheets/sheet1.xml").read(2000).decode("utf-8", "replace")
    match = re.search(r'<dimension ref="[A-Z]+\d+:[A-Z]+(\d+)"', head)
    return int(match.group(1)) - 1 if match else 0


def floor_report(kind: str, dialect: Dialect, target: str, out: Path) -> Measure:
    query = " ".join(floor_sql(kind, dialect).split())
    if dialect is POSTGRESQL:
        command = [
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            libpq_url(target),
            "-c",
            f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)",
        ]
    else:
        command = ["sqlite3", "-bail", "-csv", "-header", target, query]
    return timed(command, None, out, stdout_to_output=True)


def add_program(env: dict[str, str]) -> None:
    flask_cli(
        env,
        "grants",
        "add-program",
        PROGRAM,
        "--name",
        "Local match 2025",
        "--first",
        FIRST_DAY,
        "--last",
        LAST_DAY,
        "--cap",
        "1000",
        "--goal",
        "250000",
        "--recurring-rule",
        "new_recurring_x12",
    )


@dataclass
class KindResult:
    kind: str
    app: dict[str, list[Measure]]  # by format
    floor: list[Measure]


def measure_all(
    options: Options,
    env: dict[str, str],
    dialect: Dialect,
    target: str,
    formats: tuple[str, ...],
    label: str,
    export_runs: int | None = None,
) -> list[KindResult]:
    """Each kind's floor `options.runs` times and its exports `export_runs` times (default the same)."""
    export_runs = export_runs or options.runs
    out = options.out_dir / "reports"
    out.mkdir(exist_ok=True)
    if options.quick:
        # Two kinds are exported; every floor query still runs once, so none of them can rot.
        for kind in KINDS:
            floor_report(kind, dialect, target, out / f"{label}-{kind}-floor.csv")
    results = []
    for kind in QUICK_KINDS if options.quick else KINDS:
        result = KindResult(kind, {f: [] for f in formats}, [])
        for run_number in range(max(options.runs, export_runs)):
            # Floor and app alternate, so that a change in the machine's load hits both alike.
            if run_number < options.runs:
                result.floor.append(floor_report(kind, dialect, target, out / f"{label}-{kind}-floor.csv"))
            if run_number < export_runs:
                for format_ in formats:
                    result.app[format_].append(app_report(env, kind, format_, out / f"{label}-{kind}.{format_}"))
            log(
                f"{label} {kind} run {run_number + 1}: floor {result.floor[-1].seconds:.2f} s, "
                + ", ".join(
                    f"{f} {result.app[f][-1].seconds:.2f} s {result.app[f][-1].peak_mb:.0f} MB" for f in formats
                )
            )
        results.append(result)
    return results


def _m(measures: list[Measure]) -> tuple[float, float, int]:
    return median([m.seconds for m in measures]), max(m.peak_mb for m in measures), measures[-1].rows


def report_rows(results: list[KindResult]) -> tuple[list[list[str]], list[str]]:
    rows, misses = [], []
    for result in results:
        floor_s, floor_mb, floor_rows = _m(result.floor)
        for format_, measures in result.app.items():
            seconds, peak, rows_out = _m(measures)
            ratio = seconds / floor_s if floor_s else float("inf")
            verdict = "ok" if ratio <= TIME_TARGET and peak < MEMORY_TARGET_MB else "MISSED"
            if verdict != "ok":
                misses.append(f"{result.kind} {format_}")
            rows.append(
                [
                    result.kind,
                    format_,
                    fmt(seconds, 2),
                    fmt(peak),
                    f"{rows_out:,}",
                    fmt(floor_s, 2),
                    fmt(floor_mb),
                    f"{floor_rows:,}",
                    f"{ratio:.2f}",
                    verdict,
                ]
            )
    return rows, misses


HEADERS = [
    "report",
    "format",
    "CLI s",
    "CLI peak MB",
    "rows",
    "SQL floor s",
    "floor peak MB",
    "floor rows",
    "x floor",
    "targets",
]


def _data_note(counts: Counts) -> str:
    return (
        f"Data: {counts.gifts:,} gifts from {counts.donors:,} donors, {counts.memberships:,} memberships "
        f"({counts.changes:,} raised in 2025), {counts.reversals:,} reversals, {counts.payouts:,} payouts."
    )


def run(options: Options) -> list[Section]:
    sizes = [200, 1_000] if options.quick else [10_000, 100_000, 1_000_000]
    sqlite_gifts = 1_000 if options.quick else 100_000
    sections: list[Section] = []
    scaling: dict[int, list[KindResult]] = {}
    counts_by_size: dict[int, Counts] = {}
    env = app_env(options.database_url)
    for size in sizes:
        log(f"loading {size:,} gifts into PostgreSQL")
        counts_by_size[size] = load_postgresql(options.database_url, size)
        add_program(env)
        largest = size == sizes[-1]
        # Every format at the largest size; CSV alone for the smaller ones (the scaling curve).
        formats = FORMATS if largest else ("csv",)
        export_runs = options.big_runs if size >= 1_000_000 else None
        scaling[size] = measure_all(
            options, env, POSTGRESQL, options.database_url, formats, f"pg-{size}", export_runs=export_runs
        )

    largest = sizes[-1]
    rows, misses = report_rows(scaling[largest])
    section = Section(
        title=f"4. Grant reports on PostgreSQL: {largest:,} gifts",
        headers=HEADERS,
        rows=rows,
        commands=[
            f"python bench/generate.py --gifts {largest}   (COPY)",
            f"/usr/bin/time -v flask --app wsgi grants report {PROGRAM} --kind KIND --format csv|xlsx -o FILE",
            '/usr/bin/time -v psql -c "COPY (hand-written aggregate) TO STDOUT WITH (FORMAT csv, HEADER)" > FILE',
        ],
    )
    section.notes = [
        _data_note(counts_by_size[largest]),
        f"Targets: at most {TIME_TARGET} x the SQL floor's wall time and under {MEMORY_TARGET_MB} MB peak. "
        + (f"Missed: {', '.join(misses)}." if misses else "All met."),
        "The CLI's time includes starting Python and the app (about a second) and saving the report run "
        "(SHA-256, audit entry). The floor's memory is psql's; the database server's work is in both wall times.",
        f"Runs: the floor {options.runs}, each export "
        f"{options.big_runs if largest >= 1_000_000 else options.runs} (--big-runs: at a million gifts one pass "
        "over the twelve exports takes about five minutes here).",
    ]
    sections.append(section)

    sections.append(_scaling_section(scaling, counts_by_size))
    try:
        sections.append(_sqlite_section(options, sqlite_gifts))
    except Exception:  # the PostgreSQL figures above still stand
        sections.append(error_section(f"4b. Grant reports on SQLite: {sqlite_gifts:,} gifts"))
    return sections


def _sqlite_section(options: Options, gifts: int) -> Section:
    if shutil.which("sqlite3") is None:
        return Section(
            title=f"4b. Grant reports on SQLite: {gifts:,} gifts",
            headers=["error"],
            rows=[],
            notes=["Not run: the sqlite3 shell (the floor) is missing: apt-get install sqlite3."],
            ok=False,
        )
    path = options.out_dir / "ledger.sqlite"
    log(f"loading {gifts:,} gifts into SQLite")
    counts = load_sqlite(path, gifts)
    env = app_env(f"sqlite:///{path}")
    add_program(env)
    results = measure_all(options, env, SQLITE, str(path), FORMATS, f"sqlite-{gifts}")
    rows, misses = report_rows(results)
    section = Section(
        title=f"4b. Grant reports on SQLite: {gifts:,} gifts",
        headers=HEADERS,
        rows=rows,
        commands=[
            f"python bench/generate.py --gifts {gifts} --sqlite bench/out/ledger.sqlite",
            f"/usr/bin/time -v flask --app wsgi grants report {PROGRAM} --kind KIND --format csv|xlsx -o FILE",
            '/usr/bin/time -v sqlite3 -csv -header bench/out/ledger.sqlite "hand-written aggregate" > FILE',
        ],
    )
    section.notes = [
        _data_note(counts),
        "Targets as above. " + (f"Missed: {', '.join(misses)}." if misses else "All met."),
        "SQLite has no time zones: the floor takes local dates as UTC - 8 h, which costs the same.",
    ]
    return section


def _scaling_section(scaling: dict[int, list[KindResult]], counts: dict[int, Counts]) -> Section:
    sizes = sorted(scaling)
    headers = ["report (CSV)", *[f"{size:,} gifts s" for size in sizes]]
    growth = []
    for i in range(1, len(sizes)):
        headers.append(f"x, {sizes[i - 1]:,} -> {sizes[i]:,}")
    rows = []
    for index, result in enumerate(scaling[sizes[0]]):
        times = [median([m.seconds for m in scaling[size][index].app["csv"]]) for size in sizes]
        row = [result.kind, *[fmt(t, 2) for t in times]]
        for i in range(1, len(sizes)):
            factor = times[i] / times[i - 1] if times[i - 1] else float("inf")
            row.append(f"{factor:.1f}")
            growth.append(factor / (sizes[i] / sizes[i - 1]))
        rows.append(row)
    worst = max(growth) if growth else 0.0
    section = Section(
        title="5. Scaling: CSV export time by ledger size (PostgreSQL)",
        headers=headers,
        rows=rows,
        notes=[
            "Each size is its own generated ledger (same shape, 4 gifts per donor): "
            + "; ".join(f"{size:,} gifts, {counts[size].donors:,} donors" for size in sizes)
            + ".",
            f"Growth at most {worst:.2f} x the growth in gifts (1.00 = linear; below 1 the fixed start-up "
            "cost still dominates).",
        ],
    )
    return section
