"""CSRF: every POST route in `app.url_map` (Stripe's signed webhook is answered before Flask) refuses a form without a
valid token, signed in or not, and writes nothing."""

from __future__ import annotations

import pytest
from itsdangerous import BadSignature
from sqlalchemy import func, select

from donations.extensions import db
from tests.forms import extract_csrf_token, page_text
from tests.security.support import browser, build_world, routes, signed_in, url_for_rule

CSRF_REFUSAL = "This form expired or was sent from elsewhere"


def row_counts() -> dict[str, int]:
    return {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


@pytest.fixture
def world(app):
    return build_world()


@pytest.mark.parametrize("token", [None, "", "forged.token.value"])
def test_every_post_without_a_valid_token_is_refused(app, world, token):
    admin, _user = signed_in(app, "admin")
    before = row_counts()
    accepted = []
    for rule in routes(app, "POST"):
        url = url_for_rule(rule, world.url_values)
        data = {"confirm": "ERASE", "amount_choice": "5000", "email": "x@example.org", "name": "X"}
        if token is not None:
            data["csrf_token"] = token
        for client in (browser(app), admin):
            response = client.post(url, data=data)
            if response.status_code != 400 or CSRF_REFUSAL not in page_text(response.get_data(as_text=True)):
                accepted.append(f"{url}: {response.status_code}")
    assert accepted == []
    assert row_counts() == before


def test_a_token_from_another_session_is_refused_everywhere(app, world):
    admin, _user = signed_in(app, "admin")
    other, _other_user = signed_in(app, "admin")
    page = other.get("/staff/users").get_data(as_text=True)
    stolen = extract_csrf_token(page)
    refused = []
    for rule in routes(app, "POST", "/staff"):
        response = admin.post(url_for_rule(rule, world.url_values), data={"csrf_token": stolen})
        if response.status_code != 400 or CSRF_REFUSAL not in page_text(response.get_data(as_text=True)):
            refused.append(f"{rule.rule}: {response.status_code}")
    assert refused == []


def test_sessions_signed_with_a_rotated_key_are_read_only_through_the_fallbacks(app, monkeypatch):
    # The session cookie carries the CSRF token; the app's signer is kept per set of keys.
    cookie = app.session_interface.get_signing_serializer(app).dumps({"csrf_token": "abc"})
    old_key = app.config["SECRET_KEY"]
    monkeypatch.setattr(app, "secret_key", "a-new-secret-key-for-this-test")
    with pytest.raises(BadSignature):
        app.session_interface.get_signing_serializer(app).loads(cookie)
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old_key])
    signer = app.session_interface.get_signing_serializer(app)
    assert signer.loads(cookie) == {"csrf_token": "abc"}
    assert signer.loads(signer.dumps({"n": 1})) == {"n": 1}  # new cookies: the new key
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
    assert app.session_interface.get_signing_serializer(app).loads(signer.dumps({"n": 1})) == {"n": 1}
