"""Funds: created and edited by admins (audited with before and after), and the public progress
bar on a fund's gift page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger import funds
from donations.ledger.models import Fund, Gift, GiftStatus, Reversal
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token, page_text
from tests.staff.support import make_staff, sign_in


@pytest.fixture
def admin(client):
    user = make_staff("admin")
    sign_in(client, user)
    return user


FORUMS = {
    "name": "Community Forums",
    "slug": "forums",
    "description": "Open forums in every neighborhood.",
    "goal": "25,000",
    "one_time": "25, 50, 100",
    "monthly": "5, 10",
    "annual": "",
    "active": "y",
    "show_progress": "y",
}


def post_fund(client, path: str, **fields):
    token = csrf_token(client, path)
    return client.post(path, data={"csrf_token": token, **{k: v for k, v in fields.items() if v is not None}})


def test_an_admin_creates_a_fund(client, admin):
    response = post_fund(client, "/staff/funds/new", **FORUMS)
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    fund = db.session.scalars(select(Fund)).one()
    assert (fund.slug, fund.name, fund.goal_cents, fund.active, fund.show_progress) == (
        "forums",
        "Community Forums",
        2_500_000,
        True,
        True,
    )
    assert fund.suggested_amounts == {"one_time": [2500, 5000, 10000], "monthly": [500, 1000]}
    entry = db.session.scalars(select(AuditEntry)).one()
    assert (entry.action, entry.target_id, entry.staff_user_id) == ("fund.create", str(fund.id), admin.id)
    assert entry.details["after"]["slug"] == "forums"
    assert client.get("/give/forums").status_code == 200


def test_editing_a_fund_is_audited_with_before_and_after(client, admin):
    fund = make_fund("forums", name="Forums", goal_cents=100_000, suggested_amounts={"one_time": [2500]})
    form = client.get(f"/staff/funds/{fund.id}").get_data(as_text=True)
    assert 'value="1000.00"' in form and 'value="25"' in form
    response = post_fund(
        client, f"/staff/funds/{fund.id}", **{**FORUMS, "name": "Forums 2027", "goal": "150000", "active": None}
    )
    assert response.status_code == 303, page_text(response.get_data(as_text=True))
    db.session.expire_all()
    fund = db.session.get(Fund, fund.id)
    assert (fund.name, fund.goal_cents, fund.active) == ("Forums 2027", 15_000_000, False)
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "fund.edit")).one()
    assert entry.details["before"]["name"] == "Forums" and entry.details["after"]["name"] == "Forums 2027"
    assert entry.details["before"]["goal_cents"] == 100_000 and entry.details["after"]["active"] is False
    assert client.get("/give/forums").status_code == 404  # inactive: closed for gifts


def test_saving_without_a_change_is_refused(client, admin):
    fund = make_fund("forums", name="Forums")
    response = post_fund(client, f"/staff/funds/{fund.id}", name="Forums", slug="forums", active="y")
    assert response.status_code == 400
    assert "Nothing changed" in page_text(response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_making_a_fund_the_default_unsets_the_old_default(client, admin):
    old = make_fund("general", is_default=True)
    new = make_fund("forums", name="Forums")
    response = post_fund(client, f"/staff/funds/{new.id}", name="Forums", slug="forums", active="y", is_default="y")
    assert response.status_code == 303
    db.session.expire_all()
    assert (db.session.get(Fund, old.id).is_default, db.session.get(Fund, new.id).is_default) == (False, True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slug": "Not A Slug"}, "lowercase letters"),
        ({"slug": "thanks"}, "lowercase letters"),
        ({"slug": "taken"}, "already exists"),
        ({"goal": "", "show_progress": "y"}, "A progress bar needs a goal"),
        ({"goal": "-5"}, "Enter an amount"),
        ({"one_time": "25, lots"}, "Enter an amount"),
        ({"name": ""}, "Name the fund"),
    ],
)
def test_bad_funds_are_refused(client, admin, fields, message):
    make_fund("taken")
    response = post_fund(client, "/staff/funds/new", **{**FORUMS, **fields})
    assert response.status_code == 400
    assert message in page_text(response.get_data(as_text=True))
    assert db.session.scalar(select(func.count()).select_from(Fund)) == 1


def test_the_gift_page_shows_money_raised_net_of_reversals_toward_the_goal(client):
    fund = make_fund("forums", goal_cents=1_000_000, show_progress=True)
    donor = make_donor()
    make_gift(donor, fund, 300_000)
    refunded = make_gift(donor, fund, 100_000, status=GiftStatus.PARTIALLY_REFUNDED)
    db.session.add(Reversal(gift_id=refunded.id, kind="refund", amount_cents=50_000, reversed_at=datetime.now(UTC)))
    db.session.add(Gift(donor=donor, fund=fund, amount_cents=999_900, status=GiftStatus.PENDING, tax_deductible=False))
    make_gift(donor, make_fund("other"), 700_000)  # another fund's money
    db.session.commit()
    assert funds.raised_by_fund([fund.id]) == {fund.id: 350_000}
    page = client.get("/give/forums").get_data(as_text=True)
    assert "$3,500 raised toward our $10,000 goal" in page_text(page)
    assert '<progress id="fund-progress" max="1000000" value="350000">35%</progress>' in page


def test_no_progress_bar_unless_the_fund_shows_one(client):
    fund = make_fund("quiet", goal_cents=1_000_000, show_progress=False)
    make_gift(make_donor(), fund, 5000)
    assert "raised toward" not in client.get("/give/quiet").get_data(as_text=True)


def test_the_funds_list_shows_raised_and_goal(client):
    sign_in(client, make_staff("viewer"))
    fund = make_fund("forums", name="Forums", goal_cents=20_000)
    make_gift(make_donor(), fund, 5000)
    page = client.get("/staff/funds").get_data(as_text=True)
    text = page_text(page)
    assert "Forums /give/forums · Embed Forums $50.00 $200.00 25%" in text
    assert f'href="/staff/funds/{fund.id}"' not in page  # viewers cannot edit
