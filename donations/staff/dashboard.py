"""The dashboard's numbers, each aggregated by the database in one query, in the newsroom's
time zone: gifts today / this month / this fiscal year, members and monthly recurring revenue,
gifts per day for 90 days (drawn as a server-side SVG chart), and grant programs' progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, func, select

from donations.clock import local_date, local_day_bounds, utcnow
from donations.extensions import db
from donations.ledger.currency import counted_gift
from donations.ledger.models import Gift, Membership, MembershipStatus, Reversal
from donations.localtime import local_date as sql_local_date
from donations.protection.card_testing import BlockReason, blocked_attempt_counts

CHART_DAYS = 90


@dataclass(frozen=True)
class PeriodTotal:
    label: str
    since: date
    gifts: int
    gross_cents: int
    net_cents: int


def fiscal_year_start(today: date) -> date:
    month = int(current_app.config.get("FISCAL_YEAR_START_MONTH") or 1)
    if not 1 <= month <= 12:
        raise ValueError("FISCAL_YEAR_START_MONTH must be from 1 to 12")
    return date(today.year if today.month >= month else today.year - 1, month, 1)


def fiscal_year_label(start: date) -> str:
    """Named, as is usual, by the calendar year in which the fiscal year ends."""
    return f"FY{start.year if start.month == 1 else start.year + 1}"


def period_totals(today: date) -> list[PeriodTotal]:
    """Received gifts and dollars (gross, and net of their reversals known now) for today, this
    month and this fiscal year, in one pass over the fiscal year's gifts."""
    month_start = today.replace(day=1)
    fy_start = fiscal_year_start(today)
    starts = {"Today": today, "This month": month_start, f"This fiscal year ({fiscal_year_label(fy_start)})": fy_start}
    end = local_day_bounds(today, today)[1]
    reversed_ = (
        select(Reversal.gift_id, func.sum(Reversal.amount_cents).label("cents")).group_by(Reversal.gift_id).subquery()
    )
    columns = []
    for since in starts.values():
        inside = Gift.received_at >= local_day_bounds(since, since)[0]
        columns += [
            func.coalesce(func.sum(case((inside, 1), else_=0)), 0),
            func.coalesce(func.sum(case((inside, Gift.amount_cents), else_=0)), 0),
            func.coalesce(func.sum(case((inside, func.coalesce(reversed_.c.cents, 0)), else_=0)), 0),
        ]
    row = db.session.execute(
        select(*columns)
        .select_from(Gift)
        .outerjoin(reversed_, reversed_.c.gift_id == Gift.id)
        .where(
            counted_gift(),
            Gift.received_at >= local_day_bounds(fy_start, fy_start)[0],
            Gift.received_at < end,
        )
    ).one()
    totals = []
    for index, (label, since) in enumerate(starts.items()):
        gifts, gross, reversed_cents = (int(value) for value in row[index * 3 : index * 3 + 3])
        totals.append(PeriodTotal(label, since, gifts, gross, gross - reversed_cents))
    return totals


@dataclass(frozen=True)
class Members:
    active: int
    monthly_recurring_cents: int


def members() -> Members:
    """Active memberships, and their monthly recurring revenue (an annual one counts 1/12)."""
    yearly = case((Membership.interval == "month", Membership.amount_cents * 12), else_=Membership.amount_cents)
    count, annualized = db.session.execute(
        select(func.count(Membership.id), func.coalesce(func.sum(yearly), 0)).where(
            Membership.status == MembershipStatus.ACTIVE
        )
    ).one()
    # Integer cents, half a cent rounded up: never through a float.
    return Members(int(count), (int(annualized) + 6) // 12)


@dataclass(frozen=True)
class Day:
    day: date
    gifts: int
    cents: int


def gifts_per_day(today: date, days: int = CHART_DAYS) -> list[Day]:
    """Received gifts per local day for the `days` days ending today (days without gifts: 0)."""
    first = today - timedelta(days=days - 1)
    start, end = local_day_bounds(first, today)
    day = sql_local_date(Gift.received_at).label("day")
    counted = {
        row.day: (int(row.gifts), int(row.cents))
        for row in db.session.execute(
            select(day, func.count(Gift.id).label("gifts"), func.sum(Gift.amount_cents).label("cents"))
            .where(counted_gift(), Gift.received_at >= start, Gift.received_at < end)
            .group_by(day)
        )
    }
    return [Day(d, *counted.get(d, (0, 0))) for d in (first + timedelta(days=n) for n in range(days))]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: Day


@dataclass(frozen=True)
class Chart:
    """Geometry for an SVG bar chart (attributes only: no inline style, so a strict CSP holds)."""

    width: int
    height: int
    left: int
    top: int
    plot_height: int
    bars: list[Bar]
    y_max: int
    ticks: list[tuple[float, int]]  # (y, value)
    labels: list[tuple[float, date]]  # (x, day)
    days: list[Day]

    @property
    def total_gifts(self) -> int:
        return sum(d.gifts for d in self.days)

    @property
    def busiest(self) -> Day | None:
        best = max(self.days, key=lambda d: d.gifts, default=None)
        return best if best and best.gifts else None


def _nice_ceiling(value: int) -> int:
    """1, 2, 5, 10, 20, 50, ... at or above value (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def chart(days: list[Day]) -> Chart:
    width, height, left, right, top, bottom = 900, 240, 48, 12, 12, 36
    plot_width, plot_height = width - left - right, height - top - bottom
    y_max = _nice_ceiling(max((d.gifts for d in days), default=0))
    slot = plot_width / max(len(days), 1)
    bars = []
    for index, day in enumerate(days):
        bar_height = plot_height * day.gifts / y_max
        bars.append(
            Bar(
                x=round(left + index * slot + slot * 0.1, 2),
                y=round(top + plot_height - bar_height, 2),
                width=round(slot * 0.8, 2),
                height=round(bar_height, 2),
                day=day,
            )
        )
    values = sorted({0, y_max // 2, y_max})
    ticks = [(round(top + plot_height - plot_height * value / y_max, 2), value) for value in values]
    labels = [(round(left + index * slot + slot / 2, 2), days[index].day) for index in range(0, len(days), 15)]
    return Chart(width, height, left, top, plot_height, bars, y_max, ticks, labels, days)


def grant_progress() -> list[Any]:
    """Each active grant program's raised and goal."""
    from donations.grants.service import dashboard_progress  # grants imports staff: import when used

    return list(dashboard_progress())


@dataclass(frozen=True)
class Dashboard:
    today: date
    periods: list[PeriodTotal]
    members: Members
    chart: Chart
    grants: list[Any]
    blocked: dict[BlockReason, int]  # card-testing defences' refusals in the last 24 hours, per reason


def dashboard() -> Dashboard:
    today = local_date(utcnow())
    return Dashboard(
        today=today,
        periods=period_totals(today),
        members=members(),
        chart=chart(gifts_per_day(today)),
        grants=grant_progress(),
        blocked=blocked_attempt_counts(utcnow() - timedelta(hours=24)),
    )
