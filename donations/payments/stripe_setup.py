"""The Stripe gateway's account set-up and check (`payments setup-stripe`, `check-stripe`).

Objects are found by the app's metadata (this installation's id, and for products the fund and
frequency) and prices by their `lookup_key`, never by name: a newsroom's account holds its other
business too, and staff may rename anything in the Dashboard. One comparison (`_portal_problems`,
`_endpoint_problems`, `_price_problems`) decides both what set-up changes and what the check
reports, so a set-up account always passes the check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import stripe

from donations.forms import FREQUENCY_CHOICES
from donations.ledger.models import FREQUENCY_INTERVAL
from donations.money import format_money
from donations.payments.gateway import (
    AccountCheck,
    AccountPlan,
    AccountSetUp,
    Difference,
    GatewayError,
    PriceNeed,
    SetUpPrice,
)
from donations.payments.installation import METADATA_KEY

# Stripe's limit: a portal configuration switches among at most 10 products.
PORTAL_PRODUCT_LIMIT = 10
SET_UP = "Run `flask --app wsgi payments setup-stripe --webhook-url URL`"
FREQUENCY_WORDS = dict(FREQUENCY_CHOICES)

T = TypeVar("T")


@dataclass
class _Survey:
    """The app's own objects on the account."""

    products: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # (fund id, frequency)
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # lookup key -> price
    portal: dict[str, Any] | None = None
    endpoint: dict[str, Any] | None = None


