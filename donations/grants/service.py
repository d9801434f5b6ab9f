"""Grant programs: create and edit them, run and save their reports, show their progress.

Every write is audited in the caller's transaction; exports are saved as ReportRuns (who, when,
the program's settings then, the row count and the file's SHA-256).
"""

from __future__ import annotations

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
from donations.grants.rules import RecurringRule
from donations.ledger.funds import SLUG
from donations.ledger.models import Fund
from donations.ttl_cache import TtlCache


class GrantError(ValueError):
    """A program or report request refused, with a message for the person who made it."""


Actor = StaffUser | str


def _validate(data: ProgramSettings, program: GrantProgram | None) -> None:
    if not data.name.strip() or len(data.name) > 200:
        raise GrantError("A program needs a name of at most 200 characters.")
    if not SLUG.match(data.slug):
        raise GrantError("A slug is lowercase letters, digits and dashes, like newsmatch-2026.")
    clash = db.session.scalar(select(GrantProgram.id).where(GrantProgram.slug == data.slug))
    if clash is not None and (program is None or clash != program.id):
        raise GrantError(f"A program {data.slug} already exists.")
    if data.last_day < data.first_day:
        raise GrantError("The window's last day comes before its first day.")
    for label, cents in (
        ("cap", data.cap_cents),
        ("goal", data.goal_cents),
        ("anonymous limit", data.anonymous_limit_cents),
        ("program-level cap", data.program_cap_cents),
    ):
        if cents is not None and cents <= 0:
            raise GrantError(f"The {label} must be more than $0 (or left empty).")
    if not data.sources or set(data.sources) - set(ALL_SOURCES):
        raise GrantError(f"Count at least one source among {', '.join(ALL_SOURCES)}.")
    if data.slug in data.exclusive_with or not all(SLUG.match(other) for other in data.exclusive_with):
        raise GrantError("Exclusive with: other programs' slugs, like newsmatch-2026.")
    if not 0 <= data.priority <= 1000:
        raise GrantError("The priority is a number from 0 (first) to 1000.")
    area = (*data.local_postal_prefixes, *data.local_states)
    if any(not value.strip() or len(value) > 20 for value in area):
        raise GrantError("Local postal-code prefixes and states are short, like 972 or OR.")
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


def create_program(data: ProgramSettings, *, actor: Actor, remote_addr: str | None = None) -> GrantProgram:
    _validate(data, None)
    program = GrantProgram()
    data.apply_to(program)
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
    program: GrantProgram, data: ProgramSettings, *, actor: Actor, remote_addr: str | None = None
) -> GrantProgram:
    """Edit a program; an edit after an export is flagged in the audit log with the runs it follows."""
    _validate(data, program)
    before = program.settings().snapshot()
    data.apply_to(program)
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
    result: export.ExportResult,
    *,
    filename: str,
    actor: Actor,
    remote_addr: str | None,
) -> ReportRun:
    """Save `report`'s run with the context it was computed with (the program may have been
    edited while a download streamed)."""
    ctx = report.context
    assert ctx is not None  # every report the service builds carries its context
    run = ReportRun(
        program_id=program.id,
        staff_user_id=actor.id if isinstance(actor, StaffUser) else None,
        actor=actor.email if isinstance(actor, StaffUser) else actor,
        created_at=ctx.as_of,
        kind=report.kind,
        format=fmt,
        parameters=ctx.params.as_dict(),
        program_settings=ctx.settings.snapshot(),
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
        result,
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
    report = build_report(program, kind, params)
    assert report.context is not None
    filename = export_filename(program, kind, fmt, report.context.as_of)
    saving: dict[str, Any] = {"filename": filename, "actor": actor, "remote_addr": remote_addr}
    if fmt == "csv":

        def chunks() -> Iterator[bytes]:
            digest = export.Digest()
            yield from export.csv_chunks(report, digest)
            result = export.ExportResult(digest.rows, digest.size, digest.hexdigest)
            _save_run(program, report, fmt, result, **saving)
            # Streaming: the view returned before the first byte, so the run is saved here, after
            # the last one, in its own short transaction.
            db.session.commit()

        return Download(filename, export.CSV_MIMETYPE, chunks())

    result, xlsx_chunks = export.xlsx_stream(report)
    _save_run(program, report, fmt, result, **saving)
    # The file streams after the view returns: its run is saved first, in its own short
    # transaction (the CSV above cannot share the view's: its cursor is still open).
    db.session.commit()
    return Download(filename, export.XLSX_MIMETYPE, xlsx_chunks)


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


# By program and its last edit: an edited program is recomputed at once.
_raised_cache: TtlCache[tuple[int, datetime], int] = TtlCache(max_entries=100)


def _raised(program: GrantProgram) -> int:
    """The program's matchable total, cached for GRANT_PROGRESS_CACHE_SECONDS: the public gift
    page must not aggregate the ledger on every view."""

    def compute() -> int:
        ctx = reports.context(program.settings(), program.id, "summary", ReportParams())
        return reports.program_totals(ctx).matchable_after_program_cap_cents

    ttl = current_app.config["GRANT_PROGRESS_CACHE_SECONDS"]
    return _raised_cache.get_or_compute((program.id, program.updated_at), ttl, compute)


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
