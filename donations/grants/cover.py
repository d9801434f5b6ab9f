"""The funder packet's cover sheet: one Letter page of PDF, drawn with fpdf2 in its built-in
Helvetica and Courier (no font file to ship or fetch).

Everything on it comes from the packet's facts (grants/packet.py), which the funder link shows
too. The sheet is drawn at the largest type size (9 pt down to 5 pt) at which it fits one page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos

SIZES = (9.0, 8.0, 7.0, 6.0, 5.0)
MARGIN = 40.0  # points: a little over half an inch
# The built-in fonts hold Latin-1 only: common typography is spelled in it, anything else is "?".
_LATIN1 = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_LATIN1.update(str.maketrans({"\u2026": "...", "\u2192": "->", "\u2265": ">=", "\u2264": "<="}))


class CoverError(RuntimeError):
    """The facts do not fit one page even at the smallest type size."""


def latin1(text: str) -> str:
    return text.translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


class _Sheet(FPDF):
    def __init__(self, size: float) -> None:
        super().__init__(orientation="P", unit="pt", format="letter")
        self.base_size = size
        self.leading = size * 1.35
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN)
        self.add_page()

    def text_line(self, text: str, *, bold: bool = False, size: float | None = None) -> None:
        self.set_font("Helvetica", "B" if bold else "", size or self.base_size)
        self.multi_cell(0, (size or self.base_size) * 1.35, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def heading(self, text: str) -> None:
        self.ln(self.leading * 0.5)
        self.text_line(text, bold=True, size=self.base_size + 1.5)

    def fact(self, label: str, value: str) -> None:
        self.set_font("Helvetica", "B", self.base_size)
        self.write(self.leading, latin1(label) + ": ")
        self.set_font("Helvetica", "", self.base_size)
        self.write(self.leading, latin1(value))
        self.ln(self.leading)

    def digest(self, sha256: str, name: str) -> None:
        """The SHA-256 in a column of its own, the file's name beside it (wrapped there if long)."""
        self.set_font("Courier", "", self.base_size - 1.5)
        self.cell(self.get_string_width(sha256) + self.base_size, self.leading, sha256)
        self.set_font("Helvetica", "", self.base_size - 0.5)
        self.multi_cell(0, self.leading, latin1(name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _draw(facts: dict[str, Any], files: list[dict[str, Any]], size: float, created: datetime) -> _Sheet:
    pdf = _Sheet(size)
    pdf.set_title(latin1(f"{facts['program']}: funder packet"))
    pdf.set_author(latin1(facts["newsroom"]))
    pdf.set_creation_date(created)
    pdf.text_line(facts["newsroom"], bold=True, size=size + 6)
    pdf.text_line(f"{facts['program']}: local money raised, for the funder", bold=True, size=size + 3)
    pdf.fact("Window", facts["window"])
    pdf.heading("The program's rules")
    for label, value in facts["rules"]:
        pdf.fact(label, value)
    pdf.heading("Money raised")
    for label, value in facts["figures"]:
        pdf.fact(label, value)
    pdf.heading("Local-match pledges")
    if not facts["pledges"]:
        pdf.text_line("None recorded.")
    for pledge in facts["pledges"]:
        pdf.fact(pledge["funder"], f"{pledge['amount']} pledged on {pledge['date']}")
    pdf.heading("Files in this packet and their SHA-256")
    pdf.text_line("A copy of a file whose SHA-256 matches the one here is the file as prepared.")
    for item in files:
        pdf.digest(item["sha256"], item["name"])
    pdf.ln(pdf.leading * 0.5)
    pdf.fact("Prepared by", f"{facts['prepared_by']} on {facts['prepared_at']}")
    pdf.text_line(facts["statement"], bold=True)
    return pdf


def cover_pdf(facts: dict[str, Any], files: list[dict[str, Any]], created: datetime) -> bytes:
    """The cover sheet as PDF bytes, on exactly one page."""
    for size in SIZES:
        pdf = _draw(facts, files, size, created)
        if pdf.pages_count == 1:
            return bytes(pdf.output())
    raise CoverError("The cover sheet does not fit one page: remove some pledges.")
