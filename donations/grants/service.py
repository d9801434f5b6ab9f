"""Grant programs: create and edit them, run and save their reports, show their progress.

Every write is audited in the caller's transaction; exports are saved as ReportRuns (who, when,
the program's settings then, the row count and the file's SHA-256).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import local_date, newsroom_zone, utcnow
from donations.extensions import db
from donations.grants import export, queries, reports
from donations.grants.models import (
    ALL_SOURCES,
    REPORT_FORMATS,
    REPORT_KINDS,
    GrantProgram,
    ProgramSettings,
    ReportRun,
)
from donations.grants.reports import ReportParams
from donations.grants.rules import Period, RecurringRule, exclusion
from donations.ledger.currency import counted_gift
from donations.ledger.funds import SLUG
from donations.ledger.models import Fund, Gift, Reversal


class GrantError(ValueError):
    """A program or report request refused, with a message for the person who made it."""


@dataclass(frozen=True)
class ProgramInput:
    name: str
    slug: str
    first_day: date
    last_day: date
    cap_cents: int | None = None
    goal_cents: int | None = None
    fund_ids: tuple[int, ...] | None = None  # None: every fund
    sources: tuple[str, ...] = tuple(ALL_SOURCES)
    individuals_only: bool = True
    recurring_rule: str = RecurringRule.INSTALLMENTS
    notes: str = ""
    public_fund_id: int | None = None


Actor = StaffUser | str


def _validate(data: ProgramInput, program: GrantProgram | None) -> None:
    if not data.name.strip() or len(data.name) > 200:
        raise GrantError("A program needs a name of at most 200 characters.")
    if not SLUG.match(data.slug):
        raise GrantError("A slug is lowercase letters, digits and dashes, like newsmatch-2026.")
    clash = db.session.scalar(select(GrantProgram.id).where(GrantProgram.slug == data.slug))
    if clash is not None and (program is None or clash != program.id):
        raise GrantError(f"A program {data.slug} already exists.")
    if data.last_day < data.first_day:
        raise GrantError("The window's last day comes before its first day.")
    for label, cents in (("cap", data.cap_cents), ("goal", data.goal_cents)):
        if cents is not None and cents <= 0:
            raise GrantError(f"The {label} must be more than $0 (or left empty).")
    if not data.sources or set(data.sources) - set(ALL_SOURCES):
        raise GrantError(f"Count at least one source among {', '.join(ALL_SOURCES)}.")
    if data.recurring_rule not in set(RecurringRule):
        raise GrantError(f"The recurring rule is one of {', '.join(RecurringRule)}.")
    wanted = set(data.fund_ids or ())
    if data.public_fund_id is not None:
        wanted.add(data.public_fund_id)
    known = set(db.session.scalars(select(Fund.id).where(Fund.id.in_(wanted)))) if wanted else set()
    if wanted - known:
        raise GrantError("Unknown fund.")
    if data.fund_ids is not None and not data.fund_ids:
        raise GrantError("Count at least one fund, or all of them.")


def _apply(program: GrantProgram, data: ProgramInput) -> None:
    program.name = data.name.strip()
    program.slug = data.slug
    program.first_day = data.first_day
    program.last_day = data.last_day
    program.cap_cents = data.cap_cents
    program.goal_cents = data.goal_cents
    program.fund_ids = None if data.fund_ids is None else sorted(set(data.fund_ids))
    program.sources = [source for source in ALL_SOURCES if source in data.sources]
    program.individuals_only = data.individuals_only
    program.recurring_rule = data.recurring_rule
    program.notes = data.notes.strip()
    program.public_fund_id = data.public_fund_id


def create_program(data: ProgramInput, *, actor: Actor, remote_addr: str | None = None) -> GrantProgram:
    _validate(data, None)
    program = GrantProgram()
    _apply(program, data)
    db.session.add(program)
    db.session.flush()
    audit(
        "grant_program.create",
        actor=actor,
        target_type="grant_program",
        target_id=program.id,
        details={"after": program.settings().snapshot()},
        remote_addr=remote_addr,
    )
    return program


def update_program(
    program: GrantProgram, data: ProgramInput, *, actor: Actor, remote_addr: str | None = None
) -> GrantProgram:
    """Edit a program; an edit after an export is flagged in the audit log with the runs it follows."""
    _validate(data, program)
    before = program.settings().snapshot()
    _apply(program, data)
    after = program.settings().snapshot()
    changed = sorted(key for key in after if after[key] != before[key])
    if not changed:
        return program
    program.updated_at = utcnow()
    runs = db.session.scalar(select(func.count()).select_from(ReportRun).where(ReportRun.program_id == program.id))
    audit(
        "grant_program.update",
        actor=actor,
        target_type="grant_program",
        target_id=program.id,
        details={
            "before": {key: before[key] for key in changed},
            "after": {key: after[key] for key in changed},
            "after_export": bool(runs),
            "exports_before_edit": runs,
        },
        remote_addr=remote_addr,
    )
    return program


def program_by_slug(slug: str) -> GrantProgram | None:
    return db.session.scalar(select(GrantProgram).where(GrantProgram.slug == slug))


def list_programs() -> list[GrantProgram]:
    return list(db.session.scalars(select(GrantProgram).order_by(GrantProgram.last_day.desc(), GrantProgram.name)))


def edits_after(run: ReportRun) -> list[dict[str, Any]]:
    """The program's settings that differ now from those the run was computed with."""
    now = run.program.settings().snapshot()
    then = run.program_settings
    return [{"setting": key, "then": then.get(key), "now": now[key]} for key in now if now[key] != then.get(key)]


