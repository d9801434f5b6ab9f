"""Grant programs in the staff console, under /staff/grants. Thin: validate, call the service.

Anyone on the staff may read programs and their reports on screen; admins and finance create and
edit programs and download the files (each download is saved as a report run and audited).
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from datetime import date
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from donations.accounts.models import StaffUser
from donations.accounts.roles import MONEY, READ, role_required
from donations.clock import local_date, utcnow
from donations.extensions import unit_of_work
from donations.forms import choices
from donations.grants import service
from donations.grants.comparison import compare_with_now
from donations.grants.forms import ExportForm, ProgramForm, ReportFilterForm
from donations.grants.models import ALL_SOURCES, REPORT_KINDS, GrantProgram
from donations.grants.presets import PRESETS, preset
from donations.grants.reports import REPORT_TITLES, Cell, Money, Percent, ReportParams
from donations.grants.reports.base import REVERSAL_LABELS
from donations.grants.reports.words import (
    PARAMETER_WORDS,
    settings_rows,
    snapshot_rows,
    total_value,
    total_words,
    totals_rows,
)
from donations.ledger.funds import funds_for_choice
from donations.money import format_money

bp = Blueprint("grants", __name__, url_prefix="/staff/grants")
PAGE_SIZE = 100

bp.add_app_template_global(service.public_progress, "grant_progress")  # giving/_progress.html


@bp.app_template_filter("grant_cell")
def grant_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Money):
        return format_money(value.cents)
    if isinstance(value, Percent):
        return f"{value.fraction * 100:.2f}%"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@bp.app_template_filter("grant_day")
def grant_day(value: date) -> str:
    """ "Dec 31": how the gift page names the window's last day."""
    return format_date(value, "MMM d", locale="en_US")


@bp.app_template_test("grant_number")
def grant_number(value: Cell) -> bool:
    return isinstance(value, Money | Percent | Decimal) or (isinstance(value, int) and not isinstance(value, bool))


def acting_staff() -> StaffUser:
    return current_user._get_current_object()


def program_or_404(slug: str) -> GrantProgram:
    program = service.program_by_slug(slug)
    if program is None:
        abort(404, "There is no such grant program.")
    return program


def _program_form(program: GrantProgram | None = None) -> ProgramForm:
    funds = [(fund.id, fund.name) for fund in funds_for_choice()]
    if request.method == "GET" and program is not None:
        form = ProgramForm(data=ProgramForm.data_of(program.settings()))
    elif request.method == "GET" and request.args.get("preset") in PRESETS:
        kind = request.args["preset"]
        year = local_date(utcnow()).year
        first = {"newsmatch": date(year, 11, 1), "rfa": date(year, 6, 1)}.get(kind, date(year, 1, 1))
        titles = {"newsmatch": "NewsMatch", "rfa": "Report for America", "local": "Local match"}
        settings = preset(kind, name=f"{titles[kind]} {year}", slug=f"{kind}-{year}", first_day=first)
        form = ProgramForm(data={**ProgramForm.data_of(settings), "public_fund": 0})
    elif request.method == "GET":
        form = ProgramForm(data={"sources": list(ALL_SOURCES), "individuals_only": True, "public_fund": 0})
    else:
        form = ProgramForm()
    form.funds.choices = choices([(fund_id, name) for fund_id, name in funds])
    form.public_fund.choices = choices([(0, "None"), *((fund_id, name) for fund_id, name in funds)])
    return form


@bp.get("/")
@role_required(*READ)
def programs() -> ResponseReturnValue:
    return render_template("grants/programs.html", programs=service.list_programs())


