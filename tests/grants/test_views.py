"""Grant program pages: who may do what, CSRF, forms, bad input, paging, the public progress bar."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.grants.models import GrantProgram, ReportRun
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, extract_csrf_token
from tests.grants.support import html_table, local, make_program
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True, goal_cents=2_500_000)


@pytest.fixture
def program(fund):
    return make_program()


READ_PAGES = [
    "/staff/grants/",
    "/staff/grants/newsmatch-2026/",
    "/staff/grants/newsmatch-2026/reports/summary",
    "/staff/grants/newsmatch-2026/reports/ledger?first_day=2026-11-01&last_day=2026-11-30",
    "/staff/grants/newsmatch-2026/runs",
]


# Flask-Login keeps the loaded user in `g`, which lives as long as the test's app context: each
# test below signs in one user only.


@pytest.mark.parametrize("path", READ_PAGES)
def test_the_signed_out_are_sent_to_sign_in(client, program, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.location.startswith("/staff/sign-in")


@pytest.mark.parametrize("role", ["viewer", "finance", "admin"])
@pytest.mark.parametrize("path", READ_PAGES)
def test_every_staff_role_reads(client, program, path, role):
    sign_in(client, make_staff(role))
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("finance", 200), ("admin", 200)])
@pytest.mark.parametrize("path", ["/staff/grants/new", "/staff/grants/newsmatch-2026/edit"])
def test_only_admin_and_finance_create_and_edit(client, program, path, role, status):
    sign_in(client, make_staff(role))
    assert client.get(path).status_code == status


def test_viewers_cannot_download(client, program):
    sign_in(client, make_staff("viewer"))
    token = csrf_token(client, "/staff/account")
    response = client.post(
        "/staff/grants/newsmatch-2026/reports/donors/export", data={"csrf_token": token, "format": "csv"}
    )
    assert response.status_code == 403
    assert db.session.scalar(select(ReportRun.id)) is None


def test_downloads_need_a_csrf_token(client, program):
    sign_in(client, make_staff("finance"))
    response = client.post("/staff/grants/newsmatch-2026/reports/donors/export", data={"format": "csv"})
    assert response.status_code == 400
    assert db.session.scalar(select(ReportRun.id)) is None


def _program_form(fund_id: int, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "Local Match 2027",
        "slug": "local-match-2027",
        "first_day": "2027-11-01",
        "last_day": "2027-12-31",
        "cap": "1,000",
        "goal": "25000",
        "funds": [str(fund_id)],
        "sources": ["stripe", "check"],
        "individuals_only": "y",
        "recurring_rule": "new_recurring_x12",
        "notes": "Press Forward local match",
        "public_fund": str(fund_id),
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_create_and_edit_a_program_audited(client, fund):
    admin = make_staff("admin")
    sign_in(client, admin)
    token = csrf_token(client, "/staff/grants/new")
    response = client.post("/staff/grants/new", data={"csrf_token": token, **_program_form(fund.id)})
    assert response.status_code == 303, response.get_data(as_text=True)
    program = db.session.scalars(select(GrantProgram)).one()
    assert (program.cap_cents, program.goal_cents, program.fund_ids) == (100_000, 2_500_000, [fund.id])
    assert (program.sources, program.recurring_rule, program.public_fund_id) == (
        ["stripe", "check"],
        "new_recurring_x12",
        fund.id,
    )
    token = csrf_token(client, "/staff/grants/local-match-2027/edit")
    response = client.post(
        "/staff/grants/local-match-2027/edit",
        data={"csrf_token": token, **_program_form(fund.id, cap="", funds=None, individuals_only=None)},
    )
    assert response.status_code == 303
    db.session.refresh(program)
    assert (program.cap_cents, program.fund_ids, program.individuals_only) == (None, None, False)
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["grant_program.create", "grant_program.update"]
    update = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "grant_program.update")).one()
    assert update.actor == admin.email
    assert update.details["before"]["cap_cents"] == 100_000
    assert update.details["after"]["cap_cents"] is None
    assert update.details["after_export"] is False


BAD_FORMS = [
    ({"last_day": "2027-10-01"}, "before the first day"),
    ({"slug": "Not A Slug"}, "lowercase"),
    ({"cap": "-5"}, "amount"),
    ({"cap": "0"}, "more than zero"),
    ({"first_day": "2027-02-30"}, "date"),
    ({"sources": None}, "source"),
    ({"recurring_rule": "forever"}, "choice"),
    ({"funds": ["999999"]}, "choice"),
    ({"name": ""}, "Name the program"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_FORMS, ids=[m for _, m in BAD_FORMS])
def test_bad_input_gets_a_clear_message_and_saves_nothing(client, fund, changes, message):
    sign_in(client, make_staff("finance"))
    token = csrf_token(client, "/staff/grants/new")
    response = client.post("/staff/grants/new", data={"csrf_token": token, **_program_form(fund.id, **changes)})
    assert response.status_code == 400
    assert message.lower() in response.get_data(as_text=True).lower()
    assert db.session.scalar(select(GrantProgram.id)) is None


def test_a_slug_already_taken_is_refused(client, program, fund):
    sign_in(client, make_staff("finance"))
    token = csrf_token(client, "/staff/grants/new")
    data = _program_form(fund.id, slug=program.slug)
    response = client.post("/staff/grants/new", data={"csrf_token": token, **data})
    assert response.status_code == 400
    assert "already exists" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    ["?first_day=2026-13-01", "?first_day=2026-12-31&last_day=2026-11-01", "?page=0", "?page=abc"],
)
def test_bad_report_parameters_are_a_400(client, program, query):
    sign_in(client, make_staff("viewer"))
    assert client.get(f"/staff/grants/{program.slug}/reports/ledger{query}").status_code == 400


def test_unknown_program_or_report_is_a_404(client, program):
    sign_in(client, make_staff("viewer"))
    assert client.get("/staff/grants/nope/").status_code == 404
    assert client.get(f"/staff/grants/{program.slug}/reports/everything").status_code == 404
    assert client.get("/staff/grants/runs/12345").status_code == 404


def test_reports_on_screen_are_paged(client, program, fund):
    for n in range(105):
        make_gift(make_donor(f"paged{n:03}@example.org"), fund, 1_000 + n, received_at=local(2026, 11, 10))
    sign_in(client, make_staff("viewer"))
    first = client.get(f"/staff/grants/{program.slug}/reports/donors").get_data(as_text=True)
    second = client.get(f"/staff/grants/{program.slug}/reports/donors?page=2").get_data(as_text=True)
    assert len(html_table(first)) == 100
    assert 'rel="next"' in first
    rows = html_table(second)
    assert [row[2] for row in rows] == [f"paged{n:03}@example.org" for n in range(100, 105)]
    assert 'rel="next"' not in second


def test_runs_page_lists_each_export_with_its_hash(client, program):
    staff = make_staff("finance")
    sign_in(client, staff)
    page = client.get(f"/staff/grants/{program.slug}/reports/summary").get_data(as_text=True)
    client.post(
        f"/staff/grants/{program.slug}/reports/summary/export",
        data={"csrf_token": extract_csrf_token(page), "format": "xlsx"},
    )
    run = db.session.scalars(select(ReportRun)).one()
    assert (run.actor, run.staff_user_id, run.kind, run.format) == (staff.email, staff.id, "summary", "xlsx")
    listing = client.get(f"/staff/grants/{program.slug}/runs").get_data(as_text=True)
    assert run.sha256[:16] in listing
    detail = client.get(f"/staff/grants/runs/{run.id}").get_data(as_text=True)
    assert run.sha256 in detail


def test_the_public_progress_bar_on_the_funds_gift_page(client, fund):
    today = local_date(utcnow())
    make_program(
        slug="open-now",
        first_day=today - timedelta(days=3),
        last_day=date(today.year, 12, 31),
        goal_cents=500_000,
        cap_cents=100_000,
        public_fund_id=fund.id,
    )
    donor = make_donor()
    make_gift(donor, fund, 150_000, received_at=utcnow() - timedelta(hours=1))
    make_gift(make_donor(), fund, 20_000, received_at=utcnow() - timedelta(hours=1), organization="Acme LLC")
    html = client.get(f"/give/{fund.slug}").get_data(as_text=True)
    assert "$1,000 raised toward our $5,000 local match" in html
    assert "gifts through Dec 31 are matched up to $1,000" in html
    assert 'max="500000" value="100000"' in html


def test_no_public_progress_bar_outside_the_window_or_on_other_funds(client, fund):
    other = make_fund("general")
    make_program(slug="over", first_day=date(2020, 11, 1), last_day=date(2020, 12, 31), public_fund_id=fund.id)
    make_program(slug="elsewhere", first_day=date(2020, 1, 1), last_day=date(2099, 12, 31), public_fund_id=other.id)
    assert "local match" not in client.get(f"/give/{fund.slug}").get_data(as_text=True)
    assert "local match" in client.get(f"/give/{other.slug}").get_data(as_text=True)


def test_dashboard_progress_lists_open_programs(fund):
    from donations.grants.service import ProgramProgress, dashboard_progress

    make_program(slug="over", first_day=date(2020, 11, 1), last_day=date(2020, 12, 31))
    make_program(slug="open", first_day=date(2026, 1, 1), last_day=date(2026, 12, 31), goal_cents=300_000)
    make_gift(make_donor(), fund, 150_000, received_at=local(2026, 6, 1))
    assert dashboard_progress(date(2026, 7, 1)) == [
        ProgramProgress("NewsMatch 2026", "open", 100_000, 300_000, date(2026, 12, 31))
    ]


def test_a_preset_fills_the_new_program_form_and_every_rule_stays_editable(client, fund):
    sign_in(client, make_staff("finance"))
    page = client.get("/staff/grants/new?preset=newsmatch").get_data(as_text=True)
    assert 'value="5000.00"' in page and 'value="15000.00"' in page and "help center" in page
    token = extract_csrf_token(page)
    rules = {
        "anonymous_limit": "5,000",
        "program_cap": "15000",
        "deduct_fair_market_value": "y",
        "exclusive_with": "newsmatch-2026, rfa-2026",
        "priority": "20",
        "local_postal_prefixes": "972, 973",
        "local_states": "OR",
    }
    response = client.post("/staff/grants/new", data={"csrf_token": token, **_program_form(fund.id), **rules})
    assert response.status_code == 303, response.get_data(as_text=True)
    settings = db.session.scalars(select(GrantProgram)).one().settings()
    assert (settings.anonymous_limit_cents, settings.program_cap_cents, settings.priority) == (500_000, 1_500_000, 20)
    assert settings.exclusive_with == ("newsmatch-2026", "rfa-2026")
    assert (settings.local_postal_prefixes, settings.local_states) == (("972", "973"), ("OR",))
    edit = client.get("/staff/grants/local-match-2027/edit").get_data(as_text=True)
    assert 'value="972, 973"' in edit and 'value="newsmatch-2026, rfa-2026"' in edit
    summary_page = client.get("/staff/grants/local-match-2027/reports/summary").get_data(as_text=True)
    assert "Program-level match cap" in summary_page and "postal codes starting 972, 973" in summary_page
