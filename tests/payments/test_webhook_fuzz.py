"""Hostile input on the two public doors, POST /give and POST /stripe/webhook (Hypothesis):
never a server error, and nothing written unless the input was valid.

Each example compares row counts before and after its request, so examples need no cleaning
between them; the examples are bounded to keep the suite fast.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import Gift
from donations.money import AmountError, parse_dollars
from donations.payments import handlers, signing
from donations.payments.models import StripeEvent
from tests import stripe_events as se
from tests.factories import make_fund
from tests.forms import csrf_token
from tests.giving.support import expected_fee, row_counts

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SUGGESTED = ["2500", "5000", "10000", "25000"]
FREQUENCIES = ["one_time", "monthly", "annual"]

# Any text but lone surrogates (which no browser can send as UTF-8).
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=60)
huge_text = st.builds(
    lambda unit, times: unit * times,
    st.sampled_from(["a", "é", "漢", "9", "x@y.", "\u202e", "<"]),
    st.integers(100, 30_000),
)
nasty_text = st.sampled_from(
    [
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        "' OR 1=1 --",
        "{{ 7*7 }}",
        "\x00",
        "a\x00b",
        "\r\n",
        "\t",
        "\u202e\u200b",
        "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U0001f389",
        "-5",
        "-0.01",
        "0",
        "1e9",
        "NaN",
        "Infinity",
        "²",
        "\u0665\u0660",  # Arabic-Indic digits
        "99999999999999999999999",
        "12.345",
        "   ",
        "",
    ]
)
hostile = st.one_of(any_text, huge_text, nasty_text)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or None: the field left out of the post altogether."""
    return st.one_of(st.none(), strategy)


gift_posts = st.fixed_dictionaries(
    {
        "csrf": st.sampled_from(["valid", "valid", "valid", "valid", "missing", "forged"]),
        "frequency": maybe(st.one_of(st.sampled_from(FREQUENCIES), hostile)),
        "amount_choice": maybe(st.one_of(st.sampled_from([*SUGGESTED, "other"]), hostile)),
        "custom_amount": maybe(st.one_of(st.sampled_from(["5", "37.50", "$1,000", "4.99", "25000.01"]), hostile)),
        "cover_fee": maybe(st.sampled_from(["y", "", "false"])),
        "name": maybe(st.one_of(st.sampled_from(["Rae Reader", "José Núñez", "李小龙", "O'Brien"]), hostile)),
        "email": maybe(st.one_of(st.sampled_from(["rae@example.org", "JOSÉ@Example.ORG", "a@b.co"]), hostile)),
        "postal_code": maybe(st.one_of(st.sampled_from(["94110", "K1A 0B1"]), hostile)),
        "on_behalf_of_organization": maybe(st.sampled_from(["y", ""])),
        "organization": maybe(st.one_of(st.just("Corner Bakery LLC"), hostile)),
        "anonymous": maybe(st.sampled_from(["y", ""])),
        "tribute_kind": maybe(st.one_of(st.sampled_from(["", "honor", "memory"]), hostile)),
        "tribute_name": maybe(st.one_of(st.just("Grace Hopper"), hostile)),
        "website": maybe(st.one_of(st.just(""), st.just(""), hostile)),
        "utm_source": maybe(hostile),
    }
)


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _bad_optional_text(value: str | None, limit: int) -> bool:
    return value is not None and (len(value) > limit or _has_control(value))


def _amount(post: dict[str, Any]) -> int | None:
    """The base amount in cents the post asks for, or None when it asks for none that parses."""
    choice = post["amount_choice"]
    if choice in SUGGESTED:
        return int(choice)
    if choice == "other" and post["custom_amount"] is not None and len(post["custom_amount"]) <= 20:
        try:
            return parse_dollars(post["custom_amount"])
        except AmountError:
            return None
    return None


def definitely_invalid(post: dict[str, Any]) -> bool:
    """What the form must refuse; the converse need not hold (email syntax has more rules)."""
    amount = _amount(post)
    name, email = post["name"], post["email"]
    return (
        post["csrf"] != "valid"
        or post["frequency"] not in FREQUENCIES
        or amount is None
        or not 500 <= amount <= 2_500_000
        or name is None
        or not name.strip()
        or len(name) > 200
        or _has_control(name)
        or email is None
        or "@" not in email
        or len(email) > 254
        or _bad_optional_text(post["postal_code"], 20)
        or _bad_optional_text(post["organization"], 200)
        or _bad_optional_text(post["tribute_name"], 200)
        or (post["on_behalf_of_organization"] == "y" and not (post["organization"] or "").strip())
        or post["tribute_kind"] not in (None, "", "honor", "memory")
        or (post["tribute_kind"] in ("honor", "memory") and not (post["tribute_name"] or "").strip())
        or len(post["website"] or "") > 200
    )


@pytest.fixture
def fund(app):
    return make_fund("community-forums", is_default=True)


