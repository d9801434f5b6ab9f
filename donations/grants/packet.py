"""The funder packet: one ZIP with what a funder asks for to accept the local money raised.

- `cover-sheet.pdf`: one page (grants/cover.py) with the newsroom, the program, its window and
  rules in words, what was raised and is matchable, the donors (new, returning, recurring), the
  local share, the pledges, who prepared it and when, the not-deductible statement, and the
  SHA-256 of every other file in the packet;
- the donors, gift ledger and refunds-and-disputes reports, each as CSV and XLSX;
- each local-match pledge's document, under `pledges/`.

It is saved as a report run (kind "packet", format "zip", the summary's totals) with the ZIP
itself and its facts (a funder link serves them), and audited. Anonymous donors are "Anonymous"
in every report, without email or organization; the cover sheet names no donor.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import undefer

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import newsroom_zone
from donations.extensions import db
from donations.grants import export, reports
from donations.grants.cover import CoverError, cover_pdf
from donations.grants.models import PACKET, GrantProgram, Packet, Pledge, ReportRun
from donations.grants.pledges import document_filename
from donations.grants.reports import Money, Percent, ReportParams
from donations.grants.reports.base import not_deductible_statement
from donations.grants.service import Actor, GrantError, build_report
from donations.money import format_money

COVER_NAME = "cover-sheet.pdf"
# The reports in a packet, and the name each has in it.
PACKET_REPORTS = (("donors", "donors"), ("ledger", "gift-ledger"), ("reversals", "refunds-and-disputes"))
# The summary's rows up to this one are the program's rules; the cover sheet gives the figures
# from the totals themselves.
FIRST_FIGURE = "Raised: counted toward the program"
MIMETYPES = {
    "pdf": "application/pdf",
    "csv": export.CSV_MIMETYPE,
    "xlsx": export.XLSX_MIMETYPE,
    "png": "image/png",
    "jpg": "image/jpeg",
}


@dataclass(frozen=True)
class Built:
    run: ReportRun
    content: bytes


def mimetype_of(name: str) -> str:
    return MIMETYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")


def _text(value: reports.Cell) -> str:
    if isinstance(value, Money):
        return format_money(value.cents)
    if isinstance(value, Percent):
        return f"{value.fraction * 100:.2f}%"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _report_files(program: GrantProgram, kind: str, stem: str) -> list[tuple[str, bytes]]:
    """A report as CSV and as XLSX (each computed afresh: a report's rows are read once)."""
    csv_report = build_report(program, kind, ReportParams())
    digest = export.Digest()
    csv_bytes = b"".join(export.csv_chunks(csv_report, digest))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{stem}.xlsx"
        export.write_xlsx(build_report(program, kind, ReportParams()), path)
        xlsx_bytes = path.read_bytes()
    return [(f"{program.slug}-{stem}.csv", csv_bytes), (f"{program.slug}-{stem}.xlsx", xlsx_bytes)]


def _figures(totals: dict[str, Any], local_area: bool) -> list[list[str]]:
    money = format_money
    figures = [
        ["Raised: counted toward the program", money(totals["counted_cents"])],
        ["Matchable: counted, each donor capped", money(totals["matchable_cents"])],
    ]
    if "matchable_after_program_cap_cents" in totals:
        figures.append(["Matchable after the program-level cap", money(totals["matchable_after_program_cap_cents"])])
    figures.append(
        [
            "Donors counted",
            f"{totals['donors_counted']}: {totals['new_donors']} new, {totals['returning_donors']} returning; "
            f"{totals['new_recurring_donors']} new recurring",
        ]
    )
    if local_area:
        counted = totals["counted_cents"]
        share = f"{totals['local_counted_cents'] * 100 / counted:.2f}%" if counted else "0.00%"
        figures.append(
            [
                "Local share",
                f"{share} of the money raised ({money(totals['local_counted_cents'])}, "
                f"{totals['local_donors']} local donors)",
            ]
        )
    pledged = f"{totals['pledges']}, {money(totals['pledged_cents'])} in all" if totals["pledges"] else "none"
    figures.append(["Local-match pledges", pledged])
    return figures


def build_packet(program: GrantProgram, *, actor: Actor, remote_addr: str | None = None) -> Built:
    """Make the packet, save it as a report run with its files, and audit it (the caller commits)."""
    summary = build_report(program, "summary", ReportParams())
    summary_rows = [(str(label), value) for label, value in summary.rows]
    ctx = summary.context
    assert ctx is not None  # the service's reports carry their context
    labels = [label for label, _ in summary_rows]
    rules_end = labels.index(FIRST_FIGURE) if FIRST_FIGURE in labels else len(labels)
    # The program's name, window and zone head the sheet already.
    rules = [
        [label, _text(value)]
        for label, value in summary_rows[:rules_end]
        if label not in ("Program", "Time zone") and not label.startswith("Window")
    ]

    files: list[tuple[str, bytes]] = []
    for kind, stem in PACKET_REPORTS:
        files += _report_files(program, kind, stem)
    pledges = list(
        db.session.scalars(
            select(Pledge)
            .options(undefer(Pledge.document))
            .where(Pledge.program_id == program.id)
            .order_by(Pledge.pledged_on, Pledge.id)
        )
    )
    for pledge in pledges:
        files.append((f"pledges/{document_filename(pledge)}", pledge.document))
    listed = [{"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files]

    zone = newsroom_zone()
    prepared_by = actor.name or actor.email if isinstance(actor, StaffUser) else actor
    facts: dict[str, Any] = {
        "newsroom": ctx.newsroom,
        "program": program.name,
        "window": f"{program.first_day.isoformat()} to {program.last_day.isoformat()}, inclusive ({zone})",
        "rules": rules,
        "figures": _figures(summary.totals, ctx.local_area.defined),
        "pledges": [
            {
                "funder": p.funder_name,
                "amount": format_money(p.amount_cents),
                "date": p.pledged_on.isoformat(),
                "file": f"pledges/{document_filename(p)}",
            }
            for p in pledges
        ],
        "prepared_by": prepared_by,
        "prepared_at": ctx.as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
        "statement": not_deductible_statement(ctx.newsroom),
    }
    try:
        cover = cover_pdf(facts, listed, ctx.as_of)
    except CoverError as exc:
        raise GrantError(str(exc)) from None
    listed.insert(0, {"name": COVER_NAME, "size": len(cover), "sha256": hashlib.sha256(cover).hexdigest()})
    content = _zip([(COVER_NAME, cover), *files], ctx.as_of.astimezone(zone))

    stamp = ctx.as_of.astimezone(zone).strftime("%Y%m%d-%H%M%S")
    run = ReportRun(
        program_id=program.id,
        staff_user_id=actor.id if isinstance(actor, StaffUser) else None,
        actor=actor.email if isinstance(actor, StaffUser) else actor,
        created_at=ctx.as_of,
        kind=PACKET,
        format="zip",
        parameters={},
        program_settings=ctx.settings.snapshot(),
        totals=dict(summary.totals),
        row_count=len(listed),  # for a packet: its files
        byte_size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        filename=f"{program.slug}-packet-{stamp}.zip",
    )
    db.session.add(run)
    db.session.flush()
    db.session.add(Packet(report_run_id=run.id, content=content, facts=facts, files=listed))
    audit(
        "grant_packet.export",
        actor=actor,
        target_type="report_run",
        target_id=run.id,
        details={"program": program.slug, "files": listed, "sha256": run.sha256},
        remote_addr=remote_addr,
    )
    return Built(run, content)


def _zip(files: list[tuple[str, bytes]], at: datetime) -> bytes:
    buffer = io.BytesIO()
    stamp = (at.year, at.month, at.day, at.hour, at.minute, at.second)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def packet_of(run: ReportRun) -> Packet | None:
    return db.session.get(Packet, run.id) if run.kind == PACKET else None


def packet_file(packet: Packet, name: str) -> bytes | None:
    """One file of a packet, as it was put in it; None if the packet has no such file."""
    if name not in {item["name"] for item in packet.files}:
        return None
    with zipfile.ZipFile(io.BytesIO(packet.content)) as archive:
        return archive.read(name)
