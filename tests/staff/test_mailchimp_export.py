"""Members as Mailchimp's audience import expects them: Email Address, First Name, Last Name and
Tags (level, status, frequency), one row per member, opening in a spreadsheet as a plain CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy import select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.models import Membership, MembershipStatus
from tests.factories import make_donor, make_fund
from tests.staff.support import make_staff, sign_in


def _membership(donor, fund, amount_cents, interval, status, number):
    db.session.add(
        Membership(
            donor_id=donor.id,
            fund_id=fund.id,
            stripe_subscription_id=f"sub_{number}",
            amount_cents=amount_cents,
            interval=interval,
            status=status,
            started_at=datetime(2026, 1, number, tzinfo=UTC),
        )
    )
    db.session.commit()


def test_the_members_export_has_mailchimps_columns_and_tags(client):
    sign_in(client, make_staff("finance"))
    fund = make_fund("general")
    ana = make_donor("ana@example.org", name="Ana María López")
    _membership(ana, fund, 1000, "month", MembershipStatus.CANCELED, 1)
    _membership(ana, fund, 6000, "month", MembershipStatus.ACTIVE, 2)  # the live one tags her
    bo = make_donor("bo@example.org", name="Bo")
    _membership(bo, fund, 6000, "year", MembershipStatus.PAST_DUE, 3)
    quiet = make_donor("quiet@example.org", name="No Email Please")
    quiet.contact_by_email = False
    db.session.commit()
    _membership(quiet, fund, 1000, "month", MembershipStatus.ACTIVE, 4)
    make_donor("never@example.org", name="Not A Member")
    _membership(make_donor("pending@example.org"), fund, 1000, "month", MembershipStatus.INCOMPLETE, 5)

    response = client.get("/staff/members/mailchimp.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="members-mailchimp-' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["Email Address", "First Name", "Last Name", "Tags"]
    assert rows[1:] == [
        ["ana@example.org", "Ana", "María López", "Member,Champion level,Active member,Monthly"],
        ["bo@example.org", "Bo", "", "Member,Supporter level,Payment overdue,Annual"],
    ]
    entry = db.session.scalars(select(AuditEntry)).one()
    assert entry.action == "members.export" and entry.details["format"] == "mailchimp csv"


def test_viewers_cannot_export_members(client):
    sign_in(client, make_staff("viewer"))
    assert client.get("/staff/members/mailchimp.csv").status_code == 403
    assert db.session.scalars(select(Membership)).all() == []
