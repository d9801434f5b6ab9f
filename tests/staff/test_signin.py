"""Signing in and out: Argon2 hashes, throttling per account and address and per address, two-factor codes,
one-time passwords, session lifetime and cookie flags, and `flask staff create`."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import func, select, update

from donations import create_app
from donations.accounts import service as accounts
from donations.accounts.models import AuditEntry, SignInFailure, StaffUser
from donations.clock import utcnow
from donations.extensions import db
from tests.forms import csrf_token, page_text
from tests.staff.support import PASSWORD, fresh_address, make_staff, sign_in, sign_in_with_form


def audit_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def failures(email: str) -> int:
    """Failed sign-ins counted for this email, over every address."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(SignInFailure.failures), 0)).where(SignInFailure.email == email)
        )
    )


def reload(user: StaffUser) -> StaffUser:
    db.session.expire_all()
    fetched = db.session.get(StaffUser, user.id)
    assert fetched is not None
    return fetched


def test_sign_in_with_the_form_opens_the_console(client):
    user = make_staff("finance")
    response = sign_in_with_form(client, user.email.upper(), address=fresh_address())
    assert response.status_code == 302 and response.location == "/staff/"
    assert client.get("/staff/").status_code == 200
    assert reload(user).last_login_at is not None
    assert audit_actions() == ["staff.sign_in"]


def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    user = make_staff("viewer")
    wrong = sign_in_with_form(client, user.email, "not the password!", address=fresh_address())
    unknown = sign_in_with_form(client, "nobody@newsroom.example", "whatever it is", address=fresh_address())
    assert wrong.status_code == unknown.status_code == 400
    message = "did not match"
    assert message in page_text(wrong.get_data(as_text=True))
    assert message in page_text(unknown.get_data(as_text=True))
    assert client.get("/staff/").status_code == 302
    assert failures(user.email) == 1
    assert audit_actions() == ["staff.sign_in_failed", "staff.sign_in_failed"]


