"""Random and hostile input (Hypothesis) against every public form in `app.url_map` and the
webhook: huge, Unicode, control characters, negative and non-numeric amounts, scripts. Never a
500, and nothing written; where the gift form accepts a hostile value (a name may contain "<"),
it stores exactly what was sent, and the pages escape it (test_escaping)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Gift
from donations.payments.handlers import handled_types
from tests import stripe_events as se
from tests.giving.support import gift_form
from tests.security.support import SCRIPT, browser, build_world, csrf_token, routes, url_for_rule

# Tables a refused request may still touch: the count of blocked attempts (no personal data).
COUNTERS = {"blocked_attempts"}

HOSTILE = [
    SCRIPT,
    '"><svg onload=alert(1)>',
    "'; DROP TABLE gifts; --",
    "-5",
    "-0.01",
    "0",
    "1e9",
    "NaN",
    "Infinity",
    "0x10",
    "\uff11\uff12\uff13",  # fullwidth digits
    "\u0663\u0660",  # Arabic-Indic digits
    "$5.00.00",
    "99999999999999999999999",
    "\x00",
    "\u202eevil",
    "\ud7ff\ufeff",
    "%s%s%n",
    "{{7*7}}",
    "../../etc/passwd",
    "a" * 100_000,
    "x" * 1_100_000,  # past the form size Werkzeug reads: refused before the view
]
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=31), max_size=20),
    st.integers().map(str),
    st.floats().map(str),
)
# Never a valid address: a form that needs one is refused, whatever else it holds.
not_an_email = hostile_text.filter(lambda text: "@" not in text)

FORM_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


class _FieldNames(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        name = dict(attrs).get("name")
        if tag in ("input", "select", "textarea", "button") and name:
            self.names.add(name)


def row_counts() -> dict[str, int]:
    return {
        table.name: db.session.scalar(select(func.count()).select_from(table))
        for table in db.metadata.sorted_tables
        if table.name not in COUNTERS
    }


@pytest.fixture
def world(app, monkeypatch):
    monkeypatch.setitem(app.config, "MAGIC_LINK_RATE_LIMIT", "10000 per minute")
    return build_world()


def public_post_routes(app) -> list[str]:
    return [rule.endpoint for rule in routes(app, "POST") if not rule.rule.startswith("/staff")]


def field_names(app, world) -> list[str]:
    """Every field the public pages' forms have, plus names no form has."""
    names = {"email", "name", "amount", "amount_choice", "custom_amount", "card_number", "frequency", "unexpected"}
    reader = browser(app)
    for rule in routes(app, "GET"):
        if not rule.rule.startswith("/staff"):
            parser = _FieldNames()
            parser.feed(reader.get(url_for_rule(rule, world.url_values)).get_data(as_text=True))
            names |= parser.names
    return sorted(names - {"csrf_token"})


def test_every_public_form_is_covered(app):
    # The list below is the routes this file attacks; a new public form shows up here.
    assert set(public_post_routes(app)) >= {"giving.give", "payments.local_checkout"}


def test_hostile_input_to_every_public_form(app, world):
    reader = browser(app, "198.51.100.20")
    token = csrf_token(reader)
    names = field_names(app, world)

    def attack_route(rule):
        @FORM_SETTINGS
        @given(fields=st.dictionaries(st.sampled_from(names), hostile_text, max_size=8), email=not_an_email)
        def attack(fields, email):
            before = row_counts()
            response = reader.post(
                url_for_rule(rule, world.url_values), data={**fields, "email": email, "csrf_token": token}
            )
            assert response.status_code < 500, (rule.rule, response.status_code)
            assert row_counts() == before, rule.rule

        attack()

    for rule in routes(app, "POST"):
        if rule.endpoint in public_post_routes(app):
            attack_route(rule)


