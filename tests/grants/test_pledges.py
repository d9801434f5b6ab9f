"""Local-match pledges: the staff pages, the document's checks, who may download it, the audit
log, and the summary showing them next to the money raised."""

from __future__ import annotations

import hashlib
import io
from datetime import date

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.grants import pledges
from donations.grants.export import write_csv
from donations.grants.models import Pledge
from donations.grants.service import build_report
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token
from tests.grants.support import JPEG_BYTES, PNG_BYTES, local, make_pledge, make_program, pledge_pdf, summary
from tests.staff.support import make_staff, sign_in

NEW = "/staff/grants/newsmatch-2026/pledges/new"


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@pytest.fixture
def program(fund):
    return make_program()


def post_pledge(client, document: bytes, filename: str = "letter.pdf", **fields: str):
    data = {
        "csrf_token": csrf_token(client, NEW),
        "funder_name": "Rose City Community Foundation",
        "amount": "10,000",
        "pledged_on": "2026-10-15",
        **fields,
        "document": (io.BytesIO(document), filename),
    }
    return client.post(NEW, data=data, content_type="multipart/form-data")


def test_finance_records_a_pledge_with_its_document(client, program):
    sign_in(client, make_staff("finance", email="fin@newsroom.example"))
    document = pledge_pdf()
    response = post_pledge(client, document)
    assert response.status_code == 303
    pledge = db.session.scalar(select(Pledge))
    assert (pledge.funder_name, pledge.amount_cents, pledge.pledged_on) == (
        "Rose City Community Foundation",
        1_000_000,
        date(2026, 10, 15),
    )
    assert pledge.document == document and pledge.document_type == "application/pdf"
    assert pledge.document_sha256 == hashlib.sha256(document).hexdigest()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "grant_pledge.add"))
    assert entry.actor == "fin@newsroom.example"
    assert entry.details["document"]["sha256"] == pledge.document_sha256
    page = client.get("/staff/grants/newsmatch-2026/").get_data(as_text=True)
    assert "Rose City Community Foundation" in page and "$10,000.00" in page


@pytest.mark.parametrize(
    ("content", "filename", "kind"),
    [
        (PNG_BYTES, "scan.txt", "image/png"),
        (JPEG_BYTES, "photo", "image/jpeg"),
        (pledge_pdf(), "x.png", "application/pdf"),
    ],
)
def test_the_type_comes_from_the_first_bytes_not_the_name(client, program, content, filename, kind):
    sign_in(client, make_staff("finance"))
    assert post_pledge(client, content, filename).status_code == 303
    assert db.session.scalar(select(Pledge.document_type)) == kind


@pytest.mark.parametrize(
    "content", [b"MZ\x90\x00 a program", b"<html><script>alert(1)</script>", b"GIF89a......", b"PK\x03\x04zip"]
)
def test_other_files_are_refused_whatever_their_name(client, program, content):
    sign_in(client, make_staff("finance"))
    response = post_pledge(client, content, "letter.pdf")
    assert response.status_code == 400
    assert "must be a PDF, PNG or JPEG file" in response.get_data(as_text=True)
    assert db.session.scalar(select(Pledge.id)) is None


