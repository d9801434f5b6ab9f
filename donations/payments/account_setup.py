"""`payments setup-stripe` and `payments check-stripe`: what the app needs of the payment account
(a Price per fund, frequency and suggested amount; a Billing Portal configuration that switches
among them; a webhook endpoint sending exactly the handled events), made or compared through the
gateway; the ids kept here so checkouts and portal sessions name them; each check's result kept
for /healthz.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import delete, select

from donations.accounts.audit import audit
from donations.accounts.models import StaffUser
from donations.clock import utcnow
from donations.extensions import db
from donations.ledger import funds
from donations.ledger.models import Fund
from donations.mail.render import public_url
from donations.payments.gateway import AccountCheck, AccountPlan, AccountSetUp, Difference, PriceNeed, get_gateway
from donations.payments.handlers import handled_types
from donations.payments.models import StripeCheck, StripePrice, StripeSetupObject

PORTAL_CONFIGURATION = "portal_configuration"
WEBHOOK_ENDPOINT = "webhook_endpoint"
WEBHOOK_PATH = "/stripe/webhook"


def default_webhook_url() -> str:
    """The webhook's address under PUBLIC_URL."""
    return public_url(WEBHOOK_PATH)


def plan(webhook_url: str) -> AccountPlan:
    """A Price for each suggested amount of each active fund and enabled frequency (the gift
    page's own amounts), and every event type a handler is registered for."""
    frequencies = current_app.config.get("GIFT_FREQUENCIES", ["one_time"])
    currency = current_app.config["CURRENCY"]
    needs: list[PriceNeed] = []
    for fund in db.session.scalars(select(Fund).where(Fund.active.is_(True)).order_by(Fund.id)):
        suggested = funds.suggested_amounts(fund)
        for frequency in frequencies:
            for cents in sorted(set(suggested.get(frequency, []))):
                needs.append(PriceNeed(fund.id, fund.slug, fund.name, frequency, cents, currency))
    return AccountPlan(prices=needs, webhook_url=webhook_url, events=handled_types())


def set_up(webhook_url: str, actor: StaffUser | str) -> AccountSetUp:
    """Make the account match the plan and keep the ids it names. The caller commits."""
    done = get_gateway().set_up_account(plan(webhook_url))
    if done.note:
        return done
    db.session.execute(delete(StripePrice))
    for made in done.prices:
        need = made.need
        db.session.add(
            StripePrice(
                fund_id=need.fund_id,
                frequency=need.frequency,
                amount_cents=need.amount_cents,
                currency=need.currency,
                price_id=made.price_id,
                product_id=made.product_id,
            )
        )
    _keep(PORTAL_CONFIGURATION, done.portal_configuration_id)
    _keep(WEBHOOK_ENDPOINT, done.webhook_endpoint_id)
    audit(
        "stripe.setup",
        actor=actor,
        details={"webhook_url": webhook_url, "changes": len(done.changes), "prices": len(done.prices)},
    )
    return done


def check(webhook_url: str) -> AccountCheck:
    """Compare the account with the plan (and with the prices this database's checkouts name);
    the result is kept for /healthz. The caller commits."""
    wanted = plan(webhook_url)
    found = get_gateway().check_account(wanted)
    if found.note:
        return found
    rows = db.session.scalars(select(StripePrice))
    kept = {(p.fund_id, p.frequency, p.amount_cents, p.currency): p.price_id for p in rows}
    for need in wanted.prices:
        price_id = found.prices.get(need.key)
        if price_id and kept.get(need.key) != price_id:
            found.differences.append(
                Difference(
                    f"Checkouts here do not use the account's price for {need.words}.",
                    "Run `flask --app wsgi payments setup-stripe` against this database.",
                )
            )
    portal = _kept(PORTAL_CONFIGURATION)
    if found.portal_configuration_id and portal != found.portal_configuration_id:
        found.differences.append(
            Difference(
                "Member portal sessions here do not name the app's Billing Portal configuration.",
                "Run `flask --app wsgi payments setup-stripe` against this database.",
            )
        )
    db.session.add(
        StripeCheck(
            checked_at=utcnow(),
            problems=len(found.differences),
            summary="\n".join(d.problem for d in found.differences),
        )
    )
    return found


def last_check() -> StripeCheck | None:
    newest_first = select(StripeCheck).order_by(StripeCheck.checked_at.desc(), StripeCheck.id.desc())
    return db.session.scalars(newest_first).first()


def price_for(fund_id: int, frequency: str, amount_cents: int, currency: str) -> str | None:
    """The Price `setup-stripe` made for this fund, frequency and amount; None: none (an inline price)."""
    return db.session.scalar(
        select(StripePrice.price_id).where(
            StripePrice.fund_id == fund_id,
            StripePrice.frequency == frequency,
            StripePrice.amount_cents == amount_cents,
            StripePrice.currency == currency,
        )
    )


def portal_configuration_id() -> str | None:
    return _kept(PORTAL_CONFIGURATION)


def _kept(kind: str) -> str | None:
    return db.session.scalar(select(StripeSetupObject.stripe_id).where(StripeSetupObject.kind == kind))


def _keep(kind: str, stripe_id: str | None) -> None:
    row = db.session.get(StripeSetupObject, kind)
    if stripe_id is None:
        if row is not None:
            db.session.delete(row)
        return
    if row is None:
        db.session.add(StripeSetupObject(kind=kind, stripe_id=stripe_id, updated_at=utcnow()))
    elif row.stripe_id != stripe_id:
        row.stripe_id, row.updated_at = stripe_id, utcnow()
