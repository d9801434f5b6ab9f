"""Staff accounts, sign-in and two-factor codes.

Every write action here records an audit entry beside the change; the caller's unit of work
commits both, and on an error (raised) writes neither. A refused sign-in raises SignInRefused
after counting the failure: the caller commits that count, catching the refusal inside its
unit of work.
"""

from __future__ import annotations

import hmac
import secrets
from contextlib import suppress
from datetime import datetime, timedelta
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from donations.accounts.audit import audit
from donations.accounts.models import Role, SignInFailure, StaffUser
from donations.clock import utcnow
from donations.extensions import db

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters
MIN_PASSWORD_LENGTH = 12
SIGN_IN_FAILED = (
    "That email and password (or code) did not match. After several failed attempts, sign-in "
    "from this address pauses for a while; wait, then try again."
)


class StaffError(ValueError):
    pass


class SignInRefused(StaffError):
    def __init__(self) -> None:
        super().__init__(SIGN_IN_FAILED)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: StaffUser, password: str) -> bool:
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so that a wrong email costs as much time as
    a wrong password and timing does not reveal which accounts exist."""
    return _hasher.hash(secrets.token_urlsafe(16))


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(f"passwords must be at least {MIN_PASSWORD_LENGTH} characters")


def create_staff_user(
    email: str, role: str, password: str, name: str | None = None, *, must_change_password: bool = False
) -> StaffUser:
    if role not in set(Role):
        raise StaffError(f"role must be one of {', '.join(Role)}")
    _check_new_password(password)
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise StaffError("enter the staff member's email address")
    if db.session.scalar(select(StaffUser).where(StaffUser.email == email)):
        raise StaffError(f"a staff user {email} already exists")
    user = StaffUser(
        email=email,
        role=role,
        name=name,
        password_hash=hash_password(password),
        must_change_password=must_change_password,
    )
    db.session.add(user)
    db.session.flush()
    return user


# --- Sign-in ---------------------------------------------------------------------------------


def config_flag(value: object) -> bool:
    """A boolean setting that may come from the environment as text ("0", "false", "yes")."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def two_factor_required(user: StaffUser) -> bool:
    return user.role == Role.ADMIN and config_flag(current_app.config.get("STAFF_REQUIRE_2FA"))


def user_by_email(email: str) -> StaffUser | None:
    return db.session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))


def _pause() -> timedelta:
    return timedelta(minutes=int(current_app.config["STAFF_LOCKOUT_MINUTES"]))


def _pair(email: str, remote_addr: str | None) -> tuple[str, str]:
    return email.strip().lower()[:320], (remote_addr or "")[:64]


def _count_failure(email: str, remote_addr: str | None) -> None:
    """One more failure for this email from this address, in one statement (concurrent attempts
    all count); a count whose last failure is older than the pause starts again at one."""
    now = utcnow()
    table = SignInFailure.__table__
    key_email, key_addr = _pair(email, remote_addr)
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table).values(email=key_email, remote_addr=key_addr, failures=1, last_failed_at=now)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.email, table.c.remote_addr],
        set_={
            "failures": case((table.c.last_failed_at < now - _pause(), 1), else_=table.c.failures + 1),
            "last_failed_at": now,
        },
    )
    db.session.execute(statement)
    # Counts nobody has added to within the pause are spent: forget them.
    db.session.execute(delete(SignInFailure).where(SignInFailure.last_failed_at < now - _pause()))


def is_locked(email: str, remote_addr: str | None) -> bool:
    """This address has failed too often for this email lately: it waits out the pause. Other
    addresses (the staff member's own) are not affected."""
    key_email, key_addr = _pair(email, remote_addr)
    failures = db.session.scalar(
        select(SignInFailure.failures).where(
            SignInFailure.email == key_email,
            SignInFailure.remote_addr == key_addr,
            SignInFailure.last_failed_at >= utcnow() - _pause(),
        )
    )
    return failures is not None and failures >= int(current_app.config["STAFF_MAX_FAILED_SIGNINS"])