# --- reports and their runs -------------------------------------------------------------------------


def build_report(program: GrantProgram, kind: str, params: ReportParams | None = None) -> reports.Report:
    try:
        return reports.build(program.settings(), program.id, kind, params or ReportParams())
    except reports.ReportError as exc:
        raise GrantError(str(exc)) from None


def export_filename(program: GrantProgram, kind: str, fmt: str, at: datetime) -> str:
    stamp = at.astimezone(newsroom_zone()).strftime("%Y%m%d-%H%M%S")
    return f"{program.slug}-{kind}-{stamp}.{fmt}"


def _check(kind: str, fmt: str) -> None:
    if kind not in REPORT_KINDS:
        raise GrantError(f"The report is one of {', '.join(REPORT_KINDS)}.")
    if fmt not in REPORT_FORMATS:
        raise GrantError(f"The format is one of {', '.join(REPORT_FORMATS)}.")


def _save_run(
    program: GrantProgram,
    report: reports.Report,
    fmt: str,
    params: ReportParams,
    result: export.ExportResult,
    *,
    started_at: datetime,
    filename: str,
    actor: Actor,
    remote_addr: str | None,
) -> ReportRun:
    run = ReportRun(
        program_id=program.id,
        staff_user_id=actor.id if isinstance(actor, StaffUser) else None,
        actor=actor.email if isinstance(actor, StaffUser) else actor,
        created_at=started_at,
        kind=report.kind,
        format=fmt,
        parameters=params.resolve(report.kind, program.settings()).as_dict(),
        program_settings=program.settings().snapshot(),
        totals=dict(report.totals),
        row_count=result.row_count,
        byte_size=result.byte_size,
        sha256=result.sha256,
        filename=filename,
    )
    db.session.add(run)
    db.session.flush()
    audit(
        "grant_report.export",
        actor=actor,
        target_type="report_run",
        target_id=run.id,
        details={
            "program": program.slug,
            "kind": report.kind,
            "format": fmt,
            "parameters": run.parameters,
            "rows": run.row_count,
            "sha256": run.sha256,
        },
        remote_addr=remote_addr,
    )
    return run


def export_to_file(
    program: GrantProgram,
    kind: str,
    fmt: str,
    path: Path,
    *,
    actor: Actor,
    params: ReportParams | None = None,
    progress: export.Progress | None = None,
    remote_addr: str | None = None,
) -> ReportRun:
    """Write the report to `path` and save its run (the caller commits)."""
    _check(kind, fmt)
    params = params or ReportParams()
    started_at = utcnow()
    report = build_report(program, kind, params)
    if fmt == "csv":
        with path.open("wb") as out:
            result = export.write_csv(report, out, progress)
    else:
        result = export.write_xlsx(report, path, progress)
    return _save_run(
        program,
        report,
        fmt,
        params,
        result,
        started_at=started_at,
        filename=path.name,
        actor=actor,
        remote_addr=remote_addr,
    )


def estimate_rows(program: GrantProgram, kind: str, params: ReportParams | None = None) -> int | None:
    """About how many rows an export will have, for a progress bar (None: too few to matter)."""
    settings = program.settings()
    resolved = (params or ReportParams()).resolve(kind, settings)
    zone = newsroom_zone()
    if kind == "donors":
        return db.session.scalar(
            queries.count_donors_stmt(queries.Window.of(settings.first_day, settings.last_day, zone))
        )
    if kind == "ledger":
        assert resolved.first_day is not None and resolved.last_day is not None
        return db.session.scalar(
            queries.count_ledger_stmt(queries.Window.of(resolved.first_day, resolved.last_day, zone))
        )
    return None


@dataclass
class Download:
    filename: str
    mimetype: str
    chunks: Iterator[bytes]


