"""The grant reports, as streams of typed rows (see export.py for CSV and XLSX).

Each builder returns a `Report` whose `rows` is a one-shot iterator: the rows are produced while
the database streams, one donor at a time, and `totals` is complete once `rows` is exhausted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Row, select

from donations.clock import local_date, newsroom_zone
from donations.extensions import db
from donations.forms import SOURCE_CHOICES
from donations.grants import queries
from donations.grants.models import COUNTING_KINDS, REPORT_KINDS, ProgramSettings, ReportRun
from donations.grants.queries import Window
from donations.grants.rules import (
    PERIODS,
    DonorFacts,
    DonorResult,
    GiftFacts,
    GiftResult,
    Increase,
    Period,
    ProgramRules,
    Reason,
    RecurringRule,
    evaluate,
    exclusion,
)
from donations.ledger.models import Fund
from donations.payments.reconcile import payout_reconciliation_rows

DISCLOSURE_TIERS = (500_000, 100_000)  # $5,000 and $1,000, in cents
SOURCE_LABELS = dict(SOURCE_CHOICES)
RULE_LABELS = {
    RecurringRule.INSTALLMENTS: "Each installment paid in the window",
    RecurringRule.NEW_RECURRING_X12: "New recurring donors count 12 x the monthly amount",
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
class Context:
    settings: ProgramSettings
    program_id: int
    params: ReportParams
    zone: ZoneInfo
    newsroom: str

    @property
    def window(self) -> Window:
        return Window.of(self.settings.first_day, self.settings.last_day, self.zone)

    @property
    def rules(self) -> ProgramRules:
        return rules_for(self.settings)


def rules_for(settings: ProgramSettings) -> ProgramRules:
    return ProgramRules(
        first_day=settings.first_day,
        last_day=settings.last_day,
        cap_cents=settings.cap_cents,
        fund_ids=None if settings.fund_ids is None else frozenset(settings.fund_ids),
        sources=frozenset(settings.sources),
        individuals_only=settings.individuals_only,
        recurring_rule=RecurringRule(settings.recurring_rule),
    )


def context(settings: ProgramSettings, program_id: int, kind: str, params: ReportParams) -> Context:
    return Context(
        settings=settings,
        program_id=program_id,
        params=params.resolve(kind, settings),
        zone=newsroom_zone(),
        newsroom=current_app.config["NEWSROOM_NAME"],
    )


# --- donors, evaluated ------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluatedDonor:
    owner: int
    name: str | None
    email: str | None
    organization: str | None
    anonymous: bool
    result: DonorResult


def _group_facts(row: Row[*tuple[Any, ...]]) -> GiftFacts:
    # Unpacked by position (the columns of queries.donor_groups): a report reads half a million
    # of these rows, and attribute access on a Row costs a lookup each.
    (
        _owner,
        period,
        membership_id,
        membership_interval,
        fund_id,
        source,
        organization,
        fully_reversed,
        _unit_amount,
        _unit_reversed,
        count,
        amount,
        reversed_,
        first_at,
        *_rest,
    ) = row
    # Positional: gift_id, count, period, paid, amount, reversed, fully_reversed, fund_id, source,
    # organization, membership_id, membership_interval, first_at (keywords cost a third more).
    return GiftFacts(
        None,
        count,
        PERIODS[period],
        True,
        amount,
        reversed_,
        bool(fully_reversed),
        fund_id,
        source,
        bool(organization),
        membership_id,
        membership_interval,
        first_at,
    )


def _gift_facts(row: Row[*tuple[Any, ...]]) -> GiftFacts:
    # By position, as _group_facts: the columns of queries.gifts_stmt.
    (
        _owner,
        period,
        _in_span,
        gift_id,
        _donor_id,
        fund_id,
        membership_id,
        amount,
        *_money,
        source,
        _status,
        received_at,
        _postmarked_on,
        _check_number,
        _anonymous,
        _organization,
        _tax_deductible,
        _currency,
        is_organization,
        reversed_,
        membership_interval,
        _fund_name,
        _donor_name,
    ) = row
    return GiftFacts(
        gift_id=gift_id,
        count=1,
        period=PERIODS[period],
        paid=True,
        amount_cents=amount,
        reversed_cents=reversed_,
        fully_reversed=reversed_ >= amount,
        fund_id=fund_id,
        source=source,
        organization=bool(is_organization),
        membership_id=membership_id,
        membership_interval=membership_interval,
        first_at=received_at,
    )


def _increases(rows: Sequence[Row[*tuple[Any, ...]]]) -> dict[int, Increase]:
    """Per membership: the amount before its first change in the window, after its last."""
    if not rows:
        return _NO_INCREASES
    increases: dict[int, Increase] = {}
    for _owner, membership_id, old_cents, new_cents in rows:
        earlier = increases.get(membership_id)
        old = earlier.old_cents if earlier else old_cents
        increases[membership_id] = Increase(old_cents=old, new_cents=new_cents)
    return increases


_NO_INCREASES: dict[int, Increase] = {}  # shared, never written: most donors changed nothing


_IN = Period.IN  # a global: reading an enum member off its class is slow, and this is read per row


def evaluated_donors(ctx: Context) -> Iterator[EvaluatedDonor]:
    """Every donor who paid anything in the window, with the rules applied, in donor order."""
    window = ctx.window
    rules = ctx.rules
    # Only ordered among themselves: the driver's times will do (see queries.donor_groups).
    groups = queries.by_owner(queries.stream(queries.donor_groups_stmt(window, raw_times=True)))
    changes = queries.by_owner(queries.stream(queries.increases_stmt(window)))
    for owner, rows, (increase_rows,) in queries.merge_by_owner(groups, changes):
        anonymous = in_window = False
        for row in rows:
            if row[1] == _IN:  # period
                in_window = True
                anonymous = anonymous or bool(row[14])  # anonymous
        if not in_window:
            continue
        result = evaluate(rules, DonorFacts([_group_facts(row) for row in rows], _increases(increase_rows)))
        first = rows[0]
        # Reports leave the newsroom: an anonymous donor is only its id, nothing to find them by.
        yield EvaluatedDonor(
            owner=owner,
            name=None if anonymous else first.donor_name,
            email=None if anonymous else first.donor_email,
            organization=None if anonymous else first.donor_organization,
            anonymous=anonymous,
            result=result,
        )


@dataclass
class ProgramTotals:
    counted_cents: int = 0
    matchable_cents: int = 0
    gross_cents: int = 0
    reversed_cents: int = 0
    donors_in_window: int = 0
    donors_counted: int = 0
    new_donors: int = 0
    new_recurring_donors: int = 0
    gifts_in_window: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    gross_by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, result: DonorResult) -> None:
        self.counted_cents += result.counted_cents
        self.matchable_cents += result.matchable_cents
        self.gross_cents += result.gross_cents
        self.reversed_cents += result.reversed_cents
        self.gifts_in_window += result.gifts_in_window
        self.donors_in_window += 1
        if result.counted_cents > 0:
            self.donors_counted += 1
            self.new_donors += result.new_donor
            self.new_recurring_donors += result.new_recurring
        for gift in result.gifts:
            if gift.facts.paid and gift.facts.period is _IN:
                for reason, count, gross in gift.breakdown:
                    self.by_reason[reason] += count
                    self.gross_by_reason[reason] += gross

    @property
    def gifts_counted(self) -> int:
        return sum(n for reason, n in self.by_reason.items() if Reason(reason).included)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counted_cents": self.counted_cents,
            "matchable_cents": self.matchable_cents,
            "over_cap_cents": self.counted_cents - self.matchable_cents,
            "gross_cents": self.gross_cents,
            "reversed_cents": self.reversed_cents,
            "donors_counted": self.donors_counted,
            "new_donors": self.new_donors,
            "returning_donors": self.donors_counted - self.new_donors,
            "new_recurring_donors": self.new_recurring_donors,
            "gifts_in_window": self.gifts_in_window,
            "gifts_counted": self.gifts_counted,
            "gifts_by_reason": dict(sorted(self.by_reason.items())),
        }


def program_totals(ctx: Context) -> ProgramTotals:
    totals = ProgramTotals()
    for donor in evaluated_donors(ctx):
        totals.add(donor.result)
    return totals


# --- the reports ---------------------------------------------------------------------------------


def _fund_names(fund_ids: Sequence[int] | None) -> str:
    if fund_ids is None:
        return "All funds"
    names = db.session.scalars(select(Fund.name).where(Fund.id.in_(fund_ids)).order_by(Fund.name)).all()
    return ", ".join(names) or "none"


def not_deductible_statement(newsroom: str) -> str:
    return f"Gifts to {newsroom} are not tax deductible: {newsroom} is a for-profit business, not a charity."


def summary(ctx: Context) -> Report:
    s = ctx.settings
    report = Report(
        kind="summary",
        title=f"{s.name}: program summary",
        columns=("Measure", "Value"),
        rows=iter(()),
        notes=(not_deductible_statement(ctx.newsroom),),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        totals = program_totals(ctx)
        report.totals.update(totals.as_dict())
        yield ("Program", s.name)
        yield ("Window (local dates, inclusive)", f"{s.first_day.isoformat()} to {s.last_day.isoformat()}")
        yield ("Time zone", str(ctx.zone))
        yield ("Per-donor cap", Money(s.cap_cents) if s.cap_cents is not None else "none")
        yield ("Funds counted", _fund_names(s.fund_ids))
        yield ("Sources counted", ", ".join(SOURCE_LABELS.get(x, x) for x in s.sources))
        yield ("Individuals only", s.individuals_only)
        yield ("Recurring gifts", RULE_LABELS[RecurringRule(s.recurring_rule)])
        yield ("Raised: counted toward the program", Money(totals.counted_cents))
        yield ("Matchable: counted, each donor capped", Money(totals.matchable_cents))
        yield ("Over the per-donor cap (not matchable)", Money(totals.counted_cents - totals.matchable_cents))
        if s.goal_cents is not None:
            yield ("Goal", Money(s.goal_cents))
            yield ("Matchable as a share of the goal", Percent(Decimal(totals.matchable_cents) / s.goal_cents))
        yield ("Donors counted", totals.donors_counted)
        yield ("New donors (no gift before the window)", totals.new_donors)
        yield ("Returning donors", totals.donors_counted - totals.new_donors)
        yield ("New recurring donors", totals.new_recurring_donors)
        yield ("Gifts paid in the window", totals.gifts_in_window)
        yield ("Paid in the window, before reversals", Money(totals.gross_cents))
        yield ("Reversed (refunds and lost disputes) from those gifts", Money(totals.reversed_cents))
        yield ("Gifts counted", totals.gifts_counted)
        for reason in Reason:
            if totals.by_reason.get(reason):
                label = "Gifts counted" if reason.included else "Gifts not counted"
                yield (f"{label}: {reason.value} (number)", totals.by_reason[reason])
                yield (f"{label}: {reason.value} (paid)", Money(totals.gross_by_reason[reason]))
        yield ("Tax deductible", f"No. {not_deductible_statement(ctx.newsroom)}")
        if s.notes:
            yield ("Notes", s.notes)

    report.rows = rows()
    return report


DONOR_COLUMNS = (
    "Donor ID",
    "Name",
    "Email",
    "Organization",
    "Gifts in window",
    "Paid in window ($)",
    "Reversed ($)",
    "Counted ($)",
    "Matchable ($)",
    "New donor",
    "New recurring donor",
    "Not counted, and why",
)


def donors(ctx: Context) -> Report:
    report = Report(
        kind="donors",
        title=f"{ctx.settings.name}: donors",
        columns=DONOR_COLUMNS,
        rows=iter(()),
        notes=(
            "One row per donor who paid anything in the window. Anonymous donors are named "
            "'Anonymous' and still counted.",
            not_deductible_statement(ctx.newsroom),
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        totals = ProgramTotals()
        for donor in evaluated_donors(ctx):
            result = donor.result
            totals.add(result)
            yield (
                donor.owner,
                _donor_label(donor.name, donor.anonymous),
                donor.email,
                donor.organization,
                result.gifts_in_window,
                Money(result.gross_cents),
                Money(result.reversed_cents),
                Money(result.counted_cents),
                Money(result.matchable_cents),
                result.new_donor,
                result.new_recurring,
                ", ".join(result.exclusion_reasons),
            )
        report.totals.update(totals.as_dict())

    report.rows = rows()
    return report


LEDGER_COLUMNS = (
    "Gift ID",
    "Reversal ID",
    "Date counted",
    "Date received",
    "Postmarked",
    "Donor ID",
    "Donor",
    "Fund",
    "Source",
    "Frequency",
    "Membership ID",
    "Gross ($)",
    "Fee covered ($)",
    "Stripe fee ($)",
    "Net after Stripe fee ($)",
    "Reversal ($)",
    "Counted ($)",
    "Matchable ($)",
    "Over the cap ($)",
    "Reason",
    "Explanation",
    "tax_deductible",
)


def ledger(ctx: Context) -> Report:
    params = ctx.params
    assert params.first_day is not None and params.last_day is not None
    span = Window.of(params.first_day, params.last_day, ctx.zone)
    report = Report(
        kind="ledger",
        title=f"{ctx.settings.name}: gift ledger {params.first_day.isoformat()} to {params.last_day.isoformat()}",
        columns=LEDGER_COLUMNS,
        rows=iter(()),
        notes=(
            "One row per gift, each followed by its reversals; grouped by donor, in date order. "
            "A gift's Counted amount is already net of its reversals.",
            not_deductible_statement(ctx.newsroom),
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        window = ctx.window
        rules = ctx.rules
        gifts = queries.by_owner(queries.stream(queries.gifts_stmt(window, span)))
        context_groups = queries.by_owner(queries.stream(queries.donor_groups_stmt(window, (Period.BEFORE,))))
        changes = queries.by_owner(queries.stream(queries.increases_stmt(window)))
        reversals = queries.by_owner(queries.stream(queries.ledger_reversals_stmt(window, span)))
        # Plain locals, not dicts: they are added to a million times.
        gross = reversed_total = counted = matchable = 0
        gift_count = reversal_count = donors_counted = 0
        zone = ctx.zone
        for _owner, gift_rows, (before, increase_rows, reversal_rows) in queries.merge_by_owner(
            gifts, context_groups, changes, reversals
        ):
            by_id = {row.id: row for row in gift_rows}
            # One anonymous gift makes the donor "Anonymous" on every row: the same donor id
            # beside their name on another row would say who gave it.
            anonymous = any(row.anonymous for row in gift_rows)
            facts = [_gift_facts(row) for row in gift_rows] + [_group_facts(row) for row in before]
            result = evaluate(rules, DonorFacts(facts, _increases(increase_rows)))
            donors_counted += result.counted_cents > 0
            reversals_of: dict[int, list[Row[*tuple[Any, ...]]]] = {}
            for row in reversal_rows:
                reversals_of.setdefault(row.gift_id, []).append(row)
            for gift in result.gifts:
                if gift.facts.gift_id is None:
                    continue
                row = by_id[gift.facts.gift_id]
                if not row.in_span:
                    continue  # counted in the window but dated outside the span: context only
                gross += row.amount_cents
                counted += gift.counted_cents
                matchable += gift.matchable_cents
                gift_count += 1
                yield _ledger_gift_row(zone, row, gift, anonymous)
                if reversals_of:
                    for reversal in reversals_of.get(row.id, ()):
                        reversed_total += reversal.amount_cents
                        reversal_count += 1
                        yield _ledger_reversal_row(zone, row, reversal, anonymous)
        report.totals.update(
            {
                "gross_cents": gross,
                "reversals_cents": reversed_total,
                "counted_cents": counted,
                "matchable_cents": matchable,
                "gifts": gift_count,
                "reversals": reversal_count,
                "donors_counted": donors_counted,
            }
        )

    report.rows = rows()
    return report


def counting_date(received_at: datetime, postmarked_on: date | None, zone: ZoneInfo) -> date:
    """A mailed gift counts on its postmark date; any other on the local date the money moved."""
    return postmarked_on or local_date(received_at, zone)


def _donor_label(name: str | None, anonymous: bool) -> str:
    return "Anonymous" if anonymous else (name or "")


# A reason's text and explanation, looked up once (an enum's .value is a descriptor call).
_REASON_TEXT = {reason: (reason.value, reason.explanation) for reason in Reason}


def _ledger_gift_row(zone: ZoneInfo, row: Row[*tuple[Any, ...]], gift: GiftResult, anonymous: bool) -> tuple[Cell, ...]:
    # By position (the columns of queries.gifts_stmt): a million of these.
    (
        owner,
        _period,
        _in_span,
        gift_id,
        _donor_id,
        _fund_id,
        membership_id,
        amount,
        fee_covered,
        stripe_fee,
        net,
        frequency,
        source,
        _status,
        received_at,
        postmarked_on,
        _check_number,
        _anonymous,
        _organization,
        tax_deductible,
        _currency,
        _is_organization,
        _reversed,
        _membership_interval,
        fund_name,
        donor_name,
    ) = row
    received_on = received_at.astimezone(zone).date()
    reason, explanation = _REASON_TEXT[gift.reason]
    return (
        gift_id,
        None,
        postmarked_on or received_on,  # counting_date
        received_on,
        postmarked_on,
        owner,
        _donor_label(donor_name, anonymous),
        fund_name,
        SOURCE_LABELS.get(source, source),
        frequency,
        membership_id,
        Money(amount),
        Money(fee_covered),
        None if stripe_fee is None else Money(stripe_fee),
        None if net is None else Money(net),
        None,
        Money(gift.counted_cents),
        Money(gift.matchable_cents),
        Money(gift.over_cap_cents),
        reason,
        explanation,
        "true" if tax_deductible else "false",
    )


def _ledger_reversal_row(
    zone: ZoneInfo, row: Row[*tuple[Any, ...]], reversal: Row[*tuple[Any, ...]], anonymous: bool
) -> tuple[Cell, ...]:
    _owner, _gift_id, reversal_id, kind, amount, reversed_at = reversal
    return (
        row.id,
        reversal_id,
        None,
        reversed_at.astimezone(zone).date(),
        None,
        row.owner,
        _donor_label(row.donor_name, anonymous),
        row.fund_name,
        SOURCE_LABELS.get(row.source, row.source),
        row.frequency,
        row.membership_id,
        None,
        None,
        None,
        None,
        Money(amount),
        None,
        None,
        None,
        kind,
        f"{kind.replace('_', ' ').capitalize()} of gift {row.id}: already deducted from its Counted amount.",
        "false",
    )


REVERSAL_COLUMNS = (
    "Reversal ID",
    "Kind",
    "Date",
    "Recorded",
    "Amount ($)",
    "Gift ID",
    "Gift date counted",
    "Gift amount ($)",
    "Donor ID",
    "Donor",
    "Fund",
    "Source",
    "Gift eligible",
    "After an export",
    "Earlier export",
)


@dataclass(frozen=True)
class SavedExport:
    id: int
    created_at: datetime
    settings: ProgramSettings


def saved_exports(program_id: int) -> list[SavedExport]:
    """The program's saved exports that counted gifts, oldest first (a handful, not a stream)."""
    runs = db.session.execute(
        select(ReportRun.id, ReportRun.created_at, ReportRun.program_settings)
        .where(ReportRun.program_id == program_id, ReportRun.kind.in_(COUNTING_KINDS))
        .order_by(ReportRun.created_at, ReportRun.id)
    ).all()
    return [SavedExport(r.id, r.created_at, ProgramSettings.from_snapshot(r.program_settings)) for r in runs]


