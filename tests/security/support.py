"""What the security tests share: clients from an address, signed-in clients, counts of gifts
and blocked attempts; and a small world of rows with hostile text in every field a donor or
Stripe controls, with the values to fill any route's URL arguments with, so that tests can walk
`app.url_map` and reach real pages (a donor that exists, a gift, a membership, a failed event, a
grant program...)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter, Rule

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.accounts.service import create_staff_user
from donations.clock import local_date, utcnow
from donations.extensions import db
from donations.ledger.models import Fund, Gift, GiftStatus, Membership, MembershipStatus
from donations.mail.models import OutboxMessage, OutboxStatus
from donations.payments.models import StripeEvent
from donations.protection import card_testing as protection
from donations.staff.views.account import SIGNED_IN_AT_KEY
from tests import forms
from tests.factories import make_donor, make_fund, make_gift

_numbers = itertools.count(1)


def browser(app: Flask, address: str = "127.0.0.1") -> FlaskClient:
    """A client whose requests come from `address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def csrf_token(client: FlaskClient, url: str = "/give") -> str:
    return forms.csrf_token(client, url)


def signed_in(app: Flask, role: str, email: str | None = None) -> tuple[FlaskClient, StaffUser]:
    """A client signed in (through Flask-Login's session keys) as a new staff user of `role`."""
    user = create_staff_user(email or f"{role}-{next(_numbers)}@newsroom.example", role, "correct horse battery staple")
    db.session.commit()
    client = browser(app)
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[SIGNED_IN_AT_KEY] = int(time.time())
    return client, user


def all_gifts() -> int:
    return db.session.scalar(select(func.count()).select_from(Gift))


def pending_gifts() -> int:
    return db.session.scalar(select(func.count()).select_from(Gift).where(Gift.status == GiftStatus.PENDING))


def blocked(reason: str) -> int:
    """Attempts blocked for `reason` in the last few minutes, as the dashboard reads them."""
    return protection.blocked_attempt_counts(utcnow() - timedelta(minutes=5)).get(reason, 0)


SCRIPT = '<script>alert("xss")</script>'
NAME = f"Mallory {SCRIPT}"
TRIBUTE = '<img src=x onerror=alert("tribute")>'
ORGANIZATION = '=HYPERLINK("http://evil.example","<b>Mallory LLC</b>")'
# What must never reach a page unescaped: any of these, verbatim.
RAW = (SCRIPT, "<img src=x", "<b>Mallory")


@dataclass
class World:
    fund: Fund
    url_values: dict[str, Any]


def build_world() -> World:
    fund = make_fund("community-forums", name="Community Forums", is_default=True)
    donor = make_donor("mallory@example.org", name=NAME, organization=ORGANIZATION)
    gift = make_gift(donor, fund, 5_000, tribute_kind="honor", tribute_name=TRIBUTE)
    make_gift(donor, fund, 2_500, organization=ORGANIZATION)
    pending = make_gift(donor, fund, 1_000, status=GiftStatus.PENDING, received_at=None)
    pending.stripe_checkout_session_id = "cs_local_world"
    membership = Membership(
        donor_id=donor.id,
        fund_id=fund.id,
        stripe_subscription_id="sub_world",
        stripe_customer_id="cus_world",
        amount_cents=1_000,
        interval="month",
        status=MembershipStatus.ACTIVE,
        started_at=utcnow(),
    )
    event = StripeEvent(
        id="evt_world",
        type="checkout.session.completed",
        created_at=utcnow(),
        payload={"id": "evt_world", "data": {"object": {"customer_details": {"name": NAME}}}},
        attempts=1,
        error=f"could not apply: {SCRIPT}",
    )
    message = OutboxMessage(
        kind="gift_receipt",
        to_address=donor.email,
        context={"gift_id": gift.id},
        donor_id=donor.id,
        status=OutboxStatus.PARKED,
        parked_at=utcnow(),
        attempts=10,
        last_error=f"550 {SCRIPT}",
    )
    db.session.add_all([membership, event, message])
    audit("test.hostile", actor="test", target_type="donor", target_id=donor.id, details={"name": NAME})
    db.session.commit()
    values: dict[str, Any] = {
        "fund_slug": fund.slug,
        "fund_id": fund.id,
        "donor_id": donor.id,
        "gift_id": gift.id,
        "session_id": pending.stripe_checkout_session_id,
        "membership_id": membership.id,
        "customer_id": membership.stripe_customer_id,
        "event_id": event.id,
        "message_id": message.id,
        "year": local_date(gift.received_at or utcnow()).year,
        "filename": "css/site.css",
        "kind": "donors",
        "token": "not-a-valid-token",
    }
    values.update(_grant_program())
    return World(fund=fund, url_values=values)


def _grant_program() -> dict[str, Any]:
    from donations.grants import service
    from donations.grants.models import ProgramSettings

    today = local_date(utcnow())
    program = service.create_program(
        ProgramSettings(
            name=f"Match {SCRIPT}",
            slug="match-world",
            first_day=today - timedelta(days=30),
            last_day=today + timedelta(days=30),
            notes=SCRIPT,
        ),
        actor="test",
    )
    db.session.commit()
    return {"slug": program.slug}


def url_for_rule(rule: Rule, values: dict[str, Any]) -> str:
    """The rule's URL with the world's values; arguments it does not know get a stand-in."""
    arguments = {}
    for name in rule.arguments:
        if name in values:
            arguments[name] = values[name]
        else:
            arguments[name] = 1 if isinstance(rule._converters[name], IntegerConverter) else "unknown"
    built = rule.build(arguments, append_unknown=False)
    assert built is not None, rule.rule
    return built[1]


def routes(app: Flask, method: str, prefix: str = "/") -> list[Rule]:
    return sorted(
        (rule for rule in app.url_map.iter_rules() if method in rule.methods and rule.rule.startswith(prefix)),
        key=lambda rule: rule.rule,
    )
