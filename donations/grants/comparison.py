"""A saved report run against the same report computed now: what changed since it was sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import select

from donations.clock import local_date, newsroom_zone
from donations.extensions import db
from donations.grants import queries, reports
from donations.grants.models import PACKET, ProgramSettings, ReportRun
from donations.grants.reports import Cell, ReportParams
from donations.grants.reports.words import changed_settings_rows
from donations.grants.rules import Period, exclusion
from donations.ledger.currency import counted_gift
from donations.ledger.models import Gift, Reversal


def edits_after(run: ReportRun) -> list[tuple[str, Cell, Cell]]:
    """The program's settings that differ now from those the run was computed with, in words:
    (setting, then, now)."""
    return changed_settings_rows(run.program_settings, run.program.settings().snapshot())


@dataclass(frozen=True)
class LateReversal:
    id: int
    kind: str
    amount_cents: int
    reversed_on: date
    recorded_on: date
    gift_id: int
    counted_by_run: bool  # the run counted the gift: this reversal came "after export"


@dataclass(frozen=True)
class LateGift:
    id: int
    amount_cents: int
    received_on: date
    recorded_on: date


@dataclass(frozen=True)
class Comparison:
    """A saved run against the same report computed now, with the settings it was made with."""

    run: ReportRun
    totals_then: dict[str, Any]
    totals_now: dict[str, Any]
    rows_now: int
    changed: list[tuple[str, Any, Any]]
    reversals_after: list[LateReversal]
    gifts_after: list[LateGift]
    settings_edited: list[tuple[str, Cell, Cell]]


COMPARISON_LIST_LIMIT = 200


def compare_with_now(run: ReportRun) -> Comparison:
    """Re-run `run` (same report, parameters and program settings) and say what changed since:
    totals, reversals recorded after it (flagged "after export" when it had counted their gift)
    and gifts recorded after it that are dated in its window."""
    settings = ProgramSettings.from_snapshot(run.program_settings)
    params = ReportParams.from_dict(run.parameters)
    # A packet's totals are its summary's; its row count is its files.
    packet = run.kind == PACKET
    report = reports.build(settings, run.program_id, "summary" if packet else run.kind, params)
    rows_now = sum(1 for _ in report.rows)
    keys = sorted(set(run.totals) | set(report.totals))
    changed = [(k, run.totals.get(k), report.totals.get(k)) for k in keys if run.totals.get(k) != report.totals.get(k)]
    if rows_now != run.row_count and not packet:
        changed.insert(0, ("rows", run.row_count, rows_now))

    zone = newsroom_zone()
    window = queries.Window.of(settings.first_day, settings.last_day, zone)
    rules = reports.rules_for(settings)
    late_reversals = []
    for row in db.session.execute(
        queries.reversals_stmt(window).where(Reversal.created_at > run.created_at).limit(COMPARISON_LIST_LIMIT)
    ):
        counted = row.gift_created_at <= run.created_at and (
            exclusion(rules, reports.reversed_gift_facts(row, Period.IN)) is None
        )
        late_reversals.append(
            LateReversal(
                id=row.id,
                kind=row.kind,
                amount_cents=row.amount_cents,
                reversed_on=local_date(row.reversed_at, zone),
                recorded_on=local_date(row.created_at, zone),
                gift_id=row.gift_id,
                counted_by_run=counted,
            )
        )
    late_gifts = [
        LateGift(
            id=gift.id,
            amount_cents=gift.amount_cents,
            received_on=reports.counting_date(cast(datetime, gift.received_at), gift.postmarked_on, zone),
            recorded_on=local_date(gift.created_at, zone),
        )
        for gift in db.session.scalars(
            select(Gift)
            .where(
                counted_gift(),
                Gift.received_at.is_not(None),
                Gift.created_at > run.created_at,
                queries.period_of(window) == 0,
            )
            .order_by(Gift.created_at, Gift.id)
            .limit(COMPARISON_LIST_LIMIT)
        )
    ]
    return Comparison(
        run=run,
        totals_then=run.totals,
        totals_now=dict(report.totals),
        rows_now=rows_now,
        changed=changed,
        reversals_after=late_reversals,
        gifts_after=late_gifts,
        settings_edited=edits_after(run),
    )