@bp.route("/new", methods=["GET", "POST"])
@role_required(*MONEY)
def program_new() -> ResponseReturnValue:
    form = _program_form()
    error = None
    if form.validate_on_submit():
        try:
            with unit_of_work():
                program = service.create_program(form.settings(), actor=acting_staff(), remote_addr=request.remote_addr)
        except service.GrantError as exc:
            error = str(exc)
        else:
            flash(f"Grant program {program.name} created.", "success")
            return redirect(url_for("grants.program", slug=program.slug), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("grants/program_form.html", form=form, program=None, error=error), status


@bp.route("/<slug>/edit", methods=["GET", "POST"])
@role_required(*MONEY)
def program_edit(slug: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    form = _program_form(program)
    error = None
    if form.validate_on_submit():
        try:
            with unit_of_work():
                service.update_program(program, form.settings(), actor=acting_staff(), remote_addr=request.remote_addr)
        except service.GrantError as exc:
            error = str(exc)
        else:
            flash("Grant program saved.", "success")
            return redirect(url_for("grants.program", slug=program.slug), 303)
    status = 400 if request.method == "POST" else 200
    return render_template("grants/program_form.html", form=form, program=program, error=error), status


@bp.get("/<slug>/")
@role_required(*READ)
def program(slug: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    return render_template(
        "grants/program.html",
        program=program,
        settings_rows=settings_rows(program.settings()),
        kinds=REPORT_KINDS,
        titles=REPORT_TITLES,
        runs=service.runs_of(program)[:10],
    )


def _params(form: ReportFilterForm | ExportForm) -> ReportParams:
    return ReportParams(first_day=form.first_day.data, last_day=form.last_day.data, year=form.year.data)


@bp.get("/<slug>/reports/<kind>")
@role_required(*READ)
def report(slug: str, kind: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    if kind not in REPORT_KINDS:
        abort(404, "There is no such report.")
    form = ReportFilterForm(request.args)
    if not form.validate():
        return render_template("grants/report.html", program=program, kind=kind, form=form, report=None), 400
    page = form.page.data or 1
    try:
        built = service.build_report(program, kind, _params(form))
    except service.GrantError as exc:
        abort(400, str(exc))
    rows = list(itertools.islice(built.rows, (page - 1) * PAGE_SIZE, page * PAGE_SIZE + 1))
    if isinstance(built.rows, Generator):
        built.rows.close()  # the rest is never read: release the cursor now
    export_form = ExportForm(
        data={"first_day": form.first_day.data, "last_day": form.last_day.data, "year": form.year.data}
    )
    args = {key: value for key, value in request.args.items() if key != "page"}
    return render_template(
        "grants/report.html",
        program=program,
        kind=kind,
        title=REPORT_TITLES[kind],
        form=form,
        export_form=export_form,
        report=built,
        # The machine-code columns are CSV's alone: a person reads the words.
        columns=built.shown_columns,
        rows=[built.shown(row) for row in rows[:PAGE_SIZE]],
        page=page,
        first_row=(page - 1) * PAGE_SIZE + 1,
        has_next=len(rows) > PAGE_SIZE,
        args=args,
    )


@bp.post("/<slug>/reports/<kind>/export")
@role_required(*MONEY)
def export(slug: str, kind: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    if kind not in REPORT_KINDS:
        abort(404, "There is no such report.")
    form = ExportForm()
    if not form.validate_on_submit():
        abort(400, " ".join(error for errors in form.errors.values() for error in errors))
    try:
        download = service.download(
            program, kind, form.format.data, actor=acting_staff(), params=_params(form), remote_addr=request.remote_addr
        )
    except service.GrantError as exc:
        abort(400, str(exc))
    return Response(
        stream_with_context(download.chunks),
        mimetype=download.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"', "Cache-Control": "no-store"},
    )


@bp.get("/<slug>/runs")
@role_required(*READ)
def runs(slug: str) -> ResponseReturnValue:
    program = program_or_404(slug)
    return render_template("grants/runs.html", program=program, runs=service.runs_of(program), titles=REPORT_TITLES)


@bp.get("/runs/<row_id:run_id>")
@role_required(*READ)
def run(run_id: int) -> ResponseReturnValue:
    found = service.run_by_id(run_id)
    if found is None:
        abort(404, "There is no such report run.")
    comparison: Any = compare_with_now(found) if request.args.get("compare") else None
    # A run keeps its settings and totals by key: the page says them in words.
    return render_template(
        "grants/run.html",
        run=found,
        comparison=comparison,
        titles=REPORT_TITLES,
        settings_rows=snapshot_rows(found.program_settings),
        totals_rows=totals_rows(found.totals),
        parameter_words=PARAMETER_WORDS,
        total_words=total_words,
        total_value=total_value,
        reversal_words=REVERSAL_LABELS,
    )
