"""Streamed CSV and XLSX files of a report, hashed (SHA-256) as they are written.

Both formats hold one chunk of rows at a time: CSV is produced as a stream of byte chunks, XLSX
through xlsxwriter's constant-memory mode (each row goes to disk as soon as it is written).
Amounts are dollars with cents, dates are local, and any text that a spreadsheet would read as a
formula is neutralized.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from donations.grants.reports import Cell, Money, Percent, Report
from donations.money import cents_text

if TYPE_CHECKING:
    from xlsxwriter import Workbook
    from xlsxwriter.worksheet import Worksheet

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and
# Google Sheets; OWASP's advice is to prefix it with a single quote.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ROWS_PER_CHUNK = 500
XLSX_MAX_ROWS = 1_048_576  # per sheet, header included
# From 1900-03-01 on, Excel's day number counts from 1899-12-30 (it has a 1900-02-29).
EXCEL_DAY_ZERO = date(1899, 12, 30)
EXCEL_LEAP_BUG_END = date(1900, 3, 1)
CSV_MIMETYPE = "text/csv; charset=utf-8"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Progress = Callable[[int], None]  # called with the number of rows written since the last call


def neutralize(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _money_text(value: Money) -> str:
    return cents_text(value.cents)


def _percent_text(value: Percent) -> str:
    return f"{value.fraction * 100:.2f}%"


# By exact type: a report writes millions of cells.
_CSV_TEXT: dict[type, Callable[[Any], str]] = {  # each takes its own key's type
    type(None): lambda value: "",
    bool: lambda value: "yes" if value else "no",
    int: str,
    str: neutralize,
    date: date.isoformat,
    Money: _money_text,
    Percent: _percent_text,
}


class Digest:
    """The SHA-256 and size of the bytes that went out."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self.rows = 0

    def update(self, chunk: bytes) -> bytes:
        self._hash.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True)
class ExportResult:
    row_count: int
    byte_size: int
    sha256: str


