"""Personal data stays out of the logs: every record the process makes has email addresses and
card-like numbers redacted, including exception text, whichever logger or handler."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import select

from donations.extensions import db
from donations.ledger.models import Gift
from donations.mail.worker import OutboxWorker
from donations.security import redact
from tests import stripe_events as se
from tests.forms import extract_csrf_token
from tests.giving.support import gift_form
from tests.security.support import browser, csrf_token, signed_in

DONOR = "Jo.Donor+news@Example.co.uk"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail to jo@example.org failed", "mail to [email redacted] failed"),
        ("<Jo.Donor+news@Example.co.uk>", "<[email redacted]>"),
        ("card 4242 4242 4242 4242 declined", "card [card redacted] declined"),
        ("card 4000000000000002", "card [card redacted]"),
        ("gift 12345 of 5000 cents at 2026-11-26", "gift 12345 of 5000 cents at 2026-11-26"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_any_logger_and_handler_and_the_traceback(app):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("some.library")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("sending to %s", DONOR)
        try:
            raise ValueError(f"no mailbox {DONOR}")
        except ValueError:
            logger.exception("delivery failed for %(who)s", {"who": DONOR})
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "Example.co.uk" not in output
    assert "some.library sending to [email redacted]" in output
    assert "ValueError: no mailbox [email redacted]" in output


def test_the_apps_own_log_lines_hold_no_email(app, fund, webhook_secret, caplog, tmp_path, monkeypatch):
    """Walk through what logs: a gift, a decline, a honeypot, a rate-limit refusal, a Stripe
    event that cannot be applied, mail sent, a privacy export."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setitem(app.config, "GIVE_RATE_LIMIT", "1 per minute")
    monkeypatch.setitem(app.config, "MAIL_DIR", str(tmp_path))
    reader = browser(app, "203.0.113.5")
    token = csrf_token(reader)
    opened = reader.post("/give", data=gift_form(token, email=DONOR))
    checkout = opened.headers["Location"]
    pay_token = extract_csrf_token(reader.get(checkout).get_data(as_text=True))
    reader.post(checkout, data={"csrf_token": pay_token, "card_number": "4000 0000 0000 0002"})
    reader.post(checkout, data={"csrf_token": pay_token, "card_number": "4242 4242 4242 4242"})
    reader.post("/give", data=gift_form(token, email=DONOR, website="x"))
    reader.post("/give", data=gift_form(token, email=DONOR))  # refused: over the limit
    unreadable = se.event("checkout.session.completed", se.checkout_session(email=DONOR) | {"amount_total": "lots"})
    se.post_event(browser(app), unreadable, webhook_secret)
    OutboxWorker().drain()
    admin, _user = signed_in(app, "admin")
    donor_id = db.session.scalars(select(Gift.donor_id)).first()
    page = admin.get(f"/staff/donors/{donor_id}/privacy").get_data(as_text=True)
    admin.post(f"/staff/donors/{donor_id}/privacy/export", data={"csrf_token": extract_csrf_token(page)})

    messages = [record.getMessage() for record in caplog.records]
    assert any("blocked attempt: rate_limit_" in m for m in messages)
    assert any("[email redacted]" in m for m in messages)  # some line did try to log it
    logged = caplog.text.lower()
    assert DONOR.lower() not in logged and "example.co.uk" not in logged
    assert "4000 0000 0000 0002" not in logged and "4242 4242 4242 4242" not in logged