def _eligible_under(settings: ProgramSettings, row: Row[*tuple[Any, ...]], zone: ZoneInfo) -> Reason | None:
    day = counting_date(row.gift_received_at, row.gift_postmarked_on, zone)
    if day < settings.first_day:
        period = Period.BEFORE
    elif day > settings.last_day:
        period = Period.AFTER
    else:
        period = Period.IN
    return exclusion(rules_for(settings), reversed_gift_facts(row, period))


def reversed_gift_facts(row: Row[*tuple[Any, ...]], period: Period) -> GiftFacts:
    """The facts about a reversal's gift that decide whether a program counts it at all."""
    return GiftFacts(
        gift_id=row.gift_id,
        count=1,
        period=period,
        paid=True,
        amount_cents=row.gift_amount_cents,
        reversed_cents=0,
        fully_reversed=False,
        fund_id=row.fund_id,
        source=row.source,
        organization=bool(row.is_organization),
    )


def earlier_export(exports: Sequence[SavedExport], row: Row[*tuple[Any, ...]], zone: ZoneInfo) -> SavedExport | None:
    """The first saved export that counted this reversal's gift before the reversal was recorded."""
    for export in exports:
        if row.gift_created_at <= export.created_at < row.created_at and (
            _eligible_under(export.settings, row, zone) is None
        ):
            return export
    return None


