"""Request bodies are bounded: a form above MAX_CONTENT_LENGTH (64 KB) or a webhook delivery above
WEBHOOK_MAX_CONTENT_LENGTH (1 MB) gets a 413 before a byte of it is read, and nothing is stored."""

from __future__ import annotations

import io
import json

from tests import stripe_events as se
from tests.forms import page_text
from tests.giving.support import NOTHING_WRITTEN, gift_form, row_counts
from tests.security.support import browser, csrf_token

WEBHOOK_LIMIT = 1024 * 1024
FORM_LIMIT = 64 * 1024


class CountingStream(io.RawIOBase):
    """A request body of `size` bytes that counts how many of them the app reads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:  # the test client seeks to the end to learn the length
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence] + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = b"x" * n
        self.position += n
        self.read_bytes += n
        return n


def test_an_oversized_webhook_body_with_a_bad_signature_is_refused_unread(client):
    body = CountingStream(3 * WEBHOOK_LIMIT)
    response = client.post(
        "/stripe/webhook",
        input_stream=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=bad"},
    )
    assert response.status_code == 413
    assert response.json == {"error": "request body too large"}
    assert body.read_bytes == 0


def signed_event_of_size(size: int, secret: str) -> tuple[bytes, dict[str, str]]:
    payload = se.event("checkout.session.completed", se.checkout_session())
    payload["data"]["object"]["metadata"] = {"padding": ""}
    padding = size - len(json.dumps(payload).encode())
    payload["data"]["object"]["metadata"]["padding"] = "p" * padding
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body, se.signed_headers(body, secret)


def test_a_signed_event_above_the_limit_is_refused_and_not_stored(client, webhook_secret):
    body, headers = signed_event_of_size(WEBHOOK_LIMIT + 1, webhook_secret)
    response = client.post("/stripe/webhook", data=body, headers=headers)
    assert response.status_code == 413
    assert row_counts() == NOTHING_WRITTEN


def test_a_signed_event_within_the_limit_is_received(client, webhook_secret, fund):
    # Far larger than any form may be: the webhook has its own limit.
    body, headers = signed_event_of_size(WEBHOOK_LIMIT, webhook_secret)
    response = client.post("/stripe/webhook", data=body, headers=headers)
    assert response.status_code == 200
    assert row_counts()["stripe_events"] == 1


def test_an_oversized_form_is_refused_unread_with_words(app, fund):
    reader = browser(app)
    token = csrf_token(reader)
    body = CountingStream(FORM_LIMIT + 1)
    response = reader.post(
        "/give",
        input_stream=body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 413
    assert body.read_bytes == 0
    assert "more than this form accepts" in page_text(response.get_data(as_text=True))
    assert row_counts() == NOTHING_WRITTEN


def test_a_form_just_under_the_limit_is_read(app, fund):
    reader = browser(app)
    token = csrf_token(reader)
    form = gift_form(token)
    response = reader.post("/give", data={**form, "name": "a" * (FORM_LIMIT - 1000)})
    assert response.status_code == 400  # read, and refused by the form: the name is too long
    assert "Field cannot be longer than 200 characters" in page_text(response.get_data(as_text=True))