def csv_chunks(report: Report, digest: Digest, progress: Progress | None = None) -> Iterator[bytes]:
    """The CSV file in chunks of rows, each hashed as it leaves. A BOM makes Excel read UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([neutralize(header) for header in report.columns])
    pending = 0
    text = _CSV_TEXT  # looked up inline: a function call per cell would be a fifth of its cost
    for row in report.rows:
        writer.writerow([text[type(value)](value) for value in row])
        digest.rows += 1
        pending += 1
        if pending == ROWS_PER_CHUNK:
            yield digest.update(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
            if progress:
                progress(pending)
            pending = 0
    yield digest.update(buffer.getvalue().encode())
    if progress and pending:
        progress(pending)


def write_csv(report: Report, out: BinaryIO, progress: Progress | None = None) -> ExportResult:
    digest = Digest()
    for chunk in csv_chunks(report, digest, progress):
        out.write(chunk)
        out.flush()  # the file grows as the rows are produced
    return ExportResult(digest.rows, digest.size, digest.hexdigest)


def file_digest(path: Path) -> tuple[int, str]:
    digest = Digest()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            digest.update(chunk)
    return digest.size, digest.hexdigest


# Column widths in characters (Excel's unit): what a cell of each kind needs, at most MAX_WIDTH.
MIN_WIDTH, MAX_WIDTH = 6, 60
DATE_WIDTH, BOOL_WIDTH, PERCENT_WIDTH = 10, 3, 8


def _money_width(cents: int) -> int:
    return len(f"{cents / 100:,.2f}")


def _header_width(header: str) -> int:
    """A bold header wraps at its spaces: its longest word, or the whole of a short one."""
    return len(header) if len(header) <= 14 else max(len(word) for word in header.split())


class _Sheets:
    """Rows into worksheets, starting a new one (with the header again) when one is full. Each
    column is as wide as its widest cell (headers wrap), set when its sheet is done: xlsxwriter
    writes the widths when the workbook closes, constant-memory mode included."""

    def __init__(self, workbook: Workbook, report: Report) -> None:
        self.workbook = workbook
        self.report = report
        # The columns a person reads: the machine-code columns are CSV's alone.
        self.kept = report.kept_positions()
        self.headers = report.shown_columns
        self.bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.money = workbook.add_format({"num_format": "#,##0.00"})
        self.percent = workbook.add_format({"num_format": "0.00%"})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.sheets = 0
        self._writers: dict[type, Callable[[Worksheet, int, int, Any], None]] = {
            bool: self._bool,
            Money: self._money,
            Percent: self._percent,
            date: self._date,
            int: self._int,
            str: self._str,
        }
        self._new_sheet()

    def _new_sheet(self) -> None:
        self.sheets += 1
        name = self.report.kind.capitalize() + ("" if self.sheets == 1 else f" ({self.sheets})")
        self.sheet = self.workbook.add_worksheet(name)
        self.sheet.freeze_panes(1, 0)
        for column, header in enumerate(self.headers):
            self.sheet.write_string(0, column, neutralize(header), self.bold)
        self.widths = [max(MIN_WIDTH, _header_width(header)) for header in self.headers]
        # Money is measured once per sheet, from each column's largest amount.
        self.money_extremes = [0] * len(self.headers)
        self.row = 1

    def finish_sheet(self) -> None:
        for column, width in enumerate(self.widths):
            width = max(width, _money_width(self.money_extremes[column]))
            self.sheet.set_column(column, column, min(width, MAX_WIDTH) + 1)

    def write(self, values: tuple[Cell, ...]) -> None:
        if self.row == XLSX_MAX_ROWS:
            self.finish_sheet()
            self._new_sheet()
        if self.kept is not None:
            values = tuple(values[i] for i in self.kept)
        sheet, row, writers = self.sheet, self.row, self._writers
        for column, value in enumerate(values):
            if value is not None:
                writers[type(value)](sheet, row, column, value)
        self.row += 1

    # By exact type, as for CSV: an isinstance chain per cell is a good part of a large export.
    def _bool(self, sheet: Worksheet, row: int, column: int, value: bool) -> None:
        sheet.write_string(row, column, "yes" if value else "no")
        if self.widths[column] < BOOL_WIDTH:
            self.widths[column] = BOOL_WIDTH

    def _money(self, sheet: Worksheet, row: int, column: int, value: Money) -> None:
        # A spreadsheet number is a double; cents / 100 is the double nearest the amount (as the
        # Decimal was), and reads back exactly to 2 places.
        sheet.write_number(row, column, value.cents / 100, self.money)
        # The negative of the largest magnitude is the widest text: -1,234.56.
        cents = value.cents if value.cents < 0 else -value.cents
        if cents < self.money_extremes[column]:
            self.money_extremes[column] = cents

    def _percent(self, sheet: Worksheet, row: int, column: int, value: Percent) -> None:
        sheet.write_number(row, column, float(value.fraction), self.percent)
        if self.widths[column] < PERCENT_WIDTH:
            self.widths[column] = PERCENT_WIDTH

    def _date(self, sheet: Worksheet, row: int, column: int, value: date) -> None:
        # Excel's serial day number, as write_datetime would compute it (slowly) for each cell.
        if value < EXCEL_LEAP_BUG_END:
            sheet.write_datetime(row, column, datetime.combine(value, time.min), self.date)
        else:
            sheet.write_number(row, column, (value - EXCEL_DAY_ZERO).days, self.date)
        if self.widths[column] < DATE_WIDTH:
            self.widths[column] = DATE_WIDTH

    def _int(self, sheet: Worksheet, row: int, column: int, value: int) -> None:
        sheet.write_number(row, column, value)
        width = len(str(value))
        if width > self.widths[column]:
            self.widths[column] = width

    def _str(self, sheet: Worksheet, row: int, column: int, value: str) -> None:
        # write_string, never write(): text is never read as a formula or a link.
        sheet.write_string(row, column, neutralize(value))
        if len(value) > self.widths[column]:
            self.widths[column] = len(value)


def write_xlsx(report: Report, path: Path, progress: Progress | None = None) -> ExportResult:
    import xlsxwriter  # here, not at the top: every command of the app would pay for its import

    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    workbook.set_properties({"title": report.title[:250], "comments": " ".join(report.notes)[:250]})
    sheets = _Sheets(workbook, report)
    rows = pending = 0
    for values in report.rows:
        sheets.write(values)
        rows += 1
        pending += 1
        if progress and pending == ROWS_PER_CHUNK:
            progress(pending)
            pending = 0
    sheets.finish_sheet()
    workbook.close()
    if progress and pending:
        progress(pending)
    size, sha256 = file_digest(path)
    return ExportResult(rows, size, sha256)


def xlsx_stream(report: Report) -> tuple[ExportResult, Iterator[bytes]]:
    """The report as XLSX, built in constant memory in a temporary file: its result (rows, size,
    SHA-256) and its bytes to stream. The file leaves the disk at once; the open handle keeps its
    data until the stream is read."""
    handle, name = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    path = Path(name)
    try:
        result = write_xlsx(report, path)
        stream = path.open("rb")
    finally:
        path.unlink()

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(1 << 16):
                yield chunk

    return result, chunks()
