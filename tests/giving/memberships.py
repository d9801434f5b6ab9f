"""Helpers for membership tests: start one as a reader does on the local gateway, and sign in
through the emailed link read from the outbox."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import Membership
from donations.mail.models import OutboxMessage
from tests.forms import csrf_token, extract_csrf_token
from tests.giving.gifts import post_gift


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
