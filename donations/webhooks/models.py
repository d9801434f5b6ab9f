"""Outgoing webhooks: the endpoints admins configure, the events the ledger's changes cause (an
outbox written in the same transaction as the change), one delivery per event and endpoint,
and every attempt at it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from donations.clock import utcnow
from donations.extensions import Base


class EventType(enum.StrEnum):
    GIFT_RECORDED = "gift.recorded"
    GIFT_REVERSED = "gift.reversed"
    MEMBERSHIP_STARTED = "membership.started"
    MEMBERSHIP_CHANGED = "membership.changed"
    MEMBERSHIP_CANCELED = "membership.canceled"
    DONOR_CHANGED = "donor.changed"


# What each event is, in words: on the admin page and in every payload (`description`).
EVENT_WORDS: dict[str, str] = {
    EventType.GIFT_RECORDED: "A gift was recorded",
    EventType.GIFT_REVERSED: "A gift was refunded or reversed (or a reversal undone)",
    EventType.MEMBERSHIP_STARTED: "A membership started",
    EventType.MEMBERSHIP_CHANGED: "A membership's amount changed",
    EventType.MEMBERSHIP_CANCELED: "A membership was canceled",
    EventType.DONOR_CHANGED: "A donor's record changed (corrected, merged or erased)",
}


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"  # the receiver answered 2xx: never sent again unless staff resend
    PARKED = "parked"  # kept failing: shown to admins, who can resend


DELIVERY_STATUS_WORDS: dict[str, str] = {
    DeliveryStatus.PENDING: "Waiting",
    DeliveryStatus.DELIVERED: "Delivered",
    DeliveryStatus.PARKED: "Gave up (parked)",
}


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # The EventType values it is sent.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Signs every delivery; shown to the admin once, when made or rotated.
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    secret_rotated_at: Mapped[datetime | None]


class WebhookEvent(Base):
    """One thing that happened, with the exact body every endpoint is sent (built when it
    happened, so a later edit never rewrites what was said)."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # "evt_..." in the payload
    type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    # At most one event per cause ("gift.recorded:42"): a replayed Stripe event sends nothing new.
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id"))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    parked_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(200))

    event: Mapped[WebhookEvent] = relationship()
    endpoint: Mapped[WebhookEndpoint] = relationship()
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(back_populates="delivery", order_by="WebhookAttempt.id")


class WebhookAttempt(Base):
    """One try at a delivery: the delivery log staff read."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]
    worker: Mapped[str | None] = mapped_column(String(200))

    delivery: Mapped[WebhookDelivery] = relationship(back_populates="attempt_log")