def test_the_gift_form_with_some_hostile_fields(app, world):
    reader = browser(app, "198.51.100.21")
    token = csrf_token(reader)
    fields = sorted(set(gift_form(token)) - {"csrf_token"} | {"tribute_kind", "tribute_name", "organization"})

    @FORM_SETTINGS
    @given(overrides=st.dictionaries(st.sampled_from(fields), hostile_text, min_size=1, max_size=4))
    def attack(overrides):
        before = row_counts()
        form = gift_form(token, **overrides)
        response = reader.post("/give", data=form)
        assert response.status_code < 500
        if response.status_code != 303:
            assert row_counts() == before
            return
        # Accepted: it is a well-formed gift, and what was stored is what was sent.
        gift = db.session.scalars(select(Gift).order_by(Gift.id.desc()).limit(1)).one()
        assert 500 <= gift.amount_cents <= 2_500_000 + 100_000
        assert gift.tribute_name in (None, (form.get("tribute_name") or "").strip())
        assert gift.donor.email.casefold() in {form["email"].strip().casefold(), "mallory@example.org"}

    attack()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def ledger_counts() -> dict[str, int]:
    counts = row_counts()
    # Stored for staff, like the event itself: a payment that is not a gift is kept apart.
    return {name: count for name, count in counts.items() if name not in ("stripe_events", "not_gifts")}


def test_unsigned_or_badly_signed_webhook_input_is_refused(app, client, webhook_secret):
    @FORM_SETTINGS
    @given(
        body=st.binary(max_size=2_000) | json_values.map(lambda v: json.dumps(v).encode()),
        # What a client can put in a header: no line breaks, Latin-1.
        signature=st.none() | st.just("t=1,v1=deadbeef") | st.text(st.characters(min_codepoint=32, max_codepoint=255)),
    )
    def attack(body, signature):
        before = row_counts()
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        response = client.post("/stripe/webhook", data=body, headers=headers)
        # Past WEBHOOK_MAX_CONTENT_LENGTH the body is refused unread, before its signature.
        assert response.status_code == (413 if len(body) > app.config["WEBHOOK_MAX_CONTENT_LENGTH"] else 400)
        assert row_counts() == before

    attack()


def test_signed_but_hostile_events_never_fail_the_server(app, client, webhook_secret, world):
    types = [*handled_types(), "unknown.event"]

    keys = st.text(max_size=20) | st.sampled_from(["id", "metadata", "customer_details", "amount_total", "mode"])

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        event_type=st.sampled_from(types),
        obj=st.dictionaries(keys, json_values, max_size=6),
        event_id=st.from_regex(r"evt_[A-Za-z0-9_]{6,30}", fullmatch=True) | hostile_text,
        created=st.integers(min_value=1_600_000_000, max_value=2_000_000_000) | st.integers(),
    )
    def attack(event_type, obj, event_id, created):
        before = ledger_counts()
        payload = {"id": event_id, "object": "event", "type": event_type, "created": created, "data": {"object": obj}}
        response = se.post_event(client, payload, webhook_secret)
        assert response.status_code < 500, response.get_data(as_text=True)
        assert ledger_counts() == before  # stored for staff at most, never a half-made gift

    attack()


def test_signed_real_events_with_spoiled_fields_are_applied_whole_or_not_at_all(app, client, webhook_secret, world):
    """Stripe's own example objects with some fields replaced by hostile values: each event is
    either applied or kept aside (deferred) with nothing of it in the ledger; never a 500."""
    bases = {
        "checkout.session.completed": se.checkout_session(),
        "charge.refunded": se.stripe_object("charge"),
        "charge.failed": se.stripe_object("charge"),
        "charge.dispute.closed": se.stripe_object("dispute"),
        "invoice.paid": se.stripe_object("invoice"),
        "customer.subscription.updated": se.stripe_object("subscription"),
        "refund.created": se.stripe_object("refund"),
        "payout.paid": se.stripe_object("payout"),
    }

    def spoiled(event_type: str):
        base = bases[event_type]
        return st.dictionaries(st.sampled_from(sorted(base)), json_values, min_size=1, max_size=3).map(
            lambda changes: (event_type, {**base, **changes})
        )

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(case=st.sampled_from(sorted(bases)).flatmap(spoiled))
    def attack(case):
        event_type, obj = case
        before = ledger_counts()
        response = se.post_event(client, se.event(event_type, obj), webhook_secret)
        assert response.status_code < 500, response.get_data(as_text=True)
        if response.status_code != 200 or response.json["outcome"] == "deferred":
            assert ledger_counts() == before

    attack()
