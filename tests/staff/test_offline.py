"""Checks by mail, cash and other offline gifts: single entry and batches. They count in the
ledger and in fund totals like online gifts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.ledger import funds
from donations.ledger.models import Donor, Gift, GiftStatus
from donations.mail.models import OutboxMessage
from donations.staff import dashboard
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def finance(client):
    user = make_staff("finance")
    sign_in(client, user)
    return user


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def today() -> date:
    return local_date(utcnow())


def post_single(client, **fields):
    token = csrf_token(client, "/staff/offline/new")
    return client.post("/staff/offline/new", data={"csrf_token": token, **fields})


def batch_rows(*rows: dict[str, str]) -> dict[str, str]:
    data = {}
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"rows-{index}-{key}"] = value
    return data


def post_batch(client, fund, received_on: date, *rows: dict[str, str], send_receipt: bool = True):
    token = csrf_token(client, "/staff/offline/batch")
    data = {"csrf_token": token, "fund": fund.id, "received_on": received_on.isoformat(), **batch_rows(*rows)}
    if send_receipt:
        data["send_receipt"] = "y"
    return client.post("/staff/offline/batch", data=data)


def test_a_check_from_a_new_donor_without_email(client, finance):
    fund = make_fund("general", goal_cents=100_000)
    received = today() - timedelta(days=1)
    response = post_single(
        client,
        name="Ruth Mailer",
        address_line1="12 Elm St",
        city="Oakland",
        region="CA",
        postal_code="94610",
        source="check",
        amount="150.00",
        fund=fund.id,
        received_on=received.isoformat(),
        check_number="1042",
        postmarked_on=(received - timedelta(days=2)).isoformat(),
        send_receipt="y",
    )
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    gift = db.session.scalars(select(Gift)).one()
    assert (gift.source, gift.status, gift.amount_cents, gift.check_number) == ("check", "paid", 15000, "1042")
    assert gift.postmarked_on == received - timedelta(days=2)
    assert local_date(gift.received_at) == received
    assert gift.tax_deductible is False and gift.frequency == "one_time"
    donor = gift.donor
    assert (donor.name, donor.address_line1, donor.city, donor.postal_code) == (
        "Ruth Mailer",
        "12 Elm St",
        "Oakland",
        "94610",
    )
    assert donor.email.endswith("@no-email.invalid")
    assert count(OutboxMessage) == 0  # nobody to email
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.target_id, entry.staff_user_id) == ("gift.offline_create", str(gift.id), finance.id)
    assert entry.details["check_number"] == "1042"
    assert funds.raised_by_fund()[fund.id] == 15000


def test_a_check_from_a_known_email_goes_to_that_donor_with_a_receipt(client, finance):
    fund = make_fund()
    donor = make_donor("Known@Example.org", name="Known Donor")
    response = post_single(
        client,
        email="known@example.org",
        source="check",
        amount="40",
        fund=fund.id,
        received_on=today().isoformat(),
        check_number="77",
        send_receipt="y",
    )
    assert response.status_code == 303
    gift = db.session.scalars(select(Gift)).one()
    assert gift.donor_id == donor.id
    message = db.session.scalars(select(OutboxMessage)).one()
    assert (message.kind, message.context, message.to_address) == (
        "gift_receipt",
        {"gift_id": gift.id},
        "Known@Example.org",
    )


def test_cash_for_an_existing_donor_by_number_follows_a_merge(client, finance):
    fund = make_fund()
    kept, duplicate = make_donor(), make_donor()
    duplicate.merged_into_id = kept.id
    db.session.commit()
    page = client.get(f"/staff/offline/new?donor_id={duplicate.id}").get_data(as_text=True)
    assert f'value="{duplicate.id}"' in page
    response = post_single(
        client, donor_id=duplicate.id, source="cash", amount="20", fund=fund.id, received_on=today().isoformat()
    )
    assert response.status_code == 303
    assert db.session.scalars(select(Gift)).one().donor_id == kept.id


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "check"}, "A check needs its check number."),
        ({"source": "cash", "check_number": "5"}, "Only checks have a check number"),
        ({"source": "check", "check_number": "5", "received_on": "2999-01-01"}, "cannot be in the future"),
        ({"source": "check", "check_number": "5", "postmarked_on": "2999-01-01"}, "postmark cannot be later"),
        ({"source": "check", "check_number": "5", "amount": "0"}, "more than zero"),
        ({"source": "check", "check_number": "5", "amount": "12.345"}, "Enter an amount in dollars"),
        # Issue 13, finding 4: a decimal comma on a staff form too ("20,5" was $205.00).
        ({"source": "check", "check_number": "5", "amount": "20,5"}, "Use a period for cents, like 20.50."),
        ({"source": "check", "check_number": "5", "amount": "1,00"}, "Use a period for cents, like 20.50."),
        ({"source": "stripe", "check_number": "5"}, "Not a valid choice"),
        ({"source": "check", "check_number": "5", "name": ""}, "Give the donor's name or email"),
        ({"source": "check", "check_number": "5", "donor_id": "999999"}, "There is no donor #999999"),
        ({"source": "check", "check_number": "5", "tribute_kind": "honor"}, "Name the person"),
        ({"source": "cash", "vehicle": "church"}, "Not a valid choice"),
        ({"source": "cash", "fair_market_value": "30"}, "between zero and the amount"),
    ],
)
def test_bad_offline_gifts_are_refused_and_write_nothing(client, finance, fields, message):
    fund = make_fund()
    data = {"name": "Someone", "amount": "25", "fund": fund.id, "received_on": today().isoformat(), **fields}
    response = post_single(client, **data)
    assert response.status_code == 400
    assert message in page_text(response.get_data(as_text=True))
    assert count(Gift) == 0 and count(AuditEntry) == 0
    assert count(Donor) == 0


def test_a_batch_of_two_checks_counts_in_the_ledger_and_the_fund(client, finance):
    fund = make_fund("forums", goal_cents=500_000)
    day = today()  # once: a run across local midnight must not split the batch from the totals
    earlier = make_gift(make_donor(), fund, 10_000)
    before = dashboard.period_totals(day)[0]
    response = post_batch(
        client,
        fund,
        day,
        {
            "name": "Ada Check",
            "postal_code": "94110",
            "check_number": "101",
            "postmarked_on": day.isoformat(),
            "amount": "50",
        },
        {"email": "bo@example.org", "name": "Bo", "check_number": "7", "amount": "1,200.50"},
        {},  # a blank row is skipped
    )
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    assert response.location == "/staff/gifts?source=check"
    checks = db.session.scalars(select(Gift).where(Gift.source == "check").order_by(Gift.id)).all()
    assert [(g.check_number, g.amount_cents) for g in checks] == [("101", 5000), ("7", 120050)]
    assert all(local_date(g.received_at) == day and g.status == GiftStatus.PAID for g in checks)
    assert funds.raised_by_fund()[fund.id] == earlier.amount_cents + 5000 + 120050
    after = dashboard.period_totals(day)[0]
    assert after.gifts == before.gifts + 2
    assert after.gross_cents == before.gross_cents + 125050
    listed = page_text(client.get("/staff/gifts?source=check").get_data(as_text=True))
    assert "$1,200.50" in listed and "Ada Check" in listed
    actions = list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == ["gift.offline_create", "gift.offline_create", "gift.offline_batch"]
    batch = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "gift.offline_batch")).one()
    assert batch.details == {"gift_ids": [g.id for g in checks], "count": 2, "total_cents": 125050}
    assert count(OutboxMessage) == 1  # only Bo gave an email address


def test_a_batch_with_one_bad_row_records_nothing(client, finance):
    fund = make_fund()
    response = post_batch(
        client,
        fund,
        today(),
        {"name": "Fine Row", "check_number": "1", "amount": "10"},
        {"name": "No Number", "amount": "20"},
    )
    assert response.status_code == 400
    assert "Row 2: A check needs its check number." in page_text(response.get_data(as_text=True))
    assert count(Gift) == 0 and count(Donor) == 0 and count(AuditEntry) == 0


def test_a_row_without_an_amount_is_pointed_out(client, finance):
    response = post_batch(client, make_fund(), today(), {"name": "Forgot", "check_number": "9"})
    assert response.status_code == 400
    assert "Enter the amount." in page_text(response.get_data(as_text=True))
    assert count(Gift) == 0


def test_an_empty_batch_is_refused(client, finance):
    response = post_batch(client, make_fund(), today())
    assert response.status_code == 400
    assert "The batch is empty" in page_text(response.get_data(as_text=True))


def test_the_same_check_is_never_recorded_twice(client, finance):
    fund = make_fund()
    day = today()  # the same check on the same day, even across local midnight
    row = {"email": "twice@example.org", "name": "Twice", "check_number": "555", "amount": "75"}
    assert post_batch(client, fund, day, row).status_code == 303
    again = post_batch(client, fund, day, row)
    assert again.status_code == 400
    assert "already recorded" in page_text(again.get_data(as_text=True))
    in_one_batch = post_batch(client, fund, day, {**row, "check_number": "556"}, {**row, "check_number": "556"})
    assert in_one_batch.status_code == 400
    assert count(Gift) == 1


def edna_check(**changes: str) -> dict[str, str]:
    """Issue 13, finding 3: a check from a donor who gave no email address."""
    postmark = today() - timedelta(days=8)
    return {
        "name": "Edna NoEmail",
        "postal_code": "97205",
        "source": "check",
        "check_number": "2001",
        "amount": "1,200.00",
        "postmarked_on": postmark.isoformat(),
        "received_on": today().isoformat(),
        **changes,
    }


def test_a_check_without_an_email_is_never_recorded_twice(client, finance):
    """Issue 13, finding 3: check 2001, $1,200.00, "Edna NoEmail", no email, entered twice,
    became gifts #19 and #20, both counted. Without an email the donor is her name (case-folded)
    and postal code."""
    fund = make_fund()
    first = post_single(client, fund=fund.id, **edna_check())
    assert first.status_code == 303, page_text(first.get_data(as_text=True))
    gift = db.session.scalars(select(Gift)).one()

    for repeat in (edna_check(), edna_check(name="  EDNA   noemail ", postal_code="97205 ")):
        again = post_single(client, fund=fund.id, **repeat)
        assert again.status_code == 400
        assert f"already recorded: gift #{gift.id}" in page_text(again.get_data(as_text=True))
    # In a batch too, alone or twice in one batch.
    row = {k: v for k, v in edna_check().items() if k not in ("source", "received_on")}
    in_batch = post_batch(client, fund, today(), row)
    assert in_batch.status_code == 400
    assert (
        f"Row 1: Check 2001 for this amount and postmark from Edna NoEmail is already recorded: gift #{gift.id}."
        in (page_text(in_batch.get_data(as_text=True)))
    )
    twice = post_batch(client, fund, today(), {**row, "check_number": "2002"}, {**row, "check_number": "2002"})
    assert twice.status_code == 400
    assert "Row 2: Check 2002" in page_text(twice.get_data(as_text=True))
    assert count(Gift) == 1
    assert funds.raised_by_fund()[fund.id] == 120_000

    # Another check: another number, amount, postmark, or another person of the same name.
    for other in (
        edna_check(check_number="2003"),
        edna_check(amount="1,200.01"),
        edna_check(postmarked_on=(today() - timedelta(days=9)).isoformat()),
        edna_check(postal_code="10001"),
    ):
        assert post_single(client, fund=fund.id, **other).status_code == 303
    assert count(Gift) == 5


def test_the_same_check_from_an_email_donor_is_refused_whatever_the_form(client, finance):
    fund = make_fund()
    check = edna_check(email="Edna@Example.org")
    assert post_single(client, fund=fund.id, **check).status_code == 303
    gift = db.session.scalars(select(Gift)).one()
    # The same email in another case, another name: the same donor, the same check.
    again = post_single(client, fund=fund.id, **{**check, "email": "edna@example.ORG", "name": "E. N."})
    assert again.status_code == 400
    assert f"gift #{gift.id}" in page_text(again.get_data(as_text=True))
    assert count(Gift) == 1


def test_offline_gifts_are_dated_inside_their_local_day(app):
    from donations.ledger.offline import received_at_for

    for day in (date(2026, 3, 8), date(2026, 11, 1), date(2026, 12, 31)):  # DST changes, year end
        moment = received_at_for(day)
        assert local_date(moment) == day
        assert moment.astimezone(UTC) > datetime(day.year, day.month, day.day, tzinfo=UTC)


def test_the_vehicle_and_fair_market_value_of_an_offline_gift(client, finance):
    fund = make_fund()
    common = {"source": "cash", "amount": "100", "fund": fund.id, "received_on": today().isoformat()}
    assert (
        post_single(client, name="A", vehicle="donor_advised_fund", fair_market_value="40", **common).status_code == 303
    )
    assert post_single(client, name="B", organization="Corner Bakery", **common).status_code == 303
    assert post_single(client, name="C", **common).status_code == 303
    gifts = db.session.scalars(select(Gift).order_by(Gift.id)).all()
    assert [(g.vehicle, g.fair_market_value_cents) for g in gifts] == [
        ("donor_advised_fund", 4_000),
        ("business", None),  # an organization named and no vehicle chosen: a business's gift
        ("personal", None),
    ]
