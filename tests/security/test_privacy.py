"""Privacy requests: an administrator downloads everything held about a donor, or erases their
personal data; the financial ledger stays whole. Both are audited; neither leaks into logs."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.ledger.donors import merge
from donations.ledger.models import Donor, Gift, Reversal
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.payments.models import StripeEvent
from donations.privacy import service as privacy
from tests import stripe_events as se
from tests.factories import make_donor, make_gift
from tests.forms import extract_csrf_token
from tests.security.support import browser, signed_in

EMAIL = "Pat.Private@Example.org"


@pytest.fixture
def donor_with_history(app, fund, webhook_secret):
    """A donor known from a Stripe event (which stores their email and name) and from the gift
    form (a tribute, an organization gift), with a sent receipt and one still queued."""
    session = se.checkout_session(amount_cents=7_500, email=EMAIL, name="Pat Private", business_name="Pat's Bakery LLC")
    assert (
        se.post_event(browser(app), se.event("checkout.session.completed", session), webhook_secret).status_code == 200
    )
    donor = db.session.scalars(select(Donor)).one()
    donor.address_line1, donor.city, donor.postal_code = "1 Secret Lane", "Springfield", "94110"
    make_gift(
        donor,
        fund,
        2_500,
        tribute_kind="memory",
        tribute_name="Grandma Private",
        attribution={"referrer": "https://mail.example/?u=pat", "utm_source": "newsletter"},
    )
    db.session.execute(
        OutboxMessage.__table__.update().values(status=OutboxStatus.SENT)  # the receipt went out
    )
    db.session.add(
        OutboxMessage(
            kind="annual_statement", to_address=EMAIL, context={"donor_id": donor.id, "year": 2026}, donor_id=donor.id
        )
    )
    db.session.commit()
    return donor


def ledger_totals() -> tuple[int, int, int]:
    return (
        db.session.scalar(select(func.count()).select_from(Gift)),
        db.session.scalar(select(func.coalesce(func.sum(Gift.amount_cents), 0))),
        db.session.scalar(select(func.coalesce(func.sum(Reversal.amount_cents), 0))),
    )


def audit_actions() -> list[tuple[str, str | None, dict]]:
    return [(a.action, a.target_id, a.details) for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def post_form(client, page_url: str, action_url: str, **data: str):
    page = client.get(page_url)
    assert page.status_code == 200
    return client.post(action_url, data={"csrf_token": extract_csrf_token(page.get_data(as_text=True)), **data})


def test_an_administrator_downloads_everything_held_about_the_donor(app, donor_with_history):
    admin, user = signed_in(app, "admin")
    donor_id = donor_with_history.id
    donor_page = admin.get(f"/staff/donors/{donor_id}").get_data(as_text=True)
    assert f'href="/staff/donors/{donor_id}/privacy"' in donor_page
    response = post_form(admin, f"/staff/donors/{donor_id}/privacy", f"/staff/donors/{donor_id}/privacy/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="donor-{donor_id}-personal-data.json"'
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.get_data(as_text=True))
    assert data["donor"]["email"] == EMAIL
    assert data["donor"]["name"] == "Pat Private"
    assert data["donor"]["address_line1"] == "1 Secret Lane"
    assert sorted(g["amount_cents"] for g in data["gifts"]) == [2_500, 7_500]
    assert {g["tribute_name"] for g in data["gifts"]} == {None, "Grandma Private"}
    assert {g["tax_deductible"] for g in data["gifts"]} == {False}
    assert sorted(m["kind"] for m in data["emails"]) == ["annual_statement", "gift_receipt"]
    assert audit_actions() == [("donor.privacy_export", str(donor_id), {})]
    assert db.session.scalars(select(AuditEntry)).one().staff_user_id == user.id


@pytest.mark.parametrize("role", ["finance", "viewer"])
def test_only_administrators_may(app, donor_with_history, role):
    staff, _user = signed_in(app, role)
    donor_id = donor_with_history.id
    assert staff.get(f"/staff/donors/{donor_id}/privacy").status_code == 403
    assert staff.post(f"/staff/donors/{donor_id}/privacy/erase", data={"confirm": "ERASE"}).status_code in (400, 403)
    anonymous = browser(app)
    assert anonymous.get(f"/staff/donors/{donor_id}/privacy").status_code == 302
    assert db.session.get(Donor, donor_id).erased_at is None
    assert audit_actions() == []


def test_erasure_anonymizes_the_person_and_keeps_the_ledger(app, donor_with_history, caplog):
    caplog.set_level(logging.DEBUG)
    admin, _user = signed_in(app, "admin")
    donor_id = donor_with_history.id
    before = ledger_totals()
    page = f"/staff/donors/{donor_id}/privacy"

    refused = post_form(admin, page, page + "/erase", confirm="erase please")
    assert refused.status_code == 400
    assert "Type ERASE in capitals" in refused.get_data(as_text=True)
    assert db.session.get(Donor, donor_id).erased_at is None

    response = post_form(admin, page, page + "/erase", confirm="ERASE")
    assert response.status_code == 302
    db.session.expire_all()
    donor = db.session.get(Donor, donor_id)
    assert (donor.email, donor.email_key) == (f"erased-{donor_id}@invalid",) * 2
    assert (donor.name, donor.organization, donor.address_line1, donor.city, donor.postal_code) == (None,) * 5
    assert donor.erased_at is not None

    assert ledger_totals() == before  # every gift and cent is still there
    gifts = db.session.scalars(select(Gift).order_by(Gift.amount_cents)).all()
    assert [g.tribute_name for g in gifts] == [None, None]
    assert [g.tribute_kind for g in gifts] == ["memory", None]
    assert gifts[1].organization == privacy.ERASED_ORGANIZATION  # still an organization's gift
    assert gifts[0].attribution == {"utm_source": "newsletter"}

    mail = {m.kind: m for m in db.session.scalars(select(OutboxMessage))}
    assert {m.to_address for m in mail.values()} == {f"erased-{donor_id}@invalid"}
    assert mail["annual_statement"].status == OutboxStatus.PARKED  # never sent now
    assert mail["gift_receipt"].status == OutboxStatus.SENT

    stored = json.dumps([e.payload for e in db.session.scalars(select(StripeEvent))]).lower()
    for personal in ("pat.private@example.org", "pat private", "pat's bakery", "pat\\u2019s bakery"):
        assert personal not in stored
    assert f"erased-{donor_id}@invalid" in stored

    [(action, target, details)] = audit_actions()
    assert (action, target) == ("donor.erase", str(donor_id))
    assert details == {
        "donor_ids": [donor_id],
        "gifts_kept": 2,
        "emails_withdrawn": 1,
        "stripe_events_scrubbed": 1,
        "webhook_events_withdrawn": 0,
    }
    assert "pat" not in caplog.text.lower()

    again = post_form(admin, page, page + "/erase", confirm="ERASE")
    assert again.status_code == 302
    assert "was already erased" in admin.get(page).get_data(as_text=True)


def test_giving_again_after_erasure_makes_a_new_donor(app, donor_with_history, webhook_secret):
    privacy.erase_donor(donor_with_history.id)
    db.session.commit()
    se.post_event(
        browser(app), se.event("checkout.session.completed", se.checkout_session(email=EMAIL)), webhook_secret
    )
    donors = db.session.scalars(select(Donor).order_by(Donor.id)).all()
    assert [d.email for d in donors] == [f"erased-{donors[0].id}@invalid", EMAIL]


def test_merged_duplicates_are_the_same_person_and_are_erased_too(app, fund):
    kept = make_donor("pat@example.org", name="Pat")
    duplicate = make_donor("pat.work@example.org", name="Patricia", postal_code="10001")
    make_gift(duplicate, fund, 1_000)
    merge(duplicate, kept)
    db.session.commit()
    exported = privacy.export_donor(duplicate.id)  # asking about the duplicate finds the person
    assert exported["donor"]["email"] == "pat@example.org"
    assert [d["email"] for d in exported["merged_donors"]] == ["pat.work@example.org"]
    assert [g["amount_cents"] for g in exported["gifts"]] == [1_000]

    done = privacy.erase_donor(kept.id)
    db.session.commit()
    assert done["donor_ids"] == [kept.id, duplicate.id]
    assert {d.email for d in db.session.scalars(select(Donor))} == {
        f"erased-{kept.id}@invalid",
        f"erased-{duplicate.id}@invalid",
    }
    assert db.session.scalar(select(Donor.postal_code).where(Donor.id == duplicate.id)) is None


def test_unknown_donor(app):
    with pytest.raises(privacy.PrivacyError):
        privacy.export_donor(987654)
    admin, _user = signed_in(app, "admin")
    assert admin.get("/staff/donors/987654/privacy").status_code == 404


def test_command_line(app, donor_with_history):
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["privacy", "export", str(donor_with_history.id)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["donor"]["email"] == EMAIL

    erased = runner.invoke(args=["privacy", "erase", str(donor_with_history.id), "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "2 gifts kept" in erased.output
    again = runner.invoke(args=["privacy", "erase", str(donor_with_history.id), "--yes"])
    assert again.exit_code == 1 and "already erased" in again.output
    assert [a for a, _t, _d in audit_actions()] == ["donor.privacy_export", "donor.erase"]
    assert {a.actor for a in db.session.scalars(select(AuditEntry))} == {f"cli:{__import__('getpass').getuser()}"}
