"""Paging through Stripe's list APIs politely: `starting_after` pages of 100, a steady pace under
Stripe's rate limits (25 requests a second in test mode, 100 live), and a back-off on 429 that
follows `Retry-After` (or doubles, with jitter) until Stripe lets us through."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe

from donations.payments.gateway import GatewayError

PAGE_SIZE = 100
MAX_BACKOFF_SECONDS = 60.0
MAX_RATE_LIMITED = 20  # 429s in a row before giving up (the run resumes from its cursor)


def requests_per_second(secret_key: str) -> float:
    """Stripe's documented rate limit for the key's mode, kept a little under."""
    return 90.0 if secret_key.startswith(("sk_live_", "rk_live_")) else 22.0


@dataclass
class Pacer:
    per_second: float
    sleep: Callable[[float], None] = time.sleep
    _next: float = 0.0

    def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + 1.0 / self.per_second


# (name, its path, the filters of the listing); in the order they are applied: payments before
# what refers to them.
@dataclass(frozen=True)
class Listing:
    name: str
    path: str
    filters: Mapping[str, Any] = field(default_factory=dict)


LISTINGS = (
    Listing("checkout_sessions", "/v1/checkout/sessions", {"status": "complete", "expand": ["data.line_items"]}),
    Listing("subscriptions", "/v1/subscriptions", {"status": "all"}),
    Listing("invoices", "/v1/invoices", {"status": "paid"}),
    Listing("invoice_payments", "/v1/invoice_payments", {"status": "paid"}),
    Listing("payment_intents", "/v1/payment_intents"),
    Listing("refunds", "/v1/refunds"),
    Listing("disputes", "/v1/disputes"),
    Listing("payouts", "/v1/payouts"),
)


@dataclass
class Lister:
    client: stripe.StripeClient
    pacer: Pacer
    rate_limited: int = 0  # 429s met, for the summary
    requests: int = 0
    sleep: Callable[[float], None] = time.sleep

    def pages(
        self, listing: Listing, *, created_gte: int | None, starting_after: str | None
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page of the listing (newest first, as Stripe lists), from `starting_after` on."""
        cursor = starting_after
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE, **listing.filters}
            if created_gte is not None and listing.name != "invoice_payments":
                params["created"] = {"gte": created_gte}
            if cursor:
                params["starting_after"] = cursor
            page = self._get(listing, params)
            data = page.get("data") or []
            if data:
                yield data
                cursor = data[-1]["id"]
            if not page.get("has_more") or not data:
                return

    def _get(self, listing: Listing, params: dict[str, Any]) -> dict[str, Any]:
        """One page as plain JSON: the library's raw request (its errors, no retries of its own)
        without building its objects, which cost more than recording them."""
        backoff = 1.0
        for _ in range(MAX_RATE_LIMITED):
            self.pacer.wait()
            self.requests += 1
            try:
                return json.loads(self.client.raw_request("get", listing.path, **params).body)
            except stripe.RateLimitError as exc:
                self.rate_limited += 1
                self.sleep(_retry_after(exc) or backoff * (1 + random.random()) / 2)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except stripe.StripeError as exc:
                raise GatewayError(f"Stripe's {listing.name} list failed: {type(exc).__name__}: {exc}") from exc
        raise GatewayError(f"Stripe kept refusing for its rate limit ({listing.name}); run the command again later")


def _retry_after(exc: stripe.StripeError) -> float | None:
    value = (exc.headers or {}).get("Retry-After") or (exc.headers or {}).get("retry-after")
    try:
        return min(max(float(value), 0.0), MAX_BACKOFF_SECONDS) if value is not None else None
    except ValueError:
        return None


def history_client(secret_key: str, api_base: str | None, timeout: float) -> stripe.StripeClient:
    """Without the library's own retries: 429s are this module's to pace."""
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base} if api_base else {},
        http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=0,
    )
