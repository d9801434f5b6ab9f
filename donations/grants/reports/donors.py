"""One row per donor who paid anything in the window."""

from __future__ import annotations

from collections.abc import Iterator

from donations.grants.reports.base import Cell, Context, Money, Report, donor_label, tax_notes
from donations.grants.reports.evaluation import (
    MembershipState,
    evaluated_donors,
    membership_states,
    new_recurring_canceled,
    new_totals,
)
from donations.grants.rules import OVER_CAP, DonorResult, Period, Reason

# A donor's reasons in words (the codes are in a CSV-only column).
REASON_WORDS = {
    **{str(r): r.explanation.removeprefix("Not counted: ").rstrip(".") for r in Reason if not r.included},
    OVER_CAP: "part over the per-donor cap",
}

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
    "Membership status",
    "Membership canceled",
    "Tax deductible, through a fiscal sponsor ($)",
    "Not counted, and why",
    "Local donor",
    "reason_codes",
)


def _counted_memberships(result: DonorResult) -> list[int]:
    """The memberships whose installments the program counted, in the order first met."""
    seen: dict[int, None] = {}
    for gift in result.gifts:
        if gift.facts.membership_id is not None and gift.reason.included and gift.facts.period is Period.IN:
            seen.setdefault(gift.facts.membership_id, None)
    return list(seen)


def _membership_cells(ids: list[int], states: dict[int, MembershipState]) -> tuple[Cell, Cell]:
    """Status and cancellation date: plain cells for one membership (most donors), words for more."""
    found = [states[i] for i in ids if i in states]
    if not found:
        return None, None
    if len(found) == 1:
        return found[0].words(), found[0].canceled_on
    statuses = "; ".join(f"#{i}: {states[i].words()}" for i in ids if i in states)
    canceled: list[str] = [
        f"#{i}: {day.isoformat()}" for i in ids if i in states and (day := states[i].canceled_on) is not None
    ]
    return statuses, "; ".join(canceled) or None


def _deductible_cents(result: DonorResult, sponsored: frozenset[int]) -> int:
    return sum(
        g.facts.amount_cents
        for g in result.gifts
        if g.facts.paid and g.facts.period is Period.IN and g.facts.fund_id in sponsored
    )


def donors(ctx: Context) -> Report:
    report = Report(
        kind="donors",
        title=f"{ctx.settings.name}: donors",
        columns=DONOR_COLUMNS,
        rows=iter(()),
        context=ctx,
        notes=(
            "One row per donor who paid anything in the window. Anonymous donors are named "
            "'Anonymous' and still counted. Membership status and cancellation: the memberships "
            "whose installments were counted, as they stand now.",
            *tax_notes(ctx),
        ),
        csv_only=("reason_codes",),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        totals = new_totals(ctx)
        states = membership_states(ctx)
        sponsored = frozenset(s.fund_id for s in ctx.sponsors)
        for donor in evaluated_donors(ctx):
            result = donor.result
            totals.add(result, donor.local, canceled_in_window=new_recurring_canceled(result, states, ctx))
            status, canceled = _membership_cells(_counted_memberships(result), states)
            deductible = _deductible_cents(result, sponsored) if sponsored else 0
            yield (
                donor.owner,
                donor_label(donor.name, donor.anonymous),
                donor.email,
                donor.organization,
                result.gifts_in_window,
                Money(result.gross_cents),
                Money(result.reversed_cents),
                Money(result.counted_cents),
                Money(result.matchable_cents),
                result.new_donor,
                result.new_recurring,
                status,
                canceled,
                Money(deductible) if deductible else None,
                ", ".join(REASON_WORDS.get(r, r) for r in result.exclusion_reasons),
                None if donor.local is None else donor.local,
                " ".join(result.exclusion_reasons),
            )
        report.totals.update(totals.as_dict())

    report.rows = rows()
    return report
