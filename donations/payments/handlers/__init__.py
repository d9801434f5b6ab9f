"""A registry of small handlers, one per Stripe event type.

A handler reads the event's payload (never calling back to Stripe) and calls the ledger. It
raises `EventDeferred` when the event cannot be applied yet (its gift is not known yet, say):
the event is kept with that reason and re-applied later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from donations.clock import from_timestamp


class EventDeferred(Exception):
    """The event is valid but cannot be applied now; keep it and try again later."""


@dataclass(frozen=True)
class StripeEventData:
    id: str
    type: str
    created: datetime
    object: dict[str, Any]
    previous_attributes: dict[str, Any]

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StripeEventData:
        data = payload["data"]
        return cls(
            id=payload["id"],
            type=payload["type"],
            created=from_timestamp(payload["created"]),
            object=data["object"],
            previous_attributes=data.get("previous_attributes") or {},
        )


Handler = Callable[[StripeEventData], None]
_HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            if event_type in _HANDLERS:
                raise RuntimeError(f"two handlers for {event_type}")
            _HANDLERS[event_type] = handler
        return handler

    return register


def handler_for(event_type: str) -> Handler | None:
    return _HANDLERS.get(event_type)


def handled_types() -> list[str]:
    return sorted(_HANDLERS)


# Importing the modules registers their handlers.
from donations.payments.handlers import (  # noqa: E402, F401
    charges,
    checkout,
    declines,
    disputes,
    invoices,
    payouts,
    refunds,
    subscriptions,
)
