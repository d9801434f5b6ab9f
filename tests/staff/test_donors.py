"""Donor search, a donor's page (gifts, memberships, totals by local year), and merging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger import donors as donor_ledger
from donations.ledger.models import Donor, Gift, Membership, Reversal
from donations.staff import queries
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def finance(client):
    user = make_staff("finance")
    sign_in(client, user)
    return user


def found(client, q: str) -> list[int]:
    response = client.get("/staff/donors", query_string={"q": q})
    assert response.status_code == 200
    links = [part.split('"')[0] for part in response.get_data(as_text=True).split('href="/staff/donors/')[1:]]
    return [int(link) for link in links if not link.startswith("export")]  # the download links


def test_search_by_name_email_organization_or_postal_code(client, finance):
    ana = make_donor("ana.lopez@example.org", name="Ana López", postal_code="94110")
    bakery = make_donor("owner@bakery.example", name="Bo Baker", organization="Corner Bakery LLC", postal_code="94703")
    make_donor("someone@example.org", name="Someone Else", postal_code="10001")
    assert found(client, "lópez") == [ana.id]
    assert found(client, "ANA.LOPEZ@") == [ana.id]
    assert found(client, "corner bak") == [bakery.id]
    assert found(client, "947") == [bakery.id]
    assert found(client, "%") == [] and found(client, "_") == []
    assert found(client, "nobody-matches") == []


def test_search_counts_what_each_donor_gave(client, finance):
    donor = make_donor("counted@example.org", name="Counted")
    fund = make_fund()
    make_gift(donor, fund, 2500)
    make_gift(donor, fund, 7500)
    (match,) = donor_ledger.search("counted")
    assert (match.gift_count, match.given_cents) == (2, 10000)
    assert "$100.00" in page_text(client.get("/staff/donors?q=counted").get_data(as_text=True))


def test_totals_by_local_year_net_of_reversals(app):
    donor, fund = make_donor(), make_fund()
    # 23:30 Pacific on Dec 31, 2025 is 2026 in UTC: it is a 2025 gift.
    late = make_gift(donor, fund, 10000, received_at=datetime(2026, 1, 1, 7, 30, tzinfo=UTC))
    make_gift(donor, fund, 5000, received_at=datetime(2026, 1, 1, 8, 30, tzinfo=UTC))
    make_gift(donor, fund, 2500, received_at=datetime(2026, 6, 1, tzinfo=UTC))
    db.session.add(Reversal(gift_id=late.id, kind="refund", amount_cents=4000, reversed_at=datetime.now(UTC)))
    db.session.commit()
    assert queries.totals_by_year([donor.id]) == [
        queries.YearTotal(2026, 2, 7500, 0),
        queries.YearTotal(2025, 1, 10000, 4000),
    ]


def test_a_donor_page_shows_gifts_memberships_and_years(client, finance, app):
    donor, fund = make_donor("page@example.org", name="Page Donor"), make_fund(name="General Fund")
    gift = make_gift(donor, fund, 1500, received_at=datetime(2025, 5, 5, 18, tzinfo=UTC))
    db.session.add(Membership(donor_id=donor.id, fund_id=fund.id, amount_cents=1000, interval="month", status="active"))
    db.session.commit()
    page = client.get(f"/staff/donors/{donor.id}").get_data(as_text=True)
    text = page_text(page)
    assert f'href="/staff/gifts/{gift.id}"' in page
    assert "2025 1 $15.00 $0.00 $15.00" in text
    assert "$10.00 month General Fund active" in text
    if "receipts_staff.statement" in app.view_functions:
        assert f'href="/staff/donors/{donor.id}/statement/2025"' in page


def test_a_paused_membership_says_until_when(client, finance):
    donor, fund = make_donor("paused@example.org"), make_fund(name="General Fund")
    until = datetime(2027, 2, 14, 20, tzinfo=UTC)
    db.session.add(
        Membership(
            donor_id=donor.id, fund_id=fund.id, amount_cents=1000, interval="month", status="active", paused_until=until
        )
    )
    db.session.commit()
    text = page_text(client.get(f"/staff/donors/{donor.id}").get_data(as_text=True))
    assert "active (paused until 2027-02-14)" in text


def merge(client, kept: Donor, duplicate_id: object, confirm: bool = True):
    token = csrf_token(client, f"/staff/donors/{kept.id}")
    data = {"csrf_token": token, "duplicate": duplicate_id}
    if confirm:
        data["confirmed"] = "yes"
    return client.post(f"/staff/donors/{kept.id}/merge", data=data)


def gifts_of(donor_id: int) -> set[int]:
    return set(db.session.scalars(select(Gift.id).where(Gift.donor_id == donor_id)))


def test_a_merge_keeps_every_gift_and_moves_memberships(client, finance):
    fund = make_fund()
    kept = make_donor("jane@example.org", name="Jane Q. Reader")
    duplicate = make_donor("jane.reader@work.example", postal_code="94110", organization=None)
    kept_gifts = {make_gift(kept, fund, 1000 * n).id for n in (1, 2)}
    duplicate_gifts = {make_gift(duplicate, fund, 500 * n).id for n in (1, 2, 3)}
    membership = Membership(donor_id=duplicate.id, fund_id=fund.id, amount_cents=500, interval="month", status="active")
    db.session.add(membership)
    db.session.commit()
    total_before = db.session.scalar(select(func.sum(Gift.amount_cents)))

    response = merge(client, kept, duplicate.id)
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    db.session.expire_all()
    assert gifts_of(kept.id) == kept_gifts | duplicate_gifts
    assert gifts_of(duplicate.id) == set()
    assert db.session.scalar(select(func.count()).select_from(Gift)) == 5
    assert db.session.scalar(select(func.sum(Gift.amount_cents))) == total_before
    assert db.session.get(Membership, membership.id).donor_id == kept.id
    merged = db.session.get(Donor, duplicate.id)
    assert merged.merged_into_id == kept.id
    assert db.session.get(Donor, kept.id).postal_code == "94110"  # a blank filled from the duplicate

    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "donor.merge")).one()
    assert entry.target_id == str(kept.id) and entry.staff_user_id == finance.id
    assert sorted(entry.details["gift_ids"]) == sorted(duplicate_gifts)
    assert entry.details["merged_donor_id"] == duplicate.id
    kept_page = page_text(client.get(f"/staff/donors/{kept.id}").get_data(as_text=True))
    assert f"Merged from #{duplicate.id} jane.reader@work.example" in kept_page
    assert "donor.merge" in kept_page
    duplicate_page = page_text(client.get(f"/staff/donors/{duplicate.id}").get_data(as_text=True))
    assert "This donor was merged into Jane Q. Reader" in duplicate_page
    assert found(client, "jane") == [kept.id]  # the merged duplicate is no longer offered


def test_merging_a_donor_that_absorbed_others_points_them_all_at_the_new_one(client, finance):
    first, second, third = make_donor(), make_donor(), make_donor()
    assert merge(client, second, first.id).status_code == 303
    assert merge(client, third, second.id).status_code == 303
    db.session.expire_all()
    assert db.session.get(Donor, first.id).merged_into_id == third.id
    assert donor_ledger.resolve_merged(db.session.get(Donor, first.id)).id == third.id


@pytest.mark.parametrize("case", ["self", "unknown", "already_merged", "into_merged", "unconfirmed", "not_a_number"])
def test_bad_merges_are_refused_and_change_nothing(client, finance, case):
    fund = make_fund()
    kept, duplicate, other = make_donor(), make_donor(), make_donor()
    make_gift(duplicate, fund)
    if case in ("already_merged", "into_merged"):
        assert merge(client, other, (duplicate if case == "already_merged" else kept).id).status_code == 303
    target, source, confirm = {
        "self": (kept, kept.id, True),
        "unknown": (kept, 999999, True),
        "already_merged": (kept, duplicate.id, True),
        "into_merged": (kept, duplicate.id, True),
        "unconfirmed": (kept, duplicate.id, False),
        "not_a_number": (kept, "two", True),
    }[case]
    audits = db.session.scalar(select(func.count()).select_from(AuditEntry))
    gifts_before = dict(db.session.execute(select(Gift.id, Gift.donor_id)).all())
    response = merge(client, target, source, confirm)
    if case == "unconfirmed":  # the confirmation page: both records and what would move
        assert response.status_code == 200
        text = page_text(response.get_data(as_text=True))
        assert f"Merge donor #{duplicate.id} into #{kept.id}?" in text and "Moving to" in text and "1 gift" in text
    else:
        assert response.status_code == 400, case
    db.session.expire_all()
    assert dict(db.session.execute(select(Gift.id, Gift.donor_id)).all()) == gifts_before
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audits


def test_a_gift_recorded_for_a_merged_email_shows_on_the_donor_kept(client, finance):
    fund = make_fund()
    kept, duplicate = make_donor("kept@example.org"), make_donor("old.address@example.org")
    assert merge(client, kept, duplicate.id).status_code == 303
    # A later payment with the old address (say, from a Payment Link) is recorded to the record
    # that address belongs to.
    late = make_gift(db.session.get(Donor, duplicate.id), fund, 4200, received_at=datetime(2026, 2, 2, tzinfo=UTC))
    page = client.get(f"/staff/donors/{kept.id}").get_data(as_text=True)
    assert f'href="/staff/gifts/{late.id}"' in page
    assert "2026 1 $42.00" in page_text(page)
