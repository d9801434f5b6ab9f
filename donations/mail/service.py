"""Queueing donor mail. `queue` only adds a row to the caller's transaction: if the gift rolls
back, so does its receipt; if the mail server is down, the message waits in the outbox."""

from __future__ import annotations

from typing import Any

from donations.extensions import db, insert_ignoring
from donations.mail.models import OutboxMessage


def queue(
    kind: str,
    to_address: str,
    context: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    donor_id: int | None = None,
) -> OutboxMessage | None:
    """Add a message to the outbox; with a dedupe_key, at most one per cause ever.

    Returns None when a message with that key exists (INSERT ... ON CONFLICT DO NOTHING, so two
    transactions queueing the same cause at once never fail each other).
    """
    message_id = enqueue(kind, to_address, context, dedupe_key=dedupe_key, donor_id=donor_id)
    return None if message_id is None else db.session.get(OutboxMessage, message_id)


def enqueue(
    kind: str,
    to_address: str,
    context: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    donor_id: int | None = None,
) -> int | None:
    """`queue` for callers that need no row back (the ledger's receipts): one INSERT, no read.
    Returns the new message's id, None when one with that key exists."""
    table = OutboxMessage.__table__  # a Core INSERT: the ORM's bulk-insert machinery costs more than the row
    return db.session.execute(
        insert_ignoring(table, "dedupe_key")
        .values(kind=kind, to_address=to_address, context=context, dedupe_key=dedupe_key, donor_id=donor_id)
        .returning(table.c.id)
    ).scalar_one_or_none()
