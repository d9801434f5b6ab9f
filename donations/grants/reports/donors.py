"""One row per donor who paid anything in the window."""

from __future__ import annotations

from collections.abc import Iterator

from donations.grants.reports.base import Cell, Context, Money, Report, donor_label, not_deductible_statement
from donations.grants.reports.evaluation import evaluated_donors, new_totals
from donations.grants.rules import OVER_CAP, Reason

# A donor's reasons in words (the codes stay in the gift ledger's Reason column).
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
    "Not counted, and why",
    "Local donor",
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
            "'Anonymous' and still counted.",
            not_deductible_statement(ctx.newsroom),
        ),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        totals = new_totals(ctx)
        for donor in evaluated_donors(ctx):
            result = donor.result
            totals.add(result, donor.local)
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
                ", ".join(REASON_WORDS.get(r, r) for r in result.exclusion_reasons),
                None if donor.local is None else donor.local,
            )
        report.totals.update(totals.as_dict())

    report.rows = rows()
    return report
