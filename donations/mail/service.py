"""Queueing donor mail. `queue` only adds a row to the caller's transaction: if the gift rolls
back, so does its receipt; if the mail server is down, the message waits in the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from donations.extensions import db, insert_ignoring
from donations.ledger.models import Donor, Membership, Reversal
from donations.mail.models import OutboxMessage

# History brought in from Stripe or another system is years old: no donor is mailed about it.
_quiet: ContextVar[bool] = ContextVar("donor_mail_quiet", default=False)


@contextmanager
def no_donor_mail() -> Iterator[None]:
    """Within it, the queue_... functions queue nothing (a history import)."""
    token = _quiet.set(True)
    try:
        yield
    finally:
        _quiet.reset(token)


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
    """`queue` for callers that need no row back (the `queue_...` functions below): one INSERT, no read.
    Returns the new message's id, None when one with that key exists (or inside no_donor_mail)."""
    if _quiet.get():
        return None
    table = OutboxMessage.__table__  # a Core INSERT: the ORM's bulk-insert machinery costs more than the row
    return db.session.execute(
        insert_ignoring(table, "dedupe_key")
        .values(kind=kind, to_address=to_address, context=context, dedupe_key=dedupe_key, donor_id=donor_id)
        .returning(table.c.id)
    ).scalar_one_or_none()


# One function per kind of message the ledger's changes cause. The callers (payments handlers,
# staff actions, the reader's pages) queue them in the transaction that made the change; each
# dedupe key names the cause, so a replayed event or a repeated request queues nothing twice.


def queue_gift_receipt(gift_id: int, donor_id: int, email: str) -> None:
    """A one-time gift was paid (online or offline)."""
    enqueue("gift_receipt", email, {"gift_id": gift_id}, dedupe_key=f"gift_receipt:{gift_id}", donor_id=donor_id)


def queue_installment_receipt(gift_id: int, donor_id: int, email: str) -> None:
    """A membership's installment was paid."""
    enqueue(
        "installment_receipt",
        email,
        {"gift_id": gift_id},
        dedupe_key=f"installment_receipt:{gift_id}",
        donor_id=donor_id,
    )


def queue_membership_welcome(membership: Membership) -> None:
    enqueue(
        "membership_welcome",
        membership.donor.email,
        {"membership_id": membership.id},
        dedupe_key=f"membership_welcome:{membership.id}",
        donor_id=membership.donor_id,
    )


def queue_membership_canceled(membership: Membership) -> None:
    enqueue(
        "membership_canceled",
        membership.donor.email,
        {"membership_id": membership.id},
        dedupe_key=f"membership_canceled:{membership.id}",
        donor_id=membership.donor_id,
    )


def queue_membership_changed(membership: Membership, change_id: int) -> None:
    """The member's amount changed: once per recorded change."""
    enqueue(
        "membership_changed",
        membership.donor.email,
        {"membership_id": membership.id, "change_id": change_id},
        dedupe_key=f"membership_changed:{change_id}",
        donor_id=membership.donor_id,
    )


def queue_payment_failed(membership: Membership, invoice_id: str) -> None:
    """A renewal's payment failed: once per invoice."""
    enqueue(
        "payment_failed",
        membership.donor.email,
        {"membership_id": membership.id},
        dedupe_key=f"payment_failed:{invoice_id}",
        donor_id=membership.donor_id,
    )


def queue_membership_paused(membership: Membership, paused_until: datetime) -> None:
    """The member skips installments until `paused_until`: once per pause (a moved end date is
    a new pause, told again)."""
    enqueue(
        "membership_paused",
        membership.donor.email,
        {"membership_id": membership.id, "paused_until_iso": paused_until.isoformat()},
        dedupe_key=f"membership_paused:{membership.id}:{paused_until:%Y%m%dT%H%M%S}",
        donor_id=membership.donor_id,
    )


def queue_membership_resumed(membership: Membership, paused_until: datetime) -> None:
    """The pause that was to run until `paused_until` ended (lifted early, or at its end)."""
    enqueue(
        "membership_resumed",
        membership.donor.email,
        {"membership_id": membership.id},
        dedupe_key=f"membership_resumed:{membership.id}:{paused_until:%Y%m%dT%H%M%S}",
        donor_id=membership.donor_id,
    )


def queue_renewal_reminder(membership: Membership, renews_at: datetime) -> bool:
    """An annual membership renews at `renews_at`: once per membership per renewal. True when
    queued (False: already reminded of that renewal)."""
    return (
        enqueue(
            "renewal_reminder",
            membership.donor.email,
            {"membership_id": membership.id, "renews_at_iso": renews_at.isoformat()},
            dedupe_key=f"renewal_reminder:{membership.id}:{renews_at:%Y%m%d}",
            donor_id=membership.donor_id,
        )
        is not None
    )


def queue_refund_confirmed(reversal: Reversal, donor: Donor) -> None:
    """A refund of the donor's gift went through: once per Stripe refund."""
    enqueue(
        "refund_confirmed",
        donor.email,
        {"reversal_id": reversal.id},
        dedupe_key=f"refund_confirmed:{reversal.stripe_key}",
        donor_id=donor.id,
    )


def queue_magic_link(donor: Donor, url: str, expires_at: datetime) -> None:
    """A self-service sign-in link: one per request, so no dedupe key."""
    enqueue("magic_link", donor.email, {"url": url, "expires_at_iso": expires_at.isoformat()}, donor_id=donor.id)
