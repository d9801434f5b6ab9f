"""The outbox worker's and the development mail writer's logs name a message by its id and kind,
never by the donor's address (not even redacted: it is not written at all)."""

from __future__ import annotations

import logging

from donations.extensions import db
from donations.mail import service
from donations.mail.worker import OutboxWorker
from tests.factories import make_donor, make_fund, make_gift

ADDRESS = "private.person@example.org"


def test_a_sent_message_is_logged_by_id_and_kind_only(app, smtp, caplog):
    gift = make_gift(make_donor(ADDRESS), make_fund(), 2_500)
    message = service.queue("gift_receipt", ADDRESS, {"gift_id": gift.id})
    db.session.commit()
    with caplog.at_level(logging.INFO, logger="donations.mail.worker"):
        assert OutboxWorker().drain().sent == 1
    lines = [record.getMessage() for record in caplog.records if record.name == "donations.mail.worker"]
    assert lines == [f"sent outbox message {message.id} (gift_receipt)"]
    assert smtp.mailbox.to(ADDRESS)  # it did go to the donor


def test_the_development_mail_log_names_the_message_not_the_recipient(app, monkeypatch, tmp_path, caplog):
    monkeypatch.setitem(app.config, "SMTP_URL", None)
    monkeypatch.setitem(app.config, "MAIL_DIR", str(tmp_path))
    message = service.queue("magic_link", ADDRESS, {"url": "http://127.0.0.1:5000/m/x", "expires_at_iso": "2026-05-01"})
    db.session.commit()
    with caplog.at_level(logging.INFO, logger="donations.mail"):
        assert OutboxWorker().drain().sent == 1
    (record,) = [r for r in caplog.records if r.name == "donations.mail.mailer"]
    first_line = record.getMessage().splitlines()[0]
    assert first_line.startswith(f"mail written to {tmp_path}/outbox-{message.id}-")
    assert "private.person" not in caplog.text and "[email redacted]" not in first_line
