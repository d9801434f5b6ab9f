"""Per Stripe payout: the gifts and reversals it settled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from donations.grants.reports.base import Cell, Context, Money, Report, not_deductible_statement
from donations.payments.reconcile import payout_reconciliation_rows

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
        context=ctx,
        notes=(
            "Per Stripe payout arriving in the period: the gifts and reversals it settled. Net is gross less "
            "fees, refunds and disputes; Difference is what Stripe paid out less that net (other balance "
            "activity, or gifts not yet reconciled). Only online gifts are paid out: none of them is "
            "tax deductible.",
            not_deductible_statement(ctx.newsroom),
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