def test_sign_in_is_only_a_post_with_a_csrf_token(client):
    user = make_staff("viewer")
    response = client.post(
        "/staff/sign-in",
        data={"email": user.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert response.status_code == 400
    assert client.get("/staff/").status_code == 302


def test_failures_from_one_address_lock_that_address_out_not_the_staff_member(client, app):
    """Issue 13, finding 11: five requests from anywhere locked any staff account for everyone."""
    user = make_staff("finance")
    attacker = fresh_address()
    for _ in range(app.config["STAFF_MAX_FAILED_SIGNINS"]):
        assert sign_in_with_form(client, user.email, "wrong password!!", address=attacker).status_code == 400
    # Brute force from that address stays stopped: even the right password is refused there ...
    assert sign_in_with_form(client, user.email, address=attacker).status_code == 400
    assert client.get("/staff/").status_code == 302
    # ... while the staff member, from their own address, signs in as usual.
    theirs = app.test_client()
    assert sign_in_with_form(theirs, user.email, address=fresh_address()).status_code == 302
    assert theirs.get("/staff/gifts").status_code == 200
    # Once the pause has passed, the right password works from that address too, and its count restarts.
    db.session.execute(
        update(SignInFailure).values(last_failed_at=utcnow() - timedelta(minutes=app.config["STAFF_LOCKOUT_MINUTES"]))
    )
    db.session.commit()
    assert sign_in_with_form(client, user.email, address=attacker).status_code == 302
    assert failures(user.email) == 0


class CountingHasher(PasswordHasher):
    """Counts Argon2 verifications: the work, and so the time, an answer costs."""

    def __init__(self) -> None:
        super().__init__()
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


def test_every_sign_in_answer_costs_one_argon2_verification(client, app, monkeypatch):
    """Issue 13, finding 11: a locked account answered without verifying the password (6-9 ms
    against 107-130 ms), which told which emails are staff."""
    user = make_staff("viewer")
    make_staff("viewer", email="gone@newsroom.example", active=False)
    locked_out = fresh_address()
    for _ in range(app.config["STAFF_MAX_FAILED_SIGNINS"]):
        sign_in_with_form(client, user.email, "wrong password!!", address=locked_out)
    hasher = CountingHasher()
    monkeypatch.setattr(accounts, "_hasher", hasher)
    attempts = {
        "unknown email": ("nobody@newsroom.example", PASSWORD, fresh_address()),
        "inactive account": ("gone@newsroom.example", PASSWORD, fresh_address()),
        "wrong password": (user.email, "wrong password!!", fresh_address()),
        "locked out, wrong password": (user.email, "wrong password!!", locked_out),
        "locked out, right password": (user.email, PASSWORD, locked_out),
    }
    for case, (email, password, address) in attempts.items():
        before = hasher.verifications
        response = sign_in_with_form(client, email, password, address=address)
        assert response.status_code == 400, case
        assert "did not match" in page_text(response.get_data(as_text=True)), case
        assert hasher.verifications - before == 1, case
    before = hasher.verifications
    assert sign_in_with_form(client, user.email, address=fresh_address()).status_code == 302
    assert hasher.verifications - before == 1


def test_sign_in_attempts_from_one_address_are_rate_limited(client, app):
    address = fresh_address()
    per_minute = int(app.config["STAFF_SIGNIN_LIMIT"].split(" per minute")[0])
    for n in range(per_minute):
        # Different (unknown) accounts each time: only the per-address limit can stop this.
        response = sign_in_with_form(client, f"guess{n}@newsroom.example", "guessing-a-password", address=address)
        assert response.status_code == 400
    user = make_staff("admin")
    assert sign_in_with_form(client, user.email, address=address).status_code == 429
    # Another address is not affected.
    assert sign_in_with_form(client, user.email, address=fresh_address()).status_code == 302


def test_passwords_are_stored_only_as_argon2id_hashes(client, app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["staff", "create", "Hash.Check@Newsroom.example", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    one_time = re.search(r"One-time password: (\S+)", result.output).group(1)
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == "hash.check@newsroom.example"))
    users = [user, make_staff("finance", password="another long passphrase")]
    for staff in users:
        assert staff.password_hash.startswith("$argon2id$")
        encoded = dict(part.split("=") for part in staff.password_hash.split("$")[3].split(","))
        # At least RFC 9106's low-memory profile (64 MiB, 3 passes), far above OWASP's minimum.
        assert int(encoded["m"]) >= RFC_9106_LOW_MEMORY.memory_cost
        assert int(encoded["t"]) >= RFC_9106_LOW_MEMORY.time_cost
        assert not PasswordHasher().check_needs_rehash(staff.password_hash)
    assert one_time not in users[0].password_hash
    assert "another long passphrase" not in users[1].password_hash
    # Nothing else in the row holds the password either.
    row = db.session.execute(select(StaffUser.__table__).where(StaffUser.id == user.id)).one()
    assert not any(one_time in str(value) for value in row)


def test_staff_create_prints_a_one_time_password_that_must_be_changed(client, app):
    result = app.test_cli_runner().invoke(args=["staff", "create", "new.finance@newsroom.example", "--role", "finance"])
    assert result.exit_code == 0
    assert "Created finance new.finance@newsroom.example." in result.output
    one_time = re.search(r"One-time password: (\S+)", result.output).group(1)
    response = sign_in_with_form(client, "new.finance@newsroom.example", one_time, address=fresh_address())
    assert response.status_code == 302
    # Every page waits until the one-time password is replaced.
    assert client.get("/staff/gifts").location == "/staff/account/password"
    token = csrf_token(client, "/staff/account/password")
    response = client.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current": one_time,
            "new": "my own long password",
            "confirm": "my own long password",
        },
    )
    assert response.status_code == 302
    assert client.get("/staff/gifts").status_code == 200
    user = db.session.scalar(select(StaffUser).where(StaffUser.email == "new.finance@newsroom.example"))
    assert user.must_change_password is False
    assert audit_actions()[0] == "staff.create"
    assert (
        db.session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "staff.create")).one().startswith("cli:")
    )


def test_staff_create_asks_for_the_password_with_ask(client, app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["staff", "create", "asked@newsroom.example", "--role", "admin", "--ask"],
        input="a password typed twice\na password typed twice\n",
    )
    assert result.exit_code == 0, result.output
    assert "One-time password" not in result.output
    assert (
        sign_in_with_form(client, "asked@newsroom.example", "a password typed twice", address=fresh_address()).location
        == "/staff/"
    )
    assert client.get("/staff/").status_code == 200  # not a one-time password: no forced change


