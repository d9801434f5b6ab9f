"""Staff users and the audit log."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from donations.clock import utcnow
from donations.extensions import Base


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything, manages staff users
    FINANCE = "finance"  # gifts, refunds, offline gifts, exports
    VIEWER = "viewer"  # read only


class StaffUser(UserMixin, Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))  # Argon2id
    role: Mapped[str] = mapped_column(String(20))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # Two-factor is on once a code from the secret has been confirmed; until then it is an
    # enrolment in progress.
    totp_confirmed_at: Mapped[datetime | None]
    # The last time step whose code was accepted: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Set for a one-time password: the first sign-in asks for a new one.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    # Part of the session's user id: bumping it (sign-out, new password, deactivation) ends every
    # session of the account, and so any copy of their cookies.
    session_version: Mapped[int] = mapped_column(default=1)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_secret is not None and self.totp_confirmed_at is not None

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class SignInFailure(Base):
    """Failed sign-ins (password or code) for one email from one address. Counted per pair, so
    that failures from one address pause that address only: nobody can lock a staff member out
    from afar. Kept for unknown emails too, so that the answers never tell which emails exist."""

    __tablename__ = "staff_sign_in_failures"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    remote_addr: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime] = mapped_column(index=True)


class AuditEntry(Base):
    """Append-only: the app has no code path that updates or deletes one."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(320))  # email, or "cli:<user>" / "system"
    action: Mapped[str] = mapped_column(String(100), index=True)
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)

    staff_user: Mapped[StaffUser | None] = relationship()
