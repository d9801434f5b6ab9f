"""The funder packet: `grants packet` and the program page's button, the ZIP's files, the
one-page cover sheet (rendered to PNG with pdftoppm), its SHA-256 list, the saved run, the audit
log, and no anonymous donor's identity anywhere in it."""

from __future__ import annotations

import csv
import getpass
import hashlib
import io
import os
import re
import shutil
import subprocess
import zipfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.grants.models import Packet, ReportRun
from donations.grants.packet import COVER_NAME, build_packet
from donations.grants.pledges import MAX_PLEDGES
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token
from tests.grants.support import PNG_BYTES, local, make_pledge, make_program, pdf_text, reverse
from tests.staff.support import make_staff, sign_in

REPORT_FILES = [
    "newsmatch-2026-donors.csv",
    "newsmatch-2026-donors.xlsx",
    "newsmatch-2026-gift-ledger.csv",
    "newsmatch-2026-gift-ledger.xlsx",
    "newsmatch-2026-refunds-and-disputes.csv",
    "newsmatch-2026-refunds-and-disputes.xlsx",
]
# The anonymous donor's identity: none of it may reach the funder.
SECRET_NAME = "Quintessa Hiddenfield"
SECRET_EMAIL = "quintessa.hiddenfield@example.org"
SECRET_ORGANIZATION = "Hiddenfield Holdings"


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True, name="Community Forums Reporting")


@pytest.fixture
def program(fund):
    program = make_program(local_postal_prefixes=("972",), program_cap_cents=2_000_000)
    known = make_donor("pat@example.org", name="Pat Person", postal_code="97214")
    make_gift(known, fund, 50_000, received_at=local(2026, 11, 5))
    hidden = make_donor(SECRET_EMAIL, name=SECRET_NAME, postal_code="97215", organization=SECRET_ORGANIZATION)
    make_gift(hidden, fund, 7_000, received_at=local(2026, 11, 6), anonymous=True)
    refunded = make_gift(hidden, fund, 3_000, received_at=local(2026, 11, 7), anonymous=True)
    reverse(refunded, 3_000, at=local(2026, 11, 8))
    make_pledge(program, "Rose City Community Foundation", 1_000_000, date(2026, 10, 15))
    make_pledge(program, "Corner Bakery", 250_000, date(2026, 10, 20), document=PNG_BYTES)
    return program


def _pages(pdf: bytes) -> int:
    """Pages in a PDF from fpdf2 (its page objects are plain text; pdfinfo checks it too)."""
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


def _packet(program) -> tuple[ReportRun, zipfile.ZipFile]:
    built = build_packet(program, actor="test")
    db.session.commit()
    return built.run, zipfile.ZipFile(io.BytesIO(built.content))


def test_the_cli_writes_the_packet_and_saves_it_as_a_report_run(app, program, tmp_path):
    output = tmp_path / "packet.zip"
    result = app.test_cli_runner().invoke(args=["grants", "packet", "newsmatch-2026", "-o", str(output)])
    assert result.exit_code == 0, result.output
    content = output.read_bytes()
    run = db.session.scalar(select(ReportRun))
    assert (run.kind, run.format, run.actor) == ("packet", "zip", f"cli:{getpass.getuser()}")
    assert run.sha256 == hashlib.sha256(content).hexdigest() and run.byte_size == len(content)
    assert f"report run #{run.id}, sha256 {run.sha256}" in result.output
    names = zipfile.ZipFile(output).namelist()
    assert names == [
        COVER_NAME,
        *REPORT_FILES,
        "pledges/pledge-1-rose-city-community-foundation.pdf",
        "pledges/pledge-2-corner-bakery.png",
    ]
    assert run.row_count == len(names)
    assert run.totals["counted_cents"] == 57_000 and run.totals["pledged_cents"] == 1_250_000
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "grant_packet.export"))
    assert entry.target_id == str(run.id) and entry.details["sha256"] == run.sha256
    # The packet is kept as it was made.
    assert db.session.get(Packet, run.id).content == content


def test_the_cli_says_which_program_is_unknown(app, fund, tmp_path):
    result = app.test_cli_runner().invoke(args=["grants", "packet", "nope", "-o", str(tmp_path / "p.zip")])
    assert result.exit_code != 0 and "no grant program nope" in result.output


def test_the_packet_holds_the_reports_and_the_pledge_documents_as_they_are(program):
    _, archive = _packet(program)
    donors = list(csv.DictReader(io.StringIO(archive.read("newsmatch-2026-donors.csv").decode("utf-8-sig"))))
    assert sorted(row["Name"] for row in donors) == ["Anonymous", "Pat Person"]
    assert archive.read("pledges/pledge-2-corner-bakery.png") == PNG_BYTES
    assert archive.read("newsmatch-2026-donors.xlsx").startswith(b"PK")  # a workbook is a ZIP
    refunds = archive.read("newsmatch-2026-refunds-and-disputes.csv").decode("utf-8-sig")
    assert "30.00" in refunds


