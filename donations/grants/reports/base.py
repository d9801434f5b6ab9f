"""What every grant report shares: the `Report` type and its cells, the parameters a report is
asked with, and the context it is computed in.

Each builder returns a `Report` whose `rows` is a one-shot iterator: the rows are produced while
the database streams, one donor at a time, and `totals` is complete once `rows` is exhausted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from donations.clock import local_date, newsroom_zone, utcnow
from donations.extensions import db
from donations.forms import FREQUENCY_CHOICES, SOURCE_CHOICES, VEHICLE_CHOICES
from donations.grants.models import REPORT_KINDS, GrantProgram, ProgramSettings
from donations.grants.queries import Claimant, Window
from donations.grants.rules import LocalArea, ProgramRules, Reason, RecurringRule
from donations.ledger.models import Fund
from donations.newsroom import current_look

SOURCE_LABELS = dict(SOURCE_CHOICES)
FREQUENCY_LABELS = dict(FREQUENCY_CHOICES)
VEHICLE_LABELS = dict(VEHICLE_CHOICES)
# A gift's reason in a few words (the Explanation column says it in full).
REASON_LABELS = {
    Reason.COUNTED: "Counted",
    Reason.NEW_RECURRING_X12: "Counted as 12 x a new recurring gift",
    Reason.IN_RECURRING_VALUE: "Inside the membership's 12 x value",
    Reason.INCREASE_X12: "Counted with 12 x the increase",
    Reason.AT_OLD_AMOUNT: "Counted at the amount before the increase",
    Reason.NOT_PAID: "Not counted: not paid",
    Reason.OUTSIDE_WINDOW: "Not counted: outside the window",
    Reason.ORGANIZATION: "Not counted: not an individual's gift",
    Reason.FUND_NOT_COUNTED: "Not counted: fund not counted",
    Reason.SOURCE_NOT_COUNTED: "Not counted: source not counted",
    Reason.ANONYMOUS_OVER_LIMIT: "Not counted: anonymous, above the limit",
    Reason.OTHER_PROGRAM: "Not counted: counted by another program",
    Reason.REFUNDED: "Not counted: refunded in full",
}
REVERSAL_LABELS = {
    "refund": "Refund",
    "refund_failed": "Refund failed (money restored)",
    "dispute_lost": "Dispute lost",
    "dispute_won": "Dispute won (money restored)",
}
MEMBERSHIP_STATUS_LABELS = {
    "incomplete": "Not started",
    "active": "Active",
    "past_due": "Past due",
    "canceled": "Canceled",
}


class ReportError(ValueError):
    """Bad report parameters: a 4xx with this message."""


@dataclass(frozen=True, slots=True)  # slots: a ledger makes millions
class Money:
    cents: int


@dataclass(frozen=True, slots=True)
class Percent:
    fraction: Decimal  # 0.125 is 12.50%


Cell = str | int | bool | date | Money | Percent | None


@dataclass
class Report:
    kind: str
    title: str
    columns: tuple[str, ...]
    rows: Iterator[tuple[Cell, ...]]
    notes: tuple[str, ...] = ()
    totals: dict[str, Any] = field(default_factory=dict)
    # What it was computed with: a saved run records this, not the program as it is by then.
    # None only for a report put together by hand (the writers' tests).
    context: Context | None = None
    # Columns holding machine-readable codes (a reason's, a source's, ...) beside their words:
    # written to CSV only, for a program's own software; never on screen nor in XLSX.
    csv_only: tuple[str, ...] = ()

    def kept_positions(self) -> tuple[int, ...] | None:
        """The positions of the columns a person reads (screen, XLSX); None: all of them."""
        if not self.csv_only:
            return None
        return tuple(i for i, column in enumerate(self.columns) if column not in self.csv_only)

    @property
    def shown_columns(self) -> tuple[str, ...]:
        return tuple(column for column in self.columns if column not in self.csv_only)

    def shown(self, row: tuple[Cell, ...]) -> tuple[Cell, ...]:
        kept = self.kept_positions()
        return row if kept is None else tuple(row[i] for i in kept)


@dataclass(frozen=True)
class ReportParams:
    """What a report covers besides its program: a date span (ledger, payouts) or a year."""

    first_day: date | None = None
    last_day: date | None = None
    year: int | None = None

    def resolve(self, kind: str, settings: ProgramSettings) -> ReportParams:
        if kind not in REPORT_KINDS:
            raise ReportError(f"kind must be one of {', '.join(REPORT_KINDS)}")
        if kind in ("ledger", "payouts"):
            first = self.first_day or settings.first_day
            last = self.last_day or settings.last_day
            if last < first:
                raise ReportError("the last day comes before the first day")
            return ReportParams(first_day=first, last_day=last)
        if kind == "disclosure":
            year = self.year or settings.last_day.year
            if not 1900 <= year <= 9999:
                raise ReportError("the year must be between 1900 and 9999")
            return ReportParams(year=year)
        return ReportParams()

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.first_day:
            data["first_day"] = self.first_day.isoformat()
        if self.last_day:
            data["last_day"] = self.last_day.isoformat()
        if self.year:
            data["year"] = self.year
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportParams:
        return cls(
            first_day=date.fromisoformat(data["first_day"]) if data.get("first_day") else None,
            last_day=date.fromisoformat(data["last_day"]) if data.get("last_day") else None,
            year=data.get("year"),
        )


@dataclass(frozen=True)
class FundSponsor:
    fund_id: int
    fund_name: str
    sponsor_name: str
    sponsor_ein: str

    @property
    def words(self) -> str:
        return f"Yes: received by {self.sponsor_name} (EIN {self.sponsor_ein}), fiscal sponsor"


def fund_sponsors() -> tuple[FundSponsor, ...]:
    rows = db.session.execute(
        select(Fund.id, Fund.name, Fund.sponsor_name, Fund.sponsor_ein)
        .where(Fund.sponsor_held.is_(True))
        .order_by(Fund.name, Fund.id)
    )
    return tuple(FundSponsor(fund_id, name, sponsor or "", ein or "") for fund_id, name, sponsor, ein in rows)


@dataclass(frozen=True)
class Context:
    """What a report is computed from: the program's settings, the parameters resolved for its
    kind, the newsroom's zone and name, and when (a saved run's time)."""

    settings: ProgramSettings
    program_id: int
    params: ReportParams
    zone: ZoneInfo
    newsroom: str
    as_of: datetime
    # The programs exclusive with this one and before it in priority, as they were at `as_of`.
    claimants: tuple[Claimant, ...] = ()
    # The sponsor-held funds: their gifts are deductible, received by the sponsor.
    sponsors: tuple[FundSponsor, ...] = ()

    def sponsor_of(self, fund_id: int) -> FundSponsor | None:
        return next((sponsor for sponsor in self.sponsors if sponsor.fund_id == fund_id), None)

    @property
    def counted_sponsors(self) -> tuple[FundSponsor, ...]:
        """The sponsor-held funds this program counts."""
        fund_ids = self.settings.fund_ids
        return tuple(s for s in self.sponsors if fund_ids is None or s.fund_id in fund_ids)

    @property
    def window(self) -> Window:
        return Window.of(self.settings.first_day, self.settings.last_day, self.zone)

    @property
    def rules(self) -> ProgramRules:
        return rules_for(self.settings)

    @property
    def local_area(self) -> LocalArea:
        return LocalArea(self.settings.local_postal_prefixes, self.settings.local_states)


def rules_for(settings: ProgramSettings) -> ProgramRules:
    return ProgramRules(
        first_day=settings.first_day,
        last_day=settings.last_day,
        cap_cents=settings.cap_cents,
        fund_ids=None if settings.fund_ids is None else frozenset(settings.fund_ids),
        sources=frozenset(settings.sources),
        individuals_only=settings.individuals_only,
        recurring_rule=RecurringRule(settings.recurring_rule),
        anonymous_limit_cents=settings.anonymous_limit_cents,
        deduct_fair_market_value=settings.deduct_fair_market_value,
    )


def exclusive(one: ProgramSettings, other: ProgramSettings) -> bool:
    """Marked exclusive by either program: a gift counts in one of them only."""
    return other.slug in one.exclusive_with or one.slug in other.exclusive_with


def claimants_of(settings: ProgramSettings, program_id: int, zone: ZoneInfo) -> tuple[Claimant, ...]:
    """The programs exclusive with `settings` that come first (lower priority number, then the
    older program), in that order."""
    others = []
    for program in db.session.scalars(select(GrantProgram).where(GrantProgram.id != program_id)):
        other = program.settings()
        if exclusive(settings, other) and (other.priority, program.id) < (settings.priority, program_id):
            others.append(((other.priority, program.id), other))
    return tuple(
        Claimant(other.name, Window.of(other.first_day, other.last_day, zone), rules_for(other))
        for _, other in sorted(others, key=lambda pair: pair[0])
    )


def context(settings: ProgramSettings, program_id: int, kind: str, params: ReportParams) -> Context:
    return Context(
        settings=settings,
        program_id=program_id,
        params=params.resolve(kind, settings),
        zone=newsroom_zone(),
        newsroom=current_look().name,
        as_of=utcnow(),
        claimants=claimants_of(settings, program_id, newsroom_zone()),
        sponsors=fund_sponsors(),
    )


def not_deductible_statement(newsroom: str) -> str:
    return f"Gifts to {newsroom} are not tax deductible: {newsroom} is a for-profit business, not a charity."


def tax_notes(ctx: Context) -> tuple[str, ...]:
    """What a report says about tax: the sponsor-held funds it counts (deductible, and through
    whom), and the not-deductible statement for every other gift."""
    sponsored = ctx.counted_sponsors
    if not sponsored:
        return (not_deductible_statement(ctx.newsroom),)
    held = "; ".join(
        f"{s.fund_name}: received by {s.sponsor_name} (EIN {s.sponsor_ein}), its fiscal sponsor" for s in sponsored
    )
    return (
        f"Tax deductible: only gifts to sponsor-held funds ({held}), marked in the Tax deductible column.",
        f"Every other gift is not tax deductible: {ctx.newsroom} is a for-profit business, not a charity.",
    )


def deductible_words(ctx: Context, fund_id: int, tax_deductible: bool) -> str:
    sponsor = ctx.sponsor_of(fund_id) if tax_deductible else None
    return sponsor.words if sponsor else "No"


def counting_date(received_at: datetime, postmarked_on: date | None, zone: ZoneInfo) -> date:
    """A mailed gift counts on its postmark date; any other on the local date the money moved."""
    return postmarked_on or local_date(received_at, zone)


def donor_label(name: str | None, anonymous: bool) -> str:
    return "Anonymous" if anonymous else (name or "")