@FUZZ
@given(post=gift_posts)
def test_hostile_gift_posts_never_fail_and_write_only_valid_gifts(client, fund, post):
    token = csrf_token(client, "/give")
    data = {key: value for key, value in post.items() if value is not None and key not in ("csrf", "utm_source")}
    if post["csrf"] == "valid":
        data["csrf_token"] = token
    elif post["csrf"] == "forged":
        data["csrf_token"] = token[:-4] + "AAAA"
    url = "/give"
    query = {"utm_source": post["utm_source"]} if post["utm_source"] is not None else None
    before = row_counts()

    response = client.post(url, data=data, query_string=query)

    assert response.status_code < 500, response.status_code
    after = row_counts()
    honeypot = bool(post["website"])
    if response.status_code == 303:
        assert not definitely_invalid(post) and not honeypot, post
        assert after["gifts"] == before["gifts"] + 1
        assert after["donors"] - before["donors"] in (0, 1)
        gift = db.session.scalars(select(Gift).order_by(Gift.id.desc()).limit(1)).one()
        amount = _amount(post)
        assert amount is not None
        fee = expected_fee(amount) if post["cover_fee"] == "y" else 0
        assert (gift.amount_cents, gift.fee_covered_cents) == (amount + fee, fee)
        assert gift.donor.email_key == post["email"].strip().casefold()
        assert gift.tax_deductible is False
    else:
        assert response.status_code in (302, 400, 413), response.status_code
        assert after == before, post
        if response.status_code == 302:
            assert honeypot


def test_a_form_larger_than_allowed_is_refused_not_failed(client, fund):
    token = csrf_token(client, "/give")
    response = client.post("/give", data={"csrf_token": token, "name": "x" * 2_000_000, "email": "a@b.co"})
    assert response.status_code in (400, 413)
    assert row_counts() == {"donors": 0, "gifts": 0, "stripe_events": 0, "outbox_messages": 0}


# -- the webhook ---------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), hostile),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(any_text, children, max_size=4)),
    max_leaves=12,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile,
    st.lists(st.integers(), max_size=2),
    st.just({}),
)
handled_types = st.sampled_from(handlers.handled_types())  # every type the app acts on


def _garbage_envelope() -> st.SearchStrategy[dict[str, Any]]:
    """Event-like objects with at least one part of the envelope wrong or hostile."""
    return st.fixed_dictionaries(
        {},
        optional={
            "id": st.one_of(st.just("evt_fuzz_1"), scalars),
            "type": st.one_of(handled_types, scalars),
            "created": st.one_of(st.just(int(time.time())), scalars),
            "data": st.one_of(st.fixed_dictionaries({"object": json_values}), json_values),
            "object": st.just("event"),
        },
    )


def _is_event_envelope(payload: Any) -> bool:
    """The shape every Stripe event has: an id like evt_..., a type like a.b_c, a creation time
    and a data object."""
    event_id, event_type, created = (
        payload.get(k) if isinstance(payload, dict) else None for k in ("id", "type", "created")
    )
    return (
        isinstance(event_id, str)
        and event_id.startswith("evt_")
        and 4 < len(event_id) <= 255
        and all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in event_id)
        and isinstance(event_type, str)
        and 0 < len(event_type) <= 100
        and all(ch.isascii() and (ch.islower() or ch.isdigit() or ch in "_.") for ch in event_type)
        and isinstance(created, int)
        and not isinstance(created, bool)
        and 0 < created < 2**33
        and isinstance(payload["data"], dict)
        and isinstance(payload["data"].get("object"), dict)
    )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _envelope(**changes: Any) -> bytes:
    payload = {"id": "evt_fuzz_pinned", "type": "charge.succeeded", "created": int(time.time()), "data": {"object": {}}}
    return json.dumps({**payload, **changes}).encode()


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    _garbage_envelope().map(lambda value: json.dumps(value).encode()),
    st.just(b""),
    st.just(b"{" * 5000),
    st.just(b'{"id": "evt_1", "type": "checkout.session.completed"}'),
)
signatures = st.sampled_from(["valid", "none", "wrong_secret", "stale", "future", "garbled", "v0_only"])


def _signature_header(body: bytes, secret: str, kind: str) -> dict[str, str]:
    now = int(time.time())
    headers = {"Content-Type": "application/json"}
    if kind == "valid":
        headers["Stripe-Signature"] = signing.sign(body, secret, now)
    elif kind == "wrong_secret":
        headers["Stripe-Signature"] = signing.sign(body, "whsec_not_ours", now)
    elif kind == "stale":
        headers["Stripe-Signature"] = signing.sign(body, secret, now - 301)
    elif kind == "future":
        headers["Stripe-Signature"] = signing.sign(body, secret, now + 3600)
    elif kind == "garbled":
        headers["Stripe-Signature"] = "t=abc,v1=" + "z" * 64
    elif kind == "v0_only":
        headers["Stripe-Signature"] = signing.sign(body, secret, now).replace("v1=", "v0=")
    return headers


