"""Funder links: made and revoked by finance and admins on a packet's page, opened by a funder
without an account, 404 once expired or revoked, every view audited with no staff user, the
token kept only as a hash, and no anonymous donor's identity on the page."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.clock import utcnow
from donations.extensions import db
from donations.grants import funder_links
from donations.grants.models import FunderLink, ReportRun
from donations.grants.packet import build_packet, packet_of
from donations.grants.service import GrantError
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token
from tests.grants.support import local, make_pledge, make_program
from tests.staff.support import make_staff, sign_in

SECRET_NAME = "Quintessa Hiddenfield"
SECRET_EMAIL = "quintessa.hiddenfield@example.org"


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@pytest.fixture
def run(fund):
    program = make_program()
    make_gift(make_donor("pat@example.org", name="Pat Person"), fund, 50_000, received_at=local(2026, 11, 5))
    hidden = make_donor(SECRET_EMAIL, name=SECRET_NAME)
    make_gift(hidden, fund, 7_000, received_at=local(2026, 11, 6), anonymous=True)
    make_pledge(program, "Rose City Community Foundation", 1_000_000, date(2026, 10, 15))
    built = build_packet(program, actor="test")
    db.session.commit()
    return built.run


def make_link(client, run: ReportRun, days: str = "30", label: str = "Program officer") -> str:
    """Made through the staff page, as staff would: the path of the link it shows once."""
    token = csrf_token(client, f"/staff/grants/runs/{run.id}")
    response = client.post(
        f"/staff/grants/runs/{run.id}/links", data={"csrf_token": token, "days": days, "label": label}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    address = re.search(r'value="(http[^"]+/funder/[^"]+)"', response.get_data(as_text=True)).group(1)
    return address.removeprefix("http://127.0.0.1:5000")


def test_a_funder_opens_the_packet_without_an_account(app, client, run):
    sign_in(client, make_staff("finance"))
    path = make_link(client, run)
    funder = app.test_client()
    page = funder.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for expected in (
        "NewsMatch 2026: local money raised",
        "$570.00",
        "Rose City Community Foundation",
        "$10,000.00 pledged on 2026-10-15",
        "are not tax deductible",
        "newsmatch-2026-donors.xlsx",
    ):
        assert expected in html, expected
    assert page.headers["Referrer-Policy"] == "same-origin"  # the address is the key: never sent elsewhere
    assert "noindex" in page.headers["X-Robots-Tag"] and page.headers["Cache-Control"] == "no-store"
    download = funder.get(f"{path}/files/newsmatch-2026-donors.csv")
    assert download.status_code == 200
    packet_files = {item["name"]: item["sha256"] for item in _files(run)}
    assert hashlib.sha256(download.data).hexdigest() == packet_files["newsmatch-2026-donors.csv"]
    assert funder.get(f"{path}/files/nothing.csv").status_code == 404
    assert funder.get(f"{path}/files/../../etc/passwd").status_code == 404


def _files(run: ReportRun) -> list[dict]:
    return packet_of(run).files


def test_every_view_is_audited_with_no_staff_user(app, client, run):
    sign_in(client, make_staff("finance"))
    path = make_link(client, run)
    link = db.session.scalar(select(FunderLink))
    funder = app.test_client()
    funder.get(path)
    funder.get(f"{path}/files/cover-sheet.pdf")
    views = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "funder_link.view").order_by(AuditEntry.id)
    ).all()
    assert [entry.details["viewed"] for entry in views] == ["page", "cover-sheet.pdf"]
    assert all(entry.staff_user_id is None and entry.actor == f"funder link #{link.id}" for entry in views)
    made = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "funder_link.create"))
    assert made.staff_user_id is not None and made.details["label"] == "Program officer"


def test_an_expired_link_is_a_404(app, client, run):
    sign_in(client, make_staff("finance"))
    path = make_link(client, run, days="1")
    funder = app.test_client()
    assert funder.get(path).status_code == 200
    link = db.session.scalar(select(FunderLink))
    assert link.expires_at - utcnow() <= timedelta(days=1)
    link.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert funder.get(path).status_code == 404
    assert funder.get(f"{path}/files/cover-sheet.pdf").status_code == 404
    assert "Expired" in client.get(f"/staff/grants/runs/{run.id}").get_data(as_text=True)


def test_a_revoked_link_is_a_404(app, client, run):
    sign_in(client, make_staff("admin", email="boss@newsroom.example"))
    path = make_link(client, run)
    funder = app.test_client()
    assert funder.get(path).status_code == 200
    link = db.session.scalar(select(FunderLink))
    url = f"/staff/grants/runs/{run.id}/links/{link.id}/revoke"
    assert client.post(url).status_code == 400  # no CSRF token
    token = csrf_token(client, f"/staff/grants/runs/{run.id}")
    assert client.post(url, data={"csrf_token": token}).status_code == 303
    assert funder.get(path).status_code == 404
    assert funder.get(f"{path}/files/cover-sheet.pdf").status_code == 404
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "funder_link.revoke"))
    assert entry.actor == "boss@newsroom.example"
    assert "Revoked" in client.get(f"/staff/grants/runs/{run.id}").get_data(as_text=True)


def test_unknown_tokens_are_a_404(app, run):
    funder = app.test_client()
    assert funder.get("/funder/not-a-token").status_code == 404
    assert funder.get("/funder/" + "x" * 500).status_code == 404


def test_only_the_tokens_hash_is_kept(client, run):
    sign_in(client, make_staff("finance"))
    path = make_link(client, run)
    token = path.rsplit("/", 1)[-1]
    link = db.session.scalar(select(FunderLink))
    assert link.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert token not in client.get(f"/staff/grants/runs/{run.id}").get_data(as_text=True)
    entries = db.session.scalars(select(AuditEntry)).all()
    assert all(token not in str(entry.details) for entry in entries)


def test_the_funder_page_names_no_anonymous_donor(app, client, run):
    sign_in(client, make_staff("finance"))
    path = make_link(client, run)
    funder = app.test_client()
    seen = [funder.get(path).get_data(as_text=True)]
    for item in _files(run):
        if item["name"].endswith(".csv"):
            seen.append(funder.get(f"{path}/files/{item['name']}").get_data(as_text=True))
    everything = "\n".join(seen)
    assert "Pat Person" in everything  # the search reads the donors' file
    assert SECRET_NAME not in everything and SECRET_EMAIL not in everything


def test_viewers_can_neither_make_nor_revoke_links(client, run):
    sign_in(client, make_staff("viewer"))
    page = client.get(f"/staff/grants/runs/{run.id}").get_data(as_text=True)
    assert "Make a funder link" not in page
    token = csrf_token(client, "/staff/account")
    response = client.post(f"/staff/grants/runs/{run.id}/links", data={"csrf_token": token, "days": "30"})
    assert response.status_code == 403
    assert db.session.scalar(select(FunderLink.id)) is None


@pytest.mark.parametrize(("days", "message"), [("0", "between 1 and 3650"), ("91", "from 1 to 90 days"), ("x", "")])
def test_bad_expiries_are_a_400_with_words(client, run, days, message):
    sign_in(client, make_staff("finance"))
    token = csrf_token(client, f"/staff/grants/runs/{run.id}")
    response = client.post(f"/staff/grants/runs/{run.id}/links", data={"csrf_token": token, "days": days})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(FunderLink.id)) is None


def test_links_are_for_packets_only(client, run):
    program = run.program
    service_run = ReportRun(
        program_id=program.id,
        actor="test",
        kind="summary",
        format="csv",
        program_settings={},
        row_count=1,
        byte_size=1,
        sha256="0" * 64,
        filename="x.csv",
    )
    db.session.add(service_run)
    db.session.commit()
    with pytest.raises(GrantError, match="make a packet first"):
        funder_links.create_link(service_run, 30, "", actor="test")
    sign_in(client, make_staff("finance"))
    token = csrf_token(client, f"/staff/grants/runs/{run.id}")
    response = client.post(f"/staff/grants/runs/{service_run.id}/links", data={"csrf_token": token, "days": "30"})
    assert response.status_code == 404
