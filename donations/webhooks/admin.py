"""Admins' operations on outgoing webhooks: endpoints (add, edit, turn on or off, a new secret,
delete) and resending a delivery. Each is audited in the caller's transaction; the caller commits. The
secret is never written to the audit log."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, Result, delete, func, select
from sqlalchemy.orm import selectinload

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import db
from donations.webhooks.models import (
    DeliveryStatus,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from donations.webhooks.signing import new_secret

LOG_LIMIT = 100  # deliveries shown per endpoint, newest first
LOOPBACK_NAMES = ("localhost",)


class WebhookAdminError(ValueError):
    """A request refused with a message for the admin: a 4xx."""


class NotFound(WebhookAdminError):
    pass


@dataclass(frozen=True)
class EndpointSettings:
    url: str
    description: str
    event_types: list[str]
    enabled: bool


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """https anywhere; plain http only to this machine (localhost, 127.0.0.1, ::1), where the
    request never crosses a network (a development receiver, a local bridge)."""
    url = url.strip()
    if len(url) > 2000:
        raise WebhookAdminError("The address is longer than 2,000 characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        raise WebhookAdminError("Enter an address like https://hooks.example.org/donations.") from None
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise WebhookAdminError("Enter an address like https://hooks.example.org/donations.")
    if parts.username or parts.password:
        raise WebhookAdminError("Leave the user name and password out of the address: deliveries are signed.")
    if parts.scheme == "http" and not _is_loopback(host):
        raise WebhookAdminError("The address must start with https:// (plain http only to localhost or 127.0.0.1).")
    return url


def _clean(settings: EndpointSettings) -> EndpointSettings:
    types = [t for t in EventType if t in settings.event_types]
    if not types:
        raise WebhookAdminError("Choose at least one kind of event to send.")
    description = " ".join(settings.description.split())
    if len(description) > 200:
        raise WebhookAdminError("The description is longer than 200 characters.")
    return EndpointSettings(check_url(settings.url), description, [str(t) for t in types], settings.enabled)


def _values(endpoint: WebhookEndpoint) -> dict[str, object]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
    }


def get_endpoint(endpoint_id: int, *, lock: bool = False) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)
    if endpoint is None:
        raise NotFound(f"there is no webhook endpoint {endpoint_id}")
    return endpoint


def create_endpoint(settings: EndpointSettings, *, actor: StaffUser, remote_addr: str | None) -> WebhookEndpoint:
    """A new endpoint with a new secret (the caller shows it once)."""
    clean = _clean(settings)
    endpoint = WebhookEndpoint(
        url=clean.url,
        description=clean.description,
        event_types=clean.event_types,
        enabled=clean.enabled,
        secret=new_secret(),
        created_at=utcnow(),
    )
    db.session.add(endpoint)
    db.session.flush()
    audit(
        "webhook_endpoint.create",
        actor=actor,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"after": _values(endpoint)},
        remote_addr=remote_addr,
    )
    return endpoint


def update_endpoint(
    endpoint_id: int, settings: EndpointSettings, *, actor: StaffUser, remote_addr: str | None
) -> WebhookEndpoint:
    clean = _clean(settings)
    endpoint = get_endpoint(endpoint_id, lock=True)
    before = _values(endpoint)
    endpoint.url, endpoint.description = clean.url, clean.description
    endpoint.event_types, endpoint.enabled = clean.event_types, clean.enabled
    after = _values(endpoint)
    if before == after:
        raise WebhookAdminError("Nothing changed.")
    audit(
        "webhook_endpoint.edit",
        actor=actor,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"before": before, "after": after},
        remote_addr=remote_addr,
    )
    return endpoint


def rotate_secret(endpoint_id: int, *, actor: StaffUser, remote_addr: str | None) -> WebhookEndpoint:
    """A new secret at once: deliveries from now on (retries included) are signed with it."""
    endpoint = get_endpoint(endpoint_id, lock=True)
    endpoint.secret = new_secret()
    endpoint.secret_rotated_at = utcnow()
    audit(
        "webhook_endpoint.rotate_secret",
        actor=actor,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"url": endpoint.url},
        remote_addr=remote_addr,
    )
    return endpoint


def delete_endpoint(endpoint_id: int, *, actor: StaffUser, remote_addr: str | None) -> int:
    """Delete the endpoint with its delivery log (turning it off keeps the log); returns how many
    deliveries went with it. The events stay: other endpoints may have been sent them.

    The order of the locks matters on PostgreSQL. A worker sending a delivery holds its row until
    it commits the attempt, and that last UPDATE takes a key-share lock on the endpoint (the row
    version is its own). So its deliveries are locked first, which waits for a delivery in
    flight; then the endpoint, which makes any transaction queueing a new delivery to it finish
    first (`outbox._subscribers`); then the DELETEs, which see what those committed."""
    get_endpoint(endpoint_id)
    db.session.scalars(
        select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id).with_for_update()
    ).all()
    endpoint = get_endpoint(endpoint_id, lock=True)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id)
    db.session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)),
        execution_options={"synchronize_session": False},
    )
    removed = _rowcount(
        db.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id),
            execution_options={"synchronize_session": False},
        )
    )
    audit(
        "webhook_endpoint.delete",
        actor=actor,
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        details={"before": _values(endpoint), "deliveries_removed": removed},
        remote_addr=remote_addr,
    )
    db.session.delete(endpoint)
    db.session.flush()
    return removed


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)  # DML gives a CursorResult


def resend(delivery_id: int, *, actor: StaffUser, remote_addr: str | None) -> WebhookDelivery:
    """Send a delivery again, due now, with a fresh count of attempts: a parked one, or one
    delivered that the receiver lost. A delivery still waiting is left to the worker."""
    delivery = db.session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if delivery is None:
        raise NotFound(f"there is no delivery {delivery_id}")
    if delivery.status == DeliveryStatus.PENDING:
        raise WebhookAdminError(f"delivery {delivery_id} is still waiting to be sent: the worker will try it")
    before = delivery.status
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.parked_at = None
    delivery.delivered_at = None
    audit(
        "webhook_delivery.resend",
        actor=actor,
        target_type="webhook_delivery",
        target_id=delivery.id,
        details={
            "endpoint_id": delivery.endpoint_id,
            "event": delivery.event.public_id,
            "type": delivery.event.type,
            "was": before,
            "last_error": delivery.last_error,
        },
        remote_addr=remote_addr,
    )
    return delivery


def endpoints() -> list[WebhookEndpoint]:
    return list(db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def delivery_counts() -> dict[int, dict[str, int]]:
    """Per endpoint, its deliveries by status."""
    counts: dict[int, dict[str, int]] = {}
    rows = db.session.execute(
        select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count()).group_by(
            WebhookDelivery.endpoint_id, WebhookDelivery.status
        )
    )
    for endpoint_id, status, count in rows:
        counts.setdefault(endpoint_id, dict.fromkeys(DeliveryStatus, 0))[status] = count
    return counts


def delivery_log(endpoint_id: int) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries with their events and every attempt."""
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .options(selectinload(WebhookDelivery.event), selectinload(WebhookDelivery.attempt_log))
            .order_by(WebhookDelivery.id.desc())
            .limit(LOG_LIMIT)
        )
    )
