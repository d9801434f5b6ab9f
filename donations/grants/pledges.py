"""Local-match pledges: the funders who promised to match a program, with the document that
proves it. Staff record and remove them (audited); the document is checked by its first bytes
(PDF, PNG or JPEG, whatever its name says) and kept in the database with its SHA-256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import func, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.extensions import db
from donations.grants.models import GrantProgram, Pledge

# The first bytes of each kind of document accepted, and the extension it is served with.
MAGIC = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
)
EXTENSIONS = {mimetype: extension for _, mimetype, extension in MAGIC}
MAX_PLEDGES = 20  # per program: the cover sheet lists them, and their documents, on its one page


class PledgeError(ValueError):
    """A pledge refused, with a message for the person who made it."""


@dataclass(frozen=True)
class PledgeData:
    funder_name: str
    amount_cents: int
    pledged_on: date
    document: bytes
    document_name: str


def document_type(content: bytes) -> str | None:
    """The document's type from its first bytes, or None if it is not a PDF, PNG or JPEG."""
    for magic, mimetype, _ in MAGIC:
        if content.startswith(magic):
            return mimetype
    return None


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _validate(data: PledgeData) -> str:
    name = data.funder_name.strip()
    if not name or len(name) > 200:
        raise PledgeError("Name the funder (at most 200 characters).")
    if data.amount_cents <= 0:
        raise PledgeError("The amount pledged must be more than $0.")
    if not data.document:
        raise PledgeError("Attach the document proving the pledge: a PDF, PNG or JPEG file.")
    limit = current_app.config["PLEDGE_DOCUMENT_MAX_BYTES"]
    if len(data.document) > limit:
        raise PledgeError(f"The document is {megabytes(len(data.document))}; the most accepted is {megabytes(limit)}.")
    mimetype = document_type(data.document)
    if mimetype is None:
        raise PledgeError("The document must be a PDF, PNG or JPEG file (this one is none of them).")
    return mimetype


def _who(actor: StaffUser | str) -> str:
    return actor.email if isinstance(actor, StaffUser) else actor


def add_pledge(
    program: GrantProgram, data: PledgeData, *, actor: StaffUser | str, remote_addr: str | None = None
) -> Pledge:
    """Record a pledge (the caller commits); audited with the document's SHA-256, not its bytes."""
    mimetype = _validate(data)
    count = db.session.scalar(select(func.count()).select_from(Pledge).where(Pledge.program_id == program.id))
    if count is not None and count >= MAX_PLEDGES:
        raise PledgeError(f"A program holds at most {MAX_PLEDGES} pledges; remove one first.")
    pledge = Pledge(
        program_id=program.id,
        funder_name=data.funder_name.strip(),
        amount_cents=data.amount_cents,
        pledged_on=data.pledged_on,
        document=data.document,
        document_name=(data.document_name.strip() or "document")[-255:],
        document_type=mimetype,
        document_size=len(data.document),
        document_sha256=hashlib.sha256(data.document).hexdigest(),
        actor=_who(actor),
    )
    db.session.add(pledge)
    db.session.flush()
    audit(
        "grant_pledge.add",
        actor=actor,
        target_type="grant_pledge",
        target_id=pledge.id,
        details={"program": program.slug, **_facts(pledge)},
        remote_addr=remote_addr,
    )
    return pledge


def _facts(pledge: Pledge) -> dict[str, object]:
    return {
        "funder": pledge.funder_name,
        "amount_cents": pledge.amount_cents,
        "pledged_on": pledge.pledged_on.isoformat(),
        "document": {"name": pledge.document_name, "type": pledge.document_type, "sha256": pledge.document_sha256},
    }


def remove_pledge(pledge: Pledge, *, actor: StaffUser | str, remote_addr: str | None = None) -> None:
    """Remove a pledge withdrawn or recorded by mistake (the caller commits); the audit log keeps
    what it was, and packets already made keep their copy of its document."""
    audit(
        "grant_pledge.remove",
        actor=actor,
        target_type="grant_pledge",
        target_id=pledge.id,
        details={"program": pledge.program.slug, **_facts(pledge)},
        remote_addr=remote_addr,
    )
    db.session.delete(pledge)


def pledges_of(program_id: int) -> list[Pledge]:
    """A program's pledges, oldest first, without their documents' bytes."""
    return list(
        db.session.scalars(select(Pledge).where(Pledge.program_id == program_id).order_by(Pledge.pledged_on, Pledge.id))
    )


def pledge_of(program: GrantProgram, pledge_id: int) -> Pledge | None:
    return db.session.scalar(select(Pledge).where(Pledge.id == pledge_id, Pledge.program_id == program.id))


def document_filename(pledge: Pledge) -> str:
    """A safe file name for the document: the pledge's number and the funder, in plain letters."""
    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in pledge.funder_name.lower()).strip("-")
    slug = "-".join(part for part in slug.split("-") if part)[:60] or "funder"
    return f"pledge-{pledge.id}-{slug}.{EXTENSIONS[pledge.document_type]}"


def download_document(pledge: Pledge, *, actor: StaffUser | str, remote_addr: str | None = None) -> bytes:
    """The document's bytes; the download is audited (the caller commits)."""
    audit(
        "grant_pledge.document_download",
        actor=actor,
        target_type="grant_pledge",
        target_id=pledge.id,
        details={"program": pledge.program.slug, "sha256": pledge.document_sha256},
        remote_addr=remote_addr,
    )
    return pledge.document
