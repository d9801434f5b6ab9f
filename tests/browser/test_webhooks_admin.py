"""An admin adds an outgoing webhook endpoint in headless Chromium: the form, the secret shown
once, the endpoint's page with its delivery log after the worker sent an event to a real
receiver; axe-core finds nothing serious, and at 375 px no page is wider than the phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from donations.extensions import db
from donations.webhooks.delivery import WebhookWorker
from donations.webhooks.models import WebhookEndpoint
from donations.webhooks.outbox import donor_changed
from tests.factories import make_donor
from tests.staff.support import PASSWORD, make_staff
from tests.webhooks.support import Receiver

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def receiver():
    found = Receiver()
    found.start()
    yield found
    found.stop()


def test_an_admin_adds_an_endpoint_and_reads_its_log(new_context, app, receiver, assert_accessible):
    make_staff("admin", email="admin@newsroom.example")
    page: Page = new_context(viewport=PHONE).new_page()
    page.goto("/staff/sign-in")
    page.get_by_label("Email").fill("admin@newsroom.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/staff/$"))

    page.get_by_role("link", name="Webhooks").click()
    assert_accessible(page)
    page.get_by_label("Address (https://...)").fill(receiver.url)
    page.get_by_label("What it is for (optional)").fill("Our CRM")
    page.get_by_label("A donor's record changed (corrected, merged or erased)").check()
    page.get_by_role("button", name="Add the endpoint").click()
    expect(page.get_by_role("heading", name="Endpoint added")).to_be_visible()
    secret = page.locator("#secret").inner_text()
    assert re.fullmatch(r"whsec_[0-9a-f]{64}", secret)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)

    endpoint = db.session.scalars(select(WebhookEndpoint)).one()
    assert endpoint.secret == secret and endpoint.event_types == ["donor.changed"]
    receiver.secret = secret
    donor_changed(make_donor("crm@example.org", name="Cee Arem"), "Corrected by staff", ["name"], "browser")
    db.session.commit()
    WebhookWorker("browser").drain()
    assert [r.type for r in receiver.received] == ["donor.changed"]

    page.get_by_role("link", name="Go to the endpoint").click()
    expect(page.get_by_text("answered 200")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"Resend delivery \d+"))).to_be_visible()
    assert secret not in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)

    # Deleting asks first, on a page of its own (no script), then the list is empty.
    page.get_by_role("link", name="Delete this endpoint…").click()
    expect(page.get_by_role("heading", name=re.compile(r"Delete webhook endpoint \d+\?"))).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert_accessible(page)
    page.get_by_role("button", name="Yes, delete the endpoint and its log").click()
    expect(page.get_by_text("is deleted, with its log of 1 delivery.")).to_be_visible()
    db.session.expire_all()
    assert db.session.scalars(select(WebhookEndpoint)).all() == []
