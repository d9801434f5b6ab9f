"""Queueing donor mail. `queue` only adds a row to the caller's transaction: if the gift rolls
back, so does its receipt; if the mail server is down, the message waits in the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from donations.extensions import db
from donations.receipts.models import OutboxMessage


def queue(
    kind: str,
    to_address: str,
    context: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    donor_id: int | None = None,
) -> OutboxMessage | None:
    """Add a message to the outbox; with a dedupe_key, at most one per cause ever."""
    if dedupe_key is not None:
        existing = db.session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return None
    message = OutboxMessage(kind=kind, to_address=to_address, context=context, dedupe_key=dedupe_key, donor_id=donor_id)
    db.session.add(message)
    return message
