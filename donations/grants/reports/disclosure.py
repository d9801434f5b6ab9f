"""Donors of $1,000 or more in a calendar year."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from donations.extensions import db
from donations.grants import queries, row_streams
from donations.grants.queries import Window
from donations.grants.reports.base import Cell, Context, Money, Percent, Report, donor_label, tax_notes

DISCLOSURE_TIERS = (500_000, 100_000)  # $5,000 and $1,000, in cents


DISCLOSURE_COLUMNS = ("Donor ID", "Name", "Organization", "Given in the year ($)", "Tier", "Gave anonymously")


def _tier(cents: int) -> str:
    return "$5,000 or more" if cents >= DISCLOSURE_TIERS[0] else "$1,000 or more"


@dataclass(frozen=True)
class _YearTotals:
    total: int
    anonymous_total: int
    donors: int


def disclosure(ctx: Context) -> Report:
    year = ctx.params.year
    assert year is not None
    span = Window.of(date(year, 1, 1), date(year, 12, 31), ctx.zone)
    report = Report(
        kind="disclosure",
        title=f"Donors of $1,000 or more in {year}",
        columns=DISCLOSURE_COLUMNS,
        rows=iter(()),
        context=ctx,
        notes=(
            f"Every donor whose gifts in {year} (local dates, net of reversals, all funds) reach $1,000, "
            "largest first, then the year's total and the share given anonymously. Anonymous donors are "
            "listed without their name.",
            *tax_notes(ctx),
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        listed = dict.fromkeys(DISCLOSURE_TIERS, 0)
        overall: Any = None
        for row in row_streams.stream(queries.disclosure_stmt(span, DISCLOSURE_TIERS[-1])):
            overall = overall or _YearTotals(row.year_total, row.year_anonymous_total, row.year_donors)
            for tier in DISCLOSURE_TIERS:
                listed[tier] += row.total >= tier
            yield (
                row.owner,
                donor_label(row.donor_name, bool(row.anonymous)),
                None if row.anonymous else row.donor_organization,
                Money(row.total),
                _tier(row.total),
                bool(row.anonymous),
            )
        if overall is None:  # nobody listed: the year's totals were on no row
            overall = db.session.execute(queries.disclosure_totals_stmt(span)).one()
        share = Decimal(overall.anonymous_total) / overall.total if overall.total else Decimal(0)
        yield (None, f"All donors in {year}", None, Money(overall.total), f"{overall.donors} donors", None)
        yield (None, "Given anonymously", None, Money(overall.anonymous_total), Percent(share), None)
        report.totals.update(
            {
                "donors_1000": listed[DISCLOSURE_TIERS[1]],
                "donors_5000": listed[DISCLOSURE_TIERS[0]],
                "total_cents": overall.total,
                "anonymous_cents": overall.anonymous_total,
                "donors": overall.donors,
            }
        )

    report.rows = rows()
    return report
