"""This installation's id: made once per database, stored in it, and read from there ever after.

It tags the metadata of every Stripe object the app creates (`installation`) and begins every
idempotency key, so that staging, production, a restored backup or a re-created development
database can share one Stripe account without taking each other's objects or replaying each
other's requests.
"""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import select

from donations.clock import utcnow
from donations.extensions import db, insert_ignoring
from donations.payments.models import Installation

METADATA_KEY = "installation"
_ROW = "this"
_EXTENSION = "donations.installation"
_CREATED_HERE = "donations.installation_created"  # a Session.info key


def installation_id() -> str:
    """The id, created (race-free: INSERT ... ON CONFLICT DO NOTHING) the first time it is asked
    for. Every Stripe event the worker applies asks for it, so the app keeps it once read from a
    row that is surely committed: the row never changes. An id this session created is not kept
    (its transaction may yet roll back, and another process then creates a different one)."""
    known: dict[str, str] = current_app.extensions.setdefault(_EXTENSION, {})
    if (kept := known.get("id")) is not None:
        return kept
    found = db.session.scalar(select(Installation.installation_id).where(Installation.key == _ROW))
    if found is not None:
        if not db.session.info.get(_CREATED_HERE):
            known["id"] = found
        return found
    db.session.info[_CREATED_HERE] = True
    db.session.execute(
        insert_ignoring(Installation.__table__, "key"),
        {"key": _ROW, "installation_id": "inst_" + secrets.token_hex(8), "created_at": utcnow()},
    )
    return db.session.execute(select(Installation.installation_id).where(Installation.key == _ROW)).scalar_one()


def forget_kept_id() -> None:
    """Read the id from the database again next time (tests that replace the row)."""
    current_app.extensions.pop(_EXTENSION, None)


def idempotency_key(*parts: object) -> str:
    """`{installation id}-{parts joined by -}`: unique to this database."""
    return "-".join([installation_id(), *(str(part) for part in parts)])
