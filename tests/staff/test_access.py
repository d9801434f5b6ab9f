"""Who may reach what: every console view, for every role, signed out, and without a CSRF token.

The tables are checked against the app's url map, so a new staff view fails here until its
roles are declared, and every POST under /staff (whichever area serves it) must carry a token.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.routing import Rule

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.grants import service as grants
from donations.grants.models import ProgramSettings
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.payments.models import GiftSourceRule
from donations.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests.factories import make_donor, make_fund, make_gift
from tests.forms import csrf_token
from tests.grants.support import make_pledge
from tests.staff.support import make_staff, sign_in

ALL = ("admin", "finance", "viewer")
MONEY = ("admin", "finance")
ADMIN = ("admin",)

# The roles allowed on each view under /staff, whichever area serves it (any method it answers),
# as its `role_required` declares.
ACCESS: dict[str, tuple[str, ...]] = {
    "staff.dashboard": ALL,
    "staff.gifts": ALL,
    "staff.gifts_export": MONEY,
    "staff.gift": ALL,
    "staff.gift_refund": MONEY,
    "staff.gift_designation": MONEY,
    "staff.donors": ALL,
    "staff.donors_export": MONEY,
    "staff.members_mailchimp": MONEY,
    "staff.donor": ALL,
    "staff.donor_merge": MONEY,
    "staff.donor_edit": MONEY,
    "staff.offline_gift": MONEY,
    "staff.offline_batch": MONEY,
    "staff.funds": ALL,
    "staff.fund_new": ADMIN,
    "staff.fund_edit": ADMIN,
    "embed_staff.snippets": ALL,
    "campaigns_staff.report": ALL,
    "campaigns_staff.export": MONEY,
    "staff.look": ADMIN,
    "staff.audit": MONEY,
    "staff.users": ADMIN,
    "staff.user_new": ADMIN,
    "staff.user_role": ADMIN,
    "staff.user_deactivate": ADMIN,
    "staff.user_activate": ADMIN,
    "staff.user_reset_password": ADMIN,
    "staff.user_reset_two_factor": ADMIN,
    "staff.account": ALL,
    "staff.password": ALL,
    "staff.two_factor": ALL,
    "staff.two_factor_start": ALL,
    "staff.two_factor_confirm": ALL,
    "staff.two_factor_off": ALL,
    "operations.schedule_runs": ALL,
    "payments_staff.failed_events": ALL,
    "payments_staff.retry_event": MONEY,
    "payments_staff.disputes": ALL,
    "payments_staff.gift_sources": ADMIN,
    "payments_staff.history_csv": MONEY,
    "payments_staff.gift_source_add": ADMIN,
    "payments_staff.gift_source_remove": ADMIN,
    "receipts_staff.outbox": MONEY,
    "receipts_staff.resend": MONEY,
    "receipts_staff.statement_years": ALL,
    "receipts_staff.statement": ALL,
    "receipts_staff.email_statement": MONEY,
    "privacy.privacy_page": ADMIN,
    "privacy.export": ADMIN,
    "privacy.erase": ADMIN,
    "grants.programs": ALL,
    "grants.program": ALL,
    "grants.program_new": MONEY,
    "grants.program_edit": MONEY,
    "grants.report": ALL,
    "grants.export": MONEY,
    "grants.runs": ALL,
    "grants.run": ALL,
    "grant_packets.pledge_new": MONEY,
    "grant_packets.pledge_document": MONEY,
    "grant_packets.pledge_remove": MONEY,
    "grant_packets.packet_new": MONEY,
    "grant_packets.packet_download": MONEY,
    "grant_packets.link_new": MONEY,
    "grant_packets.link_revoke": MONEY,
    "webhooks_staff.endpoints": ADMIN,
    "webhooks_staff.create": ADMIN,
    "webhooks_staff.endpoint": ADMIN,
    "webhooks_staff.rotate": ADMIN,
    "webhooks_staff.delete": ADMIN,
    "webhooks_staff.resend": ADMIN,
}
# Open without a session: signing in, and signing out.
PUBLIC = {"staff.login", "staff.login_code", "staff.logout"}


def staff_rules(app: Flask) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/staff")]


def rule_for(app: Flask, endpoint: str) -> Rule:
    (rule,) = [rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint]
    return rule


def path_of(rule: Rule, ids: dict[str, int | str]) -> str:
    """The rule's path with the ids of real rows, and any well-formed value for a parameter
    without one (authentication and CSRF are decided before a view looks anything up)."""
    values: dict[str, object] = {}
    for name in rule.arguments:
        converter = type(rule._converters[name]).__name__
        values[name] = ids.get(name, 1) if converter == "IntegerConverter" else ids.get(name, "x")
    return rule.build(values, append_unknown=False)[1]


@pytest.fixture
def ids(app: Flask, tmp_path: Path) -> dict[str, int | str]:
    fund = make_fund("general", is_default=True)
    donor = make_donor("donor@example.org", name="Dee Donor")
    gift = make_gift(donor, fund, 5000, stripe_payment_intent_id="pi_local_access")
    other = make_staff("viewer")
    message = OutboxMessage(
        kind="magic_link", to_address=donor.email, context={}, status=OutboxStatus.PARKED, attempts=4
    )
    db.session.add(message)
    program = grants.create_program(
        ProgramSettings(name="Access", slug="access", first_day=date(2026, 1, 1), last_day=date(2026, 12, 31)),
        actor="test",
    )
    run = grants.export_to_file(program, "summary", "csv", tmp_path / "summary.csv", actor="test")
    pledge = make_pledge(program)
    source = GiftSourceRule(kind="payment_link", value="plink_access", created_by="test")
    db.session.add(source)
    endpoint = WebhookEndpoint(url="https://hooks.example.org/a", event_types=["gift.recorded"], secret="whsec_x")
    event = WebhookEvent(public_id="evt_access", type="gift.recorded", body="{}", dedupe_key="access")
    db.session.add(WebhookDelivery(event=event, endpoint=endpoint, status=DeliveryStatus.PARKED))
    db.session.commit()
    delivery_id = db.session.scalars(select(WebhookDelivery.id)).one()
    return {
        "source_id": source.id,
        "gift_id": gift.id,
        "donor_id": donor.id,
        "fund_id": fund.id,
        "user_id": other.id,
        "year": 2026,
        "message_id": message.id,
        "slug": program.slug,
        "kind": "summary",
        "run_id": run.id,
        "pledge_id": pledge.id,
        "link_id": 1,  # none: access is decided before the link is looked up
        "endpoint_id": endpoint.id,
        "delivery_id": delivery_id,
    }


def test_every_staff_view_has_declared_roles(app):
    """Every rule under /staff, of every area: a new one fails here until its roles are declared."""
    assert {rule.endpoint for rule in staff_rules(app)} == set(ACCESS) | PUBLIC


@pytest.mark.parametrize("role", ALL)
@pytest.mark.parametrize("endpoint", sorted(ACCESS))
def test_each_view_allows_its_roles_and_refuses_the_others(app, client, ids, endpoint, role):
    sign_in(client, make_staff(role))
    token = csrf_token(client, "/staff/account")
    rule = rule_for(app, endpoint)
    path = path_of(rule, ids)
    for method in sorted(rule.methods & {"GET", "POST"}):
        # POST: a valid token and an empty form; access is decided before the form is read.
        response = client.get(path) if method == "GET" else client.post(path, data={"csrf_token": token})
        if role in ACCESS[endpoint]:
            assert response.status_code != 403, (method, path, role)
            assert "/staff/sign-in" not in (response.location or ""), (method, path, role)
            assert response.status_code < 500, (method, path, role)
        else:
            assert response.status_code == 403, (method, path, role, response.status_code)


def test_every_staff_page_sends_a_signed_out_visitor_to_sign_in(app, client, ids):
    """Every /staff route of every area, not only ours."""
    token = csrf_token(client, "/staff/sign-in")
    checked = 0
    for rule in staff_rules(app):
        if rule.endpoint in PUBLIC or rule.endpoint == "static":
            continue
        path = path_of(rule, ids)
        for method in sorted(rule.methods & {"GET", "POST"}):
            response = client.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
            assert response.status_code == 302, (method, path, response.status_code)
            assert response.location.startswith("/staff/sign-in?next="), (method, path, response.location)
            checked += 1
    assert checked >= len(ACCESS)


def test_every_staff_post_is_refused_without_a_csrf_token(app, client, ids):
    """Every POST under /staff, of every area, signed in as an admin (who may do anything)."""
    sign_in(client, make_staff("admin"))
    before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    posts = [rule for rule in staff_rules(app) if "POST" in rule.methods]
    assert {"staff.login", "staff.logout", "staff.gift_refund", "staff.offline_batch"} <= {r.endpoint for r in posts}
    for rule in posts:
        path = path_of(rule, ids)
        response = client.post(path, data={"amount": "1", "reason": "csrf probe", "role": "viewer"})
        assert response.status_code == 400, (path, response.status_code)
        assert "form expired" in response.get_data(as_text=True), path
        wrong = client.post(path, data={"csrf_token": "not-the-token", "reason": "csrf probe"})
        assert wrong.status_code == 400, path
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_there_is_no_way_to_edit_or_delete_audit_entries(app):
    for rule in app.url_map.iter_rules():
        assert not (rule.methods & {"PUT", "PATCH", "DELETE"}) or not rule.rule.startswith("/staff"), rule
        if rule.rule.startswith("/staff/audit"):
            assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule
