"""The outbox: every message is written in the same transaction as the change that causes it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from donations.clock import utcnow
from donations.extensions import Base


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    PARKED = "parked"  # kept failing: shown to staff, who can resend


class OutboxMessage(Base):
    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))  # gift_receipt, magic_link, ...
    to_address: Mapped[str] = mapped_column(String(320))
    # Template context, rendered when sent (so a template fix applies to queued mail).
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # At most one message per cause (e.g. "gift_receipt:42"): replays queue nothing new.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    donor_id: Mapped[int | None] = mapped_column(ForeignKey("donors.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # The worker (host:pid:thread) that last tried it, written with the outcome of that try.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    # The Message-ID it went out with: stable per row, so a receiver can spot a duplicate.
    message_id: Mapped[str | None] = mapped_column(String(255))
    parked_at: Mapped[datetime | None]