def test_staff_create_refuses_bad_input(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["staff", "create", "x@newsroom.example", "--role", "owner"]).exit_code != 0
    short = runner.invoke(
        args=["staff", "create", "x@newsroom.example", "--role", "admin", "--ask"], input="short\nshort\n"
    )
    assert short.exit_code != 0 and "at least 12" in short.output
    make_staff("viewer", email="taken@newsroom.example")
    taken = runner.invoke(args=["staff", "create", "taken@newsroom.example", "--role", "admin"])
    assert taken.exit_code != 0 and "already exists" in taken.output
    assert db.session.scalar(select(StaffUser).where(StaffUser.email == "x@newsroom.example")) is None


def enrol(client, user: StaffUser) -> str:
    """Turn on two-factor through the pages; returns the secret."""
    token = csrf_token(client, "/staff/account/two-factor")
    assert client.post("/staff/account/two-factor/start", data={"csrf_token": token}).status_code == 302
    page = client.get("/staff/account/two-factor").get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    assert "otpauth://totp/" in page and f"secret={secret}" in page
    response = client.post(
        "/staff/account/two-factor/confirm", data={"csrf_token": token, "code": pyotp.TOTP(secret).now()}
    )
    assert response.status_code == 303 and response.location == "/staff/account"
    assert reload(user).two_factor_enabled
    return secret


def sign_out(client) -> None:
    token = csrf_token(client, "/staff/account")
    assert client.post("/staff/sign-out", data={"csrf_token": token}).status_code == 302


def test_two_factor_sign_in_needs_a_fresh_code(client, app):
    user = make_staff("finance")
    sign_in(client, user)
    secret = enrol(client, user)
    sign_out(client)

    address = fresh_address()
    response = sign_in_with_form(client, user.email, address=address)
    assert response.location.startswith("/staff/sign-in/code")
    assert client.get("/staff/").status_code == 302  # the password alone is not a session
    token = csrf_token(client, "/staff/sign-in/code")
    wrong = client.post("/staff/sign-in/code", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 400
    assert failures(user.email) == 1
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step's code: not used yet
    right = client.post("/staff/sign-in/code", data={"csrf_token": token, "code": code})
    assert right.status_code == 302 and right.location == "/staff/"
    assert client.get("/staff/").status_code == 200
    sign_out(client)

    # The same code never opens a second session (replay).
    sign_in_with_form(client, user.email, address=address)
    token = csrf_token(client, "/staff/sign-in/code")
    assert client.post("/staff/sign-in/code", data={"csrf_token": token, "code": code}).status_code == 400
    assert client.get("/staff/").status_code == 302


def test_a_wrong_confirmation_code_leaves_two_factor_off(client):
    user = make_staff("viewer")
    sign_in(client, user)
    token = csrf_token(client, "/staff/account/two-factor")
    client.post("/staff/account/two-factor/start", data={"csrf_token": token})
    response = client.post("/staff/account/two-factor/confirm", data={"csrf_token": token, "code": "123456"})
    assert response.location == "/staff/account/two-factor"
    assert not reload(user).two_factor_enabled
    assert "staff.two_factor_on" not in audit_actions()


def test_admins_must_enrol_when_two_factor_is_required(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "STAFF_REQUIRE_2FA", "true")
    admin = make_staff("admin")
    sign_in_with_form(client, admin.email, address=fresh_address())
    for page in ("/staff/", "/staff/gifts", "/staff/users"):
        assert client.get(page).location == "/staff/account/two-factor", page
    secret = enrol(client, admin)
    assert client.get("/staff/users").status_code == 200
    # Required: an admin cannot turn it off.
    token = csrf_token(client, "/staff/account/two-factor")
    client.post(
        "/staff/account/two-factor/off", data={"csrf_token": token, "code": pyotp.TOTP(secret).at(time.time() + 30)}
    )
    assert reload(admin).two_factor_enabled
    # Other roles are not held.
    finance = make_staff("finance")
    other = app.test_client()
    sign_in_with_form(other, finance.email, address=fresh_address())
    assert other.get("/staff/").status_code == 200


def test_sessions_expire_after_their_lifetime(client, app):
    user = make_staff("viewer")
    sign_in(client, user)
    assert client.get("/staff/gifts").status_code == 200
    lifetime = app.permanent_session_lifetime.total_seconds()
    with client.session_transaction() as session:
        session["staff_signed_in_at"] = int(time.time() - lifetime - 1)
    response = client.get("/staff/gifts")
    assert response.status_code == 302 and response.location.startswith("/staff/sign-in")
    assert client.get("/staff/").status_code == 302


def test_session_cookie_is_http_only_same_site_and_expires(client, app):
    user = make_staff("viewer")
    response = sign_in_with_form(client, user.email, address=fresh_address())
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie


def test_production_session_cookie_is_secure(app, database_url):
    production = create_app(
        "production",
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "a-production-secret-for-this-test",
            "PAYMENTS_GATEWAY": "stripe",
            "STRIPE_SECRET_KEY": "sk_test_cookie",
            "STRIPE_WEBHOOK_SECRET": "whsec_cookie",
            "SERVER_NAME": "localhost",
            "PUBLIC_URL": "https://localhost",
            "TRUSTED_HOSTS": ["localhost"],
        },
    )
    with production.app_context():
        response = production.test_client().get("/staff/sign-in", base_url="https://localhost")
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_out_is_a_post_and_ends_the_session(client):
    user = make_staff("viewer")
    sign_in(client, user)
    assert client.get("/staff/sign-out").status_code == 405
    assert client.get("/staff/").status_code == 200
    sign_out(client)
    assert client.get("/staff/").status_code == 302
    assert audit_actions() == ["staff.sign_out"]