def _refuse(user: StaffUser | None, email: str, reason: str, remote_addr: str | None) -> SignInRefused:
    """Count a failed attempt against the email and address, and audit it (for the caller to
    commit). Every refusal does the same work, whatever its reason."""
    _count_failure(email, remote_addr)
    audit(
        "staff.sign_in_failed",
        actor=user if user is not None else "anonymous",
        target_type="staff_user",
        target_id=user.id if user is not None else None,
        details={"email": email.strip().lower()[:320], "reason": reason},
        remote_addr=remote_addr,
    )
    return SignInRefused()


def check_credentials(email: str, password: str, remote_addr: str | None) -> StaffUser:
    """The account these credentials open, or SignInRefused (the same for every cause).

    Every answer costs exactly one Argon2 verification (against a stand-in hash when there is
    no usable account), so that its time does not tell which emails are staff or locked out."""
    user = user_by_email(email)
    if user is None or not user.active:
        _verify_dummy(password)
        raise _refuse(user, email, "unknown or inactive account", remote_addr)
    matched = check_password(user, password)
    if is_locked(user.email, remote_addr):
        raise _refuse(user, email, "too many failures from this address", remote_addr)
    if not matched:
        raise _refuse(user, email, "wrong password", remote_addr)
    return user


def _verify_dummy(password: str) -> bool:
    with suppress(VerificationError):
        _hasher.verify(_dummy_hash(), password)
    return False


def check_sign_in_code(user: StaffUser, code: str, remote_addr: str | None) -> None:
    """The second step: a current code from the user's authenticator, used once."""
    if not user.active:
        raise _refuse(user, user.email, "inactive account", remote_addr)
    if is_locked(user.email, remote_addr):
        raise _refuse(user, user.email, "too many failures from this address", remote_addr)
    if not user.two_factor_enabled or not _accept_code(user, user.totp_secret or "", code):
        raise _refuse(user, user.email, "wrong code", remote_addr)


def complete_sign_in(user: StaffUser, remote_addr: str | None) -> None:
    key_email, key_addr = _pair(user.email, remote_addr)
    db.session.execute(
        delete(SignInFailure).where(SignInFailure.email == key_email, SignInFailure.remote_addr == key_addr)
    )
    user.last_login_at = utcnow()
    audit("staff.sign_in", actor=user, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)


def record_sign_out(user: StaffUser, remote_addr: str | None) -> None:
    """Sign-out ends the session on the server: a new session version invalidates the cookie
    and any copy of it (and the account's sessions in other browsers)."""
    user.session_version += 1
    audit("staff.sign_out", actor=user, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)


# --- Two-factor codes (TOTP, RFC 6238: any authenticator app) ----------------------------------


