"""The admins' webhook pages: admins only, CSRF, the secret shown once, clear 400s for bad
input, every write audited, and the delivery log with its resend button."""

from __future__ import annotations

import re

import pytest
from flask import url_for
from sqlalchemy import func, select

from donations.accounts.models import AuditEntry
from donations.extensions import db
from donations.webhooks.delivery import WebhookWorker
from donations.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from tests import stripe_events as se
from tests.forms import extract_csrf_token, page_text
from tests.mail.support import sign_in

ALL = ["gift.recorded", "gift.reversed", "membership.started", "membership.changed", "membership.canceled"]


def _token(client, path: str) -> str:
    return extract_csrf_token(client.get(path).get_data(as_text=True))


def _add(client, url: str, types: list[str] | None = None, **extra):
    token = _token(client, url_for("webhooks_staff.endpoints"))
    data = {"csrf_token": token, "url": url, "description": "CRM bridge", "event_types": types or ALL, "enabled": "y"}
    return client.post(url_for("webhooks_staff.create"), data=data | extra)


def audits(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_only_admins_see_or_change_webhooks(app, client, role):
    sign_in(client, role)
    assert client.get(url_for("webhooks_staff.endpoints")).status_code == 403
    token = _token(client, url_for("staff.dashboard"))  # a valid form, so the role is what refuses
    data = {"csrf_token": token, "url": "https://x.example.org", "event_types": ALL}
    assert client.post(url_for("webhooks_staff.create"), data=data).status_code == 403
    assert client.post(url_for("webhooks_staff.resend", delivery_id=1), data={"csrf_token": token}).status_code == 403
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_signed_out_is_sent_to_sign_in(app, client):
    assert client.get(url_for("webhooks_staff.endpoints")).status_code == 302


def test_adding_shows_the_secret_once_and_audits_without_it(app, client):
    sign_in(client, "admin")
    response = _add(client, "https://hooks.example.org/donations")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    page = response.get_data(as_text=True)
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", endpoint.secret)
    assert endpoint.secret in page and "shown only this once" in page
    assert endpoint.event_types == ALL and endpoint.enabled
    (entry,) = audits("webhook_endpoint.create")
    assert entry.details["after"]["url"] == "https://hooks.example.org/donations"
    assert endpoint.secret not in str(entry.details)
    # Never again: not on the list, not on the endpoint's page.
    assert endpoint.secret not in client.get(url_for("webhooks_staff.endpoints")).get_data(as_text=True)
    assert endpoint.secret not in client.get(url_for("webhooks_staff.endpoint", endpoint_id=endpoint.id)).get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.org/x", "must start with https://"),
        ("ftp://hooks.example.org/x", "Enter an address like"),
        ("https://user:pw@hooks.example.org/x", "Leave the user name and password out"),
        ("https://hooks.example.org:99999999/x", "Enter an address like"),
        ("not an address", "Enter an address like"),
    ],
)
def test_bad_addresses_are_refused_with_a_message(app, client, url, message):
    sign_in(client, "admin")
    response = _add(client, url)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_plain_http_only_to_this_machine(app, client):
    sign_in(client, "admin")
    assert _add(client, "http://127.0.0.1:8080/hook").status_code == 200
    assert _add(client, "http://localhost/hook").status_code == 200


def test_no_event_chosen_and_no_csrf_token_are_400s(app, client):
    sign_in(client, "admin")
    token = _token(client, url_for("webhooks_staff.endpoints"))
    response = client.post(url_for("webhooks_staff.create"), data={"csrf_token": token, "url": "https://x.example.org"})
    assert response.status_code == 400
    assert "Choose at least one kind of event" in response.get_data(as_text=True)
    response = client.post(url_for("webhooks_staff.create"), data={"url": "https://x.example.org", "event_types": ALL})
    assert response.status_code == 400
    assert db.session.scalars(select(WebhookEndpoint)).all() == []


def test_edit_turn_off_and_rotate_are_audited(app, client):
    sign_in(client, "admin")
    _add(client, "https://hooks.example.org/a")
    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    old_secret = endpoint.secret
    page = url_for("webhooks_staff.endpoint", endpoint_id=endpoint.id)
    token = _token(client, page)
    response = client.post(
        page, data={"csrf_token": token, "url": "https://hooks.example.org/b", "event_types": ["donor.changed"]}
    )
    assert response.status_code == 303
    db.session.expire_all()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert (endpoint.url, endpoint.event_types, endpoint.enabled) == (
        "https://hooks.example.org/b",
        ["donor.changed"],
        False,
    )
    (entry,) = audits("webhook_endpoint.edit")
    assert entry.details["before"]["enabled"] is True and entry.details["after"]["enabled"] is False

    response = client.post(url_for("webhooks_staff.rotate", endpoint_id=endpoint.id), data={"csrf_token": token})
    assert response.status_code == 200
    db.session.expire_all()
    new_secret = db.session.get(WebhookEndpoint, endpoint.id).secret
    assert new_secret != old_secret and new_secret in response.get_data(as_text=True)
    (entry,) = audits("webhook_endpoint.rotate_secret")
    assert new_secret not in str(entry.details) and old_secret not in str(entry.details)
    assert client.post(url_for("webhooks_staff.rotate", endpoint_id=endpoint.id)).status_code == 400
    assert client.get(url_for("webhooks_staff.endpoint", endpoint_id=999)).status_code == 404