def download(
    program: GrantProgram,
    kind: str,
    fmt: str,
    *,
    actor: Actor,
    params: ReportParams | None = None,
    remote_addr: str | None = None,
) -> Download:
    """A report as an HTTP download. CSV streams as it is computed and its run is saved (and
    committed) after the last byte; XLSX is built in constant memory in a temporary file, saved,
    then streamed from it."""
    _check(kind, fmt)
    params = params or ReportParams()
    started_at = utcnow()
    report = build_report(program, kind, params)
    filename = export_filename(program, kind, fmt, started_at)
    saving = {"started_at": started_at, "filename": filename, "actor": actor, "remote_addr": remote_addr}
    if fmt == "csv":

        def chunks() -> Iterator[bytes]:
            digest = export.Digest()
            yield from export.csv_chunks(report, digest)
            result = export.ExportResult(digest.rows, digest.size, digest.hexdigest)
            _save_run(program, report, fmt, params, result, **saving)
            # Streaming: the view returned before the first byte, so the run is saved here, after
            # the last one, in its own short transaction.
            db.session.commit()

        return Download(filename, export.CSV_MIMETYPE, chunks())

    handle, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        result = export.write_xlsx(report, path)
        _save_run(program, report, fmt, params, result, **saving)
        # The file streams after the view returns: its run is saved first, in its own short
        # transaction (the CSV above cannot share the view's: its cursor is still open).
        db.session.commit()
        stream = path.open("rb")
    finally:
        path.unlink()  # the open handle keeps the data until it is streamed

    def file_chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(1 << 16):
                yield chunk

    return Download(filename, export.XLSX_MIMETYPE, file_chunks())


def runs_of(program: GrantProgram) -> list[ReportRun]:
    return list(
        db.session.scalars(
            select(ReportRun)
            .where(ReportRun.program_id == program.id)
            .order_by(ReportRun.created_at.desc(), ReportRun.id.desc())
        )
    )


def run_by_id(run_id: int) -> ReportRun | None:
    return db.session.get(ReportRun, run_id)


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
    settings_edited: list[dict[str, Any]]


COMPARISON_LIST_LIMIT = 200


def compare_with_now(run: ReportRun) -> Comparison:
    """Re-run `run` (same report, parameters and program settings) and say what changed since:
    totals, reversals recorded after it (flagged "after export" when it had counted their gift)
    and gifts recorded after it that are dated in its window."""
    settings = ProgramSettings.from_snapshot(run.program_settings)
    params = ReportParams.from_dict(run.parameters)
    report = reports.build(settings, run.program_id, run.kind, params)
    rows_now = sum(1 for _ in report.rows)
    keys = sorted(set(run.totals) | set(report.totals))
    changed = [(k, run.totals.get(k), report.totals.get(k)) for k in keys if run.totals.get(k) != report.totals.get(k)]
    if rows_now != run.row_count:
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
            received_on=reports.counting_date(gift.received_at, gift.postmarked_on, zone),
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


# --- progress: the staff dashboard and the public gift page -------------------------------------


@dataclass(frozen=True)
class ProgramProgress:
    name: str
    slug: str
    raised_cents: int  # matchable: counted toward the program, each donor capped
    goal_cents: int | None
    window_last: date


@dataclass(frozen=True)
class PublicProgress:
    """What the gift page says: "$X raised toward our $Y local match; gifts through Dec 31 are
    matched up to $1,000"."""

    name: str
    raised_cents: int
    goal_cents: int | None
    window_last: date
    cap_cents: int | None


_progress_cache: dict[tuple[int, datetime], tuple[float, int]] = {}


def _raised(program: GrantProgram) -> int:
    """The program's matchable total, cached for GRANT_PROGRESS_CACHE_SECONDS: the public gift
    page must not aggregate the ledger on every view."""
    ttl = current_app.config["GRANT_PROGRESS_CACHE_SECONDS"]
    key = (program.id, program.updated_at)
    cached = _progress_cache.get(key)
    now = time.monotonic()
    if ttl > 0 and cached is not None and cached[0] > now:
        return cached[1]
    ctx = reports.context(program.settings(), program.id, "summary", ReportParams())
    raised = reports.program_totals(ctx).matchable_cents
    if ttl > 0:
        if len(_progress_cache) > 100:  # programs come and go; keep the cache small
            _progress_cache.clear()
        _progress_cache[key] = (now + ttl, raised)
    return raised


def _today() -> date:
    return local_date(utcnow())  # in the newsroom's zone


def dashboard_progress(today: date | None = None) -> list[ProgramProgress]:
    """Each program whose window includes today (local), soonest ending first."""
    today = today or _today()
    programs = db.session.scalars(
        select(GrantProgram)
        .where(GrantProgram.first_day <= today, GrantProgram.last_day >= today)
        .order_by(GrantProgram.last_day, GrantProgram.id)
    )
    return [ProgramProgress(p.name, p.slug, _raised(p), p.goal_cents, p.last_day) for p in programs]


def public_progress(fund: Fund, today: date | None = None) -> PublicProgress | None:
    """The progress bar of the program shown on `fund`'s gift page while its window is open."""
    today = today or _today()
    program = db.session.scalar(
        select(GrantProgram)
        .where(
            GrantProgram.public_fund_id == fund.id,
            GrantProgram.first_day <= today,
            GrantProgram.last_day >= today,
        )
        .order_by(GrantProgram.last_day, GrantProgram.id)
        .limit(1)
    )
    if program is None:
        return None
    return PublicProgress(program.name, _raised(program), program.goal_cents, program.last_day, program.cap_cents)