def _matching_step(secret: str, code: str, at: datetime) -> int | None:
    """The 30-second time step whose code this is, allowing one step of clock drift each way."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    step = totp.timecode(at)
    for candidate in (step - 1, step, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            return candidate
    return None


def _accept_code(user: StaffUser, secret: str, code: str) -> bool:
    """True for a valid code not used before (a code seen once is refused: no replay)."""
    step = _matching_step(secret, code, utcnow())
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def provisioning_uri(user: StaffUser) -> str:
    return pyotp.TOTP(user.totp_secret or "").provisioning_uri(
        name=user.email, issuer_name=current_app.config["NEWSROOM_NAME"]
    )


def begin_two_factor(user: StaffUser) -> str:
    """A new secret waiting for its first code; returns it."""
    if user.two_factor_enabled:
        raise StaffError("Two-factor sign-in is already on.")
    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    return user.totp_secret


def confirm_two_factor(user: StaffUser, code: str, remote_addr: str | None) -> None:
    if user.totp_secret is None or user.two_factor_enabled:
        raise StaffError("Start the set-up again.")
    if not _accept_code(user, user.totp_secret, code):
        raise StaffError("That code did not match. Check the time on your phone and try the next code.")
    user.totp_confirmed_at = utcnow()
    audit("staff.two_factor_on", actor=user, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)


def turn_off_two_factor(user: StaffUser, code: str, remote_addr: str | None) -> None:
    if not user.two_factor_enabled:
        raise StaffError("Two-factor sign-in is not on.")
    if two_factor_required(user):
        raise StaffError("Administrators must keep two-factor sign-in on.")
    if not _accept_code(user, user.totp_secret or "", code):
        raise StaffError("That code did not match.")
    user.totp_secret = None
    user.totp_confirmed_at = None
    audit("staff.two_factor_off", actor=user, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)


# --- One's own account -----------------------------------------------------------------------


def change_password(user: StaffUser, current: str, new: str, remote_addr: str | None) -> None:
    """A new password ends every other session of the account (session_version)."""
    if not check_password(user, current):
        raise StaffError("Your current password did not match.")
    _check_new_password(new)
    if new == current:
        raise StaffError("Choose a password different from the current one.")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.session_version += 1
    audit("staff.password_change", actor=user, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)


# --- Staff users (admins) --------------------------------------------------------------------


def _active_admins() -> int:
    return db.session.execute(
        select(func.count()).select_from(StaffUser).where(StaffUser.role == Role.ADMIN, StaffUser.active.is_(True))
    ).scalar_one()


def add_staff_user(
    email: str, role: str, name: str | None, actor: StaffUser, remote_addr: str | None
) -> tuple[StaffUser, str]:
    """A new account with a one-time password (shown once; changed at first sign-in)."""
    password = new_password()
    user = create_staff_user(email, role, password, name=name, must_change_password=True)
    audit(
        "staff.create",
        actor=actor,
        target_type="staff_user",
        target_id=user.id,
        details={"email": user.email, "role": role},
        remote_addr=remote_addr,
    )
    return user, password


def change_role(user: StaffUser, role: str, actor: StaffUser, remote_addr: str | None) -> None:
    if role not in set(Role):
        raise StaffError(f"role must be one of {', '.join(Role)}")
    if role == user.role:
        raise StaffError("That is already their role.")
    if user.role == Role.ADMIN and user.active and _active_admins() <= 1:
        raise StaffError("Keep at least one active administrator.")
    before = user.role
    user.role = role
    audit(
        "staff.role_change",
        actor=actor,
        target_type="staff_user",
        target_id=user.id,
        details={"before": {"role": before}, "after": {"role": role}},
        remote_addr=remote_addr,
    )


def set_active(user: StaffUser, active: bool, actor: StaffUser, remote_addr: str | None) -> None:
    """Deactivating signs the user out everywhere at once (session_version)."""
    if user.active == active:
        raise StaffError("Nothing changed.")
    if not active and user.id == actor.id:
        raise StaffError("You cannot deactivate yourself.")
    if not active and user.role == Role.ADMIN and _active_admins() <= 1:
        raise StaffError("Keep at least one active administrator.")
    user.active = active
    user.session_version += 1
    audit(
        "staff.activate" if active else "staff.deactivate",
        actor=actor,
        target_type="staff_user",
        target_id=user.id,
        details={"before": {"active": not active}, "after": {"active": active}},
        remote_addr=remote_addr,
    )


def reset_password(user: StaffUser, actor: StaffUser, remote_addr: str | None) -> str:
    """A new one-time password for someone who lost theirs; their sessions end."""
    password = new_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    db.session.execute(delete(SignInFailure).where(SignInFailure.email == user.email))  # a fresh start
    user.session_version += 1
    audit("staff.password_reset", actor=actor, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)
    return password


def reset_two_factor(user: StaffUser, actor: StaffUser, remote_addr: str | None) -> None:
    """For a lost phone: the user enrols again at next sign-in (when required) or later."""
    if user.totp_secret is None:
        raise StaffError("They have no two-factor sign-in to reset.")
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.session_version += 1
    audit("staff.two_factor_reset", actor=actor, target_type="staff_user", target_id=user.id, remote_addr=remote_addr)
