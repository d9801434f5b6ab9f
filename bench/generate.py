"""Load a synthetic gift ledger for the report benchmarks: N gifts from N/4 donors.

    .venv/bin/python bench/generate.py --gifts 1000000                     # PostgreSQL (COPY)
    .venv/bin/python bench/generate.py --gifts 100000 --sqlite bench/out/ledger.sqlite

The schema is made by the app's migrations (`flask db upgrade heads`) in an emptied database;
rows go in with PostgreSQL's COPY (psycopg), or in one transaction on SQLite. The data is
deterministic (seeded) and shaped like a newsroom's: three funds; gifts over two years
(2024-07-01 to 2026-06-30, UTC), most online, some checks (half dated by postmark), cash and
other; monthly and annual memberships paying installments, a few raised during 2025; fee
cover, Stripe fees and weekly payouts; refunds, partial refunds and lost disputes as
reversals; organizations, anonymous gifts, merged donors, pending and failed checkouts.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from common import DEFAULT_DATABASE_URL, ROOT, app_env, flask_cli, libpq_url, log, reset_schema

SEED = 1_000_003
RANGE_START = datetime(2024, 7, 1, tzinfo=UTC)
RANGE_END = datetime(2026, 6, 30, tzinfo=UTC)
RANGE_SECONDS = int((RANGE_END - RANGE_START).total_seconds())
CREATED = datetime(2026, 7, 1, tzinfo=UTC)  # when the rows were "written"
ONE_TIME_AMOUNTS = [1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000]
ONE_TIME_WEIGHTS = [20, 30, 25, 12, 7, 3, 2, 1]
MONTHLY_AMOUNTS = [500, 1000, 1500, 2500, 5000]
ANNUAL_AMOUNTS = [6000, 12000, 25000]

FUND_COLUMNS = (
    "id",
    "slug",
    "name",
    "description",
    "goal_cents",
    "suggested_amounts",
    "active",
    "show_progress",
    "is_default",
    "created_at",
)
DONOR_COLUMNS = (
    "id",
    "email",
    "email_key",
    "name",
    "organization",
    "postal_code",
    "country",
    "merged_into_id",
    "created_at",
)
MEMBERSHIP_COLUMNS = (
    "id",
    "donor_id",
    "fund_id",
    "stripe_subscription_id",
    "stripe_customer_id",
    "amount_cents",
    "currency",
    "interval",
    "status",
    "cancel_at_period_end",
    "started_at",
    "canceled_at",
    "created_at",
)
CHANGE_COLUMNS = ("id", "membership_id", "changed_at", "old_amount_cents", "new_amount_cents")
GIFT_COLUMNS = (
    "id",
    "donor_id",
    "fund_id",
    "membership_id",
    "amount_cents",
    "fee_covered_cents",
    "currency",
    "frequency",
    "source",
    "status",
    "tax_deductible",
    "received_at",
    "organization",
    "anonymous",
    "attribution",
    "stripe_payment_intent_id",
    "stripe_invoice_id",
    "stripe_fee_cents",
    "net_cents",
    "stripe_payout_id",
    "check_number",
    "postmarked_on",
    "created_at",
)
REVERSAL_COLUMNS = (
    "id",
    "gift_id",
    "kind",
    "amount_cents",
    "reversed_at",
    "stripe_key",
    "reason",
    "stripe_payout_id",
    "created_at",
)
PAYOUT_COLUMNS = ("id", "amount_cents", "currency", "status", "arrival_date", "created_at")

# What Stripe paid out: the net of the gifts it settled, less their reversals.
PAYOUT_AMOUNTS = """
UPDATE payouts SET amount_cents =
    coalesce((SELECT sum(net_cents) FROM gifts WHERE gifts.stripe_payout_id = payouts.id), 0)
  - coalesce((SELECT sum(amount_cents) FROM reversals WHERE reversals.stripe_payout_id = payouts.id), 0)
