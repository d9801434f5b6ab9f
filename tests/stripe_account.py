"""A local stand-in for a Stripe account with history, answering Stripe's list APIs the way
Stripe does: newest first, `limit` and `starting_after` paging, `created[gte]` and `status`
filters, and a 429 (with Retry-After) every so often. Serves tests and bench/.

    account = StripeAccount()
    account.add("checkout_sessions", session)  # any number of objects per list
    with HTTPRecorder() as api:
        account.serve(api, throttle_every=5)
        ... STRIPE_API_BASE=api.url ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.http_recorder import Answer, HTTPRecorder, RecordedRequest, stripe_error

PATHS = {
    "checkout_sessions": "/v1/checkout/sessions",
    "subscriptions": "/v1/subscriptions",
    "invoices": "/v1/invoices",
    "invoice_payments": "/v1/invoice_payments",
    "payment_intents": "/v1/payment_intents",
    "refunds": "/v1/refunds",
    "disputes": "/v1/disputes",
    "payouts": "/v1/payouts",
}
# The statuses each list's `status` filter knows (subscriptions' "all" lists every one).
STATUS_FILTERED = {"checkout_sessions", "subscriptions", "invoices", "invoice_payments", "payouts"}


@dataclass
class StripeAccount:
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {name: [] for name in PATHS})
    served: int = 0
    throttled: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # list name -> 500s still to answer

    _sorted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _positions: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, listing: str, *objects: dict[str, Any]) -> None:
        self.objects[listing].extend(objects)
        self._sorted.pop(listing, None)

    def _newest_first(self, name: str) -> list[dict[str, Any]]:
        if name not in self._sorted:
            self._sorted[name] = sorted(
                self.objects[name], key=lambda o: (o.get("created") or 0, o["id"]), reverse=True
            )
            self._positions[name] = {o["id"]: n for n, o in enumerate(self._sorted[name])}
        return self._sorted[name]

    def listing(self, name: str, query: dict[str, str]) -> tuple[list[dict[str, Any]], bool]:
        items = self._newest_first(name)
        if "starting_after" in query and "created[gte]" not in query and not query.get("status"):
            start = self._positions[name][query["starting_after"]] + 1
            limit = int(query.get("limit", 10))
            return items[start : start + limit], len(items) > start + limit
        if "created[gte]" in query:
            items = [o for o in items if (o.get("created") or 0) >= int(query["created[gte]"])]
        status = query.get("status")
        if status and status != "all" and name in STATUS_FILTERED:
            items = [o for o in items if o.get("status") == status]
        if "starting_after" in query:
            ids = [o["id"] for o in items]
            items = items[ids.index(query["starting_after"]) + 1 :]
        limit = int(query.get("limit", 10))
        return items[:limit], len(items) > limit

    def serve(self, api: HTTPRecorder, *, throttle_every: int = 0) -> None:
        for name, path in PATHS.items():
            api.route("GET", path, self._responder(name, path, throttle_every))

    def _responder(self, name: str, path: str, throttle_every: int):
        def answer(request: RecordedRequest) -> Answer:
            self.served += 1
            if throttle_every and self.served % throttle_every == 0:
                self.throttled += 1
                error = stripe_error(
                    "Too many requests hit the API too quickly.", "invalid_request_error", "rate_limit"
                )
                return Answer(status=429, json=error, headers={"Retry-After": "0"})
            if self.failures.get(name):
                self.failures[name] -= 1
                return Answer(status=500, json=stripe_error("An unknown error occurred"))
            data, has_more = self.listing(name, request.query)
            return Answer(json={"object": "list", "url": path, "has_more": has_more, "data": data})

        return answer
