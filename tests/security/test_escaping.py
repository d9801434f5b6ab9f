"""A script stored in a donor's name, a tribute, an organization, a Stripe event or an error is
shown as text on every staff page (every GET route under /staff in `app.url_map`, every report
kind, search results) and is inert in every export: CSV and XLSX cells that a spreadsheet would
run as a formula are neutralized, the JSON export is served as an attachment that no browser
renders. Staff are signed in through Flask-Login's session keys."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
import pytest

from donations.grants.export import FORMULA_PREFIXES
from donations.grants.models import REPORT_FORMATS, REPORT_KINDS
from tests.forms import extract_csrf_token
from tests.security.support import (
    NAME,
    ORGANIZATION,
    RAW,
    SCRIPT,
    TRIBUTE,
    build_world,
    routes,
    signed_in,
    url_for_rule,
)

ESCAPED_SCRIPT = "&lt;script&gt;alert("


@pytest.fixture
def world(app):
    return build_world()


def raw_markup(html: str) -> list[str]:
    return [raw for raw in RAW if raw in html]


def staff_pages(app, world) -> list[str]:
    pages = [url_for_rule(rule, world.url_values) for rule in routes(app, "GET", "/staff")]
    slug = world.url_values["slug"]
    pages += [f"/staff/grants/{slug}/reports/{kind}" for kind in REPORT_KINDS]
    # Searches and filters echo what was typed.
    pages += [
        f"{page}?q={SCRIPT}&query={SCRIPT}&status={SCRIPT}"
        for page in ("/staff/gifts", "/staff/donors", "/staff/audit")
    ]
    pages += ["/staff/donors?q=Mallory", "/staff/gifts?q=Mallory"]
    return pages


def test_stored_scripts_are_text_on_every_staff_page(app, world):
    admin, _user = signed_in(app, "admin")
    unescaped, shown = [], {}
    for url in staff_pages(app, world):
        response = admin.get(url)
        assert response.status_code < 500, url
        if response.mimetype != "text/html":  # the list downloads: CSV files, sent as attachments
            assert response.headers["Content-Disposition"].startswith("attachment;"), url
            continue
        html = response.get_data(as_text=True)
        unescaped += [f"{url}: {raw}" for raw in raw_markup(html)]
        shown[url] = html.count(ESCAPED_SCRIPT)
    assert unescaped == []
    # The hostile values did reach the pages (as text): the test is not passing on empty pages.
    donor = f"/staff/donors/{world.url_values['donor_id']}"
    assert shown[donor] > 0
    assert shown["/staff/events"] > 0 and shown["/staff/audit"] > 0
    assert "&lt;img src=x onerror" in admin.get(f"/staff/gifts/{world.url_values['gift_id']}").get_data(as_text=True)


def export(client, world, kind: str, fmt: str):
    slug = world.url_values["slug"]
    page = client.get(f"/staff/grants/{slug}/reports/{kind}").get_data(as_text=True)
    return client.post(
        f"/staff/grants/{slug}/reports/{kind}/export",
        data={"csrf_token": extract_csrf_token(page), "format": fmt},
    )


def cells(fmt: str, body: bytes) -> list[object]:
    if fmt == "csv":
        return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"))) for cell in row]
    workbook = openpyxl.load_workbook(io.BytesIO(body))
    found = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula"
                found.append(cell.value)
    return found


def test_every_export_neutralizes_formulas_and_keeps_the_text(app, world):
    admin, _user = signed_in(app, "admin")
    texts: list[str] = []
    for kind in REPORT_KINDS:
        for fmt in REPORT_FORMATS:
            response = export(admin, world, kind, fmt)
            assert response.status_code == 200, (kind, fmt, response.status_code)
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            values = [value for value in cells(fmt, response.get_data()) if isinstance(value, str)]
            formulas = [value for value in values if value.startswith(("=", "+", "@"))]
            assert formulas == [], (kind, fmt)
            texts += values
    assert "'" + ORGANIZATION in texts  # neutralized, not dropped
    assert NAME in texts  # a script in a spreadsheet cell is only text: kept exactly


def test_formula_prefixes_cover_the_spreadsheet_ones():
    assert set("=+-@") <= {prefix[0] for prefix in FORMULA_PREFIXES}


def test_the_privacy_export_is_an_attachment_no_browser_renders(app, world):
    admin, _user = signed_in(app, "admin")
    donor_id = world.url_values["donor_id"]
    page = admin.get(f"/staff/donors/{donor_id}/privacy").get_data(as_text=True)
    response = admin.post(f"/staff/donors/{donor_id}/privacy/export", data={"csrf_token": extract_csrf_token(page)})
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.get_data(as_text=True))
    assert data["donor"]["name"] == NAME  # exact, not mangled
    assert TRIBUTE in {gift["tribute_name"] for gift in data["gifts"]}
