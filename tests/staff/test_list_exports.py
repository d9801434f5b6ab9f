"""The gifts and donors lists as CSV and XLSX: the list's filters, every page, words not codes,
formula-safe, for finance and admins only, audited."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import openpyxl
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import GiftSource, GiftStatus, Reversal
from donations.staff import exports
from tests.factories import make_donor, make_fund, make_gift
from tests.staff.support import make_staff, sign_in


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    text = response.get_data().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_gifts_export_follows_the_filters_across_pages_in_words(client, monkeypatch):
    monkeypatch.setattr(exports, "PAGE", 3)  # several keyset pages
    sign_in(client, make_staff("finance"))
    fund = make_fund("general", name="General Fund")
    other = make_fund("other")
    donor = make_donor("pat@example.org", name='=HYPERLINK("http://x")')
    now = datetime.now(UTC)
    for n in range(7):
        make_gift(donor, fund, 1000 + n, received_at=now - timedelta(hours=n + 1))
    make_gift(donor, other, 9999, received_at=now - timedelta(hours=1))
    refunded = make_gift(donor, fund, 5000, received_at=now - timedelta(days=1), status=GiftStatus.PARTIALLY_REFUNDED)
    db.session.add(Reversal(gift=refunded, kind="refund", amount_cents=2000, reversed_at=now))
    make_gift(donor, fund, 2500, received_at=now - timedelta(days=2), source=GiftSource.CHECK, check_number="+77")
    db.session.commit()

    rows = _csv(client.get(f"/staff/gifts/export?fund={fund.id}&format=csv"))
    header, body = rows[0], rows[1:]
    assert header == list(exports.GIFT_COLUMNS)
    assert len(body) == 9  # every page, and only the fund asked for
    assert {row[7] for row in body} == {"General Fund"}
    by_number = {int(row[0]): row for row in body}
    assert by_number[refunded.id][8:11] == ["50.00", "20.00", "30.00"]
    assert by_number[refunded.id][14] == "Partly refunded"
    assert by_number[refunded.id][12] == "Online (Stripe)" and by_number[refunded.id][11] == "One time"
    check = next(row for row in body if row[12] == "Check")
    assert check[13] == "'+77"  # formula-safe
    assert body[0][3].startswith("'=")  # the donor's name, neutralized

    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gifts.export")).one()
    assert entry.details == {"list": "gifts", "format": "csv", "filters": {"fund_id": fund.id}}


def test_gifts_export_as_xlsx_and_refusals(client):
    fund = make_fund("general")
    donor = make_donor("pat@example.org", name="Pat")
    make_gift(donor, fund, 1234)
    viewer = make_staff("viewer")
    sign_in(client, viewer)
    assert client.get("/staff/gifts/export?format=csv").status_code == 403
    sign_in(client, make_staff("admin"))
    response = client.get("/staff/gifts/export?format=xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    assert 'filename="gifts-' in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    values = list(sheet.values)
    assert list(values[0]) == list(exports.GIFT_COLUMNS)
    assert values[1][3] == "Pat" and values[1][8] == 12.34 and values[1][14] == "Paid"
    bad = client.get("/staff/gifts/export?format=pdf")
    assert bad.status_code == 400 and "CSV or Excel" in bad.get_data(as_text=True)
    bad = client.get("/staff/gifts/export?min_amount=abc&format=csv")
    assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
    assert db.session.scalars(select(AuditEntry.action)).all() == ["gifts.export"]


def test_donors_export_with_the_search(client):
    sign_in(client, make_staff("finance"))
    fund = make_fund("general")
    garcia = make_donor("maria@example.org", name="Maria Garcia", postal_code="94607")
    make_gift(garcia, fund, 5000)
    make_gift(garcia, fund, 2500)
    make_donor("sam@example.org", name="Sam Smith")
    page = client.get("/staff/donors?q=garcia").get_data(as_text=True)
    assert "/staff/donors/export?q=garcia&amp;format=csv" in page

    rows = _csv(client.get("/staff/donors/export?q=garcia&format=csv"))
    assert rows[0] == list(exports.DONOR_COLUMNS)
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["Name"] == "Maria Garcia" and row["Gifts"] == "2" and row["Given"] == "75.00"
    assert row["Membership"] == "Not a member" and row["Postal code"] == "94607"
    everyone = _csv(client.get("/staff/donors/export?format=xlsx".replace("xlsx", "csv")))
    assert len(everyone) == 3
    actions = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [a.details["filters"] for a in actions] == [{"search": "garcia"}, {}]