def test_a_cookie_saved_before_sign_out_no_longer_opens_the_console(client, app):
    """Issue 13, finding 10: sign-out only cleared the browser's cookie; a copy still worked."""
    user = make_staff("finance")
    assert sign_in_with_form(client, user.email, address=fresh_address()).status_code == 302
    assert client.get("/staff/gifts").status_code == 200
    saved = client.get_cookie("session").value
    sign_out(client)
    copy = app.test_client()
    copy.set_cookie("session", saved, domain="localhost")
    response = copy.get("/staff/gifts")
    assert response.status_code == 302 and response.location.startswith("/staff/sign-in")
    # Signing in again opens a new session as usual.
    assert sign_in_with_form(client, user.email, address=fresh_address()).status_code == 302
    assert client.get("/staff/gifts").status_code == 200


def test_deactivating_a_user_ends_their_session_at_once(client, app):
    admin = make_staff("admin")
    finance = make_staff("finance")
    theirs = app.test_client()
    sign_in(theirs, finance)
    assert theirs.get("/staff/").status_code == 200
    sign_in(client, admin)
    token = csrf_token(client, "/staff/users")
    assert client.post(f"/staff/users/{finance.id}/deactivate", data={"csrf_token": token}).status_code == 303
    assert theirs.get("/staff/").status_code == 302
    assert sign_in_with_form(theirs, finance.email, address=fresh_address()).status_code == 400


def test_a_new_password_ends_the_other_sessions(client, app):
    user = make_staff("finance")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, user)
    sign_in(phone, user)
    token = csrf_token(laptop, "/staff/account/password")
    response = laptop.post(
        "/staff/account/password",
        data={
            "csrf_token": token,
            "current": PASSWORD,
            "new": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
    )
    assert response.status_code == 302
    assert laptop.get("/staff/").status_code == 200
    assert phone.get("/staff/").status_code == 302


def test_sign_in_never_redirects_off_the_console(client):
    user = make_staff("viewer")
    token = csrf_token(client, "/staff/sign-in")
    response = client.post(
        "/staff/sign-in?next=https://evil.example/staff/",
        data={"csrf_token": token, "email": user.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert response.location == "/staff/"


def test_sign_in_returns_to_the_page_asked_for(client):
    user = make_staff("viewer")
    first = client.get("/staff/gifts?source=check")
    assert first.location.startswith("/staff/sign-in?next=")
    assert parse_qs(urlsplit(first.location).query)["next"] == ["/staff/gifts?source=check"]
    token = csrf_token(client, first.location)
    response = client.post(
        first.location,
        data={"csrf_token": token, "email": user.email, "password": PASSWORD},
        environ_base={"REMOTE_ADDR": fresh_address()},
    )
    assert response.location == "/staff/gifts?source=check"


@pytest.mark.parametrize("role", ["admin", "finance", "viewer"])
def test_the_navigation_offers_only_what_the_role_may_open(client, role):
    sign_in(client, make_staff(role))
    page = client.get("/staff/").get_data(as_text=True)
    assert ('href="/staff/users"' in page) == (role == "admin")
    assert ('href="/staff/audit"' in page) == (role in ("admin", "finance"))
    assert ('href="/staff/offline/batch"' in page) == (role in ("admin", "finance"))