def test_the_cover_sheet_says_what_a_funder_asks_and_hashes_every_other_file(program):
    _, archive = _packet(program)
    text = pdf_text(archive.read(COVER_NAME))
    for expected in (
        "The Local Ledger",
        "NewsMatch 2026: local money raised, for the funder",
        "2026-11-01 to 2026-12-31, inclusive (America/Los_Angeles)",
        "Per-donor cap",
        "Program-level match cap",
        "Local area",
        "$570.00",  # raised: 500 + 70 (the 30 was refunded)
        "2: 2 new, 0 returning; 0 new recurring",
        "Local share",
        "100.00% of the money raised",
        "Rose City Community Foundation",
        "$10,000.00 pledged on 2026-10-15",
        "2, $12,500.00 in all",
        "Prepared by",
        "test on 2026-",
        "are not tax deductible",
    ):
        assert expected in text, expected
    for name in archive.namelist()[1:]:
        assert f"{hashlib.sha256(archive.read(name)).hexdigest()} {name}" in text, name


def test_the_cover_sheet_is_one_page_and_is_rendered_for_a_look(program, tmp_path):
    """Renders the cover sheet to cover-sheet.png in the test's output folder (and in
    $SCREENSHOTS_DIR when set). pdftoppm (poppler-utils) is installed by `make browser`; only a
    local run without it skips, never CI."""
    _, archive = _packet(program)
    pdf = tmp_path / COVER_NAME
    pdf.write_bytes(archive.read(COVER_NAME))
    assert _pages(pdf.read_bytes()) == 1
    if shutil.which("pdftoppm") is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm is missing: `make browser` installs poppler-utils")
        pytest.skip("pdftoppm is not installed (apt-get install poppler-utils)")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           1" in info
    subprocess.run(["pdftoppm", "-png", "-r", "100", str(pdf), str(tmp_path / "cover-sheet")], check=True)
    pages = sorted(tmp_path.glob("cover-sheet*.png"))
    assert len(pages) == 1
    png = pages[0].rename(tmp_path / "cover-sheet.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("SCREENSHOTS_DIR"):
        Path(os.environ["SCREENSHOTS_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(os.environ["SCREENSHOTS_DIR"]) / "funder-packet-cover.png")
    print(f"cover sheet rendered: {png}")


def test_a_long_cover_sheet_still_fits_one_page(fund, program, tmp_path):
    for number in range(MAX_PLEDGES - 2):  # with the two above: the most a program holds
        funder = f"The Very Generous and Rather Long-Named Local Family Foundation of Number {number}"
        make_pledge(program, funder, 10_000, document=PNG_BYTES)
    _, archive = _packet(program)
    cover = archive.read(COVER_NAME)
    (tmp_path / "long-cover-sheet.pdf").write_bytes(cover)  # for a look
    assert _pages(cover) == 1
    assert f"Number {MAX_PLEDGES - 3}: $100.00 pledged" in pdf_text(cover)


def test_nothing_in_the_packet_names_an_anonymous_donor(program):
    _, archive = _packet(program)
    seen = []
    for name in archive.namelist():
        data = archive.read(name)
        if name.endswith(".xlsx"):
            inner = zipfile.ZipFile(io.BytesIO(data))
            seen.append(b"".join(inner.read(part) for part in inner.namelist()).decode("utf-8", "replace"))
        elif name.endswith(".pdf"):
            seen.append(pdf_text(data))
        else:
            seen.append(data.decode("utf-8", "replace"))
    everything = "\n".join(seen).lower()
    assert "pat person" in everything and "pat@example.org" in everything  # the search reads the files
    for secret in (SECRET_NAME, SECRET_EMAIL, SECRET_ORGANIZATION, "hiddenfield"):
        assert secret.lower() not in everything, secret


def test_the_program_page_button_makes_the_packet_for_finance_only(client, program):
    sign_in(client, make_staff("finance"))
    page = client.get("/staff/grants/newsmatch-2026/").get_data(as_text=True)
    assert "Make the funder packet" in page
    token = csrf_token(client, "/staff/grants/newsmatch-2026/")
    assert client.post("/staff/grants/newsmatch-2026/packet").status_code == 400  # no CSRF token
    response = client.post("/staff/grants/newsmatch-2026/packet", data={"csrf_token": token})
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    run = db.session.scalar(select(ReportRun))
    assert response.headers["Content-Disposition"] == f'attachment; filename="{run.filename}"'
    assert hashlib.sha256(response.data).hexdigest() == run.sha256
    run_page = client.get(f"/staff/grants/runs/{run.id}").get_data(as_text=True)
    assert "Funder packet" in run_page and "newsmatch-2026-donors.xlsx" in run_page
    again = client.get(f"/staff/grants/runs/{run.id}/packet.zip")
    assert again.data == response.data
    assert client.get(f"/staff/grants/runs/{run.id}?compare=1").status_code == 200


def test_viewers_cannot_make_or_download_packets(client, program):
    run, _ = _packet(program)
    sign_in(client, make_staff("viewer"))
    assert "Make the funder packet" not in client.get("/staff/grants/newsmatch-2026/").get_data(as_text=True)
    token = csrf_token(client, "/staff/account")
    assert client.post("/staff/grants/newsmatch-2026/packet", data={"csrf_token": token}).status_code == 403
    assert client.get(f"/staff/grants/runs/{run.id}/packet.zip").status_code == 403
    assert client.get(f"/staff/grants/runs/{run.id}").status_code == 200


def test_a_packet_without_pledges_says_so(fund):
    program = make_program()
    make_gift(make_donor(name="Pat Person"), fund, 5_000, received_at=local(2026, 11, 5))
    run, archive = _packet(program)
    text = pdf_text(archive.read(COVER_NAME))
    assert "Local-match pledges: none" in text and "None recorded." in text
    assert [name for name in archive.namelist() if name.startswith("pledges/")] == []
    assert run.row_count == 7
