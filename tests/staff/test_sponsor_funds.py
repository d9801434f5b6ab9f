"""Sponsor-held funds in the console: the fund page sets the tax status (audited), the offline
form records a sponsor's gifts, the gift page says through whom a gift was deductible, and the
public gift page never takes a sponsor-held fund's money."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.ledger import funds
from donations.ledger.models import Fund, Gift
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in

SPONSORED = {
    "name": "Schools Reporting Fund",
    "slug": "schools",
    "active": "y",
    "tax_status": "sponsor",
    "sponsor_name": "Valley Community Foundation",
    "sponsor_ein": "12-3456789",
    "sponsor_receipt_wording": "No goods or services were provided in exchange.",
}


def post(client, path: str, **fields):
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, **fields})


def test_an_admin_makes_a_sponsor_held_fund_and_it_takes_no_online_gifts(client):
    make_fund("general", is_default=True)
    admin = make_staff("admin")
    sign_in(client, admin)
    response = post(client, "/staff/funds/new", **SPONSORED)
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    fund = db.session.scalars(select(Fund).where(Fund.slug == "schools")).one()
    assert (fund.sponsor_held, fund.sponsor_name, fund.sponsor_ein) == (
        True,
        "Valley Community Foundation",
        "12-3456789",
    )
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "fund.create")).one()
    assert entry.details["after"]["sponsor_name"] == "Valley Community Foundation"
    assert client.get("/give/schools").status_code == 404
    assert client.get("/embed/schools").status_code == 404
    listing = client.get("/staff/funds").get_data(as_text=True)
    assert "held by Valley Community Foundation" in page_text(listing)
    # No link to a gift page that does not exist: the list says who takes its gifts instead.
    assert "None: Valley Community Foundation takes its gifts" in page_text(listing)
    assert 'href="/give/schools"' not in listing and 'href="/give/general"' in listing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sponsor_name": ""}, "Name the fiscal sponsor"),
        ({"sponsor_ein": "123456789"}, "two digits, a dash and seven digits"),
        ({"is_default": "y"}, "cannot be held by a fiscal sponsor"),
    ],
)
def test_a_sponsor_held_fund_needs_its_sponsor(client, fields, message):
    sign_in(client, make_staff("admin"))
    response = post(client, "/staff/funds/new", **{**SPONSORED, **fields})
    assert response.status_code == 400
    assert message in page_text(response.get_data(as_text=True))


def test_a_fund_with_gifts_keeps_its_tax_status(client):
    fund = make_fund("general", is_default=True)
    make_gift(make_donor(), fund)
    sign_in(client, make_staff("admin"))
    response = post(
        client, f"/staff/funds/{fund.id}", **{**SPONSORED, "name": fund.name, "slug": fund.slug, "is_default": "y"}
    )
    assert response.status_code == 400
    other = make_fund("other")
    make_gift(make_donor(), other)
    response = post(client, f"/staff/funds/{other.id}", **{**SPONSORED, "name": other.name, "slug": other.slug})
    assert response.status_code == 400
    assert "its tax status cannot change" in page_text(response.get_data(as_text=True))
    assert db.session.get(Fund, other.id).sponsor_held is False


def test_finance_records_a_sponsors_gift_and_its_page_names_the_sponsor(client):
    make_fund("general", is_default=True)
    held = make_fund(
        "schools", name="Schools Reporting Fund", sponsor=funds.Sponsor("Valley Community Foundation", "12-3456789")
    )
    sign_in(client, make_staff("finance"))
    received = (local_date(utcnow()) - timedelta(days=1)).isoformat()
    fields = {"name": "Ruth Giver", "email": "ruth@example.org", "amount": "400", "fund": held.id}
    refused = post(client, "/staff/offline/new", source="check", check_number="12", received_on=received, **fields)
    assert refused.status_code == 400
    assert "record its gifts as the sponsor reports them" in page_text(refused.get_data(as_text=True))
    response = post(client, "/staff/offline/new", source="sponsor", received_on=received, **fields)
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    gift = db.session.scalars(select(Gift)).one()
    assert (gift.source, gift.tax_deductible) == ("sponsor", True)
    page = page_text(client.get(f"/staff/gifts/{gift.id}").get_data(as_text=True))
    assert "Yes: received by Valley Community Foundation (EIN 12-3456789)" in page
    assert "Fiscal sponsor" in page
