"""What the giving tests share: a valid gift form, the fee computed independently, counts of
every row a gift can write; a membership started as a reader does on the local gateway, and
signing in through the emailed link read from the outbox."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import func, select

from donations.extensions import db
from donations.ledger.models import Donor, Gift, GiftStatus, Membership
from donations.mail.models import OutboxMessage
from donations.payments.models import StripeEvent
from tests.forms import csrf_token, extract_csrf_token


def expected_fee(amount_cents: int, percent: str = "2.9", fixed_cents: int = 30) -> int:
    """(amount + fixed) / (1 - rate) rounded up to the cent, minus the amount: computed with
    exact fractions, apart from the app's Decimal code."""
    rate = Fraction(percent) / 100
    return math.ceil((amount_cents + fixed_cents) / (1 - rate)) - amount_cents


def gift_form(token: str, **overrides: Any) -> dict[str, Any]:
    """A valid one-time gift of $50; `None` in overrides drops the field."""
    form: dict[str, Any] = {
        "csrf_token": token,
        "frequency": "one_time",
        "amount_choice": "5000",
        "custom_amount": "",
        "name": "Rae Reader",
        "email": "rae@example.org",
        "postal_code": "94110",
        "website": "",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def post_gift(client: FlaskClient, url: str = "/give", **overrides: Any):
    """Load the form (for its CSRF token) and post it, as a reader's browser would."""
    return client.post(url, data=gift_form(csrf_token(client, url), **overrides))


def row_counts() -> dict[str, int]:
    """How many rows of each kind a gift or an event can write."""
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Donor, Gift, StripeEvent, OutboxMessage)
    }


NOTHING_WRITTEN = {"donors": 0, "gifts": 0, "stripe_events": 0, "outbox_messages": 0}


def counted_gifts() -> int:
    """Gifts whose money arrived: pending and failed ones never count."""
    return db.session.scalar(select(func.count()).select_from(Gift).where(Gift.status == GiftStatus.PAID))


def only_gift() -> Gift:
    """The one gift, as the database has it now (requests may have changed it meanwhile)."""
    return db.session.scalars(select(Gift).execution_options(populate_existing=True)).one()


def start_local_membership(
    client: FlaskClient, email: str = "rae@example.org", amount: str = "1500", frequency: str = "monthly"
) -> Membership:
    """Give monthly (`amount` in cents) on /give and pay on the local checkout page, as a reader does."""
    dollars = f"{int(amount) // 100}.{int(amount) % 100:02d}"
    response = post_gift(client, frequency=frequency, amount_choice="other", custom_amount=dollars, email=email)
    assert response.status_code == 303, response.status_code
    checkout = urlsplit(response.headers["Location"])
    page = client.get(f"{checkout.path}?{checkout.query}")
    token = extract_csrf_token(page.get_data(as_text=True))
    paid = client.post(checkout.path, data={"csrf_token": token, "card_number": "4242 4242 4242 4242"})
    assert paid.status_code == 302, paid.get_data(as_text=True)
    return db.session.scalars(
        select(Membership).order_by(Membership.id.desc()).limit(1).execution_options(populate_existing=True)
    ).one()


def magic_links() -> list[OutboxMessage]:
    return list(
        db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "magic_link").order_by(OutboxMessage.id))
    )


def open_account(client: FlaskClient, email: str) -> str:
    """Ask for a link, open the one the outbox holds, and return the member's page."""
    before = len(magic_links())
    client.post("/membership", data={"csrf_token": csrf_token(client, "/membership"), "email": email})
    links = magic_links()
    assert len(links) == before + 1
    opened = client.get(urlsplit(links[-1].context["url"]).path)
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/membership/account")
    page = client.get("/membership/account")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def shown_amounts(html: str) -> list[str]:
    """The amount buttons a reader sees (those of other frequencies are rendered hidden, for
    forms.js to show when the frequency changes), then "other"."""
    shown = re.findall(r'<label class="amount-button"(?! hidden)[^>]*>\s*<input[^>]*value="(\d+)"', html)
    return [*shown, "other"] if 'value="other"' in html else shown


def stripe_membership(app, client: FlaskClient, email: str = "rae@example.org") -> tuple[Membership, str, str]:
    """A monthly Stripe membership made by its first paid invoice: (membership, subscription id,
    customer id)."""
    import time

    from tests import stripe_events as se

    subscription_id, customer = se.unique("sub"), se.unique("cus")
    invoice = se.invoice(
        subscription=subscription_id,
        customer=customer,
        paid_at=int(time.time()),
        billing_reason="subscription_create",
        email=email,
    )
    se.post_event(client, se.event("invoice.paid", invoice), app.config["STRIPE_WEBHOOK_SECRET"])
    return db.session.scalars(select(Membership)).one(), subscription_id, customer
