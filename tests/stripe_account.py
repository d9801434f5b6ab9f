"""A local stand-in for a Stripe account with history, answering Stripe's list APIs the way
Stripe does: newest first, `limit` and `starting_after` paging, `created[gte]`, `status` and
`product` filters, and a 429 (with Retry-After) every so often. Serves tests and bench/.

    account = StripeAccount()
    account.add("checkout_sessions", session)  # any number of objects per list
    with HTTPRecorder() as api:
        account.serve(api, throttle_every=5)
        ... STRIPE_API_BASE=api.url ...

`serve_setup(api)` also creates and updates what `payments setup-stripe` makes (products, prices,
Billing Portal configurations, webhook endpoints; endpoints can be deleted), as Stripe does:
updates merge metadata and nested settings and replace lists, a price's `transfer_lookup_key`
takes its key from another price, and only a newly created endpoint shows its `secret`.
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
    "products": "/v1/products",
    "prices": "/v1/prices",
    "billing_portal_configurations": "/v1/billing_portal/configurations",
    "webhook_endpoints": "/v1/webhook_endpoints",
}
# What `serve_setup` makes: list name -> (id prefix, Stripe's object name).
SETUP_OBJECTS = {
    "products": ("prod", "product"),
    "prices": ("price", "price"),
    "billing_portal_configurations": ("bpc", "billing_portal.configuration"),
    "webhook_endpoints": ("we", "webhook_endpoint"),
}
SETUP_CREATED = 1_790_000_000  # objects made through the stand-in are "created" from here, a second apart
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
        if (
            "starting_after" in query
            and "created[gte]" not in query
            and not query.get("status")
            and "product" not in query
        ):
            start = self._positions[name][query["starting_after"]] + 1
            limit = int(query.get("limit", 10))
            return items[start : start + limit], len(items) > start + limit
        if "created[gte]" in query:
            items = [o for o in items if (o.get("created") or 0) >= int(query["created[gte]"])]
        if "product" in query:
            items = [o for o in items if o.get("product") == query["product"]]
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

    # -- what `payments setup-stripe` makes ----------------------------------------------------
    def serve_setup(self, api: HTTPRecorder) -> None:
        """Create (POST list path), update (POST list path/id) and, for webhook endpoints, delete."""
        for name in SETUP_OBJECTS:
            path = PATHS[name]
            api.route("GET", path, self._responder(name, path, 0))
            api.route("POST", path, lambda request, name=name: self._create(name, request))
            api.route_prefix("POST", path + "/", lambda request, name=name: self._update(name, request))
        api.route_prefix("DELETE", PATHS["webhook_endpoints"] + "/", self._delete_endpoint)

    def find(self, listing: str, object_id: str) -> dict[str, Any]:
        return next(o for o in self.objects[listing] if o["id"] == object_id)

    def remove(self, listing: str, object_id: str) -> None:
        """Delete an object behind the app's back."""
        self.objects[listing] = [o for o in self.objects[listing] if o["id"] != object_id]
        self._sorted.pop(listing, None)

    def change(self, listing: str, object_id: str, **fields: Any) -> None:
        """Change an object behind the app's back (as staff would in the Dashboard)."""
        self.find(listing, object_id).update(fields)

    def _create(self, name: str, request: RecordedRequest) -> Answer:
        prefix, kind = SETUP_OBJECTS[name]
        number = sum(len(objects) for objects in self.objects.values()) + 1
        fields = _typed(request.nested_form)
        fields.pop("transfer_lookup_key", None)
        made: dict[str, Any] = {
            "id": f"{prefix}_{number:06d}",
            "object": kind,
            "created": SETUP_CREATED + number,
            "metadata": {},
            "active": True,
        }
        if name == "prices":
            made.update(type="recurring" if "recurring" in fields else "one_time", recurring=None, lookup_key=None)
            if fields.get("lookup_key"):
                for other in self.objects["prices"]:
                    if other.get("lookup_key") == fields["lookup_key"]:
                        other["lookup_key"] = None
        if name == "billing_portal_configurations":
            made["is_default"] = False
        if name == "webhook_endpoints":
            del made["active"]
            made.update(status="enabled", api_version=None, description=None)
        made.update(fields)
        self.add(name, made)
        answer = dict(made)
        if name == "webhook_endpoints":
            answer["secret"] = f"whsec_standin_{number:06d}"  # shown on creation only
        return Answer(json=answer)

    def _update(self, name: str, request: RecordedRequest) -> Answer:
        object_id = request.path.rsplit("/", 1)[1]
        found = next((o for o in self.objects[name] if o["id"] == object_id), None)
        if found is None:
            return Answer(status=404, json=stripe_error(f"No such {name}: '{object_id}'", "invalid_request_error"))
        fields = _typed(request.nested_form)
        if name == "webhook_endpoints" and "disabled" in fields:
            found["status"] = "disabled" if fields.pop("disabled") else "enabled"
        _merge(found, fields)
        self._sorted.pop(name, None)
        return Answer(json=found)

    def _delete_endpoint(self, request: RecordedRequest) -> Answer:
        object_id = request.path.rsplit("/", 1)[1]
        self.remove("webhook_endpoints", object_id)
        return Answer(json={"id": object_id, "object": "webhook_endpoint", "deleted": True})


NUMBERS = {"unit_amount"}


def _typed(value: Any, key: str = "") -> Any:
    """Form strings as Stripe reads them: booleans and amounts (metadata stays strings)."""
    if key == "metadata":
        return value
    if isinstance(value, dict):
        return {name: _typed(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if value in ("true", "false"):
        return value == "true"
    if key in NUMBERS:
        return int(value)
    return value


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif value == "" and isinstance(target.get(key), list):
            target[key] = []
        else:
            target[key] = value
