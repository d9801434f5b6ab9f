"""Every refund and dispute of a gift paid in the window, flagged when it came after an export."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select

from donations.clock import local_date
from donations.extensions import db
from donations.grants import queries, row_streams
from donations.grants.models import COUNTING_KINDS, ProgramSettings, ReportRun
from donations.grants.reports.base import (
    REASON_LABELS,
    REVERSAL_LABELS,
    SOURCE_LABELS,
    Cell,
    Context,
    Money,
    Report,
    counting_date,
    deductible_words,
    donor_label,
    rules_for,
    tax_notes,
)
from donations.grants.reports.evaluation import reversed_gift_facts
from donations.grants.rules import Period, Reason, exclusion
from donations.ledger.models import GiftSource

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
    "Tax deductible",
    # Codes beside the words: CSV only.
    "kind_code",
    "source_code",
    "eligibility_code",
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
        context=ctx,
        notes=(
            "Every refund and dispute of a gift paid in the window, whatever its own date. "
            "'After an export': an earlier saved export counted the gift before this reversal was recorded.",
            *tax_notes(ctx),
        ),
        csv_only=("kind_code", "source_code", "eligibility_code"),
    )

    def rows() -> Iterator[tuple[Cell, ...]]:
        exports = saved_exports(ctx.program_id)
        anonymous = set(db.session.scalars(queries.anonymous_owners_stmt(ctx.window)))
        rules = ctx.rules
        total = after = 0
        count = 0
        for row in row_streams.stream(queries.reversals_stmt(ctx.window)):
            reason = exclusion(rules, reversed_gift_facts(row, Period.IN))
            export = earlier_export(exports, row, ctx.zone)
            total += row.amount_cents
            count += 1
            after += export is not None
            yield (
                row.id,
                REVERSAL_LABELS.get(row.kind, row.kind),
                local_date(row.reversed_at, ctx.zone),
                local_date(row.created_at, ctx.zone),
                Money(row.amount_cents),
                row.gift_id,
                counting_date(row.gift_received_at, row.gift_postmarked_on, ctx.zone),
                Money(row.gift_amount_cents),
                row.owner,
                donor_label(row.donor_name, row.owner in anonymous),
                row.fund_name,
                SOURCE_LABELS.get(row.source, row.source),
                "Yes" if reason is None else REASON_LABELS.get(reason, reason.value),
                export is not None,
                f"#{export.id} on {local_date(export.created_at, ctx.zone).isoformat()}" if export else None,
                deductible_words(ctx, row.fund_id, row.source == GiftSource.SPONSOR),
                row.kind,
                row.source,
                "eligible" if reason is None else reason.value,
            )
        report.totals.update({"reversals": count, "reversals_cents": total, "after_export": after})

    report.rows = rows()
    return report
