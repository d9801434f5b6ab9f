"""Helpers for the grant tests: programs, gifts at a local time, reversals, memberships, and
reading a report back as plain rows."""

from __future__ import annotations

import itertools
import re
import zlib
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from donations.clock import utcnow
from donations.extensions import db
from donations.grants import pledges, service
from donations.grants.models import GrantProgram, Pledge, ProgramSettings
from donations.grants.reports import Cell, ReportParams
from donations.ledger.models import Donor, Fund, Gift, Membership, MembershipChange, Reversal

PACIFIC = ZoneInfo("America/Los_Angeles")
_keys = itertools.count(1)


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """A Pacific wall-clock time, as the UTC instant the ledger stores."""
    return datetime(year, month, day, hour, minute, tzinfo=PACIFIC).astimezone(UTC)


def make_program(
    slug: str = "newsmatch-2026",
    first_day: date = date(2026, 11, 1),
    last_day: date = date(2026, 12, 31),
    **kwargs: Any,
) -> GrantProgram:
    data = ProgramSettings(
        name=kwargs.pop("name", "NewsMatch 2026"),
        slug=slug,
        first_day=first_day,
        last_day=last_day,
        cap_cents=kwargs.pop("cap_cents", 100_000),
        **kwargs,
    )
    program = service.create_program(data, actor="test")
    db.session.commit()
    return program


def reverse(gift: Gift, amount_cents: int, kind: str = "refund", at: datetime | None = None) -> Reversal:
    reversal = Reversal(
        gift_id=gift.id,
        kind=kind,
        amount_cents=amount_cents,
        reversed_at=at or utcnow(),
        stripe_key=f"test_reversal_{next(_keys)}",
    )
    db.session.add(reversal)
    db.session.commit()
    return reversal


def make_membership(donor: Donor, fund: Fund, amount_cents: int, interval: str = "month") -> Membership:
    membership = Membership(
        donor_id=donor.id,
        fund_id=fund.id,
        amount_cents=amount_cents,
        interval=interval,
        status="active",
        stripe_subscription_id=f"sub_test_{next(_keys)}",
    )
    db.session.add(membership)
    db.session.commit()
    return membership


def change_amount(membership: Membership, new_cents: int, at: datetime) -> None:
    db.session.add(
        MembershipChange(
            membership_id=membership.id,
            changed_at=at,
            old_amount_cents=membership.amount_cents,
            new_amount_cents=new_cents,
        )
    )
    membership.amount_cents = new_cents
    db.session.commit()


def rows(program: GrantProgram, kind: str, **params: Any) -> list[tuple[Cell, ...]]:
    return list(service.build_report(program, kind, ReportParams(**params)).rows)


def summary(program: GrantProgram) -> dict[str, Cell]:
    return dict(rows(program, "summary"))


def donor_rows(program: GrantProgram) -> list[dict[str, Cell]]:
    report = service.build_report(program, "donors")
    return [dict(zip(report.columns, row, strict=True)) for row in report.rows]


def ledger_rows(program: GrantProgram, **params: Any) -> list[dict[str, Cell]]:
    report = service.build_report(program, "ledger", ReportParams(**params))
    return [dict(zip(report.columns, row, strict=True)) for row in report.rows]


def days(n: int) -> timedelta:
    return timedelta(days=n)


class _Table(HTMLParser):
    """The body cells of the table with a given id, as text."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = self.in_body = self.in_cell = False
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag == "td":
            self.in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.in_cell = False
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            self.rows[-1][-1] += data


def html_table(html: str, table_id: str = "report") -> list[list[str]]:
    parser = _Table(table_id)
    parser.feed(html)
    return [[cell.strip() for cell in row] for row in parser.rows]


PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the first bytes are what the check reads
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def pledge_pdf(text: str = "We pledge to match local gifts.") -> bytes:
    """A real one-page PDF letter, as a funder would send."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_pledge(
    program: GrantProgram,
    funder: str = "Rose City Community Foundation",
    amount_cents: int = 1_000_000,
    pledged_on: date = date(2026, 10, 15),
    document: bytes | None = None,
) -> Pledge:
    pledge = pledges.add_pledge(
        program,
        pledges.PledgeData(funder, amount_cents, pledged_on, document or pledge_pdf(), "pledge letter.pdf"),
        actor="test",
    )
    db.session.commit()
    return pledge


def pdf_text(content: bytes) -> str:
    """The text a PDF made by fpdf2 draws (its content streams inflated, each string shown, in
    order), lines joined by spaces: enough to search for a phrase wrapped over two lines."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", content, re.S):
        try:
            text = zlib.decompress(stream).decode("latin-1")
        except zlib.error:
            text = stream.decode("latin-1")
        shown += re.findall(r"\(((?:\\.|[^\\)])*)\)\s*Tj", text)
    joined = " ".join(re.sub(r"\\(.)", r"\1", item) for item in shown)
    return re.sub(r"\s+", " ", joined)
