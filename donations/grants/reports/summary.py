"""The program summary: its settings, then what it raised and why gifts did or did not count."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal

from sqlalchemy import select

from donations.extensions import db
from donations.grants.reports.base import (
    SOURCE_LABELS,
    Cell,
    Context,
    Money,
    Percent,
    Report,
    not_deductible_statement,
    tax_notes,
)
from donations.grants.reports.evaluation import program_totals
from donations.grants.rules import Reason, RecurringRule
from donations.ledger.models import Fund

RULE_LABELS = {
    RecurringRule.INSTALLMENTS: "Each installment paid in the window",
    RecurringRule.NEW_RECURRING_X12: "New recurring donors count 12 x the monthly amount",
}


def _fund_names(fund_ids: Sequence[int] | None) -> str:
    if fund_ids is None:
        return "All funds"
    names = db.session.scalars(select(Fund.name).where(Fund.id.in_(fund_ids)).order_by(Fund.name)).all()
    return ", ".join(names) or "none"


def _area_words(prefixes: Sequence[str], states: Sequence[str]) -> str:
    parts = []
    if prefixes:
        parts.append("postal codes starting " + ", ".join(prefixes))
    if states:
        parts.append("states " + ", ".join(states))
    return "; or ".join(parts)


def summary(ctx: Context) -> Report:
    s = ctx.settings
    report = Report(
        kind="summary",
        title=f"{s.name}: program summary",
        columns=("Measure", "Value"),
        rows=iter(()),
        context=ctx,
        notes=tax_notes(ctx),
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
        yield (
            "Individuals only",
            "Yes: personal gifts and gifts through a donor-advised fund or a family foundation"
            if s.individuals_only
            else "No: every gift counts, whoever gave it",
        )
        yield ("Recurring gifts", RULE_LABELS[RecurringRule(s.recurring_rule)])
        yield (
            "Largest anonymous gift counted",
            "no limit" if s.anonymous_limit_cents is None else Money(s.anonymous_limit_cents),
        )
        fair_value = "deducted" if s.deduct_fair_market_value else "not deducted"
        yield ("Fair market value of what donors received", fair_value)
        yield ("Program-level match cap", "none" if s.program_cap_cents is None else Money(s.program_cap_cents))
        if ctx.claimants:
            names = ", ".join(c.name for c in ctx.claimants)
            yield ("Exclusive with (a gift they count is not counted here)", names)
        if ctx.local_area.defined:
            yield ("Local area", _area_words(s.local_postal_prefixes, s.local_states))
        yield ("Raised: counted toward the program", Money(totals.counted_cents))
        yield ("Matchable: counted, each donor capped", Money(totals.matchable_cents))
        yield ("Over the per-donor cap (not matchable)", Money(totals.counted_cents - totals.matchable_cents))
        if s.program_cap_cents is not None:
            yield ("Matchable before the program-level cap", Money(totals.matchable_cents))
            yield ("Matchable after the program-level cap", Money(totals.matchable_after_program_cap_cents))
        if ctx.local_area.defined:
            yield ("Local donors counted", totals.local_donors)
            yield ("Raised from local donors", Money(totals.local_counted_cents))
            share = Decimal(totals.local_counted_cents) / totals.counted_cents if totals.counted_cents else Decimal(0)
            yield ("Local share of the money raised", Percent(share))
        if s.goal_cents is not None:
            yield ("Goal", Money(s.goal_cents))
            yield ("Matchable as a share of the goal", Percent(Decimal(totals.matchable_cents) / s.goal_cents))
        yield ("Donors counted", totals.donors_counted)
        yield ("New donors (no gift before the window)", totals.new_donors)
        yield ("Returning donors", totals.donors_counted - totals.new_donors)
        yield ("New recurring donors", totals.new_recurring_donors)
        yield ("New recurring donors who canceled within the window", totals.new_recurring_canceled)
        yield ("Gifts paid in the window", totals.gifts_in_window)
        yield ("Paid in the window, before reversals", Money(totals.gross_cents))
        yield ("Reversed (refunds and lost disputes) from those gifts", Money(totals.reversed_cents))
        yield ("Gifts counted", totals.gifts_counted)
        for reason in Reason:
            if totals.by_reason.get(reason):
                label = "Gifts counted" if reason.included else "Gifts not counted"
                words = reason.explanation.split(": ", 1)[-1].rstrip(".")
                yield (f"{label}: {words} (number)", totals.by_reason[reason])
                yield (f"{label}: {words} (paid)", Money(totals.gross_by_reason[reason]))
        sponsored = ctx.counted_sponsors
        if sponsored:
            for sponsor in sponsored:
                yield (f"Tax deductible: {sponsor.fund_name}", sponsor.words)
            yield ("Tax deductible: every other gift", f"No. {not_deductible_statement(ctx.newsroom)}")
        else:
            yield ("Tax deductible", f"No. {not_deductible_statement(ctx.newsroom)}")
        if s.notes:
            yield ("Notes", s.notes)

    report.rows = rows()
    return report
