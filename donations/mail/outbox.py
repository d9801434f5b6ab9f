"""Staff operations on the outbox: what is parked or retrying, and resending a parked message.
(Kept apart from `service.queue`, which the ledger imports, so staff code is not pulled in there.)"""

from __future__ import annotations

from sqlalchemy import func, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import db
from donations.mail.models import OutboxMessage, OutboxStatus

STAFF_LIST_LIMIT = 200


class OutboxError(ValueError):
    """A staff request the outbox refuses (the message is not parked): a 4xx."""


class MessageNotFound(OutboxError):
    pass


def resend(message_id: int, *, actor: StaffUser | str, remote_addr: str | None = None) -> OutboxMessage:
    """Put a parked message back in the queue, due now, with a fresh count of attempts. Audited;
    the caller commits."""
    message = db.session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if message is None:
        raise MessageNotFound(f"there is no message {message_id}")
    if message.status != OutboxStatus.PARKED:
        raise OutboxError(f"message {message_id} is {message.status}, not parked: only a parked message is resent")
    message.status = OutboxStatus.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.parked_at = None
    audit(
        "outbox.resend",
        actor=actor,
        target_type="outbox_message",
        target_id=message.id,
        details={"kind": message.kind, "to": message.to_address, "last_error": message.last_error},
        remote_addr=remote_addr,
    )
    return message


def status_counts() -> dict[str, int]:
    rows = db.session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
    counts: dict[str, int] = dict.fromkeys(OutboxStatus, 0)
    counts.update(dict(rows))
    return counts


def parked_messages() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PARKED)
            .order_by(OutboxMessage.parked_at.desc(), OutboxMessage.id.desc())
            .limit(STAFF_LIST_LIMIT)
        )
    )


def retrying_messages() -> list[OutboxMessage]:
    """Pending messages that have failed at least once: the mail server may be in trouble."""
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.attempts > 0)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(STAFF_LIST_LIMIT)
        )
    )