@dataclass
class StripeAccountSetUp:
    client: stripe.StripeClient
    installation: str

    # -- set-up --------------------------------------------------------------------------------
    def apply(self, plan: AccountPlan) -> AccountSetUp:
        survey = self._survey(plan)
        done = AccountSetUp()
        wanted_keys = {self._lookup_key(need) for need in plan.prices}
        for (fund_id, frequency), needs in _by_product(plan.prices).items():
            product = self._product(survey, fund_id, frequency, needs[0], done.changes)
            for need in needs:
                price = self._price(survey, product["id"], need, done.changes)
                done.prices.append(SetUpPrice(need=need, price_id=price["id"], product_id=product["id"]))
        # Amounts no longer suggested stop being offered (their members keep paying them).
        for key, price in survey.prices.items():
            if key not in wanted_keys and price.get("active"):
                self._call(self.client.v1.prices.update, price["id"], params={"active": False})
                done.changes.append(f"Turned off the price of {_price_words(price, survey)}: no longer suggested.")
        wanted_products = set(_by_product(plan.prices))
        for (fund_id, frequency), product in survey.products.items():
            if (fund_id, frequency) not in wanted_products and product.get("active"):
                self._call(self.client.v1.products.update, product["id"], params={"active": False})
                done.changes.append(f"Turned off the product {product.get('name')}: its fund or frequency is off.")
        done.portal_configuration_id = self._portal(survey, done.prices, done.changes)
        done.webhook_endpoint_id, done.webhook_secret = self._endpoint(survey, plan, done.changes)
        return done

    def _product(
        self, survey: _Survey, fund_id: int, frequency: str, need: PriceNeed, changes: list[str]
    ) -> dict[str, Any]:
        name = _product_name(need)
        product = survey.products.get((fund_id, frequency))
        if product is None:
            params: dict[str, Any] = {"name": name, "metadata": self._metadata(fund_id, frequency)}
            product = self._call(self.client.v1.products.create, params=cast(Any, params)).to_dict()
            changes.append(f"Created the product {name}.")
        elif product.get("name") != name or not product.get("active"):
            update = {"name": name, "active": True}
            product = self._call(self.client.v1.products.update, product["id"], params=cast(Any, update)).to_dict()
            changes.append(f"Updated the product {name} (its name, or turned it back on).")
        return product

    def _price(self, survey: _Survey, product_id: str, need: PriceNeed, changes: list[str]) -> dict[str, Any]:
        key = self._lookup_key(need)
        price = survey.prices.get(key)
        if price is None or _id(price.get("product")) != product_id:
            params: dict[str, Any] = {
                "product": product_id,
                "currency": need.currency,
                "unit_amount": need.amount_cents,
                "lookup_key": key,
                "transfer_lookup_key": True,  # a price of a product made again takes over its key
                "metadata": self._metadata(need.fund_id, need.frequency),
            }
            if need.frequency in FREQUENCY_INTERVAL:
                params["recurring"] = {"interval": FREQUENCY_INTERVAL[need.frequency]}
            price = self._call(self.client.v1.prices.create, params=cast(Any, params)).to_dict()
            changes.append(f"Created the price {need.words}.")
        elif not price.get("active"):
            price = self._call(self.client.v1.prices.update, price["id"], params={"active": True}).to_dict()
            changes.append(f"Turned the price {need.words} back on.")
        survey.prices[key] = price
        return price

    def _portal(self, survey: _Survey, prices: list[SetUpPrice], changes: list[str]) -> str:
        wanted = _portal_products(prices)
        if survey.portal is None:
            params: dict[str, Any] = {
                "name": "Memberships: cancel, update card, change amount",
                "metadata": {METADATA_KEY: self.installation},
                "features": _portal_features(wanted),
            }
            made = self._call(self.client.v1.billing_portal.configurations.create, params=cast(Any, params))
            changes.append("Created the Billing Portal configuration (cancel, update card, change amount).")
            return made.id
        portal = survey.portal
        if _portal_problems(portal, wanted):
            update = {"active": True, "features": _portal_features(wanted)}
            self._call(self.client.v1.billing_portal.configurations.update, portal["id"], params=cast(Any, update))
            changes.append("Updated the Billing Portal configuration to the funds' prices and features.")
        return portal["id"]

    def _endpoint(self, survey: _Survey, plan: AccountPlan, changes: list[str]) -> tuple[str, str | None]:
        old = survey.endpoint
        if old is not None and old.get("api_version") == stripe.api_version:
            if _endpoint_problems(old, plan):
                update = {"url": plan.webhook_url, "enabled_events": plan.events, "disabled": False}
                self._call(self.client.v1.webhook_endpoints.update, old["id"], params=cast(Any, update))
                changes.append(f"Updated the webhook endpoint: {plan.webhook_url}, its events, enabled.")
            return old["id"], None
        params: dict[str, Any] = {
            "url": plan.webhook_url,
            "enabled_events": plan.events,
            "api_version": stripe.api_version,
            "description": "Gifts and memberships",
            "metadata": {METADATA_KEY: self.installation},
        }
        made = self._call(self.client.v1.webhook_endpoints.create, params=cast(Any, params))
        changes.append(f"Created the webhook endpoint {plan.webhook_url} (API version {stripe.api_version}).")
        if old is not None:
            # Stripe cannot change an endpoint's API version: the new one replaces it.
            self._call(self.client.v1.webhook_endpoints.delete, old["id"])
            changes.append(f"Deleted the old webhook endpoint (API version {_version(old)}).")
        return made.id, made.secret

    # -- check ---------------------------------------------------------------------------------
    def compare(self, plan: AccountPlan) -> AccountCheck:
        survey = self._survey(plan)
        check = AccountCheck()
        found: list[SetUpPrice] = []
        for (fund_id, frequency), needs in _by_product(plan.prices).items():
            product = survey.products.get((fund_id, frequency))
            name = _product_name(needs[0])
            if product is None:
                check.differences.append(
                    Difference(f"There is no product for {name}: its suggested amounts have no prices.", SET_UP + ".")
                )
                continue
            if not product.get("active"):
                check.differences.append(
                    Difference(f"The product {name} is turned off.", SET_UP + " (it turns it back on).")
                )
            for need in needs:
                price = survey.prices.get(self._lookup_key(need))
                problem = _price_problem(price, product["id"], need)
                if problem:
                    check.differences.append(problem)
                if price is not None and price.get("active"):
                    found.append(SetUpPrice(need=need, price_id=price["id"], product_id=product["id"]))
                    check.prices[need.key] = price["id"]
        recurring = _portal_products(found)
        if len(recurring) > PORTAL_PRODUCT_LIMIT:
            check.differences.append(
                Difference(
                    f"{len(recurring)} membership products: the Billing Portal switches among at most "
                    f"{PORTAL_PRODUCT_LIMIT}, so it offers the first {PORTAL_PRODUCT_LIMIT}.",
                    "Turn off funds or frequencies that need no membership, then run setup-stripe.",
                )
            )
        if survey.portal is None:
            check.differences.append(
                Difference("There is no Billing Portal configuration of this app.", SET_UP + " (it creates one).")
            )
        else:
            check.portal_configuration_id = survey.portal["id"]
            check.differences.extend(_portal_problems(survey.portal, recurring))
        check.differences.extend(_endpoint_problems(survey.endpoint, plan))
        return check

    # -- reading the account ------------------------------------------------------------------
    def _survey(self, plan: AccountPlan) -> _Survey:
        survey = _Survey()
        for product in self._all(self.client.v1.products.list, limit=100):
            metadata = product.get("metadata") or {}
            if metadata.get(METADATA_KEY) == self.installation and metadata.get("fund_id", "").isdigit():
                survey.products.setdefault((int(metadata["fund_id"]), metadata.get("frequency", "")), product)
        for product in survey.products.values():
            for price in self._all(self.client.v1.prices.list, product=product["id"], limit=100):
                if (price.get("metadata") or {}).get(METADATA_KEY) == self.installation and price.get("lookup_key"):
                    survey.prices[price["lookup_key"]] = price
        portals = [
            portal
            for portal in self._all(self.client.v1.billing_portal.configurations.list, limit=100)
            if (portal.get("metadata") or {}).get(METADATA_KEY) == self.installation
        ]
        survey.portal = next((p for p in portals if p.get("active")), portals[0] if portals else None)
        endpoints = [
            endpoint
            for endpoint in self._all(self.client.v1.webhook_endpoints.list, limit=100)
            if (endpoint.get("metadata") or {}).get(METADATA_KEY) == self.installation
        ]
        survey.endpoint = next(
            (e for e in endpoints if e.get("url") == plan.webhook_url), endpoints[0] if endpoints else None
        )
        return survey

    def _all(self, listing: Callable[..., Any], **params: Any) -> Iterator[dict[str, Any]]:
        try:
            for item in listing(params=params).auto_paging_iter():
                yield item.to_dict()
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe did not answer a list: {exc.user_message or type(exc).__name__}") from exc

    def _call(self, request: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return request(*args, **kwargs)
        except stripe.StripeError as exc:
            raise GatewayError(f"Stripe refused or did not answer: {exc.user_message or type(exc).__name__}") from exc

    def _metadata(self, fund_id: int, frequency: str) -> dict[str, str]:
        return {METADATA_KEY: self.installation, "fund_id": str(fund_id), "frequency": frequency}

    def _lookup_key(self, need: PriceNeed) -> str:
        """Unique on the account (Stripe's rule) and to this installation."""
        return f"{self.installation}-fund-{need.fund_id}-{need.frequency}-{need.amount_cents}-{need.currency}"


def _price_words(price: dict[str, Any], survey: _Survey) -> str:
    """ "$10.00, Community Forums Reporting (Monthly)": a price of the app's, for people."""
    metadata = price.get("metadata") or {}
    fund_id = metadata.get("fund_id", "")
    product = survey.products.get((int(fund_id), metadata.get("frequency", ""))) if fund_id.isdigit() else None
    amount = format_money(price.get("unit_amount") or 0, price.get("currency") or "usd")
    return f"{amount}, {product.get('name')}" if product else amount


def _version(endpoint: dict[str, Any]) -> str:
    return endpoint.get("api_version") or "the account's default"


def _by_product(needs: list[PriceNeed]) -> dict[tuple[int, str], list[PriceNeed]]:
    groups: dict[tuple[int, str], list[PriceNeed]] = {}
    for need in needs:
        groups.setdefault((need.fund_id, need.frequency), []).append(need)
    return groups


def _product_name(need: PriceNeed) -> str:
    return f"{need.fund_name} ({FREQUENCY_WORDS.get(need.frequency, need.frequency)})"


def _id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else value


def _price_problem(price: dict[str, Any] | None, product_id: str, need: PriceNeed) -> Difference | None:
    if price is None or _id(price.get("product")) != product_id:
        return Difference(
            f"There is no price for {need.words}: checkouts for it use a one-off price the Billing Portal "
            "cannot switch to.",
            SET_UP + " (it creates the price).",
        )
    if not price.get("active"):
        return Difference(f"The price for {need.words} is turned off.", SET_UP + " (it turns it back on).")
    return None


def _portal_products(prices: list[SetUpPrice]) -> dict[str, list[str]]:
    """Product id -> its price ids, for memberships only (the portal switches subscriptions)."""
    products: dict[str, list[str]] = {}
    for made in prices:
        if made.need.frequency in FREQUENCY_INTERVAL:
            products.setdefault(made.product_id, []).append(made.price_id)
    return products


def _portal_features(products: dict[str, list[str]]) -> dict[str, Any]:
    listed = [{"product": product, "prices": prices} for product, prices in products.items()]
    # No membership prices (only one-time gifts): nothing to switch between.
    switching: dict[str, Any] = {"enabled": False}
    if listed:
        switching = {
            "enabled": True,
            "default_allowed_updates": ["price"],
            "products": listed[:PORTAL_PRODUCT_LIMIT],
            # A new amount starts with the next payment: no surprise charge or credit mid-period.
            "proration_behavior": "none",
        }
    return {
        # At the period's end: a member has paid for the month they are in.
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
        "payment_method_update": {"enabled": True},
        "invoice_history": {"enabled": True},
        "subscription_update": switching,
    }


def _portal_problems(portal: dict[str, Any], products: dict[str, list[str]]) -> list[Difference]:
    features = portal.get("features") or {}
    problems: list[Difference] = []
    fix = SET_UP + " (it updates the app's configuration)."
    if not portal.get("active"):
        problems.append(Difference("The app's Billing Portal configuration is turned off.", fix))
    if not (features.get("subscription_cancel") or {}).get("enabled"):
        problems.append(Difference("Members cannot cancel in the Billing Portal.", fix))
    if not (features.get("payment_method_update") or {}).get("enabled"):
        problems.append(Difference("Members cannot update their card in the Billing Portal.", fix))
    update = features.get("subscription_update") or {}
    if products:
        if not update.get("enabled") or "price" not in (update.get("default_allowed_updates") or []):
            problems.append(Difference("Members cannot change their amount in the Billing Portal.", fix))
        listed = {_id(p.get("product")): set(p.get("prices") or []) for p in update.get("products") or []}
        wanted = dict(list(products.items())[:PORTAL_PRODUCT_LIMIT])
        if listed != {product: set(prices) for product, prices in wanted.items()}:
            problems.append(
                Difference("The Billing Portal does not offer exactly the funds' membership amounts to switch to.", fix)
            )
    return problems


def _endpoint_problems(endpoint: dict[str, Any] | None, plan: AccountPlan) -> list[Difference]:
    if endpoint is None:
        return [
            Difference(
                "There is no webhook endpoint of this app: Stripe tells it of no payment.",
                f"{SET_UP}, then set STRIPE_WEBHOOK_SECRET to the signing secret it prints.",
            )
        ]
    fix = SET_UP + " (it updates the endpoint)."
    problems: list[Difference] = []
    if endpoint.get("url") != plan.webhook_url:
        problems.append(
            Difference(
                f"The webhook endpoint sends to {endpoint.get('url')}, not {plan.webhook_url}.",
                f"Run `flask --app wsgi payments setup-stripe --webhook-url {plan.webhook_url}`.",
            )
        )
    sent = set(endpoint.get("enabled_events") or [])
    missing = sorted(set(plan.events) - sent) if "*" not in sent else []
    extra = sorted(sent - set(plan.events))
    if missing:
        problems.append(Difference(f"The webhook endpoint does not send: {', '.join(missing)}.", fix))
    if extra:
        words = ", ".join("every event (*)" if e == "*" else e for e in extra)
        problems.append(Difference(f"The webhook endpoint also sends events the app does not handle: {words}.", fix))
    if endpoint.get("api_version") != stripe.api_version:
        problems.append(
            Difference(
                f"The webhook endpoint sends events in API version {_version(endpoint)}; "
                f"the app reads {stripe.api_version}.",
                SET_UP + ": Stripe cannot change an endpoint's version, so it makes a new endpoint and deletes "
                "the old one; then set STRIPE_WEBHOOK_SECRET to the new signing secret it prints.",
            )
        )
    if endpoint.get("status") == "disabled":
        problems.append(Difference("The webhook endpoint is disabled: Stripe sends it nothing.", fix))
    return problems
