"""Sponsor-held funds: the database itself keeps a gift tax deductible exactly when its fund is
held by a fiscal sponsor (raw SQL, past the ledger's own checks), and the ledger says why in
words before the database has to."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from donations.extensions import db
from donations.ledger import funds
from donations.ledger.offline import DonorDetails, OfflineGift, OfflineGiftError, record_offline_gift
from tests.factories import make_donor, make_fund, make_gift

SPONSOR = funds.Sponsor("Valley Community Foundation", "12-3456789", "No goods or services were provided.")


@pytest.fixture
def own():
    return make_fund("own", is_default=True)


@pytest.fixture
def held():
    return make_fund("held", name="Schools Reporting Fund", sponsor=SPONSOR)


def insert_gift(fund_id: int, donor_id: int, *, source: str, deductible: bool) -> None:
    """A gift written as any SQL client could, none of the app's checks in the way."""
    db.session.execute(
        text(
            "INSERT INTO gifts (donor_id, fund_id, amount_cents, fee_covered_cents, currency, frequency, source,"
            " status, tax_deductible, anonymous, attribution, vehicle, created_at, received_at)"
            " VALUES (:donor, :fund, 5000, 0, 'usd', 'one_time', :source, 'paid', :deductible, :no, '{}',"
            " 'personal', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ),
        {"donor": donor_id, "fund": fund_id, "source": source, "deductible": deductible, "no": False},
    )
    db.session.commit()


def refused(statement) -> None:
    with pytest.raises(IntegrityError):
        statement()
    db.session.rollback()


def test_the_database_keeps_deductible_exactly_for_sponsor_held_funds(own, held):
    donor = make_donor()
    own_id, held_id, donor_id = own.id, held.id, donor.id
    insert_gift(held_id, donor_id, source="sponsor", deductible=True)
    insert_gift(own_id, donor_id, source="check", deductible=False)
    # A deductible gift to the newsroom's own fund, even one said to come from a sponsor.
    refused(lambda: insert_gift(own_id, donor_id, source="sponsor", deductible=True))
    # A sponsor-held fund's gift that is not deductible, or not from the sponsor.
    refused(lambda: insert_gift(held_id, donor_id, source="check", deductible=False))
    refused(lambda: insert_gift(held_id, donor_id, source="sponsor", deductible=False))
    refused(lambda: insert_gift(held_id, donor_id, source="check", deductible=True))
    counts = db.session.execute(text("SELECT fund_id, count(*) FROM gifts GROUP BY fund_id ORDER BY fund_id")).all()
    assert [tuple(row) for row in counts] == [(own_id, 1), (held_id, 1)]


def test_a_gift_cannot_move_between_tax_statuses_nor_a_fund_with_gifts_change_its_own(own, held):
    donor = make_donor()
    own_id, held_id = own.id, held.id
    insert_gift(held_id, donor.id, source="sponsor", deductible=True)
    gift_id = db.session.scalar(text("SELECT id FROM gifts"))
    refused(lambda: _execute("UPDATE gifts SET fund_id = :fund WHERE id = :id", fund=own_id, id=gift_id))
    refused(
        lambda: _execute("UPDATE gifts SET tax_deductible = :no, source = 'other' WHERE id = :id", no=False, id=gift_id)
    )
    refused(
        lambda: _execute(
            "UPDATE funds SET sponsor_held = :no, sponsor_name = NULL, sponsor_ein = NULL WHERE id = :id",
            no=False,
            id=held_id,
        )
    )
    # A fund without gifts may still change: nothing was received under its old status.
    _execute(
        "UPDATE funds SET sponsor_held = :yes, sponsor_name = 'A Sponsor', sponsor_ein = '98-7654321' WHERE id = :id",
        yes=True,
        id=own_id,
    )
    assert db.session.scalar(text("SELECT sponsor_held FROM funds WHERE id = :id"), {"id": own_id})


def test_a_sponsor_held_fund_names_its_sponsor_and_ein():
    make_fund("x")
    refused(lambda: _execute("UPDATE funds SET sponsor_held = :yes WHERE slug = 'x'", yes=True))


def _execute(sql: str, **params: object) -> None:
    db.session.execute(text(sql), params)
    db.session.commit()


def offline(fund_id: int, source: str, **kwargs: object) -> OfflineGift:
    return OfflineGift(
        donor=DonorDetails(email="reader@example.org", name="A Reader"),
        fund_id=fund_id,
        amount_cents=25_000,
        source=source,
        received_on=date(2026, 11, 20),
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_offline_form_records_a_sponsors_gift_deductible_and_refuses_mixups(own, held):
    recorded = record_offline_gift(offline(held.id, "sponsor"))
    db.session.commit()
    assert (recorded.gift.tax_deductible, recorded.gift.source) == (True, "sponsor")
    with pytest.raises(OfflineGiftError, match="held by Valley Community Foundation"):
        record_offline_gift(offline(held.id, "check", check_number="101"))
    with pytest.raises(OfflineGiftError, match="newsroom's own fund"):
        record_offline_gift(offline(own.id, "sponsor"))
    db.session.rollback()
    plain = record_offline_gift(offline(own.id, "cash"))
    assert plain.gift.tax_deductible is False


def test_a_fund_with_gifts_keeps_its_tax_status_and_a_default_fund_is_never_sponsor_held(own, held):
    make_gift(make_donor(), held, source="sponsor")
    settings = funds.fund_settings(held)
    with pytest.raises(funds.FundError, match="tax status cannot change"):
        funds.update_fund(
            held,
            slug=settings["slug"],
            name=settings["name"],
            description="",
            goal_cents=None,
            suggested_amounts={},
            active=True,
            is_default=False,
            show_progress=False,
            sponsor=None,
        )
    db.session.rollback()
    with pytest.raises(funds.FundError, match="default fund"):
        funds.create_fund(slug="other", name="Other", is_default=True, sponsor=SPONSOR)
    with pytest.raises(funds.FundError, match="EIN"):
        funds.create_fund(slug="other", name="Other", sponsor=funds.Sponsor("S", "123456789"))