"""

Value = str | int | bool | date | datetime | None
Row = tuple[Value, ...]


@dataclass
class Membership:
    id: int
    donor_id: int
    interval: str
    amount: int
    started_at: datetime


@dataclass
class Counts:
    funds: int = 3
    donors: int = 0
    memberships: int = 0
    changes: int = 0
    gifts: int = 0
    reversals: int = 0
    payouts: int = 0


def _moment(rng: random.Random) -> datetime:
    return RANGE_START + timedelta(seconds=rng.randrange(RANGE_SECONDS))


def _payout_id(at: datetime) -> str:
    return f"po_bench_{(at - RANGE_START).days // 7:04d}"


class Ledger:
    """The rows, made in order by a seeded generator (the same sizes give the same data)."""

    def __init__(self, gifts: int) -> None:
        self.rng = random.Random(SEED)
        self.total_gifts = gifts
        self.total_donors = max(4, gifts // 4)
        self.counts = Counts()
        self.memberships: list[Membership] = []
        self.reversals: list[Row] = []

    def funds(self) -> Iterator[Row]:
        yield (
            1,
            "community-forums",
            "Community Forums Reporting",
            "Forums in every neighborhood.",
            25_000_000,
            "{}",
            True,
            True,
            True,
            RANGE_START,
        )
        yield (
            2,
            "investigations",
            "Investigations Desk",
            "Accountability reporting.",
            None,
            "{}",
            True,
            False,
            False,
            RANGE_START,
        )
        yield (3, "general", "General Support", "", None, "{}", True, False, False, RANGE_START)

    def donors(self) -> Iterator[Row]:
        rng = self.rng
        for donor_id in range(1, self.total_donors + 1):
            # 0.5% are duplicates merged into an earlier donor (the survivor is never merged itself:
            # an earlier id drawn from the first half, where no merged donor is).
            merged = rng.randrange(1, donor_id // 2) if donor_id > 4 and rng.random() < 0.005 else None
            if merged is not None and merged > self.total_donors // 2:
                merged = None
            organization = f"Neighborhood Business {donor_id}" if rng.random() < 0.01 else None
            email = f"donor{donor_id}@example.org"
            created = RANGE_START - timedelta(days=rng.randrange(0, 700))
            self.counts.donors += 1
            yield (
                donor_id,
                email,
                email,
                f"Donor {donor_id}",
                organization,
                f"9{rng.randrange(4000, 5000)}",
                "US",
                merged,
                created,
            )

    def memberships_rows(self) -> Iterator[Row]:
        rng = self.rng
        membership_id = 0
        for donor_id in range(1, self.total_donors + 1):
            if rng.random() >= 0.08:
                continue
            membership_id += 1
            monthly = rng.random() < 0.85
            amount = rng.choice(MONTHLY_AMOUNTS if monthly else ANNUAL_AMOUNTS)
            started = _moment(rng)
            canceled = started + timedelta(days=rng.randrange(60, 400)) if rng.random() < 0.2 else None
            if canceled is not None and canceled > RANGE_END:
                canceled = None
            self.memberships.append(
                Membership(membership_id, donor_id, "month" if monthly else "year", amount, started)
            )
            self.counts.memberships += 1
            yield (
                membership_id,
                donor_id,
                1,
                f"sub_bench{membership_id:08d}",
                f"cus_bench{donor_id:08d}",
                amount,
                "usd",
                "month" if monthly else "year",
                "canceled" if canceled else "active",
                False,
                started,
                canceled,
                started,
            )

    def changes(self) -> Iterator[Row]:
        rng = self.rng
        change_id = 0
        window_start = datetime(2025, 1, 1, 8, tzinfo=UTC)
        for membership in self.memberships:
            if membership.interval != "month" or rng.random() >= 0.05:
                continue
            change_id += 1
            self.counts.changes += 1
            changed = window_start + timedelta(seconds=rng.randrange(365 * 86_400))
            yield (change_id, membership.id, changed, membership.amount, membership.amount + 500)

    def _installments(self) -> Iterator[tuple[Membership, datetime]]:
        for membership in self.memberships:
            step = timedelta(days=30.44 if membership.interval == "month" else 365.25)
            at = membership.started_at
            while at < RANGE_END:
                yield membership, at
                at += step

    def gifts(self) -> Iterator[Row]:
        rng = self.rng
        installments = list(self._installments())
        # Installments are at most 30% of the gifts; one-time gifts make up the rest.
        installments = installments[: int(self.total_gifts * 0.3)]
        one_time = self.total_gifts - len(installments)
        gift_id = 0
        for membership, at in installments:
            gift_id += 1
            yield self._gift(gift_id, membership.donor_id, membership, membership.amount, at)
        for _ in range(one_time):
            gift_id += 1
            amount = rng.choices(ONE_TIME_AMOUNTS, ONE_TIME_WEIGHTS)[0] + rng.randrange(0, 100) * 10
            yield self._gift(gift_id, rng.randrange(1, self.total_donors + 1), None, amount, _moment(rng))

    def _gift(self, gift_id: int, donor_id: int, membership: Membership | None, amount: int, at: datetime) -> Row:
        rng = self.rng
        self.counts.gifts += 1
        roll = rng.random()
        source = (
            "stripe" if membership or roll < 0.90 else "check" if roll < 0.97 else "cash" if roll < 0.99 else "other"
        )
        status_roll = rng.random()
        status = "paid"
        if source == "stripe":
            if status_roll < 0.005:
                status = "pending"
            elif status_roll < 0.007:
                status = "failed"
            elif status_roll < 0.022:
                status = "refunded"
            elif status_roll < 0.027:
                status = "partially_refunded"
            elif status_roll < 0.030:
                status = "disputed"
        received = None if status in ("pending", "failed") else at
        fee_covered = round(amount * 0.029) + 30 if source == "stripe" and rng.random() < 0.3 else 0
        fee_covered = fee_covered if fee_covered < amount else 0
        stripe_fee = round(amount * 0.029) + 30 if source == "stripe" and received else None
        if status in ("refunded", "partially_refunded", "disputed") and received:
            kind = "dispute_lost" if status == "disputed" else "refund"
            back = amount if status != "partially_refunded" else amount // 2
            reversed_at = received + timedelta(days=rng.randrange(1, 60))
            self.counts.reversals += 1
            self.reversals.append(
                (
                    self.counts.reversals,
                    gift_id,
                    kind,
                    back,
                    reversed_at,
                    f"re_bench{self.counts.reversals:08d}",
                    "requested_by_customer",
                    _payout_id(reversed_at) if reversed_at < RANGE_END else None,
                    reversed_at,
                )
            )
        check = source == "check"
        return (
            gift_id,
            donor_id,
            1 if membership else rng.choice((1, 1, 2, 3)),
            membership.id if membership else None,
            amount,
            fee_covered,
            "usd",
            "one_time" if membership is None else ("monthly" if membership.interval == "month" else "annual"),
            source,
            status,
            False,
            received,
            f"Sponsor Co {donor_id % 997}" if rng.random() < 0.02 else None,
            rng.random() < 0.05,
            "{}",
            f"pi_bench{gift_id:09d}" if source == "stripe" else None,
            f"in_bench{gift_id:09d}" if membership else None,
            stripe_fee,
            amount - stripe_fee if stripe_fee is not None else None,
            _payout_id(received) if stripe_fee is not None and received is not None else None,
            f"{rng.randrange(1000, 9999)}" if check else None,
            (received - timedelta(days=rng.randrange(1, 6))).date()
            if check and received and rng.random() < 0.5
            else None,
            received or at,
        )

    def payouts(self) -> Iterator[Row]:
        weeks = (RANGE_END - RANGE_START).days // 7 + 1
        for week in range(weeks):
            start = RANGE_START + timedelta(days=7 * week)
            self.counts.payouts += 1
            # The bank's arrival day is a calendar date; the payout was made two days before it.
            arrival = (start + timedelta(days=9)).date()
            yield (f"po_bench_{week:04d}", 0, "usd", "paid", arrival, start + timedelta(days=7))


# -- writing -----------------------------------------------------------------------------------


def _pg_text(value: Value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _sqlite_value(value: Value) -> str | int | None:
    # What SQLAlchemy stores on SQLite: naive UTC "YYYY-MM-DD HH:MM:SS.ffffff", booleans as 0/1.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _tables(ledger: Ledger) -> list[tuple[str, tuple[str, ...], Iterator[Row]]]:
    # Generators run in this order: memberships before gifts (installments), gifts before reversals.
    return [
        ("funds", FUND_COLUMNS, ledger.funds()),
        ("donors", DONOR_COLUMNS, ledger.donors()),
        ("memberships", MEMBERSHIP_COLUMNS, ledger.memberships_rows()),
        ("membership_changes", CHANGE_COLUMNS, ledger.changes()),
        ("gifts", GIFT_COLUMNS, ledger.gifts()),
        ("reversals", REVERSAL_COLUMNS, iter(ledger.reversals)),  # filled while the gifts were made
        ("payouts", PAYOUT_COLUMNS, ledger.payouts()),
    ]


def migrate(database_url: str) -> None:
    flask_cli(app_env(database_url), "db", "upgrade", "heads")


def load_postgresql(database_url: str, gifts: int) -> Counts:
    reset_schema(database_url)
    migrate(database_url)
    ledger = Ledger(gifts)
    with psycopg.connect(libpq_url(database_url)) as connection:
        for table, columns, rows in _tables(ledger):
            with connection.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([_pg_text(value) for value in row])
        for table in ("funds", "donors", "memberships", "membership_changes", "gifts", "reversals"):
            connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 1))"
            )
        connection.execute(PAYOUT_AMOUNTS)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
    return ledger.counts


def load_sqlite(path: Path, gifts: int) -> Counts:
    path.unlink(missing_ok=True)
    migrate(f"sqlite:///{path}")
    ledger = Ledger(gifts)
    connection = sqlite3.connect(path)
    try:
        with connection:
            for table, columns, rows in _tables(ledger):
                marks = ", ".join("?" for _ in columns)
                connection.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                    ([_sqlite_value(value) for value in row] for row in rows),
                )
            connection.execute(PAYOUT_AMOUNTS)
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return ledger.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gifts", type=int, required=True)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="PostgreSQL (emptied first)")
    parser.add_argument("--sqlite", type=Path, help="load this SQLite file instead (replaced)")
    args = parser.parse_args()
    began = time.monotonic()
    counts = load_sqlite(args.sqlite, args.gifts) if args.sqlite else load_postgresql(args.database_url, args.gifts)
    log(f"loaded {counts} in {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    main()
