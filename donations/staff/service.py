"""Staff accounts and the audit log."""

from __future__ import annotations

import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from donations.extensions import db
from donations.staff.models import AuditEntry, Role, StaffUser

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


class StaffError(ValueError):
    pass


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


def new_password() -> str:
    return secrets.token_urlsafe(12)


def create_staff_user(email: str, role: str, password: str, name: str | None = None) -> StaffUser:
    if role not in set(Role):
        raise StaffError(f"role must be one of {', '.join(Role)}")
    if len(password) < 12:
        raise StaffError("passwords must be at least 12 characters")
    email = email.strip().lower()
    if db.session.scalar(select(StaffUser).where(StaffUser.email == email)):
        raise StaffError(f"a staff user {email} already exists")
    user = StaffUser(email=email, role=role, name=name, password_hash=hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user


def audit(
    action: str,
    *,
    actor: StaffUser | str,
    target_type: str | None = None,
    target_id: object = None,
    details: dict[str, Any] | None = None,
    remote_addr: str | None = None,
    note: str | None = None,
) -> AuditEntry:
    """Record a staff write or export in the caller's transaction."""
    entry = AuditEntry(
        staff_user_id=actor.id if isinstance(actor, StaffUser) else None,
        actor=actor.email if isinstance(actor, StaffUser) else actor,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details or {},
        remote_addr=remote_addr,
        note=note,
    )
    db.session.add(entry)
    return entry
