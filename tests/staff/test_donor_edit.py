"""Staff correct a donor's record (through the ledger, audited before/after); an email that is
another donor's offers the merge instead."""

from __future__ import annotations

from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Donor
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in

FIELDS = {
    "name": "Maria Garcia",
    "email": "maria@example.org",
    "organization": "",
    "address_line1": "",
    "address_line2": "",
    "city": "",
    "region": "",
    "postal_code": "",
    "country": "",
    "contact_by_email": "y",
    "contact_by_mail": "y",
}


def _post(client, donor_id: int, **changes: str):
    token = csrf_token(client, f"/staff/donors/{donor_id}/edit")
    data = {**FIELDS, **changes, "csrf_token": token}
    data = {key: value for key, value in data.items() if value is not None}
    return client.post(f"/staff/donors/{donor_id}/edit", data=data)


def test_a_correction_is_saved_and_audited_with_before_and_after(client):
    sign_in(client, make_staff("finance"))
    donor = make_donor("maria@example.org", name="Maria Garcia")
    gift = make_gift(donor, make_fund("general"), 5000)
    response = _post(
        client,
        donor.id,
        name="María García",
        email="Maria.Garcia@Example.org",
        address_line1="12  Oak Ave",
        city="Oakland",
        region="CA",
        postal_code="94607",
        country="us",
        contact_by_mail=None,  # the box unticked
    )
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: name, email, street address, city, state or region, postal code, country" in page
    assert "postal mail: not wanted" in page
    db.session.expire_all()
    donor = db.session.get(Donor, donor.id)
    assert (donor.name, donor.email, donor.email_key) == (
        "María García",
        "Maria.Garcia@Example.org",
        "maria.garcia@example.org",
    )
    assert (donor.address_line1, donor.country, donor.contact_by_mail, donor.contact_by_email) == (
        "12 Oak Ave",
        "US",
        False,
        True,
    )
    assert gift.donor_id == donor.id
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "donor.edit")).one()
    assert entry.target_id == str(donor.id)
    assert entry.details["before"] == {
        "name": "Maria Garcia",
        "email": "maria@example.org",
        "address_line1": None,
        "city": None,
        "region": None,
        "postal_code": None,
        "country": None,
        "contact_by_mail": True,
    }
    assert entry.details["after"]["contact_by_mail"] is False and entry.details["after"]["country"] == "US"
    # The donor's history shows it.
    assert "donor.edit" in client.get(f"/staff/donors/{donor.id}").get_data(as_text=True)


def test_an_email_of_another_donor_offers_the_merge(client):
    sign_in(client, make_staff("admin"))
    donor = make_donor("maria@example.org", name="Maria Garcia")
    other = make_donor("m.garcia@example.org", name="M. Garcia")
    response = _post(client, donor.id, email="M.Garcia@example.org")
    assert response.status_code == 409
    text = page_text(response.get_data(as_text=True))
    assert f"already belongs to donor #{other.id}" in text
    assert f"Merge donor #{donor.id} into #{other.id}" in text
    assert f"/staff/donors/{other.id}?merge={donor.id}#merge" in response.get_data(as_text=True)
    # The merge form there is filled in with this donor.
    merge_page = client.get(f"/staff/donors/{other.id}?merge={donor.id}").get_data(as_text=True)
    assert f'name="duplicate" type="text" value="{donor.id}"' in merge_page or f'value="{donor.id}"' in merge_page
    db.session.expire_all()
    assert db.session.get(Donor, donor.id).email == "maria@example.org"
    assert db.session.scalars(select(AuditEntry)).all() == []


def test_bad_or_empty_corrections_are_refused(client):
    sign_in(client, make_staff("finance"))
    donor = make_donor("maria@example.org", name="Maria Garcia")
    nothing = _post(client, donor.id)
    assert nothing.status_code == 400 and "Nothing changed" in nothing.get_data(as_text=True)
    bad = _post(client, donor.id, email="not an email")
    assert bad.status_code == 400 and "email address like" in bad.get_data(as_text=True)
    country = _post(client, donor.id, country="1X")
    assert country.status_code == 400 and "two-letter code" in country.get_data(as_text=True)
    assert db.session.scalars(select(AuditEntry)).all() == []
    viewer = make_staff("viewer")
    sign_in(client, viewer)
    assert client.get(f"/staff/donors/{donor.id}/edit").status_code == 403
