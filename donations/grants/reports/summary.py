"""The program summary: its settings, then what it raised and why gifts did or did not count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from donations.extensions import db
from donations.grants.models import Pledge
from donations.grants.reports.base import (
    Cell,
    Context,
    Money,
    Percent,
    Report,
    not_deductible_statement,
    tax_notes,
)
from donations.grants.reports.evaluation import program_totals
from donations.grants.reports.words import area_words, rule_rows
from donations.grants.rules import Reason
from donations.money import format_money


def _pledges(program_id: int) -> list[tuple[str, date, int]]:
    """The program's local-match pledges: funder, date and amount, oldest first."""
    stmt = (
        select(Pledge.funder_name, Pledge.pledged_on, Pledge.amount_cents)
        .where(Pledge.program_id == program_id)
        .order_by(Pledge.pledged_on, Pledge.id)
    )
    return [(funder, day, amount) for funder, day, amount in db.session.execute(stmt)]


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
        window, *rules = rule_rows(s)
        yield window
        yield ("Time zone", str(ctx.zone))
        yield from rules
        if ctx.claimants:
            names = ", ".join(c.name for c in ctx.claimants)
            yield ("Exclusive with (a gift they count is not counted here)", names)
        if ctx.local_area.defined:
            yield ("Local area", area_words(s.local_postal_prefixes, s.local_states))
        yield ("Raised: counted toward the program", Money(totals.counted_cents))
        pledges = _pledges(ctx.program_id)
        pledged = sum(amount for _, _, amount in pledges)
        report.totals.update({"pledges": len(pledges), "pledged_cents": pledged})
        yield ("Local-match pledges", f"{len(pledges)}, {format_money(pledged)} in all" if pledges else "none")
        for funder, day, amount in pledges:
            yield (f"Pledged by {funder} on {day.isoformat()}", Money(amount))
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