def test_delivery_log_and_resend_button(app, client, webhook_secret, fund, receiver):
    sign_in(client, "admin")
    _add(client, receiver.url, ["gift.recorded"])
    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    receiver.secret = endpoint.secret
    session = se.checkout_session(amount_cents=2_000, email="log@example.org")
    se.post_event(client, se.event("checkout.session.completed", session), webhook_secret)
    WebhookWorker("page-test").drain()
    page = url_for("webhooks_staff.endpoint", endpoint_id=endpoint.id)
    html = client.get(page).get_data(as_text=True)
    assert "A gift was recorded" in html and "answered 200" in html and "Delivered" in html
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert f"Resend delivery {delivery.id}" in html

    token = _token(client, page)
    response = client.post(url_for("webhooks_staff.resend", delivery_id=delivery.id), data={"csrf_token": token})
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, delivery.id).status == DeliveryStatus.PENDING
    assert len(audits("webhook_delivery.resend")) == 1
    # Waiting already: refused in words, not a 500.
    response = client.post(url_for("webhooks_staff.resend", delivery_id=delivery.id), data={"csrf_token": token})
    assert response.status_code == 303
    assert "still waiting" in client.get(url_for("webhooks_staff.endpoints")).get_data(as_text=True)
    assert client.post(url_for("webhooks_staff.resend", delivery_id=999), data={"csrf_token": token}).status_code == 404
    WebhookWorker("page-test").drain()
    assert sorted(receiver.delivered_ids().values()) == [2], "a resend after a 2xx is staff's choice"


def test_deleting_an_endpoint_asks_first_then_removes_it_and_its_log_only(app, client, webhook_secret, fund, receiver):
    sign_in(client, "admin")
    _add(client, receiver.url, ["gift.recorded"])
    _add(client, receiver.url + "?second", ["gift.recorded"])
    first, second = db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
    receiver.secret = first.secret
    gift = se.event("checkout.session.completed", se.checkout_session(amount_cents=2_000))
    se.post_event(client, gift, webhook_secret)
    WebhookWorker("delete-test").drain()
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 2

    ask = client.get(url_for("webhooks_staff.delete", endpoint_id=first.id))
    text = page_text(ask.get_data(as_text=True))
    assert ask.status_code == 200 and "its log of 1 delivery is removed with it" in text
    assert "turn the endpoint off instead" in text
    assert db.session.get(WebhookEndpoint, first.id) is not None  # asking deletes nothing
    path = url_for("webhooks_staff.delete", endpoint_id=first.id)
    assert client.post(path).status_code == 400  # no CSRF token

    response = client.post(path, data={"csrf_token": _token(client, path)})
    assert response.status_code == 303
    assert "is deleted, with its log of 1 delivery." in client.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(WebhookEndpoint.id)).all() == [second.id]
    assert {d.endpoint_id for d in db.session.scalars(select(WebhookDelivery))} == {second.id}
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 1  # the other's log stays
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == 1
    (entry,) = audits("webhook_endpoint.delete")
    assert entry.details["deliveries_removed"] == 1 and entry.details["before"]["url"] == receiver.url
    assert client.get(path).status_code == 404
    # Later events go to the endpoint that is left only.
    later = se.event("checkout.session.completed", se.checkout_session(amount_cents=3_000))
    se.post_event(client, later, webhook_secret)
    assert {d.endpoint_id for d in db.session.scalars(select(WebhookDelivery))} == {second.id}


@pytest.mark.parametrize("role", ["viewer", "finance"])
def test_only_admins_delete_an_endpoint(app, client, role):
    from tests.webhooks.support import make_endpoint

    endpoint = make_endpoint("https://hooks.example.org/x")
    sign_in(client, role)
    path = url_for("webhooks_staff.delete", endpoint_id=endpoint.id)
    token = _token(client, url_for("staff.dashboard"))
    assert client.get(path).status_code == 403
    assert client.post(path, data={"csrf_token": token}).status_code == 403
    assert db.session.get(WebhookEndpoint, endpoint.id) is not None


@pytest.mark.postgresql_only
def test_deleting_an_endpoint_while_a_delivery_to_it_is_being_sent_waits_for_it(app, webhook_secret, fund, receiver):
    # The worker holds the delivery locked while it posts, and writes its attempt when it commits:
    # the delete waits for that commit and then removes the attempt too, rather than failing on it.
    import threading

    from donations.extensions import unit_of_work
    from donations.webhooks import admin
    from tests.webhooks.support import admin_user, make_endpoint

    endpoint = make_endpoint(receiver.url, ["gift.recorded"])
    receiver.secret, receiver.hold_seconds = endpoint.secret, 1.5
    se.post_event(app.test_client(), se.event("checkout.session.completed", se.checkout_session()), webhook_secret)
    assert db.session.scalars(select(WebhookDelivery.status)).all() == [DeliveryStatus.PENDING]
    sent: list[object] = []

    def worker() -> None:
        with app.app_context():
            sent.append(WebhookWorker("slow-worker").drain().delivered)

    sending = threading.Thread(target=worker)
    sending.start()
    for _ in range(100):  # until the receiver holds the request (the worker's row lock is taken)
        if receiver.requests_in_hand:
            break
        threading.Event().wait(0.02)
    assert receiver.requests_in_hand
    with unit_of_work():
        removed = admin.delete_endpoint(endpoint.id, actor=admin_user(), remote_addr=None)
    sending.join(10)
    assert sent == [1] and removed == 1  # the delivery finished, then went with its endpoint
    assert db.session.scalars(select(WebhookEndpoint)).all() == []
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 0