def reversals(ctx: Context) -> Report:
    report = Report(
        kind="reversals",
        title=f"{ctx.settings.name}: refunds and disputes",
        columns=REVERSAL_COLUMNS,
        rows=iter(()),
        notes=(
            "Every refund and dispute of a gift paid in the window, whatever its own date. "
            "'After an export': an earlier saved export counted the gift before this reversal was recorded.",
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        exports = saved_exports(ctx.program_id)
        anonymous = set(db.session.scalars(queries.anonymous_owners_stmt(ctx.window)))
        rules = ctx.rules
        total = after = 0
        count = 0
        for row in queries.stream(queries.reversals_stmt(ctx.window)):
            reason = exclusion(rules, reversed_gift_facts(row, Period.IN))
            export = earlier_export(exports, row, ctx.zone)
            total += row.amount_cents
            count += 1
            after += export is not None
            yield (
                row.id,
                row.kind,
                local_date(row.reversed_at, ctx.zone),
                local_date(row.created_at, ctx.zone),
                Money(row.amount_cents),
                row.gift_id,
                counting_date(row.gift_received_at, row.gift_postmarked_on, ctx.zone),
                Money(row.gift_amount_cents),
                row.owner,
                _donor_label(row.donor_name, row.owner in anonymous),
                row.fund_name,
                SOURCE_LABELS.get(row.source, row.source),
                "yes" if reason is None else reason.value,
                export is not None,
                f"#{export.id} on {local_date(export.created_at, ctx.zone).isoformat()}" if export else None,
            )
        report.totals.update({"reversals": count, "reversals_cents": total, "after_export": after})

    report.rows = rows()
    return report


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
        notes=(
            f"Every donor whose gifts in {year} (local dates, net of reversals, all funds) reach $1,000, "
            "largest first, then the year's total and the share given anonymously. Anonymous donors are "
            "listed without their name.",
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        listed = dict.fromkeys(DISCLOSURE_TIERS, 0)
        overall: Any = None
        for row in queries.stream(queries.disclosure_stmt(span, DISCLOSURE_TIERS[-1])):
            overall = overall or _YearTotals(row.year_total, row.year_anonymous_total, row.year_donors)
            for tier in DISCLOSURE_TIERS:
                listed[tier] += row.total >= tier
            yield (
                row.owner,
                _donor_label(row.donor_name, bool(row.anonymous)),
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


PAYOUT_COLUMNS = (
    "Payout ID",
    "Arrival date",
    "Status",
    "Gifts",
    "Gross ($)",
    "Stripe fees ($)",
    "Refunds ($)",
    "Disputes ($)",
    "Net ($)",
    "Paid out by Stripe ($)",
    "Difference ($)",
)


def payouts(ctx: Context) -> Report:
    params = ctx.params
    assert params.first_day is not None and params.last_day is not None
    first_day, last_day = params.first_day, params.last_day
    report = Report(
        kind="payouts",
        title=f"Stripe payouts {params.first_day.isoformat()} to {params.last_day.isoformat()}",
        columns=PAYOUT_COLUMNS,
        rows=iter(()),
        notes=(
            "Per Stripe payout arriving in the period: the gifts and reversals it settled. Net is gross less "
            "fees, refunds and disputes; Difference is what Stripe paid out less that net (other balance "
            "activity, or gifts not yet reconciled).",
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        totals = Counter[str]()
        for row in payout_reconciliation_rows(first_day, last_day):
            totals.update(
                payouts=1,
                gifts=row.gift_count,
                gross_cents=row.gross_cents,
                fees_cents=row.fee_cents,
                refunds_cents=row.refunds_cents,
                disputes_cents=row.disputes_cents,
                net_cents=row.net_cents,
                paid_out_cents=row.amount_cents,
            )
            yield (
                row.payout_id,
                row.arrival_date,
                row.status,
                row.gift_count,
                Money(row.gross_cents),
                Money(row.fee_cents),
                Money(row.refunds_cents),
                Money(row.disputes_cents),
                Money(row.net_cents),
                Money(row.amount_cents),
                Money(row.difference_cents),
            )
        report.totals.update(totals)

    report.rows = rows()
    return report


BUILDERS: dict[str, Callable[[Context], Report]] = {
    "summary": summary,
    "donors": donors,
    "ledger": ledger,
    "reversals": reversals,
    "disclosure": disclosure,
    "payouts": payouts,
}
REPORT_TITLES = {
    "summary": "Program summary",
    "donors": "Program donors",
    "ledger": "Gift ledger",
    "reversals": "Refunds and disputes",
    "disclosure": "Disclosure of major donors",
    "payouts": "Payout reconciliation",
}


def build(settings: ProgramSettings, program_id: int, kind: str, params: ReportParams) -> Report:
    return BUILDERS[kind](context(settings, program_id, kind, params))
