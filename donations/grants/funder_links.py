"""Funder links: a read-only page of one funder packet that a funder opens without an account.

The link carries a random token (256 bits); only its SHA-256 is stored, so the link is shown
once, when it is made, and a copy of the database opens nothing. A link stops working at its
expiry or when revoked: both answer 404, as an unknown token does. Making and revoking a link
are audited with the staff member; every view and download by the funder is audited with no
staff user (the actor names the link).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import db
from donations.grants.models import PACKET, FunderLink, ReportRun
from donations.grants.service import Actor, GrantError


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(
    run: ReportRun, days: int, label: str, *, actor: Actor, remote_addr: str | None = None
) -> tuple[FunderLink, str]:
    """A new link to `run` (a packet) open for `days` days: the row and its token, which is
    never stored (the caller commits and shows it once)."""
    if run.kind != PACKET:
        raise GrantError("A funder link shares a funder packet: make a packet first.")
    longest = current_app.config["FUNDER_LINK_MAX_DAYS"]
    if not 1 <= days <= longest:
        raise GrantError(f"A funder link stays open from 1 to {longest} days.")
    label = label.strip()
    if len(label) > 200:
        raise GrantError("Say whom the link is for in at most 200 characters.")
    token = secrets.token_urlsafe(32)
    link = FunderLink(
        report_run_id=run.id,
        token_sha256=_hash(token),
        label=label,
        actor=actor.email if isinstance(actor, StaffUser) else actor,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(link)
    db.session.flush()
    audit(
        "funder_link.create",
        actor=actor,
        target_type="funder_link",
        target_id=link.id,
        details={"run": run.id, "label": label, "expires_at": link.expires_at.isoformat()},
        remote_addr=remote_addr,
    )
    return link, token


def revoke_link(link: FunderLink, *, actor: Actor, remote_addr: str | None = None) -> None:
    if link.revoked_at is not None:
        return
    link.revoked_at = utcnow()
    link.revoked_by = actor.email if isinstance(actor, StaffUser) else actor
    audit(
        "funder_link.revoke",
        actor=actor,
        target_type="funder_link",
        target_id=link.id,
        details={"run": link.report_run_id, "label": link.label},
        remote_addr=remote_addr,
    )


def links_of(run: ReportRun) -> list[FunderLink]:
    return list(
        db.session.scalars(
            select(FunderLink).where(FunderLink.report_run_id == run.id).order_by(FunderLink.created_at.desc())
        )
    )


def link_by_id(run: ReportRun, link_id: int) -> FunderLink | None:
    return db.session.scalar(select(FunderLink).where(FunderLink.id == link_id, FunderLink.report_run_id == run.id))


def is_open(link: FunderLink) -> bool:
    return link.open_at(utcnow())


def open_link(token: str, now: datetime | None = None) -> FunderLink | None:
    """The link with this token if it is still open: not expired, not revoked."""
    if not token or len(token) > 100:
        return None
    link = db.session.scalar(select(FunderLink).where(FunderLink.token_sha256 == _hash(token)))
    if link is None or not link.open_at(now or utcnow()):
        return None
    return link


def record_view(link: FunderLink, what: str, remote_addr: str | None) -> None:
    """Audit a funder's view of the page or download of a file (the caller commits)."""
    audit(
        "funder_link.view",
        actor=f"funder link #{link.id}",
        target_type="funder_link",
        target_id=link.id,
        details={"run": link.report_run_id, "label": link.label, "viewed": what},
        remote_addr=remote_addr,
    )
