"""The audit log: every staff write and export is recorded, in the caller's transaction, with
who (a staff user, or `cli:<login>` for a command), when, what and from where."""

from __future__ import annotations

import getpass
from typing import Any

from donations.accounts.models import AuditEntry, StaffUser
from donations.extensions import db


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


def cli_actor() -> str:
    """The actor of a command run from a terminal."""
    return f"cli:{getpass.getuser()}"