def test_a_document_over_the_limit_is_refused_with_its_size(app, client, program):
    app.config["PLEDGE_DOCUMENT_MAX_BYTES"] = 200_000
    sign_in(client, make_staff("finance"))
    response = post_pledge(client, b"%PDF-1.4" + b"0" * 250_000)
    assert response.status_code == 400
    assert "The document is 0.2 MB; the most accepted is 0.2 MB." in response.get_data(as_text=True)
    # Far larger: refused before the body is read.
    assert post_pledge(client, b"%PDF-1.4" + b"0" * 400_000).status_code == 413
    assert db.session.scalar(select(Pledge.id)) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"amount": "0"}, "more than zero"), ({"funder_name": ""}, "Name the funder"), ({"pledged_on": "soon"}, "date")],
)
def test_bad_input_is_a_400_with_words(client, program, fields, message):
    sign_in(client, make_staff("finance"))
    response = post_pledge(client, pledge_pdf(), **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_a_missing_document_is_a_400(client, program):
    sign_in(client, make_staff("finance"))
    response = post_pledge(client, b"", "")
    assert response.status_code == 400
    assert "Attach the document" in response.get_data(as_text=True)


def test_the_form_needs_a_csrf_token(client, program):
    sign_in(client, make_staff("finance"))
    response = client.post(
        NEW,
        data={"funder_name": "X", "amount": "5", "pledged_on": "2026-10-15", "document": (io.BytesIO(PNG_BYTES), "a")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert db.session.scalar(select(Pledge.id)) is None


def test_viewers_see_pledges_but_neither_add_nor_download(client, program):
    pledge = make_pledge(program)
    sign_in(client, make_staff("viewer"))
    page = client.get("/staff/grants/newsmatch-2026/").get_data(as_text=True)
    assert "Rose City Community Foundation" in page
    assert f"/pledges/{pledge.id}/document" not in page
    assert client.get(NEW).status_code == 403
    assert client.get(f"/staff/grants/newsmatch-2026/pledges/{pledge.id}/document").status_code == 403


def test_finance_downloads_the_document_as_uploaded_and_it_is_audited(client, program):
    document = pledge_pdf("Signed: the foundation.")
    pledge = make_pledge(program, document=document)
    sign_in(client, make_staff("finance"))
    response = client.get(f"/staff/grants/newsmatch-2026/pledges/{pledge.id}/document")
    assert response.status_code == 200
    assert response.data == document
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="pledge-{pledge.id}-rose-city-community-foundation.pdf"'
    )
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "grant_pledge.document_download"))
    assert entry.target_id == str(pledge.id)
    # Another program's pledge is not reachable through this one.
    make_program(slug="local-2026", name="Local 2026")
    assert client.get(f"/staff/grants/local-2026/pledges/{pledge.id}/document").status_code == 404


def test_removing_a_pledge_is_audited_and_needs_a_csrf_token(client, program):
    pledge = make_pledge(program)
    sign_in(client, make_staff("admin"))
    url = f"/staff/grants/newsmatch-2026/pledges/{pledge.id}/remove"
    assert client.post(url).status_code == 400
    token = csrf_token(client, "/staff/grants/newsmatch-2026/")
    assert client.post(url, data={"csrf_token": token}).status_code == 303
    assert db.session.scalar(select(Pledge.id)) is None
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "grant_pledge.remove"))
    assert entry.details["funder"] == "Rose City Community Foundation"


def test_the_summary_shows_the_pledges_next_to_the_money_raised(fund, program):
    make_gift(make_donor(name="Pat"), fund, 12_500, received_at=local(2026, 11, 5))
    make_pledge(program, "Rose City Community Foundation", 1_000_000, date(2026, 10, 15))
    make_pledge(program, "Corner Bakery", 250_000, date(2026, 10, 20))
    rows = summary(program)
    labels = list(rows)
    raised = labels.index("Raised: counted toward the program")
    assert labels[raised + 1 : raised + 4] == [
        "Local-match pledges",
        "Pledged by Rose City Community Foundation on 2026-10-15",
        "Pledged by Corner Bakery on 2026-10-20",
    ]
    assert rows["Local-match pledges"] == "2, $12,500.00 in all"
    assert rows["Pledged by Corner Bakery on 2026-10-20"].cents == 250_000
    report = build_report(program, "summary")
    out = io.BytesIO()
    write_csv(report, out)
    text = out.getvalue().decode("utf-8-sig")
    assert "Pledged by Rose City Community Foundation on 2026-10-15,10000.00" in text
    assert report.totals["pledged_cents"] == 1_250_000 and report.totals["pledges"] == 2


def test_a_program_without_pledges_says_none(program):
    assert summary(program)["Local-match pledges"] == "none"


def test_the_service_keeps_a_program_to_its_most_pledges(program):
    for number in range(pledges.MAX_PLEDGES):
        make_pledge(program, f"Funder {number}", 100, document=PNG_BYTES)
    with pytest.raises(pledges.PledgeError, match="at most"):
        make_pledge(program, "One too many", 100, document=PNG_BYTES)
