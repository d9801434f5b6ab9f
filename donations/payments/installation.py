"""This installation's id: made once per database, stored in it, and read from there ever after.

It tags the metadata of every Stripe object the app creates (`installation`) and begins every
idempotency key, so that staging, production, a restored backup or a re-created development
database can share one Stripe account without taking each other's objects or replaying each
other's requests.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select

from donations.clock import utcnow
from donations.extensions import db, insert_ignoring
from donations.payments.models import Installation

METADATA_KEY = "installation"
_ROW = "this"


def installation_id() -> str:
    """The id, created (race-free: INSERT ... ON CONFLICT DO NOTHING) the first time it is asked for."""
    found = db.session.scalar(select(Installation.installation_id).where(Installation.key == _ROW))
    if found is not None:
        return found
    db.session.execute(
        insert_ignoring(Installation.__table__, "key"),
        {"key": _ROW, "installation_id": "inst_" + secrets.token_hex(8), "created_at": utcnow()},
    )
    return db.session.execute(select(Installation.installation_id).where(Installation.key == _ROW)).scalar_one()


def idempotency_key(*parts: object) -> str:
    """`{installation id}-{parts joined by -}`: unique to this database."""
    return "-".join([installation_id(), *(str(part) for part in parts)])
