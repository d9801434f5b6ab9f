"""A report as an HTTP download, CSV or XLSX: the staff lists (gifts, donors, members) and the
campaigns report use it. CSV streams as its rows are read; XLSX is built in constant memory in a
temporary file and then streamed (export.py). The caller audits the download first."""

from __future__ import annotations

from datetime import datetime

from flask import Response, stream_with_context

from donations.clock import local_date, utcnow
from donations.grants import export
from donations.grants.reports import Report
from donations.grants.service import Download

FORMATS = ("csv", "xlsx")


class ExportError(ValueError):
    """A download refused (unknown format): a 400 with this message."""


def filename(kind: str, fmt: str, at: datetime) -> str:
    return f"{kind}-{local_date(at).isoformat()}.{fmt}"


def download(report: Report, fmt: str) -> Download:
    """The report as an HTTP download: CSV streamed as it is read, XLSX through a temporary file."""
    if fmt not in FORMATS:
        raise ExportError("Choose CSV or Excel (xlsx).")
    name = filename(report.kind, fmt, utcnow())
    if fmt == "csv":
        return Download(name, export.CSV_MIMETYPE, export.csv_chunks(report, export.Digest()))
    _result, chunks = export.xlsx_stream(report)
    return Download(name, export.XLSX_MIMETYPE, chunks)


def response(download: Download) -> Response:
    return Response(
        stream_with_context(download.chunks),
        mimetype=download.mimetype,
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"', "Cache-Control": "no-store"},
    )