@FUZZ
@given(body=bodies, signature=signatures)
@example(body=_envelope(), signature="valid")
@example(body=_envelope(id="evt_a\x00b"), signature="valid")
@example(body=_envelope(id="evt_" + "a" * 300), signature="valid")
@example(body=_envelope(id="not_an_event"), signature="valid")
@example(body=_envelope(type="Checkout Session\n"), signature="valid")
@example(body=_envelope(created=10**20), signature="valid")
@example(body=_envelope(created=-1), signature="valid")
@example(body=_envelope(created=True), signature="valid")
@example(body=_envelope(created=1.5), signature="valid")
@example(body=_envelope(data={"object": []}), signature="valid")
@example(body=b"[" * 100_000, signature="valid")
@example(body=_envelope(data={"object": {"amount": float("inf")}}), signature="valid")
@example(body=_envelope(data={"object": {"name": "\ud800"}}), signature="valid")
@example(body=b"\xff\xfe{}", signature="valid")
@example(body=_envelope(), signature="stale")
def test_garbage_and_unsigned_bodies_are_refused_and_write_nothing(client, fund, webhook_secret, body, signature):
    before = row_counts()
    response = client.post("/stripe/webhook", data=body, headers=_signature_header(body, webhook_secret, signature))
    try:
        payload = json.loads(body, parse_constant=_not_json)
    except (ValueError, RecursionError):
        payload = None
    if signature == "valid" and _is_event_envelope(payload):
        # Stripe only signs events: such a body is kept (and applied or kept aside with its error).
        assert response.status_code == 200, (response.status_code, response.json)
        assert row_counts()["gifts"] == before["gifts"]
    else:
        assert response.status_code == 400, (response.status_code, body[:200])
        assert row_counts() == before


session_fields = st.fixed_dictionaries(
    {},
    optional={
        "id": scalars,
        "amount_total": scalars,
        "currency": st.one_of(st.sampled_from(["usd", "USD", "eur"]), scalars),
        "mode": st.one_of(st.sampled_from(["payment", "subscription", "setup"]), scalars),
        "payment_status": st.one_of(st.sampled_from(["paid", "unpaid", "no_payment_required"]), scalars),
        "customer_email": scalars,
        "customer_details": st.one_of(
            scalars,
            st.fixed_dictionaries(
                {},
                optional={"email": scalars, "name": scalars, "business_name": scalars, "address": json_values},
            ),
        ),
        "metadata": st.one_of(scalars, st.dictionaries(st.sampled_from(["gift_id", "fund", "x"]), scalars, max_size=3)),
        "payment_intent": scalars,
        "customer": scalars,
    },
)


def _replace(session: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(session)
    for key, value in changes.items():
        if key == "customer_details" and isinstance(value, dict):
            merged[key] = {**session["customer_details"], **value}
        else:
            merged[key] = value
    return merged


def _readable_paid_session(session: dict[str, Any]) -> bool:
    """A paid one-time session whose money and payer can be read."""
    amount = session.get("amount_total")
    details = session.get("customer_details")
    email = (details.get("email") if isinstance(details, dict) else None) or session.get("customer_email")
    return (
        session.get("mode") == "payment"
        and session.get("payment_status") == "paid"
        and isinstance(amount, int)
        and not isinstance(amount, bool)
        and amount > 0
        and isinstance(email, str)
    )


@FUZZ
@given(
    changes=session_fields,
    event_type=st.sampled_from(["checkout.session.completed", "checkout.session.async_payment_succeeded"]),
)
def test_signed_events_with_hostile_sessions_never_fail(client, fund, webhook_secret, changes, event_type):
    session = _replace(se.checkout_session(), changes)
    payload = se.event(event_type, session)
    before = row_counts()

    response = se.post_event(client, payload, webhook_secret)

    assert response.status_code == 200, (response.status_code, response.json, changes)
    after = row_counts()
    assert after["stripe_events"] == before["stripe_events"] + 1  # every signed event is kept
    if after["gifts"] > before["gifts"]:
        assert after["gifts"] == before["gifts"] + 1
        assert _readable_paid_session(session), changes
        gift = db.session.scalars(select(Gift).order_by(Gift.id.desc()).limit(1)).one()
        assert gift.amount_cents == session["amount_total"]
    else:
        assert after["donors"] == before["donors"]
        assert after["outbox_messages"] == before["outbox_messages"]


def test_a_paid_session_with_an_overlong_name_is_still_recorded(client, fund, webhook_secret):
    session = se.checkout_session(amount_cents=2_500, name="N\x00" + "n" * 500)
    assert se.post_event(client, se.event("checkout.session.completed", session), webhook_secret).status_code == 200
    gift = db.session.scalars(select(Gift)).one()
    assert gift.amount_cents == 2_500
    assert gift.donor.name == "N" + "n" * 199  # cut to the column, the NUL dropped


@pytest.mark.parametrize("amount", [-500, 0, True, 25.5, "2500", 10**30])
def test_a_session_whose_amount_cannot_be_read_is_kept_aside(client, fund, webhook_secret, amount):
    session = se.checkout_session() | {"amount_total": amount}
    response = se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    assert response.status_code == 200
    assert response.json["outcome"] == "deferred"
    stored = db.session.scalars(select(StripeEvent)).one()
    assert stored.applied_at is None
    assert "amount_total" in (stored.error or "")
    assert row_counts() | {"stripe_events": 0} == {"donors": 0, "gifts": 0, "stripe_events": 0, "outbox_messages": 0}
